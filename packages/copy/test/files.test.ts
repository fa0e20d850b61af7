/**
 * `Copy.fromFile` / `Copy.toFile`: CSV and text files, gzip, progress
 * events, no partial results, and the terminal progress bar.
 */
import { expect, layer } from "@effect/vitest"
import { Effect, Option, Stream } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { PassThrough } from "node:stream"
import * as zlib from "node:zlib"
import { Copy } from "../src/index.ts"
import { TestDatabase } from "../../../test/harness.ts"
import { connect } from "./helpers.ts"

const tempDir = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "pgfx-copy-"))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

const source = "SELECT g AS n, 'line ' || g || CASE WHEN g % 3 = 0 THEN E',\\n\"quoted\"' ELSE '' END AS t " +
  "FROM generate_series(1, 100000) g"

layer(TestDatabase.layer, { excludeTestServices: true })("COPY files", (it) => {
  it.effect("toFile writes CSV (gzip or plain) with progress; fromFile loads it back with progress", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      const dir = yield* tempDir
      yield* conn.execute(`CREATE TABLE src AS ${source}`)
      for (const name of ["out.csv.gz", "out.csv"]) {
        const file = path.join(dir, name)
        const written = yield* Stream.runCollect(
          Copy.toFile(conn, "COPY src TO STDOUT", file, { format: "csv", header: true, progressInterval: "1 millis" })
        )
        const last = written[written.length - 1]
        expect(last.done).toBe(true)
        expect(last.rows).toBe(100_000)
        expect(written.slice(0, -1).every((event) => !event.done)).toBe(true)
        expect(fs.readdirSync(dir).filter((entry) => entry.includes("partial"))).toEqual([])
        const content = name.endsWith(".gz") ? zlib.gunzipSync(fs.readFileSync(file)) : fs.readFileSync(file)
        expect(content.length).toBe(last.bytes)
        expect(content.subarray(0, 19).toString()).toBe("n,t\n1,line 1\n2,line")
        if (name.endsWith(".gz")) expect(last.fileBytes).toBeLessThan(content.length)

        yield* conn.execute("DROP TABLE IF EXISTS dst; CREATE TABLE dst (n int, t text)")
        const loaded = yield* Stream.runCollect(
          Copy.fromFile(conn, "COPY dst FROM STDIN", file, { format: "csv", header: true, progressInterval: "1 millis" })
        )
        const final = loaded[loaded.length - 1]
        expect(final.done).toBe(true)
        expect(final.rows).toBe(100_000)
        expect(final.totalFileBytes).toBe(fs.statSync(file).size)
        expect(final.fileBytes).toBe(final.totalFileBytes)
        const rows = loaded.map((event) => event.rows)
        expect(rows).toEqual([...rows].sort((a, b) => a - b))
        expect(loaded.some((event) => !event.done && event.rows > 0)).toBe(true)
        const differences = yield* conn.execute(
          "SELECT count(*)::int FROM (SELECT * FROM src EXCEPT ALL SELECT * FROM dst) d"
        )
        expect(differences.rows).toEqual([[0]])
      }
    }))

  it.effect("text files too, counted by lines", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      const dir = yield* tempDir
      const file = path.join(dir, "data.txt")
      fs.writeFileSync(file, Array.from({ length: 5000 }, (_, i) => `${i}\tvalue\\t${i}\n`).join(""))
      yield* conn.execute("CREATE TABLE txt (n int, t text)")
      const last = yield* Stream.runLast(Copy.fromFile(conn, "COPY txt FROM STDIN", file))
      expect(Option.getOrThrow(last).rows).toBe(5000)
      expect((yield* conn.execute("SELECT t FROM txt WHERE n = 7")).rows).toEqual([["value\t7"]])
    }))

  it.effect("a bad row in the file fails with the server's error and loads nothing", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      const dir = yield* tempDir
      const file = path.join(dir, "bad.csv")
      fs.writeFileSync(file, Array.from({ length: 50_000 }, (_, i) => i === 40_000 ? "x,oops\n" : `${i},ok\n`).join(""))
      yield* conn.execute("CREATE TABLE badfile (n int, t text)")
      const error = yield* Effect.flip(Stream.runDrain(Copy.fromFile(conn, "COPY badfile FROM STDIN", file, { format: "csv" })))
      expect(error._tag).toBe("InvalidTextRepresentation")
      expect((yield* conn.execute("SELECT count(*)::int FROM badfile")).rows).toEqual([[0]])
      const missing = yield* Effect.flip(Stream.runDrain(Copy.fromFile(conn, "COPY badfile FROM STDIN", path.join(dir, "nope.csv"))))
      expect(missing._tag).toBe("CopyFileError")
      expect(conn.info.transactionStatus).toBe("IDLE")
    }))

  it.effect("stopping the progress stream early aborts the COPY: nothing is committed", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      const dir = yield* tempDir
      const file = path.join(dir, "big.txt")
      fs.writeFileSync(file, Array.from({ length: 200_000 }, (_, i) => `${i}\n`).join(""))
      yield* conn.execute("CREATE TABLE stopped (n int)")
      const first = yield* Stream.runCollect(
        Stream.take(Copy.fromFile(conn, "COPY stopped FROM STDIN", file, { progressInterval: "0 millis", chunkSize: 4096 }), 1)
      )
      expect(first[0].done).toBe(false)
      expect((yield* conn.execute("SELECT count(*)::int FROM stopped")).rows).toEqual([[0]])
    }))

  it.effect("a failing COPY TO leaves no file behind", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      const dir = yield* tempDir
      const file = path.join(dir, "never.csv")
      const error = yield* Effect.flip(Stream.runDrain(
        Copy.toFile(conn, "COPY (SELECT 1 / (50000 - g) FROM generate_series(1, 100000) g) TO STDOUT", file, {
          format: "csv"
        })
      ))
      expect(error._tag).toBe("DivisionByZero")
      expect(fs.readdirSync(dir)).toEqual([])
      expect((yield* conn.execute("SELECT 1")).rows).toEqual([[1]])
    }))

  it.effect("withProgressBar draws a bar on a terminal and returns the last event", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      const dir = yield* tempDir
      const file = path.join(dir, "bar.csv")
      fs.writeFileSync(file, Array.from({ length: 20_000 }, (_, i) => `${i}\n`).join(""))
      yield* conn.execute("CREATE TABLE barred (n int)")
      const terminal = Object.assign(new PassThrough(), { isTTY: true, columns: 120 })
      let drawn = ""
      terminal.on("data", (chunk: Buffer) => {
        drawn += chunk.toString()
      })
      const last = yield* Copy.withProgressBar(
        Copy.fromFile(conn, "COPY barred FROM STDIN", file, { format: "csv" }),
        { label: "barred", output: terminal }
      )
      expect(last?.done).toBe(true)
      expect(last?.rows).toBe(20_000)
      expect(drawn).toContain("barred")
      expect(drawn).toContain("100%")
      expect(drawn).toContain("20,000 rows")
    }))
})
