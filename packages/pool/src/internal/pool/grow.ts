/**
 * Making connections: one attempt (`connect`, detached from a client's
 * deadline), adding to the pool with reconnection backoff, growing one at a
 * time while clients wait, and replacing lost ones.
 */
import { Connection, HostResolver, PgError } from "@pgfx/core"
import type { PgConfig } from "@pgfx/core"
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Scope from "effect/Scope"
import { Backoff, jitter } from "../backoff.ts"
import { PoolBase } from "./state.ts"
import { describeCause, type Pooled, seconds } from "./state.ts"

export abstract class PoolGrowth extends PoolBase {
  /**
   * One connection attempt, configured: `connections_*` counted here. A
   * configure failure (or a configure that leaves the session out of IDLE)
   * closes the connection and fails the attempt with a `ConnectionError`.
   */
  protected readonly connect: Effect.Effect<Pooled, PgError.PgError | PgConfig.PgConfigError> = Effect.uninterruptibleMask(
    (restore) =>
      Effect.suspend(() => {
        const self = this
        const settings = this.settings
        this.counters.add("connections_num")
        const scope = Scope.makeUnsafe()
        const started = this.now()
        // the resolver of the pool's own context, also when a null pool connects in a client's fiber
        const open = Effect.flatMap(settings.conninfo, (conninfo) => Connection.connect(conninfo, settings.connectOptions))
          .pipe(Effect.provideService(HostResolver.HostResolver, this.resolver))
        return Effect.gen(function*() {
          const opened = yield* Effect.exit(restore(detachable(Scope.provide(open, scope), Scope.close(scope, Exit.void))))
          if (Exit.isFailure(opened)) {
            if (!Cause.hasInterruptsOnly(opened.cause)) self.counters.add("connections_errors")
            yield* Scope.close(scope, opened)
            return yield* Effect.failCause(opened.cause)
          }
          self.counters.add("connections_ms", self.now() - started)
          const conn = opened.value
          if (settings.configure !== undefined) {
            const configured = yield* Effect.exit(restore(settings.configure(conn)))
            let problem: string | undefined
            if (Exit.isFailure(configured)) {
              problem = Cause.hasInterruptsOnly(configured.cause)
                ? undefined
                : `configure function failed: ${describeCause(configured.cause)}`
              if (problem === undefined) {
                yield* Scope.close(scope, Exit.void)
                return yield* Effect.failCause(configured.cause as Cause.Cause<never>)
              }
            } else if (conn.info.transactionStatus !== "IDLE") {
              problem = `connection left in status ${
                conn.closed ? "BAD" : conn.info.transactionStatus
              } by configure function: discarded`
            }
            if (problem !== undefined) {
              yield* Scope.close(scope, Exit.void)
              return yield* new PgError.ConnectionError({ reason: "Rejected", message: problem })
            }
          }
          const created = self.now()
          const pooled: Pooled = {
            conn,
            scope,
            createdAt: created,
            expiresAt: created + jitter(settings.maxLifetimeMs, -0.05, 0),
            generation: self.generation,
            lastUsedAt: created,
            checkedOutAt: 0,
            borrower: undefined,
            leakReported: false,
            sharers: 0
          }
          return pooled
        })
      })
  )

  /**
   * psycopg's `AddConnection` task: connect (retrying with backoff until
   * `reconnectTimeout`, then give up and call `reconnectFailed`) and hand
   * the connection to the first waiter or the idle queue. A growing task
   * starts the next one while the pool is below `minSize`, or below
   * `maxSize` with clients waiting.
   */
  protected addConnection(growing: boolean): Effect.Effect<void> {
    const self = this
    return Effect.gen(function*() {
      const attempt = new Backoff(self.settings.reconnectTimeoutMs, self.settings.backoff)
      while (true) {
        if (self.closed) return
        const started = self.now()
        const added = yield* Effect.uninterruptibleMask((restore) =>
          Effect.gen(function*() {
            const result = yield* Effect.exit(restore(self.workers.withPermit(self.connect)))
            if (Exit.isFailure(result)) return result.cause
            yield* self.debug("adding new connection to the pool")
            yield* self.addToPool(result.value)
            return undefined
          })
        )
        if (added === undefined) break
        if (Cause.hasInterruptsOnly(added)) return
        yield* self.warn(`error connecting in '${self.settings.name}': ${describeCause(added)}`)
        if (attempt.timeToGiveUp(started)) {
          yield* self.warn(
            `reconnection attempt in pool '${self.settings.name}' failed after ${
              seconds(self.settings.reconnectTimeoutMs)
            } sec`
          )
          self.nconns = Math.max(0, self.nconns - 1)
          if (growing && self.growing) self.growing = false
          self.reconnectFailed()
          return
        }
        attempt.updateDelay(started)
        yield* Effect.sleep(attempt.delay)
      }
      if (growing) {
        if (self.nconns < self.minSize || (self.nconns < self.maxSize && self.waiting.length > 0)) {
          self.nconns += 1
          yield* self.debug(`growing pool '${self.settings.name}' to ${self.nconns}`)
          self.spawn(self.addConnection(true))
        } else {
          self.growing = false
        }
      }
    })
  }

