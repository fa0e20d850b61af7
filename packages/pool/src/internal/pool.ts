/**
 * The pool's state machine, shared by `ConnectionPool` and
 * `NullConnectionPool` (psycopg_pool's `pool_async.py` / `null_pool_async.py`).
 *
 * State lives in plain fields and every decision about it (take an idle
 * connection, queue a client, hand a returned connection to the first
 * waiter) is made in synchronous code, so JavaScript's single thread is the
 * pool's lock. Round trips (connect, rollback, reset, checks) happen outside
 * those sections. Background work (filling, growing, reconnecting with
 * backoff, shrinking, health checks, leak detection) runs in fibers of a
 * `FiberSet` owned by the pool: closing the pool interrupts them, and every
 * failure in them becomes a log line and a statistic, never a crash.
 *
 * The behaviour comes in layers, one module each under `./pool/`: `state`
 * (fields and helpers) → `grow` (making connections, reconnecting) →
 * `returning` (putconn) → `checkout` (getconn, waiters) → `sharing`
 * (pipelined leases) → `maintenance` (health checks, shrinking, leaks,
 * resize); this module adds the life cycle (open, wait, close, background
 * tasks) and `makeState`.
 */
import * as Cause from "effect/Cause"
import type * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberSet from "effect/FiberSet"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import { PoolClosed, PoolTimeout } from "../PoolError.ts"
import { Backoff } from "./backoff.ts"
import { PoolMaintenance } from "./pool/maintenance.ts"
import { seconds } from "./pool/state.ts"

import { describeCause, type PoolSettings } from "./pool/state.ts"

export { checkSize, describeCause, type PoolSettings } from "./pool/state.ts"

/** The pool: its life cycle (open, wait, close, background tasks) over the layers in `./pool/`. */
export class PoolState extends PoolMaintenance {
  /** psycopg's `wait()`: until `minSize` connections are idle; on timeout the pool closes. */
  wait(timeoutMs: number): Effect.Effect<void, PoolTimeout | PoolClosed> {
    return Effect.suspend((): Effect.Effect<void, PoolTimeout | PoolClosed> => {
      if (this.closed) return Effect.fail(this.closedError())
      const self = this
      const timedOut = Effect.andThen(
        this.close,
        Effect.fail(
          new PoolTimeout({
            message: `pool initialization incomplete after ${seconds(timeoutMs)} sec`,
            pool: this.settings.name
          })
        )
      )
      if (this.settings.nullPool) {
        return Effect.gen(function*() {
          yield* self.debug(`waiting for pool '${self.settings.name}' initialization`)
          const outcome = yield* Effect.timeoutOption(self.testConnection(timeoutMs), timeoutMs)
          if (Option.isNone(outcome)) return yield* timedOut
          yield* self.debug(`pool '${self.settings.name}' is ready to use`)
        })
      }
      if (this.idle.length >= this.minSize) return Effect.void
      const deferred = Deferred.makeUnsafe<void, PoolClosed>()
      this.fullWaiters.add(deferred)
      return Effect.gen(function*() {
        yield* self.debug(`waiting for pool '${self.settings.name}' initialization`)
        const outcome = yield* Deferred.await(deferred).pipe(
          Effect.timeoutOption(timeoutMs),
          Effect.ensuring(Effect.sync(() => self.fullWaiters.delete(deferred)))
        )
        if (Option.isNone(outcome)) return yield* timedOut
        yield* self.debug(`pool '${self.settings.name}' is ready to use`)
      })
    })
  }

  /** A null pool's `wait`: one connection made (retried with backoff) and closed. */
  protected testConnection(timeoutMs: number): Effect.Effect<void> {
    const self = this
    return Effect.gen(function*() {
      const attempt = new Backoff(timeoutMs, self.settings.backoff)
      while (true) {
        const started = self.now()
        const result = yield* Effect.exit(self.connect)
        if (Exit.isSuccess(result)) return yield* self.closeConnection(result.value)
        yield* self.warn(`error connecting in '${self.settings.name}': ${describeCause(result.cause)}`)
        if (attempt.timeToGiveUp(started)) return yield* Effect.never
        attempt.updateDelay(started)
        yield* Effect.sleep(attempt.delay)
      }
    })
  }

