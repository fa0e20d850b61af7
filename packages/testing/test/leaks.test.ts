/**
 * `PgTest.assertNoLeaks` passes after a clean test and fails, naming the culprit, when a test
 * leaves a session busy or `idle in transaction`, a server cursor open, an advisory lock held,
 * or a pool connection checked out — in every isolation mode.
 */
import { assert, describe, layer } from "@effect/vitest"
import { Connection } from "@pgfx/core"
import { ConnectionPool } from "@pgfx/pool"
import { PgTest, TestDatabase } from "@pgfx/testing"
import { Effect, Fiber } from "effect"
import { SqlClient } from "effect/sql"
import { migrations } from "./helpers.ts"

const quick = { within: "300 millis" } as const

/** The leak report of a test that is expected to leak. */
const leaks = Effect.map(Effect.flip(PgTest.assertNoLeaksWith(quick)), (error) => {
  assert.strictEqual(error._tag, "LeakDetected")
  return error._tag === "LeakDetected" ? error : assert.fail("not a leak report")
})

/** Polls `condition` (in real time: `it.effect` runs on a TestClock) until it holds, for up to 5 s. */
const until = <E, R>(condition: Effect.Effect<boolean, E, R>): Effect.Effect<void, E, R> =>
  Effect.gen(function*() {
    for (let i = 0; i < 250; i++) {
      if (yield* condition) return
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 20)))
    }
    assert.fail("condition never held")
  })

/** A second session on the test's database. */
const otherSession = Effect.flatMap(TestDatabase.TestDatabase, (db) => Connection.connect(db.url))

describe("assertNoLeaks, database per file", () => {
  layer(PgTest.layer({ migrations }))("leaks", (it) => {
    it.effect("passes after a test that cleaned up after itself", () =>
      Effect.gen(function*() {
        const conn = yield* Connection.PgConnection
        const pool = yield* ConnectionPool.ConnectionPool
        const sql = yield* SqlClient.SqlClient
        yield* conn.transaction(conn.execute("INSERT INTO users (id, name) VALUES (1, 'a')"))
        yield* pool.use((c) => c.execute("SELECT count(*) FROM users"))
        yield* sql.withTransaction(sql`UPDATE users SET name = 'b'`)
        yield* Effect.scoped(Effect.flatMap(conn.serverCursor("c1", "SELECT * FROM users"), (cursor) => cursor.fetchAll))
        yield* Effect.scoped(Effect.flatMap(otherSession, (other) => other.execute("SELECT 1")))
        yield* PgTest.assertNoLeaks
      }))

    it.effect("fails on a session left idle in transaction", () =>
      Effect.gen(function*() {
        const other = yield* otherSession
        yield* other.execute("BEGIN")
        yield* other.execute("SELECT * FROM users")
        const report = yield* leaks
        assert.deepStrictEqual(report.leaks.sessions.map((s) => [s.pid, s.state]), [[other.info.backendPid, "idle in transaction"]])
        assert.match(report.message, /is idle in transaction; last statement: SELECT \* FROM users/)
        yield* other.execute("ROLLBACK")
        yield* PgTest.assertNoLeaks
      }))

    it.effect("fails on a statement still running", () =>
      Effect.gen(function*() {
        const other = yield* otherSession
        // forkScoped: interrupted (so cancelled on the server) before `other` closes, even on failure
        const sleeper = yield* Effect.forkScoped(other.execute("SELECT pg_sleep(5)"))
        const observer = yield* otherSession
        yield* until(Effect.map(
          observer.execute("SELECT state FROM pg_stat_activity WHERE pid = $1", [other.info.backendPid]),
          (result) => result.rows[0]?.[0] === "active"
        ))
        const report = yield* leaks
        assert.deepStrictEqual(report.leaks.sessions.map((s) => [s.state, s.query]), [["active", "SELECT pg_sleep(5)"]])
        yield* Fiber.interrupt(sleeper) // cancels it on the server
        yield* PgTest.assertNoLeaks
      }))

    it.effect("fails on a server cursor left open", () =>
      Effect.gen(function*() {
        const conn = yield* Connection.PgConnection
        yield* conn.execute("DECLARE forgotten CURSOR WITH HOLD FOR SELECT * FROM users")
        const report = yield* leaks
        assert.deepStrictEqual(report.leaks.cursors.map((c) => [c.name, c.holdable, c.backendPid]), [
          ["forgotten", true, conn.info.backendPid]
        ])
        yield* conn.execute("CLOSE forgotten")
        yield* PgTest.assertNoLeaks
      }))

    it.effect("fails on a cursor left open on an idle pool connection", () =>
      Effect.gen(function*() {
        const pool = yield* ConnectionPool.ConnectionPool
        const pid = yield* pool.use((c) =>
          Effect.as(c.execute("DECLARE pooled CURSOR WITH HOLD FOR SELECT 1"), c.info.backendPid))
        const report = yield* leaks
        assert.deepStrictEqual(report.leaks.cursors.map((c) => [c.name, c.backendPid]), [["pooled", pid]])
        yield* pool.use((c) => c.execute("CLOSE ALL"))
      }))

    it.effect("fails on a pool connection still checked out", () =>
      Effect.gen(function*() {
        const pool = yield* ConnectionPool.ConnectionPool
        yield* pool.connection // held until the test's scope closes
        const report = yield* leaks
        assert.deepStrictEqual(report.leaks.pool, { checkedOut: 1, waiting: 0 })
        assert.match(report.message, /1 connection\(s\) checked out/)
      }))

    it.effect("fails on an advisory lock still held", () =>
      Effect.gen(function*() {
        const conn = yield* Connection.PgConnection
        yield* conn.execute("SELECT pg_advisory_lock(42)")
        const report = yield* leaks
        assert.deepStrictEqual(report.leaks.advisoryLocks, [{ pid: conn.info.backendPid, key: "42" }])
        yield* conn.execute("SELECT pg_advisory_unlock(42)")
        yield* PgTest.assertNoLeaks
      }))
  })
})

