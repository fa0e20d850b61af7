/**
 * A typed test harness for Effect programs on PostgreSQL.
 *
 * `PgTest.layer(options)` gives a test suite a real PostgreSQL database and the pgfx services a
 * program composes — `PgConnection`, `ConnectionPool`, effect's `SqlClient` (and `PgSql`) and
 * `TestDatabase` — so a test swaps the production layer for the test one and nothing else
 * changes. Migrations, fixtures and a setup effect run once into a template database; each test
 * database is a clone of it (`CREATE DATABASE … TEMPLATE …`), so no test pays for the schema.
 *
 * Isolation (`options.isolation`):
 *
 * - `"file"` (default): one database per build of the layer — with `@effect/vitest`'s
 *   `layer(PgTest.layer())(…)`, one per file (or `describe` block). The layer provides the
 *   services; tests of the block share the database.
 * - `"test"`: a fresh database per test: wrap each test's effect in {@link isolate}.
 * - `"transaction"`: one database per build, each test in a transaction that is always rolled
 *   back: wrap each test's effect in {@link isolate}. Transactions of the code under test
 *   (`conn.transaction`, `sql.withTransaction`) become savepoints; the pool hands out the
 *   test's connection, so pooled work is rolled back too.
 *
 * In the per-test modes the layer provides only `PgTest`: a test that forgets `isolate` does
 * not compile (its `SqlClient` / `PgConnection` requirement is unmet).
 *
 * ```ts
 * import { assert, layer } from "@effect/vitest"
 * import { Effect, Schema } from "effect"
 * import { SqlClient } from "effect/sql"
 * import { Fixture, PgTest } from "@pgfx/testing"
 *
 * const Db = PgTest.layer({
 *   isolation: "transaction",
 *   migrations: PgTest.sqlMigrations(new URL("./migrations", import.meta.url).pathname),
 *   fixtures: [Fixture.rows("users", [{ id: 1, name: "Ada" }])]
 * })
 *
 * layer(Db)("users", (it) => {
 *   it.effect("renames", () =>
 *     Effect.gen(function*() {
 *       const sql = yield* SqlClient.SqlClient
 *       yield* sql`UPDATE users SET name = 'Grace' WHERE id = 1`
 *       const users = yield* PgTest.rows("users", Schema.Struct({ id: Schema.Number, name: Schema.String }))
 *       assert.deepStrictEqual(users, [{ id: 1, name: "Grace" }])
 *       yield* PgTest.assertNoLeaks
 *     }).pipe(PgTest.isolate)) // rolled back: the next test sees "Ada" again
 * })
 * ```
 *
 * @since 0.1.0
 */
import { Connection, type PgError, PgSql, Transaction } from "@pgfx/core"
import { ConnectionPool } from "@pgfx/pool"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import type * as Migrator from "effect/sql/Migrator"
import * as SqlClient from "effect/sql/SqlClient"
import * as Scope from "effect/Scope"
import type { Fixture } from "./Fixture.ts"
import * as Admin from "./internal/admin.ts"
import { PgTestError, wrap } from "./internal/errors.ts"
import * as Leaks from "./internal/leaks.ts"
import { makePoolView } from "./internal/poolView.ts"
import { savepointing } from "./internal/savepoints.ts"
import { ensureTemplate, sqlFilesLoader, type TemplateServices } from "./internal/template.ts"
import { currentTestFile, injected } from "./internal/vitest.ts"
import { TestDatabase } from "./TestDatabase.ts"
import type * as TestDatabaseModule from "./TestDatabase.ts"
import * as TestServer from "./TestServer.ts"

export {
  /** @since 0.1.0 */
  PgTestError
} from "./internal/errors.ts"

export {
  /** @since 0.1.0 */
  LeakDetected
} from "./internal/leaks.ts"

export type {
  /** @since 0.1.0 */
  AssertNoLeaksOptions,
  /** @since 0.1.0 */
  LeakedCursor,
  /** @since 0.1.0 */
  LeakedLock,
  /** @since 0.1.0 */
  LeakedSession,
  /** @since 0.1.0 */
  Leaks
} from "./internal/leaks.ts"

