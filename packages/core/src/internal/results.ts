/**
 * The vocabulary of statements and their results, shared by `Connection`,
 * `Cursor`, `Transaction` and `RowFactory`: kept apart so that none of them
 * has to import another for a type. `Connection` re-exports every name.
 */
import type * as Duration from "effect/Duration"
import type * as RowFactory from "../RowFactory.ts"
import type { Field } from "./field.ts"

/**
 * libpq's transaction status of the session, from the last ReadyForQuery.
 *
 * @since 0.1.0
 */
export type TransactionStatus = "IDLE" | "INTRANS" | "INERROR" | "ACTIVE" | "UNKNOWN"

/**
 * What the server told us about the session (psycopg's `conn.info`). Values
 * are live: ParameterStatus messages update them.
 *
 * @since 0.1.0
 */
export interface ConnectionInfo {
  /** The server process serving the session (`pg_backend_pid()`). */
  readonly backendPid: number
  /** `server_version_num` style: 150020 for 15.20, 180004 for 18.4. */
  readonly serverVersion: number
  /** From the last ReadyForQuery; `ACTIVE` while a request is in flight, `UNKNOWN` once closed. */
  readonly transactionStatus: TransactionStatus
  /** Every ParameterStatus the server reported (`server_version`, `TimeZone`, …). */
  readonly parameters: ReadonlyMap<string, string>
  /**
   * One reported parameter, e.g. `parameterStatus("application_name")`.
   *
   * @example
   * ```ts
   * const zone = conn.info.parameterStatus("TimeZone")
   * ```
   */
  readonly parameterStatus: (name: string) => string | undefined
  /** The host name (or socket directory) of the attempt that succeeded. */
  readonly host: string
  readonly port: number
  readonly database: string
  readonly user: string
  /** Whether the session runs over TLS. */
  readonly encrypted: boolean
  /** The connection settings, without the password. */
  readonly dsn: string
}

/**
 * The result of one statement. Rows are arrays in column order (psycopg's
 * tuple rows); see `RowFactory` for other shapes.
 *
 * @since 0.1.0
 */
export interface QueryResult<R = RowFactory.Tuple> {
  /** The command, e.g. `SELECT`, `INSERT`, `CREATE TABLE`. */
  readonly command: string
  /** The full command tag, e.g. `INSERT 0 3`. */
  readonly commandTag: string
  /** Rows affected or returned, for the commands that report it. */
  readonly rowCount: number | undefined
  readonly rows: ReadonlyArray<R>
  readonly fields: ReadonlyArray<Field>
  /** Every statement's result, for a multi-statement simple query; otherwise just this one. */
  readonly results: ReadonlyArray<QueryResult<R>>
}

/**
 * Per-call options of `execute`.
 *
 * @since 0.1.0
 */
export interface ExecuteOptions<A> {
  /**
   * `true` prepares now, `false` never prepares; unset follows
   * `prepareThreshold`. `true` is an `InterfaceError` with `pgbouncer`.
   */
  readonly prepare?: boolean | undefined
  /** The shape of the rows of this call (default: the connection's). */
  readonly rowFactory?: RowFactory.RowFactory<A> | undefined
}

/**
 * Options of `stream`.
 *
 * @since 0.1.0
 */
export interface StreamOptions<A> extends ExecuteOptions<A> {
  /** Rows fetched per round trip (Execute with a row limit); default 1000. */
  readonly batchSize?: number | undefined
}

/**
 * Options of `connect` beyond the connection settings.
 *
 * @since 0.1.0
 */
export interface ConnectOptions<R = RowFactory.Tuple> {
  /** The shape of rows (psycopg's `row_factory`); default `RowFactory.tuple`. */
  readonly rowFactory?: RowFactory.RowFactory<R> | undefined
  /** Default `true`; `false` gives psycopg's implicit transactions (see `Connection.autocommit`). */
  readonly autocommit?: boolean | undefined
  /**
   * Executions of the same statement before it is prepared (psycopg's
   * `prepare_threshold`, default 5; 0 prepares at once). `null` never
   * prepares: use it behind transaction-mode poolers such as PgBouncer.
   */
  readonly prepareThreshold?: number | null | undefined
  /** Prepared statements kept per connection, least recently used evicted (default 100). */
  readonly preparedMax?: number | undefined
  /** Bound on the cancel side-connection (default 5 s). */
  readonly cancelTimeout?: Duration.Input | undefined
  /** Bound on reading the rest of a cancelled statement's response (default 5 s). */
  readonly drainTimeout?: Duration.Input | undefined
  /** Default per-attempt connect timeout when the settings give none (default 30 s). */
  readonly defaultConnectTimeout?: Duration.Input | undefined
  /**
   * PgBouncer in transaction (or statement) pooling mode is between pgfx and
   * PostgreSQL: consecutive transactions may run on different server
   * connections, so nothing may rely on session state. It cannot be
   * detected, so it is asked for (default `false`). Then:
   *
   * - only startup parameters PgBouncer tracks are sent (`client_encoding`,
   *   `DateStyle`, `application_name`): no `extra_float_digits` (PostgreSQL
   *   12+ prints round-trippable floats by default) and no `options`, except
   *   `-c TimeZone=…`, which is sent as the tracked `TimeZone` parameter;
   *   any other `options` fails `connect` with a `PgConfigError`;
   * - statements are never prepared (`prepareThreshold` and `preparedMax`
   *   are ignored): each one uses the unnamed statement, so there is no
   *   name that another server connection lacks or already has; a
   *   `{ prepare: true }` call fails with an `InterfaceError`;
   * - `listen` and `withHold` server cursors fail with an `InterfaceError`
   *   before anything is sent (the session they need does not last);
   * - use `SET LOCAL` inside a transaction instead of `SET` (pgfx sends no
   *   `SET` of its own).
   *
   * @example
   * ```ts
   * const conn = yield* Connection.connect("postgresql://app@pgbouncer:6432/app", { pgbouncer: true })
   * ```
   *
   * @since 0.1.0
   */
  readonly pgbouncer?: boolean | undefined
}

/**
 * A statement of a pipeline.
 *
 * @since 0.1.0
 */
export interface PipelineStatement {
  readonly sql: string
  readonly params?: ReadonlyArray<unknown> | undefined
}

/**
 * A NOTIFY received on a LISTENed channel.
 *
 * @since 0.1.0
 */
export interface Notification {
  readonly channel: string
  readonly payload: string
  /** Backend pid of the notifying session. */
  readonly pid: number
}
