/**
 * effect's SqlClient on pgfx: the behaviours `@effect/sql-pg`'s own tests
 * check (helpers, transforms, json, streams, multi-statement scripts), plus
 * transactions, SqlSchema, SqlResolver and the Migrator, asserted on the
 * server's state from a second session where it has one.
 */
import { expect, layer } from "@effect/vitest"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodePath from "@effect/platform-node/NodePath"
import {
  Cause,
  Config,
  ConfigProvider,
  Deferred,
  Effect,
  Array as Arr,
  Exit,
  Fiber,
  Layer,
  Option,
  Ref,
  Schema,
  Stream,
  String as Str,
  Tracer
} from "effect"
import * as RequestResolver from "effect/RequestResolver"
import { SqlClient, SqlError, SqlResolver, SqlSchema } from "effect/sql"
import * as Fs from "node:fs/promises"
import * as Os from "node:os"
import * as Path from "node:path"
import { Connection, PgError, PgSql } from "../src/index.ts"
import { TestDatabase } from "../../../test/harness.ts"

/** A second session on the test database, for looking at the first from outside. */
const observer = Effect.flatMap(TestDatabase.url, (url) => Connection.connect(url))

const count = (watcher: Connection.Connection, table: string) =>
  Effect.map(watcher.execute(`SELECT count(*)::int FROM ${table}`), (result) => result.rows[0][0] as number)

const stateOf = (watcher: Connection.Connection, pid: number) =>
  Effect.map(
    watcher.execute("SELECT state FROM pg_stat_activity WHERE pid = $1", [pid]),
    (result) => result.rows[0]?.[0] as string | undefined
  )

/** Polls until the session runs a statement (state `active` with a `pg_sleep` query). */
const awaitSleeping = (watcher: Connection.Connection, pid: number) =>
  Effect.gen(function*() {
    for (let tries = 0; tries < 200; tries++) {
      const result = yield* watcher.execute(
        "SELECT state FROM pg_stat_activity WHERE pid = $1 AND query LIKE '%pg_sleep%'",
        [pid]
      )
      if (result.rows[0]?.[0] === "active") return
      yield* Effect.sleep("10 millis")
    }
    throw new Error(`session ${pid} never started sleeping`)
  })

/** Runs `body` with `PgSql.layer` over one shared connection to the test database. */
const withSql = <A, E, R>(body: Effect.Effect<A, E, R>, options: Omit<PgSql.Options, "settings"> = {}) =>
  Effect.flatMap(TestDatabase.url, (url) => Effect.provide(body, PgSql.layer({ ...options, settings: url })))

const reasonOf = (error: SqlError.SqlError) => error.reason._tag

