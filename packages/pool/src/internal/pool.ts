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
 */
import { Connection, HostResolver, PgError } from "@pgfx/core"
import type { PgConfig } from "@pgfx/core"
import * as Cause from "effect/Cause"
import type * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberSet from "effect/FiberSet"
import type * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Scope from "effect/Scope"
import * as Semaphore from "effect/Semaphore"
import type { CheckoutError, ConnectionCallback, ConnectionPool, PoolStats } from "./model.ts"
import { PoolClosed, PoolConfigError, PoolTimeout, TooManyRequests } from "../PoolError.ts"
import { Backoff, type BackoffSettings, jitter } from "./backoff.ts"
import { ping } from "./ping.ts"
import { Counters, registerMetrics } from "./stats.ts"
import { Waiter } from "./waiter.ts"

/** Everything the state machine needs, resolved from the public options. */
export interface PoolSettings {
  readonly name: string
  readonly nullPool: boolean
  readonly minSize: number
  readonly maxSize: number
  readonly timeoutMs: number
  readonly maxWaiting: number
  readonly maxLifetimeMs: number
  readonly maxIdleMs: number
  readonly reconnectTimeoutMs: number
  readonly cleanupTimeoutMs: number
  readonly numWorkers: number
  readonly conninfo: Effect.Effect<Connection.ConnectionSettings, PgError.PgError | PgConfig.PgConfigError>
  readonly connectOptions: Connection.ConnectOptions<unknown>
  readonly configure: ConnectionCallback<unknown> | undefined
  readonly check: ConnectionCallback<unknown> | undefined
  readonly reset: ConnectionCallback<unknown> | undefined
  readonly reconnectFailed: ((pool: ConnectionPool<unknown>) => Effect.Effect<unknown, unknown> | void) | undefined
  readonly healthCheck: { readonly intervalMs: number; readonly query: string; readonly timeoutMs: number } | undefined
  readonly leakDetectionMs: number | undefined
  readonly backoff: BackoffSettings
  readonly checkoutLogLevel: LogLevel.Severity | undefined
  readonly maxPipeline: number
}

/** A connection owned by the pool. */
interface Pooled {
  readonly conn: Connection.Connection<unknown>
  /** Closing it sends Terminate. */
  readonly scope: Scope.Closeable
  readonly createdAt: number
  readonly expiresAt: number
  /** `drain` generation it was created in. */
  readonly generation: number
  /** When it last came back to the pool (or was created). */
  lastUsedAt: number
  /** Leak detection: who holds it and since when. */
  checkedOutAt: number
  borrower: string | undefined
  leakReported: boolean
  /** Statements of `share` running on it; it is in `sharing` while there are any. */
  sharers: number
}

type Restore = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>

/** A shared connection whose oldest statement runs this long takes no more (see `pickShared`). */
const STALLED_MS = 50

/** A bounded operation on a connection that did not finish in time. */
class OperationTimeout {
  readonly _tag = "OperationTimeout"
  constructor(readonly message: string) {}
}

const seconds = (ms: number): string => {
  const s = ms / 1000
  return Number.isInteger(s) ? String(s) : String(Number(s.toFixed(3)))
}

/** `Tag: message` of the first error or defect of a cause. */
export const describeCause = (cause: Cause.Cause<unknown>): string => {
  if (Cause.hasInterruptsOnly(cause)) return "interrupted"
  return describeError(Cause.squash(cause))
}

const describeError = (error: unknown): string => {
  if (Predicate.hasProperty(error, "_tag") && typeof error._tag === "string") {
    const message = Predicate.hasProperty(error, "message") ? String(error.message) : ""
    return message === "" ? error._tag : `${error._tag}: ${message}`
  }
  if (error instanceof Error) return `${error.name}: ${error.message}`
  return String(error)
}

/** Validates sizes like psycopg_pool's `_check_size`. */
export const checkSize = (
  nullPool: boolean,
  minSize: number,
  maxSize: number | undefined
): Exit.Exit<{ readonly minSize: number; readonly maxSize: number }, PoolConfigError> => {
  const max = maxSize ?? minSize
  const fail = (message: string) => Exit.fail(new PoolConfigError({ message }))
  if (!Number.isInteger(minSize) || !Number.isInteger(max)) return fail("pool sizes must be integers")
  if (nullPool) {
    if (minSize !== 0) return fail("null pools must have minSize = 0")
    if (max < minSize) return fail("maxSize must be greater or equal than minSize")
    return Exit.succeed({ minSize, maxSize: max })
  }
  if (minSize < 0) return fail("minSize cannot be negative")
  if (max < minSize) return fail("maxSize must be greater or equal than minSize")
  if (minSize === 0 && max === 0) return fail("if minSize is 0 maxSize must be greater than 0")
  return Exit.succeed({ minSize, maxSize: max })
}

