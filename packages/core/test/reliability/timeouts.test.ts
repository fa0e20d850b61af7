/**
 * Server-side timeouts and client interruption (reliability.md F13, F14, F15), on every target.
 */
import { expect, layer } from "@effect/vitest"
import { Cause, Effect, Exit, Fiber } from "effect"
import { SqlClient } from "effect/sql"
import { Connection, PgError, PgSql } from "../../src/index.ts"
import { TestDatabase } from "../../../../test/harness.ts"
import { admin, appName, eventually, failureOf, interruptedOnly, leakAudit, withApp } from "./support.ts"

layer(TestDatabase.layer, { excludeTestServices: true })("server timeouts and interruption (F13, F14, F15)", (it) => {
  it.effect("F13: statement_timeout → typed QueryCanceled (57014); the connection stays usable", () =>
    Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const app = appName("f13")
      yield* Effect.gen(function*() {
        const conn = yield* Connection.connect(withApp(url, app))
        yield* conn.execute("SET statement_timeout = '50ms'")
        const started = performance.now()
        const error = yield* Effect.flip(conn.execute("SELECT pg_sleep(1)"))
        expect(performance.now() - started).toBeLessThan(800)
        expect(error._tag).toBe("QueryCanceled")
        if (error._tag === "QueryCanceled") {
          expect(error.sqlState).toBe("57014")
          expect(error.errorClass).toBe("OperationalError")
        }
        // the same through the extended protocol
        const extended = yield* Effect.flip(conn.execute("SELECT pg_sleep($1)", [1]))
        expect(extended._tag).toBe("QueryCanceled")
        expect(conn.closed).toBe(false)
        expect(conn.info.transactionStatus).toBe("IDLE")
        yield* conn.execute("RESET statement_timeout")
        expect((yield* conn.execute("SELECT $1::int", [7])).rows).toEqual([[7]])
      }).pipe(Effect.scoped)
      yield* leakAudit(url, app)
    }))

  it.effect("F13: SET LOCAL statement_timeout inside a transaction → the block fails with QueryCanceled and rolls back", () =>
    Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const app = appName("f13tx")
      const watcher = yield* admin(url)
      const table = `f13_${app.slice(-6)}`
      yield* watcher.conn.execute(`CREATE TABLE ${table} (x int)`)
      yield* Effect.gen(function*() {
        const conn = yield* Connection.connect(withApp(url, app))
        const error = yield* Effect.flip(conn.transaction(Effect.gen(function*() {
          yield* conn.execute(`INSERT INTO ${table} VALUES ($1)`, [1])
          yield* conn.execute("SET LOCAL statement_timeout = '50ms'")
          yield* conn.execute("SELECT pg_sleep(1)")
          yield* conn.execute(`INSERT INTO ${table} VALUES ($1)`, [2])
        })))
        expect(error._tag).toBe("QueryCanceled")
        expect(conn.info.transactionStatus).toBe("IDLE")
        // SET LOCAL ended with the transaction
        expect((yield* conn.execute("SHOW statement_timeout")).rows).toEqual([["0"]])
        expect((yield* conn.execute("SELECT pg_sleep(0.1)")).rowCount).toBe(1)
      }).pipe(Effect.scoped)
      expect((yield* watcher.conn.execute(`SELECT count(*)::int FROM ${table}`)).rows).toEqual([[0]])
      yield* leakAudit(url, app)
    }))

  it.effect("F14: idle_in_transaction_session_timeout → typed 25P03 ConnectionError; session gone; nothing runs elsewhere", () =>
    Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const app = appName("f14")
      const watcher = yield* admin(url)
      const table = `f14_${app.slice(-6)}`
      yield* watcher.conn.execute(`CREATE TABLE ${table} (x int)`)
      let pid = 0
      const exit = yield* Effect.gen(function*() {
        const conn = yield* Connection.connect(withApp(url, app))
        pid = conn.info.backendPid
        const exit = yield* Effect.exit(conn.transaction(Effect.gen(function*() {
          yield* conn.execute(`INSERT INTO ${table} VALUES ($1)`, [1])
          yield* conn.execute("SET idle_in_transaction_session_timeout = 100")
          yield* Effect.sleep("1 second")
          yield* conn.execute(`INSERT INTO ${table} VALUES ($1)`, [2])
        })))
        expect(conn.closed).toBe(true)
        expect(conn.broken).toBe(true)
        return exit
      }).pipe(Effect.scoped)
      const error = failureOf(exit)
      expect(error._tag).toBe("ConnectionError")
      if (error._tag === "ConnectionError") {
        expect(error.sqlState).toBe("25P03")
        expect(error.reason).toBe("Terminated")
      }
      expect(PgError.isFatalSqlState("25P03")).toBe(true)
      expect(yield* watcher.stateOf(pid)).toBeUndefined()
      // neither statement of the transaction was committed nor replayed anywhere
      expect((yield* watcher.conn.execute(`SELECT count(*)::int FROM ${table}`)).rows).toEqual([[0]])
      yield* leakAudit(url, app)
    }))

  it.effect("F15: interrupting pg_sleep(10) once it is active → backend idle within 1 s; the error is an interruption", () =>
    Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const app = appName("f15")
      const watcher = yield* admin(url)
      yield* Effect.gen(function*() {
        const conn = yield* Connection.connect(withApp(url, app))
        const pid = conn.info.backendPid
        let caught = false
        const fiber = yield* Effect.forkChild(
          conn.execute("SELECT pg_sleep(10)").pipe(
            // a QueryCanceled must not leak into the user's catchTag
            Effect.catchTag("QueryCanceled", () => Effect.sync(() => (caught = true)))
          )
        )
        yield* watcher.waitForState(pid, "active")
        const interruptedAt = performance.now()
        yield* Fiber.interrupt(fiber)
        const exit = yield* Fiber.await(fiber)
        expect(interruptedOnly(exit)).toBe(true)
        expect(caught).toBe(false)
        yield* watcher.waitForState(pid, "idle", 1000)
        expect(performance.now() - interruptedAt).toBeLessThan(1000)
        // the session was drained, not dropped: it is reused as is
        expect(conn.closed).toBe(false)
        expect(conn.info.transactionStatus).toBe("IDLE")
        expect((yield* conn.execute("SELECT pg_backend_pid()")).rows).toEqual([[pid]])
      }).pipe(Effect.scoped)
      yield* leakAudit(url, app)
    }))

  it.effect("F15: the same through effect's SqlClient (PgSql): an interruption, never a SqlError, and the query stops", () =>
    Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const app = appName("f15sql")
      const watcher = yield* admin(url)
      yield* Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        let caught = false
        const fiber = yield* Effect.forkChild(
          sql`SELECT pg_sleep(10)`.pipe(Effect.catchTag("SqlError", () => Effect.sync(() => (caught = true))))
        )
        yield* eventually(
          Effect.map(watcher.sessions(app), (rows) => rows.some((row) => row[1] === "active")),
          "the statement to run"
        )
        const [pid] = (yield* watcher.sessions(app)).find((row) => row[1] === "active")! as [number]
        const interruptedAt = performance.now()
        yield* Fiber.interrupt(fiber)
        expect(interruptedOnly(yield* Fiber.await(fiber))).toBe(true)
        expect(caught).toBe(false)
        yield* watcher.waitForState(pid, "idle", 1000)
        expect(performance.now() - interruptedAt).toBeLessThan(1000)
        expect(yield* sql<{ one: number }>`SELECT 1 AS one`).toEqual([{ one: 1 }])
      }).pipe(Effect.provide(PgSql.layer({ settings: withApp(url, app) })))
      yield* leakAudit(url, app)
    }))

  it.effect("F15: Effect.timeout on a statement inside a transaction: cancelled, rolled back, session reusable", () =>
    Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const app = appName("f15tx")
      const watcher = yield* admin(url)
      const table = `f15_${app.slice(-6)}`
      yield* watcher.conn.execute(`CREATE TABLE ${table} (x int)`)
      yield* Effect.gen(function*() {
        const conn = yield* Connection.connect(withApp(url, app))
        const started = performance.now()
        const exit = yield* conn.transaction(Effect.gen(function*() {
          yield* conn.execute(`INSERT INTO ${table} VALUES ($1)`, [1])
          yield* conn.execute("SELECT pg_sleep(10)")
        })).pipe(Effect.timeout("200 millis"), Effect.exit)
        expect(performance.now() - started).toBeLessThan(1500)
        expect(Exit.isFailure(exit)).toBe(true)
        if (Exit.isFailure(exit)) expect(Cause.pretty(exit.cause)).toMatch(/Timeout/i)
        expect(conn.closed).toBe(false)
        expect(conn.info.transactionStatus).toBe("IDLE")
        yield* eventually(Effect.map(watcher.stateOf(conn.info.backendPid), (state) => state === "idle"), "idle")
      }).pipe(Effect.scoped)
      expect((yield* watcher.conn.execute(`SELECT count(*)::int FROM ${table}`)).rows).toEqual([[0]])
      yield* leakAudit(url, app)
    }))
})
