/**
 * Network faults between client and server, through the fault proxy (reliability.md F5, F16,
 * and the slicing / stall / cut cases). Runs on every target: the proxy sits in front of the
 * project's server on loopback, with `sslmode=disable` so it sees message boundaries.
 */
import { expect, layer } from "@effect/vitest"
import { Cause, Effect, Exit, Fiber, Stream } from "effect"
import { Connection, PgError } from "../../src/index.ts"
import { TestDatabase } from "../../../../test/harness.ts"
import * as FaultProxy from "../../../../test/faults/proxy.ts"
import { admin, appName, eventually, failureOf, interruptedOnly, leakAudit, withApp } from "./support.ts"

const isTimeout = (exit: Exit.Exit<unknown, unknown>) =>
  Exit.isFailure(exit) && Cause.pretty(exit.cause).includes("TimeoutError")

const expectConnectionError = (error: unknown) => {
  expect(PgError.isPgError(error)).toBe(true)
  expect((error as PgError.PgError)._tag).toBe("ConnectionError")
}

/** A proxy in front of the test database and a URL through it, tagged with `app`. */
const proxied = (app: string, params: Readonly<Record<string, string | number>> = {}) =>
  Effect.gen(function*() {
    const url = yield* TestDatabase.url
    const { proxy, url: through } = yield* FaultProxy.inFrontOf(url)
    return { url, proxy, through: withApp(through, app, { sslmode: "disable", ...params }) }
  })

/** Queries whose results exercise every kind of backend message a statement can produce. */
const workload = (conn: Connection.Connection) =>
  Effect.gen(function*() {
    const out: Array<unknown> = []
    out.push((yield* conn.execute(
      "SELECT g, repeat('x', g) AS s, g::numeric / 3 AS n, ARRAY[g, g * 2] AS a, now() - now() AS i FROM generate_series(1, 40) g"
    )).rows)
    out.push((yield* conn.execute("SELECT $1::text || $2::text, $3::int8, $4::bytea", ["é€😀", "'\\", 2n ** 62n, Uint8Array.of(0, 1, 255)])).rows)
    out.push((yield* conn.execute("SELECT 1 AS a; SELECT 'two' AS b; SELECT FROM generate_series(1, 3)")).results.map((r) => [r.command, r.rows]))
    out.push((yield* Effect.flip(conn.execute("SELECT 1/0")))._tag)
    out.push((yield* conn.execute("DO $$ BEGIN RAISE NOTICE 'notice %', repeat('n', 300); END $$")).command)
    out.push(yield* conn.stream("SELECT g FROM generate_series(1, 25) g", [], { batchSize: 7 }).pipe(Stream.runCollect))
    out.push((yield* conn.executeMany("SELECT $1::int * 2", [[1], [2], [3]])).map((r) => r.rows))
    // a notification to itself
    const received = yield* Effect.forkChild(conn.listen("slice_chan").pipe(Stream.take(1), Stream.runCollect))
    yield* eventually(Effect.succeed(true), "fork", 10)
    yield* Effect.sleep("50 millis")
    yield* conn.notify("slice_chan", "payload ✓")
    out.push((yield* Fiber.join(received)).map((n) => n.payload))
    return out
  })

