/** Text decoders of numbers, booleans, bytea, json and network addresses. */
import * as PgTypes from "@effect/sql-pg/PgTypes"
import * as Result from "effect/Result"
import { fail, type TextValueDecoder } from "./common.ts"

// -----------------------------------------------------------------------------
// numbers, booleans
// -----------------------------------------------------------------------------

export const decodeInteger = (text: string): number => {
  const value = +text
  return Number.isInteger(value) && text.length > 0 ? value : fail(`Invalid integer "${text}"`)
}

export const decodeInt8 = (text: string): bigint => {
  if (text.length === 0) return fail("Invalid int8 \"\"")
  try {
    return BigInt(text)
  } catch {
    return fail(`Invalid int8 "${text}"`)
  }
}

export const decodeFloat8 = (text: string): number => {
  const value = +text
  // `+""` is 0 and anything unparsable is NaN; PostgreSQL prints NaN as "NaN".
  if ((value !== value && text !== "NaN") || text.length === 0) return fail(`Invalid float "${text}"`)
  return value
}

export const decodeFloat4 = (text: string): number => Math.fround(decodeFloat8(text))

export const decodeBool = (text: string): boolean => {
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

export const decodeBytea = (text: string): Uint8Array => {
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
// json, network addresses
// -----------------------------------------------------------------------------

export const decodeJson = (text: string): unknown => {
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
export const networkDecoder = (oid: number): TextValueDecoder => (text) => {
  const encoded = PgTypes.encode(text, oid)
  if (Result.isFailure(encoded)) return fail(encoded.failure.message)
  const decoded = PgTypes.decode(encoded.success, oid, 1)
  return Result.isFailure(decoded) ? fail(decoded.failure.message) : decoded.success
}
