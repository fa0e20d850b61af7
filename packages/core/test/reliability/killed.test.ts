/**
 * Backends killed under a connection (reliability.md F2, F3, F27): mid-query, inside a
 * transaction, under a LISTEN. Runs on every target: `pg_terminate_backend` only touches the
 * test's own sessions.
 */
import { expect, layer } from "@effect/vitest"
import { Effect, Fiber, Schedule, Stream } from "effect"
import { Connection, PgError } from "../../src/index.ts"
import { TestDatabase } from "../../../../test/harness.ts"
import * as FaultProxy from "../../../../test/faults/proxy.ts"
import { admin, appName, captureLogs, eventually, failureOf, leakAudit, withApp } from "./support.ts"

const expectTerminated = (error: unknown, sqlState = "57P01") => {
  expect(PgError.isPgError(error)).toBe(true)
  const typed = error as PgError.PgError
  expect(typed._tag).toBe("ConnectionError")
  if (typed._tag === "ConnectionError") {
    expect(typed.sqlState).toBe(sqlState)
    expect(typed.reason).toBe("Terminated")
  }
}

layer(TestDatabase.layer, { excludeTestServices: true })("backend killed (F2, F3, F27)", (it) => {
  it.effect("F2: killed mid-query → typed 57P01 within 200 ms of the kill; session invalidated; scope closes at once", () =>
    Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const app = appName("f2")
      const watcher = yield* admin(url)
      let closeMs = 0
      yield* Effect.gen(function*() {
        const conn = yield* Connection.connect(withApp(url, app))
        const pid = conn.info.backendPid
        let endedAt = 0
        const fiber = yield* Effect.forkChild(
          conn.execute("SELECT pg_sleep(5)").pipe(
            Effect.onExit(() => Effect.sync(() => (endedAt = performance.now()))),
            Effect.exit
          )
        )
        yield* watcher.waitForState(pid, "active")
        const killedAt = performance.now()
        expect(yield* watcher.terminate(pid)).toBe(true)
        const exit = yield* Fiber.join(fiber)
        expectTerminated(failureOf(exit))
        expect(endedAt - killedAt).toBeLessThan(200)
        expect(conn.closed).toBe(true)
        expect(conn.broken).toBe(true)
        expect(conn.info.transactionStatus).toBe("UNKNOWN")
        // never reused: the next statement fails with the same typed error, without I/O
        expectTerminated(yield* Effect.flip(conn.execute("SELECT 1")))
        closeMs = performance.now()
      }).pipe(Effect.scoped)
      expect(performance.now() - closeMs).toBeLessThan(200)
      yield* leakAudit(url, app)
    }))

  it.effect("F2: killed under a stream, a pipeline and a transaction block → the same typed 57P01, promptly", () =>
    Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const app = appName("f2b")
      const watcher = yield* admin(url)
      const runs: ReadonlyArray<readonly [string, (conn: Connection.Connection) => Effect.Effect<unknown, unknown>]> = [
        ["stream", (conn) =>
          conn.stream("SELECT g, pg_sleep(0.01) FROM generate_series(1, 100000) g", [], { batchSize: 10 }).pipe(
            Stream.runDrain
          )],
        ["pipeline", (conn) =>
          Effect.flatMap(
            conn.pipeline([{ sql: "SELECT 1" }, { sql: "SELECT pg_sleep(5)" }, { sql: "SELECT 3" }]),
            (exits) => Effect.succeed(exits)
          )],
        ["transaction", (conn) => conn.transaction(conn.execute("SELECT pg_sleep(5)"))]
      ]
      for (const [label, run] of runs) {
        yield* Effect.gen(function*() {
          const conn = yield* Connection.connect(withApp(url, app))
          const pid = conn.info.backendPid
          let endedAt = 0
          const fiber = yield* Effect.forkChild(
            run(conn).pipe(Effect.onExit(() => Effect.sync(() => (endedAt = performance.now()))), Effect.exit)
          )
          yield* watcher.waitForState(pid, "active")
          yield* Effect.sleep("50 millis")
          const killedAt = performance.now()
          yield* watcher.terminate(pid)
          const exit = yield* Fiber.join(fiber)
          expectTerminated(failureOf(exit))
          expect(endedAt - killedAt, label).toBeLessThan(200)
          expect(conn.broken, label).toBe(true)
        }).pipe(Effect.scoped)
      }
      yield* leakAudit(url, app)
    }))

  it.effect("F3: killed between two statements of a transaction → 57P01 kept, no retry elsewhere, nothing committed", () =>
    Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const app = appName("f3")
      const watcher = yield* admin(url)
      const table = `f3_${app.slice(-6)}`
      yield* watcher.conn.execute(`CREATE TABLE ${table} (x int)`)
      const { exit, lines } = yield* Effect.gen(function*() {
        const conn = yield* Connection.connect(withApp(url, app))
        const pid = conn.info.backendPid
        return yield* captureLogs(conn.transaction(Effect.gen(function*() {
          yield* conn.execute(`INSERT INTO ${table} VALUES ($1)`, [1])
          yield* watcher.terminate(pid)
          // the backend is gone before the second statement is written
          yield* eventually(Effect.map(watcher.stateOf(pid), (state) => state === undefined), "the backend to exit")
          yield* conn.execute(`INSERT INTO ${table} VALUES ($1)`, [2])
        })))
      }).pipe(Effect.scoped)
      expectTerminated(failureOf(exit))
      // a failed rollback (if one was tried) is a warning, never the error
      for (const line of lines) expect(line).not.toMatch(/"level":"(ERROR|FATAL)"/)
      expect((yield* watcher.conn.execute(`SELECT count(*)::int FROM ${table}`)).rows).toEqual([[0]])
      yield* leakAudit(url, app)
    }))

  it.effect("F3: a ROLLBACK that fails after the kill is only logged; the user's error is kept", () =>
    Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const app = appName("f3b")
      const watcher = yield* admin(url)
      const table = `f3b_${app.slice(-6)}`
      yield* watcher.conn.execute(`CREATE TABLE ${table} (x int)`)
      const { exit, lines } = yield* Effect.gen(function*() {
        const { proxy, url: proxied } = yield* FaultProxy.inFrontOf(url)
        const conn = yield* Connection.connect(withApp(proxied, app, { sslmode: "disable" }))
        const pid = conn.info.backendPid
        return yield* captureLogs(conn.transaction(Effect.gen(function*() {
          yield* conn.execute(`INSERT INTO ${table} VALUES ($1)`, [1])
          // hold the server's FATAL in the proxy: the client still believes the session alive
          yield* proxy.stall({ after: 0 })
          yield* watcher.terminate(pid)
          yield* eventually(Effect.map(watcher.stateOf(pid), (state) => state === undefined), "the backend to exit")
          // the FATAL and the close reach the client while it waits for its ROLLBACK
          yield* Effect.forkDetach(Effect.andThen(Effect.sleep("100 millis"), proxy.resume))
          return yield* Effect.fail(new UserError({ message: "the user's own failure" }))
        })))
      }).pipe(Effect.scoped)
      const error = failureOf(exit)
      expect(error).toBeInstanceOf(UserError)
      const warning = lines.find((line) => line.includes("rollback failed"))
      expect(warning).toContain('"level":"WARN"')
      expect(warning).toContain("terminating connection due to administrator command")
      expect((yield* watcher.conn.execute(`SELECT count(*)::int FROM ${table}`)).rows).toEqual([[0]])
      yield* leakAudit(url, app)
    }))

  it.effect("F27: a lost LISTEN connection fails the subscriber with a typed error at once (no silent stall)", () =>
    Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const app = appName("f27a")
      const watcher = yield* admin(url)
      yield* Effect.gen(function*() {
        const conn = yield* Connection.connect(withApp(url, app))
        const received: Array<string> = []
        let endedAt = 0
        const fiber = yield* Effect.forkChild(
          conn.listen("f27_channel").pipe(
            Stream.runForEach((n) => Effect.sync(() => received.push(n.payload))),
            Effect.onExit(() => Effect.sync(() => (endedAt = performance.now()))),
            Effect.exit
          )
        )
        yield* eventually(
          Effect.map(watcher.sessions(app), (rows) => rows.some((row) => String(row[2]).startsWith("LISTEN"))),
          "the LISTEN"
        )
        yield* watcher.conn.notify("f27_channel", "before")
        yield* eventually(Effect.sync(() => received.length === 1), "the first notification")
        const killedAt = performance.now()
        yield* watcher.terminate(conn.info.backendPid)
        expectTerminated(failureOf(yield* Fiber.join(fiber)))
        expect(endedAt - killedAt).toBeLessThan(200)
        expect(received).toEqual(["before"])
      }).pipe(Effect.scoped)
      yield* leakAudit(url, app)
    }))

  it.effect("F27: re-subscribing with Stream.retry issues LISTEN again on a fresh connection", () =>
    Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const app = appName("f27b")
      const watcher = yield* admin(url)
      const errors: Array<unknown> = []
      const received: Array<string> = []
      const listeners = () =>
        Effect.map(
          watcher.sessions(app),
          (rows) => rows.filter((row) => String(row[2]).startsWith("LISTEN")).map((row) => row[0] as number)
        )
      const subscription = Stream.unwrap(
        Effect.map(Connection.connect(withApp(url, app)), (conn) => conn.listen("f27_retry"))
      ).pipe(
        Stream.tapError((error) => Effect.sync(() => errors.push(error))),
        Stream.retry(Schedule.spaced("50 millis")),
        Stream.take(2),
        Stream.runForEach((n) => Effect.sync(() => received.push(n.payload)))
      )
      const fiber = yield* Effect.forkChild(subscription)
      yield* eventually(Effect.map(listeners(), (pids) => pids.length === 1), "the first LISTEN")
      const [first] = yield* listeners()
      yield* watcher.conn.notify("f27_retry", "one")
      yield* eventually(Effect.sync(() => received.length === 1), "the first notification")
      yield* watcher.terminate(first)
      yield* eventually(
        Effect.map(listeners(), (pids) => pids.length === 1 && pids[0] !== first),
        "LISTEN again on a new session"
      )
      yield* watcher.conn.notify("f27_retry", "two")
      yield* Fiber.join(fiber)
      expect(received).toEqual(["one", "two"])
      expect(errors).toHaveLength(1)
      expectTerminated(errors[0])
      yield* leakAudit(url, app)
    }))
})

class UserError extends Error {
  constructor(options: { readonly message: string }) {
    super(options.message)
    this.name = "UserError"
  }
}
