/**
 * W6 pool overhead: N × `SELECT 1` through a pool of 10 with 50 in flight
 * (100,000; 5,000 with --quick), in q/s. Ceiling: pgbench with `SELECT 1`,
 * `-M prepared -c 10 -j 2`.
 */
import { Effect } from "effect"
import { pgbench, W6_SCRIPT } from "./lib/ceilings.ts"
import { effectPool, pgfxPool, pgfxSqlPool, pgPool, postgresJs } from "./lib/clients.ts"
import { type BenchContext, type Ceiling, type Contender, runLimited, runSeries, type Series } from "./lib/types.ts"

const POOL_SIZE = 10
const IN_FLIGHT = 50

export const w6 = async (ctx: BenchContext): Promise<Array<Series>> => {
  const n = ctx.quick ? 5_000 : 100_000
  const url = ctx.env.url
  const items = Array.from({ length: n }, (_, i) => i)
  const contenders: Array<Contender> = [
    {
      client: "pgfx pool.use",
      kind: "pgfx",
      connections: POOL_SIZE,
      note: `ConnectionPool(${POOL_SIZE}), Effect.forEach concurrency ${IN_FLIGHT}, pool.use → execute("SELECT 1", [])`,
      setup: async () => {
        const held = await pgfxPool(url, POOL_SIZE)
        const pool = held.value
        const work = Effect.forEach(items, () => pool.use((conn) => conn.execute("SELECT 1", [])), {
          concurrency: IN_FLIGHT,
          discard: true
        })
        return { run: () => held.run(work), close: held.close }
      }
    },
    {
      client: "pgfx pool.execute",
      kind: "pgfx",
      connections: POOL_SIZE,
      note: `ConnectionPool(${POOL_SIZE}), Effect.forEach concurrency ${IN_FLIGHT}, pool.execute("SELECT 1", []) (shared, pipelined)`,
      setup: async () => {
        const held = await pgfxPool(url, POOL_SIZE)
        const pool = held.value
        const work = Effect.forEach(items, () => pool.execute("SELECT 1", []), { concurrency: IN_FLIGHT, discard: true })
        return { run: () => held.run(work), close: held.close }
      }
    },
    {
      client: "pgfx PgSql",
      kind: "pgfx",
      connections: POOL_SIZE,
      note: `PgSql.make({ pool }) over ConnectionPool(${POOL_SIZE}), sql\`SELECT 1\`.values, concurrency ${IN_FLIGHT}`,
      setup: async () => {
        const held = await pgfxSqlPool(url, POOL_SIZE)
        const sql = held.value
        const work = Effect.forEach(items, () => sql`SELECT 1`.values, { concurrency: IN_FLIGHT, discard: true })
        return { run: () => held.run(work), close: held.close }
      }
    },
    {
      client: "pg",
      kind: "peer",
      connections: POOL_SIZE,
      note: `pg.Pool(${POOL_SIZE}), named prepared statement, ${IN_FLIGHT} in flight`,
      setup: async () => {
        const pool = await pgPool(url, POOL_SIZE)
        return {
          run: () => runLimited(n, IN_FLIGHT, () => pool.query({ name: "one", text: "SELECT 1", rowMode: "array" })),
          close: () => pool.end()
        }
      }
    },
    {
      client: "postgres.js",
      kind: "peer",
      connections: POOL_SIZE,
      note: `max ${POOL_SIZE}, prepare: true, ${IN_FLIGHT} in flight`,
      setup: async () => {
        const sql = await postgresJs(url, POOL_SIZE)
        return {
          run: () => runLimited(n, IN_FLIGHT, () => sql.unsafe("SELECT 1", [], { prepare: true }).values()),
          close: () => sql.end({ timeout: 5 })
        }
      }
    },
    ...[false, true].map((multiplex): Contender => ({
      client: multiplex ? "@effect/sql-pg multiplex" : "@effect/sql-pg",
      kind: "peer",
      connections: POOL_SIZE,
      note: `PgClient.make(${POOL_SIZE} connections${multiplex ? ", multiplex: true" : ""}), Effect.forEach concurrency ${IN_FLIGHT}`,
      setup: async () => {
        const held = await effectPool(url, POOL_SIZE, multiplex)
        const sql = held.value
        const work = Effect.forEach(items, () => sql.unsafe("SELECT 1").values, { concurrency: IN_FLIGHT, discard: true })
        return { run: () => held.run(work), close: held.close }
      }
    }))
  ]
  const ceilings: Array<Ceiling> = []
  if (ctx.ceilings) {
    ctx.log("  W6 ceiling: pgbench SELECT 1 -c 10 -j 2 ...")
    ceilings.push({
      label: "pgbench -M prepared -c 10 -j 2 (SELECT 1)",
      value: await pgbench(ctx.env, ["-f", W6_SCRIPT(), "-c", "10", "-j", "2"], ctx.quick ? 2 : 5).catch(() => undefined),
      note: "libpq, 10 connections, no pool"
    })
  }
  return [
    await runSeries(
      ctx,
      {
        workload: "W6",
        id: "W6",
        title: `pool overhead: SELECT 1 through a pool of ${POOL_SIZE}, ${IN_FLIGHT} in flight`,
        variant: `${n.toLocaleString("en-US")} queries`,
        unit: "q/s",
        better: "higher",
        ceilings
      },
      contenders,
      (ms) => n / (ms / 1000),
      ctx.quick ? ctx.plan : { warmup: 1, rounds: Math.min(ctx.plan.rounds, 3) }
    )
  ]
}
