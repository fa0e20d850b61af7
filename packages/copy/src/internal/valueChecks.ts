/**
 * Checks of the JavaScript values written to COPY: integer ranges, and the
 * `EncodeFailure` that names what was expected and what was given.
 */
import { EncodeFailure } from "./chunk.ts"

/** What a value is, for error messages. */
export const describe = (value: unknown): string => {
  if (value === null) return "null"
  if (Array.isArray(value)) return "an array"
  if (value instanceof Date) return "a Date"
  if (value instanceof Uint8Array) return "a Uint8Array"
  const type = typeof value
  return type === "object" ? `an object (${Object.prototype.toString.call(value).slice(8, -1)})` : `a ${type}`
}

export const wrongType = (value: unknown, expected: string, type: string): never => {
  throw new EncodeFailure(`expected ${expected} for ${type}, got ${describe(value)}`)
}

export const INT32_MIN = -2147483648
export const INT32_MAX = 2147483647
export const INT64_MIN = BigInt("-9223372036854775808")
export const INT64_MAX = BigInt("9223372036854775807")
export const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER)
export const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER)

export const checkInteger = (value: unknown, type: string, min: number, max: number): number => {
  if (typeof value === "bigint") {
    if (value < BigInt(min) || value > BigInt(max)) throw new EncodeFailure(`${value} is out of range for ${type}`)
    return Number(value)
  }
  if (typeof value !== "number") return wrongType(value, "an integer", type)
  if (!Number.isInteger(value)) throw new EncodeFailure(`${value} is not an integer (${type})`)
  if (value < min || value > max) throw new EncodeFailure(`${value} is out of range for ${type}`)
  return value
}

export const checkInt8 = (value: unknown): bigint | number => {
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
