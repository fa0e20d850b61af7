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
import { type Connection, PgError, PgValue, Session } from "@pgfx/core"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import type * as Pull from "effect/Pull"
import * as Result from "effect/Result"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type * as Arr from "effect/Array"
import { SingleBar } from "cli-progress"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { pipeline } from "node:stream"
import * as zlib from "node:zlib"
import { Chunk, EncodeFailure } from "./internal/chunk.ts"
import { binaryParser, csvParser, type RowParser, textParser } from "./internal/decode.ts"
import { copyCount, CopyInHandler, CopyOutHandler, type Delivery } from "./internal/protocol.ts"
import { RowEncoder } from "./internal/rowEncoder.ts"
import { type Format, type FormatSettings, plan, type Plan } from "./internal/statement.ts"
import { builtinOid } from "./internal/types.ts"

// -----------------------------------------------------------------------------
// models
// -----------------------------------------------------------------------------

/**
 * The data format of a COPY: `text` (PostgreSQL's default), `csv` or
 * `binary`.
 *
 * @since 0.1.0
 */
export type { Format } from "./internal/statement.ts"

/**
 * The JavaScript value each type name decodes to (the same values core's
 * queries return; see `PgValue`).
 *
 * @since 0.1.0
 */
export interface TypeValues {
  readonly bool: boolean
  readonly boolean: boolean
  readonly bytea: Uint8Array
  readonly name: string
  readonly int8: bigint
  readonly bigint: bigint
  readonly int2: number
  readonly smallint: number
  readonly int4: number
  readonly int: number
  readonly integer: number
  readonly text: string
  readonly oid: number
  readonly json: unknown
  readonly jsonb: unknown
  readonly cidr: string
  readonly inet: string
  readonly float4: number
  readonly real: number
  readonly float8: number
  readonly "double precision": number
  readonly float: number
  readonly bpchar: string
  readonly char: string
  readonly character: string
  readonly varchar: string
  readonly "character varying": string
  readonly date: string
  readonly time: bigint
  readonly timetz: string
  readonly timestamp: Date
  readonly "timestamp without time zone": Date
  readonly timestamptz: Date
  readonly "timestamp with time zone": Date
  readonly interval: PgValue.Interval
  readonly numeric: string
  readonly decimal: string
  readonly uuid: string
}

/**
 * The JavaScript values accepted for each type name when writing (wider
 * than `TypeValues` where a conversion is lossless).
 *
 * @since 0.1.0
 */
export interface TypeInputs extends
  Omit<
    TypeValues,
    "int8" | "bigint" | "numeric" | "decimal" | "date" | "time" | "timestamp" | "timestamptz" |
    "timestamp with time zone" | "timestamp without time zone"
  >
{
  readonly int8: bigint | number
  readonly bigint: bigint | number
  readonly numeric: string | number | bigint
  readonly decimal: string | number | bigint
  readonly date: string | Date
  readonly time: bigint | number
  readonly timestamp: Date | number
  readonly "timestamp without time zone": Date | number
  readonly timestamptz: Date | number
  readonly "timestamp with time zone": Date | number
}

/**
 * A built-in type name `types` understands without asking the server.
 *
 * @since 0.1.0
 */
export type TypeName = keyof TypeValues

/**
 * A column type: a built-in name, an array of one (`"int4[]"`), any other
 * type name the server knows (looked up with `::regtype`: enums, domains,
 * `schema.type`), or a type OID.
 *
 * @since 0.1.0
 */
export type TypeSpec = TypeName | `${TypeName}[]` | (string & {}) | number

/**
 * A PostgreSQL array in JavaScript: nested arrays for several dimensions,
 * `null` for NULL elements.
 *
 * @since 0.1.0
 */
export type PgArray<T> = ReadonlyArray<T | null | PgArray<T>>

type ValueOf<S, M> = S extends keyof M ? M[S]
  : S extends `${infer E}[]` ? E extends keyof M ? PgArray<M[E]> : unknown
  : unknown

/**
 * The row `Copy.to` yields for `types` (a tuple typed after the names), or
 * without types the raw fields: strings for text and CSV, bytes for binary.
 *
 * @since 0.1.0
 */
export type OutputRow<T extends ReadonlyArray<TypeSpec> | undefined, F extends Format = Format> = T extends
  ReadonlyArray<TypeSpec> ? { readonly [K in keyof T]: ValueOf<T[K], TypeValues> | null }
  : F extends "binary" ? ReadonlyArray<Uint8Array | null>
  : ReadonlyArray<string | null>

/**
 * The row `writeRow` takes for `types`, or without types any values (their
 * type inferred as for query parameters, `PgValue.int4(1)` and friends
 * accepted everywhere).
 *
 * @since 0.1.0
 */