export type {
  /** What a template's `setup` effect may use. @since 0.1.0 */
  TemplateServices
} from "./internal/template.ts"

// -----------------------------------------------------------------------------
// models
// -----------------------------------------------------------------------------

/**
 * How tests are kept apart: a database per build of the layer (`"file"`), a database per test
 * (`"test"`), or a rolled-back transaction per test (`"transaction"`).
 *
 * @since 0.1.0
 */
export type Isolation = "file" | "test" | "transaction"

/**
 * The services a test gets: a connection, a pool, effect's `SqlClient` (and pgfx's `PgSql`, the
 * same client), and the database's URL and name.
 *
 * @since 0.1.0
 */
export type Services =
  | Connection.PgConnection
  | ConnectionPool.ConnectionPool
  | PgSql.PgSql
  | SqlClient.SqlClient
  | TestDatabase

/**
 * Options of {@link layer}. `R` is what the migrations loader and `setup` need (e.g. `FileSystem`
 * for `PgSql.fromFileSystem`).
 *
 * @since 0.1.0
 */
export interface Options<R = never> {
  /** Default `"file"`. */
  readonly isolation?: Isolation | undefined
  /**
   * Migrations run into the template with effect's `Migrator` (recorded in `migrationsTable`):
   * {@link sqlMigrations} for a folder of `.sql` files, or `PgSql.fromRecord`,
   * `PgSql.fromFileSystem`, `PgSql.fromGlob`.
   */
  readonly migrations?: Migrator.Loader<R> | undefined
  /** Default `effect_sql_migrations`. */
  readonly migrationsTable?: string | undefined
  /** Data loaded into the template after the migrations (see `Fixture`). */
  readonly fixtures?: ReadonlyArray<Fixture> | undefined
  /** Runs last on the template, with a connection and the SqlClient. */
  readonly setup?: Effect.Effect<unknown, unknown, R | TemplateServices> | undefined
  /**
   * Names the template. Every file of the run asking for the same migrations, fixtures and name
   * shares one template. Migrations given as effects are compared by id and name only, and a
   * `setup` effect not at all: give templates with different effects different names.
   */
  readonly template?: string | undefined
  /**
   * With `isolation: "test"`: clone and connect the next test's database while the current test
   * runs, so a test does not wait for its database (default `true`; costs one unused clone at
   * the end of the suite).
   */
  readonly prepareAhead?: boolean | undefined
  /** Label in the test databases' names (default: the test file's name). */
  readonly label?: string | undefined
  /** A superuser (or CREATEDB) URL to use instead of the run's server (see `TestServer`). */
  readonly server?: string | undefined
  /** Options of the test's connection(s). */
  readonly connectOptions?: Omit<Connection.ConnectOptions, "rowFactory"> | undefined
  /** Options of the test's pool (default `minSize: 0`, `maxSize: 4`); `conninfo` is the test database. */
  readonly pool?: Omit<ConnectionPool.Options, "conninfo" | "rowFactory"> | undefined
  /** Options of the SqlClient (name transforms, span attributes, stream batch size). */
  readonly sql?: PgSql.ClientOptions | undefined
}

/**
 * The suite: the server, the template, and how to isolate a test.
 *
 * @since 0.1.0
 */
export interface PgTestSuite {
  /** The suite's isolation mode. */
  readonly isolation: Isolation
  /** The server the test databases live on. */
  readonly server: TestServer.TestServer
  /** The template database the test databases are cloned from (`template0` when empty). */
  readonly template: string
  /** The harness's session on the server's own database (to look at the test's from outside). */
  readonly admin: Connection.Connection
  /** Runs `self` with the test's services, isolated as the suite says. */
  readonly isolate: <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | PgTestError, Exclude<R, Services>>
  /** A further database cloned from the template, dropped when the scope closes. */
  readonly cloneDatabase: (label?: string) => Effect.Effect<TestDatabaseModule.Info, PgTestError, Scope.Scope>
}

