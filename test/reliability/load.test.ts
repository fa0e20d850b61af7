/**
 * Load: 200 fibers share a pool of 10 with a bounded queue (`maxWaiting`) and a checkout
 * `timeout`, doing mixed work (queries, transaction blocks, streams, COPY in and out; a third of
 * them single statements through `pool.execute`, pipelined on shared connections) for 10 s
 * (60 s with `PGFX_SOAK=1`).
 *
 * Pass: every failure is a typed error — under load only the pool's own `TooManyRequests`
 * (queue full) and `PoolTimeout` (no connection within the deadline) are expected; memory stays
 * bounded (process RSS sampled every second; growth from the first steady sample, at 2 s, to the
 * end below 150 MB); and the leak audit holds afterwards. Reports p50/p99 checkout latency (time
 * to get a lease), the rejected and timed-out requests, and the RSS series.
 *
 * Runs on the primary target only: it loads the client's pool, not a server version, and costs
 * ~11 s.
 */
import { describe, expect, it, layer } from "@effect/vitest"
import { Copy } from "@pgfx/copy"
import { Connection } from "@pgfx/core"
import { ConnectionPool } from "@pgfx/pool"
import { Effect, Fiber, Stream } from "effect"
import { primaryTarget, TestDatabase } from "../harness.ts"
import { admin, appName, leakAudit, withApp } from "../../packages/core/test/reliability/support.ts"
import { auditPool, compact, logCounter, makeRandom, percentile, type Random, seedFromEnv, soak, Tally } from "./support.ts"

const plan = soak
  ? { durationMs: 60_000, fibers: 200 }
  : { durationMs: 10_000, fibers: 200 }

const pool = { maxSize: 10, maxWaiting: 100, timeout: "250 millis" } as const
/** Sample index (seconds) taken as the first steady RSS sample. */
const steadyAt = 2
const rssGrowthBoundMb = 150

const mb = (bytes: number) => Math.round(bytes / 1024 / 1024)

/** One unit of work on a borrowed connection. */
const work = (conn: Connection.Connection, random: Random): Effect.Effect<unknown, unknown> => {
  const roll = random.next()
  if (roll < 0.6) return conn.execute("SELECT $1::int + 1, now()", [random.int(0, 1000)])
  if (roll < 0.75) {
    return conn.transaction(Effect.gen(function*() {
      yield* conn.execute("INSERT INTO load_t (v) VALUES ($1)", [random.int(0, 1000)])
      yield* conn.execute("SELECT count(*) FROM load_t WHERE v = $1", [random.int(0, 1000)])
    }))
  }
  if (roll < 0.82) return conn.execute("SELECT pg_sleep($1)", [random.float(0.005, 0.05)])
  if (roll < 0.9) {
    return Stream.runCount(conn.stream("SELECT g, md5(g::text) FROM generate_series(1, 500) g", [], { batchSize: 100 }))
  }
  if (roll < 0.95) {
    return Copy.fromStream(
      conn,
      "COPY load_copy (n, s) FROM STDIN",
      Stream.range(1, 200).pipe(Stream.map((n) => [n, "load"] as const)),
      { types: ["int4", "text"] }
    )
  }
  return Stream.runCount(Copy.to(conn, "COPY (SELECT g, md5(g::text) FROM generate_series(1, 500) g) TO STDOUT", { types: ["int4", "text"] }))
}

