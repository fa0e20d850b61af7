/**
 * The main job (`npm run demo`): the examples in order, each under a
 * heading with its time, on `DATABASE_URL` (in a scratch schema dropped at
 * the end) or on an embedded PostgreSQL 18 started for the run and removed
 * afterwards.
 *
 * 1. cursor basics            — psycopg.connect, cursor, fetchone/fetchmany/fetchall, commit
 * 2. ConnectionPool           — min_size=2, wait(), logging, four squares on two connections
 * 3. COPY                     — write_row, set_types + rows(), a 1,000,000-row CSV file with a progress bar
 * 4. transactions             — commit together, roll back on a failure, roll back on interruption
 * 5. my_pool, done right      — warm-up fiber, query(row_to_dict), parallel_query: sequential vs fan-out
 * 6. a service of Layers      — HTTP API over the pool: start, a few requests, stop; the pool's stats
 *
 * `PGFX_DEMO_ROWS` changes the size of the generated COPY file.
 */
import { Console, Effect } from "effect"
import * as fs from "node:fs"
import { Connection } from "@pgfx/core"
import { program as cursorBasics } from "./01-cursor-basics.ts"
import { program as pool } from "./02-pool.ts"
import { program as copy } from "./03-copy.ts"
import { program as transactions } from "./04-transactions.ts"
import { program as parallelQuery } from "./05-parallel-query.ts"
import { program as service } from "./06-service.ts"
import { database, runEffect } from "./run.ts"

const rule = (title: string) => {
  const line = `── ${title} `
  return `\n${line}${"─".repeat(Math.max(3, 78 - line.length))}`
}

const seconds = (millis: number) => `${(millis / 1000).toFixed(2)} s`

interface Section {
  readonly title: string
  readonly seed: string
  readonly run: (url: string) => Effect.Effect<unknown, unknown>
}

const rows = Number(process.env.PGFX_DEMO_ROWS ?? 1_000_000)

const sections: ReadonlyArray<Section> = [
  { title: "1. Cursor basics", seed: "psycopg.connect · conn.cursor() · execute · fetchone/fetchmany/fetchall · commit", run: cursorBasics },
  { title: "2. ConnectionPool", seed: "ConnectionPool(min_size=2) · pool.wait() · logging at INFO · 4 workers, 2 connections", run: pool },
  { title: "3. COPY", seed: "copy.write_row · copy.set_types([\"int4\", \"date\"]) · copy.rows() · a big CSV file", run: (url) => copy(url, { rows }) },
  { title: "4. Transactions", seed: "autocommit = False · commit together · rollback on error · rollback on interruption", run: transactions },
  { title: "5. my_pool, done right", seed: "_warm_up thread · query(row_to_dict) · parallel_query: 32 workers, timeout=3", run: parallelQuery },
  { title: "6. A service composed of Layers", seed: "AsyncConnectionPool in a web app: HTTP API · repository · COPY upload/download · fan-out", run: service }
]

const demo = Effect.gen(function*() {
  const started = performance.now()
  yield* Console.log("pgfx demo — psycopg 3 and psycopg_pool for Effect, the seed's snippets side by side")
  const server = yield* Effect.scoped(Effect.gen(function*() {
    const db = yield* database
    const version = yield* Effect.scoped(
      Effect.map(Connection.connect(db.url), (conn) => {
        const v = conn.info.serverVersion
        return `${Math.floor(v / 10000)}.${v % 10000}`
      })
    )
    yield* Console.log(
      db.server === undefined
        ? `database: DATABASE_URL (PostgreSQL ${version}), in the scratch schema ${db.schema}, dropped at the end`
        : `database: embedded PostgreSQL ${version} on 127.0.0.1:${db.server.port}, data in ${db.server.baseDir} (set DATABASE_URL to use yours)`
    )
    for (const section of sections) {
      yield* Console.log(rule(section.title))
      yield* Console.log(`seed: ${section.seed}\n`)
      const sectionStarted = performance.now()
      yield* section.run(db.url)
      yield* Console.log(`(${section.title.split(" ")[0]} done in ${seconds(performance.now() - sectionStarted)})`)
    }
    yield* Console.log(rule("done"))
    return db.server
  }))
  if (server !== undefined) {
    const gone = !server.running() && !fs.existsSync(server.baseDir)
    yield* Console.log(
      gone
        ? `embedded PostgreSQL stopped, ${server.baseDir} removed`
        : `warning: the embedded PostgreSQL in ${server.baseDir} is still there`
    )
  } else {
    yield* Console.log("scratch schema dropped")
  }
  yield* Console.log(`demo finished in ${seconds(performance.now() - started)}`)
})

runEffect(demo)
