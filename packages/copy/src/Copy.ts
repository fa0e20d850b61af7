/**
 * COPY FROM STDIN and COPY TO STDOUT as Effect resources: psycopg's
 * `cursor.copy()`, for pgfx connections.
 *
 * - `from(conn, "COPY t (a, b) FROM STDIN", { format })` is a scoped writer:
 *   `writeRow`, `writeRows`, `write` (pre-formatted data), `finish` (→ rows
 *   copied). Closing the scope after a failure, a defect or an interruption
 *   sends CopyFail with the reason, so nothing of the COPY is committed; a
 *   successful scope that did not call `finish` finishes it.
 * - `fromStream` / `fromBytes` copy a Stream in, with backpressure.
 * - `to(conn, "COPY (…) TO STDOUT", { format, types })` is a Stream of rows,
 *   typed with `types` (psycopg's `set_types`: names such as `"int4"`,
 *   `"timestamptz"`, `"float8[]"`, or OIDs); `toBytes` streams the raw data.
 *   Ending either early cancels the COPY on the server.
 * - `fromFile` / `toFile` move CSV or text files (optionally gzip) and report
 *   progress as a Stream; `withProgressBar` draws it on the terminal.
 *
 * Formats: `text` (escapes as psycopg: `\b \t \n \v \f \r \\`, NULL `\N`),
 * `csv` (`header`, `delimiter`, `quote`, `escape`, `null`) and `binary`
 * (fields in the types' binary send format, through the same
 * `@effect/sql-pg` codecs core uses for parameters). When the statement ends
 * at `STDIN` / `STDOUT`, the options are added to it; otherwise the statement
 * must name them itself and the options must match.
 *
 * The connection is held for the whole COPY: other fibers' statements wait.
 * Do not run statements on the same connection from inside the COPY's scope.
 *
 * @since 0.1.0
 */
import type { PgError } from "@pgfx/core"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import type { CopyConnection } from "./internal/connection.ts"
import * as copyFrom from "./internal/copyFrom.ts"
import * as copyTo from "./internal/copyTo.ts"
import * as errors from "./internal/errors.ts"
import type { CopyDataError, CopyError, CopyFileError } from "./internal/errors.ts"
import * as files from "./internal/files.ts"
import * as progress from "./internal/progress.ts"
import type { Progress } from "./internal/progress.ts"
import type { InputRow, OutputRow, TypeSpec } from "./internal/rowTypes.ts"
import type { Format, FormatOptions } from "./internal/statement.ts"

// -----------------------------------------------------------------------------
// models
// -----------------------------------------------------------------------------

/**
 * The data format of a COPY (`text`, `csv`, `binary`) and its options.
 *
 * @since 0.1.0
 */
export type { Format, FormatOptions } from "./internal/statement.ts"

/**
 * What a COPY needs of a connection: core's `Connection` (any row shape).
 *
 * @since 0.1.0
 */
export type { CopyConnection } from "./internal/connection.ts"

/**
 * The errors of a COPY: `CopyDataError` (a row that cannot be written),
 * `CopyFileError` (`fromFile` / `toFile`), and `CopyError`, every error of
 * a COPY.
 *
 * @since 0.1.0
 */
export { CopyDataError, type CopyError, CopyFileError } from "./internal/errors.ts"

/**
 * Progress of `fromFile` / `toFile`.
 *
 * @since 0.1.0
 */
export type { Progress } from "./internal/progress.ts"

/**
 * The row types: `TypeValues` / `TypeInputs` (the value of each type name,
 * read and written), `TypeName`, `TypeSpec`, `PgArray`, and the rows
 * `to` yields (`OutputRow`) and `writeRow` takes (`InputRow`).
 *
 * @since 0.1.0
 */
export type * from "./internal/rowTypes.ts"

/**
 * Options of `from`, `fromStream` and `fromBytes`.
 *
 * @since 0.1.0
 */
export interface FromOptions<T extends ReadonlyArray<TypeSpec> | undefined = undefined> extends FormatOptions {
  /** Column types (psycopg's `set_types`): required for binary unless values are typed with `PgValue`. */
  readonly types?: T
  /** Bytes gathered before a CopyData message is sent (default 64 KiB). */
  readonly chunkSize?: number | undefined
  /** How long an aborted COPY may take to end before the connection is closed (default 5 s). */
  readonly drainTimeout?: Duration.Input | undefined
}

