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
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import type * as Model from "./internal/model.ts"
import type { Options } from "./internal/model.ts"
import { ping } from "./internal/ping.ts"
import { makePool } from "./internal/service.ts"
import type { PoolConfigError } from "./PoolError.ts"

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

export type {
  BackoffOptions,
  CheckoutError,
  CheckoutOptions,
  ConnectionCallback,
  Conninfo,
  HealthCheckOptions,
  Options,
  PoolStats
} from "./internal/model.ts"

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
export interface ConnectionPool<R = RowFactory.Tuple> extends Model.ConnectionPool<R> {}

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