layer(TestDatabase.layer, { excludeTestServices: true })("network faults through the proxy (F5, F16, slicing)", (it) => {
  it.effect("F5: blackhole mid-query → the caller's timeout fires, the cancel is bounded, the session is retired", () =>
    Effect.gen(function*() {
      const app = appName("f5")
      const { url, proxy, through } = yield* proxied(app)
      const watcher = yield* admin(url)
      yield* Effect.gen(function*() {
        const conn = yield* Connection.connect(through, { cancelTimeout: "300 millis", drainTimeout: "300 millis" })
        const pid = conn.info.backendPid
        const started = performance.now()
        const fiber = yield* Effect.forkChild(conn.execute("SELECT pg_sleep(1)").pipe(Effect.timeout("250 millis"), Effect.exit))
        yield* watcher.waitForState(pid, "active")
        yield* proxy.blackhole
        const exit = yield* Fiber.join(fiber)
        expect(isTimeout(exit)).toBe(true)
        // the caller's deadline is kept: the cancel attempt goes on in the background
        expect(performance.now() - started).toBeLessThan(250 + 250)
        expect(conn.session.settling).toBe(true)
        yield* conn.session.settled
        const elapsed = performance.now() - started
        // timeout (250) + cancel attempt (bounded by cancelTimeout 300) + slack
        expect(elapsed).toBeGreaterThanOrEqual(240)
        expect(elapsed).toBeLessThan(250 + 300 + 400)
        expect(proxy.stats().cancelRequests).toBe(1)
        expect(proxy.stats().cancelsForwarded).toBe(0)
        expect(conn.closed).toBe(true)
        expect(conn.broken).toBe(true)
        const next = yield* Effect.flip(conn.execute("SELECT 1"))
        expectConnectionError(next)
        // the network comes back: a new session through the same path works
        yield* proxy.heal
        const fresh = yield* Connection.connect(through)
        expect((yield* fresh.execute("SELECT 1")).rows).toEqual([[1]])
      }).pipe(Effect.scoped)
      // the old backend ends once its pg_sleep is over and it sees the held-back close
      yield* leakAudit(url, app, { waitMs: 3000 })
    }))

  it.effect("F5: a blackhole before the statement is written: timeout, bounded cancel, retired", () =>
    Effect.gen(function*() {
      const app = appName("f5b")
      const { url, proxy, through } = yield* proxied(app)
      yield* Effect.gen(function*() {
        const conn = yield* Connection.connect(through, { cancelTimeout: "200 millis", drainTimeout: "200 millis" })
        yield* proxy.blackhole
        const started = performance.now()
        const exit = yield* conn.execute("SELECT 1", [], {}).pipe(Effect.timeout("200 millis"), Effect.exit)
        expect(isTimeout(exit)).toBe(true)
        expect(performance.now() - started).toBeLessThan(200 + 250)
        yield* conn.session.settled
        expect(performance.now() - started).toBeLessThan(200 + 200 + 400)
        expect(conn.broken).toBe(true)
        yield* proxy.heal
      }).pipe(Effect.scoped)
      yield* leakAudit(url, app)
    }))

  it.effect("F16: a cancel delayed 500 ms while the statement ends by itself never fails a later statement", () =>
    Effect.gen(function*() {
      const app = appName("f16a")
      const { url, proxy, through } = yield* proxied(app)
      yield* Effect.gen(function*() {
        const conn = yield* Connection.connect(through, { cancelTimeout: "2 seconds", drainTimeout: "2 seconds" })
        yield* proxy.cancelPolicy({ delay: 500 })
        const exit = yield* conn.execute("SELECT pg_sleep(0.3)").pipe(Effect.timeout("100 millis"), Effect.exit)
        expect(isTimeout(exit)).toBe(true)
        yield* conn.session.settled
        expect(proxy.stats().cancelRequests).toBe(1)
        expect(proxy.stats().cancelsForwarded).toBe(1)
        // retired, or confirmed before reuse: later statements on the session never see a 57014
        const later: Array<string> = []
        for (let i = 0; i < 8; i++) {
          const result = yield* Effect.exit(conn.execute("SELECT pg_sleep(0.05), $1::int", [i]))
          later.push(Exit.isSuccess(result) ? "ok" : String(failureOf(result)._tag))
        }
        // here the cancel was confirmed (its socket closed by the server) before the drain, so
        // the session is kept and every later statement succeeds
        expect(conn.closed).toBe(false)
        expect(later).toEqual(Array(8).fill("ok"))
      }).pipe(Effect.scoped)
      yield* leakAudit(url, app)
    }))

  it.effect("F16: a cancel slower than cancelTimeout retires the session; its late arrival harms no one", () =>
    Effect.gen(function*() {
      const app = appName("f16b")
      const { url, proxy, through } = yield* proxied(app)
      yield* Effect.gen(function*() {
        const conn = yield* Connection.connect(through, { cancelTimeout: "150 millis", drainTimeout: "1 second" })
        const other = yield* Connection.connect(through)
        yield* proxy.cancelPolicy({ delay: 500 })
        const started = performance.now()
        const exit = yield* conn.execute("SELECT pg_sleep(0.3)").pipe(Effect.timeout("100 millis"), Effect.exit)
        expect(isTimeout(exit)).toBe(true)
        expect(performance.now() - started).toBeLessThan(100 + 250)
        yield* conn.session.settled
        expect(performance.now() - started).toBeLessThan(100 + 150 + 300)
        expect(conn.broken).toBe(true)
        // the cancel lands ~500 ms later, while other sessions work
        const results: Array<string> = []
        const deadline = performance.now() + 900
        while (performance.now() < deadline) {
          const result = yield* Effect.exit(other.execute("SELECT pg_sleep(0.05)"))
          results.push(Exit.isSuccess(result) ? "ok" : String(failureOf(result)._tag))
        }
        expect(proxy.stats().cancelsForwarded).toBe(1)
        expect(results.every((r) => r === "ok")).toBe(true)
      }).pipe(Effect.scoped)
      yield* leakAudit(url, app)
    }))

  it.effect("F16: a dropped cancel (closed or hanging) retires the session within cancelTimeout + drainTimeout", () =>
    Effect.gen(function*() {
      const app = appName("f16c")
      const { url, proxy, through } = yield* proxied(app)
      yield* Effect.gen(function*() {
        for (const drop of ["close", "hang"] as const) {
          const conn = yield* Connection.connect(through, { cancelTimeout: "200 millis", drainTimeout: "200 millis" })
          yield* proxy.cancelPolicy({ drop })
          const started = performance.now()
          const exit = yield* conn.execute("SELECT pg_sleep(0.6)").pipe(Effect.timeout("100 millis"), Effect.exit)
          expect(isTimeout(exit)).toBe(true)
          expect(performance.now() - started).toBeLessThan(100 + 250)
          yield* conn.session.settled
          expect(performance.now() - started).toBeLessThan(100 + 200 + 200 + 300)
          expect(conn.broken).toBe(true)
        }
        expect(proxy.stats().cancelsForwarded).toBe(0)
      }).pipe(Effect.scoped)
      // the statements the cancels never reached end on their own
      yield* leakAudit(url, app, { waitMs: 3000 })
    }))

  it.effect("every response sliced into 1-byte writes parses identically (SCRAM login included)", () =>
    Effect.gen(function*() {
      const app = appName("slice")
      const { url, proxy, through } = yield* proxied(app)
      yield* Effect.gen(function*() {
        const direct = yield* Connection.connect(withApp(url, app))
        const expected = yield* workload(direct)
        yield* proxy.slice(true)
        const sliced = yield* Connection.connect(through)
        const bytesBefore = proxy.stats().bytesDown
        const actual = yield* workload(sliced)
        expect(actual).toEqual(expected)
        expect(proxy.stats().bytesDown - bytesBefore).toBeGreaterThan(2000)
        expect(sliced.closed).toBe(false)
      }).pipe(Effect.scoped)
      yield* leakAudit(url, app)
    }))

  it.effect("a stall at a message boundary (before ReadyForQuery) delays, then the result is intact", () =>
    Effect.gen(function*() {
      const app = appName("stall")
      const { url, proxy, through } = yield* proxied(app)
      yield* Effect.gen(function*() {
        const conn = yield* Connection.connect(through)
        yield* proxy.stall({ before: "Z" })
        const fiber = yield* Effect.forkChild(conn.execute("SELECT g FROM generate_series(1, 5) g"))
        yield* proxy.stalled
        yield* Effect.sleep("200 millis")
        expect(conn.info.transactionStatus).toBe("ACTIVE")
        yield* proxy.resume
        const result = yield* Fiber.join(fiber)
        expect(result.rows).toEqual([[1], [2], [3], [4], [5]])
        // stall in the middle of the rows too
        yield* proxy.stall({ after: 3 })
        const second = yield* Effect.forkChild(conn.execute("SELECT g FROM generate_series(1, 50) g", []))
        yield* proxy.stalled
        yield* Effect.sleep("100 millis")
        yield* proxy.resume
        expect((yield* Fiber.join(second)).rows).toHaveLength(50)
      }).pipe(Effect.scoped)
      yield* leakAudit(url, app)
    }))

  it.effect("a stall that never ends: timeout → cancel → drain bounded → retired with a typed error after", () =>
    Effect.gen(function*() {
      const app = appName("stall2")
      const { url, proxy, through } = yield* proxied(app)
      yield* Effect.gen(function*() {
        const conn = yield* Connection.connect(through, { cancelTimeout: "500 millis", drainTimeout: "300 millis" })
        yield* proxy.stall({ before: "Z" })
        const started = performance.now()
        const exit = yield* conn.execute("SELECT 1").pipe(Effect.timeout("200 millis"), Effect.exit)
        expect(isTimeout(exit)).toBe(true)
        expect(performance.now() - started).toBeLessThan(200 + 250)
        yield* conn.session.settled
        expect(performance.now() - started).toBeLessThan(200 + 500 + 300 + 300)
        expect(conn.broken).toBe(true)
        expectConnectionError(yield* Effect.flip(conn.execute("SELECT 1")))
        yield* proxy.resume
      }).pipe(Effect.scoped)
      yield* leakAudit(url, app)
    }))

  it.effect("the connection cut after N bytes mid-result (limit_data) → typed ConnectionError, never a success", () =>
    Effect.gen(function*() {
      const app = appName("limit")
      const { url, proxy, through } = yield* proxied(app)
      yield* Effect.gen(function*() {
        const conn = yield* Connection.connect(through)
        yield* proxy.limitData(1500)
        const error = yield* Effect.flip(conn.execute("SELECT g, repeat('y', 100) FROM generate_series(1, 1000) g"))
        expectConnectionError(error)
        if (error._tag === "ConnectionError") expect(error.reason).toBe("Closed")
        expect(conn.broken).toBe(true)
        // a stream cut the same way fails too
        yield* proxy.limitData(undefined)
        const streaming = yield* Connection.connect(through)
        yield* proxy.limitData(3000)
        const streamError = yield* Effect.flip(
          streaming.stream("SELECT g, repeat('y', 100) FROM generate_series(1, 1000) g", [], { batchSize: 10 }).pipe(Stream.runDrain)
        )
        expectConnectionError(streamError)
      }).pipe(Effect.scoped)
      yield* leakAudit(url, app)
    }))

  it.effect("RST and FIN mid-query → typed ConnectionError, connection broken, scope closes cleanly", () =>
    Effect.gen(function*() {
      const app = appName("rstfin")
      const { url, proxy, through } = yield* proxied(app)
      const watcher = yield* admin(url)
      yield* Effect.gen(function*() {
        for (const fault of [proxy.reset, proxy.close]) {
          const conn = yield* Connection.connect(through)
          const fiber = yield* Effect.forkChild(Effect.flip(conn.execute("SELECT pg_sleep(0.5)")))
          yield* watcher.waitForState(conn.info.backendPid, "active")
          yield* fault
          const error = yield* Fiber.join(fiber)
          expectConnectionError(error)
          if (error._tag === "ConnectionError") expect(error.reason).toBe("Closed")
          expect(conn.broken).toBe(true)
        }
      }).pipe(Effect.scoped)
      yield* leakAudit(url, app, { waitMs: 3000 })
    }))

  it.effect("100 ms of latency each way: connect and statements still work; connect_timeout is per attempt", () =>
    Effect.gen(function*() {
      const app = appName("latency")
      const { url, proxy, through } = yield* proxied(app, { connect_timeout: 2 })
      yield* Effect.gen(function*() {
        yield* proxy.latency(100)
        const started = performance.now()
        const conn = yield* Connection.connect(through)
        expect(performance.now() - started).toBeLessThan(2000)
        const result = yield* conn.execute("SELECT $1::int + 1", [41])
        expect(result.rows).toEqual([[42]])
        // interrupting under latency still cancels and drains
        const exit = yield* conn.execute("SELECT pg_sleep(5)").pipe(Effect.timeout("300 millis"), Effect.exit)
        expect(isTimeout(exit)).toBe(true)
        expect(conn.closed).toBe(false)
        expect((yield* conn.execute("SELECT 1")).rows).toEqual([[1]])
      }).pipe(Effect.scoped)
      yield* leakAudit(url, app)
    }))

  it.effect("an interrupted stream through a slow link closes its portal and leaves the session usable", () =>
    Effect.gen(function*() {
      const app = appName("streamint")
      const { url, proxy, through } = yield* proxied(app)
      yield* Effect.gen(function*() {
        const conn = yield* Connection.connect(through)
        yield* proxy.latency(30)
        const fiber = yield* Effect.forkChild(
          conn.stream("SELECT g FROM generate_series(1, 100000) g", [], { batchSize: 100 }).pipe(Stream.runDrain)
        )
        yield* Effect.sleep("150 millis")
        yield* Fiber.interrupt(fiber)
        expect(interruptedOnly(yield* Fiber.await(fiber))).toBe(true)
        expect((yield* conn.execute("SELECT 2")).rows).toEqual([[2]])
      }).pipe(Effect.scoped)
      yield* leakAudit(url, app)
    }))
})