/** The pool. */
export class PoolState {
  minSize: number
  maxSize: number
  private readonly idle: Array<Pooled> = []
  private readonly waiting: Array<Waiter<Pooled>> = []
  private readonly fullWaiters = new Set<Deferred.Deferred<void, PoolClosed>>()
  private readonly outstanding = new Set<Pooled>()
  /** Connections managed: idle, checked out, being created. */
  private nconns: number
  /** Smallest idle count seen since the last shrink run. */
  private nconnsMin: number
  private growing = false
  private opened = false
  closed = true
  private generation = 0
  private readonly counters = new Counters()
  private readonly workers: Semaphore.Semaphore
  private readonly annotations: Record<string, string>
  private readonly spanOptions: { readonly attributes: Record<string, string>; readonly captureStackTrace: false }
  private unregisterMetrics: (() => void) | undefined
  private disposed = false
  /** The service handed to `reconnectFailed`; set by the constructor's caller. */
  handle: ConnectionPool<unknown> | undefined
  /** Host names are resolved with the resolver in force where the pool was made. */
  private readonly resolver: HostResolver.HostResolver

  constructor(
    readonly settings: PoolSettings,
    private readonly clock: Clock.Clock,
    private readonly runFork: <A, E>(effect: Effect.Effect<A, E>) => unknown,
    private readonly backgroundScope: Scope.Closeable,
    private readonly context: Context.Context<never>
  ) {
    this.minSize = settings.minSize
    this.maxSize = settings.maxSize
    this.nconns = settings.nullPool ? 0 : settings.minSize
    this.nconnsMin = this.nconns
    this.workers = Semaphore.makeUnsafe(settings.numWorkers)
    this.annotations = { pool: settings.name, logger: "pgfx.pool" }
    this.spanOptions = {
      attributes: { "db.system": "postgresql", "pgfx.pool.name": settings.name },
      captureStackTrace: false
    }
    this.unregisterMetrics = registerMetrics(context, settings.name, () => this.gauges(), this.counters)
    this.resolver = Context.get(context, HostResolver.HostResolver)
  }

  // ---------------------------------------------------------------------------
  // helpers
  // ---------------------------------------------------------------------------

  private now(): number {
    return this.clock.currentTimeMillisUnsafe()
  }

  private info(message: string): Effect.Effect<void> {
    return Effect.logInfo(message).pipe(Effect.annotateLogs(this.annotations))
  }

  /**
   * Lifecycle events (opening, growing, shrinking, retiring expired
   * connections): at Debug, so a healthy program prints nothing; what a user
   * must act on (a lost connection, a failed reconnect) is a warning.
   */
  private debug(message: string): Effect.Effect<void> {
    return Effect.logDebug(message).pipe(Effect.annotateLogs(this.annotations))
  }

  private warn(message: string): Effect.Effect<void> {
    return Effect.logWarning(message).pipe(Effect.annotateLogs(this.annotations))
  }

  /** Per-request lines (requested, given, returned, queued), at `checkoutLogLevel`. */
  private trace(message: string): Effect.Effect<void> {
    const level = this.settings.checkoutLogLevel
    return level === undefined
      ? Effect.void
      : Effect.logWithLevel(level)(message).pipe(Effect.annotateLogs(this.annotations))
  }

  /** psycopg's connection repr: the backend pid and the status (`BAD` once closed). */
  private describe(pooled: Pooled): string {
    const status = pooled.conn.closed ? "BAD" : pooled.conn.info.transactionStatus
    return `<pgfx connection pid=${pooled.conn.info.backendPid} [${status}]>`
  }

  /** Runs a background task in the pool's fiber set; failures are logged, never thrown. */
  private spawn(effect: Effect.Effect<void>): void {
    this.runFork(
      effect.pipe(
        Effect.catchCause((cause) =>
          Cause.hasInterruptsOnly(cause)
            ? Effect.void
            : this.warn(`background task failed in '${this.settings.name}': ${describeCause(cause)}`)
        ),
        Effect.annotateLogs(this.annotations)
      )
    )
  }

  private closedError(): PoolClosed {
    return new PoolClosed({
      message: this.opened
        ? `the pool '${this.settings.name}' is already closed`
        : `the pool '${this.settings.name}' is not open yet`,
      pool: this.settings.name
    })
  }

