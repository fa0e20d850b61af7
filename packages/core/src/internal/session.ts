/**
 * The session of one connection: who may write on it, and when. It owns the
 * two locks and the request paths behind `Session`:
 *
 * - outside a hold, with autocommit on, concurrent callers' requests are
 *   pipelined (written at once, each with its own Sync, answered in order);
 * - a hold (`exclusive`, `hold`: transactions, streams, server cursors, COPY)
 *   has the connection to itself once the requests pipelined before it have
 *   been answered; other fibers wait on `sessionLock`, and inside the hold
 *   requests serialise on `requestLock`;
 * - an interrupted request is handed to `Interruptions` (interruption.ts).
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import * as Semaphore from "effect/Semaphore"
import * as Stream from "effect/Stream"
import * as Tracer from "effect/Tracer"
import { ConnectionError, type ProtocolError } from "../PgError.ts"
import type { ProtocolHandler, ResponseHandler, Session, SessionHold } from "../Session.ts"
import { cancelRequest, Interruptions } from "./interruption.ts"
import { describeEndpoint, type Endpoint } from "./socket.ts"
import type { Wire } from "./wire.ts"

/** The sessions the current fiber holds (through `exclusive` or `hold`). */
const HeldSessions = Context.Reference<ReadonlySet<SessionImpl>>("@pgfx/core/Session/HeldSessions", {
  defaultValue: () => new Set()
})

/** What a session needs to know of its connection. */
export interface SessionOptions {
  readonly backendPid: number
  readonly secret: number
  /** The connection settings without the password, for errors. */
  readonly dsn: string
  readonly autocommit: boolean
  readonly cancelTimeout: Duration.Duration
  readonly drainTimeout: Duration.Duration
}

export class SessionImpl implements Session {
  private readonly sessionLock = Semaphore.makeUnsafe(1)
  private readonly requestLock = Semaphore.makeUnsafe(1)
  readonly backendPid: number
  readonly interruptions: Interruptions
  /** Off: a statement from IDLE first needs an implicit BEGIN, so nothing is pipelined. */
  autocommit: boolean

  constructor(readonly wire: Wire, private readonly endpoint: Endpoint, private readonly options: SessionOptions) {
    this.backendPid = options.backendPid
    this.autocommit = options.autocommit
    this.interruptions = new Interruptions(wire, options.drainTimeout, this.cancel, options.backendPid, (why) => this.brokenError(why))
  }

  /**
   * Fibers holding `sessionLock` or waiting for it. While there is one,
   * statements queue on the lock instead of being pipelined, so a holder
   * never shares the wire with statements of others.
   */
  private lockUsers = 0

  /**
   * The fiber that took the current `hold`: its statements go through without
   * the hold's `run`, so code that only got the connection (a transaction's
   * body, `PgSql.connection`) can use it directly.
   */
  private holder: Fiber.Fiber<unknown, unknown> | undefined = undefined

  /** Whether `fiber` holds this session: it took the hold, or runs inside `exclusive` or a hold's `run`. */
  heldBy(fiber: Fiber.Fiber<unknown, unknown>): boolean {
    return fiber === this.holder || fiber.getRef(HeldSessions).has(this)
  }

  /**
   * Whether `fiber` may write a statement at once, without the checks and
   * span of `request`: autocommit on, nothing settling, no hold taken or
   * pending, and no exporting tracer (a span per statement is then wanted).
   */
  canPipeline(fiber: Fiber.Fiber<unknown, unknown>): boolean {
    return this.autocommit && !this.interruptions.settling && this.lockUsers === 0 && !this.wire.closed &&
      !this.heldBy(fiber) && fiber.getRef(Tracer.Tracer) === Tracer.nativeTracer
  }

  get settling(): boolean {
    return this.interruptions.settling
  }

  get settled(): Effect.Effect<void> {
    return this.interruptions.settled
  }

  get inFlight(): number {
    return this.wire.pending
  }

  get headAge(): number {
    return this.wire.headAge
  }

  notOpen(): ConnectionError | ProtocolError {
    return this.wire.closeError ??
      new ConnectionError({ reason: "NotOpen", message: "the connection is closed", address: this.options.dsn })
  }

  brokenError(why: string): ConnectionError {
    return new ConnectionError({
      reason: "NotOpen",
      message: `the connection was closed because ${why}`,
      address: describeEndpoint(this.endpoint)
    })
  }

  invalidate(reason: string): Effect.Effect<void> {
    return Effect.sync(() => {
      this.wire.destroy(this.brokenError(reason))
    })
  }

  /** A CancelRequest for whatever the backend runs now. */
  readonly cancel: Effect.Effect<void, ConnectionError> = Effect.suspend(() =>
    cancelRequest(this.endpoint, this.options.backendPid, this.options.secret, this.options.cancelTimeout)
  )

