/**
 * Text-format decoders, keyed by type OID, for the results of the simple
 * query protocol (and text COPY).
 *
 * The extended protocol reads results in binary through `PgTypes`; these
 * decoders turn the text PostgreSQL prints for the same value into exactly
 * the JavaScript value the binary decoder produces, so a query gives the same
 * types whichever protocol ran it:
 *
 * | PostgreSQL                                  | JavaScript                                   |
 * | ------------------------------------------- | -------------------------------------------- |
 * | bool                                        | boolean                                      |
 * | int2, int4, oid, float4, float8             | number (float4 rounded to single precision)  |
 * | int8                                        | bigint                                       |
 * | numeric                                     | string (exact; `NaN`, `Infinity`, `-Infinity`) |
 * | text, varchar, bpchar, name, unknown, …     | string                                       |
 * | bytea (hex or legacy escape output)         | Uint8Array                                   |
 * | date                                        | string `YYYY-MM-DD` (BC as a negative astronomical year, `infinity`) |
 * | time                                        | bigint microseconds since midnight           |
 * | timetz                                      | string `HH:MM:SS[.ffffff]±HH:MM`             |
 * | timestamp, timestamptz                      | Date (ms, truncated toward 2000-01-01; infinities are an invalid Date) |
 * | interval                                    | `PgTypes.Interval` (months, days, bigint µs) |
 * | uuid                                        | string                                       |
 * | json, jsonb                                 | parsed JSON                                  |
 * | inet, cidr                                  | string, formatted as the binary decoder does |
 * | arrays of the above                         | arrays (multi-dimensional → nested arrays)   |
 * | any other OID                               | the text itself                              |
 *
 * Dates and timestamps are read in the `ISO` DateStyle (PostgreSQL's
 * default); intervals in every IntervalStyle (`postgres`, `postgres_verbose`,
 * `sql_standard`, `iso_8601`). Two deliberate differences from the binary
 * path: `regclass` (and other reg* types) print as names, so they decode as
 * strings; and arrays with other lower bounds or several dimensions decode
 * (bounds dropped, dimensions nested) where the binary decoder refuses them.
 *
 * A malformed value of a known type throws `PgTypes.CodecError`, as the
 * binary field reader does.
 *
 * @since 0.1.0
 */
import * as PgTypes from "@effect/sql-pg/PgTypes"
import * as Result from "effect/Result"

/**
 * Turns the text of one non-NULL field into its JavaScript value.
 *
 * @since 0.1.0
 */
export type TextValueDecoder = (text: string) => unknown

const fail = (message: string): never => {
  throw new PgTypes.CodecError({ message })
}

const identity = (text: string): string => text

const OID = PgTypes.OID

// -----------------------------------------------------------------------------
// numbers, booleans
// -----------------------------------------------------------------------------

const decodeInteger = (text: string): number => {
  const value = +text
  return Number.isInteger(value) && text.length > 0 ? value : fail(`Invalid integer "${text}"`)
}

const decodeInt8 = (text: string): bigint => {
  if (text.length === 0) return fail("Invalid int8 \"\"")
  try {
    return BigInt(text)
  } catch {
    return fail(`Invalid int8 "${text}"`)
  }
}

const decodeFloat8 = (text: string): number => {
  const value = +text
  // `+""` is 0 and anything unparsable is NaN; PostgreSQL prints NaN as "NaN".
  if ((value !== value && text !== "NaN") || text.length === 0) return fail(`Invalid float "${text}"`)
  return value
}

const decodeFloat4 = (text: string): number => Math.fround(decodeFloat8(text))

const decodeBool = (text: string): boolean => {
  switch (text) {
    case "t":
    case "true":
      return true
    case "f":
    case "false":
      return false
    default:
      return fail(`Invalid bool "${text}"`)
  }
}

// -----------------------------------------------------------------------------
// bytea
// -----------------------------------------------------------------------------

/** Value of each hex digit's character code, -1 for every other ASCII code. */
const hexValue = (() => {
  const table = new Int8Array(128).fill(-1)
  for (let digit = 0; digit < 16; digit++) {
    table["0123456789abcdef".charCodeAt(digit)] = digit
    table["0123456789ABCDEF".charCodeAt(digit)] = digit
  }
  return table
})()