/**
 * Options of `to` and `toBytes`.
 *
 * @since 0.1.0
 */
export interface ToOptions<T extends ReadonlyArray<TypeSpec> | undefined = undefined, F extends Format = Format>
  extends FormatOptions
{
  readonly format?: F | undefined
  /** Column types (psycopg's `set_types`); without them fields come back unparsed. */
  readonly types?: T
  /** How long a cancelled COPY may take to end before the connection is closed (default 5 s). */
  readonly drainTimeout?: Duration.Input | undefined
}

/**
 * The writing end of a COPY FROM STDIN.
 *
 * @since 0.1.0
 */
export interface CopyWriter<Row = ReadonlyArray<unknown>> {
  /** The COPY's format, from the server's CopyInResponse. */
  readonly format: Format
  /** Columns the server expects per row. */
  readonly columns: number
  /** Rows written with `writeRow` / `writeRows` so far. */
  readonly rowsWritten: number
  /** COPY data bytes handed to the socket so far. */
  readonly bytesSent: number
  /** Encodes a row; sends once about `chunkSize` bytes are gathered, waiting while the socket is full. */
  readonly writeRow: (row: Row) => Effect.Effect<void, CopyError>
  /** `writeRow` for many rows at once (cheaper per row). A bad row stops there; the rows before it stay. */
  readonly writeRows: (rows: Iterable<Row>) => Effect.Effect<void, CopyError>
  /** Sends pre-formatted COPY data as it is (strings in text and CSV only). */
  readonly write: (data: Uint8Array | string) => Effect.Effect<void, CopyError>
  /** Sends what is buffered now. */
  readonly flush: Effect.Effect<void, CopyError>
  /** Ends the COPY (CopyDone) and returns the rows the server loaded; server errors arrive here. */
  readonly finish: Effect.Effect<number, CopyError>
}

/**
 * Options of `fromFile` and `toFile`.
 *
 * @since 0.1.0
 */
export interface FileOptions extends FormatOptions {
  /** `text` (default) or `csv`: files are never binary. */
  readonly format?: "text" | "csv" | undefined
  /** Compress / decompress with gzip (default: when the path ends in `.gz`). */
  readonly gzip?: boolean | undefined
  /** Least time between two progress events (default 100 ms). */
  readonly progressInterval?: Duration.Input | undefined
  /** Bytes per CopyData message (default 64 KiB). */
  readonly chunkSize?: number | undefined
  /** How long an aborted COPY may take to end before the connection is closed (default 5 s). */
  readonly drainTimeout?: Duration.Input | undefined
}

// -----------------------------------------------------------------------------
// COPY FROM
// -----------------------------------------------------------------------------

/**
 * The CopyFail reason for a scope's exit, after psycopg's
 * `error from Python: <class> - <message>`.
 *
 * @example
 * ```ts
 * Copy.failReason(Exit.fail(new Error("disk full"))) // "error from pgfx: Error - disk full"
 * ```
 *
 * @since 0.1.0
 */
export const failReason: (exit: Exit.Exit<unknown, unknown>) => string = errors.failReason

/**
 * Starts `COPY … FROM STDIN` and returns its writer, for the life of the
 * scope. Call `finish` to end it and get the row count (server errors
 * arrive there as typed errors). When the scope closes on a failure, a
 * defect or an interruption before `finish`, CopyFail is sent with the
 * reason and the server's answer drained: nothing of the COPY is committed
 * and the connection stays usable. A scope that succeeds without `finish`
 * finishes the COPY (a server error then is a defect: prefer `finish`).
 *
 * @example
 * ```ts
 * // psycopg: with cur.copy("COPY t (a, b, c) FROM STDIN") as copy: copy.write_row(...)
 * Effect.scoped(Effect.gen(function*() {
 *   const copy = yield* Copy.from(conn, "COPY t (a, b, c) FROM STDIN", { types: ["int4", "int4", "text"] })
 *   yield* copy.writeRow([10, 20, "hello"])
 *   yield* copy.writeRow([40, null, "world"])
 *   return yield* copy.finish // 2
 * }))
 * ```
 *
 * @since 0.1.0
 */
