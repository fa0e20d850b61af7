/**
 * Automatic pipelining: statements of concurrent fibers on one connection
 * (outside a hold, autocommit on) are written without waiting for each other,
 * and an interrupted statement never cancels or fails another caller's.
 * Asserted against the server: round trips counted by the statements' own
 * results, cancellation by each caller's result, leftovers in pg_stat_activity.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Cause, Effect, Exit, Fiber } from "effect"
import { Connection, PgError } from "../src/index.ts"
import { TestDatabase } from "../../../test/harness.ts"

const connect = Effect.flatMap(TestDatabase.url, (url) => Connection.connect(url))

/** A deterministic pseudo-random sequence (mulberry32), so a failing run can be replayed. */
const random = (seed: number) => () => {
  seed |= 0
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

layer(TestDatabase.layer, { excludeTestServices: true })("pipelining", (it) => {
  it.effect("concurrent statements on one connection overlap on the wire and each gets its own result", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      // 20 statements of 50 ms each: one after the other they take ≥ 1 s of round trips;
      // pipelined, the server still runs them in turn (≥ 1 s) but none waits for the
      // previous answer to be read before being sent: all are ACTIVE-or-queued at once.
      const started = Date.now()
      const results = yield* Effect.forEach(
        Array.from({ length: 20 }, (_, i) => i),
        (i) => conn.execute("SELECT $1::int AS i, pg_sleep(0.05)", [i]),
        { concurrency: "unbounded" }
      )
      expect(results.map((r) => r.rows[0][0])).toEqual(Array.from({ length: 20 }, (_, i) => i))
      expect(Date.now() - started).toBeGreaterThanOrEqual(1000)
      expect(conn.info.transactionStatus).toBe("IDLE")
    }))

  it.effect("while statements are in flight, every one of them is on the wire already", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      const fibers = yield* Effect.forEach(
        Array.from({ length: 5 }, (_, i) => i),
        (i) => Effect.forkChild(conn.execute("SELECT $1::int, pg_sleep(0.2)", [i])),
        { concurrency: 1 }
      )
      yield* Effect.sleep("50 millis")
      // queued on the connection's own FIFO, not on a lock: the session reports them in flight
      expect(conn.info.transactionStatus).toBe("ACTIVE")
      const exits = yield* Effect.forEach(fibers, Fiber.await)
      expect(exits.every(Exit.isSuccess)).toBe(true)
    }))

  it.effect("a failing statement fails only its own caller", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      const exits = yield* Effect.forEach(
        [1, 0, 2, 0, 3],
        (n) => Effect.exit(conn.execute("SELECT 6 / $1::int", [n])),
        { concurrency: "unbounded" }
      )
      expect(exits.map((exit) => Exit.isSuccess(exit) ? exit.value.rows[0][0] : "failed")).toEqual([
        6,
        "failed",
        3,
        "failed",
        2
      ])
      const failure = exits[1]
      expect(Exit.isFailure(failure) && Cause.squash(failure.cause)).toBeInstanceOf(PgError.DivisionByZero)
    }))

  it.effect("the same statement prepared by concurrent callers is prepared once", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      // past prepareThreshold (5) all at once: only one of them may Parse a named statement
      yield* Effect.forEach(Array.from({ length: 40 }, (_, i) => i), (i) => conn.execute("SELECT $1::int + 1", [i]), {
        concurrency: "unbounded"
      })
      yield* Effect.forEach(Array.from({ length: 40 }, (_, i) => i), (i) => conn.execute("SELECT $1::int + 1", [i]), {
        concurrency: "unbounded"
      })
      const prepared = yield* conn.execute("SELECT statement FROM pg_prepared_statements", [], { prepare: false })
      expect(prepared.rows.filter((row) => String(row[0]).includes("$1::int + 1"))).toHaveLength(1)
    }))

  it.effect("a transaction block waits for the pipelined statements, and nobody's statement runs inside it", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      yield* conn.execute("CREATE TEMP TABLE inside (who text)")
      const outside = yield* Effect.forkChild(Effect.forEach(
        Array.from({ length: 10 }, (_, i) => i),
        (i) => conn.execute("INSERT INTO inside VALUES ($1)", [`outside ${i}`]),
        { concurrency: "unbounded" }
      ))
      const block = yield* Effect.exit(conn.transaction(Effect.gen(function*() {
        yield* conn.execute("INSERT INTO inside VALUES ($1)", ["block"])
        return yield* Effect.fail("roll back" as const)
      })))
      yield* Fiber.join(outside)
      expect(Exit.isFailure(block)).toBe(true)
      const rows = yield* conn.execute("SELECT who FROM inside ORDER BY who")
      // the block's row rolled back, every outside row kept
      expect(rows.rows.map((row) => row[0])).toEqual(Array.from({ length: 10 }, (_, i) => `outside ${i}`))
    }))

  it.effect("interrupting a queued statement never cancels the one running ahead of it", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      const ahead = yield* Effect.forkChild(conn.execute("SELECT 'ahead', pg_sleep(0.4)", []))
      yield* Effect.sleep("50 millis")
      const behind = yield* Effect.forkChild(conn.execute("SELECT 'behind', pg_sleep(5)", []))
      yield* Effect.sleep("50 millis")
      const interruptedAt = Date.now()
      yield* Fiber.interrupt(behind)
      // the caller returned at once, while `ahead` was still running on the server
      expect(Date.now() - interruptedAt).toBeLessThan(200)
      const first = yield* Fiber.join(ahead)
      expect(first.rows[0][0]).toBe("ahead")
      // `behind` is cancelled once it runs alone: the session is usable well before its 5 s
      const after = yield* conn.execute("SELECT 'after'", [])
      expect(after.rows[0][0]).toBe("after")
      expect(Date.now() - interruptedAt).toBeLessThan(3000)
      expect(conn.closed).toBe(false)
    }))

  it.effect("interrupting the running statement while a live one is queued behind it: no cancel, both complete", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      const running = yield* Effect.forkChild(conn.execute("SELECT 'running', pg_sleep(0.3)", []))
      yield* Effect.sleep("50 millis")
      const queued = yield* Effect.forkChild(conn.execute("SELECT 'queued'", []))
      yield* Effect.sleep("20 millis")
      yield* Fiber.interrupt(running)
      // a cancel now could hit `queued` on the server; it must get its own result
      const result = yield* Fiber.join(queued)
      expect(result.rows[0][0]).toBe("queued")
      expect(conn.closed).toBe(false)
    }))

  describe("many callers, random interruptions", () => {
    it.effect("every caller not interrupted gets its own correct result; nothing is left running", () =>
      Effect.gen(function*() {
        const conn = yield* connect
        const observer = yield* connect
        const seed = Number(process.env.PGFX_PIPELINE_SEED ?? Date.now() % 1_000_000)
        const next = random(seed)
        const callers = 200
        const plans = Array.from({ length: callers }, (_, i) => ({
          i,
          sleep: next() < 0.15 ? 0.05 + next() * 0.2 : 0,
          interruptAfter: next() < 0.3 ? Math.floor(next() * 120) : undefined
        }))
        const outcomes = yield* Effect.forEach(plans, (plan) =>
          Effect.gen(function*() {
            yield* Effect.sleep(Math.floor(plan.i / 10))
            const run = conn.execute("SELECT $1::int * 2, pg_sleep($2::float8)", [plan.i, plan.sleep])
            const fiber = yield* Effect.forkChild(run)
            if (plan.interruptAfter !== undefined) {
              yield* Effect.sleep(plan.interruptAfter)
              yield* Fiber.interrupt(fiber)
            }
            return { plan, exit: yield* Fiber.await(fiber) }
          }), { concurrency: "unbounded" })
        let interrupted = 0
        for (const { exit, plan } of outcomes) {
          if (Exit.isSuccess(exit)) {
            expect(exit.value.rows[0][0], `seed ${seed}, caller ${plan.i}`).toBe(plan.i * 2)
          } else {
            // the only failure allowed is the caller's own interruption: never a cancel of someone else's
            expect(Cause.hasInterruptsOnly(exit.cause), `seed ${seed}, caller ${plan.i}: ${Cause.pretty(exit.cause)}`)
              .toBe(true)
            expect(plan.interruptAfter, `seed ${seed}, caller ${plan.i} failed without being interrupted`).toBeDefined()
            interrupted++
          }
        }
        expect(interrupted).toBeGreaterThan(0)
        const again = yield* conn.execute("SELECT 'still usable'", [])
        expect(again.rows[0][0]).toBe("still usable")
        const active = yield* observer.execute(
          "SELECT count(*)::int FROM pg_stat_activity WHERE pid = $1 AND state <> 'idle'",
          [conn.info.backendPid]
        )
        expect(active.rows[0][0]).toBe(0)
      }), { timeout: 60_000 })
  })
})
