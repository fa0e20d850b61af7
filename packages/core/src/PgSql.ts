/**
 * effect's `SqlClient` (from `effect/sql`) on the pgfx engine, so code
 * written for `@effect/sql-pg`'s `PgClient` runs unchanged: the `sql`
 * template and its helpers (`sql.in`, `sql.insert`, `sql.update`,
 * `sql.updateValues`, identifiers `sql("name")`, `sql.unsafe`, `sql.json`),
 * `withTransaction` (nested blocks are savepoints), `SqlSchema`,
 * `SqlResolver`, `Migrator`, streaming queries and spans with `db.*`
 * attributes.
 *
 * Three ways to get connections:
 *
 * - `settings`: one shared connection, opened when the client is built. Statements
 *   of concurrent fibers are pipelined on it; a transaction (or `reserve`, or a
 *   stream) holds it with the session's hold and every other fiber's statements
 *   on it, through the client or directly, wait. A connection that was lost
 *   (server restart, failed cancel) is replaced on the next use.
 * - `acquire`: a scoped checkout, e.g. a pool's `pool.connection`. Each
 *   statement checks a connection out for its own duration; a transaction
 *   keeps one for the whole transaction.
 * - `pool`: a `@pgfx/pool` pool. Statements outside a transaction run on
 *   shared pooled connections (`pool.share`), pipelined with the other
 *   fibers' statements; a transaction, stream or `reserve` checks one out.
 *
 * Statements with parameters use the extended protocol (bind values `$1`,
 * `$2`, …, prepared after the connection's `prepareThreshold`); statements
 * without parameters use the simple protocol, so scripts of several
 * statements work (their result is one array of rows per statement).
 * Rows are objects keyed by column name.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { SqlClient } from "effect/sql"
 * import { PgSql } from "@pgfx/core"
 *
 * const program = Effect.gen(function*() {
 *   const sql = yield* SqlClient.SqlClient
 *   yield* sql.withTransaction(sql`INSERT INTO people ${sql.insert({ name: "Tim", age: 10 })}`)
 *   return yield* sql<{ name: string }>`SELECT name FROM people WHERE ${sql.in("age", [10, 11])}`
 * })
 *
 * program.pipe(Effect.provide(PgSql.layer("postgresql://app@localhost/app")))
 * ```
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Reactivity from "effect/reactivity/Reactivity"
import * as Scope from "effect/Scope"
import * as Migrator from "effect/sql/Migrator"
import * as MigratorFileSystem from "effect/sql/MigratorFileSystem"
import * as SqlClient from "effect/sql/SqlClient"
import * as SqlError from "effect/sql/SqlError"
import * as Statement from "effect/sql/Statement"
import * as Stream from "effect/Stream"
import * as Connection from "./Connection.ts"
import * as PgConfig from "./PgConfig.ts"
import * as PgError from "./PgError.ts"
import * as Acquirers from "./internal/pgsql/acquirers.ts"
import * as Compiler from "./internal/pgsql/compiler.ts"
import { acquireError, commit, inTransaction, type PgSqlConnection } from "./internal/pgsql/sqlConnection.ts"

// -----------------------------------------------------------------------------
// models
// -----------------------------------------------------------------------------

/**
 * The runtime type identifier of `PgSql`.
 *
 * @since 0.1.0
 */
export const TypeId: TypeId = "~@pgfx/core/PgSql"

/**
 * The type-level identifier of `PgSql`.
 *
 * @since 0.1.0
 */
export type TypeId = "~@pgfx/core/PgSql"

/**
 * effect's `SqlClient` on pgfx, with PostgreSQL extras.
 *
 * @since 0.1.0
 */
