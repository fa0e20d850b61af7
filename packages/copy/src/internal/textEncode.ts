/**
 * COPY FROM in text and CSV: JavaScript values → the text PostgreSQL reads,
 * written straight into the output chunk.
 *
 * Two layers: the text representation of a value (what `::text` would
 * print: `t`, `42`, `2024-01-02 03:04:05.678+00`, `{1,NULL}`), and the
 * format's quoting of that text — text format escapes backslash, the
 * delimiter and the control characters 8–13 as `\b \t \n \v \f \r \\`
 * (psycopg's rules), CSV quotes a field when it contains the delimiter, the
 * quote, a newline, or would read as NULL. Numbers, booleans and timestamps
 * skip the second layer when the delimiter cannot occur in them.
 */
import * as PgTypes from "@effect/sql-pg/PgTypes"
import { PgValue } from "@pgfx/core"
import { type Chunk, EncodeFailure, isWellFormed, loneSurrogate, nulByte } from "./chunk.ts"
import { elementOf, isTextLike } from "./types.ts"

const OID = PgTypes.OID

/** The text or CSV dialect of a COPY. */
export interface Dialect {
  readonly csv: boolean
  readonly delimiter: number
  readonly quote: number
  readonly escape: number
  /** How NULL is written. */
  readonly nullText: string
  /**
   * Whether numbers, booleans, dates and hex bytes can be written without
   * quoting or escaping (the delimiter, quote and NULL string cannot occur
   * in them).
   */
  readonly plain: boolean
}

const plainDelimiters = new Set([9, 44, 59, 124])

export const makeDialect = (options: {
  readonly csv: boolean
  readonly delimiter?: string | undefined
  readonly quote?: string | undefined
  readonly escape?: string | undefined
  readonly null?: string | undefined
}): Dialect => {
  const delimiter = (options.delimiter ?? (options.csv ? "," : "\t")).charCodeAt(0)
  const quote = (options.quote ?? "\"").charCodeAt(0)
  const escape = (options.escape ?? options.quote ?? "\"").charCodeAt(0)
  const nullText = options.null ?? (options.csv ? "" : "\\N")
  const plain = plainDelimiters.has(delimiter) && (nullText === "" || nullText === "\\N") &&
    (!options.csv || ((quote === 34 || quote === 39) && (escape === 34 || escape === 39 || escape === 92)))
  return { csv: options.csv, delimiter, quote, escape, nullText, plain }
}

// -----------------------------------------------------------------------------
// the format layer: strings
// -----------------------------------------------------------------------------

/** The letter after the backslash for the escaped control characters, by code. */
const escapeLetter = new Uint8Array(128)
escapeLetter[8] = 98 // b
escapeLetter[9] = 116 // t
escapeLetter[10] = 110 // n
escapeLetter[11] = 118 // v
escapeLetter[12] = 102 // f
escapeLetter[13] = 114 // r
escapeLetter[92] = 92 // backslash

/** A string in text format: escapes backslash, the delimiter and the control characters 8–13. */
/** ASCII characters written as they are in text format with a tab delimiter (1) or not (0). */
const plainAscii = new Uint8Array(128)
for (let code = 0x20; code < 0x7f; code++) plainAscii[code] = code === 92 ? 0 : 1

export const writeTextString = (chunk: Chunk, text: string, delimiter: number): void => {
  const n = text.length
  chunk.ensure(n * 3)
  const buf = chunk.buf
  let pos = chunk.pos
  const tab = delimiter === 9
  for (let i = 0; i < n; i++) {
    const code = text.charCodeAt(i)
    if (code < 0x80 && plainAscii[code] === 1 && (tab || code !== delimiter)) {
      buf[pos++] = code
      continue
    }
    if (code >= 0x7f) {
      if (code === 0x7f) {
        buf[pos++] = code
        continue
      }
      chunk.pos = pos
      return writeTextTail(chunk, text, i, delimiter)
    }
    if (code === 0) nulByte()
    const letter = escapeLetter[code]
    if (letter !== 0) {
      buf[pos++] = 92
      buf[pos++] = letter
    } else if (code === delimiter) {
      buf[pos++] = 92
      buf[pos++] = code
    } else {
      buf[pos++] = code
    }
  }
  chunk.pos = pos
}

