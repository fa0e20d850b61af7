/**
 * Every example runs against a fresh database of its own, so none can rot:
 * each test runs the example's `program`, checks what it returns and what it
 * printed, and then looks at the server (tables, sessions left behind).
 */
import { describe, expect, it } from "@effect/vitest"
import { Console, Deferred, Effect, Fiber } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import { inspect } from "node:util"
import { Connection } from "@pgfx/core"
import { program as cursorBasics } from "../examples/01-cursor-basics.ts"
import { program as pool } from "../examples/02-pool.ts"
import { program as copy } from "../examples/03-copy.ts"
import { program as transactions } from "../examples/04-transactions.ts"
import { MyPool, program as parallelQuery } from "../examples/05-parallel-query.ts"
import { baseUrl, program as service, ServerLive } from "../examples/06-service.ts"
import { withSeedLogging } from "../examples/logging.ts"
import { withSearchPath } from "../examples/run.ts"
import { TestDatabase } from "./harness.ts"

/** A Console that keeps what the example prints (one string per call). */
const captureConsole = () => {
  const lines: Array<string> = []
  const keep = (...args: ReadonlyArray<unknown>) =>
    void lines.push(args.map((arg) => (typeof arg === "string" ? arg : inspect(arg))).join(" "))
  const console: Console.Console = Object.assign(Object.create(globalThis.console), {
    log: keep,
    info: keep,
    warn: keep,
    error: keep
  })
  return { lines, console }
}

/** Runs `f` with a fresh database's URL and a captured console. */
const withExample = <A, E>(f: (url: string, lines: ReadonlyArray<string>) => Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    const url = yield* TestDatabase.url
    const { console, lines } = captureConsole()
    return yield* Effect.provideService(f(url, lines), Console.Console, console)
  }).pipe(TestDatabase.provide)

const query = (url: string, sql: string) =>
  Effect.scoped(Effect.flatMap(Connection.connect(url), (conn) => conn.execute(sql))).pipe(
    Effect.map((result) => result.rows)
  )

/** Sessions on the database other than the asking one; waits up to 3 s for closing ones to go. */
const sessionsLeft = (url: string) =>
  Effect.gen(function*() {
    const sql = `SELECT count(*)::int FROM pg_stat_activity
                  WHERE datname = current_database() AND pid <> pg_backend_pid()`
    for (let attempt = 0;; attempt++) {
      const count = (yield* query(url, sql))[0][0] as number
      if (count === 0 || attempt >= 30) return count
      yield* Effect.sleep("100 millis")
    }
  })

/** `YYYY-MM-DD HH:MM:SS,mmm LEVEL name: message`, as the seed's logging config prints. */
const seedLine = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (INFO|WARNING|ERROR) [\w.]+: /

