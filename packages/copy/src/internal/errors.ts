/**
 * The errors of a COPY (re-exported by `Copy.ts`): rows that cannot be
 * written, files that cannot be read or written, and how a thrown value or
 * a scope's exit is described in them and in the CopyFail reason.
 */
import type { PgError } from "@pgfx/core"
import * as Cause from "effect/Cause"
import * as Data from "effect/Data"
import * as Exit from "effect/Exit"
import { EncodeFailure } from "./chunk.ts"

/**
 * A row that cannot be written: wrong width, a value of the wrong type or
 * out of range, a NUL character or a lone surrogate in a string. Raised
 * before the row's bytes are sent; the row is dropped and the COPY can go
 * on (if the error is not handled, the COPY is failed and nothing of it is
 * committed).
 *
 * @since 0.1.0
 */
export class CopyDataError extends Data.TaggedError("CopyDataError")<{
  /** What is wrong with the row, and where. */
  readonly message: string
  /** 1-based number of the row in this COPY. */
  readonly row?: number | undefined
  /** 0-based column. */
  readonly column?: number | undefined
  /** The encoder's error. */
  readonly cause?: unknown
}> {}

/**
 * A file of `fromFile` / `toFile` could not be read or written.
 *
 * @since 0.1.0
 */
export class CopyFileError extends Data.TaggedError("CopyFileError")<{
  /** What failed. */
  readonly message: string
  /** The file. */
  readonly path: string
  /** The file system's error. */
  readonly cause?: unknown
}> {}

/**
 * Every error of a COPY: the server's and the connection's (`PgError`), and
 * rows that cannot be encoded.
 *
 * @since 0.1.0
 */
export type CopyError = PgError.PgError | CopyDataError

const nameOf = (error: unknown): string => {
  if (typeof error === "object" && error !== null) {
    const tagged = error as { readonly _tag?: unknown; readonly name?: unknown }
    if (typeof tagged._tag === "string") return tagged._tag
    if (typeof tagged.name === "string") return tagged.name
  }
  return typeof error
}

/** The message of a thrown value (an `Error`, a tagged error, anything else as a string). */
export const messageOf = (error: unknown): string => {
  if (typeof error === "object" && error !== null && typeof (error as { message?: unknown }).message === "string") {
    return (error as { message: string }).message
  }
  return String(error)
}

/** The CopyFail reason for a scope's exit, after psycopg's `error from Python: <class> - <message>`. */
export const failReason = (exit: Exit.Exit<unknown, unknown>): string => {
  if (Exit.isSuccess(exit)) return "error from pgfx: the COPY was stopped before the end of its data"
  const cause = exit.cause
  if (Cause.hasInterruptsOnly(cause)) return "error from pgfx: interrupted"
  const error = Cause.squash(cause)
  return `error from pgfx: ${nameOf(error)} - ${messageOf(error)}`
}

/** The `CopyDataError` of row `row` (1-based) from what its encoder threw. */
export const rowError = (error: unknown, row: number): CopyDataError => {
  const column = error instanceof EncodeFailure ? error.column : undefined
  return new CopyDataError({
    message: `cannot write row ${row}${column === undefined ? "" : `, column ${column + 1}`}: ${messageOf(error)}`,
    row,
    column,
    cause: error instanceof EncodeFailure ? undefined : error
  })
}

/** Maps a file system error to a `CopyFileError` about `file`. */
export const fileError = (file: string, what: string) => (cause: unknown): CopyFileError =>
  new CopyFileError({ message: `${what} ${file}: ${messageOf(cause)}`, path: file, cause })
