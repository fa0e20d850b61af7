/**
 * COPY TO: the bytes of CopyData messages → rows of JavaScript values.
 *
 * Parsers read fields in place (no copy per field): text and CSV rows are
 * split on the delimiter and newline bytes (never inside a UTF-8 sequence,
 * whose bytes are all ≥ 0x80); a field is only copied when it has to be
 * unescaped or unquoted. Typed text fields use core's text decoders
 * (`PgValue.textDecoderFor`), with byte-level fast paths for integers and
 * booleans; binary fields use `@effect/sql-pg`'s binary codecs through
 * `PgTypes.makeFieldReader`, plus multi-dimensional array framing.
 *
 * A parser consumes complete rows and reports where the first incomplete one
 * starts, so rows split across messages (or several in one message) work.
 */
import * as PgTypes from "@effect/sql-pg/PgTypes"
import { PgError, PgValue } from "@pgfx/core"
import * as Result from "effect/Result"
import { type Dialect } from "./textEncode.ts"
import { elementOf, isTextLike } from "./types.ts"

const OID = PgTypes.OID

/** Reads one field in place: `bytes[start, end)`. */
type FieldDecoder = (bytes: Uint8Array, start: number, end: number) => unknown

type Slice = (this: Uint8Array, start: number, end: number) => string
const bufferProto = Buffer.prototype as unknown as { readonly utf8Slice: Slice; readonly latin1Slice: Slice }
const utf8Slice = bufferProto.utf8Slice
const latin1Slice = bufferProto.latin1Slice
const strictUtf8 = new TextDecoder("utf-8", { fatal: true })

class FieldError extends Error {}

/** UTF-8 text of `bytes[start, end)`; invalid UTF-8 throws. */
export const utf8 = (bytes: Uint8Array, start: number, end: number): string => {
  const n = end - start
  if (n <= 16) {
    let text = ""
    let i = start
    for (; i < end; i++) {
      const code = bytes[i]
      if (code > 0x7f) break
      text += String.fromCharCode(code)
    }
    if (i === end) return text
  }
  const text = utf8Slice.call(bytes, start, end)
  if (text.indexOf("\ufffd") !== -1) {
    try {
      return strictUtf8.decode(bytes.subarray(start, end))
    } catch {
      throw new FieldError("invalid UTF-8")
    }
  }
  return text
}

const latin1 = (bytes: Uint8Array, start: number, end: number): string =>
  end - start <= 16 ? asciiShort(bytes, start, end) : latin1Slice.call(bytes, start, end)

const asciiShort = (bytes: Uint8Array, start: number, end: number): string => {
  let text = ""
  for (let i = start; i < end; i++) text += String.fromCharCode(bytes[i])
  return text
}

const badInteger = (bytes: Uint8Array, start: number, end: number): never => {
  throw new FieldError(`invalid integer "${latin1(bytes, start, end)}"`)
}

/** Integers of at most `limit` digits (exact as a double), read in place. */
const integerDigits = (bytes: Uint8Array, start: number, end: number, limit: number): number => {
  let i = start
  const negative = bytes[i] === 45
  if (negative) i++
  if (i === end || end - i > limit) return badInteger(bytes, start, end)
  let value = 0
  for (; i < end; i++) {
    const digit = bytes[i] - 48
    if (digit < 0 || digit > 9) return badInteger(bytes, start, end)
    value = value * 10 + digit
  }
  return negative ? -value : value
}

const decodeSmallInteger: FieldDecoder = (bytes, start, end) => integerDigits(bytes, start, end, 10)

const decodeBigInteger: FieldDecoder = (bytes, start, end) => {
  const digits = end - start - (bytes[start] === 45 ? 1 : 0)
  if (digits > 0 && digits <= 15) return BigInt(integerDigits(bytes, start, end, 15))
  try {
    return BigInt(latin1(bytes, start, end))
  } catch {
    return badInteger(bytes, start, end)
  }
}

const decodeBool: FieldDecoder = (bytes, start, end) => {
  if (end - start === 1) {
    if (bytes[start] === 116) return true
    if (bytes[start] === 102) return false
  }
  throw new FieldError(`invalid boolean "${latin1(bytes, start, end)}"`)
}

const { daysFromCivil, PG_EPOCH_MS } = PgValue

