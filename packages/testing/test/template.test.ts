/**
 * Template databases: migrations (SQL files, effect's Migrator) and fixtures (rows, CSV, SQL)
 * run once into a template; equal content shares one template; a failing migration fails the
 * layer with a typed error and leaves no half-built template behind.
 */
import { assert, describe, it, layer } from "@effect/vitest"
import { Connection, PgSql } from "@pgfx/core"
import { Fixture, PgTest, TestDatabase, TestServer } from "@pgfx/testing"
import { Effect, Layer, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { fixtures, initialUsers, migrations, queryAt, User } from "./helpers.ts"

describe("template", () => {
  let template = ""

  layer(PgTest.layer({ migrations, fixtures }))("from SQL files and fixtures", (it) => {
    it.effect("clones a template holding the migrations and the fixtures", () =>
      Effect.gen(function*() {
        const suite = yield* PgTest.PgTest
        template = suite.template
        assert.match(template, new RegExp(`^pgfxt_${suite.server.runId}_tpl_`))
        assert.deepStrictEqual(yield* PgTest.rows("users", User), initialUsers)
        const Order = Schema.Struct({ user_id: Schema.Number, total: Schema.String })
        assert.deepStrictEqual(yield* PgTest.rows("orders", Order), [{ user_id: 1, total: "12.50" }])
        // recorded by effect's Migrator, like in production
        const Migration = Schema.Struct({ migration_id: Schema.Number, name: Schema.String })
        assert.deepStrictEqual(yield* PgTest.rows("effect_sql_migrations", Migration, { orderBy: "migration_id" }), [
          { migration_id: 1, name: "create_users" },
          { migration_id: 2, name: "create_orders" }
        ])
      }))

    it.effect("keeps the template closed to connections (a session on it would block cloning)", () =>
      Effect.gen(function*() {
        const suite = yield* PgTest.PgTest
        const [row] = yield* queryAt(suite.server.url, "SELECT datallowconn FROM pg_database WHERE datname = $1", [template])
        assert.strictEqual(row.datallowconn, false)
      }))
  })

  layer(PgTest.layer({ migrations, fixtures }))("the same content again", (it) => {
    it.effect("shares the template", () =>
      Effect.gen(function*() {
        assert.strictEqual((yield* PgTest.PgTest).template, template)
      }))
  })

  layer(PgTest.layer({ migrations, fixtures, template: "other" }))("another template name", (it) => {
    it.effect("gets a template of its own", () =>
      Effect.gen(function*() {
        const suite = yield* PgTest.PgTest
        assert.notStrictEqual(suite.template, template)
        assert.match(suite.template, /_tpl_other_/)
      }))
  })

  layer(PgTest.layer())("nothing to put in a template", (it) => {
    it.effect("clones template0: an empty UTF8 database", () =>
      Effect.gen(function*() {
        assert.strictEqual((yield* PgTest.PgTest).template, "template0")
        const conn = yield* Connection.PgConnection
        const result = yield* conn.execute(
          "SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = current_database()"
        )
        assert.deepStrictEqual(result.rows, [["UTF8"]])
        assert.strictEqual(yield* PgTest.count("pg_class", { where: "relnamespace = 'public'::regnamespace" }), 0)
      }))
  })
})

const effectMigrations = PgSql.fromRecord({
  "1_accounts": Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql`CREATE TABLE accounts (id serial PRIMARY KEY, owner text NOT NULL, balance bigint NOT NULL DEFAULT 0)`),
  "2_seed": Effect.flatMap(SqlClient.SqlClient, (sql) => sql`INSERT INTO accounts (owner, balance) VALUES ('bank', 1000)`)
})

layer(
  PgTest.layer({
    migrations: effectMigrations,
    fixtures: [
      Fixture.tuples("accounts", ["owner", "balance"], [["ada", 10n], ["linus", 20n]]),
      Fixture.csv("accounts", "owner;balance\n\"semi;colon\";30\n", { delimiter: ";" }),
      Fixture.rows("accounts", [{ owner: "typed", balance: 40 }], { types: ["text", "int8"] })
    ],
    setup: Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const db = yield* TestDatabase.TestDatabase
      yield* sql`COMMENT ON TABLE accounts IS ${"built in " + db.name}`.pipe(Effect.ignore)
      yield* sql`UPDATE accounts SET balance = balance + 1 WHERE owner = 'bank'`
    }),
    template: "effect-migrations"
  })
)("migrations from effect's Migrator, fixtures of every kind, a setup effect", (it) => {
  it.effect("runs them all once into the template", () =>
    Effect.gen(function*() {
      const Account = Schema.Struct({ owner: Schema.String, balance: Schema.BigInt })
      assert.deepStrictEqual(yield* PgTest.rows("accounts", Account, { orderBy: "balance" }), [
        { owner: "ada", balance: 10n },
        { owner: "linus", balance: 20n },
        { owner: "semi;colon", balance: 30n },
        { owner: "typed", balance: 40n },
        { owner: "bank", balance: 1001n }
      ])
    }))

  it.effect("loads fixtures into the current test's database too", () =>
    Effect.gen(function*() {
      assert.strictEqual(yield* Fixture.load(Fixture.rows("accounts", [{ owner: "late", balance: 1 }])), 1)
      assert.strictEqual(yield* PgTest.count("accounts", { where: "owner = $1", params: ["late"] }), 1)
    }))
})

describe("a template that cannot be built", () => {
  const broken = PgSql.fromRecord({
    "1_ok": Effect.flatMap(SqlClient.SqlClient, (sql) => sql`CREATE TABLE fine (id int)`),
    "2_broken": Effect.flatMap(SqlClient.SqlClient, (sql) => sql`CREATE TABLE broken (id no_such_type)`)
  })

  it.effect("fails the layer with PgTestError (Template) and drops the half-built database", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Layer.build(PgTest.layer({ migrations: broken, template: "broken" })).pipe(Effect.scoped))
      assert.strictEqual(error._tag, "PgTestError")
      assert.strictEqual(error.reason, "Template")
      assert.match(error.message, /no_such_type/)
      const left = yield* queryAt(yield* TestServer.url, "SELECT datname FROM pg_database WHERE datname LIKE $1", ["%\\_tpl\\_broken\\_%"])
      assert.deepStrictEqual(left, [])
    }))

  it.effect("fails with PgTestError (Template) when a fixture does not fit", () =>
    Effect.gen(function*() {
      const layer = PgTest.layer({ migrations, fixtures: [Fixture.rows("users", [{ id: 1, nope: "x" }])], template: "bad-fixture" })
      const error = yield* Effect.flip(Layer.build(layer).pipe(Effect.scoped))
      assert.strictEqual(error.reason, "Template")
      assert.match(error.message, /rows into users/)
      assert.match(error.message, /nope/)
    }))
})
