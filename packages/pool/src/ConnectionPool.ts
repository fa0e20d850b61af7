/**
 * A connection pool with psycopg_pool's behaviour, as a scoped Effect
 * resource.
 *
 * ```ts
 * import { Effect } from "effect"
 * import { ConnectionPool } from "@pgfx/pool"
 *
 * const program = Effect.gen(function*() {
 *   const pool = yield* ConnectionPool.make({ conninfo: "dbname=test", minSize: 2 })
 *   yield* pool.wait()
 *   const rows = yield* pool.use((conn) => conn.execute("SELECT $1::int * $1::int", [7]))
 * }).pipe(Effect.scoped) // closing the scope closes the pool
 * ```
 *
 * - Single statements need no checkout: `pool.execute` pipelines concurrent
 *   statements on shared pooled connections (`share` for several).
 * - Checkout is scoped (`pool.connection`, `pool.use`): the connection comes
 *   back when the scope closes, whatever the exit. Returned connections are
 *   judged by their transaction status from the last ReadyForQuery (no round
 *   trip): IDLE is kept; INTRANS/INERROR is rolled back (a failed rollback
 *   discards it); ACTIVE or closed is discarded and replaced (`returns_bad`).
 * - Idle connections are served FIFO. The pool grows one connection at a
 *   time while clients wait, shrinks by at most one idle connection per
 *   `maxIdle`, reconnects with exponential backoff, and retires connections
 *   after `maxLifetime` (minus up to 5 % jitter).
 * - A waiter that times out or is interrupted never loses a connection
 *   handed to it late. Waiting has a deadline (`timeout`); `maxWaiting`
 *   bounds the queue.
 * - Statistics use psycopg_pool's keys (`pool.stats`, `pool.popStats`) and
 *   are mirrored as Effect metrics `pgfx_pool_<key>{pool=<name>}`; each
 *   checkout runs in a span `pgfx.pool.connection`; pool events are logged
 *   annotated with `pool=<name>`: lifecycle at DEBUG (quiet by default),
 *   what needs attention at WARNING.
 *
 * @since 0.1.0
 */
import type { Connection, PgConfig, PgError, RowFactory } from "@pgfx/core"
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as LogLevel from "effect/LogLevel"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import { ping } from "./internal/ping.ts"
import { makePool } from "./internal/service.ts"
import type { PoolClosed, PoolConfigError, PoolTimeout, TooManyRequests } from "./PoolError.ts"

export {
  /** @since 0.1.0 */
  PoolClosed,
  /** @since 0.1.0 */
  PoolConfigError,
  /** @since 0.1.0 */
  PoolTimeout,
  /** @since 0.1.0 */
  TooManyRequests
} from "./PoolError.ts"

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

/**
 * A running pool (psycopg's `ConnectionPool`). Also the service of the
 * {@link ConnectionPool} tag.
 *
 * @example
 * ```ts
 * // psycopg: with pool.connection() as conn: conn.execute(...)
 * const square = (n: number) => pool.use((conn) => conn.execute("SELECT $1::int * $1::int", [n]))
 *
 * // the same checkout, held until the enclosing scope closes
 * const conn = yield* pool.connection
 *
 * yield* pool.resize(2, 8)
 * const { pool_size, requests_waiting } = yield* pool.stats
 * ```
 *
 * @since 0.1.0
 */
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
 * The service tag of a pool provided by a layer (psycopg's
 * `AsyncConnectionPool` kept for an application's lifetime).
 *
 * @example
 * ```ts
 * const program = Effect.gen(function*() {
 *   const pool = yield* ConnectionPool.ConnectionPool
 *   return yield* pool.use((conn) => conn.execute("SELECT now()"))
 * })
 *
 * program.pipe(Effect.provide(ConnectionPool.layer({ conninfo: "dbname=app", minSize: 2 })))
 * ```
 *
 * @since 0.1.0
 */
export const ConnectionPool: Context.Service<ConnectionPool, ConnectionPool> = Context.Service<ConnectionPool>(
  "@pgfx/pool/ConnectionPool"
)

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

/**
 * Opens a pool that lives as long as the current scope. Invalid sizes fail
 * with `PoolConfigError`, malformed conninfo with `PgConfigError`; the
 * connections themselves are made in the background (use `pool.wait()` to
 * wait for them).
 *
 * @example
 * ```ts
 * // psycopg: pool = ConnectionPool("dbname=test", min_size=2); pool.wait()
 * const program = Effect.gen(function*() {
 *   const pool = yield* ConnectionPool.make({ conninfo: "dbname=test", minSize: 2 })
 *   yield* pool.wait()
 *   return yield* pool.use((conn) => conn.execute("SELECT 1"))
 * }).pipe(Effect.scoped) // closing the scope closes the pool
 * ```
 *
 * @since 0.1.0
 */
export const make = <R = RowFactory.Tuple>(
  options: Options<R> = {}
): Effect.Effect<ConnectionPool<R>, PoolConfigError | PgConfig.PgConfigError, Scope.Scope> => makePool(options, false)

/**
 * A layer providing {@link ConnectionPool}, open for the layer's lifetime.
 *
 * @example
 * ```ts
 * const PoolLive = ConnectionPool.layer({ conninfo: "postgresql://app@db/orders", minSize: 2, name: "api" })
 * const main = program.pipe(Effect.provide(PoolLive)) // program needs ConnectionPool.ConnectionPool
 * ```
 *
 * @since 0.1.0
 */
export const layer = (
  options: Options = {}
): Layer.Layer<ConnectionPool, PoolConfigError | PgConfig.PgConfigError> =>
  Layer.effect(ConnectionPool, makePool(options, false))

/**
 * {@link layer} from Effect `Config` values (each option a `Config`, or one
 * `Config` of the whole options).
 *
 * @example
 * ```ts
 * ConnectionPool.layerConfig({
 *   conninfo: Config.String("DATABASE_URL"),
 *   minSize: Config.Int("POOL_MIN").pipe(Config.withDefault(2)),
 *   maxSize: Config.Int("POOL_MAX").pipe(Config.withDefault(10))
 * })
 * ```
 *
 * @since 0.1.0
 */
export const layerConfig = (
  config: Config.Wrap<Options>
): Layer.Layer<ConnectionPool, PoolConfigError | PgConfig.PgConfigError | Config.ConfigError> =>
  Layer.effect(ConnectionPool, Effect.flatMap(Config.unwrap(config), (options) => makePool(options, false)))

/**
 * A ready-made `check`: an empty query (outside any implicit transaction),
 * which fails when the session is gone. psycopg's `check_connection`.
 *
 * @example
 * ```ts
 * ConnectionPool.make({ conninfo, check: ConnectionPool.checkConnection })
 * ```
 *
 * @since 0.1.0
 */
export const checkConnection = (connection: Connection.Connection<unknown>): Effect.Effect<void, PgError.PgError> =>
  ping(connection, "")

/**
 * A ready-made `reset`: `DISCARD ALL` (session settings, temporary tables,
 * prepared statements, advisory locks, LISTEN registrations).
 *
 * @example
 * ```ts
 * ConnectionPool.make({ conninfo, reset: ConnectionPool.discardAll })
 * ```
 *
 * @since 0.1.0
 */
export const discardAll = (connection: Connection.Connection<unknown>): Effect.Effect<void, PgError.PgError> =>
  Effect.asVoid(connection.execute("DISCARD ALL"))