const twoDigitsAt = (bytes: Uint8Array, at: number): number => {
  const tens = bytes[at] - 48
  const units = bytes[at + 1] - 48
  return tens >= 0 && tens <= 9 && units >= 0 && units <= 9 ? tens * 10 + units : -1
}

/**
 * `timestamp` / `timestamptz` read in place for the shape the server prints
 * in the ISO DateStyle with a four-digit year
 * (`YYYY-MM-DD HH:MM:SS[.ffffff][±HH[:MM[:SS]]]`), with exactly the result of
 * core's text decoder (milliseconds truncated toward 2000-01-01); anything
 * else (BC, infinity, other years) goes to core's decoder.
 */
const timestampField = (withZone: boolean, oid: number): FieldDecoder => {
  const slow = PgValue.textDecoderFor(oid)
  return (bytes, start, end) => {
    if (
      end - start < 19 || bytes[start + 4] !== 45 || bytes[start + 7] !== 45 || bytes[start + 10] !== 32 ||
      bytes[start + 13] !== 58 || bytes[start + 16] !== 58
    ) return slow(latin1(bytes, start, end))
    const century = twoDigitsAt(bytes, start)
    const yearLow = twoDigitsAt(bytes, start + 2)
    const month = twoDigitsAt(bytes, start + 5)
    const day = twoDigitsAt(bytes, start + 8)
    const hours = twoDigitsAt(bytes, start + 11)
    const minutes = twoDigitsAt(bytes, start + 14)
    const seconds = twoDigitsAt(bytes, start + 17)
    if ((century | yearLow | month | day | hours | minutes | seconds) < 0) return slow(latin1(bytes, start, end))
    let at = start + 19
    let fraction = 0
    if (at < end && bytes[at] === 46) {
      at++
      const first = at
      let scale = 100_000
      while (at < end) {
        const digit = bytes[at] - 48
        if (digit < 0 || digit > 9) break
        fraction += digit * scale
        scale = scale / 10
        at++
      }
      if (at === first) return slow(latin1(bytes, start, end))
      fraction = Math.trunc(fraction)
    }
    let zoneSeconds = 0
    if (at < end) {
      const sign = bytes[at]
      if (!withZone || (sign !== 43 && sign !== 45)) return slow(latin1(bytes, start, end))
      const zoneHours = twoDigitsAt(bytes, at + 1)
      if (zoneHours < 0) return slow(latin1(bytes, start, end))
      zoneSeconds = zoneHours * 3600
      at += 3
      if (at < end && bytes[at] === 58) {
        const zoneMinutes = twoDigitsAt(bytes, at + 1)
        if (zoneMinutes < 0) return slow(latin1(bytes, start, end))
        zoneSeconds += zoneMinutes * 60
        at += 3
        if (at < end && bytes[at] === 58) {
          const zoneSecs = twoDigitsAt(bytes, at + 1)
          if (zoneSecs < 0) return slow(latin1(bytes, start, end))
          zoneSeconds += zoneSecs
          at += 3
        }
      }
      if (at !== end) return slow(latin1(bytes, start, end))
      if (sign === 45) zoneSeconds = -zoneSeconds
    }
    const micros = minutes * 60_000_000 + seconds * 1_000_000 + fraction
    const subMillis = micros % 1000
    let ms = daysFromCivil(century * 100 + yearLow, month, day) * 86_400_000 + (hours * 3600 - zoneSeconds) * 1000 +
      (micros - subMillis) / 1000
    if (subMillis > 0 && ms < PG_EPOCH_MS) ms += 1
    return new Date(ms)
  }
}

const powersOfTen = Array.from({ length: 23 }, (_, n) => Number(`1e${n}`))

/**
 * `float8` / `float4` read in place when the decimal has at most 15
 * significant digits and a power of ten within ±22 (Clinger's fast path:
 * one correctly rounded operation, so the same double `Number()` gives);
 * anything else goes to core's decoder.
 */