export const from = <const T extends ReadonlyArray<TypeSpec> | undefined = undefined>(
  conn: CopyConnection,
  sql: string,
  options?: FromOptions<T>
): Effect.Effect<CopyWriter<InputRow<T>>, PgError.PgError, Scope.Scope> =>
  // The writer takes any row; the public type narrows it to the declared types.
  (copyFrom.startFrom(conn, sql, options, true) satisfies Effect.Effect<CopyWriter, PgError.PgError, Scope.Scope>).pipe(
    Effect.withSpan("Copy.from")
  ) as Effect.Effect<unknown, PgError.PgError, Scope.Scope> as Effect.Effect<CopyWriter<InputRow<T>>, PgError.PgError, Scope.Scope>

/**
 * Copies a Stream of rows in (`COPY … FROM STDIN`), consuming it chunk by
 * chunk with backpressure, and returns the rows the server loaded. If the
 * stream fails, the COPY is failed (CopyFail) and the stream's error
 * returned; nothing is committed.
 *
 * @example
 * ```ts
 * const rows = Stream.range(1, 1_000_000).pipe(Stream.map((n) => [n, `item ${n}`] as const))
 * const loaded = yield* Copy.fromStream(conn, "COPY items (id, name) FROM STDIN", rows, { types: ["int4", "text"] })
 * // 1000000
 * ```
 *
 * @since 0.1.0
 */
export const fromStream = <const T extends ReadonlyArray<TypeSpec> | undefined = undefined, E = never, R = never>(
  conn: CopyConnection,
  sql: string,
  rows: Stream.Stream<InputRow<T>, E, R>,
  options?: FromOptions<T>
): Effect.Effect<number, CopyError | E, R> =>
  copyFrom.copyRows(conn, sql, rows as Stream.Stream<ReadonlyArray<unknown>, E, R>, options)

/**
 * Copies a Stream of pre-formatted COPY data in (bytes, or strings for text
 * and CSV) and returns the rows the server loaded.
 *
 * @example
 * ```ts
 * // an HTTP upload, streamed into the table as it arrives
 * const loaded = yield* Copy.fromBytes(conn, "COPY items FROM STDIN", request.stream, { format: "csv", header: true })
 * ```
 *
 * @since 0.1.0
 */
export const fromBytes = <E = never, R = never>(
  conn: CopyConnection,
  sql: string,
  data: Stream.Stream<Uint8Array | string, E, R>,
  options?: FromOptions<undefined>
): Effect.Effect<number, CopyError | E, R> => copyFrom.copyBytes(conn, sql, data, options)

/**
 * Options of `encodeRows`.
 *
 * @since 0.1.0
 */
export interface EncodeOptions<T extends ReadonlyArray<TypeSpec> | undefined = undefined> extends FormatOptions {
  /** Column types: built-in names or OIDs (no server to ask). */
  readonly types?: T
  /** Columns per row (default: the number of types, or the first row's length). */
  readonly columns?: number | undefined
}

/**
 * Encodes rows into COPY data offline, exactly as `writeRow` would send
 * them (psycopg's `FileWriter`): for files that `COPY … FROM` or `write`
 * load later.
 *
 * @example
 * ```ts
 * const data = yield* Copy.encodeRows([[1, "a"], [2, null]], { types: ["int4", "text"] })
 * new TextDecoder().decode(data) // "1\ta\n2\t\\N\n"
 * ```
 *
 * @since 0.1.0
 */
export const encodeRows = <const T extends ReadonlyArray<TypeSpec> | undefined = undefined>(
  rows: Iterable<InputRow<T>>,
  options?: EncodeOptions<T>
): Effect.Effect<Uint8Array, CopyDataError | PgError.PgError> =>
  copyFrom.encodeRows(rows as Iterable<ReadonlyArray<unknown>>, options)

// -----------------------------------------------------------------------------
// COPY TO
// -----------------------------------------------------------------------------

/**
 * Streams the rows of `COPY … TO STDOUT`. With `types` (names or OIDs, one
 * per column) the fields are decoded to the same JavaScript values queries
 * return; without, they stay raw (strings in text and CSV, bytes in
 * binary), NULL as `null`. The connection is held while the stream runs;
 * a slow consumer pauses the socket. Ending the stream early (or
 * interrupting it) cancels the COPY on the server and drains it: the
 * connection stays usable (inside a transaction, the transaction is then
 * aborted, as in psycopg).
 *
 * @example
 * ```ts
 * // psycopg: copy.set_types(["int4", "date"]); for row in copy.rows(): print(row)
 * Copy.to(conn, "COPY (VALUES (10::int, current_date)) TO STDOUT", { types: ["int4", "date"] })
 * // Stream<readonly [number | null, string | null]>
 * ```
 *
 * @since 0.1.0
 */