layer(TestDatabase.layer, { excludeTestServices: true })("PgSql: the sql template", (it) => {
  it.effect("compiles the helpers exactly as @effect/sql-pg does", () =>
    withSql(Effect.gen(function*() {
      const sql = yield* PgSql.PgSql
      expect(sql`INSERT INTO people ${sql.insert({ name: "Tim", age: 10 })}`.compile()).toEqual([
        `INSERT INTO people ("name","age") VALUES ($1,$2)`,
        ["Tim", 10]
      ])
      expect(sql`INSERT INTO people ${sql.insert([{ name: "A" }, { name: "B" }]).returning("*")}`.compile()).toEqual([
        `INSERT INTO people ("name") VALUES ($1),($2) RETURNING *`,
        ["A", "B"]
      ])
      expect(sql`UPDATE people SET ${sql.update({ name: "Tim", age: 10 }, ["age"])}`.compile()).toEqual([
        `UPDATE people SET "name" = $1`,
        ["Tim"]
      ])
      expect(sql`UPDATE people SET ${sql.update({ name: "Tim" }).returning("*")}`.compile()).toEqual([
        `UPDATE people SET "name" = $1 RETURNING *`,
        ["Tim"]
      ])
      expect(
        sql`UPDATE people SET name = data.name FROM ${sql.updateValues([{ name: "Tim" }, { name: "John" }], "data")}`
          .compile()
      ).toEqual([`UPDATE people SET name = data.name FROM (values ($1),($2)) AS "data"("name")`, ["Tim", "John"]])
      expect(sql`SELECT * FROM ${sql("people")} WHERE id IN ${sql.in([1, 2, "x"])}`.compile()).toEqual([
        `SELECT * FROM "people" WHERE id IN ($1,$2,$3)`,
        [1, 2, "x"]
      ])
      expect(sql`SELECT * FROM people WHERE ${sql.in("id", [])}`.compile()[0]).toBe(`SELECT * FROM people WHERE 1=0`)
      expect(sql`SELECT * FROM people WHERE id IN ${sql.in([])}`.compile()[0]).toBe(
        `SELECT * FROM people WHERE id = ANY('{}')`
      )
      const now = new Date()
      expect(sql`SELECT 1 WHERE ${sql.and([sql.in("name", ["a", "b"]), sql`created_at < ${now}`])}`.compile()).toEqual([
        `SELECT 1 WHERE ("name" IN ($1,$2) AND created_at < $3)`,
        ["a", "b", now]
      ])
      // identifiers: quotes doubled, dots split schema and table
      expect(sql`SELECT * FROM ${sql(`we"ird`)}, ${sql("public.people")}`.compile()[0]).toBe(
        `SELECT * FROM "we""ird", "public"."people"`
      )
      const [jsonSql, jsonParams] = sql`SELECT ${sql.json([1, 2])}`.compile()
      expect(jsonSql).toBe("SELECT $1")
      expect((jsonParams[0] as { oid: number }).oid).toBe(3802)
      expect(sql.onDialectOrElse({ orElse: () => "other", pg: () => "pg" })).toBe("pg")
      expect(sql.driver).toBe("pgfx")
    })))

  it.effect("runs statements with bind parameters, the insert/update/in helpers and identifiers", () =>
    withSql(Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* sql`CREATE TABLE ${sql("template people")} (id serial PRIMARY KEY, name text NOT NULL, age int)`
      const people = sql("template people")
      const inserted = yield* sql<{ id: number; name: string }>`INSERT INTO ${people} ${
        sql.insert([{ name: "Tim", age: 10 }, { name: "O'Brien", age: 20 }, { name: "Ann", age: null }]).returning(
          "id, name"
        )
      }`
      expect(inserted).toEqual([{ id: 1, name: "Tim" }, { id: 2, name: "O'Brien" }, { id: 3, name: "Ann" }])
      // the quote travelled as a value, never spliced
      expect(yield* sql`SELECT id FROM ${people} WHERE name = ${"O'Brien"}`).toEqual([{ id: 2 }])
      const updated = yield* sql`UPDATE ${people} SET ${sql.update({ age: 11 })} WHERE id = ${1} RETURNING age`
      expect(updated).toEqual([{ age: 11 }])
      yield* sql`UPDATE ${people} SET age = data.age FROM ${
        sql.updateValues([{ id: 2, age: 21 }, { id: 3, age: 31 }], "data")
      } WHERE ${people}.id = data.id`
      const selected = yield* sql<{ name: string; age: number }>`SELECT name, age FROM ${people} WHERE ${
        sql.in("id", [1, 2, 3])
      } ORDER BY id`
      expect(selected).toEqual([{ name: "Tim", age: 11 }, { name: "O'Brien", age: 21 }, { name: "Ann", age: 31 }])
      expect(yield* sql`SELECT id FROM ${people} WHERE id IN ${sql.in([])}`).toEqual([])
      expect(yield* sql`SELECT id FROM ${people} WHERE id NOT IN ${sql.in([])} ORDER BY id`).toHaveLength(3)
      expect(yield* sql.unsafe(`SELECT name FROM "template people" WHERE age > $1 ORDER BY id`, [20])).toEqual([
        { name: "O'Brien" },
        { name: "Ann" }
      ])
      expect(yield* sql`SELECT name, age FROM ${people} WHERE id = ${1}`.values).toEqual([["Tim", 11]])
      const raw = (yield* sql`DELETE FROM ${people} WHERE id = ${3}`.raw) as Connection.QueryResult<unknown>
      expect(raw.command).toBe("DELETE")
      expect(raw.rowCount).toBe(1)
    })))

  it.effect("runs multi-statement scripts, with one array of rows per statement", () =>
    withSql(Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const result = yield* sql`
        CREATE TABLE test_multi (id text PRIMARY KEY, name text);
        INSERT INTO test_multi (id, name) VALUES ('id1', 'test1') RETURNING *;
        INSERT INTO test_multi (id, name) VALUES ('id2', 'test2') RETURNING *;
      `
      expect(result).toEqual([[], [{ id: "id1", name: "test1" }], [{ id: "id2", name: "test2" }]])
    })))

  it.effect("sends json and decodes it", () =>
    withSql(Effect.gen(function*() {
      const sql = yield* PgSql.PgSql
      const rows = yield* sql`SELECT ${{ testValue: 123 }}::jsonb AS a, ${sql.json([1, "two"])} AS b, ${
        sql.json("text")
      } AS c, jsonb_typeof(${sql.json("text")}) AS t`
      expect(rows).toEqual([{ a: { testValue: 123 }, b: [1, "two"], c: "text", t: "string" }])
    })))

  it.effect("renames identifiers and result columns with the transforms, and withoutTransforms opts out", () =>
    withSql(
      Effect.gen(function*() {
        const sql = yield* PgSql.PgSql
        expect(sql`INSERT INTO people ${sql.insert({ firstName: "Tim", age: 10 })}`.compile()[0]).toBe(
          `INSERT INTO people ("first_name","age") VALUES ($1,$2)`
        )
        yield* sql`CREATE TABLE ${sql("transformTest")} (id int, ${sql("firstName")} text, details jsonb)`
        yield* sql`INSERT INTO transform_test ${
          sql.insert({ id: 1, firstName: "Tim", details: sql.json({ homeTown: "Oslo" }) })
        }`
        const rows = yield* sql`SELECT * FROM transform_test`
        // nested JSON keys were renamed on the way in and back on the way out
        expect(rows).toEqual([{ id: 1, firstName: "Tim", details: { homeTown: "Oslo" } }])
        expect(yield* sql`SELECT details FROM transform_test`.withoutTransform).toEqual([
          { details: { home_town: "Oslo" } }
        ])
        const plain = sql.withoutTransforms()
        expect(plain`INSERT INTO people ${plain.insert({ first_name: "Tim" })}`.compile()[0]).toBe(
          `INSERT INTO people ("first_name") VALUES ($1)`
        )
        expect(yield* plain`SELECT first_name FROM transform_test`).toEqual([{ first_name: "Tim" }])
        const streamed = yield* sql`SELECT first_name FROM transform_test`.stream.pipe(Stream.runCollect)
        expect(streamed).toEqual([{ firstName: "Tim" }])
      }),
      { transformQueryNames: Str.camelToSnake, transformResultNames: Str.snakeToCamel }
    ))

  it.effect("streams rows in batches, also past one batch, and stops early cleanly", () =>
    withSql(
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const rows = yield* sql<{ n: number }>`SELECT generate_series(1, ${2500}) AS n`.stream.pipe(Stream.runCollect)
        expect(rows).toHaveLength(2500)
        expect(rows[0]).toEqual({ n: 1 })
        expect(rows[2499]).toEqual({ n: 2500 })
        const first = yield* sql<{ n: number }>`SELECT generate_series(1, 1000000) AS n`.stream.pipe(
          Stream.take(3),
          Stream.runCollect
        )
        expect(first.map((row) => row.n)).toEqual([1, 2, 3])
        // the shared connection is free again and the portal is gone
        expect(yield* sql`SELECT 1 AS one`).toEqual([{ one: 1 }])
        const inTransaction = yield* sql.withTransaction(
          sql<{ n: number }>`SELECT generate_series(1, 3) AS n`.stream.pipe(Stream.runCollect)
        )
        expect(inTransaction).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }])
      }),
      { streamBatchSize: 1000 }
    ))

  it.effect("maps server errors to SqlError reasons, keeping the pgfx error as cause", () =>
    withSql(Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* sql`CREATE TABLE unique_test (email text CONSTRAINT unique_test_email_key UNIQUE, n int)`
      yield* sql`INSERT INTO unique_test ${sql.insert({ email: "a@example.com" })}`
      const unique = yield* Effect.flip(sql`INSERT INTO unique_test ${sql.insert({ email: "a@example.com" })}`)
      expect(reasonOf(unique)).toBe("UniqueViolation")
      if (unique.reason._tag === "UniqueViolation") {
        expect(unique.reason.constraint).toBe("unique_test_email_key")
        expect(unique.reason.operation).toBe("execute")
        expect((unique.reason.cause as PgError.PgError)._tag).toBe("UniqueViolation")
      }
      expect(reasonOf(yield* Effect.flip(sql`SELEC 1`))).toBe("SqlSyntaxError")
      expect(reasonOf(yield* Effect.flip(sql`SELECT * FROM missing_table WHERE x = ${1}`))).toBe("SqlSyntaxError")
      expect(reasonOf(yield* Effect.flip(sql`INSERT INTO unique_test (n) VALUES (${"x"})`))).toBe("UnknownError")
      expect(reasonOf(yield* Effect.flip(sql`SELECT ${Symbol("no")} AS s`))).toBe("UnknownError")
      // the connection survived every failure
      expect(yield* sql`SELECT count(*)::int AS n FROM unique_test`).toEqual([{ n: 1 }])
    })))

  it.effect("records statement spans with db.* attributes", () =>
    Effect.gen(function*() {
      const spans: Array<Tracer.Span> = []
      const tracer = Tracer.make({
        span: (options) => {
          const span = new Tracer.NativeSpan(options)
          spans.push(span)
          return span
        }
      })
      const dbName = yield* TestDatabase.dbName
      yield* withSql(Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql`SELECT ${1}::int AS one`
        yield* sql.withTransaction(sql`SELECT 2`)
      }), { spanAttributes: { "service.name": "pgfx-test" } }).pipe(Effect.withTracer(tracer))
      const statement = spans.find((span) => span.attributes.get("db.query.text") === "SELECT $1::int AS one")
      expect(statement).toBeDefined()
      expect(statement!.kind).toBe("client")
      expect(statement!.name).toBe(dbName)
      expect(statement!.attributes.get("db.system.name")).toBe("postgresql")
      expect(statement!.attributes.get("db.namespace")).toBe(dbName)
      expect(statement!.attributes.get("server.address")).toBeTypeOf("string")
      expect(statement!.attributes.get("server.port")).toBeTypeOf("number")
      expect(statement!.attributes.get("service.name")).toBe("pgfx-test")
      const transaction = spans.find((span) => span.name === "sql.transaction")
      expect(transaction?.attributes.get("db.system.name")).toBe("postgresql")
    }))
})

