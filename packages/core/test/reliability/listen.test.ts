/**
 * LISTEN that fails (reliability.md F27's "not a silent stall"): a LISTEN the server refuses —
 * in an aborted transaction, or a later channel of the same `listen` that cannot be sent — must
 * leave no registration behind on the connection. Otherwise a later `listen` on the channel
 * skips its LISTEN (it thinks one is active) and never receives anything, and the channels
 * LISTENed before the failure stay LISTENed with nobody reading them.
 */
import { expect, layer } from "@effect/vitest"
import { Effect, Fiber, Option, Stream } from "effect"
import { Connection } from "../../src/index.ts"
import { TestDatabase } from "../../../../test/harness.ts"
import { eventually, failureOf } from "./support.ts"

const listening = (conn: Connection.Connection) =>
  Effect.map(conn.execute("SELECT pg_listening_channels() ORDER BY 1"), (result) => result.rows.map((row) => row[0]))

layer(TestDatabase.layer, { excludeTestServices: true })("LISTEN that fails", (it) => {
  it.effect("a LISTEN refused in an aborted transaction leaves no registration: the next listen on the channel receives", () =>
    Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const conn = yield* Connection.connect(url)
      const other = yield* Connection.connect(url)
      yield* conn.execute("BEGIN")
      yield* Effect.exit(conn.execute("SELECT 1 / 0"))
      const refused = yield* Effect.exit(Stream.runCollect(Stream.take(conn.listen("after_failure"), 1)))
      expect(failureOf(refused)).toMatchObject({ _tag: "InFailedSqlTransaction" })
      yield* conn.execute("ROLLBACK")

      const received = yield* Effect.forkChild(Stream.runCollect(Stream.take(conn.listen("after_failure"), 1)))
      yield* eventually(Effect.map(listening(conn), (c) => c.includes("after_failure")), "LISTEN")
      yield* other.notify("after_failure", "hello")
      const got = yield* Fiber.join(received).pipe(Effect.timeoutOption("2 seconds"))
      expect(Option.map(got, (notifications) => notifications.map((n) => n.payload))).toEqual(Option.some(["hello"]))
      expect(yield* listening(conn)).toEqual([])
    }))

  it.effect("when a later channel of one listen fails, the channels LISTENed before it are UNLISTENed", () =>
    Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const conn = yield* Connection.connect(url)
      const failed = yield* Effect.exit(Stream.runDrain(conn.listen("first_ok", "bad\u0000channel")))
      expect(failureOf(failed)).toMatchObject({ _tag: "ParameterError" })
      expect(yield* listening(conn)).toEqual([])
      // and the channel works again afterwards
      const received = yield* Effect.forkChild(Stream.runCollect(Stream.take(conn.listen("first_ok"), 1)))
      yield* eventually(Effect.map(listening(conn), (c) => c.includes("first_ok")), "LISTEN")
      yield* conn.notify("first_ok", "again")
      expect((yield* Fiber.join(received)).map((n) => n.payload)).toEqual(["again"])
    }))
})
