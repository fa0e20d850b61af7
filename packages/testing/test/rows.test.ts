/**
 * Reading a table's rows typed by a Schema: only the schema's columns, in primary-key order by
 * default, filtered with bound parameters; a row that does not fit fails with a typed error.
 */
import { assert, layer } from "@effect/vitest"
import { PgTest } from "@pgfx/testing"
import { Effect, Schema } from "effect"
import { fixtures, migrations } from "./helpers.ts"

layer(PgTest.layer({ migrations, fixtures }))("PgTest.rows / query / count", (it) => {
  it.effect("selects the schema's columns in primary-key order", () =>
    Effect.gen(function*() {
      const Name = Schema.Struct({ name: Schema.String })
      assert.deepStrictEqual(yield* PgTest.rows("users", Name), [{ name: "Ada" }, { name: "Linus" }, { name: "Grace" }])
      assert.deepStrictEqual(yield* PgTest.rows("public.users", Name, { orderBy: ["name"] }), [
        { name: "Ada" },
        { name: "Grace" },
        { name: "Linus" }
      ])
    }))

  it.effect("filters with bound parameters", () =>
    Effect.gen(function*() {
      const User = Schema.Struct({ id: Schema.Number, email: Schema.NullOr(Schema.String) })
      assert.deepStrictEqual(yield* PgTest.rows("users", User, { where: "email IS NULL OR id = $1", params: [3] }), [
        { id: 2, email: null },
        { id: 3, email: "grace@example.com" }
      ])
      assert.strictEqual(yield* PgTest.count("users"), 3)
      assert.strictEqual(yield* PgTest.count("users", { where: "name LIKE $1", params: ["%a%"] }), 2)
      assert.strictEqual(yield* PgTest.count("orders", { where: "user_id = $1", params: [2] }), 0)
    }))

  it.effect("decodes query results with a schema", () =>
    Effect.gen(function*() {
      const Total = Schema.Struct({ name: Schema.String, total: Schema.NumberFromString })
      const totals = yield* PgTest.query(
        "SELECT u.name, sum(o.total)::text AS total FROM users u JOIN orders o ON o.user_id = u.id GROUP BY u.name",
        undefined,
        Total
      )
      assert.deepStrictEqual(totals, [{ name: "Ada", total: 12.5 }])
    }))

  it.effect("fails with a DecodeError naming the column when a row does not fit", () =>
    Effect.gen(function*() {
      const Wrong = Schema.Struct({ id: Schema.String })
      const error = yield* Effect.flip(PgTest.rows("users", Wrong))
      assert.strictEqual(error._tag, "DecodeError")
      assert.match(error.message, /column "id"/)
    }))
})
