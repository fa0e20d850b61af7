/**
 * Example 6 — a service composed of Layers: an HTTP API over the pool.
 *
 * ```
 * NodeHttpServer.layer ─┐
 *                       ├─ HttpRouter.serve(Routes)     the HTTP API
 *   Routes ── Items ── ConnectionPool.layer            repository over the pool
 * ```
 *
 * - `ConnectionPool.layer` opens the pool when the server starts and closes
 *   it when it stops (psycopg's `AsyncConnectionPool` in a web app's
 *   lifespan).
 * - `Items` is the repository service: every database call of the API is
 *   there, over `pool.use` / `pool.connection`.
 * - The routes only speak HTTP: decode the request, call `Items`, encode the
 *   answer, map typed errors to statuses (409 for a duplicate, 400 for bad
 *   input or a bad CSV row, 503 when the pool has no connection to give).
 *
 * | method | path | what |
 * |---|---|---|
 * | POST | `/items` | JSON `[{ name, qty }, …]`, inserted in one transaction: all or none (409 on a duplicate name) |
 * | GET | `/items?limit=&offset=` | a page of items |
 * | POST, PUT | `/items/import` | a CSV upload (`name,qty` with a header), streamed into `COPY … FROM STDIN` as it arrives |
 * | GET | `/items/export` | a CSV download, streamed from `COPY … TO STDOUT` as the client reads it |
 * | GET | `/search?q=…&q=…` | one query per term, fanned out (`FanOut.run`: 8 at once, 2 s deadline) |
 * | GET | `/health` | `SELECT 1` round trip and the pool's stats (psycopg_pool's names) |
 *
 * Run: `npx tsx examples/06-service.ts` starts the server on a free port,
 * makes a few requests and stops it; `npx tsx examples/06-service.ts --serve
 * [port]` keeps it running (Ctrl-C stops it and closes the pool), e.g.
 * `curl -T items.csv localhost:8080/items/import`.
 */
import { NodeHttpServer } from "@effect/platform-node"
import { Cause, Console, Context, Effect, Exit, Layer, Schema, Stream } from "effect"
import { FetchHttpClient, HttpClient, HttpClientRequest, HttpRouter, HttpServer, HttpServerRequest, HttpServerResponse } from "effect/http"
import * as http from "node:http"
import { type PgError, RowFactory } from "@pgfx/core"
import { Copy } from "@pgfx/copy"
import { ConnectionPool, FanOut } from "@pgfx/pool"
import { describe, withSeedLogging } from "./logging.ts"
import { database, isMain, runEffect, runMain } from "./run.ts"

// -----------------------------------------------------------------------------
// domain
// -----------------------------------------------------------------------------

/** An item as stored. */
export const Item = Schema.Struct({ id: Schema.Number, name: Schema.String, qty: Schema.Number })
export type Item = typeof Item.Type

/** An item to create. */
export const NewItem = Schema.Struct({
  name: Schema.NonEmptyString,
  qty: Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))
})
export type NewItem = typeof NewItem.Type

/** Rows decoded into `Item`s as they are read (a mismatch is a `DecodeError`). */
const itemRow = RowFactory.schema(Item)

/** What the repository can fail with. */
export type RepositoryError = ConnectionPool.CheckoutError | PgError.PgError

/** The answer of a fan-out search. */
export interface SearchResult {
  readonly results: ReadonlyArray<{ readonly term: string; readonly items: ReadonlyArray<Item> }>
  readonly failed: ReadonlyArray<{ readonly term: string; readonly error: string }>
  readonly timedOut: ReadonlyArray<string>
}

// -----------------------------------------------------------------------------
// the repository
// -----------------------------------------------------------------------------