const hexAt = (text: string, at: number): number => {
  const code = text.charCodeAt(at)
  return code < 128 ? hexValue[code] : -1
}

const isOctal = (code: number): boolean => code >= 48 && code <= 55

const decodeBytea = (text: string): Uint8Array => {
  const length = text.length
  if (text.charCodeAt(0) === 92 && text.charCodeAt(1) === 120) {
    // hex output: "\x" then two digits a byte (bytea_output = hex, the default)
    if ((length & 1) !== 0) return fail("Invalid bytea hex text: odd number of digits")
    const bytes = new Uint8Array((length - 2) >> 1)
    for (let at = 2, index = 0; at < length; at += 2, index++) {
      const high = hexAt(text, at)
      const low = hexAt(text, at + 1)
      if ((high | low) < 0) return fail(`Invalid bytea hex digit at ${at}`)
      bytes[index] = (high << 4) | low
    }
    return bytes
  }
  // escape output: printable bytes as is, "\\" for a backslash, "\ooo" otherwise
  const bytes = new Uint8Array(length)
  let size = 0
  for (let at = 0; at < length; at++) {
    const code = text.charCodeAt(at)
    if (code === 92) {
      const next = text.charCodeAt(at + 1)
      if (next === 92) {
        bytes[size++] = 92
        at++
      } else if (isOctal(next) && isOctal(text.charCodeAt(at + 2)) && isOctal(text.charCodeAt(at + 3))) {
        const value = ((next - 48) << 6) | ((text.charCodeAt(at + 2) - 48) << 3) | (text.charCodeAt(at + 3) - 48)
        if (value > 255) return fail("Invalid bytea escape")
        bytes[size++] = value
        at += 3
      } else {
        return fail("Invalid bytea escape")
      }
    } else if (code > 255) {
      return fail("Invalid bytea escape text")
    } else {
      bytes[size++] = code
    }
  }
  return size === length ? bytes : bytes.slice(0, size)
}

// -----------------------------------------------------------------------------
// calendar
// -----------------------------------------------------------------------------

/** Milliseconds from the Unix epoch to the PostgreSQL epoch (2000-01-01). */
export const PG_EPOCH_MS = 946_684_800_000

/** Days from 1970-01-01 to a proleptic Gregorian date (astronomical year numbering). */
export const daysFromCivil = (year: number, month: number, day: number): number => {
  const y = month <= 2 ? year - 1 : year
  const era = Math.floor(y / 400)
  const yearOfEra = y - era * 400
  const shiftedMonth = month > 2 ? month - 3 : month + 9
  const dayOfYear = Math.floor((153 * shiftedMonth + 2) / 5) + day - 1
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear
  return era * 146097 + dayOfEra - 719468
}

/** The two-digit number at `at`, or -1. */
const twoDigitsAt = (text: string, at: number): number => {
  const tens = text.charCodeAt(at) - 48
  const units = text.charCodeAt(at + 1) - 48
  return tens >= 0 && tens <= 9 && units >= 0 && units <= 9 ? tens * 10 + units : -1
}

const endsWithBC = (text: string): boolean => {
  const length = text.length
  return length > 3 && text.charCodeAt(length - 3) === 32 && text.charCodeAt(length - 2) === 66 &&
    text.charCodeAt(length - 1) === 67
}

/** Position after the year digits starting at 0, or -1 when there are none. */
const yearEnd = (text: string, end: number): number => {
  let at = 0
  while (at < end) {
    const digit = text.charCodeAt(at) - 48
    if (digit < 0 || digit > 9) break
    at++
  }
  return at === 0 ? -1 : at
}

const pad4 = (value: number): string => value < 1000 ? String(value).padStart(4, "0") : String(value)

/**
 * `date` text in the ISO DateStyle. The binary decoder prints years before 1
 * AD with astronomical numbering (1 BC is year 0, 2 BC is -0001), so a BC
 * date is renumbered the same way.
 */
