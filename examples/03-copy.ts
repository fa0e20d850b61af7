/**
 * Example 3 — the seed's COPY snippets, in Effect, and a bulk load of a
 * generated CSV file with a progress bar.
 *
 * ```python
 * records = [(10, 20, "hello"), (40, None, "world")]
 *
 * with cursor.copy("COPY out_table_name (col1, col2, col3) FROM STDIN") as copy:
 *     for record in records:
 *         copy.write_row(record)
 *
 * with cur.copy("COPY (VALUES (10::int, current_date)) TO STDOUT") as copy:
 *     copy.set_types(["int4", "date"])
 *     for row in copy.rows():
 *         print(row)  # (10, datetime.date(2046, 12, 24))
 * ```
 *
 * | Python | Effect |
 * |---|---|
 * | `with cursor.copy("… FROM STDIN") as copy:` | `const copy = yield* Copy.from(conn, "… FROM STDIN")` in a scope |
 * | `copy.write_row(record)` | `yield* copy.writeRow(record)` |
 * | leaving the `with` block | `yield* copy.finish` (→ rows loaded); a failure or interruption before it sends CopyFail: nothing is loaded |
 * | `copy.set_types(["int4", "date"])` | `Copy.to(conn, sql, { types: ["int4", "date"] })` |
 * | `for row in copy.rows():` | a `Stream` of typed rows (`Stream.runForEach`, `runCollect`, …) |
 * | `datetime.date(2046, 12, 24)` | `"2046-12-24"` (dates are `YYYY-MM-DD` strings, see the README's types) |
 *
 * Then `Copy.fromFile` loads a generated CSV file (1,000,000 rows by default)
 * with `Copy.withProgressBar` drawing the progress on a terminal.
 *
 * Run: `npx tsx examples/03-copy.ts [rows]` (DATABASE_URL, or an embedded server).
 */
import { Console, Effect, Stream } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Connection } from "@pgfx/core"
import { Copy } from "@pgfx/copy"
import { isMain, runMain } from "./run.ts"

/** A temporary directory, removed with everything in it when the scope closes. */
const temporaryDirectory = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "pgfx-example-copy-"))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

/** Writes `rows` CSV lines `id,name,score` (with a header) to `file`, in 1 MiB blocks. */
const generateCsv = (file: string, rows: number) =>
  Effect.promise(async () => {
    const out = fs.createWriteStream(file)
    let block = "id,name,score\n"
    for (let id = 1; id <= rows; id++) {
      block += `${id},"name ${id}",${(id % 1000) / 10}\n`
      if (block.length >= 1 << 20) {
        if (!out.write(block)) await new Promise<void>((resolve) => out.once("drain", () => resolve()))
        block = ""
      }
    }
    await new Promise<void>((resolve, reject) => out.end(block, () => resolve()).once("error", reject))
    return fs.statSync(file).size
  })

/** Loads a generated CSV file of `rows` rows with `Copy.fromFile`, drawing a progress bar. */
export const bulkLoad = (conn: Connection.Connection, rows: number) =>
  Effect.scoped(Effect.gen(function*() {
    const dir = yield* temporaryDirectory
    const file = path.join(dir, "bulk.csv")
    const generatedAt = Date.now()
    const size = yield* generateCsv(file, rows)
    yield* Console.log(
      `generated ${file}: ${rows.toLocaleString("en-US")} rows, ${(size / 1048576).toFixed(1)} MB in ${
        ((Date.now() - generatedAt) / 1000).toFixed(2)
      } s`
    )
    yield* conn.execute("CREATE TABLE bulk (id integer PRIMARY KEY, name text NOT NULL, score numeric)")
    const last = yield* Copy.withProgressBar(
      Copy.fromFile(conn, "COPY bulk (id, name, score) FROM STDIN", file, { format: "csv", header: true }),
      { label: "COPY bulk" }
    )
    const seconds = (last?.elapsedMillis ?? 0) / 1000
    yield* Console.log(
      `COPY bulk: ${(last?.rows ?? 0).toLocaleString("en-US")} rows in ${seconds.toFixed(2)} s (${
        Math.round(last?.rowsPerSecond ?? 0).toLocaleString("en-US")
      } rows/s, ${((last?.bytes ?? 0) / 1048576).toFixed(1)} MB)`
    )
    const check = yield* conn.execute("SELECT count(*)::int, sum(id)::text FROM bulk")
    return { loaded: last?.rows ?? 0, count: check.rows[0][0] as number, sumOfIds: check.rows[0][1] as string }
  }))

export const program = (url: string, options?: { readonly rows?: number }) =>
  Effect.gen(function*() {
    const conn = yield* Connection.connect(url)
    yield* conn.execute("CREATE TABLE out_table_name (col1 integer, col2 integer, col3 text)")

    // Writing: psycopg's copy.write_row, one row at a time.
    const records = [[10, 20, "hello"], [40, null, "world"]] as const
    const written = yield* Effect.scoped(Effect.gen(function*() {
      const copy = yield* Copy.from(conn, "COPY out_table_name (col1, col2, col3) FROM STDIN")
      for (const record of records) yield* copy.writeRow(record)
      return yield* copy.finish
    }))
    yield* Console.log(`COPY FROM STDIN: ${written} rows written`)
    const table = yield* conn.execute("SELECT col1, col2, col3 FROM out_table_name ORDER BY col1")
    for (const row of table.rows) yield* Console.log(" ", row)

    // Reading: psycopg's set_types + rows(), as a Stream of typed rows.
    const read: Array<readonly [number | null, string | null]> = []
    yield* Copy.to(conn, "COPY (VALUES (10::int, current_date)) TO STDOUT", { types: ["int4", "date"] }).pipe(
      Stream.runForEach((row) =>
        Effect.andThen(Effect.sync(() => read.push(row)), Console.log("COPY TO STDOUT:", row)) // [ 10, '2046-12-24' ]
      )
    )

    // Bulk: a generated CSV file through Copy.fromFile, with a progress bar.
    const bulk = yield* bulkLoad(conn, options?.rows ?? 1_000_000)
    return { written, table: table.rows, read, bulk }
  }).pipe(Effect.scoped)

if (isMain(import.meta.url)) {
  const rows = process.argv[2] === undefined ? undefined : Number(process.argv[2])
  runMain((url) => program(url, { rows }))
}
