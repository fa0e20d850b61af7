/**
 * Connect faults and host-list failover (reliability.md F8a, F8b, F9). The refused port and the
 * silent listener need no server (one project only); failover goes to the project's server.
 *
 * The leak audit: where a server is involved, core's `leakAudit` on the test's application_name;
 * where there is none, no socket is left open to the silent listeners (`noSocketLeft`).
 */
import { describe, expect, it, layer } from "@effect/vitest"
import { Effect, Fiber, Redacted } from "effect"
import { Connection, PgConfig } from "../../src/index.ts"
import { primaryTarget, TestDatabase } from "../../../../test/harness.ts"
import * as FaultProxy from "../../../../test/faults/proxy.ts"
import { appName, eventually, interruptedOnly, leakAudit, withApp } from "./support.ts"

/** The client-side half of the audit when there is no server: every socket it opened to the listeners is closed. */
const noSocketLeft = (...listeners: ReadonlyArray<{ readonly open: () => number }>) =>
  eventually(
    Effect.sync(() => listeners.every((l) => l.open() === 0)),
    "the client to close its sockets to the silent listeners"
  )

const quote = (password: Redacted.Redacted<string>) => Redacted.value(password).replace(/[\\']/g, (c) => `\\${c}`)

if (primaryTarget()) {
  describe("connect faults (F8a, F8b)", () => {
    it.live("F8a: a refused port fails at once with a typed Refused error", () =>
      Effect.gen(function*() {
        const port = yield* FaultProxy.refusedPort
        const started = performance.now()
        const error = yield* Effect.flip(
          Effect.scoped(Connection.connect(`host=127.0.0.1 port=${port} user=x connect_timeout=10`))
        )
        expect(performance.now() - started).toBeLessThan(500)
        expect(error._tag).toBe("ConnectionError")
        if (error._tag === "ConnectionError") {
          expect(error.reason).toBe("Refused")
          expect(error.address).toBe(`127.0.0.1:${port}`)
        }
      }))

    it.live("F8b: a silent listener is given up after connect_timeout, with a typed Timeout", () =>
      Effect.gen(function*() {
        const silent = yield* FaultProxy.silentListener()
        const started = performance.now()
        const error = yield* Effect.flip(
          Effect.scoped(Connection.connect(`host=127.0.0.1 port=${silent.port} user=x sslmode=disable connect_timeout=2`))
        )
        const elapsed = performance.now() - started
        expect(error._tag).toBe("ConnectionError")
        if (error._tag === "ConnectionError") expect(error.reason).toBe("Timeout")
        expect(elapsed).toBeGreaterThanOrEqual(1900)
        expect(elapsed).toBeLessThan(2500)
        expect(silent.accepted()).toBe(1)
        yield* noSocketLeft(silent)
      }).pipe(Effect.scoped))

    it.live("F8b: the same with sslmode=prefer (stuck waiting for the SSLRequest answer)", () =>
      Effect.gen(function*() {
        const silent = yield* FaultProxy.silentListener()
        const started = performance.now()
        const error = yield* Effect.flip(
          Effect.scoped(Connection.connect(`host=127.0.0.1 port=${silent.port} user=x sslmode=prefer connect_timeout=2`))
        )
        expect(error._tag).toBe("ConnectionError")
        expect(performance.now() - started).toBeLessThan(2500)
        yield* noSocketLeft(silent)
      }).pipe(Effect.scoped))

    it.live("F9: an interrupt between attempts stops the remaining ones at once", () =>
      Effect.gen(function*() {
        const first = yield* FaultProxy.silentListener()
        const second = yield* FaultProxy.silentListener()
        const third = yield* FaultProxy.silentListener()
        const fiber = yield* Effect.forkChild(Effect.scoped(Connection.connect(
          `host=127.0.0.1,127.0.0.1,127.0.0.1 port=${first.port},${second.port},${third.port} user=x sslmode=disable connect_timeout=2`
        )))
        // during the second attempt
        yield* Effect.sleep("2300 millis")
        expect([first.accepted(), second.accepted(), third.accepted()]).toEqual([1, 1, 0])
        const started = performance.now()
        yield* Fiber.interrupt(fiber)
        expect(interruptedOnly(yield* Fiber.await(fiber))).toBe(true)
        expect(performance.now() - started).toBeLessThan(100)
        yield* Effect.sleep("300 millis")
        expect(third.accepted()).toBe(0)
        yield* noSocketLeft(first, second, third)
      }).pipe(Effect.scoped))
  })
}

layer(TestDatabase.layer, { excludeTestServices: true })("host list failover (F9)", (it) => {
  it.effect("F9: a silent host then the real one → connected within one connect_timeout", () =>
    Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const app = appName("f9")
      const silent = yield* FaultProxy.silentListener()
      const real = yield* PgConfig.make(withApp(url, app))
      yield* Effect.gen(function*() {
        const started = performance.now()
        const conn = yield* Connection.connect({
          ...real,
          hosts: [{ host: "127.0.0.1", port: silent.port }, real.hosts[0]],
          connectTimeout: 2
        })
        const elapsed = performance.now() - started
        expect(elapsed).toBeGreaterThanOrEqual(1900)
        expect(elapsed).toBeLessThan(2000 + 600)
        expect(conn.info.port).toBe(real.hosts[0].port)
        expect((yield* conn.execute("SELECT 1")).rows).toEqual([[1]])
      }).pipe(Effect.scoped)
      yield* noSocketLeft(silent)
      yield* leakAudit(url, app)
    }))

  it.effect("F9: ::1 refused first, then 127.0.0.1 (a server listening on IPv4 only) → connected at once", () =>
    Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const app = appName("f9v6")
      // a proxy on 127.0.0.1 only: the same port on ::1 refuses
      const { proxy } = yield* FaultProxy.inFrontOf(url)
      const real = yield* PgConfig.make(withApp(url, app, { sslmode: "disable" }))
      yield* Effect.gen(function*() {
        const started = performance.now()
        const conn = yield* Connection.connect({
          ...real,
          hosts: [{ host: "::1", port: proxy.port }, { host: "127.0.0.1", port: proxy.port }],
          connectTimeout: 2
        })
        expect(performance.now() - started).toBeLessThan(1000)
        expect(conn.info.host).toBe("127.0.0.1")
        expect((yield* conn.execute("SELECT 1")).rows).toEqual([[1]])
      }).pipe(Effect.scoped)
      yield* leakAudit(url, app)
    }))

  it.effect("F9: the same written as a conninfo host list", () =>
    Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const app = appName("f9ci")
      const silent = yield* FaultProxy.silentListener()
      const real = yield* PgConfig.make(url)
      const { host, port } = real.hosts[0]
      const password = real.password === undefined ? "" : `password='${quote(real.password)}'`
      const conninfo =
        `host=127.0.0.1,${host} port=${silent.port},${port} dbname=${real.database} user=${real.user} ${password} connect_timeout=2 application_name=${app}`
      yield* Effect.gen(function*() {
        const conn = yield* Connection.connect(conninfo)
        expect(conn.info.port).toBe(port)
      }).pipe(Effect.scoped)
      yield* noSocketLeft(silent)
      yield* leakAudit(url, app)
    }))
})