/** The repository of items, over the pool. */
export class Items extends Context.Service<Items, {
  /** Inserts the items in one transaction: all of them or none. */
  readonly create: (items: ReadonlyArray<NewItem>) => Effect.Effect<ReadonlyArray<Item>, RepositoryError>
  readonly list: (page: { readonly limit: number; readonly offset: number }) => Effect.Effect<ReadonlyArray<Item>, RepositoryError>
  /** `COPY items (name, qty) FROM STDIN` fed by a CSV byte stream (with a header line); → rows loaded. */
  readonly importCsv: <E>(csv: Stream.Stream<Uint8Array, E>) => Effect.Effect<number, RepositoryError | Copy.CopyError | E>
  /** `COPY (SELECT …) TO STDOUT` as CSV bytes; the connection is held while the stream runs. */
  readonly exportCsv: Stream.Stream<Uint8Array, RepositoryError>
  /** Items whose name contains each term: one query per term, 8 at once, a 2 s deadline. */
  readonly search: (terms: ReadonlyArray<string>) => Effect.Effect<SearchResult>
  /** A round trip and the pool's stats. */
  readonly health: Effect.Effect<{ readonly latencyMillis: number; readonly pool: ConnectionPool.PoolStats }, RepositoryError>
}>()("examples/Items") {
  /** The repository on the `ConnectionPool` service; creates its table when missing. */
  static readonly layer = Layer.effect(
    Items,
    Effect.gen(function*() {
      const pool = yield* ConnectionPool.ConnectionPool
      // Fail fast (PoolTimeout) when the database cannot be reached, before the server listens.
      yield* pool.wait("10 seconds")
      yield* pool.use((conn) =>
        conn.execute(
          `CREATE TABLE IF NOT EXISTS items (
             id serial PRIMARY KEY,
             name text NOT NULL UNIQUE,
             qty integer NOT NULL CHECK (qty >= 0),
             created_at timestamptz NOT NULL DEFAULT now())`
        )
      )

      return {
        create: (items) =>
          pool.use((conn) =>
            conn.transaction(
              Effect.forEach(items, (item) =>
                Effect.map(
                  conn.execute("INSERT INTO items (name, qty) VALUES ($1, $2) RETURNING id, name, qty", [item.name, item.qty], {
                    rowFactory: itemRow
                  }),
                  (result) => result.rows[0]
                ))
            )
          ),
        list: ({ limit, offset }) =>
          pool.use((conn) =>
            conn.execute("SELECT id, name, qty FROM items ORDER BY id LIMIT $1 OFFSET $2", [limit, offset], { rowFactory: itemRow })
          ).pipe(Effect.map((result) => result.rows)),
        importCsv: (csv) =>
          pool.use((conn) => Copy.fromBytes(conn, "COPY items (name, qty) FROM STDIN", csv, { format: "csv", header: true })),
        exportCsv: Stream.unwrap(
          Effect.map(pool.connection, (conn) =>
            Copy.toBytes(conn, "COPY (SELECT id, name, qty FROM items ORDER BY id) TO STDOUT", { format: "csv", header: true }))
        ),
        search: (terms) =>
          FanOut.run(
            terms,
            (term) =>
              pool.use((conn) =>
                conn.execute(
                  "SELECT id, name, qty FROM items WHERE name ILIKE '%' || $1 || '%' ORDER BY id LIMIT 20",
                  [term],
                  { rowFactory: itemRow }
                )
              ),
            { concurrency: 8, timeout: "2 seconds" }
          ).pipe(Effect.map((outcome) => ({
            results: outcome.completed.map(({ item, value }) => ({ term: item, items: value.rows })),
            failed: outcome.failed.map(({ error, item }) => ({ term: item, error: error._tag })),
            timedOut: outcome.timedOut
          }))),
        health: Effect.gen(function*() {
          const started = performance.now()
          yield* pool.use((conn) => conn.execute("SELECT 1"), { timeout: "2 seconds" })
          return { latencyMillis: Math.round((performance.now() - started) * 100) / 100, pool: yield* pool.stats }
        })
      }
    })
  )
}

// -----------------------------------------------------------------------------
// the HTTP API
// -----------------------------------------------------------------------------

const statusOf = (tag: string): number => {
  switch (tag) {
    case "UniqueViolation":
      return 409
    case "SchemaError":
    case "RequestParseError":
    case "HttpServerError":
    case "CopyDataError":
    case "BadCopyFileFormat":
    case "InvalidTextRepresentation":
    case "CheckViolation":
    case "NotNullViolation":
    case "NumericValueOutOfRange":
      return 400
    case "PoolTimeout":
    case "TooManyRequests":
    case "PoolClosed":
    case "ConnectionError":
      return 503
    default:
      return 500
  }
}

/** A typed error as a JSON answer: `{ error: tag, message }` with a status. */
const failure = (error: unknown) => {
  const { _tag, message } = error as { _tag?: string; message?: string }
  const tag = _tag ?? "Error"
  return Effect.succeed(HttpServerResponse.jsonUnsafe({ error: tag, message: message ?? String(error) }, { status: statusOf(tag) }))
}

const searchParams = (request: HttpServerRequest.HttpServerRequest) => new URL(request.url, "http://localhost").searchParams

const count = (value: string | null, fallback: number, max: number): number => {
  const parsed = Number(value)
  return value === null || !Number.isInteger(parsed) || parsed < 0 ? fallback : Math.min(parsed, max)
}