layer(TestDatabase.layer, { excludeTestServices: true })("PgSql: transactions", (it) => {
  it.effect("commits on success: the rows are invisible to others until COMMIT", () =>
    withSql(Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const watcher = yield* observer
      yield* sql`CREATE TABLE tx_commit (id serial PRIMARY KEY, name text)`
      const seenInside = yield* sql.withTransaction(Effect.gen(function*() {
        yield* sql`INSERT INTO tx_commit ${sql.insert([{ name: "a" }, { name: "b" }])}`
        return yield* count(watcher, "tx_commit")
      }))
      expect(seenInside).toBe(0)
      expect(yield* count(watcher, "tx_commit")).toBe(2)
    })))

  it.effect("rolls back on failure and on defect", () =>
    withSql(Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const watcher = yield* observer
      yield* sql`CREATE TABLE tx_rollback (id serial PRIMARY KEY, name text)`
      const failed = yield* sql`INSERT INTO tx_rollback ${sql.insert({ name: "a" })}`.pipe(
        Effect.andThen(Effect.fail("boom" as const)),
        sql.withTransaction,
        Effect.flip
      )
      expect(failed).toBe("boom")
      const died = yield* sql`INSERT INTO tx_rollback ${sql.insert({ name: "b" })}`.pipe(
        Effect.andThen(Effect.die("bang")),
        sql.withTransaction,
        Effect.exit
      )
      expect(Exit.isFailure(died) && Cause.hasDies(died.cause)).toBe(true)
      expect(yield* count(watcher, "tx_rollback")).toBe(0)
    })))

  it.effect("nested blocks are savepoints: an inner rollback keeps the outer work", () =>
    withSql(Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const watcher = yield* observer
      yield* sql`CREATE TABLE tx_nested (name text)`
      const insert = (name: string) => sql`INSERT INTO tx_nested ${sql.insert({ name })}`
      yield* sql.withTransaction(Effect.gen(function*() {
        yield* insert("outer")
        // the inner block fails on the server: its savepoint is rolled back, the outer goes on
        const inner = yield* insert("inner").pipe(
          Effect.andThen(sql`SELECT 1/0`),
          sql.withTransaction,
          Effect.flip
        )
        expect(inner.reason.cause).toBeInstanceOf(PgError.DivisionByZero)
        yield* sql.withTransaction(insert("committed inner"))
        yield* insert("outer again")
      }))
      const names = yield* watcher.execute("SELECT name FROM tx_nested ORDER BY name")
      expect(names.rows.map((row) => row[0])).toEqual(["committed inner", "outer", "outer again"])
    })))

  it.effect("interrupting a transaction cancels its statement and rolls back; the session is not left idle in transaction", () =>
    withSql(Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const watcher = yield* observer
      yield* sql`CREATE TABLE tx_interrupt (name text)`
      const pid = yield* Deferred.make<number>()
      const fiber = yield* sql.withTransaction(Effect.gen(function*() {
        yield* sql`INSERT INTO tx_interrupt ${sql.insert({ name: "lost" })}`
        const [row] = yield* sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`
        yield* Deferred.succeed(pid, row.pid)
        yield* sql`SELECT pg_sleep(30)`
      })).pipe(Effect.forkChild)
      const backend = yield* Deferred.await(pid)
      yield* awaitSleeping(watcher, backend)
      const started = Date.now()
      yield* Fiber.interrupt(fiber)
      expect(Date.now() - started).toBeLessThan(5000)
      expect(yield* stateOf(watcher, backend)).toBe("idle")
      const stuck = yield* watcher.execute(
        "SELECT count(*)::int FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'"
      )
      expect(stuck.rows[0][0]).toBe(0)
      expect(yield* count(watcher, "tx_interrupt")).toBe(0)
      // the shared connection is still the same session and usable
      expect(yield* sql`SELECT pg_backend_pid() AS pid`).toEqual([{ pid: backend }])
    })))

  it.effect("on the shared connection a transaction holds it: other fibers wait until it ends", () =>
    withSql(Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* sql`CREATE TABLE tx_exclusive (name text)`
      const inside = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      const order: Array<string> = []
      const transaction = yield* sql.withTransaction(Effect.gen(function*() {
        yield* sql`INSERT INTO tx_exclusive ${sql.insert({ name: "a" })}`
        yield* Deferred.succeed(inside, undefined)
        yield* Deferred.await(release)
        order.push("commit")
      })).pipe(Effect.forkChild)
      yield* Deferred.await(inside)
      const outside = yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM tx_exclusive`.pipe(
        Effect.tap(() => Effect.sync(() => order.push("outside"))),
        Effect.forkChild
      )
      yield* Effect.sleep("100 millis")
      expect(order).toEqual([])
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(transaction)
      // the outside query ran after COMMIT, so it saw the row
      expect(yield* Fiber.join(outside)).toEqual([{ n: 1 }])
      expect(order).toEqual(["commit", "outside"])
    })))

  it.effect("on the shared connection a transaction holds the session: direct statements on it wait too", () =>
    withSql(Effect.gen(function*() {
      const sql = yield* PgSql.PgSql
      // the raw connection, used directly (not through the client) by another fiber
      const pg = yield* Effect.scoped(sql.connection)
      yield* sql`CREATE TABLE tx_direct (name text)`
      const inside = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      const transaction = yield* sql.withTransaction(Effect.gen(function*() {
        yield* sql`INSERT INTO tx_direct ${sql.insert({ name: "a" })}`
        // the transaction's own fiber uses the raw connection directly: it goes through
        const own = yield* pg.execute("SELECT txid_current_if_assigned() IS NOT NULL AS intx")
        expect(own.rows).toEqual([[true]])
        yield* Deferred.succeed(inside, undefined)
        yield* Deferred.await(release)
      })).pipe(Effect.forkChild)
      yield* Deferred.await(inside)
      const direct = yield* pg.execute("SELECT txid_current_if_assigned() IS NOT NULL AS intx, count(*)::int FROM tx_direct")
        .pipe(Effect.forkChild)
      yield* Effect.sleep("100 millis")
      expect(direct.pollUnsafe()).toBeUndefined()
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(transaction)
      // it ran after COMMIT, outside the transaction, and saw the committed row
      expect((yield* Fiber.join(direct)).rows).toEqual([[false, 1]])
    })))

  it.effect("fibers a transaction forks run their statements on its connection", () =>
    withSql(Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const watcher = yield* observer
      yield* sql`CREATE TABLE tx_forked (n int)`
      yield* sql.withTransaction(Effect.gen(function*() {
        yield* Effect.forEach([1, 2, 3], (n) => sql`INSERT INTO tx_forked VALUES (${n})`, { concurrency: "unbounded" })
        const rows = yield* Stream.runCollect(sql`SELECT n FROM tx_forked ORDER BY n`.stream).pipe(Effect.forkChild, Effect.flatMap(Fiber.join))
        expect(Array.from(rows)).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }])
        expect(yield* count(watcher, "tx_forked")).toBe(0)
      }))
      expect(yield* count(watcher, "tx_forked")).toBe(3)
    })))

  it.effect("fails when COMMIT fails (deferred constraint) and when the transaction was aborted", () =>
    withSql(Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const watcher = yield* observer
      yield* sql`CREATE TABLE tx_deferred (k int CONSTRAINT tx_deferred_k UNIQUE DEFERRABLE INITIALLY DEFERRED)`
      const atCommit = yield* sql`INSERT INTO tx_deferred VALUES (1), (1)`.pipe(sql.withTransaction, Effect.flip)
      expect(reasonOf(atCommit)).toBe("UniqueViolation")
      // a statement failed and the error was swallowed: COMMIT answers ROLLBACK
      const aborted = yield* Effect.gen(function*() {
        yield* sql`INSERT INTO tx_deferred VALUES (2)`
        yield* Effect.ignore(sql`SELECT 1/0`)
      }).pipe(sql.withTransaction, Effect.flip)
      expect(reasonOf(aborted)).toBe("UnknownError")
      expect(aborted.reason.operation).toBe("commit")
      expect(yield* count(watcher, "tx_deferred")).toBe(0)
      expect(yield* sql`SELECT 1 AS ok`).toEqual([{ ok: 1 }])
    })))

  it.effect("starts a transaction with the provided BeginTransaction statement", () =>
    withSql(Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const rows = yield* sql`SHOW transaction_isolation`.pipe(
        sql.withTransaction,
        Effect.provideService(SqlClient.BeginTransaction, "BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY")
      )
      expect(rows).toEqual([{ transaction_isolation: "serializable" }])
      const readOnly = yield* Effect.flip(
        sql`CREATE TABLE never_created (x int)`.pipe(
          sql.withTransaction,
          Effect.provideService(SqlClient.BeginTransaction, "BEGIN READ ONLY")
        )
      )
      expect(readOnly.reason.cause).toBeInstanceOf(PgError.ServerError)
    })))

  it.effect("PgSql.connection joins the current transaction; outside one it holds a connection for the scope", () =>
    withSql(Effect.gen(function*() {
      const sql = yield* PgSql.PgSql
      const watcher = yield* observer
      yield* sql`CREATE TABLE tx_joined (n int)`
      yield* sql.withTransaction(Effect.gen(function*() {
        yield* sql`INSERT INTO tx_joined VALUES (${1})`
        const conn = yield* Effect.scoped(sql.connection)
        expect(conn.info.transactionStatus).toBe("INTRANS")
        yield* conn.execute("INSERT INTO tx_joined VALUES ($1)", [2])
        expect(yield* count(watcher, "tx_joined")).toBe(0)
      }))
      expect(yield* count(watcher, "tx_joined")).toBe(2)
      const status = yield* Effect.scoped(Effect.map(sql.connection, (conn) => conn.info.transactionStatus))
      expect(status).toBe("IDLE")
    })))

  it.effect("a reserved connection survives an interrupted statement (cancelled on the server)", () =>
    withSql(Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const values = yield* Effect.scoped(Effect.gen(function*() {
        const conn = yield* sql.reserve
        const started = Date.now()
        const outcome = yield* conn.executeRaw("SELECT pg_sleep(1000)", []).pipe(Effect.timeoutOption("50 millis"))
        expect(Option.isNone(outcome)).toBe(true)
        expect(Date.now() - started).toBeLessThan(5000)
        return yield* conn.executeValues("SELECT 1", [])
      }))
      expect(values).toEqual([[1]])
    })))

  it.effect("runs many concurrent statements on the shared connection", () =>
    withSql(Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const results = yield* Effect.forEach(
        Arr.range(1, 50),
        (n) => sql<{ n: number }>`SELECT ${n}::int AS n`,
        { concurrency: "unbounded" }
      )
      expect(results.map(([row]) => row.n)).toEqual(Arr.range(1, 50))
    })))

  it.effect("replaces a lost shared connection on the next use", () =>
    withSql(Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const watcher = yield* observer
      const [{ pid }] = yield* sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`
      yield* watcher.execute("SELECT pg_terminate_backend($1)", [pid])
      // the loss is noticed by the next statement at the latest
      const next = yield* Effect.exit(sql`SELECT 1`)
      if (Exit.isFailure(next)) {
        const error = Cause.findErrorOption(next.cause)
        expect(Option.map(error, (e) => (e as SqlError.SqlError).reason._tag)).toEqual(Option.some("ConnectionError"))
      }
      const [{ pid: replacement }] = yield* sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`
      expect(replacement).not.toBe(pid)
    })))
})

