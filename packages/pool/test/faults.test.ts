/**
 * Faults a pool must survive (reliability.md F1, F4, F6, F17 and psycopg's
 * T48 reconnect cases): a server that goes away and comes back (through a
 * TCP proxy, psycopg's `proxy` fixture), half-open connections, a rollback
 * that cannot complete, and real server restarts under load on a throwaway
 * server.
 */
import { describe, expect, it, layer } from "@effect/vitest"
import { PgError } from "@pgfx/core"
import { Cause, Effect, Exit, Fiber } from "effect"
import { ConnectionPool, PoolError } from "../src/index.ts"
import { primaryTarget, TestDatabase, throwawayServer } from "../../../test/harness.ts"
import {
  appName,
  auditPool,
  captureLogs,
  eventually,
  failureOf,
  leakAudit,
  makeProxy,
  pid,
  quiet,
  scenario,
  timed,
  withApp
} from "./helpers.ts"

/** Short cancel/drain bounds so a blackholed connection is given up quickly. */
const fastGiveUp = { cancelTimeout: "200 millis", drainTimeout: "200 millis" } as const

layer(TestDatabase.layer, { excludeTestServices: true })("reconnecting (T48, F4 through a proxy)", (it) => {
  it.effect("reconnects with exponential backoff (0.1, 0.2, 0.4 s) and recovers once the server is back", () =>
    scenario("f4_backoff", (app) => Effect.gen(function*() {
      const logs = captureLogs()
      const url = yield* TestDatabase.url
      yield* logs.provide(Effect.gen(function*() {
        const proxy = yield* makeProxy(url)
        const pool = yield* ConnectionPool.make({
          conninfo: proxy.via(withApp(url, app)),
          minSize: 1,
          name: "reconnect",
          backoff: { initialDelay: "100 millis", jitter: 0 }
        })
        yield* pool.wait("2 seconds")
        yield* proxy.stop
        yield* Effect.sleep("50 millis")
        const failed = yield* Effect.exit(pool.use((conn) => conn.execute("SELECT 1"), { timeout: "300 millis" }))
        expect(Exit.isFailure(failed)).toBe(true)
        yield* Effect.sleep("1 second")
        yield* proxy.start
        yield* pool.wait("3 seconds")
        expect((yield* pool.use((conn) => conn.execute("SELECT 1"))).rows).toEqual([[1]])
        yield* auditPool(pool, url, app)
      }))
      const times = logs.warnings("reconnect").filter((r) => r.message.startsWith("error connecting")).map((r) => r.time)
      expect(times.length).toBe(4)
      const deltas = times.slice(1).map((t, i) => t - times[i])
      deltas.forEach((delta, i) => expect(Math.abs(delta - 100 * 2 ** i), `deltas ${deltas.join(",")}`).toBeLessThan(100))
    })))

  it.effect("gives up after reconnect_timeout, calls reconnect_failed with the pool, then serves on demand", () =>
    scenario("f4_give_up", (app) => quiet(Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const proxy = yield* makeProxy(url)
      let failedAt = 0
      let failedName = ""
      const pool = yield* ConnectionPool.make({
        conninfo: proxy.via(withApp(url, app)),
        name: "this-one",
        minSize: 1,
        reconnectTimeout: "1 second",
        reconnectFailed: (p) => {
          failedAt = Date.now()
          failedName = p.name
        }
      })
      yield* pool.wait("2 seconds")
      yield* proxy.stop
      yield* Effect.sleep("50 millis")
      const started = Date.now()
      yield* Effect.exit(pool.use((conn) => conn.execute("SELECT 1"), { timeout: "200 millis" }))
      yield* Effect.sleep("1500 millis")
      expect(failedName).toBe("this-one")
      expect(Math.abs(failedAt - started - 1000)).toBeLessThan(250)
      expect((yield* pool.stats).pool_size).toBe(0)
      yield* proxy.start
      const served = yield* timed(pool.use((conn) => conn.execute("SELECT 1")))
      expect(Exit.isSuccess(served.exit)).toBe(true)
      expect(served.ms).toBeLessThan(500)
      yield* auditPool(pool, url, app)
    }))))

  it.effect("retries after a failed growth attempt (psycopg #370) and fills back to min_size", () =>
    scenario("f4_growth", (app) => quiet(Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const proxy = yield* makeProxy(url)
      yield* proxy.stop
      let failures = 0
      const pool = yield* ConnectionPool.make({
        conninfo: proxy.via(withApp(url, app)),
        minSize: 4,
        reconnectTimeout: "1 second",
        reconnectFailed: () => {
          failures++
        }
      })
      expect(yield* eventually(Effect.sync(() => failures >= 4), 3000)).toBe(true)
      const timedOut = yield* Effect.flip(pool.use(() => Effect.void, { timeout: "500 millis" }))
      expect(timedOut._tag).toBe("PoolTimeout")
      expect(yield* eventually(Effect.sync(() => failures >= 5), 3000)).toBe(true)
      yield* proxy.start
      expect((yield* pool.use((conn) => conn.execute("SELECT 1"), { timeout: "2 seconds" })).rows).toEqual([[1]])
      yield* pool.wait("3 seconds")
      expect((yield* pool.stats).pool_available).toBe(4)
      yield* auditPool(pool, url, app)
    }))))

  it.effect("check() refills a pool emptied by failed reconnections", () =>
    scenario("f4_check_refill", (app) => quiet(Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const proxy = yield* makeProxy(url)
      let failures = 0
      const pool = yield* ConnectionPool.make({
        conninfo: proxy.via(withApp(url, app)),
        minSize: 4,
        reconnectTimeout: "1 second",
        reconnectFailed: () => {
          failures++
        }
      })
      yield* pool.wait("2 seconds")
      yield* proxy.stop
      yield* pool.check
      expect(yield* eventually(Effect.sync(() => failures >= 4), 3000)).toBe(true)
      expect((yield* pool.stats).pool_available).toBe(0)
      expect((yield* pool.stats).connections_lost).toBe(4)
      yield* proxy.start
      yield* pool.check
      yield* pool.wait("2 seconds")
      expect((yield* pool.stats).pool_available).toBe(4)
      yield* auditPool(pool, url, app)
    }))))

  it.effect("starts without a server: wait times out; once the server is up, the pool serves (test_setup_no_timeout)", () =>
    scenario("f4_no_server", (app) => quiet(Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const proxy = yield* makeProxy(url)
      yield* proxy.stop
      // the first pool is closed by its failed wait; the second is the one audited
      const first = yield* ConnectionPool.make({ conninfo: proxy.via(withApp(url, `${app}_first`)), minSize: 1, numWorkers: 1 })
      expect((yield* Effect.flip(first.wait("200 millis")))._tag).toBe("PoolTimeout")
      const second = yield* ConnectionPool.make({ conninfo: proxy.via(withApp(url, app)), minSize: 1, numWorkers: 1 })
      yield* Effect.sleep("500 millis")
      expect((yield* second.stats).pool_available).toBe(0)
      yield* proxy.start
      expect((yield* second.use((conn) => conn.execute("SELECT 1"))).rows).toEqual([[1]])
      const stats = yield* second.stats
      expect(stats.connections_errors).toBeGreaterThan(0)
      expect(stats.connections_num).toBeGreaterThan(stats.connections_errors ?? 0)
      yield* auditPool(second, url, app)
      expect(first.closed).toBe(true)
      yield* leakAudit(url, `${app}_first`)
    }))))

  it.effect("with check, a server that went away ends in PoolTimeout at the deadline, then recovers", () =>
    scenario("f4_check_deadline", (app) => quiet(Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const proxy = yield* makeProxy(url)
      const pool = yield* ConnectionPool.make({
        conninfo: proxy.via(withApp(url, app)),
        minSize: 1,
        timeout: "1 second",
        check: ConnectionPool.checkConnection
      })
      yield* pool.wait()
      yield* proxy.stop
      const outcome = yield* timed(pool.use(() => Effect.void))
      expect(failureOf(outcome.exit)).toMatchObject({ _tag: "PoolTimeout" })
      expect(outcome.ms).toBeGreaterThanOrEqual(990)
      expect(outcome.ms).toBeLessThan(1300)
      yield* proxy.start
      expect((yield* pool.use((conn) => conn.execute("SELECT 1"), { timeout: "10 seconds" })).rows).toEqual([[1]])
      yield* auditPool(pool, url, app)
    }))))
})