export interface PgSql extends SqlClient.SqlClient {
  /** Marks a pgfx client. */
  readonly [TypeId]: TypeId
  /**
   * A value sent as `jsonb` (`@effect/sql-pg`'s `sql.json`). Plain objects
   * are sent as `jsonb` anyway; use this for arrays, strings and numbers
   * meant as JSON. Honours `transformQueryNames` unless `transformJson` is
   * `false`.
   */
  readonly json: (value: unknown) => Statement.Fragment
  /**
   * The notifications of the channels while the stream runs (LISTEN when it
   * starts, UNLISTEN when it ends). With one shared connection the listeners
   * share a second connection, opened on first use; with `acquire` each
   * stream checks one out for its life. The stream fails with a
   * `ConnectionError` reason if that connection is lost: retry to subscribe
   * again. (`@effect/sql-pg` 4.0's `listen` returns a queue instead.)
   */
  readonly listen: (...channels: ReadonlyArray<string>) => Stream.Stream<Connection.Notification, SqlError.SqlError>
  /** `pg_notify(channel, payload)` with bind parameters (delivered on commit inside a transaction). */
  readonly notify: (channel: string, payload: string) => Effect.Effect<void, SqlError.SqlError>
  /**
   * The pgfx connection for the scope, for what the `sql` template cannot do
   * (COPY, cursors, `listen`): the current transaction's connection inside
   * `withTransaction`, otherwise a connection held for the scope (the shared
   * one, exclusively, or a checkout from `acquire`).
   */
  readonly connection: Effect.Effect<Connection.Connection<unknown>, SqlError.SqlError, Scope.Scope>
}

/**
 * The service tag of `PgSql`. Layers of this module provide it together with
 * `SqlClient.SqlClient`.
 *
 * @example
 * ```ts
 * // the sql template for queries, the pgfx connection for COPY
 * const program = Effect.gen(function*() {
 *   const sql = yield* PgSql.PgSql
 *   yield* sql`CREATE TABLE IF NOT EXISTS items (id int, name text)`
 *   yield* sql.withTransaction(Effect.scoped(Effect.gen(function*() {
 *     const conn = yield* sql.connection // the transaction's connection
 *     yield* Copy.fromStream(conn, "COPY items (id, name) FROM STDIN", rows) // @pgfx/copy
 *   })))
 * })
 * ```
 *
 * @since 0.1.0
 */
export const PgSql: Context.Service<PgSql, PgSql> = Context.Service<PgSql>("@pgfx/core/PgSql")

/**
 * Options shared by every way of building the client.
 *
 * @since 0.1.0
 */
export interface ClientOptions {
  /** Renames identifiers written in queries (`sql("fieldName")`, insert/update keys), e.g. camelCase → snake_case. */
  readonly transformQueryNames?: ((name: string) => string) | undefined
  /** Renames the columns of result rows, e.g. snake_case → camelCase. */
  readonly transformResultNames?: ((name: string) => string) | undefined
  /** Whether the name transforms reach into JSON values (`sql.json`, nested result objects); default `true`. */
  readonly transformJson?: boolean | undefined
  /** Extra attributes on every statement and transaction span. */
  readonly spanAttributes?: Record<string, unknown> | undefined
  /** Rows per round trip of `statement.stream` (default 1000). */
  readonly streamBatchSize?: number | undefined
}

/**
 * Options of `make` and `layer`: `settings` for one shared connection, or
 * `acquire` for a scoped checkout (a pool's `pool.connection`). With
 * neither, one shared connection from the `PG*` environment variables.
 *
 * @since 0.1.0
 */
export interface Options<E = never> extends ClientOptions {
  /** Where to connect (conninfo, URL, object or resolved `PgConfig`): one shared connection. */
  readonly settings?: Connection.ConnectionSettings | undefined
  /** Options of the shared connection (`prepareThreshold`, timeouts, …). The row factory is ignored. */
  readonly connectOptions?: Connection.ConnectOptions<unknown> | undefined
  /** Checks out a connection for the life of the scope; used instead of `settings`. */
  readonly acquire?: Effect.Effect<Connection.Connection<unknown>, E, Scope.Scope> | undefined
  /**
   * A pool (`@pgfx/pool`'s `ConnectionPool`): single statements run through
   * its `share` (pipelined on pooled connections, no exclusive checkout);
   * transactions, streams and `reserve` check a connection out. Used instead
   * of `settings` and `acquire`.
   */
  readonly pool?: SharedPool<E> | undefined
}

/**
 * What `PgSql` needs of a pool; `@pgfx/pool`'s `ConnectionPool` is one.
 *
 * @since 0.1.0
 */