export type InputRow<T extends ReadonlyArray<TypeSpec> | undefined> = T extends ReadonlyArray<TypeSpec>
  ? { readonly [K in keyof T]: ValueOf<T[K], TypeInputs> | PgValue.Parameter | null | undefined }
  : ReadonlyArray<unknown>

/**
 * Format options. With `format: "csv"` the CSV options apply; `header` is
 * `true` (the data has a header line) or, for `writeRow`, the column names
 * to write as header. `delimiter` and `null` also apply to `text`.
 *
 * @since 0.1.0
 */
export interface FormatOptions {
  /** `text` (default), `csv` or `binary`. */
  readonly format?: Format | undefined
  /** Field separator: tab in text, `,` in CSV. */
  readonly delimiter?: string | undefined
  /** How NULL is written: `\N` in text, an unquoted empty field in CSV. */
  readonly null?: string | undefined
  /** CSV quote character (default `"`). */
  readonly quote?: string | undefined
  /** CSV escape character inside quotes (default: the quote, doubled). */
  readonly escape?: string | undefined
  /** CSV: `true` when the data has a header line; for `writeRow`, the names to write as header. */
  readonly header?: boolean | ReadonlyArray<string> | undefined
}

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
 * What a COPY needs of a connection: core's `Connection` (any row shape).
 *
 * @since 0.1.0
 */
export interface CopyConnection {
  /** The low-level session the COPY sub-protocol runs on. */
  readonly session: Session.Session
  /** Cancels a COPY the server is still running (ending a `to` stream early). */
  readonly cancel: Effect.Effect<void, PgError.ConnectionError>
  /** Runs a statement; used to resolve type names the codecs do not know. */
  readonly execute: (sql: string, params?: ReadonlyArray<unknown>) => Effect.Effect<
    Connection.QueryResult<unknown>,
    PgError.PgError
  >
}

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
 * Progress of `fromFile` / `toFile`.
 *
 * @since 0.1.0
 */
export interface Progress {
  /** Rows so far (counted from the data; the final event has the server's count). */
  readonly rows: number
  /** COPY data bytes so far (uncompressed). */
  readonly bytes: number
  /** File bytes read or written so far (compressed when gzip). */
  readonly fileBytes: number
  /** Size of the input file (`fromFile`), for a percentage. */
  readonly totalFileBytes: number | undefined
  /** Time since the COPY started. */
  readonly elapsedMillis: number
  /** Average rate since the start. */
  readonly rowsPerSecond: number
  /** Average rate of COPY data since the start. */
  readonly bytesPerSecond: number
  /** The last event: the COPY is over and committed. */
  readonly done: boolean
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
// shared
// -----------------------------------------------------------------------------

const DEFAULT_CHUNK = 64 * 1024
const DEFAULT_DRAIN = Duration.seconds(5)
const COPY_DONE = Session.encodeCopyDone()

const formatOptions = (options: FormatOptions | undefined): FormatSettings => options ?? {}

const planOrFail = (sql: string, options: FormatOptions | undefined): Effect.Effect<Plan, PgError.PgError> => {
  const planned = plan(sql, formatOptions(options))
  return Result.isSuccess(planned) ? Effect.succeed(planned.success) : Effect.fail(planned.failure)
}

/** Resolves type names to OIDs; names the codecs do not know are asked of the server. */
const resolveTypes = (
  conn: CopyConnection,
  types: ReadonlyArray<TypeSpec> | undefined
): Effect.Effect<ReadonlyArray<number> | undefined, PgError.PgError> => {
  if (types === undefined) return Effect.succeed(undefined)
  return Effect.forEach(types, (spec) => {
    if (typeof spec === "number") {
      return Number.isInteger(spec) && spec > 0
        ? Effect.succeed(spec)
        : Effect.fail(new PgError.InterfaceError({ message: `invalid type OID ${spec}` }))
    }
    const known = builtinOid(spec)
    if (known !== undefined) return Effect.succeed(known)
    // Domains decode and encode as their base type, enums as text.
    return conn.execute(
      "SELECT CASE t.typtype WHEN 'd' THEN t.typbasetype WHEN 'e' THEN 25 ELSE t.oid END AS oid " +
        "FROM pg_catalog.pg_type t WHERE t.oid = $1::text::regtype",
      [spec]
    ).pipe(
      Effect.map((result) => {
        const row: unknown = result.rows[0]
        return Number(Array.isArray(row) ? row[0] : (row as { readonly oid?: unknown } | undefined)?.oid)
      })
    )
  })
}

const nameOf = (error: unknown): string => {
  if (typeof error === "object" && error !== null) {
    const tagged = error as { readonly _tag?: unknown; readonly name?: unknown }
    if (typeof tagged._tag === "string") return tagged._tag
    if (typeof tagged.name === "string") return tagged.name
  }
  return typeof error
}

const messageOf = (error: unknown): string => {
  if (typeof error === "object" && error !== null && typeof (error as { message?: unknown }).message === "string") {
    return (error as { message: string }).message
  }
  return String(error)
}

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
export const failReason = (exit: Exit.Exit<unknown, unknown>): string => {
  if (Exit.isSuccess(exit)) return "error from pgfx: the COPY was stopped before the end of its data"
  const cause = exit.cause
  if (Cause.hasInterruptsOnly(cause)) return "error from pgfx: interrupted"
  const error = Cause.squash(cause)
  return `error from pgfx: ${nameOf(error)} - ${messageOf(error)}`
}

const logNotices = (notices: ReadonlyArray<PgError.Diagnostic>): Effect.Effect<void> =>
  Effect.forEach(notices, (notice) =>
    Effect.logInfo(`${notice.severity}: ${notice.message}`).pipe(
      Effect.annotateLogs({ sqlState: notice.sqlState, source: "postgresql" })
    ), { discard: true })

/** Waits for a handler to end; cancels, then closes the connection, when it will not. */
const drain = (
  conn: CopyConnection,
  handler: CopyInHandler | CopyOutHandler,
  timeout: Duration.Duration,
  cancelFirst: boolean
): Effect.Effect<void> =>
  Effect.gen(function*() {
    if (handler.done) return
    if (!cancelFirst) {
      const ended = yield* handler.until(() => handler.done).pipe(Effect.timeoutOption(timeout))
      if (Option.isSome(ended)) return
    }
    const cancelled = yield* Effect.exit(conn.cancel)
    if (Exit.isSuccess(cancelled)) {
      const ended = yield* handler.until(() => handler.done).pipe(Effect.timeoutOption(timeout))
      if (Option.isSome(ended)) return
    }
    yield* Effect.logWarning("pgfx: a COPY did not end in time; closing the connection")
    yield* conn.session.invalidate("a COPY did not end in time")
  })

// -----------------------------------------------------------------------------
// COPY FROM
// -----------------------------------------------------------------------------

class Writer implements CopyWriter<ReadonlyArray<unknown>> {
  readonly chunk: Chunk
  rowsWritten = 0
  columns = 0
  private encoder: RowEncoder | undefined
  private rawWritten = false
  /** CopyDone or CopyFail was sent (or is being sent). */
  private ending = false
  private closed = false
  private bytesWritten = 0