/** The rest of a string from its first non-ASCII character: UTF-8 in one call, then escapes in place. */
const writeTextTail = (chunk: Chunk, text: string, from: number, delimiter: number): void => {
  if (!isWellFormed(text)) loneSurrogate()
  const buf = chunk.buf
  const start = chunk.pos
  const written = buf.write(from === 0 ? text : text.slice(from), start, "utf8")
  const end = start + written
  let specials = 0
  for (let p = start; p < end; p++) {
    const byte = buf[p]
    if (byte < 0x20 || byte === 92 || byte === delimiter) {
      if (byte === 0) nulByte()
      if (escapeLetter[byte] !== 0 || byte === delimiter) specials++
    }
  }
  if (specials === 0) {
    chunk.pos = end
    return
  }
  // Widen from the end so nothing is overwritten before it is read.
  let dst = end + specials - 1
  for (let src = end - 1; src >= start; src--) {
    const byte = buf[src]
    const letter = byte < 128 ? escapeLetter[byte] : 0
    if (letter !== 0) {
      buf[dst--] = letter
      buf[dst--] = 92
    } else if (byte === delimiter) {
      buf[dst--] = byte
      buf[dst--] = 92
    } else {
      buf[dst--] = byte
    }
  }
  chunk.pos = end + specials
}

/** A string in CSV: as it is, or quoted (quote and escape characters doubled) when it must be. */
export const writeCsvString = (chunk: Chunk, text: string, dialect: Dialect): void => {
  const n = text.length
  if (n === 0) {
    if (dialect.nullText === "") {
      chunk.byte(dialect.quote)
      chunk.byte(dialect.quote)
    }
    return
  }
  chunk.ensure(n * 3 + 2)
  const buf = chunk.buf
  const start = chunk.pos
  let pos = start
  const { delimiter, quote } = dialect
  let i = 0
  for (; i < n; i++) {
    const code = text.charCodeAt(i)
    if (code >= 0x80 || code === delimiter || code === quote || code === 10 || code === 13 || code === 0) break
    buf[pos++] = code
  }
  if (i === n) {
    if (text === dialect.nullText || (n === 2 && text === "\\.")) {
      chunk.pos = start
      return writeCsvQuoted(chunk, text, dialect)
    }
    chunk.pos = pos
    return
  }
  chunk.pos = start
  const code = text.charCodeAt(i)
  if (code === 0 || text.indexOf("\u0000", i) !== -1) nulByte()
  if (code >= 0x80) {
    if (!isWellFormed(text)) loneSurrogate()
    const needs = text.indexOf(String.fromCharCode(delimiter), i) !== -1 ||
      text.indexOf(String.fromCharCode(quote), i) !== -1 || text.indexOf("\n", i) !== -1 ||
      text.indexOf("\r", i) !== -1 || text === dialect.nullText
    if (!needs) {
      chunk.pos += buf.write(text, start, "utf8")
      return
    }
  }
  writeCsvQuoted(chunk, text, dialect)
}

const writeCsvQuoted = (chunk: Chunk, text: string, dialect: Dialect): void => {
  const quote = String.fromCharCode(dialect.quote)
  const escape = String.fromCharCode(dialect.escape)
  let body = text
  if (dialect.escape !== dialect.quote && text.indexOf(escape) !== -1) body = body.split(escape).join(escape + escape)
  if (text.indexOf(quote) !== -1) body = body.split(quote).join(escape + quote)
  chunk.ensure(body.length * 3 + 2)
  chunk.byte(dialect.quote)
  chunk.pos += chunk.buf.write(body, chunk.pos, "utf8")
  chunk.byte(dialect.quote)
}

