/**
 * Template databases: migrations, fixtures and a setup effect run once into a template, which
 * every test database is then cloned from (`CREATE DATABASE … TEMPLATE …`).
 *
 * A template is named after the run, a label and a digest of what goes into it, so every test
 * file (in any worker) asking for the same content shares one. The first one to ask builds it
 * under a server-side advisory lock while the others wait; it is built under a temporary name
 * and renamed when complete, so a template that exists is always complete. Templates do not
 * accept connections (`ALLOW_CONNECTIONS false`): a stray session would block cloning.
 *
 * @internal
 */
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { Connection, PgSql } from "@pgfx/core"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Migrator from "effect/sql/Migrator"
import * as SqlClient from "effect/sql/SqlClient"
import * as Exit from "effect/Exit"
import type { Fixture } from "../Fixture.ts"
import { TestDatabase } from "../TestDatabase.ts"
import * as Admin from "./admin.ts"
import { type PgTestError, wrap } from "./errors.ts"
import { digest, quoteIdent, stableJson } from "./sqlText.ts"

/** What a template's `setup` effect may use. */
export type TemplateServices = Connection.PgConnection | PgSql.PgSql | SqlClient.SqlClient | TestDatabase

/** What goes into a template. */
export interface TemplateSpec<R> {
  /** Names the template (with the digest); different keys never share a template. */
  readonly key: string
  readonly migrations?: Migrator.Loader<R> | undefined
  readonly migrationsTable?: string | undefined
  readonly fixtures: ReadonlyArray<Fixture>
  readonly setup?: Effect.Effect<unknown, unknown, R | TemplateServices> | undefined
}

/** Digests of loaders whose content we know (SQL files), by loader. */
const loaderDigests = new WeakMap<object, Effect.Effect<string, PgTestError>>()

/** Registers how to digest a loader's content. */
export const registerLoaderDigest = (loader: object, digestOf: Effect.Effect<string, PgTestError>): void => {
  loaderDigests.set(loader, digestOf)
}

const migrationsDigest = <R>(loader: Migrator.Loader<R>): Effect.Effect<string, PgTestError, R> => {
  const known = loaderDigests.get(loader)
  if (known !== undefined) return known
  // effects cannot be compared: migrations are identified by id and name
  return Effect.map(
    Effect.mapError(loader, wrap("Template", "cannot load the migrations")),
    (migrations) => stableJson(migrations.map(([id, name]) => [id, name]))
  )
}

/** Names built (or seen complete) by this process. */
const known = new Set<string>()

/** The digest of a template's content. */
const specDigest = <R>(spec: TemplateSpec<R>): Effect.Effect<string, PgTestError, R> =>
  Effect.gen(function*() {
    const migrations = spec.migrations === undefined ? "none" : yield* migrationsDigest(spec.migrations)
    const fixtures: Array<string> = []
    for (const fixture of spec.fixtures) {
      fixtures.push(yield* Effect.mapError(fixture.fingerprint, wrap("Template", fixture.description)))
    }
    return digest(spec.key, migrations, spec.migrationsTable ?? "", ...fixtures, spec.setup === undefined ? "" : "setup")
  })

/** Runs migrations, fixtures and setup into the database at `url`. */
const fill = <R>(url: string, info: TestDatabase["Service"], spec: TemplateSpec<R>): Effect.Effect<void, PgTestError, R> =>
  Effect.scoped(
    Effect.gen(function*() {
      const connection = yield* Effect.mapError(
        Connection.connect(url, { prepareThreshold: null }),
        wrap("Template", "cannot connect to the template database")
      )
      const client = yield* Effect.mapError(
        PgSql.make({ acquire: Effect.succeed(connection) }),
        wrap("Template", "cannot make the SqlClient")
      )
      const services = Context.make(Connection.PgConnection, connection).pipe(
        Context.add(PgSql.PgSql, client),
        Context.add(SqlClient.SqlClient, client),
        Context.add(TestDatabase, info)
      )
      if (spec.migrations !== undefined) {
        yield* PgSql.migrate({ loader: spec.migrations, table: spec.migrationsTable }).pipe(
          Effect.provideContext(services),
          Effect.mapError(wrap("Template", "a migration failed"))
        )
      }
      for (const fixture of spec.fixtures) {
        yield* Effect.mapError(fixture.load(connection), wrap("Template", `fixture ${fixture.description}`))
      }
      if (spec.setup !== undefined) {
        yield* spec.setup.pipe(Effect.provideContext(services), Effect.mapError(wrap("Template", "the template setup failed")))
      }
    })
  )