  /** psycopg's `open()`: start filling, shrinking and the optional health check. Idempotent. */
  open(wait: boolean, timeoutMs: number): Effect.Effect<void, PoolTimeout | PoolClosed> {
    return Effect.suspend((): Effect.Effect<void, PoolTimeout | PoolClosed> => {
      if (this.closed) {
        if (this.opened) {
          return Effect.fail(
            new PoolClosed({
              message: "pool has already been opened/closed and cannot be reused",
              pool: this.settings.name
            })
          )
        }
        this.closed = false
        this.opened = true
        this.startBackgroundTasks()
      }
      return wait ? this.wait(timeoutMs) : Effect.void
    })
  }

  protected startBackgroundTasks(): void {
    const settings = this.settings
    if (!settings.nullPool) {
      for (let index = 0; index < this.nconns; index++) this.spawn(this.addConnection(false))
      this.spawn(Effect.forever(Effect.andThen(Effect.sleep(settings.maxIdleMs), this.shrink)))
      const health = settings.healthCheck
      if (health !== undefined) {
        this.spawn(
          Effect.forever(
            Effect.andThen(
              Effect.sleep(health.intervalMs),
              this.healthCheckOnce(health.query, health.intervalMs, health.timeoutMs).pipe(
                Effect.catchCause((cause) =>
                  Cause.hasInterruptsOnly(cause)
                    ? Effect.failCause(cause)
                    : this.warn(`health check failed: ${describeCause(cause)}`)
                )
              )
            )
          )
        )
      }
    }
    const threshold = settings.leakDetectionMs
    if (threshold !== undefined) {
      const every = Math.min(1000, Math.max(10, threshold / 4))
      this.spawn(Effect.forever(Effect.andThen(Effect.sleep(every), this.detectLeaks(threshold))))
    }
  }

  /**
   * psycopg's `close()`: waiting clients fail with `PoolClosed`, idle
   * connections are closed, background fibers are interrupted (and awaited).
   * Checked-out connections are closed when they come back. Idempotent.
   */
  readonly close: Effect.Effect<void> = Effect.suspend(() => {
    if (this.closed) return Effect.void
    this.closed = true
    const error = new PoolClosed({ message: `the pool '${this.settings.name}' is closed`, pool: this.settings.name })
    // Take everything out before resuming anyone: resumed fibers run at once.
    const taken = this.idle.splice(0)
    const waiting = this.waiting.splice(0)
    const full = [...this.fullWaiters]
    this.fullWaiters.clear()
    for (const waiter of waiting) waiter.fail(error)
    for (const deferred of full) Deferred.doneUnsafe(deferred, Exit.fail(error))
    return Effect.uninterruptible(
      Effect.gen({ self: this }, function*() {
        yield* Scope.close(this.backgroundScope, Exit.void)
        yield* Effect.forEach(taken, (pooled) => this.closeConnection(pooled), { discard: true })
        yield* Effect.logDebug(`pool '${this.settings.name}' closed`).pipe(Effect.annotateLogs(this.annotations))
      })
    )
  })

  /** Releases what the pool holds even when it was never opened (the `make` scope's end). */
  readonly dispose: Effect.Effect<void> = Effect.suspend(() => {
    if (this.disposed) return Effect.void
    this.disposed = true
    return Effect.andThen(this.close, Effect.sync(() => {
      this.unregisterMetrics?.()
      this.unregisterMetrics = undefined
    })).pipe(Effect.andThen(Scope.close(this.backgroundScope, Exit.void)))
  })
}


/**
 * Builds the state machine with its background fiber set, in the current
 * scope's context.
 */
export const makeState = (
  settings: PoolSettings,
  clock: Clock.Clock
): Effect.Effect<PoolState, never, Scope.Scope> =>
  Effect.gen(function*() {
    const backgroundScope = yield* Scope.make()
    const set = yield* FiberSet.make<unknown, unknown>().pipe(Scope.provide(backgroundScope))
    const runFork = yield* FiberSet.runtime(set)<never>()
    const context = yield* Effect.context<never>()
    const state = new PoolState(settings, clock, (effect) => runFork(effect), backgroundScope, context)
    yield* Effect.addFinalizer(() => state.dispose)
    return state
  })

