/**
 * The pool's vocabulary — options, statistics, checkout errors and the
 * shape of a running pool — in a module of its own, so the implementation
 * (`service.ts`, `pool.ts`) and the public `ConnectionPool` module both
 * import it and neither imports the other.
 */
import type { Connection, PgConfig, PgError, RowFactory } from "@pgfx/core"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as LogLevel from "effect/LogLevel"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import type { PoolClosed, PoolConfigError, PoolTimeout, TooManyRequests } from "../PoolError.ts"

/**
 * Statistics with psycopg_pool's exact key names. Gauges are always present;
 * counters are missing while they are 0 and `popStats` resets them.
 *
 * @since 0.1.0
 */
export interface PoolStats {
  /** `minSize`. */
  readonly pool_min: number
  /** `maxSize` (0: unlimited, null pool only). */
  readonly pool_max: number
  /** Connections managed: idle, checked out and being created. */
  readonly pool_size: number
  /** Idle connections. */
  readonly pool_available: number
  /** Clients in the queue. */
  readonly requests_waiting: number
  /** Connection requests. */
  readonly requests_num?: number
  /** Requests that had to wait in the queue. */
  readonly requests_queued?: number
  /** Total time spent in the queue, in milliseconds. */
  readonly requests_wait_ms?: number
  /** Requests that failed: timeout, queue full, interrupted waiter. */
  readonly requests_errors?: number
  /** Total time connections spent checked out, in milliseconds. */
  readonly usage_ms?: number
  /** Connections returned closed or in a state that closed them (ACTIVE, failed rollback). */
  readonly returns_bad?: number
  /** Connection attempts. */
  readonly connections_num?: number
  /** Total time spent connecting, in milliseconds. */
  readonly connections_ms?: number
  /** Failed connection attempts. */
  readonly connections_errors?: number
  /** Connections found broken: by `check`, the `check` callback, or closed while idle. */
  readonly connections_lost?: number
}

/**
 * What a checkout can fail with: the pool's own errors, and (null pool, or a
 * conninfo effect) connection errors.
 *
 * @since 0.1.0
 */
export type CheckoutError = PoolTimeout | PoolClosed | TooManyRequests | PgError.PgError | PgConfig.PgConfigError

/**
 * Per-checkout options.
 *
 * @since 0.1.0
 */
export interface CheckoutOptions {
  /** Overrides the pool's `timeout` for this request. */
  readonly timeout?: Duration.Input | undefined
}

