/**
 * Row factories: the shape rows come back in (psycopg's `row_factory`).
 *
 * - `tuple`: arrays in column order (psycopg's default);
 * - `record`: objects keyed by column name (psycopg's `dict_row`);
 * - `schema(S)`: records decoded with an Effect `Schema`; a row that does not
 *   match fails with a `DecodeError` naming the column;
 * - `make(f)`: your own.
 *
 * A factory is selectable per connection (`connect(…, { rowFactory })`), per
 * cursor and per `execute`.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"
import * as SchemaIssue from "effect/SchemaIssue"
import type { Field } from "./internal/field.ts"
import { DecodeError } from "./PgError.ts"

/**
 * Builds, once per result, the function that turns a row's decoded values
 * into `R`. The function may throw a `DecodeError`.
 *
 * @since 0.1.0
 */
export interface RowFactory<out R> {
  /** Identifies a row factory. */
  readonly _tag: "RowFactory"
  /** Called once per result with its columns; returns the function that builds each row. */
  readonly make: (fields: ReadonlyArray<Field>) => (values: ReadonlyArray<unknown>) => R
}

/**
 * A row as an array of column values.
 *
 * @since 0.1.0
 */
export type Tuple = ReadonlyArray<unknown>

/**
 * A row as an object keyed by column name.
 *
 * @since 0.1.0
 */
export type Record = { readonly [column: string]: unknown }

/**
 * A custom factory (psycopg's `args_row` / `kwargs_row` / `class_row` and
 * friends are one-liners with it).
 *
 * @example
 * ```ts
 * // psycopg's scalar_row: the first column only
 * const scalar = RowFactory.make(() => (values) => values[0])
 * const count = yield* conn.execute("SELECT count(*) FROM test", [], { rowFactory: scalar })
 * count.rows[0] // 1n (count(*) is an int8)
 * ```
 *
 * @since 0.1.0
 */
export const make = <R>(make: (fields: ReadonlyArray<Field>) => (values: ReadonlyArray<unknown>) => R): RowFactory<R> => ({
  _tag: "RowFactory",
  make
})

const identity = (values: ReadonlyArray<unknown>): Tuple => values

/**
 * Rows as arrays in column order (the default).
 *
 * @example
 * ```ts
 * const result = yield* conn.execute("SELECT 1 AS a, 'x' AS b", [], { rowFactory: RowFactory.tuple })
 * result.rows // [[1, "x"]]
 * ```
 *
 * @since 0.1.0
 */
export const tuple: RowFactory<Tuple> = make(() => identity)

/**
 * Rows as objects keyed by column name; a later column with the same name
 * wins, as in psycopg's `dict_row`.
 *
 * @example
 * ```ts
 * // psycopg: conn.cursor(row_factory=dict_row)
 * const result = yield* conn.execute("SELECT 1 AS a, 'x' AS b", [], { rowFactory: RowFactory.record })
 * result.rows // [{ a: 1, b: "x" }]
 * ```
 *
 * @since 0.1.0
 */
export const record: RowFactory<Record> = make((fields) => {
  const names = fields.map((field) => field.name)
  return (values) => {
    const row: { [column: string]: unknown } = {}
    for (let index = 0; index < names.length; index++) row[names[index]] = values[index]
    return row
  }
})

/**
 * Rows decoded with a Schema from their record form. A mismatch fails the
 * statement with a `DecodeError` naming the column.
 *
 * @example
 * ```ts
 * const User = Schema.Struct({ id: Schema.Number, email: Schema.String })
 * const users = yield* conn.execute("SELECT id, email FROM users", [], { rowFactory: RowFactory.schema(User) })
 * users.rows // ReadonlyArray<{ readonly id: number; readonly email: string }>
 * ```
 *
 * @since 0.1.0
 */
export const schema = <S extends Schema.Top & { readonly DecodingServices: never }>(
  schema: S
): RowFactory<S["Type"]> => {
  const decode = Schema.decodeUnknownExit(schema)
  return make((fields) => {
    const toRecord = record.make(fields)
    return (values) => {
      const exit = decode(toRecord(values))
      if (exit._tag === "Success") return exit.value
      const issue = Schema.isSchemaError(exit.cause) ? undefined : findIssue(exit.cause)
      const column = issue?.path[0]
      const index = typeof column === "string" ? fields.findIndex((field) => field.name === column) : -1
      throw new DecodeError({
        message: `row does not match the schema${typeof column === "string" ? ` at column "${column}"` : ""}: ${
          issue?.message ?? String(exit.cause)
        }`,
        column: index,
        typeOid: index >= 0 ? fields[index].typeOid : 0,
        cause: exit.cause
      })
    }
  })
}

const findIssue = (cause: unknown): { readonly path: ReadonlyArray<PropertyKey>; readonly message: string } | undefined => {
  const error = (cause as { readonly reasons?: ReadonlyArray<{ readonly error?: unknown }> }).reasons
    ?.map((reason) => reason.error).find(Schema.isSchemaError)
  if (error === undefined) return undefined
  const leaf = firstLeaf(error.issue, [])
  return { path: leaf.path, message: error.message }
}

const firstLeaf = (
  issue: SchemaIssue.Issue,
  path: ReadonlyArray<PropertyKey>
): { readonly path: ReadonlyArray<PropertyKey> } => {
  switch (issue._tag) {
    case "Pointer":
      return firstLeaf(issue.issue, [...path, ...issue.path])
    case "Composite":
    case "AnyOf":
      return issue.issues.length > 0 ? firstLeaf(issue.issues[0], path) : { path }
    default:
      return { path }
  }
}