/** A field whose text is `text`, quoted or escaped as the format needs. */
export const writeField = (chunk: Chunk, text: string, dialect: Dialect): void => {
  if (dialect.csv) writeCsvString(chunk, text, dialect)
  else writeTextString(chunk, text, dialect.delimiter)
}

/** ASCII text that needs no quoting in a plain dialect. */
const writePlain = (chunk: Chunk, text: string, dialect: Dialect): void => {
  if (dialect.plain) chunk.ascii(text)
  else writeField(chunk, text, dialect)
}

export const writeNull = (chunk: Chunk, dialect: Dialect): void => {
  const text = dialect.nullText
  if (text === "\\N") {
    chunk.ensure(2)
    chunk.buf[chunk.pos] = 92
    chunk.buf[chunk.pos + 1] = 78
    chunk.pos += 2
  } else if (text.length > 0) {
    chunk.ensure(text.length * 3)
    chunk.pos += chunk.buf.write(text, chunk.pos, "utf8")
  }
}

// -----------------------------------------------------------------------------
// the value layer: text representations
// -----------------------------------------------------------------------------

const describe = (value: unknown): string => {
  if (value === null) return "null"
  if (Array.isArray(value)) return "an array"
  if (value instanceof Date) return "a Date"
  if (value instanceof Uint8Array) return "a Uint8Array"
  const type = typeof value
  return type === "object" ? `an object (${Object.prototype.toString.call(value).slice(8, -1)})` : `a ${type}`
}

const wrongType = (value: unknown, expected: string, type: string): never => {
  throw new EncodeFailure(`expected ${expected} for ${type}, got ${describe(value)}`)
}

const INT32_MIN = -2147483648
const INT32_MAX = 2147483647
const INT64_MIN = BigInt("-9223372036854775808")
const INT64_MAX = BigInt("9223372036854775807")
const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER)
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER)

const checkInteger = (value: unknown, type: string, min: number, max: number): number => {
  if (typeof value === "bigint") {
    if (value < BigInt(min) || value > BigInt(max)) throw new EncodeFailure(`${value} is out of range for ${type}`)
    return Number(value)
  }
  if (typeof value !== "number") return wrongType(value, "an integer", type)
  if (!Number.isInteger(value)) throw new EncodeFailure(`${value} is not an integer (${type})`)
  if (value < min || value > max) throw new EncodeFailure(`${value} is out of range for ${type}`)
  return value
}

const checkInt8 = (value: unknown): bigint | number => {
  if (typeof value === "bigint") {
    if (value < INT64_MIN || value > INT64_MAX) throw new EncodeFailure(`${value} is out of range for int8`)
    return value
  }
  if (typeof value !== "number") return wrongType(value, "a bigint or an integer", "int8")
  if (!Number.isSafeInteger(value)) {
    throw new EncodeFailure(`${value} is not a safe integer (int8: pass a bigint)`)
  }
  return value
}

const floatText = (value: number): string =>
  value === Number.POSITIVE_INFINITY ? "Infinity" : value === Number.NEGATIVE_INFINITY ? "-Infinity" : String(value)

const numericPattern = /^\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*$|^\s*(?:NaN|[+-]?Infinity)\s*$/i

const numericText = (value: unknown): string => {
  if (typeof value === "string") {
    if (!numericPattern.test(value)) throw new EncodeFailure(`"${value}" is not a valid numeric`)
    return value
  }
  if (typeof value === "number") return floatText(value)
  if (typeof value === "bigint") return value.toString()
  if (PgValue.isParameter(value)) return numericText(value.value)
  return wrongType(value, "a decimal string, number or bigint", "numeric")
}

const twoDigits = Array.from({ length: 100 }, (_, n) => (n < 10 ? "0" : "") + n)
const threeDigits = Array.from({ length: 1000 }, (_, n) => String(n).padStart(3, "0"))

