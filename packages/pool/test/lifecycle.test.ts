/**
 * Pool life cycle: open/close/wait (T44), statistics (T43), configure,
 * check, reset and drain (T49, T50), interruption during check and rollback
 * (T47), leak detection (F25), lifetime with long transactions (F26), the
 * health-check fiber.
 */
import { expect, layer } from "@effect/vitest"
import type { Connection } from "@pgfx/core"
import { Cause, Deferred, Effect, Exit, Fiber } from "effect"
import { ConnectionPool } from "../src/index.ts"
import { jitter } from "../src/internal/backoff.ts"
import { TestDatabase } from "../../../test/harness.ts"
import {
  audited,
  auditPool,
  captureLogs,
  eventually,
  failureOf,
  observe,
  pid,
  quiet,
  scenario,
  sessions,
  timed,
  withApp
} from "./helpers.ts"

const terminate = (url: string, target: number) =>
  Effect.scoped(Effect.flatMap(observe(url), (o) => o.execute("SELECT pg_terminate_backend($1)", [target])))

layer(TestDatabase.layer, { excludeTestServices: true })("open, close, wait (T44)", (it) => {
  it.effect("closing fails the queued clients with PoolClosed while the holder finishes normally", () =>
    audited(quiet(Effect.gen(function*() {
      const pool = yield* ConnectionPool.make({ conninfo: yield* TestDatabase.url, minSize: 1, maxSize: 1 })
      yield* pool.wait()
      const got = yield* Deferred.make<void>()
      const proceed = yield* Deferred.make<void>()
      const w1 = yield* Effect.forkChild(pool.use((conn) =>
        Effect.gen(function*() {
          yield* Deferred.succeed(got, undefined)
          expect((yield* conn.execute("SELECT 1")).rows).toEqual([[1]])
          yield* Deferred.await(proceed)
          return "w1"
        })
      ))
      yield* Deferred.await(got)
      const w2 = yield* Effect.forkChild(Effect.exit(pool.use(() => Effect.void)))
      expect(yield* eventually(Effect.map(pool.stats, (s) => s.requests_waiting === 1))).toBe(true)
      yield* pool.close
      yield* Deferred.succeed(proceed, undefined)
      expect(yield* Fiber.join(w1)).toBe("w1")
      const error = failureOf(yield* Fiber.join(w2)) as { _tag: string; message: string }
      expect(error._tag).toBe("PoolClosed")
      expect(error.message).toContain("is closed")
    }))))

  it.effect("closing the pool inside a checkout closes that connection when it comes back", () =>
    audited(quiet(Effect.gen(function*() {
      const pool = yield* ConnectionPool.make({ conninfo: yield* TestDatabase.url, minSize: 1 })
      const conn = yield* pool.use((conn) => Effect.as(pool.close, conn))
      expect(conn.closed).toBe(true)
      expect(pool.closed).toBe(true)
    }))))

  it.effect("a pool made with open: false is not open yet; once closed it cannot be reopened", () =>
    audited(quiet(Effect.gen(function*() {
      const pool = yield* ConnectionPool.make({ conninfo: yield* TestDatabase.url, minSize: 1, open: false })
      expect(pool.closed).toBe(true)
      const notYet = yield* Effect.flip(pool.use(() => Effect.void))
      expect(notYet._tag).toBe("PoolClosed")
      expect(notYet.message).toContain("is not open yet")
      yield* pool.open()
      yield* pool.open() // idempotent
      expect(pool.closed).toBe(false)
      expect((yield* pool.use((conn) => conn.execute("SELECT 1"))).rows).toEqual([[1]])
      yield* pool.close
      yield* pool.close // idempotent
      const already = yield* Effect.flip(pool.use(() => Effect.void))
      expect(already.message).toContain("is already closed")
      const reopen = yield* Effect.flip(pool.open())
      expect(reopen._tag).toBe("PoolClosed")
      expect(reopen.message).toContain("cannot be reused")
      const wait = yield* Effect.flip(pool.wait())
      expect(wait._tag).toBe("PoolClosed")
    }))))

  it.effect("closing make's scope closes the pool and its connections", () =>
    audited(quiet(Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const watcher = yield* observe(url)
      const database = new URL(url).pathname.slice(1)
      const before = (yield* sessions(watcher, database)).length
      const pool = yield* Effect.scoped(Effect.gen(function*() {
        const pool = yield* ConnectionPool.make({ conninfo: url, minSize: 3 })
        yield* pool.wait()
        expect((yield* sessions(watcher, database)).length).toBe(before + 3)
        return pool
      }))
      expect(pool.closed).toBe(true)
      expect(yield* eventually(Effect.map(sessions(watcher, database), (s) => s.length === before))).toBe(true)
    }))))

  it.effect("wait times out, closes the pool and fails with PoolTimeout; more workers fill faster", () =>
    audited(quiet(Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const slow = Effect.as(Effect.sleep("200 millis"), url)
      const one = yield* ConnectionPool.make({ conninfo: slow, minSize: 4, numWorkers: 1 })
      const timedOut = yield* timed(one.wait("400 millis"))
      expect(failureOf(timedOut.exit)).toMatchObject({ _tag: "PoolTimeout", message: "pool initialization incomplete after 0.4 sec" })
      expect(one.closed).toBe(true)
      const two = yield* ConnectionPool.make({ conninfo: slow, minSize: 4, numWorkers: 2 })
      yield* two.wait("1500 millis")
      yield* two.wait(1) // idempotent once full
      const opened = yield* ConnectionPool.make({ conninfo: slow, minSize: 4, numWorkers: 4, open: false })
      yield* opened.open({ wait: true, timeout: "1500 millis" })
      expect((yield* opened.stats).pool_available).toBe(4)
    }))))
})

