/**
 * Fixtures: data loaded into a database — rows from arrays, CSV text or files, or a SQL script.
 * Rows and CSV go in through COPY (`@pgfx/copy`), so thousands of rows cost one round trip.
 *
 * Give fixtures to `PgTest.layer({ fixtures })` to load them once into the template database
 * every test database is cloned from, or load them into the current test's database with
 * {@link load}.
 *
 * ```ts
 * import { Fixture, PgTest } from "@pgfx/testing"
 *
 * PgTest.layer({
 *   migrations: PgTest.sqlMigrations("./migrations"),
 *   fixtures: [
 *     Fixture.rows("customers", [{ id: 1, name: "Ada" }, { id: 2, name: "Linus" }]),
 *     Fixture.csv("products", { path: "./fixtures/products.csv" }) // header line = column names
 *   ]
 * })
 * ```
 *
 * @since 0.1.0
 */
import * as fs from "node:fs/promises"
import { Copy } from "@pgfx/copy"
import { Connection, type PgError } from "@pgfx/core"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { columnList, digest, quoteTable, stableJson } from "./internal/sqlText.ts"

/**
 * Data to load into a database.
 *
 * @since 0.1.0
 */
export interface Fixture {
  /** Identifies a fixture. */
  readonly _tag: "Fixture"
  /** For humans and error messages, e.g. `rows into customers (2)`. */
  readonly description: string
  /** A digest of the data: equal fixtures share a template database. */
  readonly fingerprint: Effect.Effect<string, FixtureError>
  /** Loads the data through `connection`; succeeds with the number of rows loaded (0 for scripts). */
  readonly load: (connection: Connection.Connection<unknown>) => Effect.Effect<number, FixtureError>
}

/**
 * A fixture that could not be read or loaded (`cause`: the COPY or server error).
 *
 * @since 0.1.0
 */
export class FixtureError extends Data.TaggedError("FixtureError")<{
  /** The fixture and what went wrong. */
  readonly message: string
  /** The fixture's description. */
  readonly fixture: string
  /** The COPY, file or server error. */
  readonly cause?: unknown
}> {}

/**
 * Options of {@link rows}.
 *
 * @since 0.1.0
 */
export interface RowsOptions<Row> {
  /** The columns to fill, in this order (default: every key of the rows, in order of appearance). */
  readonly columns?: ReadonlyArray<Extract<keyof Row, string>> | undefined
  /**
   * Column types, one per column (`Copy`'s type names: `"int4"`, `"jsonb"`, `"timestamptz"`, …).
   * Without them each value is written after its JavaScript type.
   */
  readonly types?: ReadonlyArray<Copy.TypeSpec> | undefined
}

/**
 * Options of {@link csv}.
 *
 * @since 0.1.0
 */
export interface CsvOptions {
  /**
   * The columns the CSV fields fill. Default: the header line's names (with `header`), else every
   * column of the table in order.
   */
  readonly columns?: ReadonlyArray<string> | undefined
  /** Whether the first line is a header (default `true`). */
  readonly header?: boolean | undefined
  /** Field separator (default `,`). */
  readonly delimiter?: string | undefined
  /** The text of NULL (default: the empty unquoted field). */
  readonly null?: string | undefined
  /** Quote character (default `"`). */
  readonly quote?: string | undefined
  /** Escape character inside quotes (default: the quote, doubled). */
  readonly escape?: string | undefined
}

const fail = (fixture: string, message: string) => (cause: unknown) =>
  new FixtureError({
    fixture,
    message: `${fixture}: ${message}${
      typeof cause === "object" && cause !== null && "message" in cause ? `: ${String((cause as { message: unknown }).message)}` : ""
    }`,
    cause
  })

const make = (
  description: string,
  fingerprint: Effect.Effect<string, FixtureError>,
  load: (connection: Connection.Connection<unknown>) => Effect.Effect<number, FixtureError>
): Fixture => ({ _tag: "Fixture", description, fingerprint, load })

/**
 * Rows given as objects keyed by column name, loaded with `COPY … FROM STDIN`. `undefined` and
 * `null` are NULL; Dates, bigints, bytes, arrays and plain objects (JSON) are written as `Copy`
 * writes them.
 *
 * @example
 * ```ts
 * Fixture.rows("users", [
 *   { id: 1, name: "Ada", tags: ["x"], meta: { vip: true } },
 *   { id: 2, name: "Grace", tags: [], meta: null }
 * ])
 * ```
 *
 * @since 0.1.0
 */
export const rows = <Row extends object>(
  table: string,
  rows: ReadonlyArray<Row>,
  options?: RowsOptions<Row>
): Fixture => {
  const columns: ReadonlyArray<string> = options?.columns ?? [...new Set(rows.flatMap((row) => Object.keys(row)))]
  const values = rows.map((row) => columns.map((column) => (row as Readonly<Record<string, unknown>>)[column] ?? null))
  return tuples(table, columns, values, options?.types === undefined ? undefined : { types: options.types }, `rows into ${table}`)
}

/**
 * Rows given as arrays in the order of `columns`, loaded with `COPY … FROM STDIN`.
 *
 * @example
 * ```ts
 * Fixture.tuples("orders", ["user_id", "total"], [[1, "12.50"], [2, "7.00"]], { types: ["int4", "numeric"] })
 * ```
 *
 * @since 0.1.0
 */
