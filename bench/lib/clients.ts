/**
 * How each client is opened, with its fastest documented settings:
 * - pg (node-postgres): named prepared statements (`name:` on each query),
 *   `rowMode: "array"`; `pg.Pool` for pools.
 * - postgres.js: `prepare: true` (its default), `.values()` rows; it
 *   pipelines concurrent queries on a connection by itself.
 * - @effect/sql-pg 4: its prepared-statement cache (default on), `.values`
 *   rows; pools with and without `multiplex` (pipelining fibers' queries on
 *   a pooled connection).
 * - pgfx: `Connection.connect` (prepared after 5 runs, binary results once
 *   prepared), `ConnectionPool.make`, `FanOut.run`.
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import { Connection, PgSql } from "@pgfx/core"
import { ConnectionPool } from "@pgfx/pool"
import * as Effect from "effect/Effect"
import * as Reactivity from "effect/reactivity/Reactivity"
import * as Redacted from "effect/Redacted"
import type * as SqlClient from "effect/sql/SqlClient"
import pg from "pg"
import postgres from "postgres"
import { hold, type Held } from "./effect.ts"

export const pgClient = async (url: string): Promise<pg.Client> => {
  const client = new pg.Client({ connectionString: url })
  client.on("error", () => {})
  await client.connect()
  return client
}

/** A pg.Pool with all `max` connections opened. */
export const pgPool = async (url: string, max: number): Promise<pg.Pool> => {
  const pool = new pg.Pool({ connectionString: url, max })
  pool.on("error", () => {})
  const clients = await Promise.all(Array.from({ length: max }, () => pool.connect()))
  for (const client of clients) client.release()
  return pool
}

/** postgres.js with `max` connections, all opened. */
export const postgresJs = async (url: string, max: number): Promise<postgres.Sql> => {
  const sql = postgres(url, { max, prepare: true, onnotice: () => {}, idle_timeout: 0, max_lifetime: 0 })
  await Promise.all(Array.from({ length: max }, () => sql.unsafe("SELECT pg_sleep(0.02)")))
  return sql
}

/** @effect/sql-pg on one connection. */
export const effectClient = (url: string): Promise<Held<PgClient.PgClient>> =>
  hold(PgClient.makeClient({ url: Redacted.make(url) }).pipe(Effect.provide(Reactivity.layer)))

/** @effect/sql-pg with a pool of `size` connections. */
export const effectPool = (url: string, size: number, multiplex: boolean): Promise<Held<PgClient.PgClient>> =>
  hold(
    PgClient.make({ url: Redacted.make(url), maxConnections: size, minConnections: size, multiplex }).pipe(
      Effect.provide(Reactivity.layer)
    )
  )

export const pgfxConnection = (url: string): Promise<Held<Connection.Connection>> => hold(Connection.connect(url))

/** A pgfx pool of `size` connections, waited for. `configure` runs once on each new connection. */
export const pgfxPool = (
  url: string,
  size: number,
  configure?: (connection: Connection.Connection) => Effect.Effect<unknown, unknown>
): Promise<Held<ConnectionPool.ConnectionPool>> =>
  hold(
    Effect.tap(
      ConnectionPool.make({ conninfo: url, minSize: size, maxSize: size, checkoutLogLevel: "None", configure }),
      (pool) => pool.wait("60 seconds")
    )
  )

/** effect's `sql` template (`PgSql`) over a pgfx pool of `size` connections (statements shared, pipelined). */
export const pgfxSqlPool = (url: string, size: number): Promise<Held<SqlClient.SqlClient>> =>
  hold(
    Effect.flatMap(
      Effect.tap(
        ConnectionPool.make({ conninfo: url, minSize: size, maxSize: size, checkoutLogLevel: "None" }),
        (pool) => pool.wait("60 seconds")
      ),
      (pool) => PgSql.make({ pool })
    )
  )

/** effect's `sql` template (`PgSql`) on one pgfx connection. */
export const pgfxSqlConnection = (url: string): Promise<Held<SqlClient.SqlClient>> =>
  hold(PgSql.make({ settings: url }))
