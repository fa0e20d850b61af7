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
  readonly reportDecodeError: (error: DecodeError) => void
}

export const makeFieldReader = (
  fields: ReadonlyArray<PgProtocol.FieldDescription>,
  sink: DecodeErrorSink
): PgProtocol.FieldReader<unknown> => {
  const reader = buildReader(fields)
  reader.sink = sink
  return reader.read
}

/**
 * The reader of a prepared statement's cached description, built once: the
 * rows of one result at a time go through a connection's parser, so the
 * sink is set by whoever installs the reader for its result.
 */
export const cachedFieldReader = (
  fields: ReadonlyArray<PgProtocol.FieldDescription>,
  sink: DecodeErrorSink
): PgProtocol.FieldReader<unknown> => {
  let reader = cache.get(fields)
  if (reader === undefined) {
    reader = buildReader(fields)
    cache.set(fields, reader)
  }
  reader.sink = sink
  return reader.read
}

interface Reader {
  readonly read: PgProtocol.FieldReader<unknown>
  sink: DecodeErrorSink | undefined
}

const cache = new WeakMap<ReadonlyArray<PgProtocol.FieldDescription>, Reader>()

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
        const field = fields[column]
        self.sink?.reportDecodeError(
          new DecodeError({
            message: `cannot decode column "${field?.name}" (type OID ${field?.dataTypeOid}): ${
              cause instanceof Error ? cause.message : String(cause)
            }`,
            column,
            typeOid: field?.dataTypeOid ?? 0,
            cause
          })
        )
        return null
      }
    }
  }
  return self
}
