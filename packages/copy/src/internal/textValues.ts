/**
 * The value layer of COPY FROM in text and CSV: the text of a value of a
 * given type (what `::text` would print: `t`, `42`, `\\x0102`, `{1,NULL}`),
 * or of an untyped value, inferred from its JavaScript type.
 */
import * as PgTypes from "@effect/sql-pg/PgTypes"
import { PgValue } from "@pgfx/core"
import { type Chunk, EncodeFailure } from "./chunk.ts"
import type { Dialect } from "./dialect.ts"
import { dateText, intervalText, timeText, timestampMillis, timestampText } from "./textDateTime.ts"
import { writeField } from "./textQuoting.ts"
import { checkInt8, checkInteger, describe, INT32_MAX, INT32_MIN, wrongType } from "./valueChecks.ts"
import { elementOf } from "./types.ts"

const OID = PgTypes.OID

export const floatText = (value: number): string =>
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

const hexDigits = "0123456789abcdef"
const hexPairs = Array.from({ length: 256 }, (_, n) => hexDigits[n >> 4] + hexDigits[n & 15])

export const byteaText = (value: unknown): string => {
  if (!(value instanceof Uint8Array)) {
    if (PgValue.isParameter(value)) return byteaText(value.value)
    return wrongType(value, "a Uint8Array", "bytea")
  }
  let text = "\\x"
  for (let i = 0; i < value.length; i++) text += hexPairs[value[i]]
  return text
}

/** Hex bytea straight into the chunk (`\\x…` in text format, `\x…` in CSV). */
export const writeBytea = (chunk: Chunk, value: Uint8Array, dialect: Dialect): void => {
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

export const jsonText = (value: unknown): string => {
  const text = JSON.stringify(PgValue.isParameter(value) ? value.value : value, (_key, inner: unknown) =>
    typeof inner === "bigint" ? inner.toString() : inner)
  if (text === undefined) throw new EncodeFailure(`${describe(value)} cannot be serialised as JSON`)
  return text
}

export const stringText = (value: unknown, type: string): string => {
  if (typeof value === "string") return value
  if (PgValue.isParameter(value)) return stringText(value.value, type)
  return wrongType(value, "a string", type)
}

export const boolText = (value: unknown): string => {
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

export const typeName = (oid: number): string => {
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