layer(TestDatabase.layer, { excludeTestServices: true })("PgSql: acquirers and layers", (it) => {
  it.effect("PgSql.layer takes a pool: statements through its share, a transaction through a checkout", () =>
    Effect.gen(function*() {
      const conn = yield* Effect.flatMap(TestDatabase.url, (url) => Connection.connect(url))
      const used: Array<string> = []
      const pool: PgSql.SharedPool = {
        connection: Effect.as(Effect.sync(() => used.push("connection")), conn),
        share: (f) => Effect.suspend(() => (used.push("share"), f(conn)))
      }
      const rows = yield* Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const one = yield* sql<{ n: number }>`SELECT 1 AS n`
        yield* sql.withTransaction(sql`SELECT 2`)
        return one
      }).pipe(Effect.provide(PgSql.layer({ pool })))
      expect(rows).toEqual([{ n: 1 }])
      expect(used).toEqual(["share", "connection"])
    }))

  it.effect("with an acquirer each statement checks out a connection and a transaction keeps one", () =>
    Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const watcher = yield* observer
      const checkouts = yield* Ref.make(0)
      const acquire = Effect.tap(
        Connection.connect(url, { prepareThreshold: null }),
        () => Ref.update(checkouts, (n) => n + 1)
      )
      const pids = yield* Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const [a] = yield* sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`
        const [b] = yield* sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`
        const inTx = yield* sql.withTransaction(Effect.all([
          sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`,
          sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`
        ]))
        const pg = yield* PgSql.PgSql
        const copyReady = yield* Effect.scoped(Effect.flatMap(pg.connection, (conn) => conn.execute("SELECT 7", [])))
        expect(copyReady.rows).toEqual([[7]])
        return [a.pid, b.pid, inTx[0][0].pid, inTx[1][0].pid]
      }).pipe(Effect.provide(PgSql.layer({ acquire })))
      expect(pids[0]).not.toBe(pids[1])
      expect(pids[2]).toBe(pids[3])
      expect(yield* Ref.get(checkouts)).toBe(4)
      // every checkout was closed with its scope
      for (const pid of pids) {
        let state = yield* stateOf(watcher, pid)
        for (let tries = 0; state !== undefined && tries < 50; tries++) {
          yield* Effect.sleep("20 millis")
          state = yield* stateOf(watcher, pid)
        }
        expect(state).toBeUndefined()
      }
    }))

  it.effect("maps acquisition failures to a ConnectionError reason", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(
        Effect.scoped(Effect.flatMap(PgSql.make({ settings: "host=127.0.0.1 port=1 connect_timeout=2" }), (sql) => sql`SELECT 1`))
      )
      expect(reasonOf(error)).toBe("ConnectionError")
      const sql = yield* PgSql.make({ acquire: Connection.connect("host=127.0.0.1 port=1 connect_timeout=2") })
      const failed = yield* Effect.flip(sql.withTransaction(sql`SELECT 1`))
      expect(reasonOf(failed)).toBe("ConnectionError")
      expect(failed.reason.operation).toBe("acquireConnection")
    }))

  it.effect("layerConfig reads the settings through Config", () =>
    Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const dbName = yield* TestDatabase.dbName
      const rows = yield* Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        return yield* sql`SELECT current_database() AS db, current_setting('application_name') AS app`
      }).pipe(
        Effect.provide(
          PgSql.layerConfig({
            url: Config.Redacted("DATABASE_URL"),
            applicationName: Config.String("APP_NAME"),
            transformResultNames: Config.succeed(Str.snakeToCamel)
          }).pipe(Layer.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({ DATABASE_URL: url, APP_NAME: "pgfx-config" }))))
        )
      )
      expect(rows).toEqual([{ db: dbName, app: "pgfx-config" }])
      // the pgbouncer mode, from the environment like the rest
      const pgbouncer = yield* Effect.scoped(Effect.flatMap(PgSql.PgSql, (sql) => Effect.map(sql.connection, (conn) => conn.pgbouncer))).pipe(
        Effect.provide(
          PgSql.layerConfig({ url: Config.Redacted("DATABASE_URL"), pgbouncer: Config.Boolean("PGFX_PGBOUNCER") }).pipe(
            Layer.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({ DATABASE_URL: url, PGFX_PGBOUNCER: "true" })))
          )
        )
      )
      expect(pgbouncer).toBe(true)
    }))

  it.effect("listen streams notifications without holding the shared connection; notify sends them", () =>
    withSql(Effect.gen(function*() {
      const sql = yield* PgSql.PgSql
      const fiber = yield* sql.listen("pgfx sql channel").pipe(Stream.take(1), Stream.runCollect, Effect.forkChild)
      // the shared connection stays free for statements while the stream runs
      expect(yield* sql`SELECT 1 AS one`.pipe(Effect.timeout("3 seconds"))).toEqual([{ one: 1 }])
      // LISTEN happens when the stream starts: notify until the first one arrives
      const received = yield* Effect.gen(function*() {
        for (let tries = 0; tries < 100; tries++) {
          yield* sql.notify("pgfx sql channel", "hello")
          const done = yield* Fiber.await(fiber).pipe(Effect.timeoutOption("50 millis"))
          if (Option.isSome(done)) return yield* done.value
        }
        return yield* Effect.die("no notification arrived")
      })
      expect(received.map((notification) => [notification.channel, notification.payload])).toEqual([
        ["pgfx sql channel", "hello"]
      ])
      expect(received[0].pid).toBeGreaterThan(0)
    })))
})

