/**
 * The low-level session API of a connection: what `@pgfx/copy`, `@pgfx/pool`
 * and other protocol-level extensions build on, instead of core's internals.
 *
 * A request is a batch of frontend frames written at once plus a
 * `ResponseHandler` that receives the backend messages answering it. The
 * handler is an I/O-free state machine: it sees messages, may write (COPY)
 * or apply backpressure through the `ProtocolContext`, and reports
 * completion. `Session.request` waits for it; interrupting the wait cancels
 * the statement on the server and drains the response, or closes the
 * connection if that cannot finish in time.
 *
 * `Session.exclusive` holds the connection for a multi-request conversation
 * (a transaction, a COPY, a server cursor): other fibers' statements wait
 * until it ends, while the holder and the fibers it forks go on using it.
 *
 * @since 0.1.0
 */
import type * as PgProtocol from "@effect/sql-pg/PgProtocol"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import type { ConnectionError, Diagnostic, ProtocolError } from "./PgError.ts"

/**
 * What a handler may do while it is the one receiving messages.
 *
 * @since 0.1.0
 */
export interface ProtocolContext {
  /** Sets how `DataRow` fields are decoded from now on (`undefined`: raw bytes). */
  readonly setFieldReader: (reader: PgProtocol.FieldReader<unknown> | undefined) => void
  /** Writes frontend bytes now (e.g. CopyFail). */
  readonly write: (bytes: Uint8Array) => void
  /** Stops reading from the socket until `resume`: backpressure for a slow consumer. */
  readonly pause: () => void
  /** Reads from the socket again after `pause`. */
  readonly resume: () => void
}

/**
 * Receives the backend messages answering one request, in order.
 *
 * @since 0.1.0
 */
export interface ProtocolHandler {
  /** Returns `true` when the handler has consumed its last message (normally ReadyForQuery). */
  readonly onMessage: (message: PgProtocol.BackendMessage<unknown>, context: ProtocolContext) => boolean
  /** Called once the handler has left the queue: the place to wake waiters. */
  readonly onDone?: () => void
  /** The connection died before the handler finished. */
  readonly onClose: (error: ConnectionError | ProtocolError) => void
  /** A NoticeResponse that arrived while this handler was receiving. */
  readonly onNotice?: (notice: Diagnostic) => void
}

/**
 * A `ProtocolHandler` with a result: subclasses implement `handle` and call
 * `finish(value)` before returning `true`. `await` completes with the value
 * once the handler left the queue, or fails if the connection was lost; it
 * may be awaited again after an interruption.
 *
 * @example
 * ```ts
 * // The command tag of a simple query, read straight off the wire.
 * class CommandTag extends Session.ResponseHandler<string> {
 *   private tag = ""
 *   protected handle(message: PgProtocol.BackendMessage<unknown>): boolean {
 *     if (message._tag === "CommandComplete") this.tag = message.commandTag
 *     if (message._tag !== "ReadyForQuery") return false
 *     this.finish(this.tag)
 *     return true
 *   }
 * }
 * const tag = yield* conn.session.request([Session.encodeQuery("VACUUM test")], new CommandTag())
 * ```
 *
 * @since 0.1.0
 */
export abstract class ResponseHandler<A> implements ProtocolHandler {
  private value: { readonly result: A } | undefined
  private lost: ConnectionError | ProtocolError | undefined
  private left = false
  private resume: ((effect: Effect.Effect<A, ConnectionError | ProtocolError>) => void) | undefined
  /** Notices received while this handler was active. */
  readonly notices: Array<Diagnostic> = []

  /**
   * Receives each backend message answering the request; returns `true`
   * after the last one (normally ReadyForQuery), having called `finish`.
   */
  protected abstract handle(message: PgProtocol.BackendMessage<unknown>, context: ProtocolContext): boolean

  /** Records the result; call before `handle` returns `true`. */
  protected finish(result: A): void {
    this.value = { result }
  }

  /** Passes the message to `handle`. */
  onMessage(message: PgProtocol.BackendMessage<unknown>, context: ProtocolContext): boolean {
    return this.handle(message, context)
  }

  /** Keeps the notice in `notices`. */
  onNotice(notice: Diagnostic): void {
    this.notices.push(notice)
  }

  /** The handler received its last message (or the connection was lost). */
  get done(): boolean {
    return (this.left && this.value !== undefined) || this.lost !== undefined
  }

  /** The handler left the queue: completes `await` with the result. */
  onDone(): void {
    this.left = true
    const resume = this.resume
    this.resume = undefined
    if (this.value !== undefined) resume?.(Effect.succeed(this.value.result))
  }

  /** The connection was lost: fails `await` with the error. */
  onClose(error: ConnectionError | ProtocolError): void {
    if (this.done) return
    this.lost = error
    const resume = this.resume
    this.resume = undefined
    resume?.(Effect.fail(error))
  }

  /** The result, once the handler has received its last message; fails if the connection was lost. */
  readonly await: Effect.Effect<A, ConnectionError | ProtocolError> = Effect.callback((resume) => {
    if (this.lost !== undefined) return resume(Effect.fail(this.lost))
    if (this.left && this.value !== undefined) return resume(Effect.succeed(this.value.result))
    this.resume = resume
    return Effect.sync(() => {
      if (this.resume === resume) this.resume = undefined
    })
  })
}

