/**
 * COPY FROM STDIN: the scoped `Writer` (rows encoded into chunks, sent with
 * backpressure, CopyDone or CopyFail at the end), how it is started on a
 * held connection, the Stream helpers built on it, and `encodeRows`, the
 * same encoding without a server.
 */
import { PgError, Session } from "@pgfx/core"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Result from "effect/Result"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { Chunk, DEFAULT_CHUNK_SIZE } from "./chunk.ts"
import { type CopyConnection, drain, drainTimeoutOf, logNotices, resolveTypes } from "./connection.ts"
import { CopyDataError, type CopyError, failReason, messageOf, rowError } from "./errors.ts"
import { copyCount, CopyInHandler } from "./protocol.ts"
import { RowEncoder } from "./rowEncoder.ts"
import { type Format, type FormatOptions, plan, type Plan, planOrFail } from "./statement.ts"
import { builtinOid } from "./types.ts"

/** What starting a COPY FROM reads of the options (`FromOptions` and `FileOptions` have it). */
export interface FromSettings extends FormatOptions {
  readonly types?: ReadonlyArray<string | number> | undefined
  readonly chunkSize?: number | undefined
  readonly drainTimeout?: Duration.Input | undefined
}

const COPY_DONE = Session.encodeCopyDone()

/** The writing end of a COPY FROM STDIN (`Copy.CopyWriter`). */
export class Writer {
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

/** Starts `COPY … FROM STDIN` on a held connection and returns its writer, closed with the scope. */
export const startFrom = (
  conn: CopyConnection,
  sql: string,
  options: FromSettings | undefined,
  autoFinish: boolean
): Effect.Effect<Writer, PgError.PgError, Scope.Scope> =>
  Effect.gen(function*() {
    const planned = yield* planOrFail(sql, options)
    const types = yield* resolveTypes(conn, options?.types)
    const chunkSize = Math.max(1024, options?.chunkSize ?? DEFAULT_CHUNK_SIZE)
    const drainTimeout = drainTimeoutOf(options)
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

/** Copies a Stream of rows in and returns the rows loaded. */
export const copyRows = Effect.fn("Copy.fromStream")(function*<E, R>(
  conn: CopyConnection,
  sql: string,
  rows: Stream.Stream<ReadonlyArray<unknown>, E, R>,
  options: FromSettings | undefined
) {
  return yield* Effect.scoped(Effect.gen(function*() {
    const writer = yield* startFrom(conn, sql, options, true)
    yield* Stream.runForEachArray(rows, (batch) => writer.writeRows(batch))
    return yield* writer.finish
  }))
})

/** Copies a Stream of pre-formatted data in and returns the rows loaded. */
export const copyBytes = Effect.fn("Copy.fromBytes")(function*<E, R>(
  conn: CopyConnection,
  sql: string,
  data: Stream.Stream<Uint8Array | string, E, R>,
  options: FromSettings | undefined
) {
  return yield* Effect.scoped(Effect.gen(function*() {
    const writer = yield* startFrom(conn, sql, options, true)
    yield* Stream.runForEach(data, (piece) => writer.write(piece))
    return yield* writer.finish
  }))
})

/** What `encodeRows` reads of its options (`EncodeOptions`). */
export interface EncodeSettings extends FormatOptions {
  readonly types?: ReadonlyArray<string | number> | undefined
  readonly columns?: number | undefined
}

/** Encodes rows into COPY data offline, as `writeRow` would send them. */
export const encodeRows = (
  rows: Iterable<ReadonlyArray<unknown>>,
  options: EncodeSettings | undefined
): Effect.Effect<Uint8Array, CopyDataError | PgError.PgError> =>
  Effect.suspend((): Effect.Effect<Uint8Array, CopyDataError | PgError.PgError> => {
    const planned = plan("COPY data FROM STDIN", options)
    if (Result.isFailure(planned)) return Effect.fail(planned.failure)
    const types: Array<number> | undefined = options?.types === undefined ? undefined : []
    for (const spec of options?.types ?? []) {
      const oid = typeof spec === "number" ? spec : builtinOid(spec)
      if (oid === undefined) {
        return Effect.fail(new PgError.InterfaceError({ message: `unknown type "${spec}" (encodeRows has no server to ask)` }))
      }
      types!.push(oid)
    }
    const list = Array.from(rows)
    const columns = options?.columns ?? types?.length ?? (list.length > 0 && Array.isArray(list[0]) ? list[0].length : 0)
    const encoder = new RowEncoder(planned.success, columns, types)
    const chunk = new Chunk(DEFAULT_CHUNK_SIZE)
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