export type SharedPool<E = unknown> = Acquirers.SharedPool<E>

/**
 * What `layerConfig` reads through effect `Config`: a conninfo string or URL
 * in `url` and/or the settings one by one (which win over the URL's), plus
 * the client options.
 *
 * @since 0.1.0
 */
export interface ConfigOptions extends PgConfig.PgConfigInput, ClientOptions {
  /** A conninfo string or `postgresql://` URL; settings given one by one win over it. */
  readonly url?: string | Redacted.Redacted<string> | undefined
  /** PgBouncer in transaction mode is in front (`Connection.ConnectOptions.pgbouncer`); default `false`. */
  readonly pgbouncer?: boolean | undefined
}

/**
 * The statement compiler for PostgreSQL: `$1` placeholders, identifiers in
 * double quotes (embedded quotes doubled, dots splitting schema and name),
 * `updateValues` as `(values …) AS alias(columns)`, `sql.json` as a `jsonb`
 * parameter. `transform` renames identifiers (and JSON keys, unless
 * `transformJson` is `false`).
 *
 * @example
 * ```ts
 * const compiler = PgSql.makeCompiler(String.camelToSnake)
 * ```
 *
 * @since 0.1.0
 */
export const makeCompiler: (
  transform?: ((name: string) => string) | undefined,
  transformJson?: boolean
) => Statement.Compiler = Compiler.makeCompiler

// -----------------------------------------------------------------------------
// constructors
// -----------------------------------------------------------------------------

/**
 * Builds the client for the life of the scope. With `settings` (or neither
 * option) it opens the shared connection now and fails if it cannot; with
 * `acquire` connections are checked out per statement / transaction. Uses
 * the context's `Reactivity` when there is one.
 *
 * @example
 * ```ts
 * const rows = yield* Effect.scoped(Effect.gen(function*() {
 *   const sql = yield* PgSql.make({ settings: "postgresql://app@db/app" })
 *   return yield* sql`SELECT id, name FROM items WHERE id = ${42}`
 * }))
 * ```
 *
 * @since 0.1.0
 */
export const make = <E = never>(options: Options<E> = {}): Effect.Effect<PgSql, SqlError.SqlError, Scope.Scope> =>
  Effect.gen(function*() {
    const batchSize = options.streamBatchSize
    const acquirers = options.pool !== undefined
      ? Acquirers.poolAcquirers(options.pool, batchSize)
      : options.acquire !== undefined
      ? Acquirers.checkoutAcquirers(options.acquire, batchSize)
      : yield* Acquirers.sharedAcquirers(options.settings ?? "", options.connectOptions, batchSize)
    const transformJson = options.transformJson ?? true
    const compiler = makeCompiler(options.transformQueryNames, transformJson)
    const transformRows = options.transformResultNames === undefined
      ? undefined
      : Statement.defaultTransforms(options.transformResultNames, transformJson).array
    const spanAttributes: ReadonlyArray<readonly [string, unknown]> = [
      ...(options.spanAttributes === undefined ? [] : Object.entries(options.spanAttributes)),
      ["db.system.name", "postgresql"],
      ...acquirers.spanAttributes
    ]
    const reactivity = yield* Effect.serviceOption(Reactivity.Reactivity)
    const client = yield* SqlClient.make({
      acquirer: acquirers.acquirer,
      borrower: acquirers.borrower,
      transactionAcquirer: acquirers.acquirer,
      compiler,
      driver: "pgfx",
      spanAttributes,
      transformRows,
      // Without parameters these go through the simple protocol anyway.
      prepareTransactionControls: true,
      commit,
      isTransaction: inTransaction,
      releaseSavepoint: (name) => `RELEASE SAVEPOINT ${name}`
    }).pipe(
      Option.isSome(reactivity)
        ? Effect.provideService(Reactivity.Reactivity, reactivity.value)
        : Effect.provideServiceEffect(Reactivity.Reactivity, Reactivity.make)
    )
    const connection = Effect.flatMap(
      Effect.serviceOption(client.transactionService),
      Option.match({
        onNone: () => acquirers.acquirer,
        onSome: ([conn]) => Effect.succeed(conn)
      })
    ).pipe(Effect.map((conn) => (conn as PgSqlConnection).pg as Connection.Connection<unknown>))
    const extras = {
      [TypeId]: TypeId,
      json: Compiler.json,
      listen: (...channels: ReadonlyArray<string>) =>
        Stream.unwrap(Effect.map(acquirers.listener, (pg) => pg.listen(...channels))).pipe(
          Stream.mapError((error) => SqlError.isSqlError(error) ? error : PgError.toSqlError(error, "listen"))
        ),
      notify: (channel: string, payload: string) =>
        Effect.asVoid(client`SELECT pg_notify(${channel}, ${payload})`.withoutTransform),
      connection
    } as const
    return Object.assign(client, extras) as PgSql
  })

