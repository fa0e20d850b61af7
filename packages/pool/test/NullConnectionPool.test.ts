/**
 * NullConnectionPool (psycopg.md §1.16, T51, and the common pool cases that
 * psycopg also runs on the null pool).
 */
import { expect, layer } from "@effect/vitest"
import type { Connection } from "@pgfx/core"
import { Effect, Exit, Fiber } from "effect"
import { ConnectionPool, NullConnectionPool } from "../src/index.ts"
import { TestDatabase } from "../../../test/harness.ts"
import { audited, captureLogs, eventually, failureOf, makeProxy, observe, pid, quiet, sessions, timed } from "./helpers.ts"

/** Holds a connection while `worker` queues for it, so the same connection is handed over. */
const handOver = <A, E>(pool: ConnectionPool.ConnectionPool, inside: (conn: Connection.Connection) => Effect.Effect<void, E>, worker: Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    let fiber: Fiber.Fiber<A, E> | undefined
    const first = yield* pool.use((conn) =>
      Effect.gen(function*() {
        fiber = yield* Effect.forkChild(worker)
        expect(yield* eventually(Effect.map(pool.stats, (s) => s.requests_waiting === 1))).toBe(true)
        yield* inside(conn)
        return pid(conn)
      })
    )
    return [first, yield* Fiber.join(fiber!)] as const
  })

