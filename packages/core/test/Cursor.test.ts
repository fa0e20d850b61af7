/**
 * Client cursors, server cursors, pipeline/executeMany and LISTEN/NOTIFY,
 * against a real server (pg_cursors, pg_stat_activity, row counts).
 */
import { expect, layer } from "@effect/vitest"
import { Effect, Exit, Fiber, Stream } from "effect"
import { Connection, RowFactory } from "../src/index.ts"
import { TestDatabase } from "../../../test/harness.ts"

const connect = Effect.flatMap(TestDatabase.url, (url) => Connection.connect(url))

const openCursors = (conn: Connection.Connection) =>
  Effect.map(conn.execute("SELECT count(*)::int FROM pg_cursors"), (result) => result.rows[0][0])

class Boom {
  readonly _tag = "Boom"
}

layer(TestDatabase.layer, { excludeTestServices: true })("client cursor", (it) => {
  it.effect("runs the seed's first snippet line for line", () =>
    Effect.gen(function*() {
      const conn = yield* Connection.connect(yield* TestDatabase.url, { autocommit: false })
      const cur = conn.cursor()
      yield* cur.execute(`
        CREATE TABLE test (
          id serial PRIMARY KEY,
          num integer,
          data text)
      `)
      yield* cur.execute("INSERT INTO test (num, data) VALUES ($1, $2)", [100, "abc'def"])
      yield* cur.execute("INSERT INTO test (num, data) VALUES ($1, $2)", [200, "second"])
      yield* cur.execute("SELECT * FROM test ORDER BY id")
      expect(yield* cur.fetchOne).toEqual([1, 100, "abc'def"])
      expect(yield* cur.fetchMany(5)).toEqual([[2, 200, "second"]])
      expect(yield* cur.fetchAll).toEqual([])
      yield* cur.execute("SELECT * FROM test ORDER BY id")
      const iterated = Array.from(cur)
      expect(iterated).toEqual([[1, 100, "abc'def"], [2, 200, "second"]])
      yield* conn.commit
      expect(conn.info.transactionStatus).toBe("IDLE")
    }))

  it.effect("reports rowCount, description and statusMessage, and scrolls", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      const cur = conn.cursor({ rowFactory: RowFactory.record })
      yield* cur.execute("CREATE TEMP TABLE d (id int NOT NULL, label text)")
      expect(cur.description).toBeUndefined()
      yield* cur.execute("INSERT INTO d VALUES (1, 'a'), (2, 'b'), (3, NULL)")
      expect(cur.rowCount).toBe(3)
      expect(cur.statusMessage).toBe("INSERT 0 3")
      yield* cur.execute("SELECT id, label FROM d ORDER BY id")
      expect(cur.description?.map((column) => [column.name, column.typeOid])).toEqual([["id", 23], ["label", 25]])
      const described = yield* cur.describe
      expect(described?.map((column) => column.nullable)).toEqual([false, true])
      yield* cur.scroll(2, "absolute")
      expect(yield* cur.fetchOne).toEqual({ id: 3, label: null })
      yield* cur.scroll(-2)
      expect(cur.rowNumber).toBe(1)
      expect((yield* Effect.flip(cur.scroll(10)))._tag).toBe("InterfaceError")
    }))

  it.effect("executeMany pipelines one batch in a single transaction", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      yield* conn.execute("CREATE TABLE many (id int PRIMARY KEY, v text)")
      const cur = conn.cursor()
      yield* cur.executeMany("INSERT INTO many VALUES ($1, $2)", [[1, "a"], [2, "b"], [3, null]])
      expect(cur.rowCount).toBe(3)
      yield* cur.executeMany("INSERT INTO many VALUES ($1, $2) RETURNING id * 10", [[4, "d"], [5, "e"]], {
        returning: true
      })
      expect(yield* cur.fetchAll).toEqual([[40]])
      expect(yield* cur.nextSet).toBe(true)
      expect(yield* cur.fetchAll).toEqual([[50]])
      expect(yield* cur.nextSet).toBe(false)
      // A failure in the middle rolls back the whole batch.
      const error = yield* Effect.flip(cur.executeMany("INSERT INTO many VALUES ($1, $2)", [[6, "f"], [1, "dup"], [7, "g"]]))
      expect(error._tag).toBe("UniqueViolation")
      expect((yield* conn.execute("SELECT count(*)::int FROM many")).rows).toEqual([[5]])
    }))

  it.effect("a pipeline returns each statement's outcome and aborts after an error", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      const exits = yield* conn.pipeline([
        { sql: "SELECT 1" },
        { sql: "SELECT * FROM doesnotexist" },
        { sql: "SELECT 'aborted'" }
      ])
      expect(Exit.isSuccess(exits[0]) && exits[0].value.rows).toEqual([[1]])
      expect(Exit.isFailure(exits[1])).toBe(true)
      if (Exit.isFailure(exits[1])) expect(String(exits[1].cause)).toContain("UndefinedTable")
      expect(Exit.isFailure(exits[2]) && String(exits[2].cause)).toContain("PipelineAborted")
      const after = yield* conn.pipeline([{ sql: "SELECT $1::int", params: [2] }])
      expect(Exit.isSuccess(after[0]) && after[0].value.rows).toEqual([[2]])

      yield* conn.pipeline([{ sql: "SELECT * FROM nosuchtable" }, { sql: "CREATE TABLE voila ()" }])
      const voila = yield* conn.execute("SELECT count(*)::int FROM pg_class WHERE relname = 'voila'")
      expect(voila.rows).toEqual([[0]])
    }))
})