/**
 * Provides `PgSql` and `SqlClient` from an effect building the client
 * (`Reactivity` included).
 *
 * @example
 * ```ts
 * // the client over a pool provided by another layer
 * const SqlLive = PgSql.layerFrom(Effect.gen(function*() {
 *   const pool = yield* ConnectionPool.ConnectionPool // @pgfx/pool
 *   return yield* PgSql.make({ acquire: pool.connection })
 * }))
 * ```
 *
 * @since 0.1.0
 */
export const layerFrom = <E, R>(
  build: Effect.Effect<PgSql, E, R>
): Layer.Layer<PgSql | SqlClient.SqlClient, E, Exclude<R, Scope.Scope | Reactivity.Reactivity>> =>
  Layer.effectContext(
    Effect.map(build, (client) => Context.make(PgSql, client).pipe(Context.add(SqlClient.SqlClient, client)))
  ).pipe(Layer.provide(Reactivity.layer)) as Layer.Layer<
    PgSql | SqlClient.SqlClient,
    E,
    Exclude<R, Scope.Scope | Reactivity.Reactivity>
  >

const optionKeys: ReadonlySet<string> = new Set([
  "settings",
  "acquire",
  "pool",
  "connectOptions",
  "transformQueryNames",
  "transformResultNames",
  "transformJson",
  "spanAttributes",
  "streamBatchSize"
])

const isOptions = (input: unknown): input is Options<unknown> =>
  typeof input === "object" && input !== null && Object.keys(input).some((key) => optionKeys.has(key))

/**
 * A layer providing `PgSql` and `SqlClient`: from connection settings (one
 * shared connection) or from `Options` (`settings` or `acquire`, transforms).
 * With no argument the settings come from the `PG*` environment variables.
 *
 * @example
 * ```ts
 * PgSql.layer("postgresql://app@db/app")
 * PgSql.layer({ settings: "dbname=app", transformResultNames: String.snakeToCamel })
 * PgSql.layer({ acquire: pool.connection }) // a checkout per statement / transaction
 * ```
 *
 * @since 0.1.0
 */
export const layer = <E = never>(
  input: Connection.ConnectionSettings | Options<E> = ""
): Layer.Layer<PgSql | SqlClient.SqlClient, SqlError.SqlError> =>
  layerFrom(make(isOptions(input) ? input as Options<E> : { settings: input as Connection.ConnectionSettings }))

/**
 * A layer whose settings are read through effect `Config`. Settings given
 * one by one win over the URL's; the `PG*` environment variables fill in
 * the rest.
 *
 * @example
 * ```ts
 * PgSql.layerConfig({
 *   url: Config.Redacted("DATABASE_URL"),
 *   applicationName: Config.succeed("billing")
 * })
 * ```
 *
 * @since 0.1.0
 */
export const layerConfig = (
  config: Config.Wrap<ConfigOptions>
): Layer.Layer<PgSql | SqlClient.SqlClient, Config.ConfigError | SqlError.SqlError> =>
  layerFrom(Effect.flatMap(Config.unwrap(config), (options) => {
    const {
      spanAttributes,
      streamBatchSize,
      transformJson,
      transformQueryNames,
      transformResultNames,
      url,
      pgbouncer,
      ...input
    } = options
    const overrides = Object.fromEntries(
      Object.entries(input).filter(([, value]) => value !== undefined)
    ) as PgConfig.PgConfigInput
    const settings = url === undefined
      ? PgConfig.make(overrides)
      : PgConfig.make(Redacted.isRedacted(url) ? Redacted.value(url) : url, overrides)
    return Effect.flatMap(
      Effect.mapError(settings, (error) => acquireError(error, "connect")),
      (resolved) =>
        make({
          settings: resolved,
          connectOptions: pgbouncer === undefined ? undefined : { pgbouncer },
          spanAttributes,
          streamBatchSize,
          transformJson,
          transformQueryNames,
          transformResultNames
        })
    )
  }))