layer(TestDatabase.layer, { excludeTestServices: true })("NullConnectionPool (T51)", (it) => {
  it.effect("has sizes 0/0 by default (0 = unlimited) and refuses min_size > 0 and bad sizes", () =>
    Effect.gen(function*() {
      const sizes = yield* Effect.scoped(Effect.map(NullConnectionPool.make({ open: false }), (p) => [p.minSize, p.maxSize]))
      expect(sizes).toEqual([0, 0])
      const two = yield* Effect.scoped(Effect.map(NullConnectionPool.make({ maxSize: 2, open: false }), (p) => [p.minSize, p.maxSize]))
      expect(two).toEqual([0, 2])
      for (const [min, max] of [[1, undefined], [-1, undefined], [0, -2]] as const) {
        expect((yield* Effect.flip(Effect.scoped(NullConnectionPool.make({ minSize: min, maxSize: max }))))._tag).toBe("PoolConfigError")
      }
    }))

  it.effect("is no pool at all: every request gets a new backend, closed after use", () =>
    audited(quiet(Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const watcher = yield* observe(url)
      const database = new URL(url).pathname.slice(1)
      const pool = yield* NullConnectionPool.make({ conninfo: url, maxSize: 2 })
      const [pid1, pid2, held] = yield* Effect.scoped(Effect.gen(function*() {
        const a = yield* pool.connection
        const b = yield* pool.connection
        return [pid(a), pid(b), a] as const
      }))
      expect(held.closed).toBe(true)
      const pid3 = yield* pool.use((conn) => Effect.succeed(pid(conn)))
      expect([pid1, pid2]).not.toContain(pid3)
      expect(yield* eventually(Effect.map(sessions(watcher, database), (s) => s.length === 0))).toBe(true)
      const stats = yield* pool.stats
      expect(stats).toMatchObject({ pool_min: 0, pool_max: 2, pool_size: 0, pool_available: 0, connections_num: 3 })
      yield* pool.check // a no-op
    }))))

  it.effect("queues beyond max_size and times out like the normal pool (T40)", () =>
    audited(quiet(Effect.gen(function*() {
      const pool = yield* NullConnectionPool.make({ conninfo: yield* TestDatabase.url, maxSize: 2, timeout: 100 })
      const results = yield* Effect.forEach([0, 1, 2, 3], () =>
        timed(pool.use((conn) => conn.execute("SELECT pg_sleep(0.2)"))), { concurrency: "unbounded" })
      expect(results.filter((r) => Exit.isSuccess(r.exit)).length).toBe(2)
      const failed = results.filter((r) => Exit.isFailure(r.exit))
      expect(failed.length).toBe(2)
      for (const r of failed) {
        expect(failureOf(r.exit)).toMatchObject({ _tag: "PoolTimeout" })
        expect(r.ms).toBeLessThan(300)
      }
    }))))

  it.effect("a queued client gets the returned connection, reset once (T51)", () =>
    audited(quiet(Effect.gen(function*() {
      let resets = 0
      const pool = yield* NullConnectionPool.make({
        conninfo: yield* TestDatabase.url,
        maxSize: 1,
        reset: (conn) => Effect.andThen(Effect.sync(() => resets++), conn.execute("SET timezone TO 'UTC'"))
      })
      const [first, second] = yield* handOver(
        pool,
        (conn) => Effect.asVoid(conn.execute("SET timezone TO '+2:00'")),
        pool.use((conn) =>
          Effect.gen(function*() {
            expect(resets).toBe(1)
            expect((yield* conn.execute("SHOW timezone")).rows).toEqual([["UTC"]])
            return pid(conn)
          })
        )
      )
      expect(second).toBe(first)
      expect(resets).toBe(1)
    }))))

  it.effect("a reset that fails or leaves a transaction open makes the waiter get a new connection", () =>
    audited(Effect.gen(function*() {
      const logs = captureLogs()
      const url = yield* TestDatabase.url
      yield* logs.provide(Effect.gen(function*() {
        for (const [name, reset] of [
          ["null-reset-intrans", (conn: Connection.Connection) => conn.execute("BEGIN; RESET ALL")],
          ["null-reset-broken", (conn: Connection.Connection) => conn.execute("WAT")]
        ] as const) {
          const pool = yield* NullConnectionPool.make({ conninfo: url, maxSize: 1, name, reset })
          const [a, b] = yield* handOver(pool, () => Effect.void, pool.use((conn) => Effect.succeed(pid(conn))))
          expect(b).not.toBe(a)
        }
      }))
      expect(logs.warnings("null-reset-intrans")[0]?.message).toContain("INTRANS")
      expect(logs.warnings("null-reset-broken")[0]?.message).toContain("WAT")
    })))

  it.effect("a connection handed over in a transaction is rolled back first: same pid, IDLE, one INTRANS warning", () =>
    audited(Effect.gen(function*() {
      const logs = captureLogs()
      yield* logs.provide(Effect.gen(function*() {
        const pool = yield* NullConnectionPool.make({ conninfo: yield* TestDatabase.url, maxSize: 1, name: "null-intrans" })
        const [a, b] = yield* handOver(
          pool,
          (conn) => Effect.asVoid(conn.execute("BEGIN; CREATE TABLE test_intrans_rollback ()")),
          pool.use((conn) =>
            Effect.gen(function*() {
              expect(conn.info.transactionStatus).toBe("IDLE")
              expect((yield* conn.execute("SELECT 1 FROM pg_class WHERE relname = 'test_intrans_rollback'")).rows).toEqual([])
              return pid(conn)
            })
          )
        )
        expect(b).toBe(a)
      }))
      const warnings = logs.warnings("null-intrans")
      expect(warnings.length).toBe(1)
      expect(warnings[0].message).toContain("INTRANS")
    })))

  it.effect("configure runs on every new connection", () =>
    audited(quiet(Effect.gen(function*() {
      let inits = 0
      const pool = yield* NullConnectionPool.make({
        conninfo: yield* TestDatabase.url,
        configure: (conn) => Effect.andThen(Effect.sync(() => inits++), conn.execute("SET default_transaction_read_only TO on"))
      })
      for (const expected of [1, 2, 3]) {
        const value = yield* pool.use((conn) => Effect.map(conn.execute("SHOW default_transaction_read_only"), (r) => r.rows[0][0]))
        expect(value).toBe("on")
        expect(inits).toBe(expected)
      }
    }))))

  it.effect("wait opens one test connection; it times out (closing the pool) when connecting is too slow", () =>
    audited(quiet(Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const slow = Effect.as(Effect.sleep("200 millis"), url)
      const tooSlow = yield* NullConnectionPool.make({ conninfo: slow })
      expect(failureOf(yield* Effect.exit(tooSlow.wait("100 millis")))).toMatchObject({ _tag: "PoolTimeout" })
      expect(tooSlow.closed).toBe(true)
      const fine = yield* NullConnectionPool.make({ conninfo: slow })
      yield* fine.wait("1 second")
      expect((yield* fine.stats).pool_size).toBe(0)
    }))))

  it.effect("a client connecting to a deaf server gets PoolTimeout at its deadline", () =>
    audited(quiet(Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const proxy = yield* makeProxy(url)
      const pool = yield* NullConnectionPool.make({ conninfo: proxy.via(url) })
      yield* proxy.blackhole
      const outcome = yield* timed(pool.use(() => Effect.void, { timeout: "500 millis" }))
      expect(failureOf(outcome.exit)).toMatchObject({ _tag: "PoolTimeout" })
      expect(outcome.ms).toBeLessThan(800)
      expect((yield* pool.stats).pool_size).toBe(0)
      yield* proxy.stop
    }))))

  it.effect("interrupted clients leak nothing (T45 on the null pool)", () =>
    audited(quiet(Effect.gen(function*() {
      const pool = yield* NullConnectionPool.make({ conninfo: yield* TestDatabase.url, maxSize: 3, timeout: "1 second" })
      let got = 0
      const fibers = yield* Effect.forEach(Array.from({ length: 9 }, (_, i) => i), () =>
        Effect.forkChild(pool.use(() => Effect.andThen(Effect.sync(() => got++), Effect.sleep("5 seconds")))))
      expect(yield* eventually(Effect.map(pool.stats, (s) => got === 3 && s.requests_waiting === 6))).toBe(true)
      yield* Effect.forEach(fibers, (f) => Fiber.interrupt(f), { discard: true })
      expect(yield* pool.stats).toMatchObject({ pool_size: 0, pool_available: 0, requests_waiting: 0 })
      expect((yield* pool.use((conn) => conn.execute("SELECT 1"))).rows).toEqual([[1]])
    }))))

  it.effect("provides the same ConnectionPool service, so layers are interchangeable", () =>
    audited(quiet(Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const program = Effect.flatMap(ConnectionPool.ConnectionPool, (pool) => pool.use((conn) => conn.execute("SELECT 42")))
      const viaNull = yield* Effect.provide(program, NullConnectionPool.layer({ conninfo: url }))
      const viaPool = yield* Effect.provide(program, ConnectionPool.layer({ conninfo: url, minSize: 1 }))
      expect(viaNull.rows).toEqual([[42]])
      expect(viaPool.rows).toEqual([[42]])
    }))))
})