/** The civil date of a day count since 1970-01-01 (Howard Hinnant's algorithm). */
const civil = (days: number, out: Int32Array): void => {
  const z = days + 719468
  const era = Math.floor(z / 146097)
  const doe = z - era * 146097
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365)
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100))
  const mp = Math.floor((5 * doy + 2) / 153)
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1
  const month = mp < 10 ? mp + 3 : mp - 9
  out[0] = yoe + era * 400 + (month <= 2 ? 1 : 0)
  out[1] = month
  out[2] = day
}

const civilScratch = new Int32Array(3)

/** `YYYY-MM-DD`, BC years as PostgreSQL writes them (`0044-03-15 BC` is returned as date + suffix). */
const dateParts = (days: number): { readonly date: string; readonly bc: boolean } => {
  civil(days, civilScratch)
  const year = civilScratch[0]
  const bc = year <= 0
  const shown = bc ? 1 - year : year
  const yearText = shown < 10000 ? twoDigits[(shown / 100) | 0] + twoDigits[shown % 100] : String(shown)
  return { date: `${yearText}-${twoDigits[civilScratch[1]]}-${twoDigits[civilScratch[2]]}`, bc }
}

const MS_PER_DAY = 86_400_000

const timestampMillis = (value: unknown, type: string): number => {
  if (value instanceof Date) {
    const ms = value.getTime()
    if (Number.isNaN(ms)) throw new EncodeFailure(`an invalid Date cannot be sent as ${type}`)
    return ms
  }
  if (typeof value === "number") {
    if (Number.isNaN(value)) throw new EncodeFailure(`NaN cannot be sent as ${type}`)
    return value
  }
  if (PgValue.isParameter(value)) return timestampMillis(value.value, type)
  return wrongType(value, "a Date or epoch milliseconds", type)
}

/** The text of a timestamp: UTC fields, with `+00` for timestamptz. */
export const timestampText = (ms: number, zone: boolean): string => {
  if (ms === Number.POSITIVE_INFINITY) return "infinity"
  if (ms === Number.NEGATIVE_INFINITY) return "-infinity"
  const days = Math.floor(ms / MS_PER_DAY)
  let rest = ms - days * MS_PER_DAY
  const { bc, date } = dateParts(days)
  const hours = Math.floor(rest / 3_600_000)
  rest -= hours * 3_600_000
  const minutes = Math.floor(rest / 60_000)
  rest -= minutes * 60_000
  const seconds = Math.floor(rest / 1000)
  const millis = Math.floor(rest - seconds * 1000)
  let text = `${date} ${twoDigits[hours]}:${twoDigits[minutes]}:${twoDigits[seconds]}`
  if (millis !== 0) text += `.${threeDigits[millis]}`
  if (zone) text += "+00"
  return bc ? `${text} BC` : text
}

/**
 * Writes a timestamp straight into the chunk for years 1–9999 (the common
 * case); anything else goes through `timestampText`.
 */