  // ---------------------------------------------------------------------------
  // holds
  // ---------------------------------------------------------------------------

  /** Runs `effect` with `sessionLock` (counted in `lockUsers` while waiting too). */
  private locked<A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> {
    return Effect.suspend(() => {
      this.lockUsers++
      return Effect.ensuring(
        this.sessionLock.withPermit(effect),
        Effect.sync(() => {
          this.lockUsers--
        })
      )
    })
  }

  /** Completes once no request is in flight (statements pipelined before a hold began). */
  private readonly idle: Effect.Effect<void> = Effect.suspend(() =>
    this.wire.pending === 0 || this.wire.closed ? Effect.void : Effect.andThen(this.wire.advanced, this.idle)
  )

  /** No cleanup settling and nothing in flight: what a hold waits for before it starts. */
  private readonly quiet: Effect.Effect<void> = Effect.suspend(() =>
    !this.interruptions.settling && (this.wire.pending === 0 || this.wire.closed)
      ? Effect.void
      : Effect.andThen(Effect.andThen(this.settled, this.idle), this.quiet)
  )

  /**
   * Runs `effect` with the connection to itself. Fibers outside the hold wait
   * on `sessionLock`; inside it, requests only serialise on `requestLock`, so
   * a cancel can never hit another request's statement. The hold begins
   * once the statements pipelined before it have been answered.
   */
  exclusive<A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> {
    return Effect.withFiber((fiber) => {
      if (this.heldBy(fiber)) return effect
      const next = new Set(fiber.getRef(HeldSessions)).add(this)
      return this.locked(Effect.andThen(this.quiet, Effect.provideService(effect, HeldSessions, next)))
    })
  }

  /**
   * `exclusive` for the life of a scope, or until `release`: the lock is
   * taken in a scope of its own, forked from the caller's, that `release`
   * closes early. Only the wait for the lock is interruptible. The fiber
   * that takes it is the `holder` until then.
   */
  get hold(): Effect.Effect<SessionHold, never, Scope.Scope> {
    return Effect.withFiber((fiber) => {
      const held = new Set(fiber.getRef(HeldSessions)).add(this)
      if (this.heldBy(fiber)) return Effect.succeed(holdOf(held, Effect.void))
      return Effect.uninterruptibleMask((restore) =>
        Effect.gen({ self: this }, function*() {
          const scope = yield* Scope.fork(yield* Effect.scope)
          this.lockUsers++
          yield* Scope.addFinalizer(scope, Effect.sync(() => {
            this.lockUsers--
          }))
          yield* restore(Effect.andThen(Semaphore.takeScoped(this.sessionLock, 1), this.quiet)).pipe(
            Scope.provide(scope),
            Effect.onInterrupt(() => Scope.close(scope, Exit.void))
          )
          this.holder = fiber
          // added after the lock's release, so it runs before it
          yield* Scope.addFinalizer(scope, Effect.sync(() => {
            if (this.holder === fiber) this.holder = undefined
          }))
          return holdOf(held, Scope.close(scope, Exit.void))
        })
      )
    })
  }

  // ---------------------------------------------------------------------------
  // requests
  // ---------------------------------------------------------------------------

  /**
   * Writes one request and waits for its response. Outside a hold, with
   * autocommit on, concurrent callers' requests are pipelined: each is
   * written at once (its own Sync makes its failure its own) and answered in
   * order. With autocommit off (implicit BEGIN needs the status first) or
   * while a hold is pending, requests queue on `sessionLock`. Inside a hold
   * they serialise on `requestLock`.
   *
   * Interruption while the server works: inside a hold the statement is
   * cancelled and drained before the interruption completes (what follows,
   * e.g. a ROLLBACK, needs the outcome); outside, the caller returns at once
   * and `Interruptions.abandon` deals with the statement in the background.
   */
  request<A>(frames: ReadonlyArray<Uint8Array>, handler: ResponseHandler<A>) {
    return Effect.withFiber((fiber) => {
      if (this.heldBy(fiber)) return this.requestLock.withPermit(this.sendHeld(frames, handler))
      return this.sendShared(frames, handler)
    })
  }

  private sendHeld<A>(frames: ReadonlyArray<Uint8Array>, handler: ResponseHandler<A>) {
    return Effect.uninterruptibleMask((restore) =>
      Effect.andThen(
        restore(this.settled),
        Effect.suspend(() => {
          if (this.wire.closed) return Effect.fail(this.notOpen())
          this.wire.enqueue(handler)
          this.wire.writeAll(frames)
          return restore(handler.await).pipe(Effect.onInterrupt(() => this.interruptions.cancelAndDrain(handler)))
        })
      )
    )
  }

