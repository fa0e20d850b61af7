/**
 * COPY TO decoding, what every format shares: the `RowParser` contract
 * (complete rows consumed, the start of the first incomplete one
 * reported, so rows split across messages work), field decoders read in
 * place, and the errors of a row that cannot be decoded.
 */
import { PgError } from "@pgfx/core"

/** Reads one field in place: `bytes[start, end)`. */
export type FieldDecoder = (bytes: Uint8Array, start: number, end: number) => unknown

/** A field that cannot be decoded (reported with its column by `decodeError`). */
export class FieldError extends Error {}

/** A row parser: consumes complete rows of `bytes[start, end)` into `out`, returns where it stopped. */
export interface RowParser {
  readonly parse: (bytes: Uint8Array, start: number, end: number, out: Array<ReadonlyArray<unknown>>) => number
  /** The binary trailer was read. */
  readonly ended: boolean
}

export const decodeError = (error: unknown, column: number, oid: number | undefined): PgError.DecodeError =>
  new PgError.DecodeError({
    message: `cannot decode COPY column ${column + 1}${oid === undefined ? "" : ` (type ${oid})`}: ${
      error instanceof Error ? error.message : String(error)
    }`,
    column,
    typeOid: oid ?? 0,
    cause: error
  })

export const wrongWidth = (columns: number, found: number): PgError.DecodeError =>
  new PgError.DecodeError({
    message: `COPY row has ${found} field(s) where ${columns} were expected`,
    column: Math.min(found, columns),
    typeOid: 0
  })
