/**
 * ConnectionPool against a real server: psycopg_pool's behavioural cases
 * (psycopg.md §2, T40–T50) plus pgfx's own guarantees, each asserted on the
 * server's state where it has one. Every test ends with the session audit:
 * no session of the test database left active or `idle in transaction`.
 */
import { expect, layer } from "@effect/vitest"
import { Connection, PgConfig, RowFactory } from "@pgfx/core"
import { Cause, Config, ConfigProvider, Deferred, Effect, Exit, Fiber, Metric } from "effect"
import { ConnectionPool, PoolError } from "../src/index.ts"
import { TestDatabase } from "../../../test/harness.ts"
import {
  audited,
  auditPool,
  captureLogs,
  eventually,
  leakAudit,
  makeProxy,
  observe,
  pid,
  quiet,
  scenario,
  sessions,
  timed,
  withApp
} from "./helpers.ts"

/** A URL as a `PgConfigInput` (to change one setting per attempt). */
const parseUrl = (url: string) => {
  const u = new URL(url)
  return {
    host: u.hostname,
    port: Number(u.port || 5432),
    user: decodeURIComponent(u.username),
    password: u.password === "" ? undefined : decodeURIComponent(u.password),
    database: u.pathname.slice(1)
  }
}

layer(TestDatabase.layer, { excludeTestServices: true })("ConnectionPool basics", (it) => {
  it.effect("has psycopg's defaults", () =>
    audited(quiet(Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const pool = yield* ConnectionPool.make({ conninfo: url })
      expect(pool.minSize).toBe(4)
      expect(pool.maxSize).toBe(4)
      expect(pool.closed).toBe(false)
      expect(pool.timeout).toEqual(expect.objectContaining({}))
      expect(pool.name).toMatch(/^pool-\d+$/)
      yield* pool.wait("5 seconds")
      const stats = yield* pool.stats
      expect(stats).toMatchObject({ pool_min: 4, pool_max: 4, pool_size: 4, pool_available: 4, requests_waiting: 0 })
      expect(stats.connections_num).toBe(4)
    }))))

  it.effect("rejects bad sizes", () =>
    Effect.gen(function*() {
      for (const [min, max] of [[0, 0], [0, undefined], [-1, undefined], [4, 2]] as const) {
        const error = yield* Effect.flip(Effect.scoped(ConnectionPool.make({ minSize: min, maxSize: max })))
        expect(error._tag).toBe("PoolConfigError")
      }
      const ok = yield* Effect.scoped(Effect.map(
        ConnectionPool.make({ minSize: 0, maxSize: 2, open: false }),
        (pool) => [pool.minSize, pool.maxSize]
      ))
      expect(ok).toEqual([0, 2])
    }))

  it.effect("reports malformed conninfo when made", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Effect.scoped(ConnectionPool.make({ conninfo: "dbname test" })))
      expect(error._tag).toBe("PgConfigError")
    }))

  it.effect("is really a pool: connections are reused (same backend pids)", () =>
    audited(quiet(Effect.gen(function*() {
      const pool = yield* ConnectionPool.make({ conninfo: yield* TestDatabase.url, minSize: 2 })
      const [pid1, pid2] = yield* Effect.scoped(Effect.gen(function*() {
        const a = yield* pool.connection
        const b = yield* pool.connection
        return [pid(a), pid(b)]
      }))
      expect(pid1).not.toBe(pid2)
      const again = yield* pool.use((conn) => Effect.succeed(pid(conn)))
      expect([pid1, pid2]).toContain(again)
    }))))

  it.effect("does not lose the connection when the block fails", () =>
    audited(quiet(Effect.gen(function*() {
      const pool = yield* ConnectionPool.make({ conninfo: yield* TestDatabase.url, minSize: 1 })
      let first = 0
      const error = yield* Effect.flip(pool.use((conn) => {
        first = pid(conn)
        return Effect.fail("boom" as const)
      }))
      expect(error).toBe("boom")
      expect(yield* pool.use((conn) => Effect.succeed(pid(conn)))).toBe(first)
    }))))

  it.effect("checking out and in costs no round trip to the server (not a byte on the wire)", () =>
    audited(quiet(Effect.gen(function*() {
      const proxy = yield* makeProxy(yield* TestDatabase.url)
      const pool = yield* ConnectionPool.make({ conninfo: proxy.via(yield* TestDatabase.url), minSize: 2 })
      yield* pool.wait()
      const before = proxy.forwarded()
      for (let i = 0; i < 50; i++) yield* Effect.scoped(pool.connection)
      yield* Effect.forEach([0, 1, 2, 3], () => pool.use(() => Effect.yieldNow), { concurrency: 4 })
      expect(proxy.forwarded()).toBe(before)
      const stats = yield* pool.stats
      expect(stats.requests_num).toBe(54)
      expect(stats.connections_num).toBe(2)
    }))))

  it.effect("serves connections FIFO, so use is spread evenly (8 uses of a pool of 4: twice each)", () =>
    audited(quiet(Effect.gen(function*() {
      const pool = yield* ConnectionPool.make({ conninfo: yield* TestDatabase.url, minSize: 4 })
      yield* pool.wait()
      const counts = new Map<number, number>()
      for (let i = 0; i < 8; i++) {
        yield* pool.use((conn) => Effect.sync(() => counts.set(pid(conn), (counts.get(pid(conn)) ?? 0) + 1)))
      }
      expect(counts.size).toBe(4)
      expect(new Set(counts.values())).toEqual(new Set([2]))
    }))))

  it.effect("returns a broken connection and replaces it (conn.close inside the block)", () =>
    audited(quiet(Effect.gen(function*() {
      const pool = yield* ConnectionPool.make({ conninfo: yield* TestDatabase.url, minSize: 1, maxSize: 1 })
      const pid1 = yield* pool.use((conn) => Effect.as(conn.close, pid(conn)))
      const pid2 = yield* pool.use((conn) => Effect.succeed(pid(conn)))
      expect(pid2).not.toBe(pid1)
      expect((yield* pool.stats).returns_bad).toBe(1)
    }))))

  it.effect("calls a conninfo effect at every connection attempt (rotating settings)", () =>
    audited(quiet(Effect.gen(function*() {
      const url = yield* TestDatabase.url
      let calls = 0
      const names = ["app-1", "app-2"]
      const pool = yield* ConnectionPool.make({
        conninfo: Effect.sync(() => ({ ...parseUrl(url), applicationName: names[calls++ % 2] })),
        minSize: 2
      })
      yield* pool.wait()
      expect(calls).toBe(2)
      const shown = yield* Effect.scoped(Effect.gen(function*() {
        const a = yield* pool.connection
        const b = yield* pool.connection
        return [(yield* a.execute("SHOW application_name")).rows[0][0], (yield* b.execute("SHOW application_name")).rows[0][0]]
      }))
      expect(shown.slice().sort()).toEqual(names)
    }))))

  it.effect("a failing conninfo effect is retried with backoff, not in a busy loop", () =>
    audited(Effect.gen(function*() {
      const logs = captureLogs()
      yield* logs.provide(Effect.gen(function*() {
        const pool = yield* ConnectionPool.make({
          conninfo: Effect.fail(new PgConfig.PgConfigError({ message: "cannot build conninfo" })),
          minSize: 1,
          name: "badconninfo",
          reconnectTimeout: "1 second"
        })
        expect((yield* Effect.flip(pool.wait("2 seconds")))._tag).toBe("PoolTimeout")
      }))
      const warnings = logs.warnings("badconninfo").map((r) => r.message)
      expect(warnings.some((w) => w.includes("cannot build conninfo"))).toBe(true)
      expect(warnings.some((w) => w.startsWith("reconnection attempt"))).toBe(true)
      expect(warnings.filter((w) => w.startsWith("error connecting")).length).toBeLessThan(5)
    })))

  it.effect("passes connection options through: a record row factory types the pool's connections", () =>
    audited(quiet(Effect.gen(function*() {
      const pool = yield* ConnectionPool.make({ conninfo: yield* TestDatabase.url, minSize: 1, rowFactory: RowFactory.record })
      const rows = yield* pool.use((conn) => Effect.map(conn.execute("SELECT 1 AS x"), (r) => r.rows))
      const x: unknown = rows[0].x
      expect(x).toBe(1)
    }))))

  it.effect("checkConnection never leaves an implicit transaction open on autocommit-off connections", () =>
    audited(quiet(Effect.gen(function*() {
      const pool = yield* ConnectionPool.make({
        conninfo: yield* TestDatabase.url,
        minSize: 1,
        autocommit: false,
        check: ConnectionPool.checkConnection
      })
      yield* pool.use((conn) => Effect.sync(() => expect(conn.info.transactionStatus).toBe("IDLE")))
      yield* pool.check
      yield* pool.use((conn) => Effect.sync(() => expect(conn.info.transactionStatus).toBe("IDLE")))
    }))))

  it.effect("layerConfig builds the pool from Effect Config", () =>
    audited(quiet(Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const layer = ConnectionPool.layerConfig({
        conninfo: Config.String("DATABASE_URL"),
        minSize: Config.Int("POOL_MIN"),
        name: Config.succeed("from-config")
      })
      const provider = ConfigProvider.fromUnknown({ DATABASE_URL: url, POOL_MIN: "2" })
      const stats = yield* Effect.flatMap(ConnectionPool.ConnectionPool, (pool) =>
        Effect.andThen(pool.wait(), Effect.map(pool.stats, (s) => [pool.name, s.pool_min, s.pool_available] as const))
      ).pipe(Effect.provide(layer), Effect.provide(ConfigProvider.layer(provider)))
      expect(stats).toEqual(["from-config", 2, 2])
    }))))

  it.effect("mirrors the stats as Effect metrics named pgfx_pool_<key> with the pool's name", () =>
    audited(quiet(Effect.gen(function*() {
      const pool = yield* ConnectionPool.make({ conninfo: yield* TestDatabase.url, minSize: 2, name: "metrics-pool" })
      yield* pool.wait()
      yield* pool.use(() => Effect.void)
      const snapshot = yield* Metric.snapshot
      const mine = snapshot.filter((m) => m.attributes?.pool === "metrics-pool")
      const byId = new Map(mine.map((m) => [m.id, m.state as { value?: number; count?: number }]))
      expect(byId.get("pgfx_pool_pool_size")?.value).toBe(2)
      expect(byId.get("pgfx_pool_pool_available")?.value).toBe(2)
      expect(byId.get("pgfx_pool_requests_num")?.count).toBe(1)
      expect(byId.get("pgfx_pool_connections_num")?.count).toBe(2)
    }))))
})