/**
 * The service tag of the suite, provided by {@link layer}.
 *
 * @example
 * ```ts
 * it.effect("sees the test database from outside", () =>
 *   Effect.gen(function*() {
 *     const suite = yield* PgTest.PgTest
 *     const activity = yield* suite.admin.execute("SELECT count(*) FROM pg_stat_activity")
 *   }))
 * ```
 *
 * @since 0.1.0
 */
export class PgTest extends Context.Service<PgTest, PgTestSuite>()("@pgfx/testing/PgTest") {}

// -----------------------------------------------------------------------------
// the suite
// -----------------------------------------------------------------------------

const scoped = <A, E, R, B, E2, R2>(
  build: Effect.Effect<A, E, R | Scope.Scope>,
  use: (value: A) => Effect.Effect<B, E2, R2>
): Effect.Effect<B, E | E2, Exclude<R, Scope.Scope> | R2> =>
  Effect.acquireUseRelease(
    Scope.make(),
    (scope) => Effect.flatMap(Scope.provide(build, scope), use),
    (scope, exit) => Scope.close(scope, exit)
  ) as Effect.Effect<B, E | E2, Exclude<R, Scope.Scope> | R2>

const makeSuite = <R>(
  options: Options<R>
): Effect.Effect<{ readonly suite: PgTestSuite; readonly services: Context.Context<Services> | undefined }, PgTestError, R | Scope.Scope> =>
  Effect.gen(function*() {
    const isolation = options.isolation ?? "file"
    const server: TestServer.TestServer = options.server !== undefined
      ? { url: options.server, runId: (yield* injected("pgfxRunId")) ?? String(process.pid), source: "project" }
      : yield* Effect.mapError(TestServer.get, wrap("Server", "no test server"))
    const label = options.label ?? Admin.fileLabel(yield* currentTestFile)
    const admin = yield* Effect.mapError(Admin.connect(server.url), wrap("Server", "cannot connect to the test server"))
    const template = yield* ensureTemplate(admin, server.url, server.runId, {
      key: options.template ?? "",
      migrations: options.migrations,
      migrationsTable: options.migrationsTable,
      fixtures: options.fixtures ?? [],
      setup: options.setup
    })

    const cloneDatabase = (name = label): Effect.Effect<TestDatabaseModule.Info, PgTestError, Scope.Scope> =>
      Effect.acquireRelease(
        Effect.suspend(() => {
          const database = Admin.freshName(server.runId, name)
          return Effect.as(Admin.createDatabase(admin, database, template), {
            name: database,
            url: Admin.databaseUrl(server.url, database)
          }).pipe(Effect.mapError(wrap("Database", `cannot clone ${template}`)))
        }),
        (db) => Effect.ignore(Admin.dropDatabase(admin, db.name))
      )

    const connect = (db: TestDatabaseModule.Info) =>
      Effect.mapError(
        Connection.connect(db.url, options.connectOptions),
        wrap("Database", `cannot connect to ${db.name}`)
      )

    /** Connection, pool and SqlClient on a database of its own (modes "file" and "test"). */
    const databaseServices = (db: TestDatabaseModule.Info): Effect.Effect<Context.Context<Services>, PgTestError, Scope.Scope> =>
      Effect.gen(function*() {
        const connection = yield* connect(db)
        const pool = yield* Effect.mapError(
          ConnectionPool.make({ minSize: 0, maxSize: 4, name: "pgtest", ...options.connectOptions, ...options.pool, conninfo: db.url }),
          wrap("Database", "cannot make the pool")
        )
        const client = yield* Effect.mapError(
          PgSql.make({ ...options.sql, acquire: pool.connection }),
          wrap("Database", "cannot make the SqlClient")
        )
        return Context.make(Connection.PgConnection, connection).pipe(
          Context.add(ConnectionPool.ConnectionPool, pool),
          Context.add(PgSql.PgSql, client),
          Context.add(SqlClient.SqlClient, client),
          Context.add(TestDatabase, db)
        )
      })

    const base = { isolation, server, template, admin, cloneDatabase }

    if (isolation === "file") {
      const services = yield* databaseServices(yield* cloneDatabase())
      const isolate = <A, E, R2>(self: Effect.Effect<A, E, R2>): Effect.Effect<A, E | PgTestError, Exclude<R2, Services>> =>
        Effect.provideContext(self, services)
      return { suite: { ...base, isolate }, services }
    }

    if (isolation === "test") {
      const suiteScope = yield* Effect.scope
      interface Prepared {
        readonly scope: Scope.Closeable
        readonly services: Context.Context<Services>
      }
      /** A database and its services in `scope` (a child of the suite's: the suite closes what is left). */
      const build = (scope: Scope.Closeable): Effect.Effect<Prepared, PgTestError> =>
        Scope.provide(Effect.flatMap(cloneDatabase(), databaseServices), scope).pipe(
          Effect.map((services): Prepared => ({ scope, services })),
          Effect.onError(() => Scope.close(scope, Exit.void))
        )
      const prepare = Effect.flatMap(Scope.fork(suiteScope), build)
      // The next test's database is cloned and connected while the current test runs. Its scope
      // is made before the fiber, so closing the suite interrupts the fiber first, then drops it.
      let spare: Fiber.Fiber<Prepared, PgTestError> | undefined
      const prepareAhead = Effect.flatMap(Scope.fork(suiteScope), (scope) => Effect.forkIn(build(scope), suiteScope))
      const take = Effect.gen(function*() {
        const ready = spare
        spare = undefined
        const prepared = ready === undefined ? yield* prepare : yield* Effect.catchCause(Fiber.join(ready), () => prepare)
        if (options.prepareAhead ?? true) spare = yield* prepareAhead
        return prepared
      })
      const isolate = <A, E, R2>(self: Effect.Effect<A, E, R2>): Effect.Effect<A, E | PgTestError, Exclude<R2, Services>> =>
        Effect.acquireUseRelease(
          take,
          ({ services }) => Effect.provideContext(self, services),
          ({ scope }, exit) => Scope.close(scope, exit)
        )
      return { suite: { ...base, isolate }, services: undefined }
    }

    // "transaction": one database and connection for the suite, a rolled-back transaction per test
    const suiteScope = yield* Effect.scope
    const open = (db: TestDatabaseModule.Info) =>
      Effect.gen(function*() {
        const scope = yield* Scope.fork(suiteScope)
        const connection = yield* Effect.onError(Scope.provide(connect(db), scope), () => Scope.close(scope, Exit.void))
        return { db, connection, scope }
      })
    let current = yield* open(yield* cloneDatabase())
    const live = Effect.suspend(() => {
      if (!current.connection.closed) return Effect.succeed(current)
      return Effect.flatMap(Scope.close(current.scope, Exit.void), () =>
        Effect.map(open(current.db), (opened) => (current = opened)))
    })
    /** Replaces the suite's database with a fresh clone (after a test committed). */
    const reset = Effect.gen(function*() {
      yield* Scope.close(current.scope, Exit.void)
      yield* Effect.ignore(Admin.dropDatabase(admin, current.db.name))
      current = yield* open(yield* Scope.provide(cloneDatabase(), suiteScope))
    })

    const isolate = <A, E, R2>(self: Effect.Effect<A, E, R2>): Effect.Effect<A, E | PgTestError, Exclude<R2, Services>> =>
      Effect.flatMap(live, ({ connection, db }) =>
        scoped(
          // the client's own transactions become savepoints of the test's transaction
          Effect.mapError(
            PgSql.make({ ...options.sql, acquire: Effect.succeed(savepointing(connection)) }),
            wrap("Database", "cannot make the SqlClient")
          ),
          (client) => {
            const services = Context.make(Connection.PgConnection, connection).pipe(
              Context.add(ConnectionPool.ConnectionPool, makePoolView(connection, "pgtest")),
              Context.add(PgSql.PgSql, client),
              Context.add(SqlClient.SqlClient, client),
              Context.add(TestDatabase, db)
            )
            const body = Effect.provideContext(self, services)
            let outcome: Exit.Exit<A, E> | undefined
            let ended = false
            const block = connection.transaction(
              Effect.flatMap(Effect.exit(body), (exit) => {
                outcome = exit
                ended = connection.info.transactionStatus === "IDLE"
                return Transaction.rollback
              })
            )
            return Effect.gen(function*() {
              yield* Effect.mapError(block, wrap("Isolation", "the test's transaction failed"))
              if (ended) {
                yield* Effect.mapError(reset, wrap("Isolation", "cannot replace the database"))
                return yield* Effect.fail(
                  new PgTestError({
                    reason: "Isolation",
                    message: "the test ended the harness's transaction (COMMIT or ROLLBACK on the connection itself): " +
                      "what it wrote afterwards was committed, so the suite's database was replaced by a fresh clone"
                  })
                )
              }
              if (outcome === undefined) {
                return yield* Effect.die(new Error("PgTest.isolate: the test did not complete"))
              }
              return yield* outcome
            })
          }
        )
      ) as Effect.Effect<A, E | PgTestError, Exclude<R2, Services>>
    return { suite: { ...base, isolate }, services: undefined }
  })

