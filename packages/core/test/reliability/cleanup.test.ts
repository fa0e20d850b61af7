/**
 * Cleanup on a half-open connection (reliability.md F3 + F5, design rules 2 and 5): the steps a
 * scope runs on its way out — ROLLBACK of a failed transaction block, COMMIT/ROLLBACK of an
 * autocommit-off connection, CLOSE of a server cursor, UNLISTEN — run uninterruptibly, so no
 * caller deadline can cut them. Each must be bounded by the connection itself (`drainTimeout`),
 * retire the connection when it cannot finish, and keep the user's outcome.
 */
import { expect, layer } from "@effect/vitest"
import { Effect, Exit, Fiber, Option, Stream } from "effect"
import { Connection } from "../../src/index.ts"
import { TestDatabase } from "../../../../test/harness.ts"
import * as FaultProxy from "../../../../test/faults/proxy.ts"
import { admin, appName, captureLogs, eventually, failureOf, leakAudit, withApp } from "./support.ts"

class UserError {
  readonly _tag = "UserError"
}

const bounds = { cancelTimeout: "300 millis", drainTimeout: "300 millis" } as const

/**
 * Runs `effect` in a fiber and waits at most `ms` for it (without interrupting it: it may be
 * uninterruptible). On a hang, `rescue` unblocks it and the test fails.
 */
const within = <A, E>(effect: Effect.Effect<A, E>, ms: number, rescue: Effect.Effect<void>) =>
  Effect.gen(function*() {
    const started = performance.now()
    const fiber = yield* Effect.forkChild(effect)
    const exit = yield* Fiber.await(fiber).pipe(Effect.timeoutOption(`${ms} millis`))
    if (Option.isNone(exit)) {
      yield* rescue
      yield* Fiber.await(fiber)
      return yield* Effect.fail(new Error(`still running after ${ms} ms on a half-open connection`))
    }
    return { exit: exit.value, ms: performance.now() - started }
  })

layer(TestDatabase.layer, { excludeTestServices: true })("cleanup on a half-open connection", (it) => {
  it.effect("a transaction block failing during a blackhole: ROLLBACK bounded, the user's error kept, connection retired", () =>
    Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const app = appName("cleanup_tx")
      const watcher = yield* admin(url)
      const table = `cl_tx_${app.slice(-6)}`
      yield* watcher.conn.execute(`CREATE TABLE ${table} (x int)`)
      const { proxy, url: through } = yield* FaultProxy.inFrontOf(url)
      yield* Effect.gen(function*() {
        const conn = yield* Connection.connect(withApp(through, app, { sslmode: "disable" }), bounds)
        const { exit, ms } = yield* within(
          captureLogs(conn.transaction(Effect.gen(function*() {
            yield* conn.execute(`INSERT INTO ${table} VALUES ($1)`, [1])
            yield* proxy.blackhole
            return yield* Effect.fail(new UserError())
          }))),
          3000,
          proxy.reset
        )
        expect(ms).toBeLessThan(300 + 300 + 300 + 500)
        const { exit: blockExit, lines } = (exit as Exit.Success<{ exit: Exit.Exit<unknown, unknown>; lines: Array<string> }>).value
        expect(failureOf(blockExit)).toBeInstanceOf(UserError)
        expect(lines.some((line) => line.includes("rollback failed") && line.includes("WARN"))).toBe(true)
        expect(conn.broken).toBe(true)
        yield* proxy.heal
      }).pipe(Effect.scoped)
      yield* leakAudit(url, app)
      expect((yield* watcher.conn.execute(`SELECT count(*)::int FROM ${table}`)).rows).toEqual([[0]])
    }))

  it.effect("autocommit off: the scope's ROLLBACK (failure) and COMMIT (success) on close are bounded", () =>
    Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const app = appName("cleanup_ac")
      const watcher = yield* admin(url)
      const table = `cl_ac_${app.slice(-6)}`
      yield* watcher.conn.execute(`CREATE TABLE ${table} (x int)`)
      for (const outcome of ["fail", "succeed"] as const) {
        const { proxy, url: through } = yield* FaultProxy.inFrontOf(url)
        const { exit, ms } = yield* within(
          Effect.scoped(Effect.gen(function*() {
            const conn = yield* Connection.connect(withApp(through, app, { sslmode: "disable" }), { ...bounds, autocommit: false })
            yield* conn.execute(`INSERT INTO ${table} VALUES ($1)`, [1])
            expect(conn.info.transactionStatus).toBe("INTRANS")
            yield* proxy.blackhole
            if (outcome === "fail") return yield* Effect.fail(new UserError())
            return "done"
          })),
          3000,
          proxy.reset
        )
        expect(ms, outcome).toBeLessThan(300 + 300 + 300 + 500)
        if (outcome === "fail") expect(failureOf(exit)).toBeInstanceOf(UserError)
        else expect(Exit.isSuccess(exit)).toBe(true)
        yield* proxy.heal
      }
      yield* leakAudit(url, app)
      // the server never saw a COMMIT: nothing was kept
      expect((yield* watcher.conn.execute(`SELECT count(*)::int FROM ${table}`)).rows).toEqual([[0]])
    }))

  it.effect("a server cursor's CLOSE on scope exit is bounded during a blackhole", () =>
    Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const app = appName("cleanup_cur")
      const { proxy, url: through } = yield* FaultProxy.inFrontOf(url)
      yield* Effect.gen(function*() {
        const conn = yield* Connection.connect(withApp(through, app, { sslmode: "disable" }), bounds)
        const { exit, ms } = yield* within(
          Effect.scoped(Effect.gen(function*() {
            const cursor = yield* conn.serverCursor("c_blackhole", "SELECT g FROM generate_series(1, 10) g")
            expect(yield* cursor.fetchOne).toEqual([1])
            yield* proxy.blackhole
            return "read one row"
          })),
          3000,
          proxy.reset
        )
        expect(ms).toBeLessThan(300 + 300 + 300 + 500)
        expect(Exit.isSuccess(exit)).toBe(true)
        expect(conn.broken).toBe(true)
        yield* proxy.heal
      }).pipe(Effect.scoped)
      yield* leakAudit(url, app)
    }))

  it.effect("a LISTEN stream ended during a blackhole: its UNLISTEN is bounded", () =>
    Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const app = appName("cleanup_listen")
      const watcher = yield* admin(url)
      const { proxy, url: through } = yield* FaultProxy.inFrontOf(url)
      yield* Effect.gen(function*() {
        const conn = yield* Connection.connect(withApp(through, app, { sslmode: "disable" }), bounds)
        const fiber = yield* Effect.forkChild(conn.listen("cleanup_chan").pipe(Stream.runDrain))
        yield* eventually(
          Effect.map(watcher.sessions(app), (rows) => rows.some((row) => String(row[2]).startsWith("LISTEN"))),
          "the LISTEN"
        )
        yield* proxy.blackhole
        const { ms } = yield* within(Fiber.interrupt(fiber), 3000, proxy.reset)
        expect(ms).toBeLessThan(300 + 300 + 500)
        expect(conn.broken).toBe(true)
        yield* proxy.heal
      }).pipe(Effect.scoped)
      yield* leakAudit(url, app)
    }))
})
