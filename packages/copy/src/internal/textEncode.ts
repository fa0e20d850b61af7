/**
 * COPY FROM column encoders in text and CSV: for each column type, the
 * fastest way from a JavaScript value to the field's bytes in the chunk.
 * Numbers, booleans and timestamps skip the quoting layer when the
 * delimiter cannot occur in them (a plain dialect).
 */
import * as PgTypes from "@effect/sql-pg/PgTypes"
import { PgValue } from "@pgfx/core"
import type { Chunk } from "./chunk.ts"
import type { Dialect } from "./dialect.ts"
import { timestampMillis, writeTimestamp } from "./textDateTime.ts"
import { writeCsvString, writeField, writePlain, writeTextString } from "./textQuoting.ts"
import { boolText, byteaText, floatText, stringText, textOf, typeName, untypedText, writeBytea } from "./textValues.ts"
import { isTextLike } from "./types.ts"
import { checkInt8, checkInteger, INT32_MAX, INT32_MIN, MAX_SAFE, MIN_SAFE, wrongType } from "./valueChecks.ts"

const OID = PgTypes.OID

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