/** A CSV upload into `COPY … FROM STDIN`: the body is not read into memory, each chunk goes out as CopyData when it arrives. */
const importCsv = (request: HttpServerRequest.HttpServerRequest) =>
  Effect.gen(function*() {
    const items = yield* Items
    const imported = yield* items.importCsv(request.stream)
    return HttpServerResponse.jsonUnsafe({ imported })
  }).pipe(Effect.catch(failure))

/** The routes: HTTP in, `Items` calls, HTTP out. */
export const Routes = Layer.mergeAll(
  HttpRouter.add("POST", "/items", (request) =>
    Effect.gen(function*() {
      const items = yield* Items
      const body = yield* request.json
      const input = yield* Schema.decodeUnknownEffect(Schema.Array(NewItem))(body)
      const created = yield* items.create(input)
      return HttpServerResponse.jsonUnsafe(created, { status: 201 })
    }).pipe(Effect.catch(failure))),
  HttpRouter.add("GET", "/items", (request) =>
    Effect.gen(function*() {
      const items = yield* Items
      const params = searchParams(request)
      const rows = yield* items.list({ limit: count(params.get("limit"), 100, 1000), offset: count(params.get("offset"), 0, 2 ** 31 - 1) })
      return HttpServerResponse.jsonUnsafe(rows)
    }).pipe(Effect.catch(failure))),
  HttpRouter.add("POST", "/items/import", importCsv),
  HttpRouter.add("PUT", "/items/import", importCsv), // curl -T items.csv …/items/import
  HttpRouter.add(
    "GET",
    "/items/export",
    Effect.gen(function*() {
      const items = yield* Items
      return HttpServerResponse.stream(items.exportCsv, {
        contentType: "text/csv",
        headers: { "content-disposition": "attachment; filename=\"items.csv\"" }
      })
    })
  ),
  HttpRouter.add("GET", "/search", (request) =>
    Effect.gen(function*() {
      const items = yield* Items
      const terms = searchParams(request).getAll("q").filter((term) => term !== "")
      return HttpServerResponse.jsonUnsafe(yield* items.search(terms))
    })),
  HttpRouter.add(
    "GET",
    "/health",
    Effect.gen(function*() {
      const items = yield* Items
      const health = yield* items.health
      return HttpServerResponse.jsonUnsafe({ status: "ok", ...health })
    }).pipe(Effect.catch(failure))
  )
)

/** One INFO line per request: `POST /items 201 (4 ms)`, or the failure (`GET /nope RouteNotFound`). */
const accessLog = <E, R>(
  app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R | HttpServerRequest.HttpServerRequest>
) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const started = performance.now()
    const exit = yield* Effect.exit(app)
    const outcome = Exit.isSuccess(exit) ? String(exit.value.status) : describe(Cause.squash(exit.cause))
    yield* Effect.logInfo(`${request.method} ${request.url} ${outcome} (${Math.round(performance.now() - started)} ms)`).pipe(
      Effect.annotateLogs({ logger: "http" })
    )
    return yield* exit
  })

/** Options of {@link ServerLive}. */
export interface ServerOptions {
  readonly conninfo: string
  /** Default 0: a free port. */
  readonly port?: number
  readonly host?: string
}

/**
 * The whole service: the HTTP server, the routes, the repository and the
 * pool, each a Layer. Building it opens the pool and starts listening;
 * releasing it stops the server, then closes the pool.
 */
export const ServerLive = (options: ServerOptions) =>
  HttpRouter.serve(Routes, { disableLogger: true, disableListenLog: true, middleware: accessLog }).pipe(
    Layer.provide(Items.layer),
    Layer.provide(ConnectionPool.layer({ conninfo: options.conninfo, minSize: 2, maxSize: 8, name: "api" })),
    Layer.provideMerge(NodeHttpServer.layer(http.createServer, { port: options.port ?? 0, host: options.host ?? "127.0.0.1" }))
  )

/** The base URL of the running server. */
export const baseUrl = Effect.gen(function*() {
  const address = (yield* HttpServer.HttpServer).address
  return address._tag === "UnixPathAddress" ? "http://localhost" : `http://127.0.0.1:${address.port}`
})

// -----------------------------------------------------------------------------
// the run: start, a few requests, stop
// -----------------------------------------------------------------------------