const decodeDate = (text: string): string => {
  if (text === "infinity" || text === "-infinity") return text
  const bc = endsWithBC(text)
  const end = bc ? text.length - 3 : text.length
  const at = yearEnd(text, end)
  if (
    at === -1 || end !== at + 6 || text.charCodeAt(at) !== 45 || text.charCodeAt(at + 3) !== 45 ||
    twoDigitsAt(text, at + 1) === -1 || twoDigitsAt(text, at + 4) === -1
  ) {
    return fail(`Expected an ISO date (DateStyle ISO), received "${text}"`)
  }
  if (!bc) return text
  const year = Number(text.slice(0, at))
  const rest = text.slice(at, end)
  return year === 1 ? `0000${rest}` : `-${pad4(year - 1)}${rest}`
}

// Results of `readClock`, kept in module state so parsing allocates nothing.
let clockHours = 0
/** Minutes, seconds and fraction of a clock reading, in microseconds. */
let clockMicros = 0

/**
 * Reads `H+:MM[:SS[.ffffff]]` from `text[start, end)` into `clockHours` and
 * `clockMicros`. Fraction digits past the sixth are dropped. Returns false
 * when the text is not a clock reading.
 */
const readClock = (text: string, start: number, end: number): boolean => {
  let at = start
  let hours = 0
  while (at < end) {
    const digit = text.charCodeAt(at) - 48
    if (digit < 0 || digit > 9) break
    hours = hours * 10 + digit
    at++
  }
  if (at === start || text.charCodeAt(at) !== 58 || at + 3 > end) return false
  const minutes = twoDigitsAt(text, at + 1)
  if (minutes === -1) return false
  at += 3
  let seconds = 0
  let fraction = 0
  if (at < end) {
    if (text.charCodeAt(at) !== 58 || at + 3 > end) return false
    seconds = twoDigitsAt(text, at + 1)
    if (seconds === -1) return false
    at += 3
    if (at < end) {
      if (text.charCodeAt(at) !== 46) return false
      at++
      let scale = 100_000
      const fractionStart = at
      while (at < end) {
        const digit = text.charCodeAt(at) - 48
        if (digit < 0 || digit > 9) return false
        fraction += digit * scale
        scale = scale / 10
        at++
      }
      if (at === fractionStart) return false
      fraction = Math.trunc(fraction)
    }
  }
  clockHours = hours
  clockMicros = minutes * 60_000_000 + seconds * 1_000_000 + fraction
  return true
}

/** Seconds east of UTC of `±HH[:MM[:SS]]` in `text[start, end)`, or NaN. */
const readZone = (text: string, start: number, end: number): number => {
  const sign = text.charCodeAt(start)
  if (sign !== 43 && sign !== 45) return Number.NaN
  const hours = twoDigitsAt(text, start + 1)
  if (hours === -1) return Number.NaN
  let seconds = hours * 3600
  let at = start + 3
  if (at < end) {
    if (text.charCodeAt(at) !== 58) return Number.NaN
    const minutes = twoDigitsAt(text, at + 1)
    if (minutes === -1) return Number.NaN
    seconds += minutes * 60
    at += 3
    if (at < end) {
      if (text.charCodeAt(at) !== 58) return Number.NaN
      const secs = twoDigitsAt(text, at + 1)
      if (secs === -1) return Number.NaN
      seconds += secs
      at += 3
    }
  }
  if (at !== end) return Number.NaN
  return sign === 45 ? -seconds : seconds
}

/**
 * Epoch milliseconds of an ISO-DateStyle `timestamp` / `timestamptz` text:
 * `YYYY-MM-DD HH:MM:SS[.ffffff][±HH[:MM[:SS]]][ BC]`. Sub-millisecond digits
 * are truncated toward the PostgreSQL epoch, as the binary decoder truncates
 * its microseconds. NaN for the infinities.
 */
