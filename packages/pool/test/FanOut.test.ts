/**
 * FanOut: bounded concurrency, one deadline, honest results (the seed's
 * `parallel_query`), and F23 — at the deadline nothing of ours keeps running
 * on the server and the pool is back to idle.
 */
import { expect, layer } from "@effect/vitest"
import { Cause, Effect, Exit, Stream } from "effect"
import { ConnectionPool, FanOut } from "../src/index.ts"
import { TestDatabase } from "../../../test/harness.ts"
import { audited, auditPool, eventually, observe, quiet, scenario, sessions, withApp } from "./helpers.ts"

/** Sessions of the test database running a statement right now (other than the observer). */
const activeNow = (url: string) =>
  Effect.scoped(Effect.flatMap(observe(url), (o) =>
    Effect.map(sessions(o, new URL(url).pathname.slice(1)), (all) => all.filter((s) => s.state === "active"))))

layer(TestDatabase.layer, { excludeTestServices: true })("FanOut", (it) => {
  it.effect("returns completions in input order, typed failures, and respects the concurrency bound", () =>
    Effect.gen(function*() {
      let running = 0
      let peak = 0
      const result = yield* FanOut.run(
        [5, 1, 4, 2, 3, 0],
        (n) =>
          Effect.gen(function*() {
            running++
            peak = Math.max(peak, running)
            yield* Effect.sleep(n * 10)
            running--
            if (n === 0) return yield* Effect.fail(`zero` as const)
            return n * n
          }),
        { concurrency: 2 }
      )
      expect(peak).toBe(2)
      expect(result.completed.map((c) => [c.item, c.value])).toEqual([[5, 25], [1, 1], [4, 16], [2, 4], [3, 9]])
      expect(result.failed).toEqual([{ item: 0, index: 5, error: "zero" }])
      expect(result.timedOut).toEqual([])
    }))

  it.effect("lets defects through", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(FanOut.run([1, 2], (n) => n === 2 ? Effect.die("boom") : Effect.succeed(n)))
      expect(Exit.isFailure(exit) && Cause.hasDies(exit.cause)).toBe(true)
    }))

  it.effect("at the deadline, running queries are cancelled on the server and the pool is back to idle", () =>
    scenario("f23_deadline", (app) => quiet(Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const pool = yield* ConnectionPool.make({ conninfo: withApp(url, app), minSize: 4 })
      yield* pool.wait()
      const sleeps = [0.01, 5, 0.02, 5, 5, 0.01, 5, 5, 5, 5]
      const started = Date.now()
      const result = yield* FanOut.run(
        sleeps,
        (seconds) => pool.use((conn) => conn.execute("SELECT pg_sleep($1::float8), $1::float8", [seconds])),
        { concurrency: 4, timeout: "400 millis" }
      )
      const elapsed = Date.now() - started
      expect(elapsed).toBeGreaterThanOrEqual(390)
      expect(elapsed).toBeLessThan(900) // at the deadline: the cancels go on in the background
      expect(result.completed.map((c) => c.item)).toEqual([0.01, 0.02, 0.01])
      expect(result.failed).toEqual([])
      expect(result.timedOut.length).toBe(7)
      // FanOut returns at the deadline; the cancels left then, so moments later nothing of ours
      // runs on the server and every connection is back (none of them discarded).
      yield* eventually(Effect.map(activeNow(url), (active) => active.length === 0), 1000)
      yield* eventually(Effect.map(pool.stats, (stats) => stats.pool_available === stats.pool_size), 1000)
      const stats = yield* pool.stats
      expect(stats.pool_available).toBe(stats.pool_size)
      expect(stats.pool_size).toBe(4)
      expect(stats.returns_bad ?? 0).toBe(0)
      yield* auditPool(pool, url, app)
    }))))

  it.effect("F23: 1000 point queries at concurrency 8 with a deadline midway — no orphan backends, leases returned", () =>
    scenario("f23", (app) => quiet(Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const pool = yield* ConnectionPool.make({ conninfo: withApp(url, app), minSize: 8 })
      yield* pool.wait()
      yield* pool.use((conn) => conn.execute("CREATE TABLE points AS SELECT g AS id, g * 2 AS v FROM generate_series(1, 1000) g"))
      const ids = Array.from({ length: 1000 }, (_, i) => i + 1)
      const result = yield* FanOut.run(
        ids,
        (id) =>
          pool.use((conn) =>
            Effect.map(conn.execute("SELECT v, pg_sleep(0.002) FROM points WHERE id = $1", [id]), (r) => r.rows[0][0])
          ),
        { concurrency: 8, timeout: "300 millis" }
      )
      expect(result.completed.length).toBeGreaterThan(0)
      expect(result.timedOut.length).toBeGreaterThan(0)
      expect(result.completed.length + result.timedOut.length).toBe(1000)
      for (const c of result.completed) expect(c.value).toBe(c.item * 2)
      expect(yield* activeNow(url)).toEqual([])
      const stats = yield* pool.stats
      expect(stats).toMatchObject({ pool_size: 8, pool_available: 8, requests_waiting: 0 })
      const watcher = yield* observe(url)
      expect((yield* sessions(watcher, new URL(url).pathname.slice(1))).length).toBe(8)
      yield* auditPool(pool, url, app)
    }))))

  it.effect("streams outcomes as they complete, then the items that did not finish", () =>
    audited(quiet(Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const pool = yield* ConnectionPool.make({ conninfo: url, minSize: 3 })
      yield* pool.wait()
      const events = yield* FanOut.stream(
        [0.2, 0.01, 5, 0.05, "bad"],
        (seconds) => pool.use((conn) => conn.execute("SELECT pg_sleep($1::float8)", [seconds])),
        { concurrency: 3, timeout: "500 millis" }
      ).pipe(Stream.runCollect)
      const tags = events.map((e) => `${e._tag}:${e.item}`)
      expect(tags.slice(0, 2)).toEqual(["Completed:0.01", "Completed:0.05"])
      expect(tags).toContain("Completed:0.2")
      expect(tags).toContain("Failed:bad")
      expect(tags[tags.length - 1]).toBe("TimedOut:5")
      expect(events.length).toBe(5)
      expect(yield* activeNow(url)).toEqual([])
      const stats = yield* pool.stats
      expect(stats.pool_available).toBe(stats.pool_size)
    }))))
})