class Person extends Schema.Class<Person>("Person")({
  id: Schema.Number,
  name: Schema.String,
  createdAt: Schema.Date
}) {}

layer(TestDatabase.layer, { excludeTestServices: true })("PgSql: SqlSchema, SqlResolver, Migrator", (it) => {
  const setup = (table: string) =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* sql`CREATE TABLE ${sql(table)} (id serial PRIMARY KEY, name text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())`
      yield* sql`INSERT INTO ${sql(table)} ${sql.insert([{ name: "Ann" }, { name: "Bob" }, { name: "Cid" }])}`
      return sql
    })
  const options = { transformQueryNames: Str.camelToSnake, transformResultNames: Str.snakeToCamel }

  it.effect("SqlSchema helpers encode the request and decode rows", () =>
    withSql(
      Effect.gen(function*() {
        const sql = yield* setup("schema_people")
        const findAll = SqlSchema.findAll({
          Request: Schema.String,
          Result: Person,
          execute: (prefix) => sql`SELECT * FROM schema_people WHERE name LIKE ${prefix + "%"} ORDER BY id`
        })
        const all = yield* findAll("")
        expect(all.map((person) => person.name)).toEqual(["Ann", "Bob", "Cid"])
        expect(all[0]).toBeInstanceOf(Person)
        expect(all[0].createdAt).toBeInstanceOf(Date)
        const findOne = SqlSchema.findOne({
          Request: Schema.Number,
          Result: Person,
          execute: (id) => sql`SELECT * FROM schema_people WHERE id = ${id}`
        })
        expect((yield* findOne(2)).name).toBe("Bob")
        const missing = yield* Effect.flip(findOne(99))
        expect(missing._tag).toBe("NoSuchElementError")
        const findOneOption = SqlSchema.findOneOption({
          Request: Schema.Number,
          Result: Person,
          execute: (id) => sql`SELECT * FROM schema_people WHERE id = ${id}`
        })
        expect(Option.isNone(yield* findOneOption(99))).toBe(true)
        const insert = SqlSchema.void({
          Request: Schema.Struct({ name: Schema.String }),
          execute: (request) => sql`INSERT INTO schema_people ${sql.insert(request)}`
        })
        yield* insert({ name: "Dee" })
        const wrongShape = SqlSchema.findAll({
          Request: Schema.Void,
          Result: Schema.Struct({ id: Schema.String }),
          execute: () => sql`SELECT id FROM schema_people`
        })
        expect((yield* Effect.flip(wrongShape(undefined)))._tag).toBe("SchemaError")
        expect(yield* sql`SELECT count(*)::int AS n FROM schema_people`).toEqual([{ n: 4 }])
      }),
      options
    ))

  it.effect("a SqlResolver batches concurrent requests into one statement", () =>
    withSql(
      Effect.gen(function*() {
        const sql = yield* setup("resolver_people")
        const batches: Array<ReadonlyArray<number>> = []
        const resolver = SqlResolver.findById({
          Id: Schema.Number,
          Result: Person,
          ResultId: (person) => person.id,
          execute: (ids) =>
            Effect.andThen(
              Effect.sync(() => batches.push(ids)),
              sql`SELECT * FROM resolver_people WHERE ${sql.in("id", ids)}`
            )
        })
        const people = yield* Effect.forEach([3, 1, 2], (id) => SqlResolver.request(id, resolver), {
          concurrency: "unbounded"
        })
        expect(people.map((person) => person.name)).toEqual(["Cid", "Ann", "Bob"])
        expect(batches).toHaveLength(1)
        expect([...batches[0]].sort()).toEqual([1, 2, 3])
        const missing = yield* Effect.flip(SqlResolver.request(42, resolver))
        expect(missing._tag).toBe("NoSuchElementError")
        // inside a transaction the batch runs on the transaction's connection
        const ordered = SqlResolver.ordered({
          Request: Schema.String,
          Result: Schema.Struct({ id: Schema.Number, name: Schema.String }),
          execute: (names) =>
            sql`INSERT INTO resolver_people ${sql.insert(Arr.map(names, (name) => ({ name }))).returning("id, name")}`
        })
        const inserted = yield* sql.withTransaction(
          Effect.forEach(["Eve", "Fay"], (name) => SqlResolver.request(name, ordered), { concurrency: "unbounded" })
        )
        expect(inserted.map((row) => row.name)).toEqual(["Eve", "Fay"])
        expect(RequestResolver.isRequestResolver(ordered)).toBe(true)
      }),
      options
    ))

  it.effect("Migrator runs migrations from a record once and records them", () =>
    withSql(Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const loader = PgSql.fromRecord({
        "1_create_things": Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          yield* sql`CREATE TABLE things (id serial PRIMARY KEY, value text NOT NULL)`
        }),
        "2_seed_things": Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          yield* sql`INSERT INTO things ${sql.insert([{ value: "a" }, { value: "b" }])}`
        })
      })
      const ran = yield* PgSql.migrate({ loader })
      expect(ran).toEqual([[1, "create_things"], [2, "seed_things"]])
      const recorded = yield* sql<{ migration_id: number; name: string; created_at: Date }>`
        SELECT migration_id, name, created_at FROM effect_sql_migrations ORDER BY migration_id`
      expect(recorded.map((row) => [row.migration_id, row.name])).toEqual([[1, "create_things"], [2, "seed_things"]])
      expect(recorded[0].created_at).toBeInstanceOf(Date)
      expect(yield* sql`SELECT value FROM things ORDER BY id`).toEqual([{ value: "a" }, { value: "b" }])
      // a second run finds nothing to do
      expect(yield* PgSql.migrate({ loader })).toEqual([])
      // a failing migration rolls back with the whole run, its record included
      const failing = PgSql.fromRecord({
        "3_add_column": Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          yield* sql`ALTER TABLE things ADD COLUMN extra int`
          yield* sql`SELECT 1/0`
        })
      })
      const error = yield* Effect.flip(PgSql.migrate({ loader: failing }))
      expect(error._tag).toBe("MigrationError")
      const columns = yield* sql`SELECT column_name FROM information_schema.columns WHERE table_name = 'things' ORDER BY ordinal_position`
      expect(columns).toEqual([{ column_name: "id" }, { column_name: "value" }])
      expect(yield* sql`SELECT max(migration_id) AS latest FROM effect_sql_migrations`).toEqual([{ latest: 2 }])
    })))

  it.effect("Migrator layers load migrations from the file system", () =>
    Effect.gen(function*() {
      const directory = yield* Effect.acquireRelease(
        Effect.promise(() => Fs.mkdtemp(Path.join(Os.tmpdir(), "pgfx-migrations-"))),
        (directory) => Effect.promise(() => Fs.rm(directory, { recursive: true, force: true }))
      )
      // the files only hand over effects built here, so they import nothing
      const registry = globalThis as { pgfxMigrations?: Record<string, unknown> }
      registry.pgfxMigrations = {
        first: Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          yield* sql`CREATE TABLE fs_migrated (id int)`
        }),
        second: Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          yield* sql`INSERT INTO fs_migrated VALUES (1), (2)`
        })
      }
      yield* Effect.promise(() =>
        Promise.all([
          Fs.writeFile(Path.join(directory, "0001_first.mjs"), "export default globalThis.pgfxMigrations.first\n"),
          Fs.writeFile(Path.join(directory, "0002_second.mjs"), "export default globalThis.pgfxMigrations.second\n"),
          Fs.writeFile(Path.join(directory, "README.md"), "not a migration\n")
        ])
      )
      const url = yield* TestDatabase.url
      const sqlLayer = PgSql.layer(url)
      const migrated = PgSql.layerMigrator({ loader: PgSql.fromFileSystem(directory), table: "fs_migrations" }).pipe(
        Layer.provide(Layer.mergeAll(sqlLayer, NodeFileSystem.layer, NodePath.layer))
      )
      const rows = yield* Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        return yield* Effect.all([
          sql`SELECT count(*)::int AS n FROM fs_migrated`,
          sql`SELECT migration_id, name FROM fs_migrations ORDER BY migration_id`
        ])
      }).pipe(Effect.provide(Layer.merge(sqlLayer, migrated)))
      expect(rows).toEqual([[{ n: 2 }], [{ migration_id: 1, name: "first" }, { migration_id: 2, name: "second" }]])
      delete registry.pgfxMigrations
    }))
})