const floatField = (oid: number): FieldDecoder => {
  const slow = PgValue.textDecoderFor(oid)
  const single = oid === OID.float4
  return (bytes, start, end) => {
    let at = start
    const negative = bytes[at] === 45
    if (negative) at++
    let mantissa = 0
    let significant = 0
    let exponent = 0
    let digits = 0
    for (; at < end; at++) {
      const digit = bytes[at] - 48
      if (digit < 0 || digit > 9) break
      if (mantissa !== 0 || digit !== 0) significant++
      mantissa = mantissa * 10 + digit
      digits++
    }
    if (at < end && bytes[at] === 46) {
      for (at++; at < end; at++) {
        const digit = bytes[at] - 48
        if (digit < 0 || digit > 9) break
        if (mantissa !== 0 || digit !== 0) significant++
        mantissa = mantissa * 10 + digit
        exponent--
        digits++
      }
    }
    if (at < end && (bytes[at] === 101 || bytes[at] === 69)) {
      at++
      const minus = bytes[at] === 45
      if (minus || bytes[at] === 43) at++
      let power = 0
      const first = at
      for (; at < end; at++) {
        const digit = bytes[at] - 48
        if (digit < 0 || digit > 9) break
        power = power * 10 + digit
      }
      if (at === first || at - first > 4) return slow(latin1(bytes, start, end))
      exponent += minus ? -power : power
    }
    if (at !== end || digits === 0 || significant > 15 || exponent < -22 || exponent > 22) {
      return slow(latin1(bytes, start, end))
    }
    const magnitude = exponent >= 0 ? mantissa * powersOfTen[exponent] : mantissa / powersOfTen[-exponent]
    const value = negative ? -magnitude : magnitude
    return single ? Math.fround(value) : value
  }
}

/** The decoder of a text-format column of type `oid` (`undefined`: the text itself). */
const textField = (oid: number | undefined): FieldDecoder => {
  if (oid === undefined || isTextLike(oid)) return utf8
  switch (oid) {
    case OID.int2:
    case OID.int4:
    case OID.oid:
      return decodeSmallInteger
    case OID.int8:
      return decodeBigInteger
    case OID.bool:
      return decodeBool
    case OID.float4:
    case OID.float8:
      return floatField(oid)
    case OID.timestamp:
      return timestampField(false, oid)
    case OID.timestamptz:
      return timestampField(true, oid)
  }
  const decode = PgValue.textDecoderFor(oid)
  return (bytes, start, end) => decode(utf8(bytes, start, end))
}

const KIND_OTHER = 0
const KIND_TEXT = 1
const KIND_INT = 2
const KIND_INT8 = 3
const KIND_FLOAT8 = 4
const KIND_FLOAT4 = 5
const KIND_TIMESTAMPTZ = 6
const KIND_TIMESTAMP = 7

const kindOf = (oid: number | undefined): number => {
  if (oid === undefined || isTextLike(oid)) return KIND_TEXT
  switch (oid) {
    case OID.int2:
    case OID.int4:
    case OID.oid:
      return KIND_INT
    case OID.int8:
      return KIND_INT8
    case OID.float8:
      return KIND_FLOAT8
    case OID.float4:
      return KIND_FLOAT4
    case OID.timestamptz:
      return KIND_TIMESTAMPTZ
    case OID.timestamp:
      return KIND_TIMESTAMP
  }
  return KIND_OTHER
}

/** A row parser: consumes complete rows of `bytes[start, end)` into `out`, returns where it stopped. */
export interface RowParser {
  readonly parse: (bytes: Uint8Array, start: number, end: number, out: Array<ReadonlyArray<unknown>>) => number
  /** The binary trailer was read. */
  readonly ended: boolean
}

const decodeError = (error: unknown, column: number, oid: number | undefined): PgError.DecodeError =>
  new PgError.DecodeError({
    message: `cannot decode COPY column ${column + 1}${oid === undefined ? "" : ` (type ${oid})`}: ${
      error instanceof Error ? error.message : String(error)
    }`,
    column,
    typeOid: oid ?? 0,
    cause: error
  })

const wrongWidth = (columns: number, found: number): PgError.DecodeError =>
  new PgError.DecodeError({
    message: `COPY row has ${found} field(s) where ${columns} were expected`,
    column: Math.min(found, columns),
    typeOid: 0
  })

/** A growable scratch buffer for fields that must be unescaped or unquoted. */
class Scratch {
  bytes = Buffer.allocUnsafe(1024)
  length = 0
  reset(capacity: number): void {
    if (capacity > this.bytes.length) this.bytes = Buffer.allocUnsafe(Math.max(capacity, this.bytes.length * 2))
    this.length = 0
  }
}

const hexValue = (code: number): number =>
  code >= 48 && code <= 57 ? code - 48 : code >= 97 && code <= 102 ? code - 87 : code >= 65 && code <= 70 ? code - 55 : -1