layer(TestDatabase.layer, { excludeTestServices: true })("statistics (T43)", (it) => {
  it.effect("counts requests, queueing, waiting and usage; popStats resets the counters", () =>
    audited(quiet(Effect.gen(function*() {
      const pool = yield* ConnectionPool.make({ conninfo: yield* TestDatabase.url, minSize: 3 })
      yield* pool.wait("2 seconds")
      yield* Effect.forEach(Array.from({ length: 7 }, (_, i) => i), () =>
        pool.use((conn) => conn.execute("SELECT pg_sleep(0.2)"), { timeout: "300 millis" }).pipe(
          Effect.catchTag("PoolTimeout", () => Effect.void)
        ), { concurrency: "unbounded" })
      const stats = yield* pool.stats
      expect(stats.requests_num).toBe(7)
      expect(stats.requests_queued).toBe(4)
      expect(stats.requests_errors).toBe(1)
      expect(stats.requests_wait_ms).toBeGreaterThanOrEqual(800)
      expect(stats.requests_wait_ms).toBeLessThanOrEqual(1100)
      expect(stats.usage_ms).toBeGreaterThanOrEqual(1150)
      expect(stats.usage_ms).toBeLessThanOrEqual(1500)
      expect(stats.returns_bad ?? 0).toBe(0)
      yield* pool.use((conn) => conn.close)
      yield* pool.wait()
      const popped = yield* pool.popStats
      expect(popped.requests_num).toBe(8)
      expect(popped.returns_bad).toBe(1)
      yield* pool.use(() => Effect.void)
      expect((yield* pool.stats).requests_num).toBe(1)
    }))))

  it.effect("measures size, availability and the queue while busy", () =>
    audited(quiet(Effect.gen(function*() {
      const pool = yield* ConnectionPool.make({ conninfo: yield* TestDatabase.url, minSize: 2, maxSize: 4 })
      yield* pool.wait("2 seconds")
      expect(yield* pool.stats).toMatchObject({ pool_min: 2, pool_max: 4, pool_size: 2, pool_available: 2, requests_waiting: 0 })
      const busy = (n: number) =>
        Effect.gen(function*() {
          const fiber = yield* Effect.forkChild(
            Effect.forEach(Array.from({ length: n }, (_, i) => i), () =>
              pool.use((conn) => conn.execute("SELECT pg_sleep(0.3)")), { concurrency: "unbounded" })
          )
          yield* Effect.sleep("150 millis")
          const stats = yield* pool.stats
          yield* Fiber.join(fiber)
          return stats
        })
      expect(yield* busy(3)).toMatchObject({ pool_size: 3, pool_available: 0, requests_waiting: 0 })
      yield* pool.wait("2 seconds")
      expect(yield* busy(7)).toMatchObject({ pool_size: 4, pool_available: 0, requests_waiting: 3 })
    }))))
})