/**
 * The layer of a test suite. See the module documentation for the isolation modes. The server
 * is the run's (see `TestServer`); the template is built on first use and shared by every file
 * asking for the same content; the test databases are dropped when released.
 *
 * @example
 * ```ts
 * const Db = PgTest.layer({
 *   isolation: "transaction",
 *   migrations: PgTest.sqlMigrations("./migrations"),
 *   fixtures: [Fixture.csv("users", { path: "./fixtures/users.csv" })]
 * })
 * layer(Db)("users", (it) => { … }) // @effect/vitest
 * ```
 *
 * @since 0.1.0
 */
export const layer: {
  <R = never>(
    options?: Options<R> & { readonly isolation?: "file" | undefined }
  ): Layer.Layer<PgTest | Services, PgTestError, Exclude<R, TemplateServices>>
  <R = never>(
    options: Options<R> & { readonly isolation: "test" | "transaction" }
  ): Layer.Layer<PgTest, PgTestError, Exclude<R, TemplateServices>>
  /** The mode known only at run time: the services come from `isolate`. */
  <R = never>(options: Options<R>): Layer.Layer<PgTest, PgTestError, Exclude<R, TemplateServices>>
} = <R>(options: Options<R> = {}): Layer.Layer<PgTest | Services, PgTestError, Exclude<R, TemplateServices>> =>
  Layer.effectContext(
    Effect.map(makeSuite(options), ({ services, suite }) =>
      services === undefined
        ? Context.make(PgTest, suite) as Context.Context<PgTest | Services>
        : Context.add(services, PgTest, suite))
  ) as Layer.Layer<PgTest | Services, PgTestError, Exclude<R, TemplateServices>>