  constructor(
    readonly conn: CopyConnection,
    readonly hold: Session.SessionHold,
    readonly handler: CopyInHandler,
    readonly plan: Plan,
    readonly types: ReadonlyArray<number> | undefined,
    readonly drainTimeout: Duration.Duration,
    chunkSize: number,
    /** Finish on a successful scope exit (false: abort, for `fromFile`'s early stop). */
    readonly autoFinish: boolean
  ) {
    this.chunk = new Chunk(chunkSize)
  }

  get format(): Format {
    return this.plan.format
  }

  get bytesSent(): number {
    return this.bytesWritten
  }

  /** Called once CopyInResponse arrived: checks it and builds the column encoders. */
  start(): PgError.PgError | undefined {
    const handler = this.handler
    if ((handler.format === 1) !== (this.plan.format === "binary")) {
      return new PgError.InterfaceError({
        message: `the server expects ${handler.format === 1 ? "binary" : "text"} COPY data, but the format is ${this.plan.format}`
      })
    }
    this.columns = handler.columns
    const types = this.types
    if (types !== undefined && types.length !== this.columns) {
      return new PgError.InterfaceError({
        message: `${types.length} types were given for a COPY of ${this.columns} columns`
      })
    }
    this.encoder = new RowEncoder(this.plan, this.columns, types)
    return undefined
  }

  /** The failure to report when the conversation is already over. */
  private over(): Effect.Effect<never, CopyError> {
    return Effect.flatMap(this.handler.await, () =>
      Effect.fail(this.handler.outcomeError() ?? new PgError.InterfaceError({ message: "the COPY is over" })))
  }

  private usable(): Effect.Effect<never, CopyError> | undefined {
    if (this.ending) return Effect.fail(new PgError.InterfaceError({ message: "the COPY is over" }))
    if (this.handler.done) return this.over()
    return undefined
  }

  private readonly sendReady: Effect.Effect<void, CopyError> = Effect.suspend(() => {
    const frames = this.chunk.take()
    if (frames.length === 0) return Effect.void
    return Effect.forEach(frames, (frame) =>
      Effect.suspend(() => {
        if (this.handler.done) return this.over()
        this.bytesWritten += frame.length - 5
        return this.conn.session.write(frame)
      }), { discard: true })
  })

  private encodeRow(row: ReadonlyArray<unknown>): void {
    this.encoder!.row(this.chunk, row)
  }

  private rowError(error: unknown): CopyDataError {
    return rowError(error, this.rowsWritten + 1)
  }