layer(TestDatabase.layer, { excludeTestServices: true })("server cursor", (it) => {
  it.effect("fetches from a named cursor and closes it with the scope", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      const watcher = yield* connect
      const rows = yield* Effect.scoped(Effect.gen(function*() {
        const cursor = yield* conn.serverCursor("big cursor", "SELECT g FROM generate_series(1, $1::int) g", [1000], {
          itersize: 100,
          scrollable: true
        })
        const cursors = yield* conn.execute("SELECT name, is_scrollable FROM pg_cursors")
        expect(cursors.rows).toEqual([["big cursor", true]])
        expect(yield* cursor.fetchOne).toEqual([1])
        expect(yield* cursor.fetchMany(2)).toEqual([[2], [3]])
        yield* cursor.scroll(10, "absolute")
        expect(yield* cursor.fetchOne).toEqual([11])
        yield* cursor.scroll(-1)
        return yield* Stream.runCollect(cursor.stream)
      }))
      expect(rows.length).toBe(990)
      expect(rows[0]).toEqual([11])
      expect(yield* openCursors(conn)).toBe(0)
      expect(conn.info.transactionStatus).toBe("IDLE")
      const state = yield* watcher.execute("SELECT state FROM pg_stat_activity WHERE pid = $1", [conn.info.backendPid])
      expect(state.rows).toEqual([["idle"]])
    }))

  it.effect("closes the cursor and its transaction when the scope fails or is interrupted", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      const failed = yield* Effect.flip(Effect.scoped(Effect.gen(function*() {
        const cursor = yield* conn.serverCursor("c1", "SELECT g FROM generate_series(1, 10) g")
        yield* cursor.fetchOne
        return yield* Effect.fail(new Boom())
      })))
      expect(failed).toBeInstanceOf(Boom)
      expect(yield* openCursors(conn)).toBe(0)
      expect(conn.info.transactionStatus).toBe("IDLE")

      const fiber = yield* Effect.forkChild(Effect.scoped(Effect.gen(function*() {
        yield* conn.serverCursor("c2", "SELECT g FROM generate_series(1, 10) g")
        return yield* Effect.never
      })))
      yield* Effect.sleep("100 millis")
      yield* Fiber.interrupt(fiber)
      expect(yield* openCursors(conn)).toBe(0)
      expect(conn.info.transactionStatus).toBe("IDLE")
    }))

  it.effect("WITH HOLD cursors live without a transaction; names are quoted", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      yield* Effect.scoped(Effect.gen(function*() {
        const cursor = yield* conn.serverCursor("we\"ird; name", "SELECT 1 AS one", [], {
          withHold: true,
          rowFactory: RowFactory.record
        })
        expect(conn.info.transactionStatus).toBe("IDLE")
        expect(yield* cursor.fetchAll).toEqual([{ one: 1 }])
      }))
      expect(yield* openCursors(conn)).toBe(0)
    }))
})

layer(TestDatabase.layer, { excludeTestServices: true })("LISTEN / NOTIFY", (it) => {
  it.effect("delivers notifications from another session and UNLISTENs when the stream ends", () =>
    Effect.gen(function*() {
      const listener = yield* connect
      const sender = yield* connect
      const fiber = yield* Effect.forkChild(Stream.runCollect(Stream.take(listener.listen("jobs", "other \"channel\""), 3)))
      yield* Effect.sleep("100 millis")
      yield* sender.notify("jobs", "one")
      yield* sender.notify("other \"channel\"", "two")
      yield* sender.execute("NOTIFY jobs, 'three'")
      const received = yield* Fiber.join(fiber)
      expect(received.map((n) => [n.channel, n.payload])).toEqual([
        ["jobs", "one"],
        ["other \"channel\"", "two"],
        ["jobs", "three"]
      ])
      expect(received[0].pid).toBe(sender.info.backendPid)
      const channels = yield* listener.execute("SELECT count(*)::int FROM pg_listening_channels()")
      expect(channels.rows).toEqual([[0]])
    }))

  it.effect("fails the stream with a typed error when the listening connection is lost", () =>
    Effect.gen(function*() {
      const listener = yield* connect
      const admin = yield* connect
      const fiber = yield* Effect.forkChild(Stream.runCollect(listener.listen("lost")))
      yield* Effect.sleep("100 millis")
      yield* admin.execute("SELECT pg_terminate_backend($1)", [listener.info.backendPid])
      const exit = yield* Fiber.await(fiber)
      expect(Exit.isFailure(exit)).toBe(true)
      if (Exit.isFailure(exit)) expect(String(exit.cause)).toContain("ConnectionError")
    }))
})