const writeTimestamp = (chunk: Chunk, ms: number, zone: boolean, dialect: Dialect): void => {
  // 0001-01-01 to 9999-12-31 in epoch milliseconds.
  if (!dialect.plain || !(ms >= -62_135_596_800_000 && ms < 253_402_300_800_000)) {
    return writePlain(chunk, timestampText(ms, zone), dialect)
  }
  const days = Math.floor(ms / MS_PER_DAY)
  let rest = ms - days * MS_PER_DAY
  civil(days, civilScratch)
  const year = civilScratch[0]
  chunk.ensure(30)
  const buf = chunk.buf
  let pos = chunk.pos
  buf[pos] = 48 + ((year / 1000) | 0)
  buf[pos + 1] = 48 + (((year / 100) | 0) % 10)
  buf[pos + 2] = 48 + (((year / 10) | 0) % 10)
  buf[pos + 3] = 48 + (year % 10)
  buf[pos + 4] = 45
  const month = civilScratch[1]
  buf[pos + 5] = 48 + ((month / 10) | 0)
  buf[pos + 6] = 48 + (month % 10)
  buf[pos + 7] = 45
  const day = civilScratch[2]
  buf[pos + 8] = 48 + ((day / 10) | 0)
  buf[pos + 9] = 48 + (day % 10)
  buf[pos + 10] = 32
  const hours = Math.floor(rest / 3_600_000)
  rest -= hours * 3_600_000
  const minutes = Math.floor(rest / 60_000)
  rest -= minutes * 60_000
  const seconds = Math.floor(rest / 1000)
  const millis = Math.floor(rest - seconds * 1000)
  buf[pos + 11] = 48 + ((hours / 10) | 0)
  buf[pos + 12] = 48 + (hours % 10)
  buf[pos + 13] = 58
  buf[pos + 14] = 48 + ((minutes / 10) | 0)
  buf[pos + 15] = 48 + (minutes % 10)
  buf[pos + 16] = 58
  buf[pos + 17] = 48 + ((seconds / 10) | 0)
  buf[pos + 18] = 48 + (seconds % 10)
  pos += 19
  if (millis !== 0) {
    buf[pos] = 46
    buf[pos + 1] = 48 + ((millis / 100) | 0)
    buf[pos + 2] = 48 + (((millis / 10) | 0) % 10)
    buf[pos + 3] = 48 + (millis % 10)
    pos += 4
  }
  if (zone) {
    buf[pos] = 43
    buf[pos + 1] = 48
    buf[pos + 2] = 48
    pos += 3
  }
  chunk.pos = pos
}

/** The UTC date of a Date as `YYYY-MM-DD`, years before 1 AD astronomical (`-0043-03-15`). */
export const isoDate = (value: Date): string => {
  const ms = value.getTime()
  if (Number.isNaN(ms)) throw new EncodeFailure("an invalid Date cannot be sent as date")
  civil(Math.floor(ms / MS_PER_DAY), civilScratch)
  const year = civilScratch[0]
  const yearText = year < 0 ? `-${String(-year).padStart(4, "0")}` : String(year).padStart(4, "0")
  return `${yearText}-${twoDigits[civilScratch[1]]}-${twoDigits[civilScratch[2]]}`
}

const astronomicalDate = /^(-?)(\d{4,})(-\d\d-\d\d)$/

const dateText = (value: unknown): string => {
  if (typeof value === "string") {
    // Years before 1 AD as the decoders give them (astronomical: 0000 is 1 BC, -0043 is 44 BC).
    const match = astronomicalDate.exec(value)
    if (match === null) return value
    const year = Number(match[2])
    if (match[1] === "") return year === 0 ? `0001${match[3]} BC` : value
    return `${String(year + 1).padStart(4, "0")}${match[3]} BC`
  }
  if (value instanceof Date) return dateText(isoDate(value))
  if (PgValue.isParameter(value)) return dateText(value.value)
  return wrongType(value, "a YYYY-MM-DD string or a Date", "date")
}

const MICROS_PER_SECOND = BigInt(1_000_000)
const MICROS_PER_MINUTE = BigInt(60_000_000)
const MICROS_PER_HOUR = BigInt(3_600_000_000)
const BIG_ZERO = BigInt(0)

/** `[-]H:MM:SS.ffffff` of a microsecond count (hours unbounded). */
const clockText = (micros: bigint): string => {
  const negative = micros < BIG_ZERO
  let rest = negative ? -micros : micros
  const hours = rest / MICROS_PER_HOUR
  rest -= hours * MICROS_PER_HOUR
  const minutes = Number(rest / MICROS_PER_MINUTE)
  rest -= BigInt(minutes) * MICROS_PER_MINUTE
  const seconds = Number(rest / MICROS_PER_SECOND)
  const fraction = Number(rest - BigInt(seconds) * MICROS_PER_SECOND)
  const base = `${negative ? "-" : ""}${hours < 10 ? "0" : ""}${hours}:${twoDigits[minutes]}:${twoDigits[seconds]}`
  return fraction === 0 ? base : `${base}.${String(fraction).padStart(6, "0")}`
}

