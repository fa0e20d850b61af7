/**
 * Cursors, after psycopg.
 *
 * - `Cursor` (client cursor): `execute` reads the whole result, then
 *   `fetchOne` / `fetchMany` / `fetchAll` / iteration walk it; `stream` reads
 *   a large result with bounded memory instead.
 * - `ServerCursor` (named cursor): `DECLARE … CURSOR` on the server, rows
 *   fetched `itersize` at a time; closed when its scope closes, on every exit
 *   path. It holds the connection for its whole life.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { Executor } from "./internal/executor.ts"
import type { Field } from "./internal/field.ts"
import type { QueryResult, StreamOptions } from "./internal/results.ts"
import { refusal as pgbouncerRefusal } from "./internal/pgbouncer.ts"
import { InterfaceError, type PgError } from "./PgError.ts"
import * as RowFactory from "./RowFactory.ts"

/**
 * A result column, as `cursor.description` lists it (psycopg's `Column`).
 *
 * @since 0.1.0
 */
export interface Column {
  /** The column's name (`?column?` for an unnamed expression). */
  readonly name: string
  /** OID of the column's type (psycopg's `type_code`), e.g. 23 for int4. */
  readonly typeOid: number
  /** The type modifier (`atttypmod`): length, precision and scale; -1 when none. */
  readonly typeModifier: number
  /** Bytes per value, negative for variable-length types. */
  readonly internalSize: number
  /** `false` for a table column declared NOT NULL (after `describe`); `undefined` when not known. */
  readonly nullable: boolean | undefined
}

const toColumn = (field: Field): Column => ({
  name: field.name,
  typeOid: field.typeOid,
  typeModifier: field.typeModifier,
  internalSize: field.typeSize,
  nullable: undefined
})

/**
 * How a cursor scrolls: by an offset from the current position, or to an
 * absolute position.
 *
 * @since 0.1.0
 */
export type ScrollMode = "relative" | "absolute"

/**
 * A client cursor over one connection (psycopg's `Cursor`): `execute` reads
 * the whole result; the fetch methods and iteration walk it.
 *
 * @example
 * ```ts
 * const cur = conn.cursor()
 * yield* cur.execute("SELECT * FROM test WHERE num > $1", [10])
 * const first = yield* cur.fetchOne     // [1, 100, "abc'def"] or undefined
 * const next = yield* cur.fetchMany(10) // up to 10 more rows
 * for (const row of cur) console.log(row) // the rest
 * ```
 *
 * @since 0.1.0
 */
export interface Cursor<R> {
  /** Runs a statement and keeps its result for fetching; returns the cursor. */
  readonly execute: (
    sql: string,
    params?: ReadonlyArray<unknown>,
    options?: { readonly prepare?: boolean | undefined }
  ) => Effect.Effect<Cursor<R>, PgError>
  /**
   * Runs a statement once per parameter list, pipelined in one round trip
   * (one implicit transaction: all or nothing outside a transaction block).
   * With `returning`, the results are kept as consecutive sets (`nextSet`).
   */
  readonly executeMany: (
    sql: string,
    paramsList: ReadonlyArray<ReadonlyArray<unknown>>,
    options?: { readonly returning?: boolean | undefined }
  ) => Effect.Effect<Cursor<R>, PgError>
  /** The next row of the current result, `undefined` past the end. */
  readonly fetchOne: Effect.Effect<R | undefined>
  /** The next `size` rows (default `arraySize`). */
  readonly fetchMany: (size?: number) => Effect.Effect<ReadonlyArray<R>>
  /** Every remaining row of the current result. */
  readonly fetchAll: Effect.Effect<ReadonlyArray<R>>
  /** Moves to the next result set; `false` when there is none. */
  readonly nextSet: Effect.Effect<boolean>
  /**
   * Moves the position by `value` rows (`relative`, the default) or to row
   * `value` (`absolute`); an `InterfaceError` outside the result, and the
   * position does not change.
   */
  readonly scroll: (value: number, mode?: ScrollMode) => Effect.Effect<void, InterfaceError>
  /** Streams a statement's rows with bounded memory (a portal, `batchSize` rows per round trip). */
  readonly stream: (
    sql: string,
    params?: ReadonlyArray<unknown>,
    options?: Omit<StreamOptions<R>, "rowFactory">
  ) => Stream.Stream<R, PgError>
  /** Fills `nullable` in `description` from the catalog for table columns. */
  readonly describe: Effect.Effect<ReadonlyArray<Column> | undefined, PgError>
  /** Rows of the current result (affected, for INSERT/UPDATE/DELETE); -1 when unknown. */
  readonly rowCount: number
  /** Index of the next row to fetch, `undefined` without a result. */
  readonly rowNumber: number | undefined
  /** The columns of the current result; `undefined` for commands that return no rows. */
  readonly description: ReadonlyArray<Column> | undefined
  /** The command tag of the last result, e.g. `INSERT 0 1`. */
  readonly statusMessage: string | undefined
  /** Default size of `fetchMany`. */
  arraySize: number
  /** Iterates the rows not fetched yet of the current result. */
  readonly [Symbol.iterator]: () => Iterator<R>
}