  readonly writeRow = (row: ReadonlyArray<unknown>): Effect.Effect<void, CopyError> => {
    const problem = this.usable()
    if (problem !== undefined) return problem
    try {
      this.encodeRow(row)
    } catch (error) {
      this.chunk.dropRow()
      return Effect.fail(this.rowError(error))
    }
    this.rowsWritten++
    return this.chunk.ready.length === 0 ? Effect.void : this.sendReady
  }

  readonly writeRows = (rows: Iterable<ReadonlyArray<unknown>>): Effect.Effect<void, CopyError> => {
    const problem = this.usable()
    if (problem !== undefined) return problem
    const iterator = rows[Symbol.iterator]()
    // Encodes until a chunk is ready, sends it (waiting while the socket is
    // full), and goes on: the server works on one chunk while the next is
    // encoded, and memory stays at a chunk or two however many rows come.
    const step: Effect.Effect<void, CopyError> = Effect.suspend(() => {
      for (;;) {
        const next = iterator.next()
        if (next.done === true) return this.chunk.ready.length === 0 ? Effect.void : this.sendReady
        try {
          this.encodeRow(next.value)
        } catch (error) {
          this.chunk.dropRow()
          return Effect.andThen(this.sendReady, Effect.fail(this.rowError(error)))
        }
        this.rowsWritten++
        if (this.chunk.ready.length > 0) return Effect.andThen(this.sendReady, step)
      }
    })
    return step
  }

  readonly write = (data: Uint8Array | string): Effect.Effect<void, CopyError> => {
    const problem = this.usable()
    if (problem !== undefined) return problem
    if (typeof data === "string") {
      if (this.plan.format === "binary") {
        return Effect.fail(new PgError.InterfaceError({ message: "cannot copy str data in binary mode" }))
      }
      try {
        this.chunk.appendRawText(data)
      } catch (error) {
        return Effect.fail(new CopyDataError({ message: `cannot write the data: ${messageOf(error)}` }))
      }
    } else if (data instanceof Uint8Array) {
      this.chunk.appendRaw(data)
    } else {
      return Effect.fail(new PgError.InterfaceError({ message: "write takes a Uint8Array or a string" }))
    }
    this.rawWritten = true
    this.encoder?.skipHeader()
    return this.chunk.ready.length === 0 ? Effect.void : this.sendReady
  }

  get flush(): Effect.Effect<void, CopyError> {
    return Effect.suspend(() => {
      const problem = this.usable()
      if (problem !== undefined) return problem
      this.chunk.frame()
      return this.sendReady
    })
  }

  get finish(): Effect.Effect<number, CopyError> {
    return Effect.suspend(() => {
      const problem = this.usable()
      if (problem !== undefined) return problem
      this.encoder!.end(this.chunk, this.rawWritten)
      this.chunk.frame()
      const handler = this.handler
      return this.sendReady.pipe(
        Effect.andThen(Effect.suspend(() => {
          if (handler.done) return this.over()
          this.ending = true
          return this.conn.session.write(COPY_DONE)
        })),
        Effect.andThen(this.hold.run(this.conn.session.awaitResponse(handler))),
        Effect.andThen(Effect.suspend(() => {
          const error = handler.outcomeError()
          return error === undefined ? Effect.succeed(copyCount(handler.commandTag)) : Effect.fail(error)
        })),
        Effect.ensuring(Effect.suspend(() => handler.done ? this.close(Exit.void) : Effect.void))
      )
    })
  }

  /** The scope's finaliser: finish on success (unless told not to), CopyFail otherwise; then release. */
  close(exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (this.closed) return Effect.void
      const handler = this.handler
      const end: Effect.Effect<void> = handler.done || this.ending
        ? Effect.void
        : Exit.isSuccess(exit) && this.autoFinish
        ? this.finish.pipe(
          Effect.catchCause((cause) =>
            handler.done ? Effect.failCause(cause) : Effect.andThen(this.abort(failReason(Exit.failCause(cause))), Effect.failCause(cause))
          ),
          Effect.asVoid,
          Effect.orDie
        )
        : this.abort(failReason(exit))
      this.closed = true
      return end.pipe(
        Effect.ensuring(Effect.suspend(() => logNotices(handler.notices))),
        Effect.ensuring(this.hold.release)
      )
    })
  }

  /** CopyFail with `reason`, then drain (cancel, then close the connection, if the server does not answer). */
  private abort(reason: string): Effect.Effect<void> {
    return Effect.suspend(() => {
      const handler = this.handler
      if (handler.done) return Effect.void
      this.ending = true
      handler.failSent = true
      // Before CopyInResponse the server may be waiting (for a lock): it reads
      // CopyFail only once the COPY starts, so it is cancelled at once.
      return this.conn.session.write(Session.encodeCopyFail(reason)).pipe(
        Effect.timeoutOption(this.drainTimeout),
        Effect.ignore,
        Effect.andThen(drain(this.conn, handler, this.drainTimeout, !handler.sawCopy))
      )
    })
  }
}

