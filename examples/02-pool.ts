/**
 * Example 2 — the seed's `ConnectionPool` snippet, in Effect.
 *
 * ```python
 * logging.basicConfig(
 *     level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
 * )
 * logging.getLogger("psycopg.pool").setLevel(logging.INFO)
 *
 * pool = ConnectionPool(min_size=2)
 * pool.wait()
 * logging.info("pool ready")
 *
 * def square(n):
 *     with pool.connection() as conn:
 *         time.sleep(1)
 *         rec = conn.execute("SELECT %s * %s", (n, n)).fetchone()
 *         logging.info(f"The square of {n} is {rec[0]}.")
 *
 * with ThreadPoolExecutor(max_workers=4) as executor:
 *     futures = [executor.submit(square, n) for n in range(4)]
 *     for future in as_completed(futures):
 *         future.result()
 * ```
 *
 * | Python | Effect |
 * |---|---|
 * | `logging.basicConfig(...)`, `psycopg.pool` at INFO | `withSeedLogging` (examples/logging.ts), `checkoutLogLevel: "Info"` |
 * | `ConnectionPool(min_size=2)` | `ConnectionPool.make({ minSize: 2 })` — closed with its scope |
 * | `pool.wait()` | `pool.wait()` |
 * | `with pool.connection() as conn:` | `pool.use((conn) => …)` (or `yield* pool.connection` in a scope) |
 * | `time.sleep(1)` | `Effect.sleep("1 second")` — a fiber sleeps, no thread is blocked |
 * | `ThreadPoolExecutor(max_workers=4)` + `as_completed` | `Effect.forEach(…, { concurrency: 4 })`, each fiber logging as it completes |
 * | `AsyncConnectionPool` | the same pool as a service: `ConnectionPool.layer(options)` and the `ConnectionPool.ConnectionPool` tag |
 *
 * Four squares, two connections, one second each: two rounds, about 2 s.
 *
 * Run: `npx tsx examples/02-pool.ts` (DATABASE_URL, or an embedded server).
 */
import { Console, Effect } from "effect"
import { ConnectionPool } from "@pgfx/pool"
import { withSeedLogging } from "./logging.ts"
import { isMain, runMain } from "./run.ts"

/** The outcome of one run of the four squares. */
export interface Round {
  /** `[n, n * n]` in completion order. */
  readonly squares: ReadonlyArray<readonly [number, number]>
  readonly elapsedMillis: number
  readonly stats: ConnectionPool.PoolStats
}

/** The seed's `square(n)`: hold a connection for a second, then compute. */
const square = (pool: ConnectionPool.ConnectionPool, n: number) =>
  pool.use((conn) =>
    Effect.gen(function*() {
      yield* Effect.sleep("1 second")
      const rec = yield* conn.execute("SELECT $1 * $2", [n, n])
      const value = rec.rows[0][0] as number
      yield* Effect.logInfo(`The square of ${n} is ${value}.`)
      return [n, value] as const
    })
  )

/** Four concurrent squares (`max_workers=4`), collected as they complete. */
export const fourSquares = (pool: ConnectionPool.ConnectionPool): Effect.Effect<Round, ConnectionPool.CheckoutError> =>
  Effect.gen(function*() {
    const started = Date.now()
    const squares: Array<readonly [number, number]> = []
    yield* Effect.forEach(
      [0, 1, 2, 3],
      (n) => Effect.tap(square(pool, n), (done) => Effect.sync(() => squares.push(done))),
      { concurrency: 4, discard: true }
    )
    const elapsedMillis = Date.now() - started
    yield* Console.log(`4 squares in ${(elapsedMillis / 1000).toFixed(2)} s with ${pool.maxSize} connections`)
    return { squares, elapsedMillis, stats: yield* pool.stats }
  })

export const program = (url: string) =>
  withSeedLogging(Effect.gen(function*() {
    // psycopg_pool's ConnectionPool: a scoped resource, closed when the scope ends.
    const direct = yield* Effect.scoped(Effect.gen(function*() {
      const pool = yield* ConnectionPool.make({ conninfo: url, minSize: 2, checkoutLogLevel: "Info" })
      yield* pool.wait()
      yield* Effect.logInfo("pool ready")
      return yield* fourSquares(pool)
    }))

    // The same through the pool's layer (the counterpart of AsyncConnectionPool
    // in an application): code asks for the ConnectionPool service, the layer
    // opens the pool before and closes it after.
    yield* Console.log("-- the same through ConnectionPool.layer")
    const layered = yield* Effect.gen(function*() {
      const pool = yield* ConnectionPool.ConnectionPool
      yield* pool.wait()
      yield* Effect.logInfo("pool ready")
      return yield* fourSquares(pool)
    }).pipe(Effect.provide(ConnectionPool.layer({ conninfo: url, minSize: 2, checkoutLogLevel: "Info" })))

    return { direct, layered }
  }))

if (isMain(import.meta.url)) runMain(program)
