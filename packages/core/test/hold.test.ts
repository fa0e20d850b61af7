/**
 * `Session.hold`: the connection held for a scope, or until `release`. While
 * it is held, statements of other fibers wait (asserted by the order the
 * server saw them in), the holder's `run` goes through, `release` gives the
 * connection back before the scope closes, a hold inside a hold of the same
 * connection takes nothing more, the fiber that took the hold uses the
 * connection directly until it ends, and an interrupted wait leaves no hold behind.
 */
import { expect, layer } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Option, Scope, Stream } from "effect"
import { Connection } from "../src/index.ts"
import { TestDatabase } from "../../../test/harness.ts"

const connect = Effect.flatMap(TestDatabase.url, (url) => Connection.connect(url))

/** The server-side clock, so the order of statements is the order the server ran them in. */
const now = (conn: Connection.Connection) =>
  Effect.map(conn.execute("SELECT clock_timestamp()::text"), (result) => String(result.rows[0][0]))

layer(TestDatabase.layer, { excludeTestServices: true })("Session.hold", (it) => {
  it.effect("other fibers' statements wait for the hold; the holder's go through", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      const scope = yield* Scope.make()
      const hold = yield* Scope.provide(conn.session.hold, scope)
      const other = yield* Effect.forkChild(now(conn))
      yield* Effect.sleep("100 millis")
      expect(other.pollUnsafe()).toBeUndefined()
      const inside = yield* hold.run(now(conn))
      yield* Scope.close(scope, Exit.void)
      const after = yield* Fiber.join(other)
      expect(after > inside).toBe(true)
    }))

  it.effect("release gives the connection back before the scope closes, and is idempotent", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      const scope = yield* Scope.make()
      const hold = yield* Scope.provide(conn.session.hold, scope)
      const other = yield* Effect.forkChild(conn.execute("SELECT 7"))
      yield* Effect.sleep("50 millis")
      expect(other.pollUnsafe()).toBeUndefined()
      yield* hold.release
      yield* hold.release
      const result = yield* Fiber.join(other)
      expect(result.rows).toEqual([[7]])
      yield* Scope.close(scope, Exit.void)
      expect((yield* conn.execute("SELECT 8")).rows).toEqual([[8]])
    }))

  it.effect("a hold inside exclusive of the same connection is re-entrant: it takes nothing, its release frees nothing", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      // forked before the exclusive began, so it is not a holder (fibers a holder forks are)
      const go = yield* Deferred.make<void>()
      const other = yield* Effect.forkChild(Effect.andThen(Deferred.await(go), conn.execute("SELECT 2")))
      const inside = yield* conn.session.exclusive(Effect.scoped(Effect.gen(function*() {
        const hold = yield* conn.session.hold
        yield* hold.release
        yield* Deferred.succeed(go, undefined)
        yield* Effect.sleep("50 millis")
        // still the holder of the outer exclusive: the other fiber's statement waits for it
        const waiting = other.pollUnsafe() === undefined
        const mine = yield* hold.run(conn.execute("SELECT 1"))
        return { waiting, mine: mine.rows }
      })))
      expect(inside.waiting).toBe(true)
      expect(inside.mine).toEqual([[1]])
      expect((yield* Fiber.join(other)).rows).toEqual([[2]])
    }))

  it.effect("the fiber that takes the hold uses the connection directly, until the hold ends", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      const scope = yield* Scope.make()
      const hold = yield* Scope.provide(conn.session.hold, scope)
      const other = yield* Effect.forkChild(now(conn))
      // neither `run` nor `exclusive`: the holder fiber's own statements go through
      const first = yield* now(conn)
      const stream = yield* Stream.runCollect(conn.stream("SELECT generate_series(1, 3)"))
      expect(Array.from(stream, (row) => row[0])).toEqual([1, 2, 3])
      const second = yield* now(conn)
      yield* Effect.sleep("50 millis")
      expect(other.pollUnsafe()).toBeUndefined()
      yield* hold.release
      const after = yield* Fiber.join(other)
      expect(first < second && second < after).toBe(true)
      // after the release the fiber is an ordinary caller: a new hold elsewhere excludes it
      const elsewhere = yield* Deferred.make<void>()
      const done = yield* Deferred.make<void>()
      const holder = yield* Effect.forkChild(Effect.scoped(Effect.gen(function*() {
        yield* conn.session.hold
        yield* Deferred.succeed(elsewhere, undefined)
        yield* Deferred.await(done)
      })))
      yield* Deferred.await(elsewhere)
      // (the wait is interruptible: the timeout ends it)
      const waited = yield* conn.execute("SELECT 9").pipe(Effect.timeoutOption("50 millis"))
      expect(Option.isNone(waited)).toBe(true)
      yield* Deferred.succeed(done, undefined)
      yield* Fiber.join(holder)
      expect((yield* conn.execute("SELECT 9")).rows).toEqual([[9]])
      yield* Scope.close(scope, Exit.void)
    }))

  it.effect("interrupting the wait for a hold leaves no hold behind", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      const first = yield* Deferred.make<void>()
      const holder = yield* Effect.forkChild(Effect.scoped(Effect.gen(function*() {
        const hold = yield* conn.session.hold
        yield* Deferred.succeed(first, undefined)
        yield* hold.run(Effect.sleep("200 millis"))
      })))
      yield* Deferred.await(first)
      const waiter = yield* Effect.forkChild(Effect.scoped(conn.session.hold))
      yield* Effect.sleep("50 millis")
      yield* Fiber.interrupt(waiter)
      yield* Fiber.join(holder)
      // nobody holds it now: a statement goes through, pipelined again
      const results = yield* Effect.forEach([1, 2, 3], (i) => conn.execute("SELECT $1::int", [i]), {
        concurrency: "unbounded"
      })
      expect(results.map((result) => result.rows[0][0])).toEqual([1, 2, 3])
      expect(conn.session.inFlight).toBe(0)
    }))
})

