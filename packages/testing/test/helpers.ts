/**
 * Shared pieces of the harness's own tests: the sample schema (SQL migrations in
 * `test/migrations`), its fixtures, and a few server-side probes.
 */
import { fileURLToPath } from "node:url"
import { Connection, RowFactory } from "@pgfx/core"
import { Effect, Schema } from "effect"
import { Fixture, PgTest } from "@pgfx/testing"

/** `test/migrations`: users, orders. */
export const migrationsDir = fileURLToPath(new URL("./migrations", import.meta.url))

/** The sample migrations. */
export const migrations = PgTest.sqlMigrations(migrationsDir)

/** `test/fixtures/users.csv`: Ada and Linus. */
export const usersCsv = fileURLToPath(new URL("./fixtures/users.csv", import.meta.url))

/** The sample fixtures: two users from CSV, one from rows, one order. */
export const fixtures = [
  Fixture.csv("users", { path: usersCsv }),
  Fixture.rows("users", [{ id: 3, name: "Grace", email: "grace@example.com" }]),
  Fixture.sql("INSERT INTO orders (user_id, total) VALUES (1, 12.50)")
]

/** A row of `users`. */
export const User = Schema.Struct({ id: Schema.Number, name: Schema.String, email: Schema.NullOr(Schema.String) })

/** The users every test database starts with. */
export const initialUsers = [
  { id: 1, name: "Ada", email: "ada@example.com" },
  { id: 2, name: "Linus", email: null },
  { id: 3, name: "Grace", email: "grace@example.com" }
]

/** Runs `sql` on a fresh session of `url`, closed afterwards; rows as records. */
export const queryAt = (url: string, sql: string, params?: ReadonlyArray<unknown>) =>
  Effect.scoped(
    Effect.flatMap(Connection.connect(url), (conn) =>
      Effect.map(conn.execute(sql, params, { rowFactory: RowFactory.record }), (result) => result.rows))
  )

/** Whether a database exists, asked on the server's own database. */
export const databaseExists = (serverUrl: string, name: string) =>
  Effect.map(queryAt(serverUrl, "SELECT 1 FROM pg_database WHERE datname = $1", [name]), (rows) => rows.length === 1)