/**
 * The name of the template for `spec` on the server of `admin`, built first if needed.
 * `template0` when there is nothing to put in it.
 */
export const ensureTemplate = <R>(
  admin: Connection.Connection,
  serverUrl: string,
  runId: string,
  spec: TemplateSpec<R>
): Effect.Effect<string, PgTestError, R> =>
  Effect.gen(function*() {
    if (spec.migrations === undefined && spec.fixtures.length === 0 && spec.setup === undefined) return "template0"
    const name = Admin.templateName(runId, spec.key, yield* specDigest(spec))
    if (known.has(name)) return name
    const building = `${name}_b`
    const lock = Effect.mapError(
      admin.execute("SELECT pg_advisory_lock(hashtext($1))", [name]),
      wrap("Template", "cannot take the template lock")
    )
    const unlock = Effect.ignore(admin.execute("SELECT pg_advisory_unlock(hashtext($1))", [name]))
    const build = Effect.gen(function*() {
      if (yield* Admin.databaseExists(admin, name)) return
      yield* Admin.dropDatabase(admin, building)
      yield* Admin.createDatabase(admin, building, "template0")
      yield* Effect.onExit(
        Effect.gen(function*() {
          yield* fill(Admin.databaseUrl(serverUrl, building), { url: Admin.databaseUrl(serverUrl, building), name: building }, spec)
          yield* admin.execute(`ALTER DATABASE ${quoteIdent(building)} RENAME TO ${quoteIdent(name)}`)
          yield* admin.execute(`ALTER DATABASE ${quoteIdent(name)} ALLOW_CONNECTIONS false`)
        }),
        (exit) => Exit.isFailure(exit) ? Effect.ignore(Admin.dropDatabase(admin, building)) : Effect.void
      )
    }).pipe(Effect.mapError(wrap("Template", `cannot build the template database ${name}`)))
    yield* Effect.acquireUseRelease(lock, () => build, () => unlock)
    known.add(name)
    return name
  })

/** A migrations loader reading `<id>_<name>.sql` files; see `PgTest.sqlMigrations`. */
export const sqlFilesLoader = (directory: string): Migrator.Loader => {
  const read = Effect.tryPromise({
    try: async () => {
      const entries = await fs.readdir(directory)
      const files: Array<{ readonly id: number; readonly name: string; readonly sql: string }> = []
      for (const entry of entries) {
        const match = /^(\d+)_(.+)\.sql$/.exec(entry)
        if (match === null) continue
        files.push({ id: Number(match[1]), name: match[2], sql: await fs.readFile(path.join(directory, entry), "utf8") })
      }
      return files.sort((a, b) => a.id - b.id)
    },
    catch: (cause) => cause
  })
  const loader: Migrator.Loader = Effect.map(
    Effect.mapError(read, (cause) =>
      new Migrator.MigrationError({
        kind: "ImportError",
        message: `cannot read the migrations in ${directory}: ${String((cause as Error).message ?? cause)}`,
        cause
      })),
    (files) =>
      files.map(({ id, name, sql }) =>
        [id, name, Effect.succeed(Effect.flatMap(SqlClient.SqlClient, (client) => client.unsafe(sql)))] as const
      )
  )
  registerLoaderDigest(
    loader,
    Effect.map(
      Effect.mapError(read, wrap("Template", `cannot read the migrations in ${directory}`)),
      (files) => digest("sql-files", stableJson(files.map((file) => [file.id, file.name, file.sql])))
    )
  )
  return loader
}