export const tuples = (
  table: string,
  columns: ReadonlyArray<string>,
  rows: ReadonlyArray<ReadonlyArray<unknown>>,
  options?: { readonly types?: ReadonlyArray<Copy.TypeSpec> | undefined },
  label = `tuples into ${table}`
): Fixture => {
  const description = `${label} (${rows.length})`
  const types = options?.types
  return make(
    description,
    Effect.sync(() => digest("rows", table, stableJson(columns), stableJson(types ?? null), stableJson(rows))),
    (connection) => {
      if (rows.length === 0) return Effect.succeed(0)
      if (columns.length === 0) {
        return Effect.fail(new FixtureError({ fixture: description, message: `${description}: no columns` }))
      }
      const statement = `COPY ${quoteTable(table)} ${columnList(columns)} FROM STDIN`
      const stream = Stream.fromIterable(rows.map((row) => row.map((value) => value ?? null)))
      const copied = types === undefined
        ? Copy.fromStream(connection, statement, stream, { format: "text" })
        : Copy.fromStream(connection, statement, stream, { format: "text", types })
      return Effect.mapError(copied, fail(description, "cannot load"))
    }
  )
}

/** The fields of a CSV header line (quotes removed). */
const headerFields = (line: string, delimiter: string, quote: string): ReadonlyArray<string> => {
  const fields: Array<string> = []
  let field = ""
  let quoted = false
  for (let i = 0; i < line.length; i++) {
    const char = line[i]
    if (quoted) {
      if (char === quote && line[i + 1] === quote) {
        field += quote
        i++
      } else if (char === quote) quoted = false
      else field += char
    } else if (char === quote) quoted = true
    else if (char === delimiter) {
      fields.push(field)
      field = ""
    } else field += char
  }
  fields.push(field)
  return fields.map((name) => name.trim())
}

/**
 * CSV data — a string, or `{ path }` of a file — loaded with `COPY … FROM STDIN (FORMAT csv)`.
 * With a header line (the default) and no `columns`, the header names the columns.
 *
 * @example
 * ```ts
 * Fixture.csv("products", { path: "./fixtures/products.csv" })  // header line = columns
 * Fixture.csv("prices", "sku;price\nA;1.5\n", { delimiter: ";" })
 * ```
 *
 * @since 0.1.0
 */
export const csv = (table: string, source: string | { readonly path: string }, options?: CsvOptions): Fixture => {
  const description = typeof source === "string" ? `CSV into ${table}` : `CSV ${source.path} into ${table}`
  const text: Effect.Effect<string, FixtureError> = typeof source === "string"
    ? Effect.succeed(source)
    : Effect.tryPromise({ try: () => fs.readFile(source.path, "utf8"), catch: fail(description, "cannot read the file") })
  const header = options?.header ?? true
  const delimiter = options?.delimiter ?? ","
  return make(
    description,
    Effect.map(text, (data) => digest("csv", table, stableJson(options ?? null), data)),
    (connection) =>
      Effect.flatMap(text, (data) => {
        const firstLine = data.slice(0, data.search(/\r?\n|$/))
        const columns = options?.columns ?? (header ? headerFields(firstLine, delimiter, options?.quote ?? "\"") : undefined)
        const statement = `COPY ${quoteTable(table)}${columns === undefined ? "" : ` ${columnList(columns)}`} FROM STDIN`
        return Effect.mapError(
          Copy.fromBytes(connection, statement, Stream.make(data), {
            format: "csv",
            header,
            delimiter,
            null: options?.null,
            quote: options?.quote,
            escape: options?.escape
          }),
          fail(description, "cannot load")
        )
      })
  )
}

/**
 * A SQL script (several statements allowed), run as written.
 *
 * @example
 * ```ts
 * Fixture.sql("REFRESH MATERIALIZED VIEW stats; ANALYZE")
 * ```
 *
 * @since 0.1.0
 */
export const sql = (script: string): Fixture => {
  const description = `SQL script (${script.trim().split(/\s+/).slice(0, 4).join(" ")}…)`
  return make(
    description,
    Effect.succeed(digest("sql", script)),
    (connection) =>
      connection.execute(script).pipe(
        Effect.as(0),
        Effect.mapError((error: PgError.PgError) => fail(description, "failed")(error))
      )
  )
}

/**
 * Loads fixtures, in order, into the database of the current `PgConnection` (in a test: the
 * test's database, or its transaction). Succeeds with the rows loaded.
 *
 * @example
 * ```ts
 * it.effect("totals", () =>
 *   Effect.gen(function*() {
 *     yield* Fixture.load(Fixture.rows("orders", [{ user_id: 1, total: "12.50" }])) // 1
 *   }).pipe(PgTest.isolate))
 * ```
 *
 * @since 0.1.0
 */
export const load = (...fixtures: ReadonlyArray<Fixture>): Effect.Effect<number, FixtureError, Connection.PgConnection> =>
  Effect.flatMap(Connection.PgConnection, (connection) =>
    Effect.reduce(fixtures, () => 0, (total, fixture) => Effect.map(fixture.load(connection), (count) => total + count)))