layer(TestDatabase.layer, { excludeTestServices: true })("check, configure, reset, drain (T49, T50, T47, F1)", (it) => {
  it.effect("with check, a backend killed while idle is never served; no warnings; connections_lost 1 (T49)", () =>
    scenario("f1_check", (app) => Effect.gen(function*() {
      const logs = captureLogs()
      const url = yield* TestDatabase.url
      yield* logs.provide(Effect.gen(function*() {
        const pool = yield* ConnectionPool.make({
          conninfo: withApp(url, app),
          minSize: 2,
          check: ConnectionPool.checkConnection,
          name: "checked"
        })
        yield* pool.wait()
        const [pid1, pid2] = yield* Effect.scoped(Effect.gen(function*() {
          const a = yield* pool.connection
          const b = yield* Effect.scoped(Effect.map(pool.connection, pid))
          return [pid(a), b]
        }))
        yield* terminate(url, pid2)
        const pids = yield* Effect.scoped(Effect.gen(function*() {
          const a = yield* pool.connection
          const b = yield* pool.connection
          for (const c of [a, b]) {
            expect(c.info.transactionStatus).toBe("IDLE")
            yield* c.execute("SELECT 1")
          }
          return [pid(a), pid(b)]
        }))
        expect(pids).toContain(pid1)
        expect(pids).not.toContain(pid2)
        expect((yield* pool.stats).connections_lost).toBe(1)
        yield* auditPool(pool, url, app)
      }))
      expect(logs.warnings("checked")).toEqual([])
    })))

  it.effect("F1: without check, a backend killed while idle is detected from its socket and replaced, not served", () =>
    scenario("f1", (app) => quiet(Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const pool = yield* ConnectionPool.make({ conninfo: withApp(url, app), minSize: 2 })
      yield* pool.wait()
      const victim = yield* pool.use((conn) => Effect.succeed(pid(conn)))
      yield* terminate(url, victim)
      yield* Effect.sleep("100 millis")
      const pids = yield* Effect.scoped(Effect.gen(function*() {
        const a = yield* pool.connection
        const b = yield* pool.connection
        yield* a.execute("SELECT 1")
        yield* b.execute("SELECT 1")
        return [pid(a), pid(b)]
      }))
      expect(pids).not.toContain(victim)
      expect((yield* pool.stats).connections_lost).toBe(1)
      yield* pool.wait()
      expect((yield* pool.stats).pool_available).toBe(2)
      yield* auditPool(pool, url, app)
    }))))

  it.effect("check() replaces a connection closed behind the pool's back and keeps the others (T49)", () =>
    audited(Effect.gen(function*() {
      const logs = captureLogs()
      yield* logs.provide(Effect.gen(function*() {
        const pool = yield* ConnectionPool.make({ conninfo: yield* TestDatabase.url, minSize: 4, name: "checkall" })
        yield* pool.wait()
        const idlePids = Effect.scoped(Effect.forEach([0, 1, 2, 3], () => Effect.map(pool.connection, pid)))
        const conn = yield* pool.use((conn) => Effect.succeed(conn))
        const pids = new Set(yield* idlePids)
        expect(pids.has(pid(conn))).toBe(true)
        yield* conn.close
        expect(logs.warnings("checkall")).toEqual([])
        yield* pool.check
        expect(logs.warnings("checkall").length).toBe(1)
        yield* pool.wait()
        const after = new Set(yield* idlePids)
        expect([...after].filter((p) => pids.has(p)).length).toBe(3)
        expect(after.has(pid(conn))).toBe(false)
        expect((yield* pool.stats).connections_lost).toBe(1)
      }))
    })))

  it.effect("a check callback that fails (leaving a transaction open) ends in PoolTimeout; the connection stays IDLE (T49)", () =>
    audited(quiet(Effect.gen(function*() {
      let failing = true
      const pool = yield* ConnectionPool.make({
        conninfo: yield* TestDatabase.url,
        minSize: 1,
        check: (conn) =>
          failing ? Effect.andThen(conn.execute("BEGIN; SELECT 1"), Effect.fail("check failed")) : Effect.void,
        backoff: { initialDelay: "50 millis" }
      })
      yield* pool.wait()
      const outcome = yield* timed(pool.use(() => Effect.void, { timeout: "500 millis" }))
      expect(failureOf(outcome.exit)).toMatchObject({ _tag: "PoolTimeout" })
      expect(outcome.ms).toBeLessThan(900)
      failing = false
      yield* pool.use((conn) => Effect.sync(() => expect(conn.info.transactionStatus).toBe("IDLE")))
      expect((yield* pool.stats).pool_available).toBe(1)
    }))))

  it.effect("a check that always fails gives up at the client's deadline, retrying with backoff", () =>
    audited(Effect.gen(function*() {
      const logs = captureLogs()
      yield* logs.provide(Effect.gen(function*() {
        const pool = yield* ConnectionPool.make({
          conninfo: yield* TestDatabase.url,
          minSize: 1,
          name: "check-backoff",
          check: () => Effect.fail("nope"),
          backoff: { initialDelay: "100 millis", jitter: 0 }
        })
        yield* pool.wait()
        const outcome = yield* timed(pool.use(() => Effect.void, { timeout: "1 second" }))
        expect(failureOf(outcome.exit)).toMatchObject({ _tag: "PoolTimeout", message: "couldn't get a connection after 1.00 sec" })
        expect(outcome.ms).toBeGreaterThanOrEqual(950)
        expect(outcome.ms).toBeLessThan(1300)
      }))
      const times = logs.poolLines("check-backoff").filter((r) => r.message.includes("failed check")).map((r) => r.time)
      // psycopg's test_check_backoff: an immediate retry, then 0.1, 0.2, 0.4 s apart.
      expect(times[1] - times[0]).toBeLessThan(100)
      // The first three gaps double; a fourth retry may squeeze in before the
      // deadline when the machine is slow to run the timeout.
      const deltas = times.slice(1).map((t, i) => t - times[i]).slice(1, 4)
      expect(deltas.length).toBe(3)
      deltas.forEach((delta, i) => expect(Math.abs(delta - 100 * 2 ** i), `deltas ${deltas.join(",")}`).toBeLessThan(100))
    })))

  it.effect("an interruption raised by the check callback leaves the pool working (T47)", () =>
    audited(quiet(Effect.gen(function*() {
      let cancel = true
      const pool = yield* ConnectionPool.make({
        conninfo: yield* TestDatabase.url,
        minSize: 1,
        timeout: "1 second",
        check: (conn) => {
          if (cancel) {
            cancel = false
            return Effect.interrupt
          }
          return ConnectionPool.checkConnection(conn)
        }
      })
      const first = yield* Fiber.await(yield* Effect.forkChild(pool.use((conn) => conn.execute("SELECT 1"))))
      expect(Exit.isFailure(first) && Cause.hasInterruptsOnly(first.cause)).toBe(true)
      expect((yield* pool.use((conn) => conn.execute("SELECT 3"))).rows).toEqual([[3]])
      expect((yield* pool.stats).pool_available).toBe(1)
    }))))

  it.effect("interrupting a block inside a transaction cancels the statement and rolls back; the pool keeps working (T47)", () =>
    audited(quiet(Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const pool = yield* ConnectionPool.make({ conninfo: url, minSize: 1, timeout: "1 second" })
      yield* pool.use((conn) => conn.execute("CREATE TABLE t47 (x int)"))
      const outcome = yield* timed(pool.use((conn) =>
        Effect.andThen(conn.execute("BEGIN; INSERT INTO t47 VALUES (1)"), conn.execute("SELECT pg_sleep(5)"))
      ).pipe(Effect.timeout("200 millis")))
      expect(Exit.isFailure(outcome.exit)).toBe(true)
      expect(outcome.ms).toBeLessThan(1500)
      const rows = yield* pool.use((conn) => conn.execute("SELECT count(*)::int FROM t47"))
      expect(rows.rows).toEqual([[0]])
    }))))

  it.effect("configure runs once per connection; a replaced connection is configured again (T50)", () =>
    audited(quiet(Effect.gen(function*() {
      let inits = 0
      const pool = yield* ConnectionPool.make({
        conninfo: yield* TestDatabase.url,
        minSize: 1,
        configure: (conn) => Effect.andThen(Effect.sync(() => inits++), conn.execute("SET default_transaction_read_only TO on"))
      })
      yield* pool.wait("1 second")
      const show = (conn: Connection.Connection) =>
        Effect.map(conn.execute("SHOW default_transaction_read_only"), (r) => r.rows[0][0])
      expect(yield* pool.use(show)).toBe("on")
      expect(inits).toBe(1)
      expect(yield* pool.use((conn) => Effect.tap(show(conn), () => conn.close))).toBe("on")
      expect(inits).toBe(1)
      expect(yield* pool.use(show)).toBe("on")
      expect(inits).toBe(2)
    }))))

  it.effect("a configure that fails or leaves a transaction open never yields a connection; the warning says why", () =>
    audited(Effect.gen(function*() {
      const logs = captureLogs()
      const url = yield* TestDatabase.url
      yield* logs.provide(Effect.gen(function*() {
        const badstate = yield* ConnectionPool.make({ conninfo: url, minSize: 1, name: "cfg-intrans", configure: (conn) => conn.execute("BEGIN") })
        expect((yield* Effect.flip(badstate.wait("500 millis")))._tag).toBe("PoolTimeout")
        const broken = yield* ConnectionPool.make({ conninfo: url, minSize: 1, name: "cfg-broken", configure: (conn) => conn.execute("WAT") })
        expect((yield* Effect.flip(broken.wait("500 millis")))._tag).toBe("PoolTimeout")
      }))
      expect(logs.warnings("cfg-intrans")[0]?.message).toContain("INTRANS")
      expect(logs.warnings("cfg-broken")[0]?.message).toContain("WAT")
    })))

  it.effect("drain replaces every connection, those checked out included when they come back (T50)", () =>
    audited(quiet(Effect.gen(function*() {
      const pool = yield* ConnectionPool.make({ conninfo: yield* TestDatabase.url, minSize: 2 })
      yield* pool.wait()
      const two = Effect.scoped(Effect.gen(function*() {
        const a = yield* pool.connection
        const b = yield* pool.connection
        return new Set([pid(a), pid(b)])
      }))
      const pids1 = yield* Effect.scoped(Effect.gen(function*() {
        const a = yield* pool.connection
        const b = yield* pool.connection
        yield* pool.drain
        return new Set([pid(a), pid(b)])
      }))
      const pids2 = yield* two
      expect(pids2.size).toBe(2)
      expect([...pids2].filter((p) => pids1.has(p))).toEqual([])
      expect(yield* two).toEqual(pids2)
    }))))

  it.effect("max_lifetime retires connections when they come back, never while checked out (T49, F26)", () =>
    scenario("f26", (app) => quiet(Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const pool = yield* ConnectionPool.make({ conninfo: withApp(url, `${app}_short`), minSize: 1, maxLifetime: "200 millis" })
      yield* Effect.sleep("100 millis")
      const pids: Array<number> = []
      for (let i = 0; i < 5; i++) {
        pids.push(yield* pool.use((conn) => Effect.succeed(pid(conn))))
        yield* Effect.sleep("200 millis")
      }
      expect(pids[0]).toBe(pids[1])
      expect(pids[4]).not.toBe(pids[0])
      // F26: long transactions outlive max_lifetime untouched.
      const long = yield* ConnectionPool.make({ conninfo: withApp(url, app), minSize: 4, maxLifetime: "300 millis" })
      yield* long.use((conn) => conn.execute("CREATE TABLE f26 (x int)"))
      yield* Effect.forEach(Array.from({ length: 12 }, (_, i) => i), (i) =>
        long.use((conn) =>
          conn.transaction(Effect.gen(function*() {
            yield* conn.execute("INSERT INTO f26 VALUES ($1)", [i])
            yield* Effect.sleep("400 millis")
            yield* conn.execute("INSERT INTO f26 VALUES ($1)", [i])
          }))
        ), { concurrency: 6 })
      expect((yield* long.use((conn) => conn.execute("SELECT count(*)::int FROM f26"))).rows).toEqual([[24]])
      expect((yield* long.stats).returns_bad ?? 0).toBe(0)
      yield* auditPool(pool, url, `${app}_short`)
      yield* auditPool(long, url, app)
    }))))

  it.effect("check() replaces expired idle connections (T49)", () =>
    audited(quiet(Effect.gen(function*() {
      const pool = yield* ConnectionPool.make({ conninfo: yield* TestDatabase.url, minSize: 1, maxLifetime: "200 millis" })
      const first = yield* pool.use((conn) => Effect.succeed(pid(conn)))
      expect(yield* pool.use((conn) => Effect.succeed(pid(conn)))).toBe(first)
      yield* Effect.sleep("300 millis")
      yield* pool.check
      expect(yield* pool.use((conn) => Effect.succeed(pid(conn)))).not.toBe(first)
    }))))

  it.effect("expiry has up to 5% jitter so connections do not all expire together", () =>
    Effect.sync(() => {
      const values = Array.from({ length: 200 }, () => jitter(30, -0.1, 0.2))
      expect(Math.min(...values)).toBeGreaterThanOrEqual(27)
      expect(Math.min(...values)).toBeLessThanOrEqual(28)
      expect(Math.max(...values)).toBeGreaterThan(35)
      expect(Math.max(...values)).toBeLessThanOrEqual(36)
    }))
})