/** A running pool: the service `ConnectionPool.ConnectionPool` documents. */
export interface ConnectionPool<R = RowFactory.Tuple> {
  /** The name shown in logs, metrics and errors (`pool-1`, `pool-2`, … by default). */
  readonly name: string
  /** Current minimum size (see `resize`). */
  readonly minSize: number
  /** Current maximum size. */
  readonly maxSize: number
  /** Default wait for a connection. */
  readonly timeout: Duration.Duration
  /** Bound on the queue (0: unlimited). */
  readonly maxWaiting: number
  /** Connection lifetime (minus up to 5 % jitter per connection). */
  readonly maxLifetime: Duration.Duration
  /** Period of the shrink task. */
  readonly maxIdle: Duration.Duration
  /** How long a failing connection attempt is retried. */
  readonly reconnectTimeout: Duration.Duration
  /** Not open yet, or closed. */
  readonly closed: boolean
  /**
   * A connection for the current scope: the oldest idle one, or one handed
   * over within `timeout`. It goes back to the pool when the scope closes.
   */
  readonly connection: Effect.Effect<Connection.Connection<R>, CheckoutError, Scope.Scope>
  /** `connection` with per-call options (a different timeout). */
  readonly connectionWith: (
    options: CheckoutOptions
  ) => Effect.Effect<Connection.Connection<R>, CheckoutError, Scope.Scope>
  /**
   * Runs `f` with a connection and gives it back afterwards. With
   * `autocommit: false` connections, the implicit transaction is committed
   * when `f` succeeds (a failing COMMIT fails `use`) and rolled back when it
   * fails, like psycopg's `with pool.connection():`.
   */
  readonly use: <A, E, R2>(
    f: (connection: Connection.Connection<R>) => Effect.Effect<A, E, R2>,
    options?: CheckoutOptions
  ) => Effect.Effect<A, E | CheckoutError, Exclude<R2, Scope.Scope>>
  /**
   * Runs one statement on a pooled connection without an exclusive
   * checkout: concurrent `execute` calls are spread over the pool (the least
   * loaded connection first) and pipelined there, each with its own Sync, so
   * one failing statement fails only its caller. The fast path for
   * independent statements, e.g. `FanOut.run(ids, (id) => pool.execute(sql, [id]))`.
   *
   * One statement, always with the extended protocol (`params` default to
   * none): a script of several statements fails with the server's error
   * (use `pool.use((conn) => conn.execute(script))`). Transaction control
   * (`BEGIN`, `COMMIT`, `SAVEPOINT`, …) is refused with an `InterfaceError`,
   * since the connection's other statements would run inside that
   * transaction: use `pool.use((conn) => conn.transaction(…))`. Interruption
   * keeps its guarantees: a statement still queued behind others is never
   * cancelled on the server by mistake; see `Connection.execute`. With
   * `autocommit: false` connections or a null pool this is `use` + `execute`.
   */
  readonly execute: <A = R>(
    sql: string,
    params?: ReadonlyArray<unknown>,
    options?: Connection.ExecuteOptions<A>
  ) => Effect.Effect<Connection.QueryResult<A>, PgError.PgError | CheckoutError>
  /**
   * Runs `f` with a pooled connection that concurrent `share` (and
   * `execute`) calls use at the same time, their statements pipelined; the
   * connection goes back when the last of them is done. For statements
   * that leave no session state behind: a transaction block
   * (`conn.transaction`) still gets the connection to itself while the
   * others wait, but a `SET` or an unfinished `BEGIN` would be seen by
   * every sharer. `execute` is `share` + `conn.execute`.
   */
  readonly share: <A, E, R2>(
    f: (connection: Connection.Connection<R>) => Effect.Effect<A, E, R2>
  ) => Effect.Effect<A, E | CheckoutError, R2>
  /**
   * Streams the rows of a query on a connection checked out for the
   * stream's life (a portal needs the connection to itself).
   */
  readonly stream: <A = R>(
    sql: string,
    params?: ReadonlyArray<unknown>,
    options?: Connection.StreamOptions<A>
  ) => Stream.Stream<A, PgError.PgError | CheckoutError>
  /**
   * Waits until `minSize` connections are idle (default 30 s). On timeout the
   * pool is closed and `PoolTimeout` raised; on a closed pool, `PoolClosed`.
   * A null pool opens and closes one test connection.
   */
  readonly wait: (timeout?: Duration.Input) => Effect.Effect<void, PoolTimeout | PoolClosed>
  /**
   * Opens a pool made with `open: false` (idempotent while open; a closed
   * pool cannot be reopened), optionally waiting like `wait`.
   */
  readonly open: (
    options?: { readonly wait?: boolean | undefined; readonly timeout?: Duration.Input | undefined }
  ) => Effect.Effect<void, PoolTimeout | PoolClosed>
  /**
   * Closes the pool: queued clients fail with `PoolClosed`, idle connections
   * are closed, background fibers stop; checked-out connections are closed
   * when they come back. Idempotent. Closing `make`'s scope does it too.
   */
  readonly close: Effect.Effect<void>
  /** Changes the sizes. A larger `minSize` connects at once; shrinking is gradual. */
  readonly resize: (minSize: number, maxSize?: number) => Effect.Effect<void, PoolConfigError>
  /**
   * Checks every idle connection (an empty query): broken or expired ones are
   * replaced and counted in `connections_lost`. A no-op on a null pool.
   */
  readonly check: Effect.Effect<void>
  /**
   * Closes every idle connection and opens new ones; connections checked out
   * now are replaced when they come back (to re-configure sessions).
   */
  readonly drain: Effect.Effect<void>
  /** psycopg's `get_stats()`. */
  readonly stats: Effect.Effect<PoolStats>
  /** psycopg's `pop_stats()`: the stats, then the counters are reset. */
  readonly popStats: Effect.Effect<PoolStats>
}

/**
 * The optional health-check fiber (the seed's warm-up thread done right):
 * every `interval` it runs `query` on each idle connection that was not used
 * during the interval; a connection that fails or does not answer within
 * `timeout` is discarded, logged and replaced. It also refills the pool to
 * `minSize` after reconnection gave up. It stops with the pool.
 *
 * @example
 * ```ts
 * ConnectionPool.make({ conninfo, minSize: 4, healthCheck: { interval: "1 second", timeout: "2 seconds" } })
 * ```
 *
 * @since 0.1.0
 */
export interface HealthCheckOptions {
  /** How often idle connections are pinged, e.g. `"1 second"`. */
  readonly interval: Duration.Input
  /** Default `SELECT 1`. */
  readonly query?: string | undefined
  /** Default 5 seconds. */
  readonly timeout?: Duration.Input | undefined
}

/**
 * Backoff of reconnection attempts and of a failing `check` callback
 * (psycopg: first retry after 1 s ± 10 %, doubling, capped so that the last
 * attempt lands on the deadline).
 *
 * @since 0.1.0
 */
export interface BackoffOptions {
  /** Default 1 second. */
  readonly initialDelay?: Duration.Input | undefined
  /** Fraction of random jitter on the first delay (default 0.1). */
  readonly jitter?: number | undefined
  /** Growth factor of the delay (default 2). */
  readonly factor?: number | undefined
}

