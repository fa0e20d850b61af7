/**
 * F24, the random interruption storm (reliability.md A.4): mixed work on a pool of 10 —
 * queries (with pg_sleep), transaction blocks and savepoints, server cursors (plain and WITH
 * HOLD), `conn.stream`, COPY in and out (rows and raw bytes), LISTEN/NOTIFY, FanOut, and the
 * multiplexing path (`pool.execute`, FanOut over it: statements pipelined on shared connections) —
 * while random operations are interrupted (`Fiber.interrupt`, and short `Effect.timeout`
 * deadlines) and an admin session `pg_terminate_backend`s random sessions of the test's
 * `application_name`.
 *
 * Pass: every failure is an interruption or a typed pgfx error (a defect or an untyped error
 * fails the run), no interrupt takes long to complete, and the leak audit holds — the pool's
 * gauges are consistent with each other and with the server, no lease is outstanding, no
 * session busy, `idle in transaction`, holding a cursor or LISTENing, and `SELECT 1` answers.
 *
 * Short form by default (~10 s, 100 interruptions, 7 terminations); the full form (30 s, 300,
 * 20) with `PGFX_SOAK=1`. The seed is printed; `PGFX_RELIABILITY_SEED` replays a run's choices.
 * Runs on the primary target only: it tests the client under faults, not a server version, and
 * costs ~12 s (the other target would double that).
 */
import { describe, expect, it, layer } from "@effect/vitest"
import { Copy } from "@pgfx/copy"
import { Connection, Transaction } from "@pgfx/core"
import { ConnectionPool, FanOut } from "@pgfx/pool"
import { Effect, Fiber, Schedule, Stream } from "effect"
import { primaryTarget, TestDatabase } from "../harness.ts"
import { admin, appName, leakAudit, withApp } from "../../packages/core/test/reliability/support.ts"
import { auditPool, compact, logCounter, makeRandom, type Random, seedFromEnv, soak, Tally, verbose } from "./support.ts"

const envInt = (name: string): number | undefined => {
  const value = Number(process.env[name])
  return Number.isInteger(value) && value > 0 ? value : undefined
}

/**
 * The shape of the run; `PGFX_STORM_SECONDS`, `_INTERRUPTS`, `_TERMINATIONS`, `_WORKERS` override it, and
 * `PGFX_STORM_OPS` (a comma list) restricts the operations (exploration).
 */
const plan = {
  durationMs: (envInt("PGFX_STORM_SECONDS") ?? (soak ? 30 : 10)) * 1000,
  interrupts: envInt("PGFX_STORM_INTERRUPTS") ?? (soak ? 300 : 100),
  terminations: envInt("PGFX_STORM_TERMINATIONS") ?? (soak ? 20 : 7),
  workers: envInt("PGFX_STORM_WORKERS") ?? 14
}

/** An interrupt (of a fiber already running cleanup) must complete within this. */
const interruptBoundMs = 8_000

type Pool = ConnectionPool.ConnectionPool

