/**
 * COPY FROM in binary: each field is the type's binary send format, written
 * by `@effect/sql-pg`'s `PgTypes` codecs (the same ones core binds
 * parameters with) straight into the output chunk. pgfx adds only what a
 * parameter does not need: light coercions (`number` → `int8`, `Date` →
 * `date`), multi-dimensional array framing, and the COPY row layout.
 */
import * as PgTypes from "@effect/sql-pg/PgTypes"
import { PgValue } from "@pgfx/core"
import * as Result from "effect/Result"
import { type Chunk, EncodeFailure } from "./chunk.ts"
import { isoDate } from "./textDateTime.ts"
import { arrayDimensions, textOf } from "./textValues.ts"
import { elementOf } from "./types.ts"

const OID = PgTypes.OID
const TypeId: PgTypes.ParameterTypeId = PgTypes.ParameterTypeId

/** `PGCOPY\n\377\r\n\0`, flags 0, no header extension. */
export const BINARY_HEADER = new Uint8Array([
  0x50, 0x47, 0x43, 0x4f, 0x50, 0x59, 0x0a, 0xff, 0x0d, 0x0a, 0x00,
  0, 0, 0, 0,
  0, 0, 0, 0
])

/** The file trailer: a field count of -1. */
export const BINARY_TRAILER = new Uint8Array([0xff, 0xff])

/** One parameter object per column, reused for every row: no allocation per field. */
class ColumnParameter implements PgTypes.Parameter {
  readonly [TypeId]: PgTypes.ParameterTypeId = TypeId
  value: unknown = null
  constructor(readonly oid: number) {}
}

/** Writes one non-NULL field: its int32 length, then its bytes. */
export type BinaryEncoder = (value: unknown, chunk: Chunk) => void

const write = (chunk: Chunk, parameter: ColumnParameter): void => {
  const written = PgTypes.writeParameter(chunk, parameter)
  if (Result.isFailure(written)) throw new EncodeFailure(written.failure.message)
}

/** Brings a JavaScript value to what the `PgTypes` codec of `oid` takes. */
const coerce = (value: unknown, oid: number): unknown => {
  if (PgValue.isParameter(value)) value = value.value
  switch (oid) {
    case OID.int8:
      if (typeof value === "number") {
        if (!Number.isSafeInteger(value)) throw new EncodeFailure(`${value} is not a safe integer (int8: pass a bigint)`)
        return BigInt(value)
      }
      return value
    case OID.int2:
    case OID.int4:
    case OID.oid:
      return typeof value === "bigint" && value >= -2147483648n && value <= 4294967295n ? Number(value) : value
    case OID.time:
      return typeof value === "number" && Number.isSafeInteger(value) ? BigInt(value) : value
    case OID.numeric:
      return typeof value === "string" ? value : textOf(value, oid)
    case OID.date:
      return value instanceof Date ? isoDate(value) : value
  }
  return value
}

/** The encoder of a column of type `oid` (`undefined`: infer each value's type, as for parameters). */
export const binaryEncoder = (oid: number | undefined): BinaryEncoder => {
  if (oid === undefined) {
    return (value, chunk) => {
      const inferred = PgValue.toParameter(value, 1)
      if (Result.isFailure(inferred)) throw new EncodeFailure(inferred.failure.message)
      const token = chunk.beginLength()
      const written = PgTypes.writeParameter(chunk, inferred.success)
      if (Result.isFailure(written)) throw new EncodeFailure(written.failure.message)
      chunk.endLength(token)
    }
  }
  const element = elementOf(oid)
  if (element !== undefined) return arrayEncoder(oid, element)
  if (!knownOids.has(oid)) return unknownEncoder(oid)
  const parameter = new ColumnParameter(oid)
  return (value, chunk) => {
    parameter.value = coerce(value, oid)
    const token = chunk.beginLength()
    write(chunk, parameter)
    chunk.endLength(token)
  }
}

const knownOids = new Set<number>(Object.values(OID))

/**
 * A type with no binary codec here (an enum, a custom type): strings go as
 * their UTF-8 bytes (an enum's binary form is its label), bytes as they are.
 */
const unknownEncoder = (oid: number): BinaryEncoder => (value, chunk) => {
  if (PgValue.isParameter(value)) value = value.value
  const token = chunk.beginLength()
  if (typeof value === "string") chunk.utf8(value)
  else if (value instanceof Uint8Array) chunk.raw(value)
  else {
    throw new EncodeFailure(
      `type ${oid} has no binary codec: pass its binary form as a string or Uint8Array, or use the text format`
    )
  }
  chunk.endLength(token)
}

/** Arrays of any number of dimensions (PgTypes' own array codec is one-dimensional). */
const arrayEncoder = (oid: number, element: number): BinaryEncoder => {
  const parameter = new ColumnParameter(element)
  const leaves = (chunk: Chunk, array: ReadonlyArray<unknown>, depth: number, last: number): void => {
    for (const item of array) {
      if (depth < last) {
        leaves(chunk, item as ReadonlyArray<unknown>, depth + 1, last)
      } else if (item === null || item === undefined) {
        chunk.int32(-1)
      } else {
        parameter.value = coerce(item, element)
        const token = chunk.beginLength()
        write(chunk, parameter)
        chunk.endLength(token)
      }
    }
  }
  const hasNull = (array: ReadonlyArray<unknown>, depth: number, last: number): boolean => {
    for (const item of array) {
      if (depth < last ? hasNull(item as ReadonlyArray<unknown>, depth + 1, last) : item === null || item === undefined) {
        return true
      }
    }
    return false
  }
  return (value, chunk) => {
    if (PgValue.isParameter(value)) value = value.value
    if (!Array.isArray(value)) throw new EncodeFailure(`expected an array for type ${oid}`)
    const dims = arrayDimensions(value, element === OID.json || element === OID.jsonb)
    const token = chunk.beginLength()
    if (dims.includes(0)) {
      chunk.int32(0)
      chunk.int32(0)
      chunk.int32(element)
    } else {
      const last = dims.length - 1
      chunk.int32(dims.length)
      chunk.int32(hasNull(value, 0, last) ? 1 : 0)
      chunk.int32(element)
      for (const size of dims) {
        chunk.int32(size)
        chunk.int32(1)
      }
      leaves(chunk, value, 0, last)
    }
    chunk.endLength(token)
  }
}
