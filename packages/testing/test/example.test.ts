/**
 * The example of the README: a service written against effect's SqlClient, tested on a real
 * database by swapping its production layer for the test one.
 */
import { assert, layer } from "@effect/vitest"
import { PgTest } from "@pgfx/testing"
import { Context, Effect, Layer, Schema } from "effect"
import { SqlClient } from "effect/sql"
import type { SqlError } from "effect/sql/SqlError"
import { fixtures, migrations } from "./helpers.ts"

// --- the program ---------------------------------------------------------------------------

/** Users, as the application sees them. */
class Users extends Context.Service<Users, {
  readonly rename: (id: number, name: string) => Effect.Effect<void, SqlError>
  readonly names: Effect.Effect<ReadonlyArray<string>, SqlError>
}>()("example/Users") {
  /** Needs a SqlClient: in production `PgSql.layer(url)` (or one on a pool), in tests `PgTest`'s. */
  static readonly layer = Layer.effect(
    Users,
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      return {
        rename: (id, name) =>
          sql.withTransaction(Effect.gen(function*() {
            yield* sql`UPDATE users SET name = ${name} WHERE id = ${id}`
            yield* sql`INSERT INTO orders (user_id, total) VALUES (${id}, 0)`
          })),
        names: Effect.map(sql<{ readonly name: string }>`SELECT name FROM users ORDER BY id`, (rows) => rows.map((r) => r.name))
      }
    })
  )
}

// --- the tests -----------------------------------------------------------------------------

const User = Schema.Struct({ id: Schema.Number, name: Schema.String })

// one database for the file (cloned from a template holding the migrations and fixtures);
// every test in a transaction that is rolled back afterwards
layer(PgTest.layer({ migrations, fixtures, isolation: "transaction" }))("Users", (it) => {
  it.effect("renames a user", () =>
    Effect.gen(function*() {
      const users = yield* Users
      yield* users.rename(1, "Ada Lovelace")
      assert.deepStrictEqual(yield* users.names, ["Ada Lovelace", "Linus", "Grace"])
      assert.deepStrictEqual((yield* PgTest.rows("users", User))[0], { id: 1, name: "Ada Lovelace" })
      assert.strictEqual(yield* PgTest.count("orders"), 2)
      yield* PgTest.assertNoLeaks
    }).pipe(PgTest.isolateWith(Users.layer)))

  it.effect("starts from the fixtures again", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* (yield* Users).names, ["Ada", "Linus", "Grace"])
      assert.strictEqual(yield* PgTest.count("orders"), 1)
    }).pipe(PgTest.isolateWith(Users.layer)))
})

// a database per file, the services straight from the layer
layer(Users.layer.pipe(Layer.provideMerge(PgTest.layer({ migrations, fixtures }))))("Users, one database", (it) => {
  it.effect("renames a user", () =>
    Effect.gen(function*() {
      yield* (yield* Users).rename(2, "Linus T.")
      assert.deepStrictEqual(yield* (yield* Users).names, ["Ada", "Linus T.", "Grace"])
    }))
})
