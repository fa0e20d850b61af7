/**
 * The pool's state: plain fields (idle connections, waiters, counts,
 * statistics) that every decision reads and changes in synchronous code, so
 * JavaScript's single thread is the pool's lock; plus the helpers each layer
 * uses (logging, spawning background fibers, bounded round trips). The layers
 * in this folder add behaviour on top: grow → returning → checkout →
 * sharing → maintenance, and `../pool.ts` the life cycle.
 */
import { Connection, HostResolver, PgError } from "@pgfx/core"
import type { PgConfig } from "@pgfx/core"
import * as Cause from "effect/Cause"
import type * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as LogLevel from "effect/LogLevel"
import * as Predicate from "effect/Predicate"
import * as Scope from "effect/Scope"
import * as Semaphore from "effect/Semaphore"
import type { ConnectionCallback, ConnectionPool, PoolStats } from "../model.ts"
import { PoolClosed, PoolConfigError } from "../../PoolError.ts"
import { type BackoffSettings } from "../backoff.ts"
import { Counters, registerMetrics } from "../stats.ts"
import { Waiter } from "../waiter.ts"

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
export interface Pooled {
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

export type Restore = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>

/** A shared connection whose oldest statement runs this long takes no more (see `pickShared`). */
export const STALLED_MS = 50

/** A bounded operation on a connection that did not finish in time. */
export class OperationTimeout {
  readonly _tag = "OperationTimeout"
  constructor(readonly message: string) {}
}

export const seconds = (ms: number): string => {
  const s = ms / 1000
  return Number.isInteger(s) ? String(s) : String(Number(s.toFixed(3)))
}

/** `Tag: message` of the first error or defect of a cause. */
export const describeCause = (cause: Cause.Cause<unknown>): string => {
  if (Cause.hasInterruptsOnly(cause)) return "interrupted"
  return describeError(Cause.squash(cause))
}

export const describeError = (error: unknown): string => {
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


/** The pool's state and the helpers every layer uses. */
export abstract class PoolBase {
  minSize: number
  maxSize: number
  protected readonly idle: Array<Pooled> = []
  protected readonly waiting: Array<Waiter<Pooled>> = []
  protected readonly fullWaiters = new Set<Deferred.Deferred<void, PoolClosed>>()
  protected readonly outstanding = new Set<Pooled>()
  /** Connections managed: idle, checked out, being created. */
  protected nconns: number
  /** Smallest idle count seen since the last shrink run. */
  protected nconnsMin: number
  protected growing = false
  protected opened = false
  closed = true
  protected generation = 0
  protected readonly counters = new Counters()
  protected readonly workers: Semaphore.Semaphore
  protected readonly annotations: Record<string, string>
  protected readonly spanOptions: { readonly attributes: Record<string, string>; readonly captureStackTrace: false }
  protected unregisterMetrics: (() => void) | undefined
  protected disposed = false
  /** The service handed to `reconnectFailed`; set by the constructor's caller. */
  handle: ConnectionPool<unknown> | undefined
  /** Host names are resolved with the resolver in force where the pool was made. */
  protected readonly resolver: HostResolver.HostResolver

  constructor(
    readonly settings: PoolSettings,
    protected readonly clock: Clock.Clock,
    protected readonly runFork: <A, E>(effect: Effect.Effect<A, E>) => unknown,
    protected readonly backgroundScope: Scope.Closeable,
    protected readonly context: Context.Context<never>
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



  protected now(): number {
    return this.clock.currentTimeMillisUnsafe()
  }

  protected info(message: string): Effect.Effect<void> {
    return Effect.logInfo(message).pipe(Effect.annotateLogs(this.annotations))
  }

  /**
   * Lifecycle events (opening, growing, shrinking, retiring expired
   * connections): at Debug, so a healthy program prints nothing; what a user
   * must act on (a lost connection, a failed reconnect) is a warning.
   */
  protected debug(message: string): Effect.Effect<void> {
    return Effect.logDebug(message).pipe(Effect.annotateLogs(this.annotations))
  }

  protected warn(message: string): Effect.Effect<void> {
    return Effect.logWarning(message).pipe(Effect.annotateLogs(this.annotations))
  }

  /** Per-request lines (requested, given, returned, queued), at `checkoutLogLevel`. */
  protected trace(message: string): Effect.Effect<void> {
    const level = this.settings.checkoutLogLevel
    return level === undefined
      ? Effect.void
      : Effect.logWithLevel(level)(message).pipe(Effect.annotateLogs(this.annotations))
  }

  /** psycopg's connection repr: the backend pid and the status (`BAD` once closed). */
  protected describe(pooled: Pooled): string {
    const status = pooled.conn.closed ? "BAD" : pooled.conn.info.transactionStatus
    return `<pgfx connection pid=${pooled.conn.info.backendPid} [${status}]>`
  }

  /** Runs a background task in the pool's fiber set; failures are logged, never thrown. */
  protected spawn(effect: Effect.Effect<void>): void {
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

  protected closedError(): PoolClosed {
    return new PoolClosed({
      message: this.opened
        ? `the pool '${this.settings.name}' is already closed`
        : `the pool '${this.settings.name}' is not open yet`,
      pool: this.settings.name
    })
  }

  /** Terminate (an open transaction is rolled back by the server) and release the scope. */
  protected closeConnection(pooled: Pooled): Effect.Effect<void> {
    this.outstanding.delete(pooled)
    return Effect.andThen(pooled.conn.close, Scope.close(pooled.scope, Exit.void))
  }

  /**
   * Runs `effect` on `conn` for at most `ms`: past that the connection is
   * invalidated (its socket closed), so a half-open connection cannot hold
   * anyone beyond the deadline. Never fails: the outcome is the exit.
   */
  protected bounded<A, E>(
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
}