  private sendShared<A>(
    frames: ReadonlyArray<Uint8Array>,
    handler: ResponseHandler<A>
  ): Effect.Effect<A, ConnectionError | ProtocolError> {
    return Effect.uninterruptibleMask((restore) =>
      Effect.suspend(() => {
        if (this.interruptions.settling) {
          return Effect.andThen(restore(this.settled), this.sendShared(frames, handler))
        }
        if (!this.autocommit || this.lockUsers > 0) {
          // the wait for the lock is interruptible (nothing is sent yet); the send is not
          return restore(this.locked(Effect.uninterruptibleMask((inner) => this.sendNow(frames, handler, inner))))
        }
        return this.sendNow(frames, handler, restore)
      })
    )
  }

  private sendNow<A>(
    frames: ReadonlyArray<Uint8Array>,
    handler: ResponseHandler<A>,
    restore: <X, E, R>(effect: Effect.Effect<X, E, R>) => Effect.Effect<X, E, R>
  ): Effect.Effect<A, ConnectionError | ProtocolError> {
    return Effect.suspend(() => {
      // a cleanup may have begun while this one waited for the lock
      if (this.interruptions.settling) {
        return Effect.andThen(restore(this.settled), this.sendNow(frames, handler, restore))
      }
      if (this.wire.closed) return Effect.fail(this.notOpen())
      return this.pipelined(frames, handler, restore)
    })
  }

  /**
   * Writes a request now and waits for it; an interruption abandons it (the
   * caller returns at once). For callers that checked `canPipeline`.
   */
  pipelined<A>(
    frames: ReadonlyArray<Uint8Array>,
    handler: ResponseHandler<A>,
    restore: <X, E, R>(effect: Effect.Effect<X, E, R>) => Effect.Effect<X, E, R>,
    trailer?: ReadonlyArray<Uint8Array>
  ): Effect.Effect<A, ConnectionError | ProtocolError> {
    this.wire.enqueue(handler)
    this.wire.writeAll(frames)
    if (trailer !== undefined) this.wire.writeAll(trailer)
    return restore(handler.await).pipe(Effect.onInterrupt(() => this.interruptions.abandon(handler)))
  }

  send(frames: ReadonlyArray<Uint8Array>, handler: ProtocolHandler) {
    return Effect.withFiber((fiber) =>
      Effect.suspend(() => {
        if (!this.heldBy(fiber)) {
          return Effect.die(new Error("Session.send must run inside Session.exclusive"))
        }
        if (this.wire.closed) return Effect.fail(this.notOpen())
        this.wire.enqueue(handler)
        this.wire.writeAll(frames)
        return Effect.void
      }))
  }

  awaitResponse<A>(handler: ResponseHandler<A>) {
    return Effect.uninterruptibleMask((restore) =>
      restore(handler.await).pipe(Effect.onInterrupt(() => this.interruptions.cancelAndDrain(handler)))
    )
  }

  write(bytes: Uint8Array): Effect.Effect<void, ConnectionError | ProtocolError> {
    return Effect.suspend(() => {
      if (this.wire.closed) return Effect.fail(this.notOpen())
      if (this.wire.write(bytes)) return Effect.void
      return this.wire.drained
    })
  }

  /**
   * A cleanup step, bounded by `drainTimeout`: finalizers run
   * uninterruptibly, so without this a half-open connection would hold them
   * (and the scope) forever. Past the deadline the connection is closed as
   * broken, which fails the step.
   */
  bounded<A, E, R>(effect: Effect.Effect<A, E, R>, what: string): Effect.Effect<A, E, R> {
    return Effect.suspend(() => {
      if (this.wire.closed) return effect
      let expired = false
      const limit = this.options.drainTimeout
      return Effect.acquireUseRelease(
        Effect.sync(() =>
          setTimeout(() => {
            if (this.wire.closed) return
            expired = true
            this.wire.destroy(this.brokenError(`${what} did not finish within ${Duration.format(limit)}`))
          }, Duration.toMillis(limit))
        ),
        () => effect,
        (timer) =>
          Effect.suspend(() => {
            clearTimeout(timer)
            return expired
              ? Effect.logWarning(`pgfx: ${what} did not finish in time; closing the connection`).pipe(
                Effect.annotateLogs({ backendPid: this.backendPid })
              )
              : Effect.void
          })
      )
    })
  }
}

const holdOf = (held: ReadonlySet<SessionImpl>, release: Effect.Effect<void>): SessionHold => ({
  run: (effect) => Effect.provideService(effect, HeldSessions, held),
  runStream: (stream) => Stream.provideService(stream, HeldSessions, held),
  release
})