const timestampMillis = (text: string, withZone: boolean): number => {
  const first = text.charCodeAt(0)
  if ((first === 105 && text === "infinity") || (first === 45 && text === "-infinity")) return Number.NaN
  const bc = endsWithBC(text)
  const end = bc ? text.length - 3 : text.length
  const at = yearEnd(text, end)
  const month = twoDigitsAt(text, at + 1)
  const day = twoDigitsAt(text, at + 4)
  const separator = text.charCodeAt(at + 6)
  if (
    at === -1 || text.charCodeAt(at) !== 45 || text.charCodeAt(at + 3) !== 45 || month === -1 || day === -1 ||
    (separator !== 32 && separator !== 84)
  ) {
    return fail(`Expected an ISO timestamp (DateStyle ISO), received "${text}"`)
  }
  // The clock ends where the zone starts.
  let zoneStart = end
  for (let index = at + 7; index < end; index++) {
    const code = text.charCodeAt(index)
    if (code === 43 || code === 45) {
      zoneStart = index
      break
    }
  }
  if (!readClock(text, at + 7, zoneStart)) return fail(`Invalid timestamp "${text}"`)
  let zoneSeconds = 0
  if (zoneStart < end) {
    zoneSeconds = withZone ? readZone(text, zoneStart, end) : Number.NaN
    if (zoneSeconds !== zoneSeconds) return fail(`Invalid timestamp zone in "${text}"`)
  }
  const digits = Number(text.slice(0, at))
  const year = bc ? 1 - digits : digits
  const micros = clockMicros
  const subMillis = micros % 1000
  let ms = daysFromCivil(year, month, day) * 86_400_000 + (clockHours * 3600 - zoneSeconds) * 1000 +
    (micros - subMillis) / 1000
  if (subMillis > 0 && ms < PG_EPOCH_MS) ms += 1
  return ms
}

const decodeTimestamp = (text: string): Date => new Date(timestampMillis(text, false))

const decodeTimestamptz = (text: string): Date => new Date(timestampMillis(text, true))

/** Microseconds since midnight of `time` text. */
const decodeTime = (text: string): bigint => {
  if (!readClock(text, 0, text.length) || clockHours > 24) return fail(`Invalid time "${text}"`)
  const micros = clockHours * 3_600_000_000 + clockMicros
  return micros <= 86_400_000_000 ? BigInt(micros) : fail(`Invalid time "${text}"`)
}

const pad2 = (value: number): string => value < 10 ? `0${value}` : String(value)

/**
 * `timetz` in the binary decoder's shape: the time with trailing fraction
 * zeros dropped, then the zone as `±HH:MM` (zone seconds are dropped, as the
 * binary decoder drops them).
 */
const decodeTimetz = (text: string): string => {
  const end = text.length
  let zoneStart = -1
  for (let index = 5; index < end; index++) {
    const code = text.charCodeAt(index)
    if (code === 43 || code === 45) {
      zoneStart = index
      break
    }
  }
  if (zoneStart === -1 || !readClock(text, 0, zoneStart) || clockHours > 24) return fail(`Invalid timetz "${text}"`)
  const east = readZone(text, zoneStart, end)
  if (east !== east) return fail(`Invalid timetz zone in "${text}"`)
  const micros = clockHours * 3_600_000_000 + clockMicros
  const seconds = Math.trunc(micros / 1_000_000)
  const fraction = micros - seconds * 1_000_000
  let result = `${pad2(Math.trunc(seconds / 3600))}:${pad2(Math.trunc(seconds / 60) % 60)}:${pad2(seconds % 60)}`
  if (fraction !== 0) {
    let digits = String(fraction).padStart(6, "0")
    let cut = digits.length
    while (digits.charCodeAt(cut - 1) === 48) cut--
    digits = digits.slice(0, cut)
    result += `.${digits}`
  }
  const total = Math.abs(east)
  return `${result}${east < 0 ? "-" : "+"}${pad2(Math.trunc(total / 3600))}:${pad2(Math.trunc(total / 60) % 60)}`
}

// -----------------------------------------------------------------------------
// interval
// -----------------------------------------------------------------------------

const MICROS_PER_SECOND = BigInt(1_000_000)
const MICROS_PER_MINUTE = BigInt(60_000_000)
const MICROS_PER_HOUR = BigInt(3_600_000_000)
const BIG_ZERO = BigInt(0)

/** Interval units PostgreSQL prints, as (months, days, microseconds) per unit. */
type Unit = "year" | "month" | "week" | "day" | "hour" | "minute" | "second"

const units: Record<string, Unit> = {
  year: "year",
  years: "year",
  mon: "month",
  mons: "month",
  month: "month",
  months: "month",
  week: "week",
  weeks: "week",
  day: "day",
  days: "day",
  hour: "hour",
  hours: "hour",
  min: "minute",
  mins: "minute",
  minute: "minute",
  minutes: "minute",
  sec: "second",
  secs: "second",
  second: "second",
  seconds: "second"
}

