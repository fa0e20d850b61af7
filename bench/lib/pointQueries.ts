/**
 * Contenders for 1,000 point queries `SELECT id, payload FROM items WHERE
 * id = $1` through a pool (W2 and the seed's headline), and for the same
 * queries one by one on a fresh connection each.
 */
import * as PgConnection from "@effect/sql-pg/PgConnection"
import { Connection } from "@pgfx/core"
import { FanOut } from "@pgfx/pool"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import pg from "pg"
import postgres from "postgres"
import { effectPool, pgfxPool, pgfxSqlPool, pgPool, postgresJs } from "./clients.ts"
import { runEffect } from "./effect.ts"
import { check, type Contender, runLimited } from "./types.ts"

export const POINT_SQL = "SELECT id, payload FROM items WHERE id = $1"

/** Deterministic spread-out ids in 1..100,000. */
export const pointIds = (n: number): Array<number> => Array.from({ length: n }, (_, i) => ((i * 7919) % 100_000) + 1)

export interface PoolSpec {
  readonly url: string
  readonly ids: ReadonlyArray<number>
  /** Queries in flight (pgfx pipeline: pipelines in flight, at most one per pooled connection). */
  readonly concurrency: number
  readonly poolSize: number
}

const expectRows = (client: string, rows: number, wanted: number) =>
  check(rows === wanted, `${client}: ${rows} rows returned, ${wanted} expected`)

/** pgfx (FanOut and pipelined), pg, postgres.js, @effect/sql-pg (plain and multiplexed). */
export const poolContenders = (spec: PoolSpec): Array<Contender> => {
  const { url, ids, concurrency, poolSize } = spec
  const n = ids.length
  const pipelines = Math.min(concurrency, poolSize)
  return [
    {
      client: "pgfx FanOut",
      kind: "pgfx",
      connections: poolSize,
      note: `ConnectionPool(${poolSize}) + FanOut.run(concurrency ${concurrency}), pool.use → execute`,
      setup: async () => {
        const held = await pgfxPool(url, poolSize)
        const pool = held.value
        const work = Effect.flatMap(
          FanOut.run(ids, (id) => pool.use((conn) => conn.execute(POINT_SQL, [id])), { concurrency, timeout: "120 seconds" }),
          (result) =>
            Effect.sync(() => {
              check(result.failed.length === 0 && result.timedOut.length === 0, `pgfx FanOut: ${result.failed.length} failed, ${result.timedOut.length} timed out`)
              expectRows("pgfx FanOut", result.completed.reduce((sum, c) => sum + c.value.rows.length, 0), n)
            })
        )
        return { run: () => held.run(work), close: held.close }
      }
    },
    {
      client: "pgfx pool.execute",
      kind: "pgfx",
      connections: poolSize,
      note: `ConnectionPool(${poolSize}) + FanOut.run(concurrency ${concurrency}), pool.execute (shared, pipelined)`,
      setup: async () => {
        const held = await pgfxPool(url, poolSize)
        const pool = held.value
        const work = Effect.flatMap(
          FanOut.run(ids, (id) => pool.execute(POINT_SQL, [id]), { concurrency, timeout: "120 seconds" }),
          (result) =>
            Effect.sync(() => {
              check(result.failed.length === 0 && result.timedOut.length === 0, `pgfx pool.execute: ${result.failed.length} failed, ${result.timedOut.length} timed out`)
              expectRows("pgfx pool.execute", result.completed.reduce((sum, c) => sum + c.value.rows.length, 0), n)
            })
        )
        return { run: () => held.run(work), close: held.close }
      }
    },
    {
      client: "pgfx PgSql",
      kind: "pgfx",
      connections: poolSize,
      note: `PgSql.make({ pool }) over ConnectionPool(${poolSize}), Effect.forEach concurrency ${concurrency}, sql\`…\`.values`,
      setup: async () => {
        const held = await pgfxSqlPool(url, poolSize)
        const sql = held.value
        const work = Effect.flatMap(
          Effect.forEach(ids, (id) => sql`SELECT id, payload FROM items WHERE id = ${id}`.values, { concurrency }),
          (results) => Effect.sync(() => expectRows("pgfx PgSql", results.reduce((sum, r) => sum + r.length, 0), n))
        )
        return { run: () => held.run(work), close: held.close }
      }
    },
    {
      client: "pgfx pipeline",
      kind: "pgfx",
      connections: poolSize,
      note: `ConnectionPool(${poolSize}, statement prepared by configure); ${pipelines} executeMany pipelines of ~${Math.ceil(n / pipelines)} in parallel`,
      setup: async () => {
        const held = await pgfxPool(url, poolSize, (conn) => conn.execute(POINT_SQL, [1], { prepare: true }))
        const pool = held.value
        const size = Math.ceil(n / pipelines)
        const chunks: Array<Array<ReadonlyArray<number>>> = []
        for (let i = 0; i < n; i += size) chunks.push(ids.slice(i, i + size).map((id) => [id]))
        const work = Effect.flatMap(
          Effect.forEach(chunks, (chunk) => pool.use((conn) => conn.executeMany(POINT_SQL, chunk)), { concurrency: pipelines }),
          (results) => Effect.sync(() => expectRows("pgfx pipeline", results.flat().reduce((sum, r) => sum + r.rows.length, 0), n))
        )
        return { run: () => held.run(work), close: held.close }
      }
    },
    {
      client: "pg",
      kind: "peer",
      connections: poolSize,
      note: `pg.Pool(${poolSize}), named prepared statement, ${concurrency} in flight`,
      setup: async () => {
        const pool = await pgPool(url, poolSize)
        let rows = 0
        return {
          run: async () => {
            rows = 0
            await runLimited(n, concurrency, async (i) => {
              const result = await pool.query({ name: "point", text: POINT_SQL, values: [ids[i]], rowMode: "array" })
              rows += result.rows.length
            })
            expectRows("pg", rows, n)
          },
          close: () => pool.end()
        }
      }
    },
    {
      client: "postgres.js",
      kind: "peer",
      connections: poolSize,
      note: `max ${poolSize}, prepare: true, ${concurrency} in flight (it pipelines on its connections)`,
      setup: async () => {
        const sql = await postgresJs(url, poolSize)
        let rows = 0
        return {
          run: async () => {
            rows = 0
            await runLimited(n, concurrency, async (i) => {
              const result = await sql.unsafe(POINT_SQL, [ids[i]], { prepare: true }).values()
              rows += result.length
            })
            expectRows("postgres.js", rows, n)
          },
          close: () => sql.end({ timeout: 5 })
        }
      }
    },
    ...[false, true].map((multiplex): Contender => ({
      client: multiplex ? "@effect/sql-pg multiplex" : "@effect/sql-pg",
      kind: "peer",
      connections: poolSize,
      note: `PgClient.make(${poolSize} connections${multiplex ? ", multiplex: true" : ""}), Effect.forEach concurrency ${concurrency}`,
      setup: async () => {
        const held = await effectPool(url, poolSize, multiplex)
        const sql = held.value
        const work = Effect.flatMap(
          Effect.forEach(ids, (id) => sql.unsafe(POINT_SQL, [id]).values, { concurrency }),
          (results) => Effect.sync(() => expectRows("@effect/sql-pg", results.reduce((sum, r) => sum + r.length, 0), n))
        )
        return { run: () => held.run(work), close: held.close }
      }
    }))
  ]
}

