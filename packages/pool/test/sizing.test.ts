/**
 * Growing, shrinking and resizing (T48, psycopg's test_grow / test_shrink /
 * test_resize / test_spike).
 */
import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { ConnectionPool } from "../src/index.ts"
import { TestDatabase } from "../../../test/harness.ts"
import { audited, captureLogs, eventually, quiet } from "./helpers.ts"

/**
 * psycopg's `delay_connection`: every connection attempt takes at least `ms`
 * in total (the conninfo effect notes the start, `configure` sleeps the rest).
 */
const delayed = (url: string, ms: number) => {
  const starts: Array<number> = []
  return {
    conninfo: Effect.sync(() => {
      starts.push(Date.now())
      return url
    }),
    configure: () => Effect.suspend(() => Effect.sleep(Math.max(0, ms - (Date.now() - (starts.shift() ?? Date.now())))))
  }
}

layer(TestDatabase.layer, { excludeTestServices: true })("growing and shrinking (T48)", (it) => {
  it.effect("grows one connection at a time while clients wait (min 2, max 4, 100 ms connections)", () =>
    audited(quiet(Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const pool = yield* ConnectionPool.make({ ...delayed(url, 100), minSize: 2, maxSize: 4 })
      yield* pool.wait("2 seconds")
      const started = Date.now()
      const times = yield* Effect.forEach(Array.from({ length: 8 }, (_, i) => i), () =>
        pool.use((conn) => Effect.as(conn.execute("SELECT 1 FROM pg_sleep(0.25)"), 0)).pipe(
          Effect.map(() => Date.now() - started)
        ), { concurrency: "unbounded" })
      const want = [250, 250, 350, 450, 500, 500, 600, 700]
      const got = times.slice().sort((a, b) => a - b)
      got.forEach((t, i) => expect(Math.abs(t - want[i]), `times ${got.join(",")}`).toBeLessThan(120))
      const stats = yield* pool.stats
      expect(stats.pool_size).toBe(4)
      expect(stats.connections_num).toBe(4)
    }))))

  it.effect("grows from zero (min 0, max 4)", () =>
    audited(quiet(Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const pool = yield* ConnectionPool.make({ ...delayed(url, 100), minSize: 0, maxSize: 4 })
      yield* pool.wait()
      expect((yield* pool.stats).pool_size).toBe(0)
      const started = Date.now()
      const times = yield* Effect.forEach(Array.from({ length: 8 }, (_, i) => i), () =>
        pool.use((conn) => conn.execute("SELECT 1 FROM pg_sleep(0.25)")).pipe(Effect.map(() => Date.now() - started)), {
        concurrency: "unbounded"
      })
      const want = [350, 450, 550, 600, 650, 700, 800, 850]
      const got = times.slice().sort((a, b) => a - b)
      got.forEach((t, i) => expect(Math.abs(t - want[i]), `times ${got.join(",")}`).toBeLessThan(120))
    }))))

  it.effect("shrinks one idle connection per max_idle period down to min_size", () =>
    audited(Effect.gen(function*() {
      const logs = captureLogs()
      yield* logs.provide(Effect.gen(function*() {
        const pool = yield* ConnectionPool.make({
          conninfo: yield* TestDatabase.url,
          minSize: 2,
          maxSize: 4,
          maxIdle: "200 millis",
          name: "shrinker"
        })
        yield* pool.wait("5 seconds")
        expect(pool.maxIdle).toEqual(expect.anything())
        yield* Effect.forEach([0, 1, 2, 3], () => pool.use((conn) => conn.execute("SELECT pg_sleep(0.1)")), {
          concurrency: "unbounded"
        })
        expect((yield* pool.stats).pool_size).toBe(4)
        yield* Effect.sleep("1 second")
        expect((yield* pool.stats).pool_size).toBe(2)
      }))
      const shrinks = logs.poolLines("shrinker").filter((r) => r.message.startsWith("shrinking pool"))
      expect(shrinks.map((r) => r.message.match(/to (\d+)/)?.[1])).toEqual(["3", "2"])
      // psycopg: [(4,4), (4,3), (3,2), (2,2), (2,2)] — never two in one period.
      expect(shrinks[1].time - shrinks[0].time).toBeGreaterThanOrEqual(150)
    })))

  it.effect("after a spike the pool settles back instead of keeping every connection (test_spike)", () =>
    audited(quiet(Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const pool = yield* ConnectionPool.make({ ...delayed(url, 150), minSize: 5, maxSize: 10 })
      yield* pool.wait("5 seconds")
      yield* Effect.forEach(Array.from({ length: 50 }, (_, i) => i), () => pool.use(() => Effect.sleep("2 millis")), {
        concurrency: "unbounded"
      })
      yield* pool.wait("5 seconds")
      expect((yield* pool.stats).pool_available).toBeLessThan(7)
    }))))

  it.effect("resize: a larger min connects at once, a smaller one shrinks gradually; bad sizes are refused", () =>
    audited(quiet(Effect.gen(function*() {
      const pool = yield* ConnectionPool.make({ conninfo: yield* TestDatabase.url, minSize: 2, maxIdle: "200 millis" })
      yield* pool.wait()
      yield* pool.resize(4)
      expect([pool.minSize, pool.maxSize]).toEqual([4, 4])
      yield* pool.wait("2 seconds")
      expect((yield* pool.stats).pool_available).toBe(4)
      yield* pool.resize(2)
      expect([pool.minSize, pool.maxSize]).toEqual([2, 2])
      expect((yield* pool.stats).pool_size).toBe(4)
      expect(yield* eventually(Effect.map(pool.stats, (s) => s.pool_size === 3), 1000)).toBe(true)
      expect(yield* eventually(Effect.map(pool.stats, (s) => s.pool_size === 2), 1000)).toBe(true)
      for (const [min, max] of [[0, 0], [-1, undefined], [4, 2]] as const) {
        expect((yield* Effect.flip(pool.resize(min, max)))._tag).toBe("PoolConfigError")
      }
    }))))
})