  /** Terminate (an open transaction is rolled back by the server) and release the scope. */
  private closeConnection(pooled: Pooled): Effect.Effect<void> {
    this.outstanding.delete(pooled)
    return Effect.andThen(pooled.conn.close, Scope.close(pooled.scope, Exit.void))
  }

  /**
   * Runs `effect` on `conn` for at most `ms`: past that the connection is
   * invalidated (its socket closed), so a half-open connection cannot hold
   * anyone beyond the deadline. Never fails: the outcome is the exit.
   */
  private bounded<A, E>(
    conn: Connection.Connection<unknown>,
    effect: Effect.Effect<A, E>,
    ms: number,
    what: string
  ): Effect.Effect<Exit.Exit<A, E | OperationTimeout>> {
    const deadline = Effect.sleep(ms).pipe(
      Effect.andThen(conn.session.invalidate(`${what} did not finish within ${seconds(ms)} sec`)),
      Effect.andThen(Effect.fail(new OperationTimeout(`${what} timed out after ${seconds(ms)} sec`)))
    )
    return Effect.exit(Effect.raceFirst(effect, deadline))
  }

  gauges(): {
    pool_min: number
    pool_max: number
    pool_size: number
    pool_available: number
    requests_waiting: number
  } {
    return {
      pool_min: this.minSize,
      pool_max: this.maxSize,
      pool_size: this.nconns,
      pool_available: this.idle.length,
      requests_waiting: this.waiting.length
    }
  }

  /** `get_stats` / `pop_stats`. */
  stats(reset: boolean): Effect.Effect<PoolStats> {
    return Effect.sync(() => ({ ...this.counters.snapshot(reset), ...this.gauges() }))
  }

  // ---------------------------------------------------------------------------
  // making connections
  // ---------------------------------------------------------------------------

