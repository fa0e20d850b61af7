/**
 * W1 sequential point queries: N × `SELECT $1::int4 * $1::int4` on one
 * connection, one after the other (10,000; 1,000 with --quick).
 * Ceiling: `pgbench -S -M prepared -c 1` (and the same statement as a
 * pgbench script).
 */
import * as Effect from "effect/Effect"
import { pgbench, W1_SCRIPT } from "./lib/ceilings.ts"
import { effectClient, pgClient, pgfxConnection, pgfxSqlConnection, postgresJs } from "./lib/clients.ts"
import { type BenchContext, type Ceiling, check, type Contender, runSeries, type Series } from "./lib/types.ts"

const SQL = "SELECT $1::int4 * $1::int4"

export const w1 = async (ctx: BenchContext): Promise<Array<Series>> => {
  const n = ctx.quick ? 1_000 : 10_000
  const url = ctx.env.url
  const contenders: Array<Contender> = [
    {
      client: "pgfx",
      kind: "pgfx",
      note: "Connection.execute (prepared after 5 runs, binary results)",
      setup: async () => {
        const held = await pgfxConnection(url)
        const conn = held.value
        const first = await held.run(conn.execute(SQL, [7]))
        check(first.rows[0][0] === 49, `pgfx returned ${String(first.rows[0][0])}`)
        const loop = Effect.gen(function*() {
          for (let i = 0; i < n; i++) yield* conn.execute(SQL, [i])
        })
        return { run: () => held.run(loop), close: held.close }
      }
    },
    {
      client: "pgfx PgSql",
      kind: "pgfx",
      note: "PgSql.make({ settings }) (effect's sql template on one pgfx connection), .values",
      setup: async () => {
        const held = await pgfxSqlConnection(url)
        const sql = held.value
        const first = await held.run(sql.unsafe(SQL, [7]).values)
        check(first[0][0] === 49, `pgfx PgSql returned ${String(first[0][0])}`)
        const loop = Effect.gen(function*() {
          for (let i = 0; i < n; i++) yield* sql.unsafe(SQL, [i]).values
        })
        return { run: () => held.run(loop), close: held.close }
      }
    },
    {
      client: "pg",
      kind: "peer",
      note: "named prepared statement, rowMode array",
      setup: async () => {
        const client = await pgClient(url)
        const first = await client.query({ name: "w1", text: SQL, values: [7], rowMode: "array" })
        check(first.rows[0][0] === 49, `pg returned ${String(first.rows[0][0])}`)
        return {
          run: async () => {
            for (let i = 0; i < n; i++) await client.query({ name: "w1", text: SQL, values: [i], rowMode: "array" })
          },
          close: () => client.end()
        }
      }
    },
    {
      client: "postgres.js",
      kind: "peer",
      note: "prepare: true, .values()",
      setup: async () => {
        const sql = await postgresJs(url, 1)
        const first = await sql.unsafe(SQL, [7], { prepare: true }).values()
        check(first[0][0] === 49, `postgres.js returned ${String(first[0][0])}`)
        return {
          run: async () => {
            for (let i = 0; i < n; i++) await sql.unsafe(SQL, [i], { prepare: true }).values()
          },
          close: () => sql.end({ timeout: 5 })
        }
      }
    },
    {
      client: "@effect/sql-pg",
      kind: "peer",
      note: "PgClient.makeClient, prepared-statement cache, .values",
      setup: async () => {
        const held = await effectClient(url)
        const sql = held.value
        const first = await held.run(sql.unsafe(SQL, [7]).values)
        check(first[0][0] === 49, `@effect/sql-pg returned ${String(first[0][0])}`)
        const loop = Effect.gen(function*() {
          for (let i = 0; i < n; i++) yield* sql.unsafe(SQL, [i]).values
        })
        return { run: () => held.run(loop), close: held.close }
      }
    }
  ]

  const ceilings: Array<Ceiling> = []
  if (ctx.ceilings) {
    const seconds = ctx.quick ? 2 : 5
    ctx.log("  W1 ceilings: pgbench -c 1 ...")
    ceilings.push({
      label: "pgbench -S -M prepared -c 1",
      value: await pgbench(ctx.env, ["-S", "-c", "1"], seconds).catch(() => undefined),
      note: "select-only pgbench transactions/s (one SELECT each), libpq"
    })
    ceilings.push({
      label: "pgbench -M prepared -c 1 (W1's statement)",
      value: await pgbench(ctx.env, ["-f", W1_SCRIPT(), "-c", "1"], seconds).catch(() => undefined),
      note: "the same SELECT $1*$1 as a pgbench script"
    })
  }

  return [
    await runSeries(
      ctx,
      {
        workload: "W1",
        id: "W1",
        title: `sequential point queries: ${n.toLocaleString("en-US")} × SELECT $1::int4 * $1::int4, one connection`,
        variant: `${n.toLocaleString("en-US")} queries`,
        unit: "q/s",
        better: "higher",
        ceilings,
        notes: ctx.quick ? ["--quick: 1,000 queries are too few for the JIT to settle; compare the full run"] : ["warm-up: 3 rounds (30,000 statements) per client"]
      },
      contenders,
      (ms) => n / (ms / 1000),
      // pgfx (Effect's deep call paths) needs ~30k statements before the JIT settles; every client gets the same
      ctx.quick ? ctx.plan : { ...ctx.plan, warmup: Math.max(ctx.plan.warmup, 3) }
    )
  ]
}
