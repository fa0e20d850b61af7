/**
 * What happens when a statement is interrupted while the server works on it.
 *
 * A CancelRequest hits whatever the backend runs when it arrives, so it must
 * never reach a statement of another caller (Effect's own driver shipped that
 * bug twice). Inside a hold the interrupted statement is the only one in
 * flight: it is cancelled and drained before the interruption completes.
 * Outside a hold (pipelined statements) the interrupted caller returns at
 * once and its statement is abandoned: its result is discarded, and the
 * cancel is sent only once every request in flight is an abandoned one.
 * Either way a connection that cannot be drained in time is closed as
 * broken, never reused.
 */
import * as PgProtocol from "@effect/sql-pg/PgProtocol"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { ConnectionError } from "../PgError.ts"
import type { ProtocolHandler } from "../Session.ts"
import { describeEndpoint, type Endpoint, openSocket } from "./socket.ts"
import type { Wire } from "./wire.ts"

/** A request whose completion can be told: `ResponseHandler`s, portals. */
export type Tracked = ProtocolHandler & { readonly done: boolean }

/** How long a cancelled statement may go unanswered before its cancel is sent again. */
const CANCEL_REPEAT_MS = 250

/** The interrupted statements of one session, and their cleanup. */
export class Interruptions {
  constructor(
    private readonly wire: Wire,
    private readonly drainTimeout: Duration.Duration,
    private readonly cancel: Effect.Effect<void, ConnectionError>,
    private readonly backendPid: number,
    private readonly broken: (why: string) => ConnectionError
  ) {}

  /**
   * The cleanup of abandoned statements while it runs after their callers
   * have returned; whoever takes the session next waits for it, so nothing
   * is sent before its outcome is known.
   */
  private cleanup: Deferred.Deferred<void> | undefined = undefined

  /** Interrupted statements still in flight, whose results nobody awaits. */
  private readonly abandoned = new Set<Tracked>()

  /** Whether a cleanup runs: meanwhile nothing new may be written. */
  get settling(): boolean {
    return this.cleanup !== undefined
  }

  /** Waits for a running cleanup, if any (interruptible: the wait is the caller's). */
  readonly settled: Effect.Effect<void> = Effect.suspend(() =>
    this.cleanup === undefined ? Effect.void : Deferred.await(this.cleanup)
  )

  /**
   * An interrupted statement outside a hold: its caller has returned, the
   * statement is on the wire, maybe behind or ahead of other callers'. Until
   * every request in flight is an abandoned one, the abandoned statements run
   * on and their results are discarded. Meanwhile (`settling`) nothing new is
   * written, so the moment comes: at the latest when the live requests ahead
   * have been answered.
   */
  abandon(handler: Tracked): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (handler.done || this.wire.closed) return Effect.void
      this.abandoned.add(handler)
      if (this.cleanup !== undefined) return Effect.void
      const over = Deferred.makeUnsafe<void>()
      this.cleanup = over
      return Effect.asVoid(Effect.forkDetach(this.cleanUp.pipe(
        Effect.ensuring(Effect.sync(() => {
          this.abandoned.clear()
          this.cleanup = undefined
          Deferred.doneUnsafe(over, Exit.void)
        }))
      )))
    })
  }

  /** The loop of `abandon`: wait for live requests, cancel when only abandoned ones are left. */
  private readonly cleanUp: Effect.Effect<void> = Effect.suspend(() => {
    for (const handler of this.abandoned) {
      if (handler.done) this.abandoned.delete(handler)
    }
    if (this.abandoned.size === 0 || this.wire.closed || this.wire.pending === 0) return Effect.void
    if (!this.wire.everyPending((handler) => this.abandoned.has(handler as Tracked))) {
      return Effect.andThen(this.wire.advanced, this.cleanUp)
    }
    return Effect.andThen(this.cancelHead, this.cleanUp)
  })

  /** An interruption inside a hold, where the statement is the only one in flight. */
  cancelAndDrain(handler: Tracked): Effect.Effect<void> {
    return Effect.suspend(() => handler.done || this.wire.closed ? Effect.void : this.cancelHead)
  }

  /**
   * Cancels the statement running now and waits for its answer, within
   * `drainTimeout`; otherwise the session cannot be trusted and is closed.
   * A cancel that reaches the backend while it reads a request (between
   * Parse, Bind and Execute, or between two pipelined statements) is dropped
   * by the server, so while the head goes unanswered the cancel is repeated:
   * every request in flight is abandoned (or, in a hold, the only one), so a
   * repeated cancel can only hit one of them.
   */
  private readonly cancelHead: Effect.Effect<void> = Effect.gen({ self: this }, function*() {
    // the request must reach the server before its cancel does
    this.wire.flush()
    const deadline = Date.now() + Duration.toMillis(this.drainTimeout)
    while (true) {
      const cancelled = yield* Effect.exit(this.cancel)
      if (Exit.isFailure(cancelled)) {
        yield* Effect.logWarning("pgfx: cancel request failed; closing the connection").pipe(
          Effect.annotateLogs({ backendPid: this.backendPid })
        )
        this.wire.destroy(this.broken("the cancel request failed"))
        return
      }
      const left = deadline - Date.now()
      const drained = yield* Effect.timeoutOption(this.wire.advanced, Math.max(0, Math.min(left, CANCEL_REPEAT_MS)))
      if (drained._tag === "Some" || this.wire.closed) return
      if (left <= CANCEL_REPEAT_MS) break
    }
    yield* Effect.logWarning("pgfx: cancelled statement did not end in time; closing the connection").pipe(
      Effect.annotateLogs({ backendPid: this.backendPid })
    )
    this.wire.destroy(this.broken("a cancelled statement did not end in time"))
  })
}

/**
 * Sends a CancelRequest for backend `pid` on a new socket. The postmaster
 * closes the cancel socket once it has signalled the backend; waiting for
 * that close orders the cancel before our next statement, so it cannot hit
 * the wrong one. Written without ending our side (as libpq does): PgBouncer
 * drops a cancel whose client half-closes before it has been forwarded
 * ("client unexpected eof").
 */
export const cancelRequest = (
  endpoint: Endpoint,
  pid: number,
  secret: number,
  timeout: Duration.Duration
): Effect.Effect<void, ConnectionError> => {
  const where = describeEndpoint(endpoint)
  const bytes = PgProtocol.encodeCancelRequest({ pid, secret })
  return openSocket(endpoint, { enable: false }).pipe(
    Effect.flatMap((socket) =>
      Effect.callback<void, ConnectionError>((resume) => {
        socket.on("error", () => {})
        socket.once("close", () => resume(Effect.void))
        socket.resume()
        socket.write(bytes)
        return Effect.sync(() => socket.destroy())
      })
    ),
    Effect.timeoutOrElse({
      duration: timeout,
      orElse: () =>
        Effect.fail(
          new ConnectionError({ reason: "Timeout", message: `cancel request to ${where} timed out`, address: where })
        )
    })
  )
}