describe("assertNoLeaks, transaction per test", () => {
  layer(PgTest.layer({ migrations, isolation: "transaction" }))("leaks", (it) => {
    it.effect("passes: the harness's own transaction is not a leak", () =>
      Effect.gen(function*() {
        const conn = yield* Connection.PgConnection
        const sql = yield* SqlClient.SqlClient
        yield* conn.execute("INSERT INTO users (id, name) VALUES (1, 'a')")
        yield* sql.withTransaction(sql`UPDATE users SET name = 'b'`)
        assert.strictEqual(conn.info.transactionStatus, "INTRANS")
        yield* PgTest.assertNoLeaks
      }).pipe(PgTest.isolate))

    it.effect("fails on a cursor, a pool checkout and a session in transaction", () =>
      Effect.gen(function*() {
        const conn = yield* Connection.PgConnection
        const pool = yield* ConnectionPool.ConnectionPool
        yield* conn.execute("DECLARE inside CURSOR FOR SELECT * FROM users")
        yield* pool.connection
        const other = yield* otherSession
        yield* other.execute("BEGIN")
        const report = yield* leaks
        assert.deepStrictEqual(report.leaks.cursors.map((c) => c.name), ["inside"])
        assert.deepStrictEqual(report.leaks.pool, { checkedOut: 1, waiting: 0 })
        assert.deepStrictEqual(report.leaks.sessions.map((s) => s.pid), [other.info.backendPid])
      }).pipe(PgTest.isolate))
  })
})

describe("assertNoLeaks, database per test", () => {
  layer(PgTest.layer({ migrations, isolation: "test" }))("leaks", (it) => {
    it.effect("looks at the test's own database", () =>
      Effect.gen(function*() {
        const other = yield* otherSession
        yield* other.execute("BEGIN")
        const report = yield* leaks
        assert.strictEqual(report.database, (yield* TestDatabase.TestDatabase).name)
        assert.lengthOf(report.leaks.sessions, 1)
      }).pipe(PgTest.isolate))
  })
})