class CursorImpl<R> implements Cursor<R> {
  private sets: ReadonlyArray<QueryResult<R>> = []
  private set = 0
  private position = 0
  private columns: ReadonlyArray<Column> | undefined
  arraySize = 1

  constructor(private readonly conn: Executor<unknown>, private readonly rowFactory: RowFactory.RowFactory<R>) {}

  private get current(): QueryResult<R> | undefined {
    return this.sets[this.set]
  }

  private load(sets: ReadonlyArray<QueryResult<R>>): void {
    this.sets = sets
    this.set = 0
    this.position = 0
    this.columns = undefined
  }

  execute(
    sql: string,
    params?: ReadonlyArray<unknown>,
    options?: { readonly prepare?: boolean | undefined }
  ): Effect.Effect<Cursor<R>, PgError> {
    return Effect.map(
      this.conn.execute(sql, params, { prepare: options?.prepare, rowFactory: this.rowFactory }),
      (result) => {
        this.load(result.results.length > 0 ? result.results : [result])
        return this
      }
    )
  }

  executeMany(
    sql: string,
    paramsList: ReadonlyArray<ReadonlyArray<unknown>>,
    options?: { readonly returning?: boolean | undefined }
  ): Effect.Effect<Cursor<R>, PgError> {
    return Effect.map(this.conn.executeMany(sql, paramsList, { rowFactory: this.rowFactory }), (results) => {
      if (options?.returning === true) {
        this.load(results)
      } else {
        const rowCount = results.reduce((total, result) => total + (result.rowCount ?? 0), 0)
        const last = results[results.length - 1]
        this.load(last === undefined ? [] : [{ ...last, rowCount, rows: [], results: [] }])
      }
      return this
    })
  }

  private take(count: number): ReadonlyArray<R> {
    const rows = this.current?.rows ?? []
    const slice = rows.slice(this.position, this.position + count)
    this.position += slice.length
    return slice
  }

  get fetchOne(): Effect.Effect<R | undefined> {
    return Effect.sync(() => this.take(1)[0])
  }

  fetchMany(size?: number): Effect.Effect<ReadonlyArray<R>> {
    return Effect.sync(() => this.take(size ?? this.arraySize))
  }

  get fetchAll(): Effect.Effect<ReadonlyArray<R>> {
    return Effect.sync(() => this.take(Number.MAX_SAFE_INTEGER))
  }

  get nextSet(): Effect.Effect<boolean> {
    return Effect.sync(() => {
      if (this.set + 1 >= this.sets.length) return false
      this.set++
      this.position = 0
      this.columns = undefined
      return true
    })
  }

  scroll(value: number, mode: ScrollMode = "relative"): Effect.Effect<void, InterfaceError> {
    return Effect.suspend(() => {
      const target = mode === "relative" ? this.position + value : value
      const size = this.current?.rows.length ?? 0
      if (target < 0 || target > size) {
        return Effect.fail(new InterfaceError({ message: `position ${target} out of the result (0..${size})` }))
      }
      this.position = target
      return Effect.void
    })
  }

  stream(
    sql: string,
    params?: ReadonlyArray<unknown>,
    options?: Omit<StreamOptions<R>, "rowFactory">
  ): Stream.Stream<R, PgError> {
    return this.conn.stream(sql, params, { ...options, rowFactory: this.rowFactory })
  }