const rowError = (error: unknown, row: number): CopyDataError => {
  const column = error instanceof EncodeFailure ? error.column : undefined
  return new CopyDataError({
    message: `cannot write row ${row}${column === undefined ? "" : `, column ${column + 1}`}: ${messageOf(error)}`,
    row,
    column,
    cause: error instanceof EncodeFailure ? undefined : error
  })
}

const startFrom = (
  conn: CopyConnection,
  sql: string,
  options: FromOptions<ReadonlyArray<TypeSpec> | undefined> | undefined,
  autoFinish: boolean
): Effect.Effect<Writer, PgError.PgError, Scope.Scope> =>
  Effect.gen(function*() {
    const planned = yield* planOrFail(sql, options)
    const types = yield* resolveTypes(conn, options?.types)
    const chunkSize = Math.max(1024, options?.chunkSize ?? DEFAULT_CHUNK)
    const drainTimeout = Duration.fromInputUnsafe(options?.drainTimeout ?? DEFAULT_DRAIN)
    const hold = yield* conn.session.hold
    const handler = new CopyInHandler(planned.sql)
    const writer = new Writer(conn, hold, handler, planned, types, drainTimeout, chunkSize, autoFinish)
    yield* Effect.addFinalizer((exit) => writer.close(exit))
    yield* hold.run(conn.session.send([Session.encodeQuery(planned.sql)], handler))
    yield* handler.until(() => handler.settled)
    if (!handler.sawCopy) {
      yield* handler.await
      yield* writer.close(Exit.void)
      return yield* Effect.fail(
        handler.outcomeError() ?? new PgError.InterfaceError({ message: "the statement did not start a COPY" })
      )
    }
    const problem = writer.start()
    if (problem !== undefined) {
      yield* writer.close(Exit.fail(problem))
      return yield* Effect.fail(problem)
    }
    return writer
  })

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
  startFrom(conn, sql, options, true).pipe(Effect.withSpan("Copy.from")) as Effect.Effect<unknown, PgError.PgError, Scope.Scope> as Effect.Effect<
    CopyWriter<InputRow<T>>,
    PgError.PgError,
    Scope.Scope
  >

const copyRows = Effect.fn("Copy.fromStream")(function*<E, R>(
  conn: CopyConnection,
  sql: string,
  rows: Stream.Stream<ReadonlyArray<unknown>, E, R>,
  options: FromOptions<ReadonlyArray<TypeSpec> | undefined> | undefined
) {
  return yield* Effect.scoped(Effect.gen(function*() {
    const writer = yield* startFrom(conn, sql, options, true)
    yield* Stream.runForEachArray(rows, (batch) => writer.writeRows(batch))
    return yield* writer.finish
  }))
})

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
  copyRows(conn, sql, rows as Stream.Stream<ReadonlyArray<unknown>, E, R>, options)

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
export const fromBytes: <E = never, R = never>(
  conn: CopyConnection,
  sql: string,
  data: Stream.Stream<Uint8Array | string, E, R>,
  options?: FromOptions<undefined>
) => Effect.Effect<number, CopyError | E, R> = Effect.fn("Copy.fromBytes")(function*<E, R>(
  conn: CopyConnection,
  sql: string,
  data: Stream.Stream<Uint8Array | string, E, R>,
  options?: FromOptions<undefined>
) {
  return yield* Effect.scoped(Effect.gen(function*() {
    const writer = yield* startFrom(conn, sql, options, true)
    yield* Stream.runForEach(data, (piece) => writer.write(piece))
    return yield* writer.finish
  }))
})

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
  Effect.suspend((): Effect.Effect<Uint8Array, CopyDataError | PgError.PgError> => {
    const planned = plan("COPY data FROM STDIN", formatOptions(options))
    if (Result.isFailure(planned)) return Effect.fail(planned.failure)
    const types: Array<number> | undefined = options?.types === undefined ? undefined : []
    for (const spec of options?.types ?? []) {
      const oid = typeof spec === "number" ? spec : builtinOid(spec)
      if (oid === undefined) {
        return Effect.fail(new PgError.InterfaceError({ message: `unknown type "${spec}" (encodeRows has no server to ask)` }))
      }
      types!.push(oid)
    }
    const list = Array.from(rows as Iterable<ReadonlyArray<unknown>>)
    const columns = options?.columns ?? types?.length ?? (list.length > 0 && Array.isArray(list[0]) ? list[0].length : 0)
    const encoder = new RowEncoder(planned.success, columns, types)
    const chunk = new Chunk(DEFAULT_CHUNK)
    for (let i = 0; i < list.length; i++) {
      try {
        encoder.row(chunk, list[i])
      } catch (error) {
        return Effect.fail(rowError(error, i + 1))
      }
    }
    encoder.end(chunk, false)
    chunk.frame()
    const frames = chunk.take()
    const out = new Uint8Array(frames.reduce((size, frame) => size + frame.length - 5, 0))
    let at = 0
    for (const frame of frames) {
      out.set(frame.subarray(5), at)
      at += frame.length - 5
    }
    return Effect.succeed(out)
  })

