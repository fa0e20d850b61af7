/**
 * @pgfx/core: PostgreSQL connections for Effect, after psycopg 3.
 *
 * @since 0.1.0
 * @module @pgfx/core
 */

/** Connection settings: conninfo strings, URLs, objects and `PG*` variables. @since 0.1.0 */
export * as PgConfig from "./PgConfig.ts"

/** Typed errors: server errors by SQLSTATE, connection, protocol and parameter errors. @since 0.1.0 */
export * as PgError from "./PgError.ts"

/** A connection as a scoped resource: connect, execute, cancel, close. @since 0.1.0 */
export * as Connection from "./Connection.ts"

/** How host names become addresses at connect time (overridable; no cache). @since 0.1.0 */
export * as HostResolver from "./HostResolver.ts"

/** Client and server-side cursors. @since 0.1.0 */
export * as Cursor from "./Cursor.ts"

/** Transaction blocks, savepoints, the rollback signal and retries. @since 0.1.0 */
export * as Transaction from "./Transaction.ts"

/** Row shapes: tuple, record (dict_row), schema-decoded, custom. @since 0.1.0 */
export * as RowFactory from "./RowFactory.ts"

/** The low-level session API for protocol extensions (COPY, pools). @since 0.1.0 */
export * as Session from "./Session.ts"

/** Explicitly typed parameters and the JS ↔ PostgreSQL type mapping. @since 0.1.0 */
export * as PgValue from "./PgValue.ts"

/** effect's SqlClient on pgfx: the sql template, withTransaction, SqlSchema, SqlResolver, Migrator. @since 0.1.0 */
export * as PgSql from "./PgSql.ts"