const isUnit = (token: string | undefined): boolean => token !== undefined && Object.hasOwn(units, token)

/**
 * Microseconds of a signed decimal number of `unitMicros` (whole units, plus
 * up to six fraction digits of seconds). Undefined when malformed.
 */
const decimalMicros = (token: string, start: number, end: number, unitMicros: bigint): bigint | undefined => {
  let at = start
  let negative = false
  const sign = token.charCodeAt(at)
  if (sign === 45 || sign === 43) {
    negative = sign === 45
    at++
  }
  const wholeStart = at
  while (at < end) {
    const digit = token.charCodeAt(at) - 48
    if (digit < 0 || digit > 9) break
    at++
  }
  if (at === wholeStart) return undefined
  let micros = BigInt(token.slice(wholeStart, at)) * unitMicros
  if (at < end) {
    if (token.charCodeAt(at) !== 46 || unitMicros !== MICROS_PER_SECOND) return undefined
    const fraction = token.slice(at + 1, end)
    if (fraction.length === 0 || !/^\d+$/.test(fraction)) return undefined
    micros += BigInt(fraction.padEnd(6, "0").slice(0, 6))
  }
  return negative ? -micros : micros
}

/** A signed integer token, or undefined. */
const integerToken = (token: string, start: number, end: number): number | undefined => {
  const micros = decimalMicros(token, start, end, BigInt(1))
  return micros === undefined ? undefined : Number(micros)
}

/** A `[±]H+:MM:SS[.ffffff]` token as signed microseconds, or undefined. */
const clockToken = (token: string): bigint | undefined => {
  const sign = token.charCodeAt(0)
  const start = sign === 45 || sign === 43 ? 1 : 0
  if (!readClock(token, start, token.length)) return undefined
  const micros = clockHours < 2_000_000
    ? BigInt(clockHours * 3_600_000_000 + clockMicros)
    : BigInt(clockHours) * MICROS_PER_HOUR + BigInt(clockMicros)
  return sign === 45 ? -micros : micros
}

interface MutableInterval {
  months: number
  days: number
  microseconds: bigint
}

const badInterval = (text: string): never => fail(`Invalid interval "${text}"`)

/** `P1Y2M3DT4H5M6.789S`, each number signed on its own (IntervalStyle iso_8601). */
const decodeIsoInterval = (text: string): MutableInterval => {
  const result: MutableInterval = { months: 0, days: 0, microseconds: BIG_ZERO }
  let inTime = false
  let at = 1
  const end = text.length
  while (at < end) {
    if (text.charCodeAt(at) === 84 /* T */) {
      inTime = true
      at++
      continue
    }
    let designator = at
    while (designator < end) {
      const code = text.charCodeAt(designator)
      if ((code >= 48 && code <= 57) || code === 45 || code === 43 || code === 46) designator++
      else break
    }
    if (designator === at || designator >= end) return badInterval(text)
    const unit = text[designator]
    if (inTime) {
      const micros = decimalMicros(
        text,
        at,
        designator,
        unit === "H" ? MICROS_PER_HOUR : unit === "M" ? MICROS_PER_MINUTE : MICROS_PER_SECOND
      )
      if (micros === undefined || (unit !== "H" && unit !== "M" && unit !== "S")) return badInterval(text)
      result.microseconds += micros
    } else {
      const value = integerToken(text, at, designator)
      if (value === undefined) return badInterval(text)
      if (unit === "Y") result.months += value * 12
      else if (unit === "M") result.months += value
      else if (unit === "W") result.days += value * 7
      else if (unit === "D") result.days += value
      else return badInterval(text)
    }
    at = designator + 1
  }
  return result
}

/**
 * The `postgres` (`1 year 2 mons -3 days +04:05:06`), `postgres_verbose`
 * (`@ 1 year 2 mons 3 days 4 hours 5 mins 6.7 secs ago`) and `sql_standard`
 * (`1-2`, `-3 4:05:06`, `+1-2 -3 +4:05:06`) IntervalStyles.
 */