if (primaryTarget()) {
  layer(TestDatabase.layer, { excludeTestServices: true })("load", (it) => {
    it.effect(
      `${plan.fibers} fibers on a pool of ${pool.maxSize} (maxWaiting ${pool.maxWaiting}, timeout ${pool.timeout}) for ${plan.durationMs / 1000} s: bounded memory, typed rejections, no leak`,
      () =>
        Effect.gen(function*() {
          const url = yield* TestDatabase.url
          const app = appName("load")
          const random = makeRandom(seedFromEnv())
          const logs = logCounter()
          const tally = new Tally()
          const watcher = yield* admin(url)
          const setup = yield* Connection.connect(url)
          yield* setup.execute("CREATE TABLE load_t (id serial PRIMARY KEY, v int); CREATE TABLE load_copy (n int, s text)")
          const latencies: Array<number> = []
          const rss: Array<number> = []
          const heap: Array<number> = []
          let leases = 0
          let maxLeases = 0

          const stats = yield* logs.provide(Effect.scoped(Effect.gen(function*() {
            const p = yield* ConnectionPool.make({
              conninfo: withApp(url, app),
              name: "load",
              minSize: pool.maxSize,
              maxSize: pool.maxSize,
              maxWaiting: pool.maxWaiting,
              timeout: pool.timeout
            })
            yield* p.wait("10 seconds")
            const started = performance.now()
            const deadline = started + plan.durationMs

            const sampler = yield* Effect.forkChild(Effect.gen(function*() {
              while (true) {
                const usage = process.memoryUsage()
                rss.push(usage.rss)
                heap.push(usage.heapUsed)
                const next = started + rss.length * 1000
                yield* Effect.sleep(`${Math.max(0, Math.round(next - performance.now()))} millis`)
              }
            }))

            // a third of the clients run single statements on the multiplexing path (no checkout)
            const sharedClient = Effect.gen(function*() {
              while (performance.now() < deadline) {
                const roll = random.next()
                const exit = yield* Effect.exit(
                  roll < 0.9
                    ? p.execute("SELECT $1::int + 1, now()", [random.int(0, 1000)])
                    : p.execute("SELECT pg_sleep($1)", [random.float(0.005, 0.05)])
                )
                const outcome = tally.record("execute", exit)
                if (outcome._tag === "Typed" && outcome.tag === "TooManyRequests") {
                  yield* Effect.sleep(`${random.int(5, 30)} millis`)
                }
              }
            })
            const client = Effect.gen(function*() {
              while (performance.now() < deadline) {
                const requested = performance.now()
                const exit = yield* Effect.exit(Effect.scoped(Effect.gen(function*() {
                  const conn = yield* p.connection
                  latencies.push(performance.now() - requested)
                  leases++
                  if (leases > maxLeases) maxLeases = leases
                  yield* Effect.addFinalizer(() => Effect.sync(() => void leases--))
                  return yield* work(conn, random)
                })))
                const outcome = tally.record("checkout+work", exit)
                // a client turned away backs off a little instead of spinning
                if (outcome._tag === "Typed" && outcome.tag === "TooManyRequests") {
                  yield* Effect.sleep(`${random.int(5, 30)} millis`)
                }
              }
            })
            // forked from this fiber (a concurrent forEach would fork them from fibers that end at once)
            const clients = yield* Effect.forEach(
              Array.from({ length: plan.fibers }, (_, i) => i),
              (i) => Effect.forkChild(i % 3 === 2 ? sharedClient : client)
            )
            const ended = yield* Fiber.joinAll(clients).pipe(Effect.timeoutOption(`${plan.durationMs + 20_000} millis`))
            expect(ended._tag, "clients still running").toBe("Some")
            yield* Fiber.interrupt(sampler)
            rss.push(process.memoryUsage().rss)
            return yield* auditPool(p, watcher.conn, app, { leases: () => leases, withinMs: 10_000 })
          })))

          const sorted = [...latencies].sort((a, b) => a - b)
          const p50 = percentile(sorted, 0.5)
          const p99 = percentile(sorted, 0.99)
          const steady = rss[Math.min(steadyAt, rss.length - 1)]
          const growthMb = mb(rss[rss.length - 1] - steady)
          console.log(
            `[LOAD] seed=${random.seed} duration=${plan.durationMs / 1000}s fibers=${plan.fibers} ops=${tally.ops} ok=${tally.successes} ` +
              `checkouts=${latencies.length} p50=${p50.toFixed(2)}ms p99=${p99.toFixed(2)}ms max=${(sorted.at(-1) ?? NaN).toFixed(1)}ms ` +
              `rejected(TooManyRequests)=${tally.failures.TooManyRequests ?? 0} timeouts(PoolTimeout)=${tally.failures.PoolTimeout ?? 0} ` +
              `failures=${compact(tally.failures)} bad=${tally.bad.length} maxLeases=${maxLeases} ` +
              `rssMB=[${rss.map(mb).join(",")}] growthFrom${steadyAt}s=${growthMb}MB heapMB=[${heap.map(mb).join(",")}] ` +
              `pool=${JSON.stringify({ requests_num: stats.requests_num, requests_queued: stats.requests_queued, requests_errors: stats.requests_errors, connections_num: stats.connections_num })} ` +
              `logs=${compact(logs.byLevel)} leaked=0`
          )

          expect(tally.bad, tally.bad.join("\n\n")).toEqual([])
          // no faults are injected: the pool's own refusals are the only failures
          for (const tag of Object.keys(tally.failures)) expect(["TooManyRequests", "PoolTimeout"]).toContain(tag)
          expect(tally.successes).toBeGreaterThan(0)
          expect(maxLeases).toBeLessThanOrEqual(pool.maxSize)
          expect(growthMb, `RSS grew ${growthMb} MB after ${steadyAt} s`).toBeLessThan(rssGrowthBoundMb)
          expect(logs.errors, "error-level log lines").toEqual([])
          yield* leakAudit(url, app, { waitMs: 5000 })
        }),
      plan.durationMs + 60_000
    )
  })
} else {
  describe.skip("load (primary target only: it loads the client's pool, not a server version)", () => {
    it("load", () => {})
  })
}