/**
 * Runs `self` with the test's services, isolated as the suite says: in its own database
 * (`"test"`), in a transaction rolled back afterwards (`"transaction"`), or on the suite's
 * database (`"file"`). Use it on every test of a per-test suite.
 *
 * @example
 * ```ts
 * it.effect("inserts", () =>
 *   Effect.gen(function*() {
 *     const sql = yield* SqlClient.SqlClient
 *     yield* sql`INSERT INTO users (name) VALUES ('Ada')`
 *     assert.strictEqual(yield* PgTest.count("users"), 1)
 *   }).pipe(PgTest.isolate)) // rolled back / dropped afterwards
 * ```
 *
 * @since 0.1.0
 */
export const isolate = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E | PgTestError, Exclude<R, Services> | PgTest> =>
  Effect.flatMap(PgTest, (suite) => suite.isolate(self))

/**
 * {@link isolate} with a layer of the program built inside the test's isolation — the
 * production services that depend on the SqlClient or the pool.
 *
 * @example
 * ```ts
 * it.effect("places an order", () =>
 *   Effect.gen(function*() {
 *     yield* (yield* OrdersRepo).place({ userId: 1, total: "12.50" })
 *     assert.strictEqual(yield* PgTest.count("orders"), 1)
 *   }).pipe(PgTest.isolateWith(OrdersRepo.layer))) // OrdersRepo.layer needs the SqlClient
 * ```
 *
 * @since 0.1.0
 */