/** The same queries one by one, each on a new connection (connect, query, close). */
export const freshContenders = (url: string, ids: ReadonlyArray<number>): Array<Contender> => [
  {
    client: "pgfx",
    kind: "pgfx",
    note: "Connection.connect + execute + close per query",
    setup: async () => {
      const work = Effect.gen(function*() {
        for (const id of ids) {
          yield* Effect.scoped(Effect.flatMap(Connection.connect(url), (conn) => conn.execute(POINT_SQL, [id])))
        }
      })
      return { run: () => runEffect(work), close: async () => {} }
    }
  },
  {
    client: "pg",
    kind: "peer",
    note: "new pg.Client + query + end per query",
    setup: async () => ({
      run: async () => {
        for (const id of ids) {
          const client = new pg.Client({ connectionString: url })
          await client.connect()
          await client.query({ text: POINT_SQL, values: [id], rowMode: "array" })
          await client.end()
        }
      },
      close: async () => {}
    })
  },
  {
    client: "postgres.js",
    kind: "peer",
    note: "postgres(url, { max: 1 }) + query + end per query",
    setup: async () => ({
      run: async () => {
        for (const id of ids) {
          const sql = postgres(url, { max: 1, onnotice: () => {} })
          await sql.unsafe(POINT_SQL, [id]).values()
          await sql.end({ timeout: 5 })
        }
      },
      close: async () => {}
    })
  },
  {
    client: "@effect/sql-pg",
    kind: "peer",
    note: "PgConnection.make + queryValues + close per query",
    setup: async () => {
      const work = Effect.gen(function*() {
        for (const id of ids) {
          yield* Effect.scoped(
            Effect.flatMap(PgConnection.make({ url: Redacted.make(url) }), (conn) => conn.queryValues(POINT_SQL, [id], false))
          )
        }
      })
      return { run: () => runEffect(work), close: async () => {} }
    }
  }
]