const timeText = (value: unknown): string => {
  if (typeof value === "string") return value
  if (PgValue.isParameter(value)) return timeText(value.value)
  const micros = typeof value === "bigint"
    ? value
    : typeof value === "number" && Number.isSafeInteger(value)
    ? BigInt(value)
    : wrongType(value, "microseconds since midnight (bigint)", "time")
  if (micros < BIG_ZERO || micros > BigInt(86_400_000_000)) throw new EncodeFailure(`time out of range: ${micros}`)
  return clockText(micros)
}

const intervalText = (value: unknown): string => {
  if (typeof value === "string") return value
  if (PgValue.isParameter(value)) return intervalText(value.value)
  if (typeof value !== "object" || value === null) return wrongType(value, "{ months, days, microseconds }", "interval")
  const interval = value as PgValue.Interval
  const months = checkInteger(interval.months, "interval months", INT32_MIN, INT32_MAX)
  const days = checkInteger(interval.days, "interval days", INT32_MIN, INT32_MAX)
  const raw: unknown = interval.microseconds
  const micros = typeof raw === "bigint"
    ? raw
    : typeof raw === "number" && Number.isSafeInteger(raw)
    ? BigInt(raw)
    : wrongType(raw, "a bigint", "interval microseconds")
  if (micros < INT64_MIN || micros > INT64_MAX) throw new EncodeFailure(`interval microseconds out of range: ${micros}`)
  return `${months} mons ${days} days ${clockText(micros)}`
}

const hexDigits = "0123456789abcdef"
const hexPairs = Array.from({ length: 256 }, (_, n) => hexDigits[n >> 4] + hexDigits[n & 15])

const byteaText = (value: unknown): string => {
  if (!(value instanceof Uint8Array)) {
    if (PgValue.isParameter(value)) return byteaText(value.value)
    return wrongType(value, "a Uint8Array", "bytea")
  }
  let text = "\\x"
  for (let i = 0; i < value.length; i++) text += hexPairs[value[i]]
  return text
}

/** Hex bytea straight into the chunk (`\\x…` in text format, `\x…` in CSV). */
const writeBytea = (chunk: Chunk, value: Uint8Array, dialect: Dialect): void => {
  if (!dialect.plain) return writeField(chunk, byteaText(value), dialect)
  const n = value.length
  chunk.ensure(n * 2 + 3)
  const buf = chunk.buf
  let pos = chunk.pos
  buf[pos++] = 92
  if (!dialect.csv) buf[pos++] = 92
  buf[pos++] = 120
  for (let i = 0; i < n; i++) {
    const byte = value[i]
    buf[pos++] = hexDigits.charCodeAt(byte >> 4)
    buf[pos++] = hexDigits.charCodeAt(byte & 15)
  }
  chunk.pos = pos
}

const jsonText = (value: unknown): string => {
  const text = JSON.stringify(PgValue.isParameter(value) ? value.value : value, (_key, inner: unknown) =>
    typeof inner === "bigint" ? inner.toString() : inner)
  if (text === undefined) throw new EncodeFailure(`${describe(value)} cannot be serialised as JSON`)
  return text
}

const stringText = (value: unknown, type: string): string => {
  if (typeof value === "string") return value
  if (PgValue.isParameter(value)) return stringText(value.value, type)
  return wrongType(value, "a string", type)
}

const boolText = (value: unknown): string => {
  if (typeof value === "boolean") return value ? "t" : "f"
  if (PgValue.isParameter(value)) return boolText(value.value)
  return wrongType(value, "a boolean", "bool")
}

/**
 * Checks the shape of a (possibly nested) array; returns its dimensions.
 * With `flat` (JSON elements, whose own arrays are values) it has one.
 */