/**
 * The low-level operations of a connection (`conn.session`).
 *
 * @example
 * ```ts
 * // Two statements no other fiber can slip between.
 * yield* conn.session.exclusive(Effect.gen(function*() {
 *   yield* conn.execute("SET LOCAL statement_timeout = '5s'")
 *   yield* conn.execute("SELECT pg_advisory_lock($1)", [42])
 * }))
 * ```
 *
 * @since 0.1.0
 */
export interface Session {
  /** The server process of the session (for `pg_stat_activity`, cancel). */
  readonly backendPid: number
  /**
   * Runs `effect` with the connection to itself: statements of other fibers
   * wait until it ends; the holder (and fibers it forks) keep using it.
   * Re-entrant.
   */
  readonly exclusive: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  /**
   * Holds the connection until the scope closes, or until `release`, for
   * conversations whose steps are not one effect (a scoped COPY writer, a
   * `PgSql` transaction). The fiber that takes the hold, and effects run with
   * its `run`, use the connection; other fibers' statements wait for the hold
   * to end.
   * Re-entrant: inside a hold (or `exclusive`) of the same connection it
   * holds nothing more, and its `release` does nothing.
   */
  readonly hold: Effect.Effect<SessionHold, never, Scope.Scope>
  /**
   * Writes a request and waits for its response. Outside `exclusive` (with
   * autocommit on) requests of concurrent fibers are pipelined: written at
   * once, answered in order. Interruption sends a CancelRequest and drains; a
   * connection that cannot be drained in time is closed (broken), never
   * reused. Outside `exclusive`, that cleanup goes on after the interrupted
   * caller has returned (see `settling`), and the cancel is sent only while
   * nothing but interrupted requests is in flight.
   */
  readonly request: <A>(
    frames: ReadonlyArray<Uint8Array>,
    handler: ResponseHandler<A>
  ) => Effect.Effect<A, ConnectionError | ProtocolError>
  /**
   * Writes a request without waiting, for conversations in which the client
   * goes on writing (COPY FROM STDIN). Only inside `exclusive`; wait with
   * `awaitResponse`.
   */
  readonly send: (
    frames: ReadonlyArray<Uint8Array>,
    handler: ProtocolHandler
  ) => Effect.Effect<void, ConnectionError | ProtocolError>
  /** Waits for a handler written with `send`; interruption cancels and drains like `request`. */
  readonly awaitResponse: <A>(handler: ResponseHandler<A>) => Effect.Effect<A, ConnectionError | ProtocolError>
  /** Writes bytes, waiting while the socket's send buffer is full (backpressure). */
  readonly write: (bytes: Uint8Array) => Effect.Effect<void, ConnectionError | ProtocolError>
  /**
   * Whether an interrupted statement is still being cancelled and drained
   * in the background. Meanwhile `info.transactionStatus` is `ACTIVE`, and
   * the next statement waits for the outcome.
   */
  readonly settling: boolean
  /** Requests written and not answered yet (pipelined statements of several fibers count each). */
  readonly inFlight: number
  /**
   * Milliseconds the oldest request in flight has been the one the server
   * answers (0 when none is): a long one delays every request behind it.
   */
  readonly headAge: number
  /** Waits until no cleanup is `settling` (at once when none is); interruptible. */
  readonly settled: Effect.Effect<void>
  /** Closes the connection as broken (e.g. after a protocol state it cannot recover from). */
  readonly invalidate: (reason: string) => Effect.Effect<void>
  /**
   * Runs a cleanup step — what a finalizer sends uninterruptibly: ROLLBACK,
   * CLOSE, UNLISTEN — for at most the connection's `drainTimeout`. Past that
   * the connection is invalidated (broken, with a logged warning), so the step
   * fails with a `ConnectionError` instead of waiting forever on a half-open
   * connection that no caller deadline can interrupt.
   */
  readonly bounded: <A, E, R>(effect: Effect.Effect<A, E, R>, what: string) => Effect.Effect<A, E, R>
}

/**
 * A connection held by `Session.hold`.
 *
 * @since 0.1.0
 */
export interface SessionHold {
  /** Runs `effect` as the holder: its statements go through, other fibers' wait. */
  readonly run: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  /** `run` for a stream: its pulls run as the holder. */
  readonly runStream: <A, E, R>(stream: Stream.Stream<A, E, R>) => Stream.Stream<A, E, R>
  /** Gives the connection back before the scope closes (idempotent; the scope's close does it otherwise). */
  readonly release: Effect.Effect<void>
}

/**
 * Frontend messages beyond `PgProtocol`'s: simple Query and the COPY
 * sub-protocol (CopyData, CopyDone, CopyFail).
 *
 * @since 0.1.0
 */
export {
  encodeCopyData,
  encodeCopyDone,
  encodeCopyFail,
  encodeQuery,
  maxCopyFailReason,
  writeCopyDataHeader
} from "./internal/frontend.ts"

/**
 * The diagnostic of an ErrorResponse / NoticeResponse's fields, for handlers
 * that build typed errors with `PgError.fromDiagnostic`.
 *
 * @since 0.1.0
 */
export { toDiagnostic } from "./internal/diagnostic.ts"
