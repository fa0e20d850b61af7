/**
 * @pgfx/pool: psycopg_pool for Effect — `ConnectionPool`,
 * `NullConnectionPool`, and `FanOut` for bounded, deadline-honest parallel
 * queries.
 *
 * @since 0.1.0
 * @module @pgfx/pool
 */

/** The connection pool (psycopg_pool's `ConnectionPool`): make, layer, service tag, stats. @since 0.1.0 */
export * as ConnectionPool from "./ConnectionPool.ts"

/** A pool without idle connections (psycopg_pool's `NullConnectionPool`). @since 0.1.0 */
export * as NullConnectionPool from "./NullConnectionPool.ts"

/** The pools' typed errors: `PoolTimeout`, `PoolClosed`, `TooManyRequests`, `PoolConfigError`. @since 0.1.0 */
export * as PoolError from "./PoolError.ts"

/** Runs work over many items with bounded concurrency and one deadline. @since 0.1.0 */
export * as FanOut from "./FanOut.ts"
