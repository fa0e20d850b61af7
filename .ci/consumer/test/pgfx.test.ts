/**
 * A consumer's test: @pgfx/testing's `PgTest.layer` under @effect/vitest, a transaction per
 * test that is rolled back afterwards.
 */
import { assert, layer } from "@effect/vitest"
import { Connection } from "@pgfx/core"
import { PgTest } from "@pgfx/testing"
import { Effect } from "effect"

const Db = PgTest.layer({ isolation: "transaction" })

layer(Db)("pgfx from the tarballs", (it) => {
  it.effect("writes inside the test's transaction", () =>
    Effect.gen(function*() {
      const conn = yield* Connection.PgConnection
      yield* conn.execute("CREATE TABLE notes (id integer PRIMARY KEY, body text NOT NULL)")
      yield* conn.execute("INSERT INTO notes VALUES ($1, $2)", [1, "hello"])
      assert.strictEqual(yield* PgTest.count("notes"), 1)
    }).pipe(PgTest.isolate))

  it.effect("does not see the previous test's writes", () =>
    Effect.gen(function*() {
      const conn = yield* Connection.PgConnection
      const result = yield* conn.execute("SELECT to_regclass('notes') IS NULL")
      assert.strictEqual(result.rows[0]?.[0], true)
    }).pipe(PgTest.isolate))
})
