/**
 * Typed errors of the connection pools, after psycopg_pool's `errors.py`.
 *
 * - `PoolTimeout`: no connection within the client's deadline, or the pool
 *   did not reach `minSize` within `wait`'s deadline.
 * - `PoolClosed`: the pool is not open yet, or already closed.
 * - `TooManyRequests`: `maxWaiting` clients are already queued.
 * - `PoolConfigError`: invalid sizes or options (psycopg's `ValueError`).
 *
 * Connection errors (`ConnectionError`, server errors) pass through as
 * `@pgfx/core`'s `PgError`.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Predicate from "effect/Predicate"

/**
 * No connection could be obtained in time (`couldn't get a connection after
 * 0.10 sec`), or `wait` timed out (`pool initialization incomplete after 1
 * sec`).
 *
 * @example
 * ```ts
 * pool.use(query, { timeout: "2 seconds" }).pipe(
 *   Effect.catchTag("PoolTimeout", () => Effect.fail(new ServiceBusy())) // shed load instead of queueing
 * )
 * ```
 *
 * @since 0.1.0
 */
export class PoolTimeout extends Data.TaggedError("PoolTimeout")<{
  /** psycopg_pool's message. */
  readonly message: string
  /** The pool's name. */
  readonly pool: string
}> {}

/**
 * The pool is not open yet, or already closed (`the pool 'pool-1' is
 * closed`).
 *
 * @since 0.1.0
 */
export class PoolClosed extends Data.TaggedError("PoolClosed")<{
  /** psycopg_pool's message. */
  readonly message: string
  /** The pool's name. */
  readonly pool: string
}> {}

/**
 * A request found no idle connection while `maxWaiting` clients were already
 * queued (`the pool 'pool-1' has already 3 requests waiting`).
 *
 * @since 0.1.0
 */
export class TooManyRequests extends Data.TaggedError("TooManyRequests")<{
  /** psycopg_pool's message. */
  readonly message: string
  /** The pool's name. */
  readonly pool: string
}> {}

/**
 * Invalid pool options: negative sizes, `maxSize < minSize`, `0/0`, a null
 * pool with `minSize > 0`, fewer than one worker.
 *
 * @since 0.1.0
 */
export class PoolConfigError extends Data.TaggedError("PoolConfigError")<{
  /** Which option is wrong and why. */
  readonly message: string
}> {}

/**
 * The errors a pool itself raises when a client asks for a connection.
 *
 * @since 0.1.0
 */
export type PoolError = PoolTimeout | PoolClosed | TooManyRequests

const tags: ReadonlySet<string> = new Set(["PoolTimeout", "PoolClosed", "TooManyRequests"])

/**
 * Whether a value is one of the pool's own errors.
 *
 * @example
 * ```ts
 * Effect.tapError(checkout, (error) => PoolError.isPoolError(error) ? Effect.logWarning(error.message) : Effect.void)
 * ```
 *
 * @since 0.1.0
 */
export const isPoolError = (u: unknown): u is PoolError =>
  Predicate.hasProperty(u, "_tag") && typeof u._tag === "string" && tags.has(u._tag)
