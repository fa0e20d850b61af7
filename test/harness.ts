/**
 * Test harness: PostgreSQL for the test suites.
 *
 * Every test file runs once per target (vitest project `pg18`: embedded PostgreSQL 18 or
 * `DATABASE_URL`; `pg15`: the machine's server, when it answers). A file gets its own fresh
 * database; tests that stop, break or reconfigure a server use a throwaway server of their own.
 *
 * ```ts
 * import { assert, layer } from "@effect/vitest"
 * import { Effect } from "effect"
 * import { TestDatabase } from "../../../test/harness.ts"
 *
 * layer(TestDatabase.layer)("Connection", (it) => {
 *   it.effect("connects", () =>
 *     Effect.gen(function* () {
 *       const { url } = yield* TestDatabase // fresh database of this file, dropped afterwards
 *       assert.match(url, /^postgresql:\/\//)
 *     }))
 * })
 * ```
 *
 * API:
 * - {@link serverUrl} / {@link serverTarget}: the project's server (superuser URL) and target name.
 * - {@link primaryTarget}: true in one project only — for tests that do not need the target.
 * - {@link createTestDatabase}: a fresh database (Promise flavour, call `drop` yourself).
 * - {@link TestDatabase} (`TestDatabase.layer`) and {@link testDatabaseUrl}: the same, scoped.
 * - {@link throwawayServer}: a separate embedded server for fault / auth / TLS tests.
 */
import { randomBytes } from "node:crypto"
import * as path from "node:path"
import { Context, Effect, Layer } from "effect"
import type { Scope } from "effect"
import pg from "pg"
import { expect, inject } from "vitest"
import { embeddedServer } from "./embedded.ts"
import type { EmbeddedServer, EmbeddedServerOptions } from "./embedded.ts"
import type {} from "./provided-context.ts"

export type { AuthMethod, EmbeddedServer, EmbeddedServerOptions, HbaRule, ServerUser } from "./embedded.ts"

/** Superuser URL of the current project's server (`postgresql://…`). */
export const serverUrl = (): string => {
  const url = inject("pgfxServerUrl")
  if (!url) throw new Error("no test server: run the tests through vitest.config.ts (npm test)")
  return url
}

/** Name of the current target: `pg18` (embedded or DATABASE_URL) or `pg15` (the machine's server). */
export const serverTarget = (): string => inject("pgfxTarget")

/**
 * True in exactly one project of the run. Guard tests that do not use the project's server
 * (throwaway servers, pure protocol/codec tests) with it so they run once, not once per target:
 * `describe.runIf(primaryTarget())(…)` (or `if (primaryTarget()) describe(…)` to not even list them).
 */
export const primaryTarget = (): boolean => inject("pgfxPrimary") ?? true

/** A database created for a test file. */
export interface TestDatabaseHandle {
  /** URL of the database (the server URL with the database name replaced). */
  readonly url: string
  /** Database name: `pgfxt_<runId>_<label>_<random>`. */
  readonly name: string
  /** `DROP DATABASE … WITH (FORCE)` (ends remaining sessions). Idempotent. */
  readonly drop: () => Promise<void>
}

const sanitize = (label: string): string =>
  label
    .toLowerCase()
    .replace(/\.(test|spec)\.[cm]?[jt]sx?$/, "")
    .replace(/[^a-z0-9]+/g, "_")
    .replace(/^_+|_+$/g, "")
    .slice(0, 24) || "db"

/** The current test file's name, when vitest knows it. */
const currentFileLabel = (): string => {
  try {
    const testPath = expect.getState().testPath
    return testPath ? path.basename(testPath) : "db"
  } catch {
    return "db"
  }
}

const withAdmin = async <A>(f: (client: pg.Client) => Promise<A>): Promise<A> => {
  const client = new pg.Client({ connectionString: serverUrl() })
  client.on("error", () => {})
  await client.connect()
  try {
    return await f(client)
  } finally {
    await client.end().catch(() => undefined)
  }
}