  /**
   * One connection attempt, configured: `connections_*` counted here. A
   * configure failure (or a configure that leaves the session out of IDLE)
   * closes the connection and fails the attempt with a `ConnectionError`.
   */
  private readonly connect: Effect.Effect<Pooled, PgError.PgError | PgConfig.PgConfigError> = Effect.uninterruptibleMask(
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
  private addConnection(growing: boolean): Effect.Effect<void> {
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
  private reconnectFailed(): void {
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
  private replace(): void {
    if (!this.closed) this.spawn(this.addConnection(false))
  }

  /** Adds one connection when the pool may grow and is not growing already. */
  private maybeGrow(): void {
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
  private addToPool(pooled: Pooled): Effect.Effect<void> {
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

  // ---------------------------------------------------------------------------
  // checkout
  // ---------------------------------------------------------------------------

  /**
   * The oldest idle connection (FIFO). Connections the server already closed
   * while idle (their socket says so; no round trip) are replaced, never
   * served.
   */
  private takeIdle(): Pooled | undefined {
    while (this.idle.length > 0) {
      const pooled = this.idle.shift()!
      if (this.idle.length < this.nconnsMin) this.nconnsMin = this.idle.length
      if (!pooled.conn.closed) return pooled
      this.counters.add("connections_lost")
      this.spawn(
        Effect.andThen(
          this.info(`not serving connection found closed while idle: ${this.describe(pooled)}`),
          this.closeConnection(pooled)
        )
      )
      this.replace()
    }
    return undefined
  }

  /** psycopg's `_getconn_unchecked`: an idle connection, or a place in the queue. */
  private getconnUnchecked(
    restore: Restore,
    timeoutMs: number
  ): Effect.Effect<Pooled, CheckoutError> {
    return Effect.suspend((): Effect.Effect<Pooled, CheckoutError> => {
      if (this.closed) return Effect.fail(this.closedError())
      if (timeoutMs <= 0) return Effect.fail(new PoolTimeout({ message: "", pool: this.settings.name }))
      const ready = this.takeIdle()
      if (ready !== undefined) return Effect.succeed(ready)
      if (this.settings.nullPool && (this.maxSize === 0 || this.nconns < this.maxSize)) {
        return this.connectForClient(restore, timeoutMs)
      }
      if (this.settings.maxWaiting > 0 && this.waiting.length >= this.settings.maxWaiting) {
        this.counters.add("requests_errors")
        return Effect.fail(
          new TooManyRequests({
            message: `the pool '${this.settings.name}' has already ${this.waiting.length} requests waiting`,
            pool: this.settings.name
          })
        )
      }
      const waiter = new Waiter<Pooled>()
      this.waiting.push(waiter)
      this.counters.add("requests_queued")
      this.maybeGrow()
      const started = this.now()
      const queued = this.settings.checkoutLogLevel === undefined
        ? Effect.void
        : this.trace(`waiting for a connection from '${this.settings.name}' (${this.waiting.length} waiting)`)
      return Effect.andThen(
        queued,
        Effect.flatMap(
          Effect.exit(restore(waiter.await(timeoutMs))),
          (exit): Effect.Effect<Pooled, CheckoutError> => {
            this.counters.add("requests_wait_ms", this.now() - started)
            if (Exit.isSuccess(exit) && exit.value !== undefined) return Effect.succeed(exit.value)
            // Timed out, failed or interrupted: leave the queue; a connection
            // handed over in the meantime goes back to the pool.
            const late = waiter.abandon()
            const index = this.waiting.indexOf(waiter)
            if (index >= 0) this.waiting.splice(index, 1)
            this.counters.add("requests_errors")
            const giveBack = late === undefined ? Effect.void : this.addToPool(late)
            if (Exit.isSuccess(exit)) {
              return Effect.andThen(giveBack, Effect.fail(new PoolTimeout({ message: "", pool: this.settings.name })))
            }
            return Effect.andThen(giveBack, Effect.failCause(exit.cause))
          }
        )
      )
    })
  }

  /** A null pool connects in the client's own fiber, within the client's deadline. */
  private connectForClient(restore: Restore, timeoutMs: number): Effect.Effect<Pooled, CheckoutError> {
    this.nconns += 1
    return Effect.flatMap(
      Effect.exit(restore(Effect.timeoutOption(this.connect, timeoutMs))),
      (exit): Effect.Effect<Pooled, CheckoutError> => {
        if (Exit.isSuccess(exit) && Option.isSome(exit.value)) return Effect.succeed(exit.value.value)
        this.nconns = Math.max(0, this.nconns - 1)
        if (Exit.isSuccess(exit)) {
          return Effect.fail(
            new PoolTimeout({
              message: `connection attempt timed out after ${seconds(timeoutMs)} sec`,
              pool: this.settings.name
            })
          )
        }
        return Effect.failCause(exit.cause)
      }
    )
  }

  /** psycopg's `_getconn_with_check_loop`: runs `check` and retries with backoff until the deadline. */
  private getconn(restore: Restore, timeoutMs: number): Effect.Effect<Pooled, CheckoutError> {
    const check = this.settings.check
    if (check === undefined) return this.getconnUnchecked(restore, timeoutMs)
    const self = this
    return Effect.gen(function*() {
      const deadline = self.now() + timeoutMs
      let attempt: Backoff | undefined
      while (true) {
        const pooled = yield* self.getconnUnchecked(restore, deadline - self.now())
        const remaining = Math.max(1, deadline - self.now())
        const checked = yield* Effect.exit(restore(self.bounded(pooled.conn, check(pooled.conn), remaining, "check")))
        const outcome = Exit.isSuccess(checked) ? checked.value : checked
        if (Exit.isSuccess(outcome)) return pooled
        yield* self.info(`connection failed check: ${describeCause(outcome.cause)}`)
        yield* self.returnConnection(pooled, true)
        if (Exit.isFailure(checked)) return yield* Effect.failCause(checked.cause)
        if (Cause.hasInterruptsOnly(outcome.cause)) return yield* Effect.interrupt
        const now = self.now()
        if (attempt === undefined) attempt = new Backoff(deadline - now, self.settings.backoff)
        else attempt.updateDelay(now)
        if (attempt.timeToGiveUp(now)) {
          return yield* new PoolTimeout({ message: "", pool: self.settings.name })
        }
        yield* restore(Effect.sleep(attempt.delay))
      }
    })
  }

  /**
   * Takes a connection for a client (inside an uninterruptible region whose
   * `restore` makes the waits interruptible): counts the request, applies
   * the deadline, registers it for leak detection.
   */
  private acquire(restore: Restore, timeoutMs: number): Effect.Effect<Pooled, CheckoutError> {
    return Effect.suspend(() => {
      this.counters.add("requests_num")
      const trace = this.settings.checkoutLogLevel !== undefined
      const got = Effect.catchTag(
        this.getconn(restore, timeoutMs),
        "PoolTimeout",
        (error) =>
          Effect.fail(
            error.message === ""
              ? new PoolTimeout({
                message: `couldn't get a connection after ${(timeoutMs / 1000).toFixed(2)} sec`,
                pool: this.settings.name
              })
              : error
          )
      )
      const taken = Effect.tap(got, (pooled) => {
        pooled.checkedOutAt = this.now()
        const given = trace ? this.trace(`connection given by '${this.settings.name}'`) : Effect.void
        if (this.settings.leakDetectionMs === undefined) return given
        pooled.leakReported = false
        this.outstanding.add(pooled)
        return Effect.andThen(
          Effect.map(borrowerOf, (borrower) => {
            pooled.borrower = borrower
          }),
          given
        )
      })
      return trace ? Effect.andThen(this.trace(`connection requested from '${this.settings.name}'`), taken) : taken
    })
  }

  /** The return path of a checkout, whatever its exit. */
  private release(pooled: Pooled, exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> {
    return Effect.suspend(() => {
      const session = pooled.conn.session
      if (session.settling) {
        // An interrupted statement is still being cancelled and drained: the
        // borrower (whose deadline it was) goes on at once; the connection
        // comes back once the outcome is known, or is closed with the pool.
        this.spawn(
          Effect.andThen(session.settled, this.returnNow(pooled, exit)).pipe(
            Effect.onInterrupt(() => this.closeConnection(pooled))
          )
        )
        return Effect.void
      }
      return this.returnNow(pooled, exit)
    })
  }

  private returnNow(pooled: Pooled, exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> {
    return Effect.suspend(() => {
      this.counters.add("usage_ms", this.now() - pooled.checkedOutAt)
      // Fast path, no round trip: an IDLE connection of an open pool, fit for
      // reuse, goes straight to the next waiter or the idle queue.
      const conn = pooled.conn
      const fast = !this.closed && !this.settings.nullPool && this.settings.reset === undefined &&
        this.settings.leakDetectionMs === undefined && !conn.closed && conn.info.transactionStatus === "IDLE" &&
        pooled.generation === this.generation && pooled.expiresAt > this.now()
      const back = fast ? this.addToPool(pooled) : Effect.andThen(this.endBlock(pooled, exit), this.giveBack(pooled))
      return this.settings.checkoutLogLevel === undefined
        ? back
        : Effect.andThen(this.trace(`returning connection to '${this.settings.name}'`), back)
    })
  }

  /** Opens a span around the acquisition. */
  private traced<A, E, R>(acquire: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> {
    return Effect.withSpan(acquire, "pgfx.pool.connection", this.spanOptions)
  }


  /**
   * A scoped checkout: the connection goes back to the pool (rolled back,
   * reset, or replaced) when the scope closes, whatever its exit.
   */
  checkout(timeout: number | undefined): Effect.Effect<Connection.Connection<unknown>, CheckoutError, Scope.Scope> {
    const timeoutMs = timeout ?? this.settings.timeoutMs
    return this.traced(Effect.uninterruptibleMask((restore) =>
      Effect.flatMap(this.acquire(restore, timeoutMs), (pooled) =>
        Effect.as(
          Effect.addFinalizer((exit) => this.release(pooled, exit)),
          pooled.conn
        ))
    ))
  }

  /**
   * `pool.use`: acquire, run, release, without a `Scope`. With `autocommit`
   * off, the implicit transaction is committed when `f` succeeds (a failing
   * COMMIT fails `use`).
   */
  use<A, E, R>(
    f: (connection: Connection.Connection<unknown>) => Effect.Effect<A, E, R>,
    timeout: number | undefined
  ): Effect.Effect<A, E | CheckoutError, R> {
    const timeoutMs = timeout ?? this.settings.timeoutMs
    return Effect.uninterruptibleMask((restore) =>
      Effect.flatMap(this.traced(this.acquire(restore, timeoutMs)), (pooled) => {
        const conn = pooled.conn
        const body = conn.autocommit ? f(conn) : Effect.tap(f(conn), () => conn.autocommit ? Effect.void : conn.commit)
        return Effect.flatMap(
          Effect.exit(restore(body)),
          (exit) => Effect.andThen(this.release(pooled, exit), exit)
        )
      })
    )
  }

  // ---------------------------------------------------------------------------
  // shared leases: statements of many clients pipelined on pooled connections
  // ---------------------------------------------------------------------------

  /** Connections lent to `share`, each while statements run on it (`sharers`). */
  private readonly sharing: Array<Pooled> = []

  /**
   * The connection lent to `share` that takes the next statement, or
   * `undefined` to take one the usual way (an idle one, growing, or queueing).
   * The busiest one below `maxPipeline` is chosen: statements issued in the
   * same tick then leave in one write and their answers arrive in one read,
   * which on a loaded client costs far less than one write per connection
   * (W2/W6 in bench/). A connection whose oldest statement has been running
   * for `STALLED_MS` is passed over, so that a slow statement does not
   * gather others behind it. Clients waiting for a checkout come first: the
   * statement then queues like them.
   */
  private pickShared(): Pooled | undefined {
    if (this.waiting.length > 0) return undefined
    let best: Pooled | undefined
    for (const pooled of this.sharing) {
      if (pooled.sharers >= this.settings.maxPipeline || (best !== undefined && pooled.sharers <= best.sharers)) continue
      const session = pooled.conn.session
      if (pooled.conn.closed || session.settling || session.headAge > STALLED_MS) continue
      best = pooled
    }
    return best
  }

  /** Whether statements may share connections: autocommit on (no implicit transactions), not a null pool. */
  private get shareable(): boolean {
    return !this.settings.nullPool && this.settings.connectOptions.autocommit !== false
  }

  /**
   * Runs `f` with a pooled connection that other `share` calls use at the
   * same time: their statements are pipelined on it (see
   * `Connection.execute`). The connection goes back to the pool when its
   * last sharer is done. Where sharing is not possible it is `use`.
   */
  share<A, E, R>(
    f: (connection: Connection.Connection<unknown>) => Effect.Effect<A, E, R>
  ): Effect.Effect<A, E | CheckoutError, R> {
    if (!this.shareable) return this.use(f, undefined)
    return Effect.uninterruptibleMask((restore) =>
      Effect.suspend(() => {
        if (this.closed) return Effect.fail(this.closedError())
        const ready = this.pickShared()
        if (ready !== undefined) return this.runShared(ready, f, restore)
        return Effect.flatMap(this.traced(this.acquire(restore, this.settings.timeoutMs)), (pooled) => {
          this.sharing.push(pooled)
          return this.runShared(pooled, f, restore)
        })
      })
    )
  }

  private runShared<A, E, R>(
    pooled: Pooled,
    f: (connection: Connection.Connection<unknown>) => Effect.Effect<A, E, R>,
    restore: Restore
  ): Effect.Effect<A, E, R> {
    pooled.sharers++
    return Effect.flatMap(Effect.exit(restore(f(pooled.conn))), (exit) => {
      if (--pooled.sharers > 0) return exit
      const index = this.sharing.indexOf(pooled)
      if (index >= 0) this.sharing.splice(index, 1)
      return Effect.andThen(this.release(pooled, exit), exit)
    })
  }

  /**
   * psycopg's connection context on exit (`with pool.connection()`): after a
   * failure an open transaction is rolled back quietly; after success, the
   * implicit transaction of an `autocommit: false` connection is committed.
   * Problems are logged; the scope's own outcome stands.
   */
  private endBlock(pooled: Pooled, exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> {
    return Effect.suspend(() => {
      const conn = pooled.conn
      if (conn.closed) return Effect.void
      const status = conn.info.transactionStatus
      const failed = Exit.isFailure(exit)
      if (failed && (status === "INTRANS" || status === "INERROR")) {
        return Effect.flatMap(
          this.bounded(conn, conn.rollback, this.settings.cleanupTimeoutMs, "rollback"),
          (done) =>
            Exit.isFailure(done)
              ? this.warn(`error ignored in rollback on ${this.describe(pooled)}: ${describeCause(done.cause)}`)
              : Effect.void
        )
      }
      if (!failed && !conn.autocommit && status === "INTRANS") {
        return Effect.flatMap(
          this.bounded(conn, conn.commit, this.settings.cleanupTimeoutMs, "commit"),
          (done) =>
            Exit.isFailure(done)
              ? this.warn(`commit failed on returned connection ${this.describe(pooled)}: ${describeCause(done.cause)}`)
              : Effect.void
        )
      }
      return Effect.void
    })
  }

  /** `putconn`: the return path of a checked-out connection. */
  private giveBack(pooled: Pooled): Effect.Effect<void> {
    return Effect.suspend(() => {
      let report = Effect.void
      if (this.outstanding.delete(pooled) && pooled.leakReported) {
        report = this.info(
          `previously reported leaked connection ${this.describe(pooled)} returned after ${
            this.now() - pooled.checkedOutAt
          } ms`
        )
      }
      if (this.settings.nullPool && (this.closed || this.waiting.length === 0)) {
        // Nobody wants it: close it.
        if (pooled.conn.closed) this.counters.add("returns_bad")
        this.nconns = Math.max(0, this.nconns - 1)
        return Effect.andThen(report, this.closeConnection(pooled))
      }
      return Effect.andThen(report, this.returnConnection(pooled, false))
    })
  }

  /**
   * psycopg's `_return_connection`: bring the session back to IDLE (or close
   * it), then discard it when broken, expired or drained, else hand it on.
   */
  private returnConnection(pooled: Pooled, fromGetconn: boolean): Effect.Effect<void> {
    const self = this
    return Effect.gen(function*() {
      if (self.closed) return yield* self.closeConnection(pooled)
      yield* self.resetConnection(pooled)
      if (pooled.conn.closed) {
        if (fromGetconn) {
          self.counters.add("connections_lost")
          yield* self.info("not serving connection found broken")
        } else {
          self.counters.add("returns_bad")
          yield* self.warn(`discarding closed connection: ${self.describe(pooled)}`)
        }
        yield* self.closeConnection(pooled)
        self.replace()
        return
      }
      if (pooled.generation < self.generation || pooled.expiresAt <= self.now()) {
        yield* self.debug("discarding expired connection")
        yield* self.closeConnection(pooled)
        self.replace()
        return
      }
      yield* self.addToPool(pooled)
    })
  }

  /** psycopg's `_reset_connection`: roll back, close an ACTIVE one, run `reset`. */
  private resetConnection(pooled: Pooled): Effect.Effect<void> {
    const self = this
    const conn = pooled.conn
    return Effect.gen(function*() {
      const status = conn.info.transactionStatus
      if (status === "UNKNOWN") return
      if (status === "INTRANS" || status === "INERROR") {
        yield* self.warn(`rolling back returned connection: ${self.describe(pooled)}`)
        const rolledBack = yield* self.bounded(conn, conn.rollback, self.settings.cleanupTimeoutMs, "rollback")
        if (Exit.isFailure(rolledBack)) {
          yield* self.warn(
            `rollback failed: ${describeCause(rolledBack.cause)}. Discarding connection ${self.describe(pooled)}`
          )
          yield* conn.close
        }
      } else if (status === "ACTIVE") {
        // A statement still runs (a fiber kept using the connection): stop it
        // on the server and close the session.
        yield* self.warn(`closing returned connection: ${self.describe(pooled)}`)
        self.spawn(Effect.ignore(conn.cancel))
        yield* conn.close
      }
      const reset = self.settings.reset
      if (reset === undefined || conn.closed) return
      const done = yield* self.bounded(conn, reset(conn), self.settings.cleanupTimeoutMs, "reset")
      let problem: string | undefined
      if (Exit.isFailure(done)) problem = describeCause(done.cause)
      else if (conn.closed || conn.info.transactionStatus !== "IDLE") {
        problem = `connection left in status ${conn.closed ? "BAD" : conn.info.transactionStatus} by reset function: discarded`
      }
      if (problem !== undefined) {
        yield* self.warn(`error resetting connection: ${problem}`)
        yield* conn.close
      }
    })
  }

  // ---------------------------------------------------------------------------
  // maintenance
  // ---------------------------------------------------------------------------

  /**
   * Checks one connection taken out of the idle queue: expired ones are
   * replaced; one that fails `query` (or does not answer in time) is counted
   * lost, logged and replaced; a good one goes back.
   */
  private checkIdle(pooled: Pooled, query: string, timeoutMs: number): Effect.Effect<void> {
    const self = this
    return Effect.uninterruptibleMask((restore) =>
      Effect.gen(function*() {
        if (pooled.expiresAt <= self.now() || pooled.generation < self.generation) {
          yield* self.debug(`discarding expired connection ${self.describe(pooled)}`)
          yield* self.closeConnection(pooled)
          self.replace()
          return
        }
        const result = yield* Effect.exit(
          restore(self.bounded(pooled.conn, ping(pooled.conn, query), timeoutMs, "connection check"))
        )
        if (Exit.isFailure(result)) return yield* self.addToPool(pooled) // interrupted: the pool is closing
        const checked = result.value
        if (Exit.isSuccess(checked) && pooled.conn.info.transactionStatus === "IDLE") {
          return yield* self.addToPool(pooled)
        }
        self.counters.add("connections_lost")
        yield* self.warn(
          `discarding broken connection: ${self.describe(pooled)}${
            Exit.isFailure(checked) ? `: ${describeCause(checked.cause)}` : ""
          }`
        )
        yield* self.closeConnection(pooled)
        self.replace()
      })
    )
  }

  /** psycopg's `check()`: every idle connection is checked; the pool may grow. */
  readonly check: Effect.Effect<void> = Effect.suspend(() => {
    if (this.settings.nullPool || this.closed) return Effect.void
    const taken = this.idle.splice(0)
    this.maybeGrow()
    return Effect.forEach(
      taken.reverse(),
      (pooled) => this.checkIdle(pooled, "", this.settings.cleanupTimeoutMs),
      { concurrency: this.settings.numWorkers, discard: true }
    )
  })

  /** One round of the health-check fiber: idle connections unused for an interval are pinged. */
  private healthCheckOnce(query: string, intervalMs: number, timeoutMs: number): Effect.Effect<void> {
    const self = this
    return Effect.gen(function*() {
      for (const pooled of self.idle.slice()) {
        if (self.closed) return
        if (self.now() - pooled.lastUsedAt < intervalMs && pooled.expiresAt > self.now()) continue
        const index = self.idle.indexOf(pooled)
        if (index < 0) continue
        self.idle.splice(index, 1)
        yield* self.checkIdle(pooled, query, timeoutMs)
      }
      if (self.nconns < self.minSize) self.maybeGrow()
    })
  }

  /** psycopg's `_shrink_pool`: at most one idle connection above `minSize` per `maxIdle`. */
  private readonly shrink: Effect.Effect<void> = Effect.suspend(() => {
    const nconnsMin = this.nconnsMin
    this.nconnsMin = this.idle.length
    if (this.nconns > this.minSize && nconnsMin > 0 && this.idle.length > 0) {
      const pooled = this.idle.shift()!
      this.nconns -= 1
      this.nconnsMin -= 1
      return Effect.andThen(
        this.debug(
          `shrinking pool '${this.settings.name}' to ${this.nconns} because ${nconnsMin} unused connections in the last ${
            seconds(this.settings.maxIdleMs)
          } sec`
        ),
        this.closeConnection(pooled)
      )
    }
    return Effect.void
  })

  /** Warns about connections held longer than `leakDetectionThreshold`. */
  private detectLeaks(thresholdMs: number): Effect.Effect<void> {
    return Effect.suspend(() => {
      const now = this.now()
      const reports: Array<Effect.Effect<void>> = []
      for (const pooled of this.outstanding) {
        if (pooled.leakReported || now - pooled.checkedOutAt < thresholdMs) continue
        pooled.leakReported = true
        reports.push(
          this.warn(
            `connection leak detection: ${this.describe(pooled)} checked out for ${
              now - pooled.checkedOutAt
            } ms (threshold ${thresholdMs} ms) by ${pooled.borrower ?? "an unknown borrower"}`
          )
        )
      }
      return Effect.all(reports, { discard: true })
    })
  }

  /** psycopg's `drain()`: close the idle connections, replace them; the others are replaced when returned. */
  readonly drain: Effect.Effect<void> = Effect.suspend(() => {
    const taken = this.idle.splice(0)
    this.generation += 1
    return Effect.forEach(taken, (pooled) =>
      Effect.andThen(this.closeConnection(pooled), Effect.sync(() => this.replace())), { discard: true })
  })

  /** psycopg's `resize()`: growing `minSize` adds connections at once; shrinking is gradual. */
  resize(minSize: number, maxSize: number | undefined): Effect.Effect<void, PoolConfigError> {
    return Effect.suspend(() => {
      const checked = checkSize(this.settings.nullPool, minSize, maxSize)
      if (Exit.isFailure(checked)) return checked
      const sizes = checked.value
      const grow = this.settings.nullPool ? 0 : Math.max(0, sizes.minSize - this.minSize)
      this.minSize = sizes.minSize
      this.maxSize = sizes.maxSize
      if (!this.closed) {
        this.nconns += grow
        for (let index = 0; index < grow; index++) this.spawn(this.addConnection(false))
      }
      return this.debug(
        `resizing '${this.settings.name}' to min_size=${sizes.minSize} max_size=${sizes.maxSize}`
      )
    })
  }

  // ---------------------------------------------------------------------------
  // life cycle
  // ---------------------------------------------------------------------------

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
  private testConnection(timeoutMs: number): Effect.Effect<void> {
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

  private startBackgroundTasks(): void {
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

/** Who checks a connection out: the span around the checkout (or a stack), for leak reports. */
const borrowerOf: Effect.Effect<string> = Effect.map(Effect.option(Effect.currentSpan), (current) => {
  if (Option.isSome(current)) {
    const own = current.value
    const span = own.name === "pgfx.pool.connection" && Option.isSome(own.parent) ? own.parent.value : own
    return span._tag === "Span" ? `span '${span.name}' (trace ${span.traceId})` : `span ${span.spanId} (trace ${span.traceId})`
  }
  return `a fiber without span\n${new Error("checked out here").stack ?? ""}`
})

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