describe("examples", () => {
  it.live("withSearchPath adds search_path to URLs and conninfo strings", () =>
    Effect.sync(() => {
      expect(withSearchPath("postgresql://u@h/db?sslmode=disable", "s1")).toBe(
        "postgresql://u@h/db?sslmode=disable&options=-c%20search_path%3Ds1"
      )
      expect(withSearchPath("postgresql://u@h/db?options=-c%20work_mem%3D8MB", "s1")).toBe(
        "postgresql://u@h/db?options=-c%20work_mem%3D8MB%20-c%20search_path%3Ds1"
      )
      expect(withSearchPath("dbname=test user=postgres", "s1")).toBe("dbname=test user=postgres options='-c search_path=s1'")
    }))

  it.live("the examples' scratch schema works as a search_path through the URL", () =>
    withExample((url) =>
      Effect.gen(function*() {
        yield* query(url, "CREATE SCHEMA scratch_1")
        const scoped = withSearchPath(url, "scratch_1")
        yield* query(scoped, "CREATE TABLE t (x int)")
        const where = yield* query(url, "SELECT table_schema FROM information_schema.tables WHERE table_name = 't'")
        expect(where).toEqual([["scratch_1"]])
      })
    ))

  it.live("1. cursor basics: fetchOne gives the seed's row, and it is committed", () =>
    withExample((url, lines) =>
      Effect.gen(function*() {
        const first = yield* cursorBasics(url)
        expect(first).toEqual([1, 100, "abc'def"])
        expect(lines).toEqual([
          `fetchOne: [ 1, 100, "abc'def" ]`,
          `fetchMany(2): [ [ 1, 100, "abc'def" ] ]`,
          `fetchAll: [ [ 1, 100, "abc'def" ] ]`,
          `iterate: [ 1, 100, "abc'def" ]`
        ])
        // committed: another session sees it; and no session was left behind
        expect(yield* query(url, "SELECT id, num, data FROM test")).toEqual([[1, 100, "abc'def"]])
        expect(yield* sessionsLeft(url)).toBe(0)
      })
    ))

  it.live("2. pool: four squares on two connections take two rounds of a second, twice", () =>
    withExample((url, lines) =>
      Effect.gen(function*() {
        const { direct, layered } = yield* pool(url)
        for (const round of [direct, layered]) {
          expect([...round.squares].sort((a, b) => a[0] - b[0])).toEqual([[0, 0], [1, 1], [2, 4], [3, 9]])
          // two at a time: 0 and 1 get the two connections first and finish first
          expect(round.squares.slice(0, 2).map(([n]) => n).sort()).toEqual([0, 1])
          expect(round.elapsedMillis).toBeGreaterThanOrEqual(1950)
          expect(round.elapsedMillis).toBeLessThan(4000)
          expect(round.stats.pool_size).toBe(2)
          expect(round.stats.pool_max).toBe(2)
          expect(round.stats.requests_num).toBe(4)
          expect(round.stats.requests_queued).toBe(2)
        }
        // the seed's logging format, the pool's lines at INFO included
        const logged = lines.filter((line) => seedLine.test(line))
        expect(logged.filter((line) => line.endsWith("INFO root: pool ready"))).toHaveLength(2)
        expect(logged.filter((line) => / INFO pgfx\.pool: connection given by 'pool-\d+'$/.test(line)).length).toBe(8)
        expect(logged.filter((line) => / INFO pgfx\.pool: waiting for a connection from /.test(line)).length).toBe(4)
        for (const n of [0, 1, 2, 3]) {
          expect(logged.filter((line) => line.endsWith(`INFO root: The square of ${n} is ${n * n}.`))).toHaveLength(2)
        }
        expect(lines.filter((line) => /^4 squares in \d\.\d\d s with 2 connections$/.test(line))).toHaveLength(2)
        // both pools are closed: no session left
        expect(yield* sessionsLeft(url)).toBe(0)
      })
    ), 30_000)

  it.live("3. COPY: write_row, set_types and a generated file loaded through Copy.fromFile", () =>
    withExample((url, lines) =>
      Effect.gen(function*() {
        const before = new Set(fs.readdirSync(os.tmpdir()).filter((name) => name.startsWith("pgfx-example-copy-")))
        const result = yield* copy(url, { rows: 50_000 })
        expect(result.written).toBe(2)
        expect(result.table).toEqual([[10, 20, "hello"], [40, null, "world"]])
        const today = (yield* query(url, "SELECT current_date::text"))[0][0]
        expect(result.read).toEqual([[10, today]])
        expect(result.bulk).toEqual({ loaded: 50_000, count: 50_000, sumOfIds: String((50_000 * 50_001) / 2) })
        // the server has what was written
        expect(yield* query(url, "SELECT col1, col2, col3 FROM out_table_name ORDER BY col1")).toEqual(result.table)
        expect(yield* query(url, "SELECT id, name, score::text FROM bulk WHERE id IN (1, 50000) ORDER BY id")).toEqual([
          [1, "name 1", "0.1"],
          [50_000, "name 50000", "0"]
        ])
        expect(lines).toContain(`COPY TO STDOUT: [ 10, '${today}' ]`)
        expect(lines.some((line) => /^COPY bulk: 50,000 rows in \d+\.\d\d s/.test(line))).toBe(true)
        // the generated file's directory is gone
        const after = fs.readdirSync(os.tmpdir()).filter((name) => name.startsWith("pgfx-example-copy-") && !before.has(name))
        expect(after).toEqual([])
        expect(yield* sessionsLeft(url)).toBe(0)
      })
    ), 30_000)

  it.live("4. transactions: commit together, roll back on a failure and on interruption", () =>
    withExample((url, lines) =>
      Effect.gen(function*() {
        const result = yield* transactions(url)
        expect(result.before).toEqual([])
        expect(result.committed).toEqual([1, 2, 3, 4, 5])
        expect(result.failure._tag).toBe("UniqueViolation")
        expect(result.afterFailure).toEqual([1, 2, 3, 4, 5])
        expect(result.timedOut).toBe(true)
        expect(result.afterInterruption).toEqual([1, 2, 3, 4, 5])
        expect(result.server).toEqual({ idleInTransaction: 0, sleeping: 0 })
        expect(lines).toContain("  after   ledger = [1, 2, 3, 4, 5]")
        expect(lines.some((line) => line.startsWith("  failed with UniqueViolation: duplicate key value"))).toBe(true)
        // the server agrees, and nothing is left open
        expect(yield* query(url, "SELECT id, note FROM ledger ORDER BY id")).toEqual(
          [1, 2, 3, 4, 5].map((id) => [id, `entry ${id}`])
        )
        expect(yield* sessionsLeft(url)).toBe(0)
      })
    ), 30_000)

  it.live("5. my_pool: parallelQuery returns every result, beats sequential, reports and cancels stragglers", () =>
    withExample((url, lines) =>
      Effect.gen(function*() {
        const result = yield* parallelQuery(url)
        expect(result.one).toEqual([{ id: 42, name: "point 42", value: "21.0" }])
        for (const run of [result.local, result.remote]) {
          expect(run.sequential).toHaveLength(1000)
          expect(run.fanned.completed).toHaveLength(1000)
          expect(run.fanned.failed).toEqual([])
          expect(run.fanned.timedOut).toEqual([])
          // every result is there, with its query, in input order
          run.fanned.completed.forEach(({ index, item, value }, position) => {
            expect(index).toBe(position)
            const id = (item as { params: ReadonlyArray<number> }).params[0]
            expect(value).toEqual([[id, `point ${id}`, (id / 2).toFixed(1)]])
          })
          expect(run.fanned.completed.map(({ value }) => value)).toEqual(run.sequential)
        }
        // a millisecond of latency per query: 32 at once are much faster than one at a time
        expect(result.remote.sequentialMillis).toBeGreaterThan(1000)
        expect(result.remote.ratio).toBeGreaterThan(3)
        // the stragglers are reported, after the 3 s deadline, and no longer run on the server
        expect(result.late.result.completed).toHaveLength(100)
        expect(result.late.result.timedOut).toEqual(["SELECT pg_sleep(30) AS straggler_1", "SELECT pg_sleep(30) AS straggler_2"])
        expect(result.late.millis).toBeGreaterThanOrEqual(2900)
        expect(result.late.millis).toBeLessThan(8000)
        expect(result.stillRunning).toBe(0)
        // the warm-up ran about once a second without failing
        expect(result.warmUps.ok).toBeGreaterThanOrEqual(2)
        expect(result.warmUps.failed).toBe(0)
        expect(lines.some((line) => /^fan-out vs sequential: \d+\.\dx faster$/.test(line))).toBe(true)
        expect(yield* sessionsLeft(url)).toBe(0)
      })
    ), 60_000)

  it.live("5. my_pool: warm-up and query failures are logged, and the warm-up stops with the pool", () =>
    withExample((url, lines) =>
      Effect.gen(function*() {
        const counts = yield* withSeedLogging(Effect.scoped(Effect.gen(function*() {
          const my = yield* MyPool.make({
            conninfo: url,
            minSize: 1,
            maxSize: 2,
            warmUp: { query: "SELECT 1/0", interval: "100 millis" }
          })
          yield* Effect.sleep("650 millis")
          const error = yield* Effect.flip(my.query("SELECT * FROM no_such_table"))
          expect(error._tag).toBe("UndefinedTable")
          return my.warmUps
        })))
        const atClose = yield* counts
        expect(atClose.ok).toBe(0)
        expect(atClose.failed).toBeGreaterThanOrEqual(3)
        yield* Effect.sleep("300 millis")
        expect(yield* counts).toEqual(atClose) // the fiber stopped with the scope
        const errors = lines.filter((line) => seedLine.test(line) && line.includes(" ERROR my_pool: "))
        expect(errors.filter((line) => line.includes("_warm_up failed by: ") && line.includes("division by zero")).length).toBe(
          atClose.failed
        )
        expect(errors.some((line) =>
          line.includes("query with sql: SELECT * FROM no_such_table failed by: UndefinedTable")
        )).toBe(true)
        expect(yield* sessionsLeft(url)).toBe(0)
      })
    ), 30_000)

  it.live("6. the service's own run: start, requests, stop", () =>
    withExample((url, lines) =>
      Effect.gen(function*() {
        const result = yield* service(url, { importRows: 2000 })
        expect(result.created.status).toBe(201)
        expect(JSON.parse(result.created.text)).toEqual([{ id: 1, name: "apple", qty: 3 }, { id: 2, name: "banana", qty: 5 }])
        expect(result.duplicate.status).toBe(409)
        expect(JSON.parse(result.imported.text)).toEqual({ imported: 2000 })
        expect(result.export).toMatchObject({ status: 200, lines: 2003 })
        expect(result.health.status).toBe(200)
        expect(lines.some((line) => / INFO http: POST \/items\/import 200 \(\d+ ms\)$/.test(line))).toBe(true)
        expect(yield* query(url, "SELECT count(*)::int FROM items")).toEqual([[2002]])
        expect(yield* sessionsLeft(url)).toBe(0)
        // the server is gone
        const refused = yield* Effect.promise(() => fetch(`${result.base}/health`).then(() => false, () => true))
        expect(refused).toBe(true)
      })
    ), 30_000)

  it.live("6. the HTTP API, driven with real requests on a free port", () =>
    withExample((url) =>
      Effect.gen(function*() {
        const base = yield* Effect.gen(function*() {
          const base = yield* baseUrl
          expect(base).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
          const call = (path: string, init?: RequestInit) =>
            Effect.promise(async () => {
              const response = await fetch(`${base}${path}`, init)
              return { status: response.status, headers: response.headers, text: await response.text() }
            })
          const json = (body: unknown): RequestInit => ({
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify(body)
          })
          const count = Effect.map(query(url, "SELECT count(*)::int FROM items"), (rows) => rows[0][0])

          // create in a transaction
          const created = yield* call("/items", json([{ name: "apple", qty: 3 }, { name: "banana", qty: 5 }]))
          expect(created.status).toBe(201)
          expect(JSON.parse(created.text)).toEqual([{ id: 1, name: "apple", qty: 3 }, { id: 2, name: "banana", qty: 5 }])
          // a duplicate in the middle of a batch: 409, and nothing of the batch is stored
          const duplicate = yield* call("/items", json([{ name: "cherry", qty: 1 }, { name: "apple", qty: 1 }, { name: "date", qty: 2 }]))
          expect(duplicate.status).toBe(409)
          expect(JSON.parse(duplicate.text).error).toBe("UniqueViolation")
          expect(yield* count).toBe(2)
          expect(yield* query(url, "SELECT name FROM items WHERE name IN ('cherry', 'date')")).toEqual([])
          // invalid input: 400 before any SQL
          const invalid = yield* call("/items", json([{ name: "", qty: -1 }]))
          expect(invalid.status).toBe(400)
          expect(yield* count).toBe(2)

          // a streamed CSV upload, fed to COPY as it arrives
          const rows = 5000
          let sent = 0
          const upload = new ReadableStream<Uint8Array>({
            pull(controller) {
              if (sent === 0) controller.enqueue(new TextEncoder().encode("name,qty\n"))
              if (sent >= rows) return controller.close()
              let block = ""
              for (let i = 0; i < 500; i++) block += `item ${++sent},${sent % 10}\n`
              controller.enqueue(new TextEncoder().encode(block))
            }
          })
          const imported = yield* call("/items/import", { method: "POST", body: upload, duplex: "half" } as RequestInit)
          expect(imported.status).toBe(200)
          expect(JSON.parse(imported.text)).toEqual({ imported: rows })
          expect(yield* count).toBe(2 + rows)
          // a bad row: 400, and nothing of that upload is stored (COPY is one statement)
          const bad = yield* call("/items/import", { method: "POST", body: "name,qty\nfig,1\ngrape,lots\nkiwi,2\n" })
          expect(bad.status).toBe(400)
          expect(JSON.parse(bad.text).message).toMatch(/invalid input syntax for type integer: "lots"/)
          expect(yield* count).toBe(2 + rows)
          expect(yield* query(url, "SELECT name FROM items WHERE name = 'fig'")).toEqual([])

          // pages
          const page = yield* call("/items?limit=2&offset=1")
          expect(JSON.parse(page.text)).toEqual([{ id: 2, name: "banana", qty: 5 }, expect.objectContaining({ name: "item 1", qty: 1 })])

          // a streamed CSV download
          const exported = yield* call("/items/export")
          expect(exported.status).toBe(200)
          expect(exported.headers.get("content-type")).toBe("text/csv")
          expect(exported.headers.get("content-disposition")).toBe("attachment; filename=\"items.csv\"")
          const csv = exported.text.trimEnd().split("\n")
          expect(csv).toHaveLength(1 + 2 + rows)
          expect(csv.slice(0, 3)).toEqual(["id,name,qty", "1,apple,3", "2,banana,5"])
          expect(csv[csv.length - 1]).toMatch(new RegExp(`^\\d+,item ${rows},0$`))

          // fan-out search
          const search = yield* call("/search?q=apple&q=item%204999&q=nothing")
          expect(JSON.parse(search.text)).toEqual({
            results: [
              { term: "apple", items: [{ id: 1, name: "apple", qty: 3 }] },
              { term: "item 4999", items: [expect.objectContaining({ name: "item 4999", qty: 9 })] },
              { term: "nothing", items: [] }
            ],
            failed: [],
            timedOut: []
          })

          // health with the pool's stats
          const health = yield* call("/health")
          expect(health.status).toBe(200)
          const body = JSON.parse(health.text)
          expect(body.status).toBe("ok")
          expect(body.pool).toMatchObject({ pool_min: 2, pool_max: 8, requests_waiting: 0 })
          expect(body.pool.pool_size).toBeGreaterThanOrEqual(2)
          expect(body.pool.requests_num).toBeGreaterThanOrEqual(10)

          // PUT works too (`curl -T items.csv …/items/import`)
          const put = yield* call("/items/import", { method: "PUT", body: "name,qty\nkiwi,4\n" })
          expect(JSON.parse(put.text)).toEqual({ imported: 1 })
          expect(yield* count).toBe(2 + rows + 1)

          // concurrent clients share the pool's eight connections
          const many = yield* Effect.forEach(
            Array.from({ length: 40 }, (_, i) => i),
            (i) => call(`/items?limit=1&offset=${i}`),
            { concurrency: 40 }
          )
          expect(many.every((answer) => answer.status === 200)).toBe(true)
          expect((JSON.parse((yield* call("/health")).text).pool.pool_size)).toBeLessThanOrEqual(8)

          // a download abandoned half way gives its connection back
          const controller = new AbortController()
          const response = yield* Effect.promise(() => fetch(`${base}/items/export`, { signal: controller.signal }))
          const reader = response.body!.getReader()
          yield* Effect.promise(() => reader.read())
          controller.abort()
          yield* Effect.promise(() => reader.read().catch(() => undefined))
          let available = 0
          for (let attempt = 0; attempt < 30; attempt++) {
            const stats = JSON.parse((yield* call("/health")).text).pool
            available = stats.pool_available - stats.pool_size
            if (available === 0) break
            yield* Effect.sleep("100 millis")
          }
          expect(available).toBe(0)
          return base
        }).pipe(Effect.provide(ServerLive({ conninfo: url })))

        // stopped: the port is closed and the pool's sessions are gone
        const refused = yield* Effect.promise(() => fetch(`${base}/health`).then(() => false, () => true))
        expect(refused).toBe(true)
        expect(yield* sessionsLeft(url)).toBe(0)
      })
    ), 30_000)

  it.live("6. interrupting the fiber that holds the service's layer stops the server and closes the pool", () =>
    withExample((url) =>
      Effect.gen(function*() {
        const imported = yield* Deferred.make<string>()
        const running = yield* Effect.forkChild(
          Effect.gen(function*() {
            const base = yield* baseUrl
            const answer = yield* Effect.promise(() =>
              fetch(`${base}/items/import`, {
                method: "POST",
                body: "name,qty\n" + Array.from({ length: 20_000 }, (_, i) => `row ${i},1`).join("\n") + "\n"
              }).then((response) => response.json())
            )
            expect(answer).toEqual({ imported: 20_000 })
            yield* Deferred.succeed(imported, base)
            return yield* Effect.never
          }).pipe(Effect.provide(ServerLive({ conninfo: url })))
        )
        const base = yield* Deferred.await(imported).pipe(Effect.timeout("20 seconds"))
        // while it runs, the pool holds its connections (minSize 2)
        const open = yield* query(
          url,
          "SELECT count(*)::int FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        expect(open[0][0]).toBeGreaterThanOrEqual(2)
        yield* Fiber.interrupt(running)
        expect(yield* query(url, "SELECT count(*)::int FROM items")).toEqual([[20_000]])
        expect(yield* sessionsLeft(url)).toBe(0)
        const refused = yield* Effect.promise(() => fetch(`${base}/health`).then(() => false, () => true))
        expect(refused).toBe(true)
      })
    ), 30_000)
})
