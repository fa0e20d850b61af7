/**
 * LISTEN that fails (reliability.md F27's "not a silent stall"): a LISTEN refused — inside a
 * transaction, where it would only take effect at COMMIT, or a later channel of the same
 * `listen` that cannot be sent — must leave no registration behind on the connection. Otherwise a later `listen` on the channel
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
  it.effect("listen inside a transaction (open or aborted) is refused typed and leaves no registration: after ROLLBACK the next listen receives", () =>
    Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const conn = yield* Connection.connect(url)
      const other = yield* Connection.connect(url)
      // a LISTEN in a transaction takes effect only at COMMIT: after this ROLLBACK it would never have
      for (const setup of ["BEGIN", "BEGIN; SELECT 1 / 0"]) {
        yield* Effect.exit(conn.execute(setup))
        const refused = yield* Effect.exit(Stream.runCollect(Stream.take(conn.listen("after_failure"), 1)))
        expect(failureOf(refused)).toMatchObject({ _tag: "InterfaceError" })
        yield* conn.execute("ROLLBACK")
      }
      // the same inside a transaction block
      const inBlock = yield* Effect.exit(conn.transaction(Stream.runCollect(Stream.take(conn.listen("after_failure"), 1))))
      expect(failureOf(inBlock)).toMatchObject({ _tag: "InterfaceError" })

      const received = yield* Effect.forkChild(Stream.runCollect(Stream.take(conn.listen("after_failure"), 1)))
      yield* eventually(Effect.map(listening(conn), (c) => c.includes("after_failure")), "LISTEN")
      yield* other.notify("after_failure", "hello")
      const got = yield* Fiber.join(received).pipe(Effect.timeoutOption("2 seconds"))
      expect(Option.map(got, (notifications) => notifications.map((n) => n.payload))).toEqual(Option.some(["hello"]))
      expect(yield* listening(conn)).toEqual([])
    }))

  it.effect("with autocommit off, listen is not swallowed by an implicit transaction: notifications arrive", () =>
    Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const conn = yield* Connection.connect(url, { autocommit: false })
      const other = yield* Connection.connect(url)
      const received = yield* Effect.forkChild(Stream.runCollect(Stream.take(conn.listen("implicit_tx"), 1)))
      // the session's last statement is the LISTEN and it is idle, not idle in transaction
      yield* eventually(
        Effect.map(
          other.execute("SELECT state, query FROM pg_stat_activity WHERE pid = $1", [conn.info.backendPid]),
          (result) => result.rows[0]?.[0] === "idle" && String(result.rows[0]?.[1]).startsWith("LISTEN")
        ),
        "LISTEN committed"
      )
      yield* other.notify("implicit_tx", "through")
      const got = yield* Fiber.join(received).pipe(Effect.timeoutOption("2 seconds"))
      expect(Option.map(got, (notifications) => notifications.map((n) => n.payload))).toEqual(Option.some(["through"]))
      expect(conn.info.transactionStatus).toBe("IDLE")
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
