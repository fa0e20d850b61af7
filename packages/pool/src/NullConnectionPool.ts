/**
 * psycopg_pool's `NullConnectionPool`: the pool interface without idle
 * connections. Every request connects (in the client's own fiber, within its
 * timeout) and the connection is closed when it comes back, unless a client
 * is waiting for it. `maxSize` (0: unlimited) caps the open connections;
 * extra clients queue with `timeout` and `maxWaiting` as in the normal pool.
 *
 * Use it where connections must not outlive requests (serverless, a pooler
 * such as PgBouncer in front) while keeping the same `ConnectionPool`
 * service, so swapping layers is all it takes.
 *
 * - `minSize` must be 0; no filling, growing, shrinking or health check.
 * - `reset` runs only when a waiting client will reuse the connection.
 * - `wait()` opens one test connection and closes it.
 * - `check()` is a no-op; `resize()` changes `maxSize` only.
 *
 * @since 0.1.0
 */
import type { PgConfig, RowFactory } from "@pgfx/core"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import { ConnectionPool, type Options } from "./ConnectionPool.ts"
import { makePool } from "./internal/service.ts"
import type { PoolConfigError } from "./PoolError.ts"

/**
 * Opens a null pool for the current scope (`minSize` defaults to 0 and must
 * stay 0; `maxSize` 0 or unset means unlimited).
 *
 * @example
 * ```ts
 * const pool = yield* NullConnectionPool.make({ conninfo: "postgresql://app@pgbouncer:6432/app", maxSize: 20 })
 * yield* pool.use((conn) => conn.execute("SELECT 1")) // connects now, closes afterwards
 * ```
 *
 * @since 0.1.0
 */
export const make = <R = RowFactory.Tuple>(
  options: Options<R> = {}
): Effect.Effect<ConnectionPool<R>, PoolConfigError | PgConfig.PgConfigError, Scope.Scope> =>
  makePool({ ...options, maxSize: options.maxSize ?? 0 }, true)

/**
 * A layer providing the `ConnectionPool` service with a null pool: a
 * drop-in for `ConnectionPool.layer`.
 *
 * @example
 * ```ts
 * const PoolLive = process.env.SERVERLESS
 *   ? NullConnectionPool.layer({ conninfo, prepareThreshold: null })
 *   : ConnectionPool.layer({ conninfo, minSize: 2 })
 * ```
 *
 * @since 0.1.0
 */
export const layer = (
  options: Options = {}
): Layer.Layer<ConnectionPool, PoolConfigError | PgConfig.PgConfigError> => Layer.effect(ConnectionPool, make(options))

/**
 * {@link layer} from Effect `Config` values.
 *
 * @example
 * ```ts
 * NullConnectionPool.layerConfig({ conninfo: Config.String("DATABASE_URL"), maxSize: Config.succeed(10) })
 * ```
 *
 * @since 0.1.0
 */
export const layerConfig = (
  config: Config.Wrap<Options>
): Layer.Layer<ConnectionPool, PoolConfigError | PgConfig.PgConfigError | Config.ConfigError> =>
  Layer.effect(ConnectionPool, Effect.flatMap(Config.unwrap(config), (options) => make(options)))
