/**
 * COPY TO STDOUT against a real server: psycopg's COPY cases T01, T02, T06
 * (reading), T12 (COPY TO side), the seed's `set_types` snippet, early stop,
 * interruption and backpressure (F20).
 */
import { expect, layer } from "@effect/vitest"
import { Deferred, Effect, Fiber, Stream } from "effect"
import * as v8 from "node:v8"
import * as vm from "node:vm"
import { Copy } from "../src/index.ts"
import { TestDatabase } from "../../../test/harness.ts"
import {
  backendState,
  connect,
  expectNoIdleInTransaction,
  sampleBinaryBlocks,
  sampleRecords,
  sampleValues,
  scenario,
  text
} from "./helpers.ts"

layer(TestDatabase.layer, { excludeTestServices: true })("Copy.to", (it) => {
  it.effect("reads the seed's typed rows: set_types int4 and date", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      const rows = yield* Stream.runCollect(
        Copy.to(conn, "COPY (VALUES (10::int, current_date)) TO STDOUT", { types: ["int4", "date"] })
      )
      const today = (yield* conn.execute("SELECT current_date::text")).rows[0][0]
      expect(rows).toEqual([[10, today]])
      const typed: ReadonlyArray<readonly [number | null, string | null]> = rows
      expect(typed.length).toBe(1)
    }))

  it.effect("T01 toBytes gives the server's blocks exactly, in text and binary", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      yield* conn.execute("BEGIN")
      const textBlocks = yield* Stream.runCollect(
        Copy.toBytes(conn, `copy (${sampleValues}) to stdout (format TEXT)`)
      )
      expect(textBlocks.map(text)).toEqual(["40010\t40020\thello\n", "40040\t\\N\tworld\n"])
      const binaryBlocks = yield* Stream.runCollect(
        Copy.toBytes(conn, `copy (${sampleValues}) to stdout (format BINARY)`)
      )
      expect(binaryBlocks).toEqual(sampleBinaryBlocks)
      expect(conn.info.transactionStatus).toBe("INTRANS")
      // While the server is still sending, the status is ACTIVE (a small COPY may be read whole at once).
      const during: Array<string> = []
      yield* Stream.runDrain(
        Copy.toBytes(conn, "COPY (SELECT g FROM generate_series(1, 200000) g) TO STDOUT").pipe(
          Stream.tap(() => Effect.sync(() => during.push(conn.info.transactionStatus)))
        )
      )
      expect(during[0]).toBe("ACTIVE")
      expect(during.length).toBe(200000)
      expect(conn.info.transactionStatus).toBe("INTRANS")
      yield* conn.execute("ROLLBACK")
    }))

  it.effect("T02 typed rows in both formats; status INTRANS after", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      yield* conn.execute("BEGIN")
      for (const format of ["text", "binary"] as const) {
        const rows = yield* Stream.runCollect(
          Copy.to(conn, `copy (${sampleValues}) to stdout (format ${format})`, {
            format,
            types: ["int4", "int4", "text"]
          })
        )
        expect(rows).toEqual(sampleRecords)
        expect(conn.info.transactionStatus).toBe("INTRANS")
      }
      yield* conn.execute("ROLLBACK")
    }))

  it.effect("T02 read_row: int4, text and float8[]", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      for (const format of ["text", "binary", "csv"] as const) {
        const rows = yield* Stream.runCollect(
          Copy.to(conn, "copy (select 10::int4, 'hello'::text, '{0.0,1.0}'::float8[]) to stdout", {
            format,
            types: ["int4", "text", "float8[]"]
          })
        )
        expect(rows).toEqual([[10, "hello", [0, 1]]])
      }
    }))

  it.effect("T02 without types: raw text values, raw bytes in binary, NULL as null", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      const textRows = yield* Stream.runCollect(Copy.to(conn, `copy (${sampleValues}) to stdout`))
      expect(textRows).toEqual([["40010", "40020", "hello"], ["40040", null, "world"]])
      const binaryRows = yield* Stream.runCollect(
        Copy.to(conn, `copy (${sampleValues}) to stdout (format binary)`, { format: "binary" })
      )
      expect(binaryRows).toEqual([
        [new Uint8Array([0, 0, 0x9c, 0x4a]), new Uint8Array([0, 0, 0x9c, 0x54]), new TextEncoder().encode("hello")],
        [new Uint8Array([0, 0, 0x9c, 0x68]), null, new TextEncoder().encode("world")]
      ])
    }))

  it.effect("T06 int4 arrays come back unchanged, nested ones as nested arrays, in both formats", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      for (const format of ["text", "binary"] as const) {
        for (const [literal, expected] of [
          ["{10,20,-30}", [10, 20, -30]],
          ["{10,NULL,30}", [10, null, 30]],
          ["{{10,20},{30,40}}", [[10, 20], [30, 40]]],
          ["{}", []]
        ] as const) {
          const rows = yield* Stream.runCollect(
            Copy.to(conn, `copy (select '${literal}'::int[]) to stdout (format ${format})`, {
              format,
              types: ["int4[]"]
            })
          )
          expect(rows).toEqual([[expected]])
        }
      }
    }))

  it.effect("T12 statements that are not one COPY TO STDOUT are refused, the connection stays usable", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      yield* conn.execute("CREATE TABLE target (n int)")
      const collect = (sql: string) => Effect.flip(Stream.runCollect(Copy.to(conn, sql)))
      expect((yield* collect("wat"))._tag).toBe("SqlSyntaxError")
      for (const sql of ["select 1", "reset timezone", "select 1; copy (select 1) to stdout", "copy (select 1) to stdout; select 1"]) {
        const error = yield* collect(sql)
        expect(error._tag).toBe("InterfaceError")
      }
      const mixed = yield* collect("copy (select 1) to stdout; select 1")
      expect(mixed.message).toBe("COPY cannot be mixed with other operations")
      const wrongWay = yield* collect("COPY target FROM STDIN")
      expect(wrongWay._tag).toBe("InterfaceError")
      expect(wrongWay.message).toContain("COPY FROM STDIN")
      expect((yield* conn.execute("SELECT count(*)::int FROM target")).rows).toEqual([[0]])
      expect(conn.info.transactionStatus).toBe("IDLE")
    }))

  it.effect("T12 a type count that does not match the columns is refused, the COPY cancelled", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      const error = yield* Effect.flip(
        Stream.runCollect(Copy.to(conn, "COPY (SELECT 1, 2) TO STDOUT", { types: ["int4"] }))
      )
      expect(error._tag).toBe("InterfaceError")
      expect(error.message).toContain("1 types were given for a COPY of 2 columns")
      expect((yield* conn.execute("SELECT 5")).rows).toEqual([[5]])
    }))

  it.effect("F20 taking 5 rows of 10 million cancels the COPY on the server and drains it", () =>
    scenario("f20_take", (connect) => Effect.gen(function*() {
      const conn = yield* connect
      const observer = yield* connect
      const started = Date.now()
      const first = yield* Stream.runCollect(
        Stream.take(Copy.to(conn, "COPY (SELECT g FROM generate_series(1, 10000000) g) TO STDOUT", { types: ["int4"] }), 5)
      )
      expect(first).toEqual([[1], [2], [3], [4], [5]])
      expect(Date.now() - started).toBeLessThan(5000)
      expect(conn.info.transactionStatus).toBe("IDLE")
      expect((yield* backendState(observer, conn.info.backendPid))?.[0]).toBe("idle")
      expect((yield* conn.execute("SELECT 6")).rows).toEqual([[6]])
    })))

  it.effect("F20 interrupting the consumer cancels the COPY; inside a transaction it is aborted, as in psycopg", () =>
    scenario("f20_interrupt", (connect) => Effect.gen(function*() {
      const conn = yield* connect
      const observer = yield* connect
      yield* conn.execute("BEGIN")
      const got = yield* Deferred.make<void>()
      const fiber = yield* Effect.forkChild(
        Stream.runForEach(
          Copy.toBytes(conn, "COPY (SELECT g FROM generate_series(1, 10000000) g) TO STDOUT"),
          () => Deferred.succeed(got, undefined)
        )
      )
      yield* Deferred.await(got)
      yield* Fiber.interrupt(fiber)
      expect(conn.info.transactionStatus).toBe("INERROR")
      yield* conn.execute("ROLLBACK")
      expect(conn.info.transactionStatus).toBe("IDLE")
      yield* expectNoIdleInTransaction(observer)
    })))

  it.effect("F20 a slow consumer pauses the socket: the server waits in ClientWrite, buffered rows stay bounded", () =>
    scenario("f20_slow", (connect) => Effect.gen(function*() {
      const conn = yield* connect
      const observer = yield* connect
      let seen = 0
      let largestBatch = 0
      let waitEvent: string | null | undefined
      yield* Stream.runForEachArray(
        Copy.to(conn, "COPY (SELECT g, repeat('x', 200) FROM generate_series(1, 300000) g) TO STDOUT", {
          types: ["int4", "text"]
        }),
        (rows) =>
          Effect.gen(function*() {
            seen += rows.length
            largestBatch = Math.max(largestBatch, rows.length)
            if (waitEvent === undefined && seen > 20_000) {
              yield* Effect.sleep("300 millis")
              waitEvent = (yield* backendState(observer, conn.info.backendPid))?.[1]
            }
          })
      )
      expect(seen).toBe(300_000)
      expect(waitEvent).toBe("ClientWrite")
      // Rows buffered for the consumer stay near the high-water mark (16k) plus one socket read.
      expect(largestBatch).toBeLessThan(20_000)
    })))

  it.effect("F20 a consumer sleeping 1 ms per batch: 600k rows (~125 MB) pass with live memory growth under 64 MiB", () =>
    scenario("f20_memory", (connect) => Effect.gen(function*() {
      const conn = yield* connect
      // live memory (after a full GC), not RSS: RSS also counts garbage the allocator has not returned
      v8.setFlagsFromString("--expose-gc")
      const gc = vm.runInNewContext("gc") as () => void
      const live = () => {
        gc()
        const usage = process.memoryUsage()
        return usage.heapUsed + usage.arrayBuffers
      }
      const baseline = live()
      let peak = baseline
      let seen = 0
      let batches = 0
      yield* Stream.runForEachArray(
        Copy.toBytes(conn, "COPY (SELECT g, repeat('x', 200) FROM generate_series(1, 600000) g) TO STDOUT"),
        (chunks) =>
          Effect.gen(function*() {
            for (const chunk of chunks) seen += chunk.length
            if (++batches % 25 === 0) peak = Math.max(peak, live())
            yield* Effect.sleep("1 millis")
          })
      )
      console.log(`[F20] ${(seen / 1e6).toFixed(0)} MB through a slow consumer; live memory growth ${((peak - baseline) / 1048576).toFixed(1)} MiB`)
      expect(seen).toBeGreaterThan(120_000_000)
      // without backpressure the result would pile up in memory (the server sends far faster than 1 batch/ms)
      expect(peak - baseline).toBeLessThan(64 * 1024 * 1024)
    })))

  it.effect("CSV with header, delimiter, quote and null options, typed and untyped", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      const sql = "COPY (VALUES (1, 'a;b', NULL::text), (2, 'say \"hi\"', ''), (3, E'two\\nlines', 'NULL')) TO STDOUT"
      const options = { format: "csv", header: true, delimiter: ";", null: "NULL", quote: "'" } as const
      const raw = yield* Stream.runCollect(Copy.toBytes(conn, sql, options))
      expect(raw.map(text).join("")).toBe(
        "column1;column2;column3\n1;'a;b';NULL\n2;say \"hi\";\n3;'two\nlines';'NULL'\n"
      )
      const rows = yield* Stream.runCollect(Copy.to(conn, sql, { ...options, types: ["int4", "text", "text"] }))
      expect(rows).toEqual([[1, "a;b", null], [2, "say \"hi\"", ""], [3, "two\nlines", "NULL"]])
      const untyped = yield* Stream.runCollect(Copy.to(conn, sql, options))
      expect(untyped).toEqual([["1", "a;b", null], ["2", "say \"hi\"", ""], ["3", "two\nlines", "NULL"]])
    }))

  it.effect("a server error during the COPY arrives after the rows before it, typed", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      const seen: Array<unknown> = []
      const error = yield* Effect.flip(
        Stream.runForEach(
          Copy.to(conn, "COPY (SELECT 10 / (3 - g) FROM generate_series(1, 5) g) TO STDOUT", { types: ["int4"] }),
          (row) => Effect.sync(() => seen.push(row))
        )
      )
      expect(error._tag).toBe("DivisionByZero")
      expect(seen).toEqual([[5], [10]])
      expect((yield* conn.execute("SELECT 7")).rows).toEqual([[7]])
    }))

  it.effect("other fibers wait for a running COPY TO", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      const log: Array<string> = []
      const reading = yield* Deferred.make<void>()
      const reader = Stream.runForEach(
        Copy.to(conn, "COPY (SELECT g FROM generate_series(1, 3) g) TO STDOUT", { types: ["int4"] }),
        (row) =>
          Effect.gen(function*() {
            log.push(`row ${row[0]}`)
            yield* Deferred.succeed(reading, undefined)
            yield* Effect.sleep("20 millis")
          })
      ).pipe(Effect.tap(() => Effect.sync(() => log.push("copy done"))))
      const other = Effect.gen(function*() {
        yield* Deferred.await(reading)
        yield* conn.execute("SELECT 1")
        log.push("select done")
      })
      yield* Effect.all([reader, other], { concurrency: "unbounded" })
      expect(log).toEqual(["row 1", "row 2", "row 3", "copy done", "select done"])
    }))
})