// -----------------------------------------------------------------------------
// COPY TO
// -----------------------------------------------------------------------------

/** Starts a COPY TO in the current scope: held session, handler, and the finaliser that cancels it. */
const startTo = (
  conn: CopyConnection,
  sql: string,
  delivery: Delivery,
  drainTimeout: Duration.Duration
): Effect.Effect<{ readonly handler: CopyOutHandler; readonly release: Effect.Effect<void> }, PgError.PgError, Scope.Scope> =>
  Effect.gen(function*() {
    const hold = yield* conn.session.hold
    const handler = new CopyOutHandler(sql, delivery)
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        if (!handler.done) {
          handler.discard()
          yield* drain(conn, handler, drainTimeout, !handler.dataEnded)
        }
        yield* logNotices(handler.notices)
      }).pipe(Effect.ensuring(hold.release))
    )
    yield* hold.run(conn.session.send([Session.encodeQuery(sql)], handler))
    return { handler, release: hold.release }
  })

/** The pull of a COPY TO: what is buffered, or wait; the outcome once it is over. */
const pullItems = <A>(handler: CopyOutHandler, release: Effect.Effect<void>): Pull.Pull<Arr.NonEmptyReadonlyArray<A>, PgError.PgError> => {
  const pull: Pull.Pull<Arr.NonEmptyReadonlyArray<A>, PgError.PgError> = Effect.suspend(() => {
    if (handler.failure !== undefined) return Effect.fail(handler.failure)
    if (handler.items.length > 0) return Effect.succeed(handler.take() as unknown as Arr.NonEmptyReadonlyArray<A>)
    if (handler.done) {
      return handler.await.pipe(
        Effect.andThen(release),
        Effect.andThen(Effect.suspend((): Pull.Pull<never, PgError.PgError> => {
          const error = handler.outcomeError()
          return error === undefined ? Cause.done() : Effect.fail(error)
        }))
      )
    }
    return Effect.andThen(
      handler.until(() => handler.items.length > 0 || handler.failure !== undefined || handler.done),
      pull
    )
  })
  return pull
}

const rowParser = (
  planned: Plan,
  types: ReadonlyArray<number> | undefined
) =>
(columns: number, format: number): RowParser | PgError.PgError => {
  if ((format === 1) !== (planned.format === "binary")) {
    return new PgError.InterfaceError({
      message: `the server sends ${format === 1 ? "binary" : "text"} COPY data, but the format is ${planned.format}`
    })
  }
  if (types !== undefined && types.length !== columns) {
    return new PgError.InterfaceError({
      message: `${types.length} types were given for a COPY of ${columns} columns`
    })
  }
  const header = planned.header !== false
  switch (planned.format) {
    case "binary":
      return binaryParser(types, columns)
    case "csv":
      return csvParser(types, columns, planned.dialect, header)
    case "text":
      return textParser(types, columns, planned.dialect, header)
  }
}

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
): Stream.Stream<OutputRow<T, F>, PgError.PgError> =>
  Stream.unwrap(Effect.gen(function*() {
    const planned = yield* planOrFail(sql, options)
    const types = yield* resolveTypes(conn, options?.types)
    const drainTimeout = Duration.fromInputUnsafe(options?.drainTimeout ?? DEFAULT_DRAIN)
    const { handler, release } = yield* startTo(
      conn,
      planned.sql,
      { _tag: "Rows", parser: rowParser(planned, types) },
      drainTimeout
    )
    return Stream.fromPull(Effect.succeed(pullItems<OutputRow<T, F>>(handler, release)))
  })).pipe(Stream.scoped, Stream.withSpan("Copy.to"))

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
): Stream.Stream<Uint8Array, PgError.PgError> =>
  Stream.unwrap(Effect.gen(function*() {
    const planned = yield* planOrFail(sql, options)
    const drainTimeout = Duration.fromInputUnsafe(options?.drainTimeout ?? DEFAULT_DRAIN)
    const { handler, release } = yield* startTo(conn, planned.sql, { _tag: "Blocks" }, drainTimeout)
    return Stream.fromPull(Effect.succeed(pullItems<Uint8Array>(handler, release)))
  })).pipe(Stream.scoped, Stream.withSpan("Copy.toBytes"))

// -----------------------------------------------------------------------------
// files
// -----------------------------------------------------------------------------