/** `rows` CSV lines `name,qty` after a header, as a stream of chunks: an upload that is never in memory whole. */
export const generatedCsv = (rows: number, prefix = "item") =>
  Stream.concat(
    Stream.make("name,qty\n"),
    Stream.range(1, rows).pipe(
      Stream.map((i) => `${prefix} ${i},${i % 100}\n`),
      Stream.rechunk(1000),
      Stream.mapArray((lines) => [lines.join("")])
    )
  ).pipe(Stream.encodeText)

export const program = (url: string, options?: { readonly importRows?: number }) =>
  withSeedLogging(Effect.gen(function*() {
    const base = yield* baseUrl
    yield* Console.log(`listening on ${base}`)
    const client = yield* HttpClient.HttpClient
    const send = (request: HttpClientRequest.HttpClientRequest) =>
      Effect.flatMap(client.execute(request), (response) => Effect.map(response.text, (text) => ({ status: response.status, text })))
    const show = (label: string, answer: { readonly status: number; readonly text: string }) =>
      Console.log(`  ${label} → ${answer.status} ${answer.text.length > 160 ? `${answer.text.slice(0, 160)}…` : answer.text}`)

    const created = yield* send(
      HttpClientRequest.post(`${base}/items`).pipe(
        HttpClientRequest.bodyJsonUnsafe([{ name: "apple", qty: 3 }, { name: "banana", qty: 5 }])
      )
    )
    yield* show("POST /items [apple, banana]", created)
    const duplicate = yield* send(
      HttpClientRequest.post(`${base}/items`).pipe(
        HttpClientRequest.bodyJsonUnsafe([{ name: "cherry", qty: 1 }, { name: "apple", qty: 1 }])
      )
    )
    yield* show("POST /items [cherry, apple] (apple exists: nothing is inserted)", duplicate)

    const rows = options?.importRows ?? 10_000
    const imported = yield* send(
      HttpClientRequest.post(`${base}/items/import`).pipe(
        HttpClientRequest.bodyStream(generatedCsv(rows), { contentType: "text/csv" })
      )
    )
    yield* show(`POST /items/import (${rows.toLocaleString("en-US")} CSV rows, streamed)`, imported)

    const listed = yield* send(HttpClientRequest.get(`${base}/items?limit=3`))
    yield* show("GET /items?limit=3", listed)
    const searched = yield* send(HttpClientRequest.get(`${base}/search?q=apple&q=item%20777&q=nothing`))
    const found = JSON.parse(searched.text) as SearchResult
    yield* Console.log(
      `  GET /search?q=apple&q=item 777&q=nothing → ${searched.status} ${
        found.results.map(({ items, term }) => `"${term}": ${items.length} found`).join(", ")
      }`
    )

    const exported = yield* client.execute(HttpClientRequest.get(`${base}/items/export`))
    let bytes = 0
    let lines = 0
    yield* exported.stream.pipe(
      Stream.runForEach((chunk) =>
        Effect.sync(() => {
          bytes += chunk.length
          for (const byte of chunk) if (byte === 10) lines++
        })
      )
    )
    yield* Console.log(
      `  GET /items/export → ${exported.status} ${exported.headers["content-type"]}, ${lines.toLocaleString("en-US")} lines, ${
        (bytes / 1024).toFixed(0)
      } KiB`
    )

    const health = yield* send(HttpClientRequest.get(`${base}/health`))
    const { latencyMillis, pool } = JSON.parse(health.text) as { latencyMillis: number; pool: ConnectionPool.PoolStats }
    yield* Console.log(`  GET /health → ${health.status}, SELECT 1 in ${latencyMillis} ms; pool 'api' stats:`)
    yield* Console.log(
      Object.entries(pool).map(([key, value]) => `    ${key.padEnd(20)} ${value}`).join("\n")
    )
    yield* Console.log("stopping: the server closes, then the pool")
    return { base, created, duplicate, imported, listed, searched, export: { status: exported.status, lines, bytes }, health }
  }).pipe(Effect.provide(Layer.merge(ServerLive({ conninfo: url }), FetchHttpClient.layer))))

if (isMain(import.meta.url)) {
  const serve = process.argv.indexOf("--serve")
  if (serve === -1) {
    runMain(program)
  } else {
    const port = Number(process.argv[serve + 1] ?? 8080)
    runEffect(
      withSeedLogging(Effect.scoped(Effect.gen(function*() {
        const db = yield* database
        return yield* Layer.launch(
          Layer.tap(ServerLive({ conninfo: db.url, port }), () =>
            Effect.logInfo(`listening on http://127.0.0.1:${port} (Ctrl-C to stop)`))
        )
      })))
    )
  }
}
