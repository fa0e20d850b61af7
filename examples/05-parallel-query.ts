/**
 * Example 5 — the seed's `my_pool` (threads + a connection pool), done right.
 *
 * ```python
 * class my_pool:
 *     def __init__(self, ...):
 *         self.pool = ConnectionPool(...)
 *         con_thread = threading.Thread(target=self._warm_up)
 *         con_thread.setDaemon(True)
 *         con_thread.start()
 *
 *     def _warm_up(self):
 *         while True:
 *             with self.pool.connection() as conn:
 *                 conn.autocommit = True
 *                 try:
 *                     with conn.cursor() as cursor:
 *                         cursor.execute("SELECT 1")
 *                 except:
 *                     logger.error(f"PostgresConnection _warm_up citus failed by: {error}")
 *             time.sleep(1)
 *
 *     def query(self, sql, row_to_dict=False):
 *         res = []
 *         with self.pool.connection() as conn:
 *             conn.autocommit = True
 *             try:
 *                 with conn.cursor(row_factory=dict_row) if row_to_dict else conn.cursor() as cursor:
 *                     cursor.execute(sql)
 *                     res = cursor.fetchall()
 *             except:
 *                 logger.error(f"PostgresConnection query citus with sql: {sql} failed by: {error}")
 *         return res
 *
 * EXECUTOR = ThreadPoolExecutor(max_workers=32)
 * pool = my_pool(**config)
 *
 * def parallel_query(sqls):
 *     futures = [EXECUTOR.submit(pool.query, sql) for sql in sqls]
 *     done, _ = wait(futures, return_when=ALL_COMPLETED, timeout=3)
 *     res = []
 *     for future in done:
 *         res = future.result()
 *         if res:
 *             res.append(result)
 *     return res
 * ```
 *
 * What "done right" means here:
 * - The warm-up is a fiber owned by the service's scope
 *   (`Effect.forkScoped`): it starts with the pool, stops with it, and
 *   logs each failure (`logger.error`) without ever dying. No daemon
 *   thread, nothing left running at exit. (The pool also has a built-in
 *   `healthCheck: { interval: "1 second" }` option that pings idle
 *   connections and replaces dead ones.)
 * - `query(sql, { rowToDict })` returns rows as tuples or, with `rowToDict`,
 *   as records (`RowFactory.record`, psycopg's `dict_row`). A failure is
 *   logged like the seed does, and then returned as a typed error instead of
 *   being turned into an empty result.
 * - `parallelQuery(sqls)` runs on `FanOut.run`: at most 32 queries at once
 *   (`max_workers=32`) and one 3 s deadline. It returns every finished
 *   result (the seed's loop overwrites `res` and appends to the wrong list,
 *   so it returns one result at best), the failures, and the queries that
 *   did not finish in time — which are interrupted at the deadline, their
 *   cancel requests sent at once, so the server stops them milliseconds
 *   later (`wait(timeout=3)` leaves the threads running); their connections
 *   go back to the pool once the server has confirmed.
 *
 * The run: 1,000 point queries sequentially, then through `parallelQuery`;
 * the time of each and the ratio (the seed reports 10× against its Citus
 * cluster, where every query pays a network round trip). Then the same
 * queries plus two that never finish in time, to show what `parallelQuery`
 * says about them.
 *
 * Run: `npx tsx examples/05-parallel-query.ts` (DATABASE_URL, or an embedded server).
 */
import { Console, Context, Duration, Effect, Layer, Schedule } from "effect"
import type { Scope } from "effect"
import { type PgConfig, type PgError, RowFactory } from "@pgfx/core"
import { ConnectionPool, FanOut } from "@pgfx/pool"
import { describe, withSeedLogging } from "./logging.ts"
import { isMain, runMain } from "./run.ts"

/** A statement: SQL text, or SQL with bind values (`$1`, `$2`, …). */
export type Sql = string | { readonly sql: string; readonly params: ReadonlyArray<unknown> }

/** What a query can fail with: the pool's errors and the server's. */
export type QueryError = ConnectionPool.CheckoutError | PgError.PgError

/** Options of `MyPool.make`. */
export interface MyPoolOptions {
  readonly conninfo: string
  /** Default 32: one connection per fan-out worker, opened up front. */
  readonly minSize?: number
  /** Default 32. */
  readonly maxSize?: number
  /** The warm-up statement, default `SELECT 1`, and its period, default 1 second. */
  readonly warmUp?: { readonly query?: string; readonly interval?: Duration.Input }
}

