/**
 * The harness without @effect/vitest: plain vitest tests run effects through `PgTest.runtime`,
 * each isolated as the layer says.
 */
import { Connection } from "@pgfx/core"
import { PgTest, TestDatabase } from "@pgfx/testing"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import { afterAll, describe, expect, test } from "vitest"
import { fixtures, migrations } from "./helpers.ts"

describe("plain vitest, transaction per test", () => {
  const db = PgTest.runtime(PgTest.layer({ migrations, fixtures, isolation: "transaction" }))
  afterAll(() => db.dispose())

  test("writes", async () => {
    const count = await db.run(
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql`DELETE FROM orders`
        return yield* PgTest.count("orders")
      })
    )
    expect(count).toBe(0)
  })

  test("does not see the previous test's writes", async () => {
    expect(await db.run(PgTest.count("orders"))).toBe(1)
  })
})

describe("plain vitest, database per test", () => {
  const db = PgTest.runtime(PgTest.layer({ migrations, isolation: "test" }))
  afterAll(() => db.dispose())
  const names: Array<string> = []

  test("each test gets its own database", async () => {
    names.push(await db.run(TestDatabase.TestDatabase.useSync((database) => database.name)))
    names.push(await db.run(TestDatabase.TestDatabase.useSync((database) => database.name)))
    expect(new Set(names).size).toBe(2)
  })

  test("failures reject the promise with the typed error", async () => {
    const failing = db.run(Effect.flatMap(Connection.PgConnection, (conn) => conn.execute("SELECT * FROM nowhere")))
    await expect(failing).rejects.toMatchObject({ sqlState: "42P01" })
  })
})