layer(TestDatabase.layer, { excludeTestServices: true })("half-open connections (F6, F17)", (it) => {
  it.effect("F6: a check stuck on a half-open connection does not hold the client past its deadline", () =>
    scenario("f6_check", (app) => quiet(Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const proxy = yield* makeProxy(url)
      const pool = yield* ConnectionPool.make({
        ...fastGiveUp,
        conninfo: proxy.via(withApp(url, app)),
        minSize: 1,
        maxSize: 1,
        check: ConnectionPool.checkConnection
      })
      yield* pool.wait()
      yield* proxy.blackhole
      const outcome = yield* timed(pool.use(() => Effect.void, { timeout: "400 millis" }))
      expect(failureOf(outcome.exit)).toMatchObject({ _tag: "PoolTimeout" })
      expect(outcome.ms).toBeLessThan(700)
      // the network comes back: the pool serves again through the healthy path
      yield* proxy.stop
      yield* proxy.start
      yield* auditPool(pool, url, app)
    }))))

  it.effect("F6: a health check stuck on a half-open connection does not block acquisition; interrupting a waiter works", () =>
    scenario("f6_health", (app) => quiet(Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const proxy = yield* makeProxy(url)
      const pool = yield* ConnectionPool.make({
        ...fastGiveUp,
        conninfo: proxy.via(withApp(url, app)),
        minSize: 1,
        maxSize: 1,
        healthCheck: { interval: "50 millis", timeout: "10 seconds" }
      })
      yield* pool.wait()
      yield* proxy.blackhole
      yield* Effect.sleep("150 millis") // the health check now holds the only connection, stuck
      const outcome = yield* timed(pool.use(() => Effect.void, { timeout: "300 millis" }))
      expect(failureOf(outcome.exit)).toMatchObject({ _tag: "PoolTimeout" })
      expect(outcome.ms).toBeLessThan(600)
      const waiter = yield* Effect.forkChild(pool.use(() => Effect.void, { timeout: "10 seconds" }))
      yield* Effect.sleep("100 millis")
      const interrupted = yield* timed(Fiber.interrupt(waiter))
      expect(interrupted.ms).toBeLessThan(200)
      expect((yield* pool.stats).requests_waiting).toBe(0)
      yield* proxy.stop
      yield* proxy.start
      yield* auditPool(pool, url, app)
    }))))

  it.effect("a statement timing out on a half-open connection returns at its deadline; the connection is replaced afterwards", () =>
    scenario("deadline_halfopen", (app) => quiet(Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const proxy = yield* makeProxy(url)
      const pool = yield* ConnectionPool.make({
        cancelTimeout: "600 millis",
        drainTimeout: "600 millis",
        conninfo: proxy.via(withApp(url, app)),
        minSize: 1,
        maxSize: 1
      })
      yield* pool.wait()
      const before = yield* pool.use((conn) => Effect.succeed(pid(conn)))
      yield* proxy.blackhole
      const outcome = yield* timed(pool.use((conn) => conn.execute("SELECT 1")).pipe(Effect.timeout("150 millis")))
      expect(Cause.pretty((outcome.exit as Exit.Failure<unknown, unknown>).cause)).toContain("TimeoutError")
      // the deadline, not deadline + cancelTimeout: the cancel goes on in the background
      expect(outcome.ms).toBeLessThan(150 + 250)
      // meanwhile the connection is not lent out: the only one is still being cleaned up
      const meanwhile = yield* timed(pool.use(() => Effect.void, { timeout: "200 millis" }))
      expect(failureOf(meanwhile.exit)).toMatchObject({ _tag: "PoolTimeout" })
      yield* proxy.stop
      yield* proxy.start
      // the cancel could not be sent: the connection was retired and replaced
      const after = yield* pool.use((conn) => Effect.succeed(pid(conn)), { timeout: "5 seconds" })
      expect(after).not.toBe(before)
      yield* auditPool(pool, url, app)
    }))))

  it.effect("a timed-out statement on a healthy network: the caller returns at once, the connection comes back after its cancel", () =>
    scenario("deadline_healthy", (app) => Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const pool = yield* ConnectionPool.make({ conninfo: withApp(url, app), minSize: 1, maxSize: 1 })
      yield* pool.wait()
      const first = yield* pool.use((conn) => Effect.succeed(pid(conn)))
      const outcome = yield* timed(pool.use((conn) => conn.execute("SELECT pg_sleep(5)")).pipe(Effect.timeout("100 millis")))
      expect(Exit.isFailure(outcome.exit)).toBe(true)
      expect(outcome.ms).toBeLessThan(100 + 250)
      // the next borrower gets the same session once its cancel is confirmed, and never sees its 57014
      const next = yield* pool.use((conn) =>
        Effect.map(conn.execute("SELECT pg_backend_pid(), 1"), (result) => [result.rows[0][0], conn.info.transactionStatus])
      )
      expect(next).toEqual([first, "IDLE"])
      expect((yield* pool.stats).returns_bad ?? 0).toBe(0)
      yield* auditPool(pool, url, app)
    })))

  it.effect("a rollback that cannot complete (half-open) discards the connection: warnings INTRANS, rollback failed, BAD (T42)", () =>
    scenario("f17_half_open", (app) => Effect.gen(function*() {
      const logs = captureLogs()
      const url = yield* TestDatabase.url
      yield* logs.provide(Effect.gen(function*() {
        const proxy = yield* makeProxy(url)
        const pool = yield* ConnectionPool.make({
          ...fastGiveUp,
          conninfo: proxy.via(withApp(url, app)),
          minSize: 1,
          name: "failrollback",
          cleanupTimeout: "300 millis",
          backoff: { initialDelay: "50 millis" }
        })
        const first = yield* pool.use((conn) =>
          Effect.gen(function*() {
            yield* conn.execute("BEGIN")
            yield* proxy.blackhole
            return pid(conn)
          })
        )
        expect((yield* pool.stats).returns_bad).toBe(1)
        yield* proxy.stop
        yield* proxy.start
        const second = yield* pool.use((conn) =>
          Effect.sync(() => {
            expect(conn.info.transactionStatus).toBe("IDLE")
            return pid(conn)
          }), { timeout: "5 seconds" })
        expect(second).not.toBe(first)
        yield* auditPool(pool, url, app)
      }))
      const warnings = logs.warnings("failrollback").map((r) => r.message)
      expect(warnings.slice(0, 3).map((w) => w.split(":")[0])).toEqual([
        "rolling back returned connection",
        "rollback failed",
        "discarding closed connection"
      ])
      expect(warnings[0]).toContain("INTRANS")
      expect(warnings[2]).toContain("BAD")
    })))
})