/**
 * Where connections go: a conninfo string or URL, an object, a resolved
 * `PgConfig`, or an effect computed at every connection attempt (rotating
 * credentials, service discovery).
 *
 * @since 0.1.0
 */
export type Conninfo =
  | Connection.ConnectionSettings
  | Effect.Effect<Connection.ConnectionSettings, PgError.PgError | PgConfig.PgConfigError>

/**
 * A callback run on a connection: `configure`, `check`, `reset`. Any
 * failure counts.
 *
 * @since 0.1.0
 */
export type ConnectionCallback<R = RowFactory.Tuple> = (
  connection: Connection.Connection<R>
) => Effect.Effect<unknown, unknown>

/**
 * Options of {@link make}, after psycopg_pool's constructor; durations are
 * Effect durations (`"30 seconds"`, a bare number is milliseconds). Options
 * of `Connection.connect` (`prepareThreshold`, `cancelTimeout`, `pgbouncer`,
 * …) apply to every connection.
 *
 * @example
 * ```ts
 * const options: ConnectionPool.Options = {
 *   conninfo: "postgresql://app@db/orders",
 *   minSize: 2,
 *   maxSize: 16,
 *   timeout: "5 seconds",
 *   maxWaiting: 100,
 *   check: ConnectionPool.checkConnection,
 *   pgbouncer: true // behind PgBouncer in transaction mode
 * }
 * ```
 *
 * @since 0.1.0
 */
export interface Options<R = RowFactory.Tuple> extends Connection.ConnectOptions<R> {
  /**
   * Where to connect (default `""`: libpq defaults and `PG*` variables). Host names are
   * resolved at every connection attempt with the `HostResolver` in force where the pool is
   * made (for its background reconnections too), so a DNS change reaches new connections.
   */
  readonly conninfo?: Conninfo | undefined
  /** Connections kept open (default 4; 0 for a null pool). */
  readonly minSize?: number | undefined
  /** Upper bound (default `minSize`; a null pool: 0 = unlimited). */
  readonly maxSize?: number | undefined
  /** Open at once (default `true`); otherwise call `pool.open`. */
  readonly open?: boolean | undefined
  /** Run once on each new connection; it must leave the session IDLE. */
  readonly configure?: ConnectionCallback<NoInfer<R>> | undefined
  /**
   * Run on every checkout before the connection is handed out (e.g.
   * {@link checkConnection}); a failing connection is returned and another
   * one tried, with backoff, until the client's deadline.
   */
  readonly check?: ConnectionCallback<NoInfer<R>> | undefined
  /** Run on each returned connection once it is IDLE (e.g. {@link discardAll}); a failure replaces it. */
  readonly reset?: ConnectionCallback<NoInfer<R>> | undefined
  /** Shown in logs, metrics and errors (default `pool-N`). */
  readonly name?: string | undefined
  /** Default wait for a connection (default 30 seconds). */
  readonly timeout?: Duration.Input | undefined
  /** Clients allowed to wait at once (default 0: unlimited); beyond, `TooManyRequests`. */
  readonly maxWaiting?: number | undefined
  /** Connection lifetime (default 1 hour, minus up to 5 % jitter). */
  readonly maxLifetime?: Duration.Input | undefined
  /** Period of the shrink task (default 10 minutes). */
  readonly maxIdle?: Duration.Input | undefined
  /** How long to retry a failing connection attempt (default 5 minutes). */
  readonly reconnectTimeout?: Duration.Input | undefined
  /** Called when reconnection gives up; the pool then counts one connection fewer. */
  readonly reconnectFailed?: ((pool: ConnectionPool<NoInfer<R>>) => Effect.Effect<unknown, unknown> | void) | undefined
  /** Connection attempts running at once (default 3). */
  readonly numWorkers?: number | undefined
  /**
   * Statements `execute` / `share` pipeline on one connection before they
   * take another one or queue for one (default 16).
   */
  readonly maxPipeline?: number | undefined
  /** The optional health-check fiber. */
  readonly healthCheck?: HealthCheckOptions | undefined
  /**
   * Bound on each rollback, `reset` and `check()` of one connection (default
   * 5 seconds); a connection that does not answer in time is closed.
   */
  readonly cleanupTimeout?: Duration.Input | undefined
  /** Warn when a connection stays checked out longer than this (HikariCP's leak detection). */
  readonly leakDetectionThreshold?: Duration.Input | undefined
  /** Reconnection backoff (psycopg's defaults). */
  readonly backoff?: BackoffOptions | undefined
  /**
   * Level of the per-request log lines (`connection requested`, `given`,
   * `returning`, `waiting`): default `"Debug"`; `"Info"` shows them like the
   * seed's `psycopg.pool` logger at INFO; `"None"` skips them. A level below
   * the minimum log level in force when the pool is made skips them too, at
   * no cost per checkout.
   */
  readonly checkoutLogLevel?: LogLevel.LogLevel | undefined
}

