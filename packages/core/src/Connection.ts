/**
 * A PostgreSQL connection as a scoped Effect resource: psycopg's
 * `Connection`, on pgfx's own engine.
 *
 * - `connect(config)` opens it (host list, TLS, authentication) and closing
 *   the scope sends Terminate, on every exit path.
 * - `execute(sql, params?)`: with parameters, the extended protocol with bind
 *   values and a cache of named prepared statements; without, the simple
 *   protocol, so multi-statement scripts work.
 * - Concurrent callers' statements are pipelined outside transaction blocks
 *   (each with its own Sync, answered in order); a hold (transaction, stream,
 *   server cursor, COPY) has the connection to itself.
 * - Interrupting a running statement sends a CancelRequest and drains the
 *   response; if that cannot finish in time the connection is closed and
 *   reported broken, never reused. A pipelined statement is cancelled only
 *   once nothing but interrupted statements is in flight, so a cancel never
 *   hits another caller's statement.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import type * as Cursor from "./Cursor.ts"
import { open } from "./internal/connect.ts"
import type { Executor } from "./internal/executor.ts"
import { startupParameters } from "./internal/pgbouncer.ts"
import type { ConnectOptions, ExecuteOptions, Notification, PipelineStatement, QueryResult } from "./internal/results.ts"
import * as PgConfig from "./PgConfig.ts"
import type { ConnectionError, Diagnostic, InterfaceError, PgError, ProtocolError } from "./PgError.ts"
import type * as RowFactory from "./RowFactory.ts"
import type * as Transaction from "./Transaction.ts"

export type { Executor } from "./internal/executor.ts"
export type { Field } from "./internal/field.ts"
// the result vocabulary: ConnectionInfo, ConnectOptions, ExecuteOptions, QueryResult, …
export type * from "./internal/results.ts"

/**
 * An open connection.
 *
 * @since 0.1.0
 */
export interface Connection<R = RowFactory.Tuple> extends Executor<R> {
  /** Lost without `close` (server terminated it, network, failed cancel). */
  readonly broken: boolean
  /** Asks the server to cancel the running statement (a CancelRequest on a new socket). */
  readonly cancel: Effect.Effect<void, ConnectionError>
  /** Sends Terminate and closes the socket. Idempotent. */
  readonly close: Effect.Effect<void>
  /** Notices the server sent outside any statement are logged; this hook also receives every notice. */
  readonly onNotice: (listener: (notice: Diagnostic) => void) => () => void
  /**
   * Pipeline mode: sends every statement before reading any result and
   * returns each one's outcome in order. As in PostgreSQL, an error aborts
   * the statements after it (`PipelineAborted`) and, outside a transaction
   * block, rolls back those before it.
   */
  readonly pipeline: <A = R>(
    statements: ReadonlyArray<PipelineStatement>,
    options?: Pick<ExecuteOptions<A>, "rowFactory">
  ) => Effect.Effect<ReadonlyArray<Exit.Exit<QueryResult<A>, PgError>>, ConnectionError | ProtocolError>
  /**
   * Runs `effect` in a transaction block (a savepoint when nested). See
   * `Transaction`.
   */
  readonly transaction: <A, E, R2>(
    effect: Effect.Effect<A, E, R2>,
    options?: Transaction.TransactionOptions
  ) => Effect.Effect<Transaction.BlockResult<A, E>, Exclude<E, Transaction.Rollback> | PgError, R2>
  /** A client cursor (psycopg's `conn.cursor()`). */
  readonly cursor: <A = R>(options?: { readonly rowFactory?: RowFactory.RowFactory<A> | undefined }) => Cursor.Cursor<A>
  /** A server-side named cursor, closed when the scope closes. */
  readonly serverCursor: <A = R>(
    name: string,
    sql: string,
    params?: ReadonlyArray<unknown>,
    options?: Cursor.ServerCursorOptions<A>
  ) => Effect.Effect<Cursor.ServerCursor<A>, PgError, Scope.Scope>
  /**
   * LISTENs on the channels for as long as the stream runs (UNLISTEN when it
   * ends). The stream fails with a `ConnectionError` if the connection is
   * lost, so a retry can subscribe again on a new one. Inside a transaction
   * (where LISTEN would only take effect at COMMIT, and never after a
   * ROLLBACK) and with `pgbouncer` it fails at once with an `InterfaceError`;
   * with autocommit off the LISTEN runs outside the implicit transaction.
   */
  readonly listen: (...channels: ReadonlyArray<string>) => Stream.Stream<Notification, PgError>
  /** `pg_notify(channel, payload)`, with both as bind values. */
  readonly notify: (channel: string, payload?: string) => Effect.Effect<void, PgError>
  /**
   * Off: the first statement from IDLE opens a transaction (psycopg's
   * default), ended by `commit` / `rollback`, or by the connection's scope:
   * COMMIT when it succeeds, ROLLBACK when it fails. On (pgfx's default):
   * each statement commits by itself unless inside `transaction`.
   */
  readonly autocommit: boolean
  /** Changes `autocommit`; only while IDLE, like psycopg. */
  readonly setAutocommit: (value: boolean) => Effect.Effect<void, InterfaceError>
  /** Commits the open transaction (no-op when IDLE). */
  readonly commit: Effect.Effect<void, PgError>
  /** Rolls back the open transaction (no-op when IDLE). */
  readonly rollback: Effect.Effect<void, PgError>
}