export const isolateWith = <ROut, E2, RIn>(layer: Layer.Layer<ROut, E2, RIn>) =>
<A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E | E2 | PgTestError, Exclude<Exclude<R, ROut> | RIn, Services> | PgTest> =>
  isolate(Effect.provide(self, layer))

/**
 * A migrations loader for a folder of SQL files named `<id>_<name>.sql` (e.g.
 * `0001_create_users.sql`), run in id order, each as one script, recorded by effect's
 * `Migrator` like any other migration. Their content is part of the template's identity.
 *
 * @example
 * ```ts
 * PgTest.layer({ migrations: PgTest.sqlMigrations(new URL("./migrations", import.meta.url).pathname) })
 * ```
 *
 * @since 0.1.0
 */
export const sqlMigrations = (directory: string): Migrator.Loader => sqlFilesLoader(directory)

// -----------------------------------------------------------------------------
// assertions
// -----------------------------------------------------------------------------

/**
 * Fails with `LeakDetected` when the test left something behind in its database: a session busy
 * or `idle in transaction` (the harness's own transaction in `"transaction"` mode excepted), a
 * server cursor open on the test's connection or on an idle pool connection, an advisory lock,
 * a pool connection still checked out or a client still waiting. Sessions and checkouts get a
 * moment (`within`, default 2 seconds) to settle.
 *
 * @example
 * ```ts
 * yield* PgTest.assertNoLeaksWith({ within: "5 seconds", poolCursors: false })
 * ```
 *
 * @since 0.1.0
 */
export const assertNoLeaksWith = (
  options?: Leaks.AssertNoLeaksOptions
): Effect.Effect<void, Leaks.LeakDetected | PgError.PgError, PgTest | Connection.PgConnection | TestDatabase> =>
  Effect.flatMap(PgTest, (suite) =>
    Leaks.assertNoLeaks(
      suite.admin,
      (connection) => (suite.isolation === "transaction" ? connection.info.backendPid : undefined),
      options
    ))

/**
 * {@link assertNoLeaksWith} with the defaults.
 *
 * @example
 * ```ts
 * it.effect("leaves nothing behind", () =>
 *   Effect.gen(function*() {
 *     yield* codeUnderTest
 *     yield* PgTest.assertNoLeaks // fails with LeakDetected listing what was left
 *   }).pipe(PgTest.isolate))
 * ```
 *
 * @since 0.1.0
 */
export const assertNoLeaks: Effect.Effect<void, Leaks.LeakDetected | PgError.PgError, PgTest | Connection.PgConnection | TestDatabase> =
  assertNoLeaksWith()

export { count, query, type RowSchema, rows, type RowsOptions } from "./internal/tableRows.ts"

// -----------------------------------------------------------------------------
// plain vitest
// -----------------------------------------------------------------------------

/**
 * A suite for plain vitest (or any runner that takes Promises).
 *
 * @since 0.1.0
 */
export interface Runtime<ROut> {
  /** Runs one test's effect, isolated (see {@link isolate}), with a Scope of its own. */
  readonly run: <A, E>(effect: Effect.Effect<A, E, ROut | Services | Scope.Scope>) => Promise<A>
  /** Releases the suite (drops its databases); call it in `afterAll`. */
  readonly dispose: () => Promise<void>
}

/**
 * Builds the suite on first use and runs tests on it.
 *
 * @example
 * ```ts
 * import { afterAll, expect, test } from "vitest"
 * const db = PgTest.runtime(PgTest.layer({ isolation: "transaction", migrations }))
 * afterAll(() => db.dispose())
 * test("inserts", () => db.run(Effect.gen(function*() { … })))
 * ```
 *
 * @since 0.1.0
 */
export const runtime = <ROut, E>(layer: Layer.Layer<ROut | PgTest, E>): Runtime<ROut | PgTest> => {
  const managed = ManagedRuntime.make(layer)
  return {
    run: <A, E2>(effect: Effect.Effect<A, E2, ROut | PgTest | Services | Scope.Scope>) =>
      managed.runPromise(isolate(Effect.scoped(effect)) as Effect.Effect<A, E2 | PgTestError, ROut | PgTest>),
    dispose: () => managed.dispose()
  }
}
