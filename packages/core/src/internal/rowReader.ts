/**
 * Builds the per-result `DataRow` field reader: binary columns through
 * `PgTypes`' codecs, text columns through pgfx's text decoders. A value that
 * cannot be decoded never throws inside the protocol parser (that would
 * poison the connection); it is reported and read as `null`, and the
 * statement then fails with a `DecodeError` once the result is drained.
 */
import type * as PgProtocol from "@effect/sql-pg/PgProtocol"
import * as PgTypes from "@effect/sql-pg/PgTypes"
import * as Result from "effect/Result"
import { DecodeError } from "../PgError.ts"
import { textDecoderFor } from "./textCodecs.ts"

/** Type OIDs `PgTypes` decodes in binary; every other type is asked for in text. */
export const binaryOids: ReadonlySet<number> = new Set(Object.values(PgTypes.OID))

/** The result format to ask for, per column: binary where we have a codec. */
export const resultFormat = (typeOid: number): 0 | 1 => binaryOids.has(typeOid) ? 1 : 0

const TEXT_OID = 25

/** Where a field reader reports a value it cannot decode: the handler receiving the rows. */
export interface DecodeErrorSink {
  /** The column's value could not be decoded (`cause` thrown by its decoder); it is read as `null`. */
  readonly reportDecodeError: (column: number, cause: unknown) => void
}

/** The DecodeError of a column of `fields`. */
export const decodeError = (
  fields: ReadonlyArray<PgProtocol.FieldDescription>,
  column: number,
  cause: unknown
): DecodeError => {
  const field = fields[column]
  return new DecodeError({
    message: `cannot decode column "${field?.name}" (type OID ${field?.dataTypeOid}): ${
      cause instanceof Error ? cause.message : String(cause)
    }`,
    column,
    typeOid: field?.dataTypeOid ?? 0,
    cause
  })
}

/**
 * The `DataRow` field reader of a result with these columns. Readers depend
 * only on the columns' types and formats, so one is built per combination
 * and reused (statements in a loop describe the same columns each time):
 * the rows of one result at a time go through a connection's parser, so the
 * sink is set by whoever installs the reader for its result.
 */
export const fieldReader = (
  fields: ReadonlyArray<PgProtocol.FieldDescription>,
  sink: DecodeErrorSink
): PgProtocol.FieldReader<unknown> => {
  let reader = byDescription.get(fields)
  if (reader === undefined) {
    let key = ""
    for (const field of fields) key += `${field.dataTypeOid}${field.format === 1 ? "b" : "t"},`
    reader = byTypes.get(key)
    if (reader === undefined) {
      if (byTypes.size >= 1000) byTypes.clear()
      reader = buildReader(fields)
      byTypes.set(key, reader)
    }
    byDescription.set(fields, reader)
  }
  reader.sink = sink
  return reader.read
}

interface Reader {
  readonly read: PgProtocol.FieldReader<unknown>
  sink: DecodeErrorSink | undefined
}

/** By description object (a prepared statement's cached one), then by the columns' types. */
const byDescription = new WeakMap<ReadonlyArray<PgProtocol.FieldDescription>, Reader>()
const byTypes = new Map<string, Reader>()

const buildReader = (fields: ReadonlyArray<PgProtocol.FieldDescription>): Reader => {
  // Text columns are read as binary `text` (their UTF-8 bytes), then parsed.
  const columns = fields.map((field) =>
    field.format === 1 ? { dataTypeOid: field.dataTypeOid, format: 1 } : { dataTypeOid: TEXT_OID, format: 1 }
  )
  const reader = Result.getOrThrow(PgTypes.makeFieldReader(columns))
  const textDecoders = fields.map((field) => field.format === 1 ? undefined : textDecoderFor(field.dataTypeOid))
  const self: Reader = {
    sink: undefined,
    read: (bytes, offset, size, column) => {
      try {
        const value = reader(bytes, offset, size, column)
        const decodeText = textDecoders[column]
        return decodeText === undefined || value === null ? value : decodeText(value as string)
      } catch (cause) {
        self.sink?.reportDecodeError(column, cause)
        return null
      }
    }
  }
  return self
}