const decodeWordInterval = (text: string): MutableInterval => {
  const result: MutableInterval = { months: 0, days: 0, microseconds: BIG_ZERO }
  const tokens = text.split(" ").filter((token) => token.length > 0 && token !== "@")
  let ago = false
  // sql_standard writes one leading sign for the whole value when every field
  // has it, and then no sign on the later fields.
  let sqlStandard = false
  let laterSign = false
  for (let index = 0; index < tokens.length; index++) {
    const token = tokens[index]
    if (token === "ago") continue
    if (index > 0 && (token.charCodeAt(0) === 45 || token.charCodeAt(0) === 43)) laterSign = true
    if (isUnit(tokens[index + 1])) index++
    else if (token.indexOf(":") === -1) sqlStandard = true
  }
  const negateUnsigned = sqlStandard && !laterSign && tokens.length > 0 && tokens[0].charCodeAt(0) === 45
  for (let index = 0; index < tokens.length; index++) {
    const token = tokens[index]
    if (token === "ago") {
      ago = true
      continue
    }
    const first = token.charCodeAt(0)
    const negate = negateUnsigned && index > 0 && first !== 45 && first !== 43
    const unit = isUnit(tokens[index + 1]) ? units[tokens[index + 1]] : undefined
    if (unit !== undefined) {
      index++
      if (unit === "hour" || unit === "minute" || unit === "second") {
        const micros = decimalMicros(
          token,
          0,
          token.length,
          unit === "hour" ? MICROS_PER_HOUR : unit === "minute" ? MICROS_PER_MINUTE : MICROS_PER_SECOND
        )
        if (micros === undefined) return badInterval(text)
        result.microseconds += negate ? -micros : micros
      } else {
        const value = integerToken(token, 0, token.length)
        if (value === undefined) return badInterval(text)
        const signed = negate ? -value : value
        if (unit === "year") result.months += signed * 12
        else if (unit === "month") result.months += signed
        else if (unit === "week") result.days += signed * 7
        else result.days += signed
      }
    } else if (token.indexOf(":") !== -1) {
      const micros = clockToken(token)
      if (micros === undefined) return badInterval(text)
      result.microseconds += negate ? -micros : micros
    } else {
      // sql_standard: `Y-M` (one sign for both) or a bare number of days
      const start = first === 45 || first === 43 ? 1 : 0
      const dash = token.indexOf("-", start)
      if (dash === -1) {
        const value = integerToken(token, 0, token.length)
        if (value === undefined) return badInterval(text)
        result.days += negate ? -value : value
      } else {
        const years = integerToken(token, start, dash)
        const months = integerToken(token, dash + 1, token.length)
        if (years === undefined || months === undefined) return badInterval(text)
        const value = years * 12 + months
        result.months += first === 45 !== negate ? -value : value
      }
    }
  }
  if (ago) {
    result.months = -result.months
    result.days = -result.days
    result.microseconds = -result.microseconds
  }
  return result
}

const decodeInterval = (text: string): PgTypes.Interval => {
  const interval = text.charCodeAt(0) === 80 ? decodeIsoInterval(text) : decodeWordInterval(text)
  // -0 would differ from the binary decoder's 0 under Object.is
  if (interval.months === 0) interval.months = 0
  if (interval.days === 0) interval.days = 0
  return interval
}

// -----------------------------------------------------------------------------
// json, network addresses
// -----------------------------------------------------------------------------

const decodeJson = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return fail("Invalid JSON text")
  }
}

/**
 * PostgreSQL and the binary decoder print some IPv6 addresses differently
 * (`::1.2.3.4` against `::102:304`), so the text goes through the same codec
 * the binary path uses.
 */
const networkDecoder = (oid: number): TextValueDecoder => (text) => {
  const encoded = PgTypes.encode(text, oid)
  if (Result.isFailure(encoded)) return fail(encoded.failure.message)
  const decoded = PgTypes.decode(encoded.success, oid, 1)
  return Result.isFailure(decoded) ? fail(decoded.failure.message) : decoded.success
}

// -----------------------------------------------------------------------------
// arrays
// -----------------------------------------------------------------------------

const isSpace = (code: number): boolean => code === 32 || (code >= 9 && code <= 13)

