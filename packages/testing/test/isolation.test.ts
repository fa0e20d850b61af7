/**
 * Each isolation mode keeps tests apart: a write in one test is invisible to the next (and, for
 * "file", to the next file-level build), whichever way the code under test writes — the
 * connection, the pool, the SqlClient, nested transactions.
 */
import { assert, describe, layer } from "@effect/vitest"
import { Connection, PgSql, Transaction } from "@pgfx/core"
import { ConnectionPool } from "@pgfx/pool"
import { PgTest, TestDatabase } from "@pgfx/testing"
import { Effect, Exit } from "effect"
import { SqlClient } from "effect/sql"
import { databaseExists, fixtures, initialUsers, migrations, User } from "./helpers.ts"

const options = { migrations, fixtures } as const

/** Every way a program can write: the connection, a savepoint, the pool, the SqlClient and its transactions. */
const writeEverywhere = Effect.gen(function*() {
  const conn = yield* Connection.PgConnection
  const pool = yield* ConnectionPool.ConnectionPool
  const sql = yield* SqlClient.SqlClient
  yield* conn.execute("INSERT INTO users (id, name) VALUES (10, 'conn')")
  yield* conn.transaction(conn.execute("INSERT INTO users (id, name) VALUES (11, 'conn.transaction')"))
  yield* pool.use((c) => c.execute("INSERT INTO users (id, name) VALUES (12, 'pool')"))
  yield* sql`INSERT INTO users ${sql.insert({ id: 13, name: "sql" })}`
  yield* sql.withTransaction(sql`INSERT INTO users (id, name) VALUES (14, 'sql.withTransaction')`)
  return yield* PgTest.count("users")
})

const namesOf = (rows: ReadonlyArray<{ readonly name: string }>) => rows.map((row) => row.name)

describe("isolation: file", () => {
  let firstDatabase = ""

  layer(PgTest.layer(options))("first build", (it) => {
    it.effect("starts from the template and writes", () =>
      Effect.gen(function*() {
        assert.deepStrictEqual(yield* PgTest.rows("users", User), initialUsers)
        firstDatabase = (yield* TestDatabase.TestDatabase).name
        assert.match(firstDatabase, /^pgfxt_\d+_isolation_[0-9a-f]{8}$/, "named after the run and the file")
        assert.strictEqual(yield* writeEverywhere, 8)
      }))

    it.effect("shares the database with the other tests of the build", () =>
      Effect.gen(function*() {
        assert.strictEqual((yield* TestDatabase.TestDatabase).name, firstDatabase)
        assert.strictEqual(yield* PgTest.count("users"), 8)
      }))
  })

  layer(PgTest.layer(options))("second build", (it) => {
    it.effect("gets a database of its own, without the first build's writes", () =>
      Effect.gen(function*() {
        const suite = yield* PgTest.PgTest
        const db = yield* TestDatabase.TestDatabase
        assert.notStrictEqual(db.name, firstDatabase)
        assert.isFalse(yield* databaseExists(suite.server.url, firstDatabase), "the first build's database was dropped")
        assert.deepStrictEqual(yield* PgTest.rows("users", User), initialUsers)
      }))
  })
})

describe("isolation: test", () => {
  const seen: Array<string> = []

  layer(PgTest.layer({ ...options, isolation: "test" }))("a database per test", (it) => {
    it.effect("writes everywhere", () =>
      Effect.gen(function*() {
        seen.push((yield* TestDatabase.TestDatabase).name)
        assert.strictEqual(yield* writeEverywhere, 8)
      }).pipe(PgTest.isolate))

    it.effect("sees none of it, in a fresh clone", () =>
      Effect.gen(function*() {
        const db = yield* TestDatabase.TestDatabase
        seen.push(db.name)
        assert.deepStrictEqual(yield* PgTest.rows("users", User), initialUsers)
        assert.strictEqual(yield* PgTest.count("orders"), 1)
      }).pipe(PgTest.isolate))

    it.effect("dropped each test's database afterwards", () =>
      Effect.gen(function*() {
        const suite = yield* PgTest.PgTest
        assert.lengthOf(new Set(seen), 2)
        for (const name of seen) assert.isFalse(yield* databaseExists(suite.server.url, name), name)
      }))

    it.effect("gives concurrent isolated effects separate databases", () =>
      Effect.gen(function*() {
        const write = (id: number) =>
          Effect.gen(function*() {
            yield* Effect.flatMap(Connection.PgConnection, (conn) =>
              conn.execute("INSERT INTO users (id, name) VALUES ($1, 'concurrent')", [id]))
            return yield* PgTest.count("users")
          }).pipe(PgTest.isolate)
        assert.deepStrictEqual(yield* Effect.all([write(20), write(21)], { concurrency: 2 }), [4, 4])
      }))
  })
})

