/**
 * The database of the current test: its URL and name, as a service. `PgTest.layer` provides it
 * with the other services; on its own, `TestDatabase.TestDatabase.layer` creates a fresh, empty database
 * (from `template0`) per build and drops it when released — what pgfx's own suites use.
 *
 * ```ts
 * import { assert, layer } from "@effect/vitest"
 * import { Effect } from "effect"
 * import { TestDatabase } from "@pgfx/testing"
 *
 * layer(TestDatabase.TestDatabase.layer)("Connection", (it) => {
 *   it.effect("connects", () =>
 *     Effect.gen(function*() {
 *       const { url } = yield* TestDatabase.TestDatabase // this file's database, dropped afterwards
 *       assert.match(url, /^postgresql:\/\//)
 *     }))
 * })
 * ```
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as Admin from "./internal/admin.ts"
import { type PgTestError, wrap } from "./internal/errors.ts"
import { currentTestFile } from "./internal/vitest.ts"
import * as TestServer from "./TestServer.ts"

/**
 * A database of the test server.
 *
 * @since 0.1.0
 */
export interface Info {
  /** URL of the database (the server URL with the database replaced). */
  readonly url: string
  /** Database name: `pgfxt_<runId>_<label>_<random>`. */
  readonly name: string
}

/**
 * A database with a way to drop it yourself (Promise flavour).
 *
 * @since 0.1.0
 */
export interface Handle extends Info {
  /** `DROP DATABASE … WITH (FORCE)` (ends the remaining sessions). Idempotent. */
  readonly drop: () => Promise<void>
}

/**
 * Creates a fresh, empty database (UTF8, from `template0`) on the test server. `label` is for
 * humans (default: the test file's name). Dropped when the scope closes (WITH (FORCE)).
 *
 * @example
 * ```ts
 * const { url } = yield* TestDatabase.make("scratch")
 * const conn = yield* Connection.connect(url)
 * ```
 *
 * @since 0.1.0
 */
export const make = (label?: string): Effect.Effect<Info, PgTestError, Scope.Scope> =>
  Effect.acquireRelease(create(label), (db) => Effect.promise(() => db.drop()))

/**
 * Creates a fresh, empty database without a scope: call `drop` yourself (the run's global
 * teardown drops what is left on an external server; an embedded server goes away entirely).
 *
 * @example
 * ```ts
 * const db = yield* TestDatabase.create("benchmark")
 * // … later
 * yield* Effect.promise(() => db.drop())
 * ```
 *
 * @since 0.1.0
 */
export const create = (label?: string): Effect.Effect<Handle, PgTestError> =>
  Effect.gen(function*() {
    const server = yield* Effect.mapError(TestServer.get, wrap("Server", "no test server"))
    const name = Admin.freshName(server.runId, label ?? Admin.fileLabel(yield* currentTestFile))
    yield* Effect.scoped(
      Effect.flatMap(Admin.connect(server.url), (admin) => Admin.createDatabase(admin, name, "template0"))
    ).pipe(Effect.mapError(wrap("Database", `cannot create the test database ${name}`)))
    let dropped = false
    const drop = (): Promise<void> =>
      dropped ? Promise.resolve() : Effect.runPromise(
        Effect.scoped(Effect.flatMap(Admin.connect(server.url), (admin) => Admin.dropDatabase(admin, name))).pipe(
          Effect.mapError(wrap("Database", `cannot drop the test database ${name}`))
        )
      ).then(() => {
        dropped = true
      })
    return { url: Admin.databaseUrl(server.url, name), name, drop }
  })

/**
 * The database of the current test, as a service. See the module documentation.
 *
 * @example
 * ```ts
 * layer(TestDatabase.TestDatabase.layer)("Connection", (it) => {
 *   it.effect("connects", () =>
 *     Effect.gen(function*() {
 *       const conn = yield* Connection.connect(yield* TestDatabase.TestDatabase.url)
 *       assert.strictEqual(conn.info.database, yield* TestDatabase.TestDatabase.dbName)
 *     }))
 * })
 * ```
 *
 * @since 0.1.0
 */
export class TestDatabase extends Context.Service<TestDatabase, Info>()("@pgfx/testing/TestDatabase") {
  /** Build: create a fresh empty database; release: drop it. Failures are defects. */
  static readonly layer: Layer.Layer<TestDatabase> = Layer.effect(TestDatabase, Effect.orDie(make()))
  /** The database's URL (`yield* TestDatabase.url`). */
  static readonly url: Effect.Effect<string, never, TestDatabase> = Effect.map(TestDatabase, (db) => db.url)
  /** The database's name (`yield* TestDatabase.dbName`). */
  static readonly dbName: Effect.Effect<string, never, TestDatabase> = Effect.map(TestDatabase, (db) => db.name)
  /** Provides a database of its own to one effect (`effect.pipe(TestDatabase.provide)`): created before, dropped after. */
  static readonly provide = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, Exclude<R, TestDatabase>> =>
    Effect.provide(self, TestDatabase.layer)
}

/**
 * URL of a fresh empty database, dropped when the scope closes. Failures are defects.
 *
 * @example
 * ```ts
 * it.effect("works on an empty database", () =>
 *   Effect.gen(function*() {
 *     const conn = yield* Connection.connect(yield* TestDatabase.testDatabaseUrl)
 *   }))
 * ```
 *
 * @since 0.1.0
 */
export const testDatabaseUrl: Effect.Effect<string, never, Scope.Scope> = Effect.map(Effect.orDie(make()), (db) => db.url)

/**
 * {@link create} as a Promise (for plain vitest hooks).
 *
 * @example
 * ```ts
 * let db: TestDatabase.Handle
 * beforeAll(async () => { db = await TestDatabase.createTestDatabase() })
 * afterAll(() => db.drop())
 * ```
 *
 * @since 0.1.0
 */
export const createTestDatabase = (label?: string): Promise<Handle> => Effect.runPromise(create(label))