  get describe(): Effect.Effect<ReadonlyArray<Column> | undefined, PgError> {
    return Effect.suspend(() => {
      const result = this.current
      if (result === undefined) return Effect.succeed(undefined)
      const fields = result.fields
      const tableColumns = fields.filter((field) => field.tableOid !== 0)
      if (tableColumns.length === 0) return Effect.succeed(this.description)
      return Effect.map(
        this.conn.execute(
          "SELECT attrelid, attnum, attnotnull FROM pg_catalog.pg_attribute WHERE attrelid = ANY($1::oid[]) AND attnum > 0",
          [tableColumns.map((field) => String(field.tableOid))],
          { rowFactory: RowFactory.tuple, prepare: false }
        ),
        (catalog) => {
          const notNull = new Map(catalog.rows.map((row) => [`${row[0]}:${row[1]}`, row[2] as boolean]))
          this.columns = fields.map((field) => {
            const known = field.tableOid === 0 ? undefined : notNull.get(`${field.tableOid}:${field.columnNumber}`)
            return { ...toColumn(field), nullable: known === undefined ? undefined : !known }
          })
          return this.columns
        }
      )
    })
  }

  get rowCount(): number {
    return this.current?.rowCount ?? -1
  }

  get rowNumber(): number | undefined {
    return this.current === undefined ? undefined : this.position
  }

  get description(): ReadonlyArray<Column> | undefined {
    const result = this.current
    if (result === undefined || (result.fields.length === 0 && result.command !== "SELECT")) return undefined
    this.columns ??= result.fields.map(toColumn)
    return this.columns
  }

  get statusMessage(): string | undefined {
    return this.current?.commandTag
  }

  *[Symbol.iterator](): Iterator<R> {
    const rows = this.current?.rows ?? []
    while (this.position < rows.length) yield rows[this.position++]
  }
}

/**
 * A client cursor on `conn`, with the connection's row factory unless one is
 * given. `conn.cursor(options)` is the same.
 *
 * @example
 * ```ts
 * const cur = Cursor.make(conn, { rowFactory: RowFactory.record })
 * yield* cur.execute("SELECT id, data FROM test")
 * const rows = yield* cur.fetchAll // [{ id: 1, data: "abc'def" }, …]
 * ```
 *
 * @since 0.1.0
 */
export const make = <R0, R = R0>(
  conn: Executor<R0>,
  options?: { readonly rowFactory?: RowFactory.RowFactory<R> | undefined }
): Cursor<R> =>
  new CursorImpl<R>(
    conn as Executor<unknown>,
    (options?.rowFactory ?? conn.rowFactory) as RowFactory.RowFactory<R>
  )

// -----------------------------------------------------------------------------
// server cursors
// -----------------------------------------------------------------------------

/**
 * Options of a server cursor.
 *
 * @since 0.1.0
 */
export interface ServerCursorOptions<R> {
  /** Rows per FETCH when streaming (default 100, as psycopg). */
  readonly itersize?: number | undefined
  /** `SCROLL` / `NO SCROLL`; the server's default when unset. */
  readonly scrollable?: boolean | undefined
  /**
   * `WITH HOLD`: the cursor survives the transaction's COMMIT. Refused with
   * an `InterfaceError` on a `pgbouncer` connection (the session it lives in
   * does not last).
   */
  readonly withHold?: boolean | undefined
  /** The shape of the rows (default: the connection's). */
  readonly rowFactory?: RowFactory.RowFactory<R> | undefined
}

/**
 * A named cursor on the server.
 *
 * @since 0.1.0
 */
export interface ServerCursor<R> {
  /** The cursor's name on the server. */
  readonly name: string
  /** `FETCH FORWARD 1`: the next row, `undefined` past the end. */
  readonly fetchOne: Effect.Effect<R | undefined, PgError>
  /** `FETCH FORWARD n`: the next `size` rows (default `arraySize`). */
  readonly fetchMany: (size?: number) => Effect.Effect<ReadonlyArray<R>, PgError>
  /** `FETCH FORWARD ALL`: every remaining row. */
  readonly fetchAll: Effect.Effect<ReadonlyArray<R>, PgError>
  /** Every remaining row, `itersize` per round trip. */
  readonly stream: Stream.Stream<R, PgError>
  /**
   * `MOVE RELATIVE` / `MOVE ABSOLUTE`: moves without fetching (backwards needs
   * `scrollable: true`). The server does not report moves past the end.
   */
  readonly scroll: (value: number, mode?: ScrollMode) => Effect.Effect<void, PgError>
  /** Rows fetched so far. */
  readonly rowNumber: number
  /** Rows per FETCH of `stream`. */
  readonly itersize: number
  /** Default size of `fetchMany` (1). */
  arraySize: number
}

