/**
 * `pool.execute` / `pool.share`: statements of many clients pipelined on
 * pooled connections without an exclusive checkout. Asserted on the
 * server (which backends ran what) and on the pool's own accounting; every
 * test ends with the pool's leak audit.
 */
import { expect, layer } from "@effect/vitest"
import { PgError, PgSql } from "@pgfx/core"
import { Cause, Effect, Exit, Fiber } from "effect"
import { ConnectionPool, FanOut } from "../src/index.ts"
import { TestDatabase } from "../../../test/harness.ts"
import { auditPool, failureOf, quiet, scenario, withApp } from "./helpers.ts"

const makePool = (app: string, options: Partial<ConnectionPool.Options> = {}) =>
  Effect.flatMap(TestDatabase.url, (url) =>
    Effect.tap(
      ConnectionPool.make({ conninfo: withApp(url, app), minSize: 4, maxSize: 4, ...options }),
      (pool) => pool.wait("10 seconds")
    ))

layer(TestDatabase.layer, { excludeTestServices: true })("pool.execute", (it) => {
  it.effect("runs statements of many fibers with their own results, pipelined on few connections", () =>
    quiet(scenario("execute pipelined", (app) =>
      Effect.gen(function*() {
        const pool = yield* makePool(app, { maxPipeline: 8 })
        const results = yield* Effect.forEach(
          Array.from({ length: 200 }, (_, i) => i),
          (i) => pool.execute("SELECT $1::int * 2, pg_backend_pid()", [i]),
          { concurrency: 32 }
        )
        expect(results.map((r) => r.rows[0][0])).toEqual(Array.from({ length: 200 }, (_, i) => i * 2))
        const backends = new Set(results.map((r) => r.rows[0][1]))
        // 32 in flight, 8 deep: no more than 4 connections, and at least one shared by many
        expect(backends.size).toBeLessThanOrEqual(4)
        const stats = yield* pool.stats
        expect(stats.pool_size).toBe(4)
        yield* auditPool(pool, yield* TestDatabase.url, app)
      }))))

  it.effect("a failing statement fails only its own caller", () =>
    quiet(scenario("execute failure", (app) =>
      Effect.gen(function*() {
        const pool = yield* makePool(app)
        const exits = yield* Effect.forEach(
          [1, 0, 2, 0, 3, 4, 0, 6],
          (n) => Effect.exit(pool.execute("SELECT 12 / $1::int", [n])),
          { concurrency: "unbounded" }
        )
        expect(exits.map((exit) => Exit.isSuccess(exit) ? exit.value.rows[0][0] : "failed")).toEqual([
          12,
          "failed",
          6,
          "failed",
          4,
          3,
          "failed",
          2
        ])
        expect(failureOf(exits[1])).toBeInstanceOf(PgError.DivisionByZero)
        yield* auditPool(pool, yield* TestDatabase.url, app)
      }))))

  it.effect("refuses transaction control, even after comments, and a script of several statements fails typed", () =>
    quiet(scenario("execute refusals", (app) =>
      Effect.gen(function*() {
        const pool = yield* makePool(app)
        for (const sql of ["BEGIN", "  commit", "/* note */ START TRANSACTION", "-- x\nSAVEPOINT a", "rollback"]) {
          const exit = yield* Effect.exit(pool.execute(sql))
          expect(failureOf(exit), sql).toBeInstanceOf(PgError.InterfaceError)
        }
        const script = yield* Effect.exit(pool.execute("SELECT 1; SELECT 2"))
        expect(Exit.isFailure(script)).toBe(true)
        // the same statements work where they belong
        const block = yield* pool.use((conn) => conn.transaction(conn.execute("SELECT 1; SELECT 2")))
        expect(block.results).toHaveLength(2)
        yield* auditPool(pool, yield* TestDatabase.url, app)
      }))))

  it.effect("an exclusive checkout and a transaction run beside shared statements, nobody's statement inside them", () =>
    quiet(scenario("execute beside checkouts", (app) =>
      Effect.gen(function*() {
        const url = yield* TestDatabase.url
        const pool = yield* makePool(app, { minSize: 2, maxSize: 2, maxPipeline: 64 })
        yield* pool.use((conn) => conn.execute("CREATE TABLE IF NOT EXISTS shared_side (who text)"))
        const shared = yield* Effect.forkChild(Effect.forEach(
          Array.from({ length: 100 }, (_, i) => i),
          (i) => pool.execute("INSERT INTO shared_side VALUES ($1)", [`shared ${i}`]),
          { concurrency: 16 }
        ))
        const rolledBack = yield* Effect.exit(pool.use((conn) =>
          conn.transaction(Effect.andThen(
            conn.execute("INSERT INTO shared_side VALUES ($1)", ["in the block"]),
            Effect.fail("roll back" as const)
          ))
        ))
        yield* Fiber.join(shared)
        expect(Exit.isFailure(rolledBack)).toBe(true)
        const rows = yield* pool.execute("SELECT who FROM shared_side ORDER BY who")
        expect(rows.rows).toHaveLength(100)
        expect(rows.rows.some((row) => row[0] === "in the block")).toBe(false)
        yield* pool.use((conn) => conn.execute("DROP TABLE shared_side"))
        yield* auditPool(pool, url, app)
      }))))

  it.effect("interrupting shared statements at random never fails another caller; the pool settles with no leak", () =>
    quiet(scenario("execute interruptions", (app) =>
      Effect.gen(function*() {
        const pool = yield* makePool(app, { minSize: 3, maxSize: 3 })
        let seed = 1234
        const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648
        const plans = Array.from({ length: 150 }, (_, i) => ({
          i,
          sleep: next() < 0.2 ? 0.02 + next() * 0.15 : 0,
          interruptAfter: next() < 0.3 ? Math.floor(next() * 80) : undefined
        }))
        const outcomes = yield* Effect.forEach(plans, (plan) =>
          Effect.gen(function*() {
            const fiber = yield* Effect.forkChild(pool.execute("SELECT $1::int, pg_sleep($2::float8)", [plan.i, plan.sleep]))
            if (plan.interruptAfter !== undefined) {
              yield* Effect.sleep(plan.interruptAfter)
              yield* Fiber.interrupt(fiber)
            }
            return { plan, exit: yield* Fiber.await(fiber) }
          }), { concurrency: 40 })
        for (const { exit, plan } of outcomes) {
          if (Exit.isSuccess(exit)) expect(exit.value.rows[0][0]).toBe(plan.i)
          else {
            expect(Cause.hasInterruptsOnly(exit.cause), `caller ${plan.i}: ${Cause.pretty(exit.cause)}`).toBe(true)
            expect(plan.interruptAfter).toBeDefined()
          }
        }
        yield* auditPool(pool, yield* TestDatabase.url, app)
      }))), { timeout: 60_000 })

  it.effect("FanOut over pool.execute keeps its deadline and cancels the stragglers on the server", () =>
    quiet(scenario("execute fanout deadline", (app) =>
      Effect.gen(function*() {
        const url = yield* TestDatabase.url
        const pool = yield* makePool(app, { minSize: 2, maxSize: 2 })
        const statements = [...Array.from({ length: 50 }, () => "SELECT 1"), "SELECT pg_sleep(30)", "SELECT pg_sleep(30)"]
        const started = Date.now()
        const result = yield* FanOut.run(statements, (sql) => pool.execute(sql), { concurrency: 16, timeout: "1 second" })
        expect(Date.now() - started).toBeLessThan(1500)
        expect(result.completed).toHaveLength(50)
        expect(result.timedOut).toEqual(["SELECT pg_sleep(30)", "SELECT pg_sleep(30)"])
        yield* auditPool(pool, url, app)
      }))))

  it.effect("with autocommit off, execute is use + execute and commits", () =>
    quiet(scenario("execute autocommit off", (app) =>
      Effect.gen(function*() {
        const pool = yield* makePool(app, { minSize: 1, maxSize: 1, autocommit: false })
        yield* pool.execute("CREATE TEMP TABLE IF NOT EXISTS ac (x int)")
        yield* pool.execute("INSERT INTO ac VALUES ($1)", [1])
        const rows = yield* pool.execute("SELECT count(*)::int FROM ac")
        expect(rows.rows[0][0]).toBe(1)
        // committed: nothing left idle in transaction (the scenario's audit)
        const stats = yield* pool.stats
        expect(stats.pool_available).toBe(1)
      }))))

  it.effect("PgSql over a pool: statements shared, transactions exclusive and rolled back on failure", () =>
    quiet(scenario("pgsql over pool", (app) =>
      Effect.gen(function*() {
        const url = yield* TestDatabase.url
        const pool = yield* makePool(app, { minSize: 2, maxSize: 2 })
        const sql = yield* PgSql.make({ pool })
        yield* sql`CREATE TABLE IF NOT EXISTS via_sql (id int)`
        const rows = yield* Effect.forEach(
          Array.from({ length: 50 }, (_, i) => i),
          (i) => sql<{ readonly n: number }>`SELECT ${i}::int AS n`,
          { concurrency: 20 }
        )
        expect(rows.map((r) => r[0].n)).toEqual(Array.from({ length: 50 }, (_, i) => i))
        const failed = yield* Effect.exit(sql.withTransaction(Effect.andThen(
          sql`INSERT INTO via_sql VALUES (1)`,
          Effect.fail("no" as const)
        )))
        expect(Exit.isFailure(failed)).toBe(true)
        const count = yield* sql<{ readonly c: number }>`SELECT count(*)::int AS c FROM via_sql`
        expect(count[0].c).toBe(0)
        const error = yield* Effect.flip(sql`SELECT 1 / 0`)
        expect(error._tag).toBe("SqlError")
        yield* sql`DROP TABLE via_sql`
        yield* auditPool(pool, url, app)
      }))))
})
