/**
 * Row factories and streaming through a portal, against a real server.
 */
import { expect, layer } from "@effect/vitest"
import { Effect, Schema, Stream } from "effect"
import { Connection, RowFactory } from "../src/index.ts"
import { TestDatabase } from "../../../test/harness.ts"

const connect = Effect.flatMap(TestDatabase.url, (url) => Connection.connect(url))

layer(TestDatabase.layer, { excludeTestServices: true })("row factories", (it) => {
  it.effect("returns tuples by default and records or schema-decoded rows on request", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      const sql = "SELECT 1 AS id, 'x' AS name"
      expect((yield* conn.execute(sql)).rows).toEqual([[1, "x"]])
      expect((yield* conn.execute(sql, [], { rowFactory: RowFactory.record })).rows).toEqual([{ id: 1, name: "x" }])
      const Row = Schema.Struct({ id: Schema.Number, name: Schema.String })
      const typed = yield* conn.execute(sql, [], { rowFactory: RowFactory.schema(Row) })
      expect(typed.rows).toEqual([{ id: 1, name: "x" }])
      const custom = RowFactory.make((fields) => (values) => `${fields[0].name}=${values[0]}`)
      expect((yield* conn.execute(sql, undefined, { rowFactory: custom })).rows).toEqual(["id=1"])
    }))

  it.effect("fails with a DecodeError naming the column when a row does not match the schema", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      const Row = Schema.Struct({ id: Schema.Number, name: Schema.Number })
      const error = yield* Effect.flip(
        conn.execute("SELECT 1 AS id, 'x' AS name", [], { rowFactory: RowFactory.schema(Row) })
      )
      expect(error._tag).toBe("DecodeError")
      expect(error.message).toContain("\"name\"")
      if (error._tag === "DecodeError") expect(error.column).toBe(1)
      expect((yield* conn.execute("SELECT 1")).rows).toEqual([[1]])
    }))

  it.effect("takes the connection's row factory as the default", () =>
    Effect.gen(function*() {
      const conn = yield* Connection.connect(yield* TestDatabase.url, { rowFactory: RowFactory.record })
      const result = yield* conn.execute("SELECT 2 AS two")
      const row: RowFactory.Record = result.rows[0]
      expect(row).toEqual({ two: 2 })
    }))
})

layer(TestDatabase.layer, { excludeTestServices: true })("stream", (it) => {
  it.effect("streams every row in batches from a portal", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      const rows = yield* Stream.runCollect(
        conn.stream("SELECT g, g * 2 FROM generate_series(1, $1::int) g", [2500], { batchSize: 100 })
      )
      expect(rows.length).toBe(2500)
      expect(rows[0]).toEqual([1, 2])
      expect(rows[2499]).toEqual([2500, 5000])
      expect(conn.info.transactionStatus).toBe("IDLE")
    }))

  it.effect("stopping early closes the portal and leaves the connection idle and usable", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      const first = yield* Stream.runCollect(
        Stream.take(conn.stream("SELECT g FROM generate_series(1, 10000000) g", [], { batchSize: 50 }), 5)
      )
      expect(first).toEqual([[1], [2], [3], [4], [5]])
      expect(conn.info.transactionStatus).toBe("IDLE")
      expect((yield* conn.execute("SELECT 7", [])).rows).toEqual([[7]])
    }))

  it.effect("fails with the typed server error and stays usable", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      const error = yield* Effect.flip(
        Stream.runCollect(conn.stream("SELECT 1 / (g - 3) FROM generate_series(1, 5) g", [], { batchSize: 1 }))
      )
      expect(error._tag).toBe("DivisionByZero")
      expect((yield* conn.execute("SELECT 8")).rows).toEqual([[8]])
    }))

  it.effect("holds the connection: other fibers' statements wait until the stream ends", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      const order: Array<string> = []
      yield* Effect.all([
        Stream.runForEach(conn.stream("SELECT g FROM generate_series(1, 3) g", [], { batchSize: 1 }), (row) =>
          Effect.sync(() => {
            order.push(`row ${String(row[0])}`)
          })),
        Effect.andThen(Effect.sleep("1 millis"), conn.execute("SELECT 1")).pipe(
          Effect.tap(() => Effect.sync(() => order.push("other")))
        )
      ], { concurrency: "unbounded" })
      expect(order).toEqual(["row 1", "row 2", "row 3", "other"])
    }))

  it.effect("decodes records through the stream and uses binary results once prepared", () =>
    Effect.gen(function*() {
      const conn = yield* Connection.connect(yield* TestDatabase.url, { prepareThreshold: 0 })
      for (let run = 0; run < 2; run++) {
        const rows = yield* Stream.runCollect(
          conn.stream("SELECT g AS n, now()::date AS d FROM generate_series(1, 3) g", [], {
            rowFactory: RowFactory.record
          })
        )
        expect(rows.map((row) => row.n)).toEqual([1, 2, 3])
        expect(typeof rows[0].d).toBe("string")
      }
    }))
})