/**
 * Quotes an identifier for SQL text (`"` doubled), for names that cannot be
 * bind parameters: cursors, channels.
 *
 * @example
 * ```ts
 * conn.execute(`CLOSE ${Cursor.quoteIdentifier('my "cursor"')}`) // CLOSE "my ""cursor"""
 * ```
 *
 * @since 0.1.0
 */
export const quoteIdentifier = (name: string): string => `"${name.replaceAll("\"", "\"\"")}"`

/**
 * Declares a server cursor for the life of the scope. Without `withHold`
 * the cursor needs a transaction: on an idle connection one is begun and
 * committed when the scope closes (rolled back if the scope fails). Like
 * psycopg, other statements may run on the connection meanwhile (each FETCH
 * is an ordinary statement). `conn.serverCursor(name, sql, params, options)`
 * is the same.
 *
 * @example
 * ```ts
 * const total = yield* Effect.scoped(Effect.gen(function*() {
 *   const cur = yield* Cursor.declare(conn, "big", "SELECT n FROM generate_series(1, $1) AS n", [1_000_000], {
 *     itersize: 10_000
 *   })
 *   // 10,000 rows per round trip; CLOSE (and COMMIT) when the scope closes
 *   return yield* Stream.runFold(cur.stream, () => 0, (sum, row) => sum + (row[0] as number))
 * }))
 * ```
 *
 * @since 0.1.0
 */
export const declare = <R0, R = R0>(
  conn: Executor<R0>,
  name: string,
  sql: string,
  params?: ReadonlyArray<unknown>,
  options?: ServerCursorOptions<R>
): Effect.Effect<ServerCursor<R>, PgError, Scope.Scope> =>
  Effect.gen(function*() {
    if (options?.withHold === true && conn.pgbouncer) {
      return yield* new InterfaceError({ message: pgbouncerRefusal("a WITH HOLD cursor") })
    }
    const rowFactory = (options?.rowFactory ?? conn.rowFactory) as RowFactory.RowFactory<R>
    const quoted = quoteIdentifier(name)
    const began = !options?.withHold && conn.info.transactionStatus === "IDLE"
    if (began) yield* conn.execute("BEGIN")
    const scroll = options?.scrollable === undefined ? "" : options.scrollable ? " SCROLL" : " NO SCROLL"
    const hold = options?.withHold ? " WITH HOLD" : ""
    yield* Effect.addFinalizer((exit) => {
      if (conn.closed) return Effect.void
      const close = conn.execute(`CLOSE ${quoted}`)
      const end = began ? conn.execute(exit._tag === "Success" ? "COMMIT" : "ROLLBACK") : Effect.void
      // In an aborted transaction CLOSE fails; the ROLLBACK still ends it.
      // Bounded: finalizers are uninterruptible (a half-open connection).
      return conn.session.bounded(Effect.ignore(close).pipe(Effect.andThen(Effect.ignore(end))), "closing a server cursor")
    })
    yield* conn.execute(`DECLARE ${quoted}${scroll} CURSOR${hold} FOR ${sql}`, params ?? [], { prepare: false })
    let fetched = 0
    const fetch = (what: string) =>
      Effect.map(conn.execute(`FETCH ${what} FROM ${quoted}`, undefined, { rowFactory }), (result) => {
        fetched += result.rows.length
        return result.rows
      })
    const itersize = options?.itersize ?? 100
    const cursor: ServerCursor<R> = {
      name,
      itersize,
      arraySize: 1,
      get rowNumber() {
        return fetched
      },
      fetchOne: Effect.map(fetch("FORWARD 1"), (rows) => rows[0]),
      fetchMany: (size) => fetch(`FORWARD ${Math.max(0, Math.trunc(size ?? cursor.arraySize))}`),
      fetchAll: fetch("FORWARD ALL"),
      stream: Stream.paginate(undefined, () =>
        Effect.map(
          fetch(`FORWARD ${itersize}`),
          (rows) => [rows, rows.length < itersize ? Option.none() : Option.some(undefined)] as const
        )),
      scroll: (value, mode = "relative") =>
        Effect.asVoid(conn.execute(`MOVE ${mode === "relative" ? "RELATIVE" : "ABSOLUTE"} ${Math.trunc(value)} FROM ${quoted}`))
    }
    return cursor
  })
