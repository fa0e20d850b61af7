/**
 * A pgfx connection as effect's `SqlConnection` (what `SqlClient` runs
 * statements, streams and transactions on), and the failures of building
 * or acquiring one as `SqlError`s.
 */
import * as Effect from "effect/Effect"
import type * as SqlConnection from "effect/sql/SqlConnection"
import * as SqlError from "effect/sql/SqlError"
import * as Stream from "effect/Stream"
import type * as Connection from "../../Connection.ts"
import * as PgError from "../../PgError.ts"
import * as RowFactory from "../../RowFactory.ts"
import type * as Session from "../../Session.ts"

export type TransformRows = (<A extends object>(rows: ReadonlyArray<A>) => ReadonlyArray<A>) | undefined

/** Parameterless statements go through the simple protocol, so scripts work. */
const bindValues = (params: ReadonlyArray<unknown>): ReadonlyArray<unknown> | undefined =>
  params.length === 0 ? undefined : params

/** One statement: its rows; a script: one array of rows per statement (as node-postgres does). */
const rowsOf = <A>(result: Connection.QueryResult<A>, transform: TransformRows): ReadonlyArray<any> => {
  if (result.results.length > 1) {
    return result.results.map((each) => transform ? transform(each.rows as ReadonlyArray<any>) : each.rows)
  }
  return transform ? transform(result.rows as ReadonlyArray<any>) : result.rows
}

/**
 * A pgfx connection as effect's `SqlConnection`. With a `hold` (the shared
 * connection leased to a transaction, stream or `reserve`) statements run as
 * the holder, so fibers the transaction forks use it too.
 */
export class PgSqlConnection implements SqlConnection.Connection {
  constructor(
    readonly pg: Connection.Connection<unknown>,
    readonly batchSize: number | undefined,
    readonly hold?: Session.SessionHold
  ) {}

  private run<A>(
    sql: string,
    params: ReadonlyArray<unknown>,
    rowFactory: RowFactory.RowFactory<A>,
    prepare: boolean | undefined,
    operation: string
  ): Effect.Effect<Connection.QueryResult<A>, SqlError.SqlError> {
    const statement = Effect.mapError(
      this.pg.execute(sql, bindValues(params), { rowFactory, prepare }),
      (error) => PgError.toSqlError(error, operation)
    )
    return this.hold === undefined ? statement : this.hold.run(statement)
  }

  execute(sql: string, params: ReadonlyArray<unknown>, transformRows: TransformRows) {
    return Effect.map(this.run(sql, params, RowFactory.record, undefined, "execute"), (result) =>
      rowsOf(result, transformRows))
  }

  executeUnprepared(sql: string, params: ReadonlyArray<unknown>, transformRows: TransformRows) {
    return Effect.map(this.run(sql, params, RowFactory.record, false, "executeUnprepared"), (result) =>
      rowsOf(result, transformRows))
  }

  executeRaw(sql: string, params: ReadonlyArray<unknown>) {
    return this.run(sql, params, RowFactory.record, undefined, "executeRaw")
  }

  executeValues(sql: string, params: ReadonlyArray<unknown>) {
    return Effect.map(
      this.run(sql, params, RowFactory.tuple, undefined, "executeValues"),
      (result) => rowsOf(result, undefined) as ReadonlyArray<ReadonlyArray<unknown>>
    )
  }

  executeValuesUnprepared(sql: string, params: ReadonlyArray<unknown>) {
    return Effect.map(
      this.run(sql, params, RowFactory.tuple, false, "executeValuesUnprepared"),
      (result) => rowsOf(result, undefined) as ReadonlyArray<ReadonlyArray<unknown>>
    )
  }

  executeStream(sql: string, params: ReadonlyArray<unknown>, transformRows: TransformRows) {
    const stream = this.pg.stream(sql, params, { rowFactory: RowFactory.record, batchSize: this.batchSize })
    const rows = (this.hold === undefined ? stream : this.hold.runStream(stream)).pipe(
      Stream.mapError((error) => PgError.toSqlError(error, "executeStream"))
    )
    return transformRows === undefined
      ? rows
      : Stream.mapArray(rows, (chunk) => transformRows(chunk) as typeof chunk)
  }
}

/** Whether the session is inside a transaction block (so ROLLBACK / savepoint cleanup is needed). */
export const inTransaction = (conn: SqlConnection.Connection): boolean => {
  const status = (conn as PgSqlConnection).pg.info.transactionStatus
  return status === "INTRANS" || status === "INERROR" || status === "ACTIVE"
}

/** PostgreSQL answers COMMIT of an aborted transaction with `ROLLBACK`: that is a failure. */
export const commit = (conn: SqlConnection.Connection): Effect.Effect<void, SqlError.SqlError> =>
  Effect.flatMap(
    conn.executeRaw("COMMIT", []) as Effect.Effect<Connection.QueryResult<unknown>, SqlError.SqlError>,
    (result) =>
      result.command === "ROLLBACK"
        ? Effect.fail(
          new SqlError.SqlError({
            reason: new SqlError.UnknownError({
              cause: new Error("COMMIT rolled back an aborted transaction"),
              message: "COMMIT rolled back an aborted transaction (a statement of it failed)",
              operation: "commit"
            })
          })
        )
        : Effect.void
  )

/** Any failure of building or acquiring a connection, as a `SqlError`. */
export const acquireError = (error: unknown, operation: string): SqlError.SqlError => {
  if (SqlError.isSqlError(error)) return error
  if (PgError.isPgError(error)) return PgError.toSqlError(error, operation)
  const message = typeof error === "object" && error !== null && "message" in error &&
      typeof (error as { message: unknown }).message === "string"
    ? (error as { message: string }).message
    : String(error)
  return new SqlError.SqlError({
    reason: new SqlError.ConnectionError({ cause: error, message, operation })
  })
}