layer(TestDatabase.layer, { excludeTestServices: true })("ConnectionPool queue (T40, T41, F22, T45)", (it) => {
  it.effect("queues clients and serves them as connections come back: ~0.2, 0.2, 0.4, 0.4, 0.6, 0.6 s on two pids (test_queue)", () =>
    audited(quiet(Effect.gen(function*() {
      const pool = yield* ConnectionPool.make({ conninfo: yield* TestDatabase.url, minSize: 2, maxSize: 2 })
      yield* pool.wait()
      const started = Date.now()
      const results = yield* Effect.forEach([0, 1, 2, 3, 4, 5], () =>
        pool.use((conn) => Effect.as(conn.execute("SELECT pg_sleep(0.2)"), [Date.now() - started, pid(conn)] as const)).pipe(
          Effect.map(([, p]) => [Date.now() - started, p] as const)
        ), { concurrency: "unbounded" })
      const times = results.map(([t]) => t).sort((a, b) => a - b)
      const want = [200, 200, 400, 400, 600, 600]
      times.forEach((t, i) => expect(Math.abs(t - want[i]), `times ${times.join(",")}`).toBeLessThan(100))
      expect(new Set(results.map(([, p]) => p)).size).toBe(2)
    }))))

  it.effect("exhausted pool: waiters time out after the pool's timeout (T40)", () =>
    audited(quiet(Effect.gen(function*() {
      const pool = yield* ConnectionPool.make({ conninfo: yield* TestDatabase.url, minSize: 2, maxSize: 2, timeout: 100 })
      yield* pool.wait()
      const results = yield* Effect.forEach([0, 1, 2, 3], () =>
        timed(pool.use((conn) => conn.execute("SELECT pg_sleep(0.2)"))), { concurrency: "unbounded" })
      const ok = results.filter((r) => Exit.isSuccess(r.exit))
      const failed = results.filter((r) => Exit.isFailure(r.exit))
      expect(ok.length).toBe(2)
      expect(failed.length).toBe(2)
      for (const r of failed) {
        const error = Exit.isFailure(r.exit) ? Cause.squash(r.exit.cause) : undefined
        expect(PoolError.isPoolError(error) && error._tag).toBe("PoolTimeout")
        expect((error as PoolError.PoolTimeout).message).toBe("couldn't get a connection after 0.10 sec")
        expect(r.ms).toBeGreaterThanOrEqual(95)
        expect(r.ms).toBeLessThan(250)
      }
    }))))

  it.effect("a per-call timeout overrides the pool's (T40)", () =>
    audited(quiet(Effect.gen(function*() {
      const pool = yield* ConnectionPool.make({ conninfo: yield* TestDatabase.url, minSize: 2, maxSize: 2, timeout: 100 })
      yield* pool.wait()
      const results = yield* Effect.forEach([0, 1, 2, 3], (n) =>
        Effect.exit(pool.use((conn) => conn.execute("SELECT pg_sleep(0.2)"), n === 3 ? { timeout: "400 millis" } : undefined)), {
        concurrency: "unbounded"
      })
      expect(results.filter(Exit.isSuccess).length).toBe(3)
      expect(results.filter(Exit.isFailure).length).toBe(1)
    }))))

  it.effect("a waiter that times out loses no connection (T40 dead client)", () =>
    audited(quiet(Effect.gen(function*() {
      const pool = yield* ConnectionPool.make({ conninfo: yield* TestDatabase.url, minSize: 2, maxSize: 2 })
      yield* pool.wait()
      const served: Array<number> = []
      yield* Effect.forEach([400, 400, 100, 400, 400], (timeout, i) =>
        pool.use((conn) => Effect.andThen(conn.execute("SELECT pg_sleep(0.3)"), Effect.sync(() => served.push(i))), { timeout })
          .pipe(Effect.catchTag("PoolTimeout", (e) => timeout > 200 ? Effect.fail(e) : Effect.void)), {
        concurrency: "unbounded"
      })
      expect(new Set(served)).toEqual(new Set([0, 1, 3, 4]))
      expect(yield* eventually(Effect.map(pool.stats, (s) => s.pool_available === 2))).toBe(true)
      expect((yield* pool.stats).pool_size).toBe(2)
    }))))

  it.effect("max_waiting: one request too many fails at once with TooManyRequests naming the pool (T41)", () =>
    audited(quiet(Effect.gen(function*() {
      const pool = yield* ConnectionPool.make({
        conninfo: yield* TestDatabase.url,
        minSize: 1,
        maxSize: 1,
        maxWaiting: 3,
        name: "queue-size"
      })
      yield* pool.wait()
      const holding = yield* Deferred.make<void>()
      const holder = yield* Effect.forkChild(pool.use(() => Effect.andThen(Deferred.succeed(holding, undefined), Effect.sleep("300 millis"))))
      yield* Deferred.await(holding)
      const outcomes = yield* Effect.forEach([0, 1, 2, 3], () =>
        Effect.exit(pool.use(() => Effect.sleep("100 millis"))), { concurrency: "unbounded" })
      yield* Fiber.join(holder)
      const errors = outcomes.flatMap((e) => Exit.isFailure(e) ? [Cause.squash(e.cause)] : [])
      expect(outcomes.filter(Exit.isSuccess).length).toBe(3)
      expect(errors.length).toBe(1)
      const error = errors[0] as PoolError.TooManyRequests
      expect(error._tag).toBe("TooManyRequests")
      expect(error.message).toContain("queue-size")
      expect(error.message).toContain("3")
      expect((yield* pool.stats).requests_errors).toBe(1)
    }))))

  it.effect("F22: max 2 held; the third times out at ~200 ms, a fourth is refused at once, waiters are served FIFO", () =>
    scenario("f22", (app) => quiet(Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const pool = yield* ConnectionPool.make({ conninfo: withApp(url, app), minSize: 2, maxSize: 2, maxWaiting: 1 })
      yield* pool.wait()
      const release = yield* Deferred.make<void>()
      const held = yield* Deferred.make<void>()
      let holding = 0
      const holders = yield* Effect.forkChild(Effect.forEach([0, 1], () =>
        pool.use(() =>
          Effect.andThen(
            Effect.sync(() => ++holding === 2).pipe(Effect.flatMap((both) => both ? Deferred.succeed(held, undefined) : Effect.void)),
            Deferred.await(release)
          )
        ), { concurrency: "unbounded" }))
      yield* Deferred.await(held)
      const third = yield* Effect.forkChild(timed(pool.use(() => Effect.void, { timeout: "200 millis" })))
      yield* Effect.sleep("20 millis")
      const fourth = yield* timed(pool.use(() => Effect.void))
      expect(fourth.ms).toBeLessThan(100)
      expect(Exit.isFailure(fourth.exit) && Cause.squash(fourth.exit.cause)).toMatchObject({ _tag: "TooManyRequests" })
      const thirdResult = yield* Fiber.join(third)
      expect(Exit.isFailure(thirdResult.exit) && Cause.squash(thirdResult.exit.cause)).toMatchObject({ _tag: "PoolTimeout" })
      expect(thirdResult.ms).toBeGreaterThanOrEqual(190)
      expect(thirdResult.ms).toBeLessThan(350)
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(holders)
      yield* auditPool(pool, url, app)
      // FIFO: with room for two waiters, they are served in arrival order.
      const order: Array<string> = []
      const pool2 = yield* ConnectionPool.make({ conninfo: withApp(url, `${app}_fifo`), minSize: 1, maxSize: 1, maxWaiting: 2 })
      yield* pool2.wait()
      const gate = yield* Deferred.make<void>()
      const holder = yield* Effect.forkChild(pool2.use(() => Deferred.await(gate)))
      yield* Effect.sleep("20 millis")
      const a = yield* Effect.forkChild(pool2.use(() => Effect.sync(() => order.push("a"))))
      yield* Effect.sleep("20 millis")
      const b = yield* Effect.forkChild(pool2.use(() => Effect.sync(() => order.push("b"))))
      yield* Effect.sleep("20 millis")
      expect((yield* pool2.stats).requests_waiting).toBe(2)
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(holder)
      yield* Fiber.join(a)
      yield* Fiber.join(b)
      expect(order).toEqual(["a", "b"])
      yield* auditPool(pool2, url, `${app}_fifo`)
      yield* pool2.close
      yield* leakAudit(url, `${app}_fifo`)
    }))))

  it.effect("interrupted waiters never leak connections (T45)", () =>
    audited(quiet(Effect.gen(function*() {
      const pool = yield* ConnectionPool.make({ conninfo: yield* TestDatabase.url, minSize: 3, timeout: "1 second" })
      yield* pool.wait()
      let got = 0
      const fibers = yield* Effect.forEach(Array.from({ length: 9 }, (_, i) => i), () =>
        Effect.forkChild(pool.use((conn) => Effect.andThen(conn.execute("SELECT 1"), Effect.andThen(Effect.sync(() => got++), Effect.sleep("5 seconds"))))))
      expect(yield* eventually(Effect.map(pool.stats, (s) => got === 3 && (s.requests_queued ?? 0) > 0))).toBe(true)
      yield* Effect.forEach(fibers.slice().reverse(), (f) => Fiber.interrupt(f), { discard: true })
      const stats = yield* pool.stats
      expect(stats.pool_available).toBe(3)
      expect(stats.requests_waiting).toBe(0)
      expect((yield* pool.use((conn) => conn.execute("SELECT 1"))).rows).toEqual([[1]])
    }))))

  it.effect("a waiter interrupted right after being handed a connection gives it back", () =>
    audited(quiet(Effect.gen(function*() {
      const pool = yield* ConnectionPool.make({ conninfo: yield* TestDatabase.url, minSize: 1, maxSize: 1, timeout: "1 second" })
      yield* pool.wait()
      const heldPid = yield* Effect.scoped(Effect.gen(function*() {
        const conn = yield* pool.connection
        const waiter = yield* Effect.forkChild(Effect.scoped(pool.connection))
        yield* eventually(Effect.map(pool.stats, (s) => s.requests_waiting === 1))
        // Return the connection (handing it to the waiter) and interrupt the
        // waiter in the same tick, before it can resume.
        return [pid(conn), waiter] as const
      })).pipe(Effect.flatMap(([p, waiter]) => Effect.as(Fiber.interrupt(waiter), p)))
      const stats = yield* pool.stats
      expect(stats.pool_available).toBe(1)
      expect(stats.requests_waiting).toBe(0)
      expect(yield* pool.use((conn) => Effect.succeed(pid(conn)))).toBe(heldPid)
    }))))

  it.effect("the seed's example: minSize 2, four concurrent SELECT n*n holding 1 s take about 2 s", () =>
    audited(Effect.gen(function*() {
      const logs = captureLogs()
      yield* logs.provide(Effect.gen(function*() {
        const pool = yield* ConnectionPool.make({ conninfo: yield* TestDatabase.url, minSize: 2, checkoutLogLevel: "Info", name: "seed" })
        yield* pool.wait()
        const started = Date.now()
        const squares = yield* Effect.forEach([0, 1, 2, 3], (n) =>
          pool.use((conn) =>
            Effect.andThen(Effect.sleep("1 second"), Effect.map(conn.execute("SELECT $1::int * $1::int", [n]), (r) => r.rows[0][0]))
          ), { concurrency: 4 })
        const elapsed = Date.now() - started
        expect(squares).toEqual([0, 1, 4, 9])
        expect(elapsed).toBeGreaterThan(1800)
        expect(elapsed).toBeLessThan(3000)
        const stats = yield* pool.stats
        expect(stats).toMatchObject({ pool_min: 2, pool_max: 2, pool_size: 2, pool_available: 2, requests_num: 4, requests_queued: 2 })
      }))
      const lines = logs.poolLines("seed").map((r) => r.message)
      for (const expected of ["adding new connection to the pool", "waiting for pool 'seed' initialization", "pool 'seed' is ready to use", "connection requested from 'seed'", "connection given by 'seed'", "returning connection to 'seed'", "waiting for a connection"]) {
        expect(lines.some((l) => l.includes(expected)), expected).toBe(true)
      }
    })))
})

