/**
 * What cursors and transaction blocks need of a connection: its statements
 * and its session. `Connection` extends it; `Cursor` and `Transaction` take
 * it, so they do not import `Connection` (which builds them).
 */
import type * as Effect from "effect/Effect"
import type * as Stream from "effect/Stream"
import type { PgError } from "../PgError.ts"
import type * as RowFactory from "../RowFactory.ts"
import type { Session } from "../Session.ts"
import type { ConnectionInfo, ExecuteOptions, QueryResult, StreamOptions } from "./results.ts"

/**
 * The statements of an open connection (see `Connection`).
 *
 * @since 0.1.0
 */
export interface Executor<R = RowFactory.Tuple> {
  readonly info: ConnectionInfo
  /** Closed by `close` or by its scope, or lost. */
  readonly closed: boolean
  /** Lost without `close` (server terminated it, network, failed cancel). */
  /**
   * Runs one statement, or a script of several when there are no
   * parameters. Parameters always travel as bind values (`$1`, `$2`, …).
   */
  readonly execute: <A = R>(
    sql: string,
    params?: ReadonlyArray<unknown>,
    options?: ExecuteOptions<A>
  ) => Effect.Effect<QueryResult<A>, PgError>
  /**
   * Streams the rows of one statement with bounded memory: they come from a
   * portal, `batchSize` rows per round trip (the next batch is fetched while
   * the current one is consumed). The connection is held for the stream's
   * life; ending the stream early closes the portal.
   */
  readonly stream: <A = R>(
    sql: string,
    params?: ReadonlyArray<unknown>,
    options?: StreamOptions<A>
  ) => Stream.Stream<A, PgError>
  /** The low-level session API (COPY, pools, protocol extensions). */
  readonly session: Session
  /** The connection's default row factory. */
  readonly rowFactory: RowFactory.RowFactory<R>
  /**
   * Opened with `pgbouncer: true` (see `ConnectOptions.pgbouncer`): features
   * that need a lasting session are refused.
   *
   * @since 0.1.0
   */
  readonly pgbouncer: boolean
  /**
   * Runs one statement per parameter list, pipelined: every Bind/Execute is
   * sent before any result is read, with one Sync, so the batch costs one
   * round trip and is one implicit transaction (all or nothing outside a
   * transaction block).
   */
  readonly executeMany: <A = R>(
    sql: string,
    paramsList: ReadonlyArray<ReadonlyArray<unknown>>,
    options?: ExecuteOptions<A>
  ) => Effect.Effect<ReadonlyArray<QueryResult<A>>, PgError>
}