const badArray = (text: string, at: number): never =>
  fail(`Invalid array text at position ${at}: "${text.length > 80 ? text.slice(0, 80) + "…" : text}"`)

/** Parser state for one array literal. */
interface ArrayCursor {
  readonly text: string
  readonly decode: TextValueDecoder
  readonly delimiter: number
  at: number
}

const skipSpaces = (cursor: ArrayCursor): void => {
  const text = cursor.text
  while (cursor.at < text.length && isSpace(text.charCodeAt(cursor.at))) cursor.at++
}

/** Reads a quoted element; `cursor.at` is just past the opening quote. */
const quotedElement = (cursor: ArrayCursor): string => {
  const text = cursor.text
  let start = cursor.at
  let value = ""
  for (let at = start; at < text.length; at++) {
    const code = text.charCodeAt(at)
    if (code === 34) {
      cursor.at = at + 1
      return value + text.slice(start, at)
    }
    if (code === 92) {
      value += text.slice(start, at)
      at++
      start = at
    }
  }
  return badArray(text, text.length)
}

/** Reads an unquoted element up to a delimiter or `}`; null for `NULL`. */
const unquotedElement = (cursor: ArrayCursor): string | null => {
  const text = cursor.text
  const delimiter = cursor.delimiter
  let start = cursor.at
  let value = ""
  let escaped = false
  // Trailing unescaped white space is not part of the element.
  let keep = 0
  let at = start
  for (; at < text.length; at++) {
    const code = text.charCodeAt(at)
    if (code === delimiter || code === 125) break
    if (code === 92) {
      value += text.slice(start, at)
      at++
      start = at
      escaped = true
      keep = value.length + 1
    } else if (code === 123 || code === 34) {
      return badArray(text, at)
    } else if (!isSpace(code)) {
      keep = value.length + at - start + 1
    }
  }
  if (at >= text.length) return badArray(text, at)
  cursor.at = at
  value = (value + text.slice(start, at)).slice(0, keep)
  if (value.length === 0) return badArray(text, at)
  if (
    !escaped && value.length === 4 && (value.charCodeAt(0) | 32) === 110 && (value.charCodeAt(1) | 32) === 117 &&
    (value.charCodeAt(2) | 32) === 108 && (value.charCodeAt(3) | 32) === 108
  ) {
    return null
  }
  return value
}

/** Reads `{…}` with `cursor.at` on the brace, nested levels as nested arrays. */
const arrayLevel = (cursor: ArrayCursor): Array<unknown> => {
  const text = cursor.text
  if (text.charCodeAt(cursor.at) !== 123) return badArray(text, cursor.at)
  cursor.at++
  const values: Array<unknown> = []
  skipSpaces(cursor)
  if (text.charCodeAt(cursor.at) === 125) {
    cursor.at++
    return values
  }
  for (;;) {
    skipSpaces(cursor)
    const code = text.charCodeAt(cursor.at)
    if (code === 123) {
      values.push(arrayLevel(cursor))
    } else if (code === 34) {
      cursor.at++
      values.push(cursor.decode(quotedElement(cursor)))
    } else {
      const element = unquotedElement(cursor)
      values.push(element === null ? null : cursor.decode(element))
    }
    skipSpaces(cursor)
    const next = text.charCodeAt(cursor.at)
    cursor.at++
    if (next === 125) return values
    if (next !== cursor.delimiter) return badArray(text, cursor.at - 1)
  }
}

/**
 * Decodes PostgreSQL array text (`{1,2,NULL}`, `{"a,b","c\"d"}`, `{}`,
 * `[0:1]={1,2}`, `{{1,2},{3,4}}`), applying `decodeElement` to every
 * non-NULL element. Unquoted `NULL` (any case) is `null`; a quoted `"NULL"`
 * is the string. Dimension decorations are dropped; several dimensions give
 * nested arrays. `delimiter` is `,` for every built-in type but `box` (`;`).
 *
 * @since 0.1.0
 */