layer(TestDatabase.layer, { excludeTestServices: true })("ConnectionPool logging", (it) => {
  it.effect("quiet by default: a healthy pool's life logs nothing at Info or above; its lifecycle is at Debug", () =>
    audited(Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const life = Effect.gen(function*() {
        const pool = yield* ConnectionPool.make({ conninfo: url, minSize: 2, maxSize: 4, name: "quiet", maxLifetime: "1 second" })
        yield* pool.wait()
        yield* Effect.forEach(Array.from({ length: 20 }, (_, i) => i), (i) => pool.execute("SELECT $1::int", [i]), {
          concurrency: 8
        })
        yield* Effect.forEach([1, 2, 3, 4, 5, 6], () => pool.use((conn) => Effect.andThen(conn.execute("SELECT 1"), Effect.sleep("50 millis"))), {
          concurrency: 6
        })
        yield* pool.resize(2, 4)
      }).pipe(Effect.scoped)
      const atInfo = captureLogs("Info")
      yield* atInfo.provide(life)
      expect(atInfo.poolLines("quiet").map((r) => `${r.level} ${r.message}`)).toEqual([])
      const atDebug = captureLogs("Debug")
      yield* atDebug.provide(life)
      const debug = atDebug.poolLines("quiet")
      expect(debug.some((r) => r.level === "Debug" && r.message.includes("is ready to use"))).toBe(true)
      expect(debug.some((r) => r.level === "Debug" && r.message.startsWith("growing pool"))).toBe(true)
      expect(debug.filter((r) => r.level !== "Debug")).toEqual([])
    })))

  it.effect("a connection lost while checked out is a warning (what a user must act on stays visible)", () =>
    audited(Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const logs = captureLogs("Info")
      yield* logs.provide(Effect.gen(function*() {
        const pool = yield* ConnectionPool.make({ conninfo: url, minSize: 1, maxSize: 1, name: "lost" })
        yield* pool.wait()
        const killer = yield* Connection.connect(url)
        yield* Effect.exit(pool.use((conn) =>
          Effect.andThen(
            killer.execute("SELECT pg_terminate_backend($1)", [conn.info.backendPid]),
            conn.execute("SELECT pg_sleep(0.2)")
          )
        ))
        yield* pool.wait()
      }).pipe(Effect.scoped))
      expect(logs.warnings("lost").some((r) => r.message.startsWith("discarding closed connection"))).toBe(true)
    })))
})