const isTyped = (error: unknown) => PoolError.isPoolError(error) || PgError.isPgError(error)

if (primaryTarget()) {
  describe("server restarts under load (F4, throwaway server)", () => {
    it.live("fast restart under 50 concurrent clients: typed errors only, nothing hangs past its timeout, back to min_size", () =>
      Effect.gen(function*() {
        const server = yield* throwawayServer()
        const app = appName("f4_restart_fast")
        yield* Effect.gen(function*() {
          const pool = yield* quiet(ConnectionPool.make({ conninfo: withApp(server.url, app), minSize: 4, maxSize: 8, timeout: "2 seconds", name: "restart" }))
          yield* quiet(pool.wait("5 seconds"))
          const durations: Array<number> = []
          const errors: Array<unknown> = []
          let ok = 0
          const deadline = Date.now() + 5000
          const client = Effect.gen(function*() {
            while (Date.now() < deadline) {
              const result = yield* timed(pool.use((conn) => conn.execute("SELECT 1, pg_sleep(0.01)")))
              durations.push(result.ms)
              if (Exit.isSuccess(result.exit)) ok++
              else {
                errors.push(Cause.squash(result.exit.cause))
                yield* Effect.sleep("20 millis")
              }
            }
          })
          const load = yield* Effect.forkChild(quiet(Effect.forEach(Array.from({ length: 50 }, (_, i) => i), () => client, { concurrency: "unbounded" })))
          yield* Effect.sleep("700 millis")
          yield* server.restart
          yield* Fiber.join(load)
          expect(ok).toBeGreaterThan(50)
          expect(errors.length).toBeGreaterThan(0)
          expect(errors.filter((e) => !isTyped(e))).toEqual([])
          expect(Math.max(...durations)).toBeLessThan(2000 + 1000)
          yield* quiet(pool.wait("10 seconds"))
          const stats = yield* pool.stats
          // Grown under load (max 8), so at least min_size, all idle and working.
          expect(stats.pool_available).toBeGreaterThanOrEqual(4)
          expect(stats.pool_available).toBe(stats.pool_size)
          expect((yield* pool.use((conn) => conn.execute("SELECT 1"))).rows).toEqual([[1]])
          yield* quiet(auditPool(pool, server.url, app))
        }).pipe(Effect.scoped)
        yield* leakAudit(server.url, app)
      }).pipe(Effect.scoped), 60_000)

    it.live("immediate shutdown: reconnect_failed fires while the server stays down; throughput recovers after start", () =>
      Effect.gen(function*() {
        const server = yield* throwawayServer()
        const app = appName("f4_restart_immediate")
        yield* Effect.gen(function*() {
          let failed = 0
          const pool = yield* quiet(ConnectionPool.make({
            conninfo: withApp(server.url, app),
            minSize: 2,
            timeout: "500 millis",
            reconnectTimeout: "1 second",
            reconnectFailed: () => {
              failed++
            }
          }))
          yield* quiet(pool.wait("5 seconds"))
          yield* server.kill()
          const during = yield* Effect.forEach([0, 1, 2, 3], () =>
            timed(quiet(pool.use((conn) => conn.execute("SELECT 1")))), { concurrency: "unbounded" })
          for (const r of during) {
            expect(Exit.isFailure(r.exit)).toBe(true)
            expect(isTyped(failureOf(r.exit))).toBe(true)
            expect(r.ms).toBeLessThan(1500)
          }
          expect(yield* eventually(Effect.sync(() => failed >= 1), 4000)).toBe(true)
          yield* server.start
          const after = yield* quiet(pool.use((conn) => conn.execute("SELECT 1"), { timeout: "5 seconds" }))
          expect(after.rows).toEqual([[1]])
          yield* quiet(pool.check)
          yield* quiet(pool.wait("10 seconds"))
          expect((yield* pool.stats).pool_available).toBe(2)
          yield* quiet(auditPool(pool, server.url, app))
        }).pipe(Effect.scoped)
        yield* leakAudit(server.url, app)
      }).pipe(Effect.scoped), 60_000)
  })
}