/** The operations of the storm; each one borrows from the pool itself. */
const operations = (pool: Pool, random: Random, unique: () => number) => {
  const small = () => random.float(0, 0.15)
  const ops: Record<string, () => Effect.Effect<unknown, unknown>> = {
    select: () => pool.use((conn) => conn.execute("SELECT $1::int + 1, repeat('x', $2)", [random.int(0, 1e6), random.int(0, 2000)])),
    sleep: () => pool.use((conn) => conn.execute("SELECT pg_sleep($1)", [random.float(0, 0.3)])),
    pipeline: () => pool.use((conn) => conn.executeMany("INSERT INTO storm_t (v, note) VALUES ($1, $2)", [[1, "a"], [2, "b"], [3, "c"]])),
    transaction: () =>
      pool.use((conn) =>
        Transaction.run(
          conn,
          Effect.gen(function*() {
            yield* conn.execute("INSERT INTO storm_t (v, note) VALUES ($1, 'tx')", [random.int(0, 1000)])
            yield* conn.execute("SELECT pg_sleep($1)", [small()])
            // a savepoint block, rolled back by the signal
            yield* conn.transaction(Effect.andThen(conn.execute("INSERT INTO storm_t (v) VALUES (-1)"), Transaction.rollback))
            yield* conn.execute("UPDATE storm_t SET v = v + 1 WHERE id = (SELECT max(id) FROM storm_t)")
          }),
          { isolationLevel: random.pick(["read committed", "repeatable read"] as const) }
        )
      ),
    failingTransaction: () =>
      pool.use((conn) =>
        conn.transaction(Effect.gen(function*() {
          yield* conn.execute("INSERT INTO storm_t (v, note) VALUES (0, 'doomed')")
          yield* conn.execute("SELECT pg_sleep($1)", [small()])
          yield* conn.execute("SELECT 1 / $1::int", [0]) // DivisionByZero: rolled back
        })).pipe(Effect.catchTag("DivisionByZero", () => Effect.succeed("rolled back")))
      ),
    leftOpen: () =>
      // a BEGIN left open on return: the pool rolls it back (F17a)
      pool.use((conn) => Effect.andThen(conn.execute("BEGIN"), conn.execute("INSERT INTO storm_t (v, note) VALUES (0, 'open')"))),
    serverCursor: () =>
      pool.use((conn) =>
        Effect.scoped(Effect.gen(function*() {
          const cursor = yield* conn.serverCursor(`storm_${unique()}`, "SELECT g, md5(g::text) FROM generate_series(1, $1::int) g", [
            random.int(100, 20_000)
          ], { itersize: random.int(50, 2_000), withHold: random.chance(0.3) })
          yield* cursor.fetchMany(random.int(1, 100))
          return yield* Stream.runCount(random.chance(0.5) ? Stream.take(cursor.stream, random.int(1, 3000)) : cursor.stream)
        }))
      ),
    stream: () =>
      pool.use((conn) => {
        const rows = conn.stream("SELECT g, repeat('s', 40) FROM generate_series(1, $1::int) g", [random.int(100, 30_000)], {
          batchSize: random.int(10, 2_000)
        })
        return Stream.runCount(random.chance(0.4) ? Stream.take(rows, random.int(1, 500)) : rows)
      }),
    copyIn: () =>
      pool.use((conn) => {
        const load = Effect.scoped(Effect.gen(function*() {
          const writer = yield* Copy.from(conn, "COPY storm_copy (n, s) FROM STDIN", {
            format: random.pick(["text", "binary", "csv"] as const),
            types: ["int4", "text"]
          })
          const batches = random.int(1, 20)
          for (let b = 0; b < batches; b++) {
            yield* writer.writeRows(Array.from({ length: 500 }, (_, i) => [b * 500 + i, `row ${i} of batch ${b}`]))
            yield* writer.flush
          }
          return yield* writer.finish
        }))
        return random.chance(0.4) ? conn.transaction(load) : load
      }),
    copyInStream: () =>
      pool.use((conn) =>
        Copy.fromStream(
          conn,
          "COPY storm_copy (n, s) FROM STDIN",
          Stream.range(1, random.int(100, 20_000)).pipe(Stream.map((n) => [n, "streamed"] as const)),
          { types: ["int4", "text"] }
        )
      ),
    copyOut: () =>
      pool.use((conn) => {
        const rows = Copy.to(conn, `COPY (SELECT g, md5(g::text) FROM generate_series(1, ${random.int(100, 50_000)}) g) TO STDOUT`, {
          types: ["int4", "text"],
          format: random.pick(["text", "binary"] as const)
        })
        return Stream.runCount(random.chance(0.4) ? Stream.take(rows, random.int(1, 1000)) : rows)
      }),
    copyBytes: () =>
      pool.use((conn) => {
        const bytes = Copy.toBytes(conn, `COPY (SELECT g, repeat('b', 30) FROM generate_series(1, ${random.int(100, 50_000)}) g) TO STDOUT WITH (FORMAT csv)`)
        return Stream.runFold(random.chance(0.3) ? Stream.take(bytes, random.int(1, 200)) : bytes, () => 0, (n, chunk) => n + chunk.length)
      }),
    listen: () =>
      pool.use((conn) => {
        const channel = `storm_${unique()}`
        // both fibers are scoped to the lease: interrupted before the connection goes back
        return Effect.scoped(Effect.gen(function*() {
          const received = yield* Effect.forkScoped(conn.listen(channel).pipe(Stream.take(1), Stream.runCollect))
          // notify until the LISTEN is in place and the first notification arrives
          yield* Effect.forkScoped(Effect.repeat(conn.notify(channel, "ping"), Schedule.spaced("15 millis")))
          return (yield* Fiber.join(received)).length
        }))
      }),
    strayFiber: () =>
      // a fiber that outlives its lease, still running a statement: the pool gets the
      // connection back ACTIVE and must retire it (F17)
      pool.use((conn) =>
        Effect.andThen(Effect.forkDetach(conn.execute("SELECT pg_sleep($1)", [random.float(0.01, 0.1)])), Effect.sleep("2 millis"))
      ),
    // the multiplexing path: statements of many fibers pipelined on shared pooled connections
    shared: () => pool.execute("SELECT $1::int + 1, repeat('x', $2)", [random.int(0, 1e6), random.int(0, 2000)]),
    sharedSleep: () => pool.execute("SELECT pg_sleep($1)", [random.float(0, 0.3)]),
    sharedInsert: () => pool.execute("INSERT INTO storm_t (v, note) VALUES ($1, 'shared')", [random.int(0, 100)]),
    sharedFanOut: () =>
      Effect.flatMap(
        FanOut.run(
          Array.from({ length: random.int(4, 24) }, (_, i) => i),
          (i) => pool.execute("SELECT pg_sleep($1), $2::int", [random.float(0, 0.05), i]),
          { concurrency: random.int(4, 12), timeout: `${random.int(30, 600)} millis` }
        ),
        (result) => result.failed.length > 0 ? Effect.fail(result.failed[0].error) : Effect.succeed(result.completed.length)
      ),
    fanOut: () =>
      Effect.flatMap(
        FanOut.run(
          Array.from({ length: random.int(4, 16) }, (_, i) => i),
          (i) => pool.use((conn) => conn.execute("SELECT pg_sleep($1), $2::int", [random.float(0, 0.08), i])),
          { concurrency: random.int(2, 4), timeout: `${random.int(30, 600)} millis` }
        ),
        // typed failures inside a fan-out are outcomes too: the first one goes to the tally
        (result) => result.failed.length > 0 ? Effect.fail(result.failed[0].error) : Effect.succeed(result.completed.length)
      )
  }
  return ops
}

