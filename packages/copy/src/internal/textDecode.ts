/**
 * Text-format field decoders (text and CSV): bytes read in place → the
 * values core's queries return. Core's text decoders
 * (`PgValue.textDecoderFor`) do the work, with byte-level fast paths for
 * integers, booleans, floats and ISO timestamps.
 */
import * as PgTypes from "@effect/sql-pg/PgTypes"
import { PgValue } from "@pgfx/core"
import { type FieldDecoder, FieldError } from "./decode.ts"
import { isTextLike } from "./types.ts"

const OID = PgTypes.OID

type Slice = (this: Uint8Array, start: number, end: number) => string
const bufferProto = Buffer.prototype as unknown as { readonly utf8Slice: Slice; readonly latin1Slice: Slice }
const utf8Slice = bufferProto.utf8Slice
const latin1Slice = bufferProto.latin1Slice
const strictUtf8 = new TextDecoder("utf-8", { fatal: true })

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

/** Column kinds with a fast path of their own (`KIND_OTHER`: core's text decoder). */
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

/** The decoder of a text-format column of type `oid` (`undefined`: the text itself). */
export const textField = (oid: number | undefined): FieldDecoder => {
  if (oid === undefined) return utf8
  switch (kindOf(oid)) {
    case KIND_TEXT:
      return utf8
    case KIND_INT:
      return decodeSmallInteger
    case KIND_INT8:
      return decodeBigInteger
    case KIND_FLOAT8:
    case KIND_FLOAT4:
      return floatField(oid)
    case KIND_TIMESTAMP:
      return timestampField(false, oid)
    case KIND_TIMESTAMPTZ:
      return timestampField(true, oid)
  }
  if (oid === OID.bool) return decodeBool
  const decode = PgValue.textDecoderFor(oid)
  return (bytes, start, end) => decode(utf8(bytes, start, end))
}

/**
 * Decodes a field of column `column`. One call site per kind of column,
 * each calling one function: V8 inlines them, where a call through the
 * array of decoders would stay megamorphic.
 */
export const columnDecoder = (
  types: ReadonlyArray<number | undefined> | undefined,
  decoders: ReadonlyArray<FieldDecoder>
): (bytes: Uint8Array, start: number, end: number, column: number) => unknown => {
  const kinds = Int8Array.from({ length: decoders.length }, (_, i) => kindOf(types?.[i]))
  const float8 = floatField(OID.float8)
  const float4 = floatField(OID.float4)
  const timestamptz = timestampField(true, OID.timestamptz)
  const timestamp = timestampField(false, OID.timestamp)
  return (bytes, start, end, column) => {
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
}