  /** Calls `reconnectFailed` in a fiber of its own (it may close the pool). */
  protected reconnectFailed(): void {
    const callback = this.settings.reconnectFailed
    const handle = this.handle
    if (callback === undefined || handle === undefined) return
    const run = Effect.suspend(() => {
      const result = callback(handle)
      return Effect.isEffect(result) ? result : Effect.void
    }).pipe(
      Effect.catchCause((cause) =>
        Cause.hasInterruptsOnly(cause) ? Effect.void : this.warn(`reconnect_failed callback failed: ${describeCause(cause)}`)
      ),
      Effect.annotateLogs(this.annotations)
    )
    Effect.runForkWith(this.context)(run)
  }

  /** Starts one replacement connection (the pool size is unchanged). */
  protected replace(): void {
    if (!this.closed) this.spawn(this.addConnection(false))
  }

  /** Adds one connection when the pool may grow and is not growing already. */
  protected maybeGrow(): void {
    if (this.settings.nullPool || this.closed) return
    if (this.nconns >= this.maxSize || this.growing) return
    this.nconns += 1
    this.growing = true
    const size = this.nconns
    this.spawn(
      Effect.andThen(this.debug(`growing pool '${this.settings.name}' to ${size}`), this.addConnection(true))
    )
  }

  /**
   * Gives a connection to the first live waiter, or puts it at the end of
   * the idle queue (a null pool closes it instead). Closes it if the pool is
   * closed.
   */
  protected addToPool(pooled: Pooled): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (this.closed) return this.closeConnection(pooled)
      pooled.lastUsedAt = this.now()
      while (this.waiting.length > 0) {
        const waiter = this.waiting.shift()!
        if (waiter.serve(pooled)) return Effect.void
      }
      if (this.settings.nullPool) {
        this.nconns = Math.max(0, this.nconns - 1)
        return this.closeConnection(pooled)
      }
      this.idle.push(pooled)
      if (this.fullWaiters.size > 0 && this.idle.length >= this.minSize) {
        // Resuming a waiter runs it synchronously: take the set first, so a
        // waiter calling `wait` again is not completed by this same loop.
        const ready = [...this.fullWaiters]
        this.fullWaiters.clear()
        for (const deferred of ready) Deferred.doneUnsafe(deferred, Exit.void)
      }
      return Effect.void
    })
  }
}


/**
 * Runs `effect` in a fiber of its own and waits for it interruptibly. When
 * the wait is interrupted, the fiber is told to stop but not waited for;
 * once it ends, `cleanup` runs. `Connection.connect` cannot be interrupted
 * while it negotiates (it acquires uninterruptibly, bounded only by
 * `connect_timeout`), so a client's deadline or the pool's close must not
 * wait for a connection attempt stuck on a deaf server.
 */
const detachable = <A, E>(effect: Effect.Effect<A, E>, cleanup: Effect.Effect<void>): Effect.Effect<A, E> =>
  Effect.flatMap(Effect.forkDetach(effect), (fiber) =>
    Fiber.join(fiber).pipe(
      Effect.onInterrupt(() =>
        Effect.sync(() => {
          fiber.addObserver(() => Effect.runFork(cleanup))
          Effect.runFork(Fiber.interrupt(fiber))
        })
      )
    ))