const fileError = (file: string, what: string) => (cause: unknown) =>
  new CopyFileError({ message: `${what} ${file}: ${messageOf(cause)}`, path: file, cause })

const progressOf = (
  rows: number,
  bytes: number,
  fileBytes: number,
  totalFileBytes: number | undefined,
  elapsedMillis: number,
  done: boolean
): Progress => {
  const seconds = Math.max(elapsedMillis, 1) / 1000
  return {
    rows,
    bytes,
    fileBytes,
    totalFileBytes,
    elapsedMillis,
    rowsPerSecond: rows / seconds,
    bytesPerSecond: bytes / seconds,
    done
  }
}

/** Counts row ends in data: every newline in text format; newlines outside quotes in CSV. */
const rowCounter = (planned: Plan): (bytes: Uint8Array) => number => {
  if (planned.format !== "csv") {
    return (bytes) => {
      let rows = 0
      for (let at = bytes.indexOf(10); at !== -1; at = bytes.indexOf(10, at + 1)) rows++
      return rows
    }
  }
  const { escape, quote } = planned.dialect
  let quoted = false
  let escaped = false
  return (bytes) => {
    let rows = 0
    for (let i = 0; i < bytes.length; i++) {
      const byte = bytes[i]
      if (escaped) {
        escaped = false
      } else if (quoted && escape !== quote && byte === escape) {
        escaped = true
      } else if (byte === quote) {
        quoted = !quoted
      } else if (byte === 10 && !quoted) {
        rows++
      }
    }
    return rows
  }
}

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
): Stream.Stream<Progress, CopyError | CopyFileError> =>
  Stream.unwrap(Effect.gen(function*() {
    if ((options?.format as Format | undefined) === "binary") {
      return yield* Effect.fail(new PgError.InterfaceError({ message: "fromFile copies CSV or text files" }))
    }
    const stat = yield* Effect.tryPromise({ try: () => fs.promises.stat(file), catch: fileError(file, "cannot read") })
    const gzip = options?.gzip ?? file.endsWith(".gz")
    const interval = Duration.toMillis(Duration.fromInputUnsafe(options?.progressInterval ?? "100 millis"))
    const input = fs.createReadStream(file, { highWaterMark: 64 * 1024 })
    const source = gzip
      ? pipeline(input, zlib.createGunzip(), () => {})
      : input
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        input.destroy()
        source.destroy()
      })
    )
    const iterator = (source as AsyncIterable<Buffer>)[Symbol.asyncIterator]()
    const writer = yield* startFrom(conn, sql, options, false)
    const countRows = rowCounter(writer.plan)
    const headerLines = writer.plan.header === false ? 0 : 1
    const started = yield* Clock.currentTimeMillis
    let lastEvent = started
    let rows = 0
    let finished = false
    const pull: Pull.Pull<Arr.NonEmptyReadonlyArray<Progress>, CopyError | CopyFileError> = Effect.gen(function*() {
      if (finished) return yield* Cause.done()
      for (;;) {
        const next = yield* Effect.tryPromise({ try: () => iterator.next(), catch: fileError(file, "cannot read") })
        const now = yield* Clock.currentTimeMillis
        if (next.done === true) {
          const loaded = yield* writer.finish
          finished = true
          return [progressOf(loaded, writer.bytesSent, input.bytesRead, stat.size, now - started, true)] as const
        }
        rows += countRows(next.value)
        yield* writer.write(next.value)
        if (now - lastEvent >= interval) {
          lastEvent = now
          const shown = Math.max(0, rows - headerLines)
          return [progressOf(shown, writer.bytesSent, input.bytesRead, stat.size, now - started, false)] as const
        }
      }
    })
    return Stream.fromPull(Effect.succeed(pull))
  })).pipe(Stream.scoped, Stream.withSpan("Copy.fromFile"))