/**
 * The service tag of a connection provided by a layer.
 *
 * @since 0.1.0
 */
export class PgConnection extends Context.Service<PgConnection, Connection>()("@pgfx/core/Connection") {}

/**
 * Settings accepted by `connect`: a conninfo string or URL, an object, or an
 * already resolved `PgConfig`.
 *
 * @since 0.1.0
 */
export type ConnectionSettings = string | PgConfig.PgConfigInput | PgConfig.PgConfig

const isResolved = (settings: ConnectionSettings): settings is PgConfig.PgConfig =>
  typeof settings === "object" && Array.isArray((settings as PgConfig.PgConfig).hosts) &&
  typeof (settings as PgConfig.PgConfig).sslmode === "string"

/**
 * Resolves the settings (with the `PG*` environment variables and defaults)
 * and opens a connection that lives as long as the scope. Hosts are tried in
 * order (shuffled with `load_balance_hosts=random`), each address with its
 * own `connect_timeout`, until one satisfies `target_session_attrs`. Host
 * names are resolved at every call by the `HostResolver` in force (the
 * operating system's by default; nothing is cached).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Connection } from "@pgfx/core"
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const conn = yield* Connection.connect("host=127.0.0.1 dbname=test user=postgres")
 *   const result = yield* conn.execute("SELECT $1::int * 2", [21])
 *   return result.rows[0][0] // 42
 * }))
 * ```
 *
 * @since 0.1.0
 */
export const connect = <R = RowFactory.Tuple>(
  settings: ConnectionSettings = "",
  options?: ConnectOptions<R>
): Effect.Effect<Connection<R>, PgError | PgConfig.PgConfigError, Scope.Scope> =>
  Effect.gen(function*() {
    const config = isResolved(settings) ? settings : yield* PgConfig.make(settings)
    const connection: Connection<unknown> = yield* open(config, options as ConnectOptions<unknown> | undefined)
    // the connection's rows are `R`s: its row factory is `options.rowFactory`
    return connection as Connection<R>
  })

/**
 * The checks `connect` makes on the settings before opening any socket, for
 * callers that want a configuration error early (a pool at `make`, instead
 * of on every reconnection): with `pgbouncer`, that `options` sets nothing
 * but `TimeZone` (see `ConnectOptions.pgbouncer`).
 *
 * @example
 * ```ts
 * const config = yield* PgConfig.make("host=pgbouncer port=6432 options='-c statement_timeout=5s'")
 * yield* Connection.checkSettings(config, { pgbouncer: true }) // fails: PgConfigError (key "options")
 * ```
 *
 * @since 0.1.0
 */
export const checkSettings = (
  config: PgConfig.PgConfig,
  options?: Pick<ConnectOptions<unknown>, "pgbouncer">
): Effect.Effect<void, PgConfig.PgConfigError> =>
  Effect.asVoid(Effect.fromResult(startupParameters(config, options?.pgbouncer === true)))

/**
 * A layer providing `PgConnection`, open for the layer's lifetime.
 *
 * @example
 * ```ts
 * const program = Effect.flatMap(Connection.PgConnection, (conn) => conn.execute("SELECT 1"))
 * Effect.runPromise(Effect.provide(program, Connection.layer(process.env.DATABASE_URL)))
 * ```
 *
 * @since 0.1.0
 */
export const layer = (
  settings: ConnectionSettings = "",
  options?: ConnectOptions
): Layer.Layer<PgConnection, PgError | PgConfig.PgConfigError> => Layer.effect(PgConnection, connect(settings, options))