/** Text format backslash sequences → bytes (`\t`, `\\`, `\123` octal, `\x4f` hex, `\c` → c). */
const unescapeText = (bytes: Uint8Array, start: number, end: number, scratch: Scratch): void => {
  scratch.reset(end - start)
  const out = scratch.bytes
  let n = 0
  for (let i = start; i < end; i++) {
    let byte = bytes[i]
    if (byte === 92 && i + 1 < end) {
      const next = bytes[++i]
      switch (next) {
        case 98:
          byte = 8
          break
        case 102:
          byte = 12
          break
        case 110:
          byte = 10
          break
        case 114:
          byte = 13
          break
        case 116:
          byte = 9
          break
        case 118:
          byte = 11
          break
        case 120: {
          const high = i + 1 < end ? hexValue(bytes[i + 1]) : -1
          if (high === -1) {
            byte = next
            break
          }
          i++
          byte = high
          const low = i + 1 < end ? hexValue(bytes[i + 1]) : -1
          if (low !== -1) {
            i++
            byte = high * 16 + low
          }
          break
        }
        default:
          if (next >= 48 && next <= 55) {
            byte = next - 48
            for (let k = 0; k < 2 && i + 1 < end && bytes[i + 1] >= 48 && bytes[i + 1] <= 55; k++) {
              byte = byte * 8 + bytes[++i] - 48
            }
            byte &= 0xff
          } else {
            byte = next
          }
      }
    }
    out[n++] = byte
  }
  scratch.length = n
}

const encodeNull = (text: string): Uint8Array => new TextEncoder().encode(text)

/** Whether `bytes[start, end)` equals `pattern`. */
const equalsBytes = (bytes: Uint8Array, start: number, end: number, pattern: Uint8Array): boolean => {
  if (end - start !== pattern.length) return false
  for (let i = 0; i < pattern.length; i++) if (bytes[start + i] !== pattern[i]) return false
  return true
}

/**
 * Text format rows: fields split on the delimiter, rows on `\n`; the NULL
 * string (`\N`) is compared before unescaping.
 */
export const textParser = (
  types: ReadonlyArray<number | undefined> | undefined,
  columns: number,
  dialect: Dialect,
  skipHeader: boolean
): RowParser => {
  const decoders = Array.from({ length: columns }, (_, i) => textField(types?.[i]))
  const delimiter = dialect.delimiter
  const nullBytes = encodeNull(dialect.nullText)
  const scratch = new Scratch()
  let header = skipHeader
  const parser = {
    ended: false,
    parse(bytes: Uint8Array, start: number, end: number, out: Array<ReadonlyArray<unknown>>): number {
      let rowStart = start
      while (rowStart < end) {
        const row: Array<unknown> = new Array(columns)
        let column = 0
        let fieldStart = rowStart
        let escaped = false
        let i = rowStart
        let complete = false
        for (; i < end; i++) {
          const byte = bytes[i]
          if (byte === delimiter || byte === 10) {
            if (!header) {
              if (column >= columns) throw wrongWidth(columns, column + 1)
              row[column] = field(bytes, fieldStart, i, escaped, column)
            }
            column++
            if (byte === 10) {
              complete = true
              break
            }
            fieldStart = i + 1
            escaped = false
          } else if (byte === 92) {
            escaped = true
            i++
          }
        }
        if (!complete) return rowStart
        rowStart = i + 1
        if (header) {
          header = false
          continue
        }
        if (column !== columns) throw wrongWidth(columns, column)
        out.push(row)
      }
      return rowStart
    }
  }
  // One call site per kind of column, each calling one function: V8 inlines
  // them, where a call through the array of decoders would stay megamorphic.
  const kinds = Int8Array.from({ length: columns }, (_, i) => kindOf(types?.[i]))
  const float8 = floatField(OID.float8)
  const float4 = floatField(OID.float4)
  const timestamptz = timestampField(true, OID.timestamptz)
  const timestamp = timestampField(false, OID.timestamp)
  const defaultNull = dialect.nullText === "\\N"
  const decode = (bytes: Uint8Array, start: number, end: number, column: number): unknown => {
    switch (kinds[column]) {
      case KIND_TEXT:
        return utf8(bytes, start, end)
      case KIND_INT:
        return integerDigits(bytes, start, end, 10)
      case KIND_INT8:
        return decodeBigInteger(bytes, start, end)
      case KIND_FLOAT8:
        return float8(bytes, start, end)
      case KIND_FLOAT4:
        return float4(bytes, start, end)
      case KIND_TIMESTAMPTZ:
        return timestamptz(bytes, start, end)
      case KIND_TIMESTAMP:
        return timestamp(bytes, start, end)
      default:
        return decoders[column](bytes, start, end)
    }
  }
  const field = (bytes: Uint8Array, start: number, end: number, escaped: boolean, column: number): unknown => {
    if (
      defaultNull
        ? escaped && end - start === 2 && bytes[start] === 92 && bytes[start + 1] === 78
        : equalsBytes(bytes, start, end, nullBytes)
    ) return null
    try {
      if (!escaped) return decode(bytes, start, end, column)
      unescapeText(bytes, start, end, scratch)
      return decode(scratch.bytes, 0, scratch.length, column)
    } catch (error) {
      throw decodeError(error, column, types?.[column])
    }
  }
  return parser
}