/** Writes a buffer to a Node writable, waiting for `drain` when it is full. */
const writeTo = (target: NodeJS.WritableStream, bytes: Uint8Array, file: string): Effect.Effect<void, CopyFileError> =>
  Effect.callback<void, CopyFileError>((resume) => {
    if (target.write(bytes)) return resume(Effect.void)
    const onDrain = () => {
      cleanup()
      resume(Effect.void)
    }
    const onError = (cause: unknown) => {
      cleanup()
      resume(Effect.fail(fileError(file, "cannot write")(cause)))
    }
    const cleanup = () => {
      target.off("drain", onDrain)
      target.off("error", onError)
    }
    target.once("drain", onDrain)
    target.once("error", onError)
    return Effect.sync(cleanup)
  })

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
): Stream.Stream<Progress, PgError.PgError | CopyFileError> =>
  Stream.unwrap(Effect.gen(function*() {
    if ((options?.format as Format | undefined) === "binary") {
      return yield* Effect.fail(new PgError.InterfaceError({ message: "toFile writes CSV or text files" }))
    }
    const planned = yield* planOrFail(sql, options)
    const gzip = options?.gzip ?? file.endsWith(".gz")
    const interval = Duration.toMillis(Duration.fromInputUnsafe(options?.progressInterval ?? "100 millis"))
    const drainTimeout = Duration.fromInputUnsafe(options?.drainTimeout ?? DEFAULT_DRAIN)
    const temporary = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(4).toString("hex")}.partial`)
    const output = fs.createWriteStream(temporary)
    const compressor = gzip ? zlib.createGzip() : undefined
    const target: NodeJS.WritableStream = compressor ?? output
    const closed = new Promise<void>((resolve, reject) => {
      if (compressor !== undefined) pipeline(compressor, output, (error) => (error ? reject(error) : resolve()))
      else output.once("close", resolve).once("error", reject)
    })
    closed.catch(() => {})
    let committed = false
    yield* Effect.addFinalizer(() =>
      committed ? Effect.void : Effect.promise(async () => {
        compressor?.destroy()
        output.destroy()
        await fs.promises.rm(temporary, { force: true })
      })
    )
    yield* Effect.tryPromise({
      try: () => new Promise<void>((resolve, reject) => output.once("open", () => resolve()).once("error", reject)),
      catch: fileError(temporary, "cannot create")
    })
    const { handler, release } = yield* startTo(conn, planned.sql, { _tag: "Chunks", size: options?.chunkSize ?? DEFAULT_CHUNK }, drainTimeout)
    const items = pullItems<Uint8Array>(handler, release)
    const headerLines = planned.header === false ? 0 : 1
    const started = yield* Clock.currentTimeMillis
    let lastEvent = started
    let finished = false
    const progress = (now: number, done: boolean, rows: number) =>
      progressOf(rows, handler.bytes, output.bytesWritten, undefined, now - started, done)
    const pull: Pull.Pull<Arr.NonEmptyReadonlyArray<Progress>, PgError.PgError | CopyFileError> = Effect.gen(function*() {
      if (finished) return yield* Cause.done()
      for (;;) {
        const next = yield* Effect.result(items)
        const now = yield* Clock.currentTimeMillis
        if (Result.isFailure(next)) {
          if (!Cause.isDone(next.failure)) return yield* Effect.fail(next.failure)
          target.end()
          yield* Effect.tryPromise({ try: () => closed, catch: fileError(temporary, "cannot write") })
          yield* Effect.tryPromise({ try: () => fs.promises.rename(temporary, file), catch: fileError(file, "cannot create") })
          committed = true
          finished = true
          return [progress(now, true, copyCount(handler.commandTag))] as const
        }
        for (const chunk of next.success) yield* writeTo(target, chunk, temporary)
        if (now - lastEvent >= interval) {
          lastEvent = now
          return [progress(now, false, Math.max(0, handler.messages - headerLines))] as const
        }
      }
    })
    return Stream.fromPull(Effect.succeed(pull))
  })).pipe(Stream.scoped, Stream.withSpan("Copy.toFile"))

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

const megabytes = (bytes: number): string => (bytes / 1048576).toFixed(1)

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
export const withProgressBar: <E, R>(
  progress: Stream.Stream<Progress, E, R>,
  options?: ProgressBarOptions
) => Effect.Effect<Progress | undefined, E, R> = Effect.fnUntraced(function*<E, R>(
  progress: Stream.Stream<Progress, E, R>,
  options?: ProgressBarOptions
) {
  const label = options?.label ?? "COPY"
  let bar: SingleBar | undefined
  let last: Progress | undefined
  const payload = (event: Progress) => ({
    rows: event.rows.toLocaleString("en-US"),
    rate: Math.round(event.rowsPerSecond).toLocaleString("en-US"),
    mb: megabytes(event.bytes)
  })
  return yield* Stream.runForEach(progress, (event) =>
    Effect.sync(() => {
      last = event
      if (bar === undefined) {
        const known = event.totalFileBytes !== undefined && event.totalFileBytes > 0
        bar = new SingleBar({
          format: known
            ? `${label} [{bar}] {percentage}% | {rows} rows | {rate} rows/s | {mb} MB`
            : `${label} {rows} rows | {rate} rows/s | {mb} MB | {duration_formatted}`,
          stream: options?.output ?? process.stderr,
          hideCursor: true,
          barCompleteChar: "\u2588",
          barIncompleteChar: "\u2591"
        })
        bar.start(known ? event.totalFileBytes! : 1, 0, payload(event))
      }
      bar.update(event.totalFileBytes !== undefined ? event.fileBytes : 0, payload(event))
    })).pipe(
      Effect.map(() => last),
      Effect.ensuring(Effect.sync(() => bar?.stop()))
    )
})