layer(TestDatabase.layer, { excludeTestServices: true })("health check and leak detection (F25)", (it) => {
  it.effect("the health-check fiber replaces a dead idle connection without any client asking, and stops with the pool", () =>
    scenario("f25_health", (app) => Effect.gen(function*() {
      const logs = captureLogs()
      const url = yield* TestDatabase.url
      yield* logs.provide(Effect.gen(function*() {
        const pool = yield* Effect.scoped(Effect.gen(function*() {
          const pool = yield* ConnectionPool.make({
            conninfo: withApp(url, app),
            minSize: 2,
            name: "health",
            healthCheck: { interval: "100 millis", timeout: "500 millis" }
          })
          yield* pool.wait()
          const victim = yield* pool.use((conn) => Effect.succeed(pid(conn)))
          yield* terminate(url, victim)
          expect(yield* eventually(Effect.map(pool.stats, (s) => s.connections_lost === 1 && s.pool_available === 2 && s.connections_num === 3))).toBe(true)
          const pids = yield* Effect.scoped(Effect.forEach([0, 1], () => Effect.map(pool.connection, pid)))
          expect(pids).not.toContain(victim)
          yield* auditPool(pool, url, app)
          return pool
        }))
        expect(pool.closed).toBe(true)
        const lines = logs.poolLines("health").length
        yield* Effect.sleep("300 millis")
        expect(logs.poolLines("health").length).toBe(lines)
      }))
      expect(logs.warnings("health").some((r) => r.message.includes("discarding broken connection"))).toBe(true)
    })))

  it.effect("warns about a connection held past leakDetectionThreshold, naming the borrower's span, and notes its return", () =>
    scenario("f25_leak", (app) => Effect.gen(function*() {
      const logs = captureLogs()
      const url = yield* TestDatabase.url
      yield* logs.provide(Effect.gen(function*() {
        const pool = yield* ConnectionPool.make({
          conninfo: withApp(url, app),
          minSize: 1,
          name: "leaky",
          leakDetectionThreshold: "100 millis"
        })
        yield* pool.use(() => Effect.sleep("30 millis"))
        expect(logs.warnings("leaky")).toEqual([])
        yield* pool.use(() => Effect.sleep("400 millis")).pipe(Effect.withSpan("leaky-handler"))
        yield* auditPool(pool, url, app)
      }))
      const warning = logs.warnings("leaky")
      expect(warning.length).toBe(1)
      expect(warning[0].message).toContain("leak")
      expect(warning[0].message).toContain("leaky-handler")
      expect(logs.poolLines("leaky").some((r) => r.message.includes("previously reported leaked connection"))).toBe(true)
    })))
})