/**
 * CSV rows: a field is quoted when it starts with the quote character (the
 * escape character before a quote or itself stands for it); an unquoted
 * field equal to the NULL string is NULL; newlines inside quotes belong to
 * the field.
 */
export const csvParser = (
  types: ReadonlyArray<number | undefined> | undefined,
  columns: number,
  dialect: Dialect,
  skipHeader: boolean
): RowParser => {
  const decoders = Array.from({ length: columns }, (_, i) => textField(types?.[i]))
  const { delimiter, escape, quote } = dialect
  const nullBytes = encodeNull(dialect.nullText)
  const scratch = new Scratch()
  let header = skipHeader
  const decode = (bytes: Uint8Array, start: number, end: number, column: number): unknown => {
    try {
      return decoders[column](bytes, start, end)
    } catch (error) {
      throw decodeError(error, column, types?.[column])
    }
  }
  return {
    ended: false,
    parse(bytes, start, end, out) {
      let rowStart = start
      rows: while (rowStart < end) {
        const row: Array<unknown> = new Array(columns)
        let column = 0
        let i = rowStart
        for (;;) {
          // one field starting at i
          if (i >= end) return rowStart
          let value: unknown
          let fieldEnd: number
          if (bytes[i] === quote) {
            scratch.reset(end - i)
            const buf = scratch.bytes
            let n = 0
            let j = i + 1
            let closed = false
            while (j < end) {
              const byte = bytes[j]
              if (byte === escape && j + 1 < end && (bytes[j + 1] === quote || bytes[j + 1] === escape) &&
                !(escape === quote && bytes[j + 1] !== quote)) {
                buf[n++] = bytes[j + 1]
                j += 2
              } else if (byte === quote) {
                closed = true
                j++
                break
              } else {
                buf[n++] = byte
                j++
              }
            }
            if (!closed) return rowStart
            // characters after the closing quote, up to the delimiter, belong to the field
            while (j < end && bytes[j] !== delimiter && bytes[j] !== 10 && bytes[j] !== 13) buf[n++] = bytes[j++]
            fieldEnd = j
            scratch.length = n
            value = header ? undefined : decode(buf, 0, n, Math.min(column, columns - 1))
          } else {
            let j = i
            while (j < end && bytes[j] !== delimiter && bytes[j] !== 10 && bytes[j] !== 13) j++
            fieldEnd = j
            value = header
              ? undefined
              : equalsBytes(bytes, i, j, nullBytes)
              ? null
              : decode(bytes, i, j, Math.min(column, columns - 1))
          }
          if (fieldEnd >= end) return rowStart
          if (!header) {
            if (column >= columns) throw wrongWidth(columns, column + 1)
            row[column] = value
          }
          column++
          const stop = bytes[fieldEnd]
          if (stop === delimiter) {
            i = fieldEnd + 1
            continue
          }
          // end of row: \n or \r\n
          let next = fieldEnd + 1
          if (stop === 13) {
            if (next >= end) return rowStart
            if (bytes[next] === 10) next++
          }
          rowStart = next
          if (header) {
            header = false
            continue rows
          }
          if (column !== columns) throw wrongWidth(columns, column)
          out.push(row)
          continue rows
        }
      }
      return rowStart
    }
  }
}

// -----------------------------------------------------------------------------
// binary
// -----------------------------------------------------------------------------

const readInt32 = (bytes: Uint8Array, at: number): number =>
  (bytes[at] << 24) | (bytes[at + 1] << 16) | (bytes[at + 2] << 8) | bytes[at + 3]