export const to = <const T extends ReadonlyArray<TypeSpec> | undefined = undefined, F extends Format = "text">(
  conn: CopyConnection,
  sql: string,
  options?: ToOptions<T, F>
): Stream.Stream<OutputRow<T, F>, PgError.PgError> => copyTo.toRows<OutputRow<T, F>>(conn, sql, options)

/**
 * Streams the raw data of `COPY … TO STDOUT`: one block per CopyData
 * message the server sent (a row, for the server's own COPY; the binary
 * header comes with the first row and the trailer alone). Ending early
 * cancels the COPY like `to`.
 *
 * @example
 * ```ts
 * // a CSV download, streamed from the server
 * const body = Copy.toBytes(conn, "COPY items TO STDOUT WITH (FORMAT csv, HEADER true)")
 * ```
 *
 * @since 0.1.0
 */
export const toBytes = (
  conn: CopyConnection,
  sql: string,
  options?: ToOptions<undefined>
): Stream.Stream<Uint8Array, PgError.PgError> => copyTo.toBlocks(conn, sql, options)

// -----------------------------------------------------------------------------
// files
// -----------------------------------------------------------------------------

/**
 * Copies a CSV or text file (gzip when the path ends in `.gz`, or with
 * `gzip: true`) into `COPY … FROM STDIN`. The result is a Stream of
 * progress events (about every `progressInterval`); the last one has
 * `done: true` and the server's row count. The COPY runs as the stream is
 * consumed: run it to its end (`Stream.runLast`, `withProgressBar`);
 * stopping it early, failing or interrupting fails the COPY, so nothing is
 * committed.
 *
 * @example
 * ```ts
 * const last = yield* Stream.runLast(Copy.fromFile(conn, "COPY items FROM STDIN", "items.csv.gz", { format: "csv" }))
 * // Option.some({ rows: 1000000, done: true, … })
 * ```
 *
 * @since 0.1.0
 */
export const fromFile = (
  conn: CopyConnection,
  sql: string,
  file: string,
  options?: FileOptions
): Stream.Stream<Progress, CopyError | CopyFileError> => files.fromFile(conn, sql, file, options)

/**
 * Copies `COPY … TO STDOUT` into a CSV or text file (gzip when the path
 * ends in `.gz`, or with `gzip: true`). The data goes to a temporary file
 * beside the target, renamed once the COPY succeeded: a failed or stopped
 * COPY leaves no partial file. Returns a Stream of progress events like
 * `fromFile`; the last has `done: true`.
 *
 * @example
 * ```ts
 * yield* Copy.withProgressBar(Copy.toFile(conn, "COPY items TO STDOUT", "items.csv.gz", { format: "csv", header: true }))
 * ```
 *
 * @since 0.1.0
 */
export const toFile = (
  conn: CopyConnection,
  sql: string,
  file: string,
  options?: FileOptions
): Stream.Stream<Progress, PgError.PgError | CopyFileError> => files.toFile(conn, sql, file, options)

/**
 * Options of `withProgressBar`.
 *
 * @since 0.1.0
 */
export interface ProgressBarOptions {
  /** Text before the bar (default `COPY`). */
  readonly label?: string | undefined
  /** Where to draw (default `process.stderr`); nothing is drawn when it is not a terminal. */
  readonly output?: NodeJS.WritableStream | undefined
}

/**
 * Runs a progress stream (`fromFile`, `toFile`) while drawing a terminal
 * progress bar (the `cli-progress` package): percentage of the file when
 * its size is known, rows, rows per second and megabytes. Returns the last
 * event.
 *
 * @example
 * ```ts
 * const last = yield* Copy.withProgressBar(Copy.fromFile(conn, "COPY t FROM STDIN", "t.csv.gz", { format: "csv" }))
 * ```
 *
 * @since 0.1.0
 */
export const withProgressBar = <E, R>(
  events: Stream.Stream<Progress, E, R>,
  options?: ProgressBarOptions
): Effect.Effect<Progress | undefined, E, R> =>
  progress.withProgressBar(events, options?.label ?? "COPY", options?.output ?? process.stderr)
