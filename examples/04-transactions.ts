/**
 * Example 4 — the seed's transaction snippet, in Effect.
 *
 * ```python
 * with pg_pool.connection() as conn:
 *     conn.autocommit = False
 *     try:
 *         for i in range(n):
 *             conn.execute(sql)
 *     except:
 *         conn.rollback()
 *         raise
 *     else:
 *         conn.commit()
 * ```
 *
 * ```ts
 * pool.use((conn) =>
 *   conn.transaction(
 *     Effect.forEach(statements, (sql) => conn.execute(sql), { discard: true })
 *   ))
 * ```
 *
 * `conn.transaction(effect)` is the whole try/except/else: BEGIN, then COMMIT
 * when the effect succeeds, ROLLBACK when it fails, dies or is interrupted,
 * and the original error re-raised. (The literal form works too: a pool made
 * with `autocommit: false` commits in `pool.use` when the block succeeds and
 * rolls back when it fails, like `with pool.connection()`.)
 *
 * Three runs on a table `ledger`, shown before and after each:
 * 1. n statements that commit together;
 * 2. n statements with a failure in the middle (a duplicate key): nothing of
 *    them stays, the error comes back typed (`UniqueViolation`);
 * 3. a transaction interrupted (a timeout) while a statement runs: the
 *    statement is cancelled on the server and the transaction rolled back;
 *    no session is left `idle in transaction`.
 *
 * Run: `npx tsx examples/04-transactions.ts` (DATABASE_URL, or an embedded server).
 */
import { Console, Effect } from "effect"
import type { Connection } from "@pgfx/core"
import { ConnectionPool } from "@pgfx/pool"
import { describe, withSeedLogging } from "./logging.ts"
import { isMain, runMain } from "./run.ts"

/** `INSERT` statements for the entries `from..to`: the seed's `sql`, n times. */
const inserts = (ids: ReadonlyArray<number>) =>
  ids.map((id) => ({ sql: "INSERT INTO ledger (id, note) VALUES ($1, $2)", params: [id, `entry ${id}`] }))

/** The seed's block: every statement, committed together or not at all. */
const runAll = (conn: Connection.Connection, statements: ReturnType<typeof inserts>) =>
  conn.transaction(
    Effect.forEach(statements, ({ params, sql }) => conn.execute(sql, params), { discard: true })
  )

const ledgerIds = (pool: ConnectionPool.ConnectionPool) =>
  pool.use((conn) => conn.execute("SELECT id FROM ledger ORDER BY id")).pipe(
    Effect.map((result) => result.rows.map((row) => row[0] as number))
  )

const show = (pool: ConnectionPool.ConnectionPool, label: string) =>
  Effect.tap(ledgerIds(pool), (ids) => Console.log(`  ${label.padEnd(7)} ledger = [${ids.join(", ")}]`))

/** Sessions of this database that are `idle in transaction`, and our statements still running. */
const leftovers = (pool: ConnectionPool.ConnectionPool) =>
  pool.use((conn) =>
    conn.execute(
      `SELECT count(*) FILTER (WHERE state LIKE 'idle in transaction%')::int,
              count(*) FILTER (WHERE state = 'active' AND query LIKE '%pg_sleep(30)%' AND pid <> pg_backend_pid())::int
         FROM pg_stat_activity WHERE datname = current_database()`
    )
  ).pipe(Effect.map((result) => ({ idleInTransaction: result.rows[0][0] as number, sleeping: result.rows[0][1] as number })))

export const program = (url: string) =>
  withSeedLogging(Effect.gen(function*() {
    const pool = yield* ConnectionPool.make({ conninfo: url, minSize: 2 })
    yield* pool.use((conn) => conn.execute("CREATE TABLE ledger (id integer PRIMARY KEY, note text NOT NULL)"))

    yield* Console.log("1. five statements, committed together")
    const before1 = yield* show(pool, "before")
    yield* pool.use((conn) => runAll(conn, inserts([1, 2, 3, 4, 5])))
    const after1 = yield* show(pool, "after")

    yield* Console.log("2. five statements, the third fails (duplicate key 3): all rolled back")
    const failure = yield* pool.use((conn) => runAll(conn, inserts([6, 7, 3, 8, 9]))).pipe(Effect.flip)
    yield* Console.log(`  failed with ${describe(failure)}`)
    const after2 = yield* show(pool, "after")

    yield* Console.log("3. interrupted in the middle (a 300 ms timeout during pg_sleep(30)): rolled back")
    const started = Date.now()
    const interrupted = yield* pool.use((conn) =>
      conn.transaction(Effect.gen(function*() {
        yield* Effect.forEach(inserts([10, 11]), ({ params, sql }) => conn.execute(sql, params), { discard: true })
        yield* conn.execute("SELECT pg_sleep(30)")
      }))
    ).pipe(Effect.timeoutOption("300 millis"))
    yield* Console.log(
      `  ${interrupted._tag === "None" ? "timed out" : "finished (unexpected)"} after ${Date.now() - started} ms`
    )
    const after3 = yield* show(pool, "after")
    const server = yield* leftovers(pool)
    yield* Console.log(
      `  server: ${server.idleInTransaction} session(s) idle in transaction, ${server.sleeping} pg_sleep still running`
    )

    return {
      before: before1,
      committed: after1,
      failure,
      afterFailure: after2,
      timedOut: interrupted._tag === "None",
      afterInterruption: after3,
      server
    }
  }).pipe(Effect.scoped))

if (isMain(import.meta.url)) runMain(program)