/**
 * Create a fresh, uniquely named database on the project's server (UTF8, from `template0`,
 * which measured as fast as `template1` and is never polluted nor "being accessed by other
 * users"). `name` is a label for humans (default: the test file's name).
 */
export const createTestDatabase = async (name?: string): Promise<TestDatabaseHandle> => {
  const base = serverUrl()
  const runId = inject("pgfxRunId") ?? String(process.pid)
  const dbName = `pgfxt_${runId}_${sanitize(name ?? currentFileLabel())}_${randomBytes(4).toString("hex")}`
  await withAdmin((client) => client.query(`CREATE DATABASE ${pg.escapeIdentifier(dbName)} TEMPLATE template0 ENCODING 'UTF8'`))
  const url = new URL(base)
  url.pathname = `/${dbName}`
  let dropped = false
  return {
    url: url.toString(),
    name: dbName,
    drop: async () => {
      if (dropped) return
      await withAdmin((client) => client.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(dbName)} WITH (FORCE)`))
      dropped = true
    }
  }
}

const scopedTestDatabase = (name?: string): Effect.Effect<TestDatabaseHandle, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(() => createTestDatabase(name)),
    (db) => Effect.promise(() => db.drop())
  )

/** URL of a fresh test database, dropped (WITH (FORCE)) when the scope closes. */
export const testDatabaseUrl: Effect.Effect<string, never, Scope.Scope> = Effect.map(scopedTestDatabase(), (db) => db.url)

/**
 * A fresh test database as a service. `TestDatabase.layer` creates it when the layer is built
 * (with `layer(TestDatabase.layer)(…)` from `@effect/vitest`: once per block, i.e. per file) and
 * drops it when the layer is released.
 */
export class TestDatabase extends Context.Service<
  TestDatabase,
  {
    /** URL of the database. */
    readonly url: string
    /** Its name. */
    readonly name: string
  }
>()("pgfx/test/TestDatabase") {
  /** Build: create the database; release: drop it. */
  static readonly layer: Layer.Layer<TestDatabase> = Layer.effect(
    TestDatabase,
    Effect.map(scopedTestDatabase(), (db) => ({ url: db.url, name: db.name }))
  )
  /** The database's URL (`yield* TestDatabase.url`). */
  static readonly url: Effect.Effect<string, never, TestDatabase> = Effect.map(TestDatabase, (db) => db.url)
  /** The database's name (`yield* TestDatabase.dbName`). */
  static readonly dbName: Effect.Effect<string, never, TestDatabase> = Effect.map(TestDatabase, (db) => db.name)
  /**
   * Provide a database of its own to one effect (`effect.pipe(TestDatabase.provide)`): created
   * before, dropped after.
   */
  static readonly provide = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, Exclude<R, TestDatabase>> =>
    Effect.provide(self, TestDatabase.layer)
}

/** A throwaway server's handle (see `EmbeddedServer` in `test/embedded.ts`). */
export type ThrowawayServer = EmbeddedServer

/**
 * A separate embedded PostgreSQL 18 for tests that stop, break or reconfigure a server; removed
 * when the scope closes. Options: `hba` rules (placed before the defaults), `postgresqlConf`,
 * `users` (`{ name, password, passwordEncryption: "md5" | "scram-sha-256" }`), `ssl: true`
 * (self-signed CA at `caFile`, server certificate for localhost/127.0.0.1/::1).
 *
 * The default pg_hba rules use `md5`, which PostgreSQL upgrades to SCRAM for roles whose
 * password is stored as SCRAM (the superuser's is): MD5 and SCRAM users both work unless you
 * add stricter rules.
 */
export const throwawayServer = (options: EmbeddedServerOptions = {}): Effect.Effect<ThrowawayServer, Error, Scope.Scope> =>
  embeddedServer({ label: "pgfx-throwaway", defaultAuthMethod: "md5", ...options })