layer(TestDatabase.layer, { excludeTestServices: true })("ConnectionPool returns (T42, F17)", (it) => {
  it.effect("a connection returned in a transaction is rolled back: same pid, IDLE, the table is gone; one INTRANS warning", () =>
    scenario("f17a_intrans", (app) => Effect.gen(function*() {
      const logs = captureLogs()
      const url = yield* TestDatabase.url
      yield* logs.provide(Effect.gen(function*() {
        const pool = yield* ConnectionPool.make({ conninfo: withApp(url, app), minSize: 1, name: "intrans" })
        const watcher = yield* observe(url)
        const first = yield* pool.use((conn) =>
          Effect.gen(function*() {
            yield* conn.execute("BEGIN")
            yield* conn.execute("CREATE TABLE test_intrans_rollback ()")
            expect(conn.info.transactionStatus).toBe("INTRANS")
            return pid(conn)
          })
        )
        const states = yield* sessions(watcher, new URL(url).pathname.slice(1))
        expect(states.filter((s) => (s.state ?? "").startsWith("idle in transaction"))).toEqual([])
        yield* pool.use((conn) =>
          Effect.gen(function*() {
            expect(pid(conn)).toBe(first)
            expect(conn.info.transactionStatus).toBe("IDLE")
            const found = yield* conn.execute("SELECT 1 FROM pg_class WHERE relname = 'test_intrans_rollback'")
            expect(found.rows).toEqual([])
          })
        )
        yield* auditPool(pool, url, app)
      }))
      const warnings = logs.warnings("intrans")
      expect(warnings.length).toBe(1)
      expect(warnings[0].message).toContain("INTRANS")
    })))

  it.effect("a connection returned in error is rolled back: same pid, IDLE; one INERROR warning", () =>
    scenario("f17b_inerror", (app) => Effect.gen(function*() {
      const logs = captureLogs()
      const url = yield* TestDatabase.url
      yield* logs.provide(Effect.gen(function*() {
        const pool = yield* ConnectionPool.make({ conninfo: withApp(url, app), minSize: 1, name: "inerror" })
        const first = yield* pool.use((conn) =>
          Effect.gen(function*() {
            yield* conn.execute("BEGIN")
            const error = yield* Effect.flip(conn.execute("wat"))
            expect(error._tag).toBe("SqlSyntaxError")
            expect(conn.info.transactionStatus).toBe("INERROR")
            return pid(conn)
          })
        )
        yield* pool.use((conn) =>
          Effect.sync(() => {
            expect(pid(conn)).toBe(first)
            expect(conn.info.transactionStatus).toBe("IDLE")
          })
        )
        yield* auditPool(pool, url, app)
      }))
      const warnings = logs.warnings("inerror")
      expect(warnings.length).toBe(1)
      expect(warnings[0].message).toContain("INERROR")
    })))

  it.effect("a block that fails inside a transaction is rolled back quietly", () =>
    scenario("f17b_failblock", (app) => Effect.gen(function*() {
      const logs = captureLogs()
      const url = yield* TestDatabase.url
      yield* logs.provide(Effect.gen(function*() {
        const pool = yield* ConnectionPool.make({ conninfo: withApp(url, app), minSize: 1, name: "failblock" })
        const error = yield* Effect.flip(pool.use((conn) =>
          Effect.andThen(conn.execute("BEGIN"), Effect.andThen(conn.execute("CREATE TABLE t_fail ()"), Effect.fail("boom" as const)))
        ))
        expect(error).toBe("boom")
        const exists = yield* pool.use((conn) => conn.execute("SELECT 1 FROM pg_class WHERE relname = 't_fail'"))
        expect(exists.rows).toEqual([])
        yield* auditPool(pool, url, app)
      }))
      expect(logs.warnings("failblock")).toEqual([])
    })))

  it.effect("a connection returned ACTIVE is closed and replaced: new pid; warnings ACTIVE then BAD; the statement stops", () =>
    scenario("f17_active", (app) => Effect.gen(function*() {
      const logs = captureLogs()
      const url = yield* TestDatabase.url
      yield* logs.provide(Effect.gen(function*() {
        const pool = yield* ConnectionPool.make({ conninfo: withApp(url, app), minSize: 1, name: "active" })
        const first = yield* pool.use((conn) =>
          Effect.gen(function*() {
            // A fiber that outlives the block keeps a statement running.
            yield* Effect.forkDetach(Effect.ignore(conn.execute("SELECT pg_sleep(3)")))
            yield* Effect.sleep("50 millis")
            expect(conn.info.transactionStatus).toBe("ACTIVE")
            return pid(conn)
          })
        )
        const second = yield* pool.use((conn) => Effect.sync(() => {
          expect(conn.info.transactionStatus).toBe("IDLE")
          return pid(conn)
        }))
        expect(second).not.toBe(first)
        expect((yield* pool.stats).returns_bad).toBe(1)
        yield* auditPool(pool, url, app)
      }))
      const warnings = logs.warnings("active").map((r) => r.message)
      expect(warnings.length).toBe(2)
      expect(warnings[0]).toContain("ACTIVE")
      expect(warnings[1]).toContain("BAD")
    })))

  it.effect("a reset that fails or leaves the session in a transaction replaces the connection (T50)", () =>
    audited(Effect.gen(function*() {
      const logs = captureLogs()
      yield* logs.provide(Effect.gen(function*() {
        const url = yield* TestDatabase.url
        const intrans = yield* ConnectionPool.make({
          conninfo: url,
          minSize: 1,
          name: "reset-intrans",
          reset: (conn) => conn.execute("BEGIN; RESET ALL")
        })
        const a = yield* intrans.use((conn) => Effect.succeed(pid(conn)))
        const b = yield* intrans.use((conn) => Effect.succeed(pid(conn)))
        expect(b).not.toBe(a)
        const broken = yield* ConnectionPool.make({
          conninfo: url,
          minSize: 1,
          name: "reset-broken",
          reset: (conn) => conn.execute("WAT")
        })
        const c = yield* broken.use((conn) => Effect.succeed(pid(conn)))
        const d = yield* broken.use((conn) => Effect.succeed(pid(conn)))
        expect(d).not.toBe(c)
      }))
      expect(logs.warnings("reset-intrans")[0]?.message).toContain("INTRANS")
      expect(logs.warnings("reset-broken")[0]?.message).toContain("WAT")
    })))

  it.effect("reset runs on each return (T50): the next client sees the reset session", () =>
    audited(quiet(Effect.gen(function*() {
      let resets = 0
      const pool = yield* ConnectionPool.make({
        conninfo: yield* TestDatabase.url,
        minSize: 1,
        reset: (conn) => Effect.andThen(Effect.sync(() => resets++), conn.execute("SET timezone TO 'UTC'"))
      })
      yield* pool.use((conn) => Effect.andThen(Effect.sync(() => expect(resets).toBe(0)), conn.execute("SET timezone TO '+2:00'")))
      expect(resets).toBe(1)
      const zone = yield* pool.use((conn) => conn.execute("SHOW timezone"))
      expect(zone.rows).toEqual([["UTC"]])
      expect(resets).toBe(2)
    }))))

  it.effect("F17: discardAll as reset clears settings, advisory locks and LISTEN before the next borrower", () =>
    scenario("f17_discard_all", (app) => quiet(Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const pool = yield* ConnectionPool.make({ conninfo: withApp(url, app), minSize: 1, reset: ConnectionPool.discardAll })
      const first = yield* pool.use((conn) =>
        Effect.gen(function*() {
          yield* conn.execute("SET application_name = 'dirty'")
          yield* conn.execute("SELECT pg_advisory_lock(4242)")
          yield* conn.execute("LISTEN some_channel")
          return pid(conn)
        })
      )
      yield* pool.use((conn) =>
        Effect.gen(function*() {
          expect(pid(conn)).toBe(first)
          expect((yield* conn.execute("SHOW application_name")).rows[0][0]).toBe(app)
          expect((yield* conn.execute("SELECT count(*)::int FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()")).rows).toEqual([[0]])
          expect((yield* conn.execute("SELECT count(*)::int FROM pg_listening_channels()")).rows).toEqual([[0]])
        })
      )
      yield* auditPool(pool, url, app)
    }))))

  it.effect("with autocommit off, the implicit transaction commits when the block succeeds and rolls back when it fails", () =>
    audited(quiet(Effect.gen(function*() {
      const pool = yield* ConnectionPool.make({ conninfo: yield* TestDatabase.url, minSize: 1, autocommit: false })
      yield* pool.use((conn) => conn.execute("CREATE TABLE ac_off (x int)"))
      yield* pool.use((conn) => conn.execute("INSERT INTO ac_off VALUES (1)"))
      yield* Effect.flip(pool.use((conn) => Effect.andThen(conn.execute("INSERT INTO ac_off VALUES (2)"), Effect.fail("no"))))
      const rows = yield* pool.use((conn) => conn.execute("SELECT x FROM ac_off ORDER BY x"))
      expect(rows.rows).toEqual([[1]])
    }))))
})