/** The seed's `my_pool` as a service. */
export interface MyPoolService {
  readonly pool: ConnectionPool.ConnectionPool
  /** Rows as tuples, or as records with `rowToDict: true`. */
  readonly query: {
    (sql: Sql, options?: { readonly rowToDict?: false }): Effect.Effect<ReadonlyArray<RowFactory.Tuple>, QueryError>
    (sql: Sql, options: { readonly rowToDict: true }): Effect.Effect<ReadonlyArray<RowFactory.Record>, QueryError>
  }
  /** Every finished result, the failures and what did not finish: at most 32 at once, one 3 s deadline. */
  readonly parallelQuery: (
    sqls: ReadonlyArray<Sql>,
    options?: { readonly concurrency?: number; readonly timeout?: Duration.Input }
  ) => Effect.Effect<FanOut.Result<Sql, ReadonlyArray<RowFactory.Tuple>, QueryError>>
  /** The same operations, each query also holding its connection for `latency` (a simulated network hop). */
  readonly withLatency: (latency: Duration.Input) => Pick<MyPoolService, "query" | "parallelQuery">
  /** Warm-up runs so far. */
  readonly warmUps: Effect.Effect<{ readonly ok: number; readonly failed: number }>
}

/**
 * `query` and `parallelQuery` on `pool`; with `latency`, each query holds its
 * connection that much longer, as if the server were a network hop away.
 */
const operations = (
  pool: ConnectionPool.ConnectionPool,
  log: (message: string) => Effect.Effect<void>,
  latency: Duration.Input | undefined
): Pick<MyPoolService, "query" | "parallelQuery"> => {
  const query = (sql: Sql, options?: { readonly rowToDict?: boolean }) =>
    pool.use((conn) => {
      const rowFactory: RowFactory.RowFactory<unknown> = options?.rowToDict ? RowFactory.record : RowFactory.tuple
      const execute = typeof sql === "string"
        ? conn.execute(sql, undefined, { rowFactory })
        : conn.execute(sql.sql, sql.params, { rowFactory })
      return latency === undefined ? execute : Effect.andThen(Effect.sleep(latency), execute)
    }).pipe(
      Effect.map((result) => result.rows),
      Effect.tapError((error) => log(`PostgresConnection query with sql: ${text(sql)} failed by: ${describe(error)}`))
    )
  return {
    query: query as MyPoolService["query"],
    parallelQuery: (sqls, options) =>
      FanOut.run(sqls, (sql) => query(sql) as Effect.Effect<ReadonlyArray<RowFactory.Tuple>, QueryError>, {
        concurrency: options?.concurrency ?? 32,
        timeout: options?.timeout ?? "3 seconds"
      })
  }
}

const text = (sql: Sql): string => (typeof sql === "string" ? sql : `${sql.sql} ${JSON.stringify(sql.params)}`)

/** The seed's `my_pool`: a pool, its warm-up fiber, `query` and `parallelQuery`. */
export class MyPool extends Context.Service<MyPool, MyPoolService>()("examples/MyPool") {
  static readonly make = (
    options: MyPoolOptions
  ): Effect.Effect<MyPoolService, ConnectionPool.PoolConfigError | PgConfig.PgConfigError, Scope.Scope> =>
    Effect.gen(function*() {
      const pool = yield* ConnectionPool.make({
        conninfo: options.conninfo,
        minSize: options.minSize ?? 32,
        maxSize: options.maxSize ?? 32,
        name: "my_pool"
      })
      const log = (message: string) => Effect.logError(message).pipe(Effect.annotateLogs({ logger: "my_pool" }))

      // _warm_up: a fiber of this scope, every second, failures logged.
      const counts = { ok: 0, failed: 0 }
      const warmUpQuery = options.warmUp?.query ?? "SELECT 1"
      const warmUp = pool.use((conn) => conn.execute(warmUpQuery)).pipe(
        Effect.timeout("5 seconds"),
        Effect.matchEffect({
          onSuccess: () => Effect.sync(() => void counts.ok++),
          onFailure: (error) =>
            Effect.andThen(
              Effect.sync(() => void counts.failed++),
              log(`PostgresConnection _warm_up failed by: ${describe(error)}`)
            )
        })
      )
      yield* Effect.forkScoped(Effect.repeat(warmUp, Schedule.spaced(options.warmUp?.interval ?? "1 second")))

      const { parallelQuery, query } = operations(pool, log, undefined)
      return {
        pool,
        query,
        parallelQuery,
        withLatency: (latency) => operations(pool, log, latency),
        warmUps: Effect.sync(() => ({ ...counts }))
      }
    })