// -----------------------------------------------------------------------------
// migrations
// -----------------------------------------------------------------------------

/**
 * Runs the pending migrations with the current `SqlClient` (`@effect/sql-pg`'s
 * `PgMigrator.run`): in one transaction, under `LOCK TABLE` of the
 * migrations table (default `effect_sql_migrations`), each recorded with its
 * id and name. Returns the migrations it ran. `schemaDirectory` is accepted
 * but no schema is dumped (no `pg_dump`).
 *
 * @example
 * ```ts
 * const ran = yield* PgSql.migrate({
 *   loader: PgSql.fromRecord({
 *     "1_create_users": Effect.flatMap(SqlClient.SqlClient, (sql) => sql`CREATE TABLE users (id serial PRIMARY KEY)`)
 *   })
 * }) // [[1, "create_users"]] the first time, [] afterwards
 * ```
 *
 * @since 0.1.0
 */
export const migrate: <R = never>(
  options: Migrator.MigratorOptions<R>
) => Effect.Effect<
  ReadonlyArray<readonly [id: number, name: string]>,
  Migrator.MigrationError | SqlError.SqlError,
  SqlClient.SqlClient | R
> = Migrator.make({})

/**
 * A layer that runs the migrations when built (`PgMigrator.layer`).
 *
 * @example
 * ```ts
 * const MigratedSql = PgSql.layerMigrator({ loader: PgSql.fromFileSystem("./migrations") }).pipe(
 *   Layer.provideMerge(PgSql.layer("postgresql://app@db/app")),
 *   Layer.provide(NodeServices.layer) // FileSystem and Path for fromFileSystem
 * )
 * ```
 *
 * @since 0.1.0
 */
export const layerMigrator = <R = never>(
  options: Migrator.MigratorOptions<R>
): Layer.Layer<never, Migrator.MigrationError | SqlError.SqlError, SqlClient.SqlClient | R> =>
  Layer.effectDiscard(migrate(options))

/**
 * Migrations from a record of effects keyed `<id>_<name>`.
 *
 * @example
 * ```ts
 * PgSql.fromRecord({
 *   "1_users": Effect.flatMap(SqlClient.SqlClient, (sql) => sql`CREATE TABLE users (id serial PRIMARY KEY)`),
 *   "2_email": Effect.flatMap(SqlClient.SqlClient, (sql) => sql`ALTER TABLE users ADD email text`)
 * })
 * ```
 *
 * @since 0.1.0
 */
export const fromRecord: typeof Migrator.fromRecord = Migrator.fromRecord

/**
 * Migrations from the files `<id>_<name>.{js,ts,mjs,mts}` of a directory,
 * each default-exporting an effect (needs `FileSystem` and `Path`).
 *
 * @since 0.1.0
 */
export const fromFileSystem: typeof MigratorFileSystem.fromFileSystem = MigratorFileSystem.fromFileSystem

/**
 * Migrations from a bundler glob (`import.meta.glob`) of `<id>_<name>` modules.
 *
 * @since 0.1.0
 */
export const fromGlob: typeof Migrator.fromGlob = Migrator.fromGlob

/**
 * Migrations from a Babel-style glob record.
 *
 * @since 0.1.0
 */
export const fromBabelGlob: typeof Migrator.fromBabelGlob = Migrator.fromBabelGlob

/**
 * The error of a migration run.
 *
 * @since 0.1.0
 */
export const MigrationError: typeof Migrator.MigrationError = Migrator.MigrationError

/**
 * The error of a migration run.
 *
 * @since 0.1.0
 */
export type MigrationError = Migrator.MigrationError