describe("isolation: transaction", () => {
  let database = ""

  layer(PgTest.layer({ ...options, isolation: "transaction" }))("a rolled-back transaction per test", (it) => {
    it.effect("writes everywhere; the program's transactions are savepoints", () =>
      Effect.gen(function*() {
        const conn = yield* Connection.PgConnection
        database = (yield* TestDatabase.TestDatabase).name
        assert.strictEqual(conn.info.transactionStatus, "INTRANS")
        assert.strictEqual(yield* writeEverywhere, 8)
        // a failing nested block rolls back to its savepoint and keeps the rest of the test's work
        const failed = yield* Effect.exit(
          conn.transaction(
            Effect.andThen(conn.execute("INSERT INTO users (id, name) VALUES (30, 'rolled back')"), Effect.fail("boom"))
          )
        )
        assert.isTrue(Exit.isFailure(failed))
        const sql = yield* SqlClient.SqlClient
        yield* Effect.exit(sql.withTransaction(Effect.andThen(sql`INSERT INTO users (id, name) VALUES (31, 'x')`, Effect.fail("boom"))))
        yield* conn.transaction(Effect.andThen(conn.execute("INSERT INTO users (id, name) VALUES (32, 'signal')"), Transaction.rollback))
        assert.strictEqual(yield* PgTest.count("users"), 8)
        assert.strictEqual(conn.info.transactionStatus, "INTRANS")
      }).pipe(PgTest.isolate))

    it.effect("the SqlClient's transactions behave as on a server of their own", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const conn = yield* Connection.PgConnection
        // a statement failing inside makes COMMIT fail, as a real COMMIT of an aborted transaction does
        const aborted = yield* Effect.exit(
          sql.withTransaction(Effect.andThen(
            sql`INSERT INTO users (id, name) VALUES (40, 'lost')`,
            Effect.ignore(sql`SELECT 1 / 0`)
          ))
        )
        assert.isTrue(Exit.isFailure(aborted))
        assert.strictEqual(conn.info.transactionStatus, "INTRANS")
        assert.strictEqual(yield* PgTest.count("users", { where: "id = 40" }), 0)
        // outermost transactions of concurrent fibers take turns and both commit
        const insert = (id: number) =>
          sql.withTransaction(Effect.andThen(sql`INSERT INTO users (id, name) VALUES (${id}, 'turn')`, sql`SELECT pg_sleep(0.05)`))
        yield* Effect.all([insert(41), insert(42)], { concurrency: 2 })
        assert.strictEqual(yield* PgTest.count("users", { where: "name = 'turn'" }), 2)
      }).pipe(PgTest.isolate))

    it.effect("sees none of it, on the same database", () =>
      Effect.gen(function*() {
        assert.strictEqual((yield* TestDatabase.TestDatabase).name, database)
        assert.deepStrictEqual(yield* PgTest.rows("users", User), initialUsers)
        const pg = yield* PgSql.PgSql
        const rows = yield* pg<{ readonly name: string }>`SELECT name FROM users ORDER BY id`
        assert.deepStrictEqual(namesOf(rows), ["Ada", "Linus", "Grace"])
      }).pipe(PgTest.isolate))

    it.effect("rolls back a failing test too", () =>
      Effect.gen(function*() {
        const body = Effect.andThen(
          Effect.flatMap(Connection.PgConnection, (conn) => conn.execute("DELETE FROM orders")),
          Effect.fail("the test failed")
        ).pipe(PgTest.isolate)
        assert.deepStrictEqual(yield* Effect.flip(body), "the test failed")
        assert.strictEqual(yield* PgTest.isolate(PgTest.count("orders")), 1)
      }))

    it.effect("a test that commits the harness's transaction fails, and the database is replaced", () =>
      Effect.gen(function*() {
        const committing = Effect.flatMap(Connection.PgConnection, (conn) =>
          Effect.andThen(conn.execute("DELETE FROM orders"), conn.execute("COMMIT"))).pipe(PgTest.isolate)
        const error = yield* Effect.flip(committing)
        assert.strictEqual(error._tag, "PgTestError")
        assert.strictEqual(error._tag === "PgTestError" ? error.reason : "", "Isolation")
        const after = yield* Effect.gen(function*() {
          return { db: (yield* TestDatabase.TestDatabase).name, orders: yield* PgTest.count("orders") }
        }).pipe(PgTest.isolate)
        assert.notStrictEqual(after.db, database)
        assert.strictEqual(after.orders, 1)
      }))
  })
})