export const arrayDimensions = (value: ReadonlyArray<unknown>, flat = false): Array<number> => {
  const dims: Array<number> = []
  let level: unknown = value
  while (Array.isArray(level) && !(flat && dims.length === 1)) {
    dims.push(level.length)
    if (level.length === 0) break
    level = level[0]
  }
  const check = (array: ReadonlyArray<unknown>, depth: number): void => {
    if (array.length !== dims[depth]) throw new EncodeFailure("nested lists have inconsistent lengths")
    const last = depth === dims.length - 1
    for (const element of array) {
      if (!(flat && last) && Array.isArray(element) === last) {
        throw new EncodeFailure("nested lists have inconsistent depths")
      }
      if (!last) check(element as ReadonlyArray<unknown>, depth + 1)
    }
  }
  check(value, 0)
  return dims
}

const needsArrayQuotes = /[{}",\\\s]/

const arrayElementText = (text: string): string =>
  text === "" || needsArrayQuotes.test(text) || text.toUpperCase() === "NULL"
    ? `"${text.replace(/["\\]/g, "\\$&")}"`
    : text

/** An array literal (`{1,NULL,"a b"}`, nested for several dimensions). */
const arrayText = (value: unknown, element: (value: unknown) => string, type: string, flat = false): string => {
  if (PgValue.isParameter(value)) return arrayText(value.value, element, type, flat)
  if (!Array.isArray(value)) return wrongType(value, "an array", type)
  const dims = arrayDimensions(value, flat)
  if (dims.includes(0)) return "{}"
  const level = (array: ReadonlyArray<unknown>, depth: number): string => {
    let text = "{"
    for (let i = 0; i < array.length; i++) {
      if (i > 0) text += ","
      const item = array[i]
      if (depth < dims.length - 1) text += level(item as ReadonlyArray<unknown>, depth + 1)
      else text += item === null || item === undefined ? "NULL" : arrayElementText(element(item))
    }
    return `${text}}`
  }
  return level(value, 0)
}

/** The text of a non-NULL value of type `oid` (as the server's `::text` would print it). */
export const textOf = (value: unknown, oid: number): string => {
  switch (oid) {
    case OID.bool:
      return boolText(value)
    case OID.int2:
      return String(checkInteger(PgValue.isParameter(value) ? value.value : value, "int2", -32768, 32767))
    case OID.int4:
      return String(checkInteger(PgValue.isParameter(value) ? value.value : value, "int4", INT32_MIN, INT32_MAX))
    case OID.oid:
      return String(checkInteger(PgValue.isParameter(value) ? value.value : value, "oid", 0, 4294967295))
    case OID.int8:
      return String(checkInt8(PgValue.isParameter(value) ? value.value : value))
    case OID.float4:
    case OID.float8: {
      const number = PgValue.isParameter(value) ? value.value : value
      return typeof number === "number" ? floatText(number) : wrongType(number, "a number", "float")
    }
    case OID.numeric:
      return numericText(value)
    case OID.bytea:
      return byteaText(value)
    case OID.json:
    case OID.jsonb:
      return jsonText(value)
    case OID.date:
      return dateText(value)
    case OID.time:
      return timeText(value)
    case OID.timestamp:
      return timestampText(timestampMillis(value, "timestamp"), false)
    case OID.timestamptz:
      return timestampText(timestampMillis(value, "timestamptz"), true)
    case OID.interval:
      return intervalText(value)
    case OID.text:
    case OID.varchar:
    case OID.bpchar:
    case OID.name:
    case OID.uuid:
    case OID.inet:
    case OID.cidr:
    case OID.timetz:
      return stringText(value, typeName(oid))
  }
  const element = elementOf(oid)
  if (element !== undefined) {
    return arrayText(value, (item) => textOf(item, element), "an array", element === OID.json || element === OID.jsonb)
  }
  return untypedText(value)
}

const typeName = (oid: number): string => {
  for (const [name, known] of Object.entries(OID)) if (known === oid) return name
  return `type ${oid}`
}

const isPlainObject = (value: object): boolean => {
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

/** The text of a value written without a declared type, inferred from its JavaScript type. */
export const untypedText = (value: unknown): string => {
  switch (typeof value) {
    case "string":
      return value
    case "number":
      return floatText(value)
    case "bigint":
      return value.toString()
    case "boolean":
      return value ? "t" : "f"
    case "object": {
      if (value === null) break
      if (value instanceof Date) return timestampText(timestampMillis(value, "timestamptz"), true)
      if (value instanceof Uint8Array) return byteaText(value)
      if (Array.isArray(value)) return arrayText(value, untypedText, "an array")
      if (PgValue.isParameter(value)) {
        return value.oid === 0 ? String(value.value) : textOf(value.value, value.oid)
      }
      if (isPlainObject(value)) return jsonText(value)
      break
    }
  }
  throw new EncodeFailure(`cannot write ${describe(value)} to COPY without a declared type`)
}

// -----------------------------------------------------------------------------
// column encoders
// -----------------------------------------------------------------------------

/** Writes one non-NULL field. */
export type TextEncoder = (value: unknown, chunk: Chunk) => void

/** The encoder of a column of type `oid` (`undefined`: infer from each value). */
export const textEncoder = (oid: number | undefined, dialect: Dialect): TextEncoder => {
  const string: TextEncoder = dialect.csv
    ? (value, chunk) => writeCsvString(chunk, value as string, dialect)
    : (value, chunk) => writeTextString(chunk, value as string, dialect.delimiter)
  if (oid === undefined) return untypedEncoder(dialect, string)
  if (isTextLike(oid)) {
    return (value, chunk) => string(typeof value === "string" ? value : stringText(value, typeName(oid)), chunk)
  }
  switch (oid) {
    case OID.int2:
    case OID.int4:
    case OID.oid: {
      const [min, max] = oid === OID.int2 ? [-32768, 32767] : oid === OID.int4 ? [INT32_MIN, INT32_MAX] : [0, 4294967295]
      const name = typeName(oid)
      return (value, chunk) => {
        const number = checkInteger(PgValue.isParameter(value) ? value.value : value, name, min, max)
        if (dialect.plain) chunk.integer(number)
        else writeField(chunk, String(number), dialect)
      }
    }
    case OID.int8:
      return (value, chunk) => {
        const number = checkInt8(PgValue.isParameter(value) ? value.value : value)
        if (!dialect.plain) return writeField(chunk, String(number), dialect)
        if (typeof number === "number") return chunk.integer(number)
        if (number >= MIN_SAFE && number <= MAX_SAFE) return chunk.integer(Number(number))
        chunk.ascii(number.toString())
      }
    case OID.float4:
    case OID.float8:
      return (value, chunk) => {
        const number = PgValue.isParameter(value) ? value.value : value
        if (typeof number !== "number") wrongType(number, "a number", typeName(oid))
        writePlain(chunk, floatText(number as number), dialect)
      }
    case OID.bool:
      return (value, chunk) => writePlain(chunk, boolText(value), dialect)
    case OID.timestamp:
    case OID.timestamptz: {
      const zone = oid === OID.timestamptz
      const name = typeName(oid)
      return (value, chunk) => writeTimestamp(chunk, timestampMillis(value, name), zone, dialect)
    }
    case OID.bytea:
      return (value, chunk) => {
        if (value instanceof Uint8Array) writeBytea(chunk, value, dialect)
        else writeField(chunk, byteaText(value), dialect)
      }
  }
  return (value, chunk) => writeField(chunk, textOf(value, oid), dialect)
}

const untypedEncoder = (dialect: Dialect, string: TextEncoder): TextEncoder => (value, chunk) => {
  switch (typeof value) {
    case "string":
      return string(value, chunk)
    case "number":
      if (Number.isSafeInteger(value) && dialect.plain) return chunk.integer(value)
      return writePlain(chunk, floatText(value), dialect)
    case "bigint":
      return writePlain(chunk, value.toString(), dialect)
    case "boolean":
      return writePlain(chunk, value ? "t" : "f", dialect)
    case "object":
      if (value instanceof Date) return writeTimestamp(chunk, timestampMillis(value, "timestamptz"), true, dialect)
      if (value instanceof Uint8Array) return writeBytea(chunk, value, dialect)
  }
  writeField(chunk, untypedText(value), dialect)
}