export const decodeTextArray = (
  text: string,
  decodeElement: TextValueDecoder,
  delimiter: string = ","
): Array<unknown> => {
  const cursor: ArrayCursor = { text, decode: decodeElement, delimiter: delimiter.charCodeAt(0), at: 0 }
  if (text.charCodeAt(0) === 91) {
    // dimension decoration: [lower:upper][…]={…}
    const equals = text.indexOf("=")
    if (equals === -1) return badArray(text, 0)
    cursor.at = equals + 1
  }
  skipSpaces(cursor)
  const values = arrayLevel(cursor)
  skipSpaces(cursor)
  if (cursor.at !== text.length) return badArray(text, cursor.at)
  return values
}

// -----------------------------------------------------------------------------
// the table
// -----------------------------------------------------------------------------

const scalarDecoders: ReadonlyArray<readonly [number, TextValueDecoder]> = [
  [OID.bool, decodeBool],
  [OID.bytea, decodeBytea],
  [OID.name, identity],
  [OID.int8, decodeInt8],
  [OID.int2, decodeInteger],
  [OID.int4, decodeInteger],
  [OID.text, identity],
  [OID.oid, decodeInteger],
  [OID.json, decodeJson],
  [OID.cidr, networkDecoder(OID.cidr)],
  [OID.float4, decodeFloat4],
  [OID.float8, decodeFloat8],
  [OID.inet, networkDecoder(OID.inet)],
  [OID.bpchar, identity],
  [OID.varchar, identity],
  [OID.date, decodeDate],
  [OID.time, decodeTime],
  [OID.timestamp, decodeTimestamp],
  [OID.timestamptz, decodeTimestamptz],
  [OID.interval, decodeInterval],
  [OID.timetz, decodeTimetz],
  [OID.numeric, identity],
  [OID.uuid, identity],
  [OID.jsonb, decodeJson]
]

const arrayElements: ReadonlyArray<readonly [number, number]> = [
  [OID.boolArray, OID.bool],
  [OID.byteaArray, OID.bytea],
  [OID.nameArray, OID.name],
  [OID.int8Array, OID.int8],
  [OID.int2Array, OID.int2],
  [OID.int4Array, OID.int4],
  [OID.textArray, OID.text],
  [OID.oidArray, OID.oid],
  [OID.jsonArray, OID.json],
  [OID.cidrArray, OID.cidr],
  [OID.float4Array, OID.float4],
  [OID.float8Array, OID.float8],
  [OID.inetArray, OID.inet],
  [OID.bpcharArray, OID.bpchar],
  [OID.varcharArray, OID.varchar],
  [OID.dateArray, OID.date],
  [OID.timeArray, OID.time],
  [OID.timestampArray, OID.timestamp],
  [OID.timestamptzArray, OID.timestamptz],
  [OID.intervalArray, OID.interval],
  [OID.timetzArray, OID.timetz],
  [OID.numericArray, OID.numeric],
  [OID.regclassArray, OID.regclass],
  [OID.uuidArray, OID.uuid],
  [OID.jsonbArray, OID.jsonb]
]

/** Every built-in OID is below this; the rest are looked up in the map. */
const TABLE_SIZE = 4096
const table: Array<TextValueDecoder | undefined> = new Array(TABLE_SIZE)
const others = new Map<number, TextValueDecoder>()

const install = (oid: number, decoder: TextValueDecoder): void => {
  if (oid < TABLE_SIZE) table[oid] = decoder
  else others.set(oid, decoder)
}

for (const [oid, decoder] of scalarDecoders) install(oid, decoder)
for (const [arrayOid, elementOid] of arrayElements) {
  const element = (elementOid < TABLE_SIZE ? table[elementOid] : others.get(elementOid)) ?? identity
  install(arrayOid, (text) => decodeTextArray(text, element))
}

/**
 * The text decoder for a column of type `oid`. Unknown OIDs decode to the
 * text itself; a known OID with malformed text throws `PgTypes.CodecError`.
 * Resolve once per column, not once per field.
 *
 * @since 0.1.0
 */
export const textDecoderFor = (oid: number): TextValueDecoder =>
  (oid >= 0 && oid < TABLE_SIZE ? table[oid] : others.get(oid)) ?? identity

/**
 * Decodes the text of one field of type `oid` (a shortcut for
 * `textDecoderFor(oid)(text)`).
 *
 * @since 0.1.0
 */
export const decodeText = (text: string, oid: number): unknown => textDecoderFor(oid)(text)