const SIGNATURE = [0x50, 0x47, 0x43, 0x4f, 0x50, 0x59, 0x0a, 0xff, 0x0d, 0x0a, 0x00]

const readerFor = (oid: number): FieldDecoder => {
  const made = PgTypes.makeFieldReader([{ dataTypeOid: oid, format: 1 }])
  if (Result.isFailure(made)) throw made.failure
  const read = made.success
  return (bytes, start, end) => read(bytes, start, end - start, 0)
}

/** Arrays of any number of dimensions (PgTypes' reader takes one), elements through PgTypes. */
const arrayReader = (element: number): FieldDecoder => {
  const read = readerFor(element)
  return (bytes, start, end) => {
    if (end - start < 12) throw new FieldError("truncated array")
    const dims = readInt32(bytes, start)
    const elementOid = readInt32(bytes, start + 8) >>> 0
    if (elementOid !== element) throw new FieldError(`array element type ${elementOid} is not ${element}`)
    if (dims === 0) return []
    if (dims < 0 || dims > 6) throw new FieldError(`invalid array dimensions ${dims}`)
    const sizes: Array<number> = []
    for (let d = 0; d < dims; d++) sizes.push(readInt32(bytes, start + 12 + d * 8))
    let at = start + 12 + dims * 8
    const level = (depth: number): Array<unknown> => {
      const size = sizes[depth]
      const values: Array<unknown> = new Array(size)
      for (let i = 0; i < size; i++) {
        if (depth < dims - 1) {
          values[i] = level(depth + 1)
          continue
        }
        if (at + 4 > end) throw new FieldError("truncated array element")
        const length = readInt32(bytes, at)
        at += 4
        if (length === -1) {
          values[i] = null
        } else {
          if (length < 0 || at + length > end) throw new FieldError("truncated array element")
          values[i] = read(bytes, at, at + length)
          at += length
        }
      }
      return values
    }
    const values = level(0)
    if (at !== end) throw new FieldError("array value has trailing bytes")
    return values
  }
}

const binaryField = (oid: number | undefined): FieldDecoder => {
  if (oid === undefined) return (bytes, start, end) => bytes.slice(start, end)
  const element = elementOf(oid)
  return element === undefined ? readerFor(oid) : arrayReader(element)
}

/**
 * Binary rows: the signature and header once, then per row an int16 field
 * count and per field an int32 length (-1 for NULL) and the bytes; -1 as
 * field count ends the data.
 */
export const binaryParser = (types: ReadonlyArray<number | undefined> | undefined, columns: number): RowParser => {
  const decoders = Array.from({ length: columns }, (_, i) => binaryField(types?.[i]))
  let headerRead = false
  const parser = {
    ended: false,
    parse(bytes: Uint8Array, start: number, end: number, out: Array<ReadonlyArray<unknown>>): number {
      let at = start
      if (!headerRead) {
        if (end - at < 19) {
          for (let i = 0; i < Math.min(end - at, SIGNATURE.length); i++) {
            if (bytes[at + i] !== SIGNATURE[i]) throw badSignature()
          }
          return at
        }
        for (let i = 0; i < SIGNATURE.length; i++) if (bytes[at + i] !== SIGNATURE[i]) throw badSignature()
        const extension = readInt32(bytes, at + 15)
        if (end - at < 19 + extension) return at
        at += 19 + extension
        headerRead = true
      }
      while (at + 2 <= end) {
        const count = ((bytes[at] << 8) | bytes[at + 1]) << 16 >> 16
        if (count === -1) {
          parser.ended = true
          return at + 2
        }
        if (count !== columns) throw wrongWidth(columns, count)
        const row: Array<unknown> = new Array(columns)
        let p = at + 2
        for (let column = 0; column < columns; column++) {
          if (p + 4 > end) return at
          const length = readInt32(bytes, p)
          p += 4
          if (length === -1) {
            row[column] = null
            continue
          }
          if (p + length > end) return at
          try {
            row[column] = decoders[column](bytes, p, p + length)
          } catch (error) {
            throw decodeError(error, column, types?.[column])
          }
          p += length
        }
        out.push(row)
        at = p
      }
      return at
    }
  }
  return parser
}

const badSignature = (): PgError.DecodeError =>
  new PgError.DecodeError({
    message: "binary copy doesn't start with the expected signature",
    column: 0,
    typeOid: 0
  })