if (primaryTarget()) {
  layer(TestDatabase.layer, { excludeTestServices: true })("F24: random interruption storm", (it) => {
    it.effect(
      `${plan.interrupts} interruptions and ${plan.terminations} terminations over ${plan.durationMs / 1000} s of mixed work: no leak, only typed errors`,
      () =>
        Effect.gen(function*() {
          const url = yield* TestDatabase.url
          const app = appName("f24")
          const random = makeRandom(seedFromEnv())
          const logs = logCounter()
          const tally = new Tally()
          let sequence = 0
          const unique = () => ++sequence
          const watcher = yield* admin(url)
          const setup = yield* Connection.connect(url)
          yield* setup.execute(
            "CREATE TABLE storm_t (id serial PRIMARY KEY, v int, note text); CREATE TABLE storm_copy (n int, s text)"
          )
          let terminations = 0
          let terminationAttempts = 0
          let interruptsDelivered = 0
          const interruptLatencies: Array<number> = []
          let pool: Pool | undefined
          const stats = yield* logs.provide(Effect.scoped(Effect.gen(function*() {
            const p = yield* ConnectionPool.make({
              conninfo: withApp(url, app),
              name: "storm",
              minSize: 4,
              maxSize: 10,
              timeout: "5 seconds",
              cleanupTimeout: "2 seconds",
              cancelTimeout: "1 second",
              drainTimeout: "1 second",
              // exploration: every optional code path of the pool at once
              ...(process.env.PGFX_STORM_POOL === "features"
                ? {
                  check: ConnectionPool.checkConnection,
                  reset: ConnectionPool.discardAll,
                  maxLifetime: "2 seconds",
                  maxIdle: "1 second",
                  healthCheck: { interval: "200 millis", timeout: "1 second" },
                  leakDetectionThreshold: "1 second"
                }
                : {})
            })
            pool = p
            yield* p.wait("10 seconds")
            const ops = operations(p, random, unique)
            const only = (process.env.PGFX_STORM_OPS ?? "").split(",").filter((name) => name !== "")
            // a stray fiber costs a reconnection: picked less often
            const names = Object.keys(ops).filter((name) => only.length === 0 || only.includes(name))
              .flatMap((name) => name === "strayFiber" ? [name] : [name, name, name])
            /** Operations running, with their names (for a hang report). */
            const live = new Map<Fiber.Fiber<unknown, unknown>, string>()
            const deadline = performance.now() + plan.durationMs
            // on a slow machine the chaos may lag behind: work goes on (for at most 5 s more) until it is delivered
            const overtime = deadline + 5_000
            let terminatorDone = false
            const keepWorking = () =>
              performance.now() < deadline ||
              ((interruptsDelivered < plan.interrupts || !terminatorDone) && performance.now() < overtime)

            const worker = Effect.gen(function*() {
              while (keepWorking()) {
                const name = random.pick(names)
                let op = ops[name]()
                // a quarter of the operations get a short deadline of their own
                if (random.chance(0.25)) op = Effect.timeout(op, `${random.int(1, 250)} millis`)
                const fiber = yield* Effect.forkChild(op)
                live.set(fiber, name)
                const exit = yield* Fiber.await(fiber)
                live.delete(fiber)
                tally.record(name, exit)
              }
            })

            const interrupter = Effect.gen(function*() {
              // one interruption per slot, at a random point of the slot, of a random running op
              const slot = plan.durationMs / plan.interrupts
              const begin = deadline - plan.durationMs
              const pending: Array<Fiber.Fiber<void>> = []
              for (let i = 0; i < plan.interrupts; i++) {
                const at = begin + slot * (i + random.next())
                if (at > performance.now()) yield* Effect.sleep(`${Math.round(at - performance.now())} millis`)
                let target: Fiber.Fiber<unknown, unknown> | undefined
                while (target === undefined && performance.now() < overtime) {
                  const running = [...live.keys()].filter((f) => f.pollUnsafe() === undefined)
                  if (running.length > 0) target = random.pick(running)
                  else yield* Effect.sleep("2 millis")
                }
                if (target === undefined) break
                const started = performance.now()
                const victim = target
                interruptsDelivered++
                pending.push(
                  yield* Effect.forkChild(
                    Effect.andThen(Fiber.interrupt(victim), Effect.sync(() => void interruptLatencies.push(performance.now() - started)))
                  )
                )
              }
              yield* Fiber.joinAll(pending)
            })

            const terminator = Effect.gen(function*() {
              // one termination per slot, at a random point of the slot, of a random session (busy ones preferred)
              const slot = plan.durationMs / plan.terminations
              const begin = deadline - plan.durationMs
              for (let i = 0; i < plan.terminations; i++) {
                const at = begin + slot * (i + random.float(0.1, 0.9))
                if (at > performance.now()) yield* Effect.sleep(`${Math.round(at - performance.now())} millis`)
                let done = false
                while (!done && performance.now() < overtime) {
                  terminationAttempts++
                  const backends = yield* watcher.sessions(app)
                  const busy = backends.filter((row) => row[1] !== "idle")
                  const candidates = busy.length > 0 && random.chance(0.75) ? busy : backends
                  if (candidates.length > 0 && (yield* watcher.terminate(random.pick(candidates)[0] as number))) {
                    terminations++
                    done = true
                  } else yield* Effect.sleep("10 millis")
                }
              }
              terminatorDone = true
            })

            // forked from this fiber (a concurrent forEach would fork them from fibers that end at once)
            const workers = yield* Effect.forEach(Array.from({ length: plan.workers }), () => Effect.forkChild(worker))
            const chaos = yield* Effect.forkChild(Effect.all([interrupter, terminator], { concurrency: 2 }))
            // every worker finishes its last operation; none may hang
            const ended = yield* Fiber.joinAll(workers).pipe(
              Effect.timeoutOption(`${Math.round(deadline - performance.now()) + interruptBoundMs + 10_000} millis`)
            )
            if (ended._tag === "None") {
              const backends = yield* watcher.conn.execute(
                "SELECT pid, state, wait_event_type, wait_event, left(query, 80) FROM pg_stat_activity WHERE application_name = $1",
                [app]
              )
              expect.fail(
                `workers hang: ops still running: ${[...live.values()].join(", ")}; sessions: ${JSON.stringify(backends.rows)}`
              )
            }
            yield* Fiber.join(chaos)
            return yield* auditPool(p, watcher.conn, app, { leases: () => live.size, withinMs: 15_000 })
          })))
          expect(pool?.closed).toBe(true)

          const worst = Math.max(0, ...interruptLatencies)
          const failures = compact(tally.failures)
          console.log(
            `[F24] seed=${random.seed} duration=${plan.durationMs / 1000}s ops=${tally.ops} ok=${tally.successes} ` +
              `interrupts=${interruptsDelivered} (interrupted=${tally.interrupted} timeouts=${tally.timedOut} worstInterruptMs=${Math.round(worst)}) ` +
              `terminations=${terminations}/${terminationAttempts} failures=${failures} bad=${tally.bad.length} ` +
              `pool=${JSON.stringify({ connections_num: stats.connections_num, connections_lost: stats.connections_lost, returns_bad: stats.returns_bad, requests_errors: stats.requests_errors })} ` +
              `logs=${compact(logs.byLevel)} leaked=0`
          )
          if (verbose) console.log(`[F24] warnings:\n${Object.entries(logs.warnings).map(([w, n]) => `  ${n} × ${w}`).join("\n")}`)
          console.log(`[F24] per op: ${Object.entries(tally.byOp).map(([op, c]) => `${op}=${c.ops}/${c.ok}ok/${c.failed}failed`).join(" ")}`)

          // every failure was an interruption or a typed pgfx error
          expect(tally.bad, tally.bad.join("\n\n")).toEqual([])
          expect(interruptsDelivered).toBe(plan.interrupts)
          expect(terminations).toBe(plan.terminations)
          expect(worst, "an interrupt took too long to complete").toBeLessThan(interruptBoundMs)
          expect(logs.errors, "error-level log lines").toEqual([])
          // the server side of the audit: nothing of the app busy or in a transaction, a fresh session answers
          yield* leakAudit(url, app, { waitMs: 5000 })
          // no statement of a rolled-back block was committed
          const doomed = yield* setup.execute("SELECT count(*)::int FROM storm_t WHERE note IN ('doomed', 'open') OR v = -1")
          expect(doomed.rows).toEqual([[0]])
        }),
      plan.durationMs + 60_000
    )
  })
} else {
  describe.skip("F24: random interruption storm (primary target only: it tests the client, not the server version)", () => {
    it("storm", () => {})
  })
}