  static readonly layer = (options: MyPoolOptions) => Layer.effect(MyPool, MyPool.make(options))
}

const seconds = (millis: number) => `${(millis / 1000).toFixed(2)} s`

const timed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.suspend(() => {
    const started = performance.now()
    return Effect.map(effect, (value) => [value, performance.now() - started] as const)
  })

/** 1,000 point queries one after the other, then through `parallelQuery`; both timed. */
const compare = (my: Pick<MyPoolService, "query" | "parallelQuery">, sqls: ReadonlyArray<Sql>) =>
  Effect.gen(function*() {
    const [sequential, sequentialMillis] = yield* timed(Effect.forEach(sqls, (sql) => my.query(sql)))
    yield* Console.log(`sequential:    ${sequential.length} queries in ${seconds(sequentialMillis)}`)
    const [fanned, fannedMillis] = yield* timed(my.parallelQuery(sqls))
    yield* Console.log(
      `parallelQuery: ${fanned.completed.length} completed, ${fanned.failed.length} failed, ${fanned.timedOut.length} not finished, in ${
        seconds(fannedMillis)
      } (concurrency 32)`
    )
    const ratio = sequentialMillis / fannedMillis
    yield* Console.log(`fan-out vs sequential: ${ratio.toFixed(1)}x faster`)
    return { sequential, sequentialMillis, fanned, fannedMillis, ratio }
  })

// The seed logs with loguru; the pool's INFO lines are left out, as with
// logging.getLogger("psycopg.pool").setLevel(logging.WARNING).
export const program = (url: string) =>
  withSeedLogging(Effect.gen(function*() {
    const my = yield* MyPool
    yield* my.pool.wait()
    yield* my.query(
      `CREATE TABLE points AS SELECT id, 'point ' || id AS name, id * 0.5 AS value FROM generate_series(1, 100000) id;
       ALTER TABLE points ADD PRIMARY KEY (id)`
    )

    // query(sql, row_to_dict=True)
    const one = yield* my.query({ sql: "SELECT * FROM points WHERE id = $1", params: [42] }, { rowToDict: true })
    yield* Console.log("query(…, { rowToDict: true }):", one)

    // 1,000 point queries: one after the other, then fanned out.
    const sqls: Array<Sql> = Array.from({ length: 1000 }, (_, i) => ({
      sql: "SELECT id, name, value FROM points WHERE id = $1",
      params: [1 + ((i * 7919) % 100000)]
    }))
    // Warm up the JIT and every connection first (not timed).
    yield* Effect.forEach(sqls.slice(0, 200), (sql) => my.query(sql), { discard: true })
    yield* my.parallelQuery(sqls.slice(0, 200))

    const local = yield* compare(my, sqls)
    yield* Console.log("-- the same with 1 ms of simulated network latency per query (a database a network hop away)")
    const remote = yield* compare(my.withLatency("1 millis"), sqls)

    // Two queries that cannot finish in 3 s: the answer says so, and they are cancelled on the server.
    const stragglers: Array<Sql> = ["SELECT pg_sleep(30) AS straggler_1", "SELECT pg_sleep(30) AS straggler_2"]
    const [late, lateMillis] = yield* timed(my.parallelQuery([...sqls.slice(0, 100), ...stragglers]))
    yield* Console.log(
      `parallelQuery with stragglers: ${late.completed.length} completed, ${late.failed.length} failed in ${seconds(lateMillis)}; not finished:`
    )
    for (const sql of late.timedOut) yield* Console.log(`  ${text(sql)}`)
    // The cancels left at the deadline; give the server a moment to act on them.
    const running = yield* my.query(
      "SELECT count(*)::int FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'SELECT pg_sleep(30) AS straggler%'"
    ).pipe(
      Effect.repeat({ schedule: Schedule.spaced("20 millis"), until: (rows) => rows[0][0] === 0, times: 100 })
    )
    yield* Console.log(`  still running on the server: ${running[0][0]}`)
    const warmUps = yield* my.warmUps
    yield* Console.log(`warm-up: ${warmUps.ok} ok, ${warmUps.failed} failed`)

    return {
      one,
      local,
      remote,
      late: { result: late, millis: lateMillis },
      stillRunning: running[0][0] as number,
      warmUps
    }
  }).pipe(Effect.provide(MyPool.layer({ conninfo: url }))), { "pgfx.pool": "Warn" })

if (isMain(import.meta.url)) runMain(program)
