/**
 * Reading a test's tables back for assertions: `PgTest.rows`, `query` and
 * `count` on the test's connection, decoded with an Effect `Schema`.
 */
import { Connection, type PgError, RowFactory } from "@pgfx/core"
import * as Effect from "effect/Effect"
import type * as Schema from "effect/Schema"
import { columnList, quoteIdent, quoteTable } from "./sqlText.ts"

/**
 * A schema whose decoded rows `rows` and `query` return (no decoding services).
 *
 * @since 0.1.0
 */
export type RowSchema = Schema.Top & { readonly DecodingServices: never }

/**
 * Options of {@link rows}.
 *
 * @since 0.1.0
 */
export interface RowsOptions {
  /** Columns to order by (default: the primary key, when the table has one). */
  readonly orderBy?: string | ReadonlyArray<string> | undefined
  /** A condition (SQL), with `$1`, `$2`, … bound to `params`. */
  readonly where?: string | undefined
  /** The values of `where`'s `$1`, `$2`, … */
  readonly params?: ReadonlyArray<unknown> | undefined
}

const primaryKey = (connection: Connection.Connection, table: string): Effect.Effect<ReadonlyArray<string>, PgError.PgError> =>
  Effect.map(
    connection.execute(
      `SELECT a.attname FROM pg_index i
         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
        WHERE i.indrelid = $1::regclass AND i.indisprimary
        ORDER BY array_position(i.indkey::int2[], a.attnum)`,
      [quoteTable(table)]
    ),
    (result) => result.rows.map((row) => String(row[0]))
  )

/**
 * The rows of a table in the current test's database (inside its transaction in `"transaction"`
 * mode), decoded with `schema`. With a `Schema.Struct`, only its fields are selected.
 *
 * @example
 * ```ts
 * const User = Schema.Struct({ id: Schema.Number, name: Schema.String })
 * const users = yield* PgTest.rows("users", User, { where: "name LIKE $1", params: ["A%"], orderBy: "name" })
 * assert.deepStrictEqual(users, [{ id: 1, name: "Ada" }])
 * ```
 *
 * @since 0.1.0
 */
export const rows = <S extends RowSchema>(
  table: string,
  schema: S,
  options?: RowsOptions
): Effect.Effect<ReadonlyArray<S["Type"]>, PgError.PgError, Connection.PgConnection> =>
  Effect.gen(function*() {
    const connection = yield* Connection.PgConnection
    const fields = (schema as { readonly fields?: unknown }).fields
    const columns = typeof fields === "object" && fields !== null ? Object.keys(fields) : undefined
    const order = options?.orderBy === undefined
      ? yield* primaryKey(connection, table)
      : typeof options.orderBy === "string"
      ? [options.orderBy]
      : options.orderBy
    const sql = `SELECT ${columns === undefined ? "*" : columnList(columns).slice(1, -1)} FROM ${quoteTable(table)}` +
      (options?.where === undefined ? "" : ` WHERE ${options.where}`) +
      (order.length === 0 ? "" : ` ORDER BY ${order.map(quoteIdent).join(", ")}`)
    const result = yield* connection.execute(sql, options?.params, { rowFactory: RowFactory.schema(schema) })
    return result.rows
  })

/**
 * The result rows of a query in the current test's database, decoded with `schema`.
 *
 * @example
 * ```ts
 * const totals = yield* PgTest.query(
 *   "SELECT user_id, sum(total)::text AS total FROM orders GROUP BY user_id ORDER BY user_id",
 *   [],
 *   Schema.Struct({ user_id: Schema.Number, total: Schema.String })
 * )
 * ```
 *
 * @since 0.1.0
 */
export const query = <S extends RowSchema>(
  sql: string,
  params: ReadonlyArray<unknown> | undefined,
  schema: S
): Effect.Effect<ReadonlyArray<S["Type"]>, PgError.PgError, Connection.PgConnection> =>
  Effect.flatMap(Connection.PgConnection, (connection) =>
    Effect.map(connection.execute(sql, params, { rowFactory: RowFactory.schema(schema) }), (result) => result.rows))

/**
 * The number of rows of a table (optionally `where` a condition) in the current test's
 * database.
 *
 * @example
 * ```ts
 * assert.strictEqual(yield* PgTest.count("orders", { where: "user_id = $1", params: [1] }), 2)
 * ```
 *
 * @since 0.1.0
 */
export const count = (
  table: string,
  options?: Pick<RowsOptions, "where" | "params">
): Effect.Effect<number, PgError.PgError, Connection.PgConnection> =>
  Effect.flatMap(Connection.PgConnection, (connection) =>
    Effect.map(
      connection.execute(
        `SELECT count(*)::int8 FROM ${quoteTable(table)}${options?.where === undefined ? "" : ` WHERE ${options.where}`}`,
        options?.params
      ),
      (result) => Number(result.rows[0][0])
    ))
