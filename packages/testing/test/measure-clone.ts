/**
 * Measures what a per-test database costs: `CREATE DATABASE … TEMPLATE <template>` (the template
 * holding the sample migrations and fixtures of `helpers.ts`) against `CREATE DATABASE …
 * TEMPLATE template0` (an empty database) and against template0 plus running the migrations and
 * fixtures (what a test would pay without a template), each with both of PostgreSQL's strategies
 * (`WAL_LOG`, the default since 15, and `FILE_COPY`). Prints the median of N runs (default 20),
 * taken round-robin so that a noisy moment of the machine hits every case alike.
 *
 *     npx tsx packages/testing/test/measure-clone.ts [N] [server URL]
 *
 * Without a URL: `DATABASE_URL`, else an embedded PostgreSQL 18 started for the measurement.
 */
import { Connection, PgSql } from "@pgfx/core"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import { EmbeddedServer } from "@pgfx/testing"
import * as Admin from "../src/internal/admin.ts"
import { ensureTemplate } from "../src/internal/template.ts"
import { fixtures, migrations } from "./helpers.ts"

const runs = Number(process.argv[2] ?? 20)

const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

const elapsed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const started = performance.now()
    yield* effect
    return performance.now() - started
  })

const measure = (serverUrl: string) =>
  Effect.scoped(Effect.gen(function*() {
    const admin = yield* Admin.connect(serverUrl)
    const version = (yield* admin.execute("SHOW server_version")).rows[0][0]
    const runId = String(process.pid)
    const template = yield* ensureTemplate(admin, serverUrl, runId, { key: "measure", migrations, fixtures })
    const cases: ReadonlyArray<readonly [string, (name: string) => Effect.Effect<unknown, unknown>]> = [
      ["clone of the template (WAL_LOG)", (name) => Admin.createDatabase(admin, name, template)],
      ["clone of the template (FILE_COPY)", (name) => admin.execute(`CREATE DATABASE "${name}" TEMPLATE "${template}" STRATEGY FILE_COPY`)],
      ["CREATE DATABASE from template0 (WAL_LOG)", (name) => Admin.createDatabase(admin, name, "template0")],
      ["CREATE DATABASE from template0 (FILE_COPY)", (name) =>
        admin.execute(`CREATE DATABASE "${name}" TEMPLATE template0 ENCODING 'UTF8' STRATEGY FILE_COPY`)],
      ["template0 + migrations + fixtures", (name) =>
        Effect.gen(function*() {
          yield* Admin.createDatabase(admin, name, "template0")
          yield* Effect.scoped(Effect.gen(function*() {
            const conn = yield* Connection.connect(Admin.databaseUrl(serverUrl, name))
            const client = yield* PgSql.make({ acquire: Effect.succeed(conn) })
            yield* PgSql.migrate({ loader: migrations }).pipe(Effect.provideService(SqlClient.SqlClient, client))
            for (const fixture of fixtures) yield* fixture.load(conn)
          }))
        })]
    ]
    console.log(`PostgreSQL ${version} at ${new URL(serverUrl).host}; median of ${runs} runs:`)
    // round-robin, so a noisy moment of the machine hits every case alike
    const times = cases.map(() => [] as Array<number>)
    const drops = cases.map(() => [] as Array<number>)
    for (let i = 0; i < runs; i++) {
      for (const [index, [, create]] of cases.entries()) {
        const name = Admin.freshName(runId, "measure")
        times[index].push(yield* elapsed(create(name)))
        drops[index].push(yield* elapsed(Admin.dropDatabase(admin, name)))
      }
    }
    for (const [index, [label]] of cases.entries()) {
      const t = times[index]
      console.log(
        `  ${label.padEnd(44)} ${median(t).toFixed(1).padStart(7)} ms  (min ${Math.min(...t).toFixed(1)}, max ${
          Math.max(...t).toFixed(1)
        }; DROP ${median(drops[index]).toFixed(1)} ms)`
      )
    }
    yield* Admin.dropDatabase(admin, template)
  }))

const program = Effect.gen(function*() {
  const given = process.argv[3]
  if (given !== undefined) return yield* measure(given)
  return yield* EmbeddedServer.withEmbeddedServer(measure)
})

Effect.runPromise(program).then(
  () => process.exit(0),
  (error) => {
    console.error(error)
    process.exit(1)
  }
)
