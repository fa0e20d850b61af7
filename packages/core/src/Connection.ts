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
import * as PgProtocol from "@effect/sql-pg/PgProtocol"
import * as PgTypes from "@effect/sql-pg/PgTypes"
import type * as Arr from "effect/Array"
import * as Cause from "effect/Cause"
import type * as Pull from "effect/Pull"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Deferred from "effect/Deferred"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Result from "effect/Result"
import type * as Scope from "effect/Scope"
import * as Queue from "effect/Queue"
import * as Semaphore from "effect/Semaphore"
import * as Stream from "effect/Stream"
import * as Tracer from "effect/Tracer"
import * as net from "node:net"
import type * as tls from "node:tls"
import * as Cursor from "./Cursor.ts"
import * as HostResolver from "./HostResolver.ts"
import * as PgConfig from "./PgConfig.ts"
import * as RowFactory from "./RowFactory.ts"
import * as Transaction from "./Transaction.ts"
import {
  ConnectionError,
  type DecodeError,
  type Diagnostic,
  InterfaceError,
  type PgError,
  ParameterError,
  PipelineAborted,
  type ProtocolError
} from "./PgError.ts"
import { encodeQuery } from "./internal/frontend.ts"
import { toParameters } from "./internal/parameters.ts"
import { PipelineHandler, type PipelineSlot } from "./internal/pipeline.ts"
import { PortalHandler } from "./internal/portal.ts"
import { refusal as pgbouncerRefusal, type StartupParameters, startupParameters } from "./internal/pgbouncer.ts"
import { parseCommandTag, QueryHandler, type QueryOutcome } from "./internal/query.ts"
import { resultFormat } from "./internal/rowReader.ts"
import { describeEndpoint, type Endpoint, negotiateTls, openSocket } from "./internal/socket.ts"
import { makeStartup, type StartupResult } from "./internal/startup.ts"
import { traced } from "./internal/span.ts"
import { StatementCache } from "./internal/statementCache.ts"
import { Wire } from "./internal/wire.ts"
import type { ProtocolHandler, ResponseHandler, Session } from "./Session.ts"

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
 * A result column.
 *
 * @since 0.1.0
 */
export interface Field {
  readonly name: string
  readonly typeOid: number
  readonly typeModifier: number
  readonly tableOid: number
  readonly columnNumber: number
  /** Size of the type in bytes, negative for variable-length types. */
  readonly typeSize: number
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
 * An open connection.
 *
 * @since 0.1.0
 */
export interface Connection<R = RowFactory.Tuple> {
  readonly info: ConnectionInfo
  /** Closed by `close` or by its scope, or lost. */
  readonly closed: boolean
  /** Lost without `close` (server terminated it, network, failed cancel). */
  readonly broken: boolean
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
  /** Asks the server to cancel the running statement (a CancelRequest on a new socket). */
  readonly cancel: Effect.Effect<void, ConnectionError>
  /** Sends Terminate and closes the socket. Idempotent. */
  readonly close: Effect.Effect<void>
  /** The low-level session API (COPY, pools, protocol extensions). */
  readonly session: Session
  /** Notices the server sent outside any statement are logged; this hook also receives every notice. */
  readonly onNotice: (listener: (notice: Diagnostic) => void) => () => void
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

/**
 * The service tag of a connection provided by a layer.
 *
 * @since 0.1.0
 */
export class PgConnection extends Context.Service<PgConnection, Connection>()("@pgfx/core/Connection") {}

/** The connections the current fiber holds through `Session.exclusive`. */
const HeldSessions = Context.Reference<ReadonlySet<ConnectionImpl<unknown>>>("@pgfx/core/Connection/HeldSessions", {
  defaultValue: () => new Set()
})

const statusName: Record<PgProtocol.TransactionStatus, TransactionStatus> = {
  I: "IDLE",
  T: "INTRANS",
  E: "INERROR"
}

const parseServerVersion = (text: string | undefined): number => {
  const match = /^(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(text ?? "")
  if (match === null) return 0
  const major = Number(match[1])
  return major >= 10 ? major * 10000 + Number(match[2] ?? 0) : major * 10000 + Number(match[2] ?? 0) * 100 +
    Number(match[3] ?? 0)
}

const encodeBind = PgProtocol.makeBindEncoder(PgTypes.writeParameter, PgTypes.isTextFormat)
const SYNC = PgProtocol.encodeSync()
const EXECUTE_ALL = PgProtocol.encodeExecute({ portal: "", maxRows: 0 })
const FLUSH = PgProtocol.encodeFlush()
const DESCRIBE_PORTAL = PgProtocol.encodeDescribe({ target: "portal", name: "" })
const EXECUTE_SYNC: ReadonlyArray<Uint8Array> = [EXECUTE_ALL, SYNC]

/** How long a cancelled statement may go unanswered before its cancel is sent again. */
const CANCEL_REPEAT_MS = 250

/**
 * Rewrites the result-format codes at the end of a Bind frame (`PgProtocol`
 * asks for binary everywhere): `formats` per column, or all text.
 */
const withResultFormats = (bind: Uint8Array, formats: ReadonlyArray<0 | 1> | "text"): Uint8Array => {
  if (formats === "text") {
    bind[bind.length - 1] = 0
    return bind
  }
  if (formats.every((format) => format === 1)) return bind
  const head = bind.length - 4
  const out = new Uint8Array(head + 2 + formats.length * 2)
  out.set(bind.subarray(0, head))
  const view = new DataView(out.buffer)
  view.setInt16(head, formats.length)
  formats.forEach((format, index) => view.setInt16(head + 2 + index * 2, format))
  view.setInt32(1, out.length - 1)
  return out
}

const toField = (field: PgProtocol.FieldDescription): Field => ({
  name: field.name,
  typeOid: field.dataTypeOid,
  typeModifier: field.typeModifier,
  tableOid: field.tableOid,
  columnNumber: field.columnAttributeNumber,
  typeSize: field.dataTypeSize
})

const logNotices = (notices: ReadonlyArray<Diagnostic>) =>
  notices.length === 0 ? Effect.void : Effect.forEach(notices, logNotice, { discard: true })

const logNotice = (notice: Diagnostic) => {
  const line = `${notice.severity}: ${notice.message}`
  const log = notice.severityNonLocalized === "WARNING"
    ? Effect.logWarning(line)
    : notice.severityNonLocalized === "DEBUG"
    ? Effect.logDebug(line)
    : Effect.logInfo(line)
  return log.pipe(Effect.annotateLogs({ sqlState: notice.sqlState, source: "postgresql" }))
}

class ConnectionImpl<R> implements Connection<R> {
  private readonly sessionLock = Semaphore.makeUnsafe(1)
  private readonly requestLock = Semaphore.makeUnsafe(1)
  private readonly statements: StatementCache
  private readonly parameters: Map<string, string>
  private status: TransactionStatus
  private closedByUser = false
  private readonly noticeListeners = new Set<(notice: Diagnostic) => void>()
  private readonly strayNotices: Array<Diagnostic> = []
  private readonly listeners = new Map<string, Set<Queue.Queue<Notification, PgError | Cause.Done>>>()
  autocommit: boolean
  readonly info: ConnectionInfo

  constructor(
    private readonly wire: Wire,
    private readonly endpoint: Endpoint,
    startup: StartupResult,
    config: PgConfig.PgConfig,
    private readonly options: ResolvedOptions,
    encrypted: boolean,
    readonly rowFactory: RowFactory.RowFactory<R>
  ) {
    this.autocommit = options.autocommit
    this.parameters = startup.parameters
    this.status = statusName[startup.transactionStatus]
    this.statements = new StatementCache(options.preparedMax)
    const self = this
    this.info = {
      backendPid: startup.pid,
      get serverVersion() {
        return parseServerVersion(self.parameters.get("server_version"))
      },
      get transactionStatus() {
        return self.wire.closed ? "UNKNOWN" : self.wire.pending > 0 ? "ACTIVE" : self.status
      },
      parameters: this.parameters,
      parameterStatus: (name) => this.parameters.get(name),
      host: endpoint.host,
      port: endpoint.port,
      database: config.database,
      user: config.user,
      encrypted,
      dsn: PgConfig.describe(config)
    }
    wire.setHooks({
      onNotification: (message) => {
        const subscribers = this.listeners.get(message.channel)
        if (subscribers === undefined) return
        const notification: Notification = { channel: message.channel, payload: message.payload, pid: message.pid }
        for (const queue of subscribers) Queue.offerUnsafe(queue, notification)
      },
      onParameterStatus: (name, value) => {
        this.parameters.set(name, value)
      },
      onNotice: (notice) => {
        this.strayNotices.push(notice)
        this.emitNotice(notice)
      },
      onReadyForQuery: (status) => {
        this.status = statusName[status]
      },
      onClose: (error) => {
        for (const subscribers of this.listeners.values()) {
          for (const queue of subscribers) Queue.failCauseUnsafe(queue, Cause.fail(error))
        }
      }
    })
    this.secret = startup.secret
  }

  private readonly secret: number

  get closed(): boolean {
    return this.wire.closed
  }

  get broken(): boolean {
    return this.wire.closed && !this.closedByUser
  }

  get pgbouncer(): boolean {
    return this.options.pgbouncer
  }

  onNotice(listener: (notice: Diagnostic) => void): () => void {
    this.noticeListeners.add(listener)
    return () => this.noticeListeners.delete(listener)
  }

  private emitNotice(notice: Diagnostic): void {
    for (const listener of this.noticeListeners) listener(notice)
  }

  private notOpen(): ConnectionError | ProtocolError {
    return this.wire.closeError ??
      new ConnectionError({ reason: "NotOpen", message: "the connection is closed", address: this.info.dsn })
  }

  /** Whether the current fiber holds this connection through `exclusive`. */
  private holds(held: ReadonlySet<ConnectionImpl<unknown>>): boolean {
    return held.has(this as ConnectionImpl<unknown>)
  }

  /**
   * Fibers holding `sessionLock` or waiting for it. While there is one,
   * statements queue on the lock instead of being pipelined, so a holder
   * never shares the wire with statements of others.
   */
  private lockUsers = 0

  /** Runs `effect` with `sessionLock` (counted in `lockUsers` while waiting too). */
  private locked<A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> {
    return Effect.suspend(() => {
      this.lockUsers++
      return Effect.ensuring(
        this.sessionLock.withPermit(effect),
        Effect.sync(() => {
          this.lockUsers--
        })
      )
    })
  }

  /** Completes once no request is in flight (statements pipelined before a hold began). */
  private readonly idle: Effect.Effect<void> = Effect.suspend(() =>
    this.wire.pending === 0 || this.wire.closed ? Effect.void : Effect.andThen(this.wire.advanced, this.idle)
  )

  /**
   * Runs `effect` with the connection to itself. Fibers outside the hold wait
   * on `sessionLock`; inside it, requests only serialise on `requestLock`, so
   * a cancel can never hit another request's statement. The hold begins
   * once the statements pipelined before it have been answered.
   */
  exclusive<A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> {
    return Effect.flatMap(HeldSessions, (held) => {
      if (this.holds(held)) return effect
      const next = new Set(held).add(this as ConnectionImpl<unknown>)
      return this.locked(Effect.andThen(this.quiet, Effect.provideService(effect, HeldSessions, next)))
    })
  }

  /** No cleanup settling and nothing in flight: what a hold waits for before it starts. */
  private readonly quiet: Effect.Effect<void> = Effect.suspend(() =>
    this.cleanup === undefined && (this.wire.pending === 0 || this.wire.closed)
      ? Effect.void
      : Effect.andThen(Effect.andThen(this.settled, this.idle), this.quiet)
  )

  /**
   * The cleanup of interrupted statements (see `abandon`) while it runs
   * after their callers have returned; whoever takes the session next waits
   * for it, so nothing is sent before its outcome is known.
   */
  private cleanup: Deferred.Deferred<void> | undefined = undefined

  /** Interrupted statements still in flight, whose results nobody awaits. */
  private readonly abandoned = new Set<Tracked>()

  get settling(): boolean {
    return this.cleanup !== undefined
  }

  /** Waits for a detached cleanup, if one runs (interruptible: the wait is the caller's). */
  readonly settled: Effect.Effect<void> = Effect.suspend(() =>
    this.cleanup === undefined ? Effect.void : Deferred.await(this.cleanup)
  )

  /**
   * Writes one request and waits for its response. Outside a hold, with
   * autocommit on, concurrent callers' requests are pipelined: each is
   * written at once (its own Sync makes its failure its own) and answered in
   * order. With autocommit off (implicit BEGIN needs the status first) or
   * while a hold is pending, requests queue on `sessionLock`. Inside a hold
   * they serialise on `requestLock`.
   *
   * Interruption while the server works: inside a hold the statement is
   * cancelled and drained before the interruption completes (what follows,
   * e.g. a ROLLBACK, needs the outcome); outside, the caller returns at once
   * and `abandon` deals with the statement in the background.
   */
  request<A>(frames: ReadonlyArray<Uint8Array>, handler: ResponseHandler<A>) {
    return Effect.flatMap(HeldSessions, (held) => {
      if (this.holds(held)) return this.requestLock.withPermit(this.sendHeld(frames, handler))
      return this.sendShared(frames, handler)
    })
  }

  private sendHeld<A>(frames: ReadonlyArray<Uint8Array>, handler: ResponseHandler<A>) {
    return Effect.uninterruptibleMask((restore) =>
      Effect.andThen(
        restore(this.settled),
        Effect.suspend(() => {
          if (this.wire.closed) return Effect.fail(this.notOpen())
          this.wire.enqueue(handler)
          this.wire.writeAll(frames)
          return restore(handler.await).pipe(Effect.onInterrupt(() => this.cancelAndDrain(handler)))
        })
      )
    )
  }

  private sendShared<A>(
    frames: ReadonlyArray<Uint8Array>,
    handler: ResponseHandler<A>
  ): Effect.Effect<A, ConnectionError | ProtocolError> {
    return Effect.uninterruptibleMask((restore) =>
      Effect.suspend(() => {
        if (this.cleanup !== undefined) {
          return Effect.andThen(restore(this.settled), this.sendShared(frames, handler))
        }
        if (!this.autocommit || this.lockUsers > 0) {
          return this.locked(this.sendNow(frames, handler, restore))
        }
        return this.sendNow(frames, handler, restore)
      })
    )
  }

  private sendNow<A>(
    frames: ReadonlyArray<Uint8Array>,
    handler: ResponseHandler<A>,
    restore: <X, E, R>(effect: Effect.Effect<X, E, R>) => Effect.Effect<X, E, R>
  ): Effect.Effect<A, ConnectionError | ProtocolError> {
    return Effect.suspend(() => {
      // a cleanup may have begun while this one waited for the lock
      if (this.cleanup !== undefined) return Effect.andThen(restore(this.settled), this.sendNow(frames, handler, restore))
      if (this.wire.closed) return Effect.fail(this.notOpen())
      this.wire.enqueue(handler)
      this.wire.writeAll(frames)
      return restore(handler.await).pipe(Effect.onInterrupt(() => this.abandon(handler)))
    })
  }

  /**
   * An interrupted statement outside a hold: its caller has returned, the
   * statement is on the wire, maybe behind or ahead of other callers'. A
   * CancelRequest hits whatever the backend runs when it arrives, so it is
   * sent only while every request in flight is an abandoned one: then it
   * cannot cancel anybody else's statement. Until then the abandoned
   * statements run on and their results are discarded. Meanwhile (the
   * session is `settling`) nothing new is written, so the moment comes: at
   * the latest when the live requests ahead have been answered.
   */
  private abandon(handler: Tracked): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (handler.done || this.wire.closed) return Effect.void
      this.abandoned.add(handler)
      if (this.cleanup !== undefined) return Effect.void
      const over = Deferred.makeUnsafe<void>()
      this.cleanup = over
      return Effect.asVoid(Effect.forkDetach(this.cleanUp.pipe(
        Effect.ensuring(Effect.sync(() => {
          this.abandoned.clear()
          this.cleanup = undefined
          Deferred.doneUnsafe(over, Exit.void)
        }))
      )))
    })
  }

  /** The loop of `abandon`: wait for live requests, cancel when only abandoned ones are left. */
  private readonly cleanUp: Effect.Effect<void> = Effect.suspend(() => {
    for (const handler of this.abandoned) {
      if (handler.done) this.abandoned.delete(handler)
    }
    if (this.abandoned.size === 0 || this.wire.closed || this.wire.pending === 0) return Effect.void
    if (!this.wire.everyPending((handler) => this.abandoned.has(handler as Tracked))) {
      return Effect.andThen(this.wire.advanced, this.cleanUp)
    }
    return Effect.andThen(this.cancelHead, this.cleanUp)
  })

  /**
   * Cancels the statement running now and waits for its answer, within
   * `drainTimeout`; otherwise the session cannot be trusted and is closed.
   * A cancel that reaches the backend while it reads a request (between
   * Parse, Bind and Execute, or between two pipelined statements) is dropped
   * by the server, so while the head goes unanswered the cancel is repeated:
   * every request in flight is abandoned (or, in a hold, the only one), so a
   * repeated cancel can only hit one of them.
   */
  private readonly cancelHead: Effect.Effect<void> = Effect.gen({ self: this }, function*() {
    // the request must reach the server before its cancel does
    this.wire.flush()
    const deadline = Date.now() + Duration.toMillis(this.options.drainTimeout)
    while (true) {
      const cancelled = yield* Effect.exit(this.cancel)
      if (Exit.isFailure(cancelled)) {
        yield* Effect.logWarning("pgfx: cancel request failed; closing the connection").pipe(
          Effect.annotateLogs({ backendPid: this.info.backendPid })
        )
        this.wire.destroy(this.brokenError("the cancel request failed"))
        return
      }
      const left = deadline - Date.now()
      const drained = yield* Effect.timeoutOption(this.wire.advanced, Math.max(0, Math.min(left, CANCEL_REPEAT_MS)))
      if (drained._tag === "Some" || this.wire.closed) return
      if (left <= CANCEL_REPEAT_MS) break
    }
    yield* Effect.logWarning("pgfx: cancelled statement did not end in time; closing the connection").pipe(
      Effect.annotateLogs({ backendPid: this.info.backendPid })
    )
    this.wire.destroy(this.brokenError("a cancelled statement did not end in time"))
  })

  private send(frames: ReadonlyArray<Uint8Array>, handler: ProtocolHandler) {
    return Effect.flatMap(HeldSessions, (held) =>
      Effect.suspend(() => {
        if (!this.holds(held)) {
          return Effect.die(new Error("Session.send must run inside Session.exclusive"))
        }
        if (this.wire.closed) return Effect.fail(this.notOpen())
        this.wire.enqueue(handler)
        this.wire.writeAll(frames)
        return Effect.void
      }))
  }

  private awaitResponse<A>(handler: ResponseHandler<A>) {
    return Effect.uninterruptibleMask((restore) =>
      restore(handler.await).pipe(Effect.onInterrupt(() => this.cancelAndDrain(handler)))
    )
  }

  private write(bytes: Uint8Array): Effect.Effect<void, ConnectionError | ProtocolError> {
    return Effect.suspend(() => {
      if (this.wire.closed) return Effect.fail(this.notOpen())
      if (this.wire.write(bytes)) return Effect.void
      return this.wire.drained
    })
  }

  readonly session: Session = ((connection: ConnectionImpl<R>): Session => ({
    get backendPid() {
      return connection.info.backendPid
    },
    exclusive: (effect) => connection.exclusive(effect),
    get hold() {
      return connection.hold
    },
    request: (frames, handler) => connection.request(frames, handler),
    send: (frames, handler) => connection.send(frames, handler),
    awaitResponse: (handler) => connection.awaitResponse(handler),
    write: (bytes) => connection.write(bytes),
    get settling() {
      return connection.settling
    },
    get inFlight() {
      return connection.wire.pending
    },
    get headAge() {
      return connection.wire.headAge
    },
    settled: connection.settled,
    invalidate: (reason) =>
      Effect.sync(() => {
        connection.wire.destroy(connection.brokenError(reason))
      }),
    bounded: (effect, what) => connection.bounded(effect, what)
  }))(this)

  /**
   * A cleanup step, bounded by `drainTimeout`: finalizers run
   * uninterruptibly, so without this a half-open connection would hold them
   * (and the scope) forever. Past the deadline the connection is closed as
   * broken, which fails the step.
   */
  bounded<A, E, R>(effect: Effect.Effect<A, E, R>, what: string): Effect.Effect<A, E, R> {
    return Effect.suspend(() => {
      if (this.wire.closed) return effect
      let expired = false
      const limit = this.options.drainTimeout
      return Effect.acquireUseRelease(
        Effect.sync(() =>
          setTimeout(() => {
            if (this.wire.closed) return
            expired = true
            this.wire.destroy(this.brokenError(`${what} did not finish within ${Duration.format(limit)}`))
          }, Duration.toMillis(limit))
        ),
        () => effect,
        (timer) =>
          Effect.suspend(() => {
            clearTimeout(timer)
            return expired
              ? Effect.logWarning(`pgfx: ${what} did not finish in time; closing the connection`).pipe(
                Effect.annotateLogs({ backendPid: this.info.backendPid })
              )
              : Effect.void
          })
      )
    })
  }


  /** After an interruption inside a hold, where the statement is the only one in flight. */
  private cancelAndDrain(handler: Tracked): Effect.Effect<void> {
    return Effect.suspend(() => handler.done || this.wire.closed ? Effect.void : this.cancelHead)
  }

  private brokenError(why: string): ConnectionError {
    return new ConnectionError({
      reason: "NotOpen",
      message: `the connection was closed because ${why}`,
      address: describeEndpoint(this.endpoint)
    })
  }

  get cancel(): Effect.Effect<void, ConnectionError> {
    const endpoint = this.endpoint
    const where = describeEndpoint(endpoint)
    const bytes = PgProtocol.encodeCancelRequest({ pid: this.info.backendPid, secret: this.secret })
    // The postmaster closes the cancel socket once it has signalled the
    // backend; waiting for that close orders the cancel before our next
    // statement, so it cannot hit the wrong one. Written without ending our
    // side (as libpq does): PgBouncer drops a cancel whose client half-closes
    // before it has been forwarded ("client unexpected eof").
    return openSocket(endpoint, { enable: false }).pipe(
      Effect.flatMap((socket) =>
        Effect.callback<void, ConnectionError>((resume) => {
          socket.on("error", () => {})
          socket.once("close", () => resume(Effect.void))
          socket.resume()
          socket.write(bytes)
          return Effect.sync(() => socket.destroy())
        })
      ),
      Effect.timeoutOrElse({
        duration: this.options.cancelTimeout,
        orElse: () =>
          Effect.fail(
            new ConnectionError({ reason: "Timeout", message: `cancel request to ${where} timed out`, address: where })
          )
      })
    )
  }

  get close(): Effect.Effect<void> {
    return Effect.sync(() => {
      if (this.wire.closed) return
      this.closedByUser = true
      this.wire.terminate()
    })
  }

  execute<A = R>(
    sql: string,
    params?: ReadonlyArray<unknown>,
    options?: ExecuteOptions<A>
  ): Effect.Effect<QueryResult<A>, PgError> {
    // Built when run, not when called: an effect may run many times.
    return Effect.withFiber((fiber) =>
      this.autocommit && this.cleanup === undefined && this.lockUsers === 0 && !this.wire.closed &&
        !this.holds(fiber.getRef(HeldSessions)) && fiber.getRef(Tracer.Tracer) === Tracer.nativeTracer
        ? this.executePipelined(sql, params, options)
        : this.executeNow(sql, params, options)
    )
  }

  /** Query frames of recent scripts / parameterless statements (encoding costs more than the lookup). */
  private readonly queryFrames = new Map<string, ReadonlyArray<Uint8Array>>()

  private queryFrame(sql: string): ReadonlyArray<Uint8Array> {
    let frames = this.queryFrames.get(sql)
    if (frames === undefined) {
      if (this.queryFrames.size >= this.options.preparedMax) this.queryFrames.clear()
      frames = [encodeQuery(sql)]
      this.queryFrames.set(sql, frames)
    }
    return frames
  }

  /**
   * `execute`'s path when nothing stands in the way of pipelining (what
   * `request` + `finish` do, without their checks and span): the request is
   * written now, in the caller's tick.
   */
  private executePipelined<A>(
    sql: string,
    params: ReadonlyArray<unknown> | undefined,
    options: ExecuteOptions<A> | undefined
  ): Effect.Effect<QueryResult<A>, PgError> {
    let frames: ReadonlyArray<Uint8Array>
    let handler: QueryHandler
    if (params === undefined) {
      // the simple protocol: a script, or a statement without parameters
      if (sql.includes("\u0000")) return Effect.fail(nulInQuery())
      frames = this.queryFrame(sql)
      handler = new QueryHandler(sql, undefined)
    } else {
      const planned = this.plan(sql, params, policyOf(options?.prepare))
      if (Result.isFailure(planned)) return Effect.fail(planned.failure)
      const plan = planned.success
      frames = plan.frames
      handler = new QueryHandler(sql, plan.preset, plan.onOutcome)
    }
    const factory = (options?.rowFactory ?? this.rowFactory) as RowFactory.RowFactory<A>
    return Effect.flatMap(
      Effect.uninterruptibleMask((restore) => {
        this.wire.enqueue(handler)
        this.wire.writeAll(frames)
        if (params !== undefined) this.wire.writeAll(EXECUTE_SYNC)
        return restore(handler.await).pipe(Effect.onInterrupt(() => this.abandon(handler)))
      }),
      (outcome) => this.settle(outcome, factory)
    )
  }

  private executeNow<A>(
    sql: string,
    params: ReadonlyArray<unknown> | undefined,
    options: ExecuteOptions<A> | undefined
  ): Effect.Effect<QueryResult<A>, PgError> {
    const factory = (options?.rowFactory ?? this.rowFactory) as RowFactory.RowFactory<A>
    if (params === undefined) {
      if (sql.includes("\u0000")) return Effect.fail(nulInQuery())
      return this.implicitBegin(
        sql,
        this.finish(sql, this.request([encodeQuery(sql)], new QueryHandler(sql, undefined)), factory)
      )
    }
    return this.implicitBegin(sql, this.executeExtended(sql, params, options, factory))
  }

  private executeExtended<A>(
    sql: string,
    params: ReadonlyArray<unknown>,
    options: ExecuteOptions<A> | undefined,
    factory: RowFactory.RowFactory<A>
  ): Effect.Effect<QueryResult<A>, PgError> {
    const planned = this.plan(sql, params, policyOf(options?.prepare))
    if (Result.isFailure(planned)) return Effect.fail(planned.failure)
    const plan = planned.success
    const handler = new QueryHandler(sql, plan.preset, plan.onOutcome)
    return this.finish(sql, this.request([...plan.frames, EXECUTE_ALL, SYNC], handler), factory)
  }

  /**
   * The frames that bind `params` to `sql` (Parse when not prepared, Bind,
   * Describe when the columns are not known yet), following the
   * prepared-statement policy. Execute and Sync are left to the caller.
   */
  private plan(
    sql: string,
    params: ReadonlyArray<unknown>,
    policy: PreparePolicy
  ): Result.Result<Plan, ParameterError | InterfaceError> {
    if (sql.includes("\u0000")) return Result.fail(nulInQuery())
    const converted = toParameters(params)
    if (Result.isFailure(converted)) return Result.fail(converted.failure)
    const parameters = converted.success
    const oids = parameters.map((parameter) => parameter.oid)
    const key = oids.length === 0 ? sql : `${sql}\u0000${oids.join(",")}`
    const frames: Array<Uint8Array> = []
    if (policy === "always" && this.options.pgbouncer) {
      return Result.fail(new InterfaceError({ message: pgbouncerRefusal("a prepared statement ({ prepare: true })") }))
    }
    const cached = policy === "never" ? undefined : this.statements.get(key)
    try {
      if (cached !== undefined) {
        const bind = encodeBind({ portal: "", statement: cached.name, parameters })
        if (Result.isFailure(bind)) return Result.fail(bindError(bind.failure))
        for (const name of this.statements.takeEvicted()) {
          frames.push(PgProtocol.encodeClose({ target: "statement", name }))
        }
        frames.push(withResultFormats(bind.success, cached.formats))
        return Result.succeed({ frames, preset: cached.fields, remember: noRemember, onOutcome: undefined })
      }
      const threshold = this.options.prepareThreshold
      const wanted = policy === "always" ||
        (policy === "auto" && threshold !== null && this.statements.countUse(key) >= threshold)
      const name = (wanted ? this.statements.startPreparing(key) : undefined) ?? ""
      const parse = PgProtocol.encodeParse({ name, query: sql, parameterTypes: oids })
      if (Result.isFailure(parse)) return Result.fail(bindError(parse.failure))
      const bind = encodeBind({ portal: "", statement: name, parameters })
      if (Result.isFailure(bind)) return Result.fail(bindError(bind.failure))
      for (const evicted of this.statements.takeEvicted()) {
        frames.push(PgProtocol.encodeClose({ target: "statement", name: evicted }))
      }
      // First runs ask for text results: the column types are not known
      // before Bind, and text decodes every type. Prepared runs get binary.
      frames.push(parse.success, withResultFormats(bind.success, "text"), DESCRIBE_PORTAL)
      const remember = name === "" ? noRemember : (description: ReadonlyArray<PgProtocol.FieldDescription> | undefined) => {
        if (!this.statements.finishPreparing(key, name) || description === undefined) return
        const fields = description.map((field) => ({ ...field, format: resultFormat(field.dataTypeOid) }))
        this.statements.set(key, { name, fields, formats: fields.map((field) => field.format) })
      }
      return Result.succeed({
        frames,
        preset: undefined,
        remember,
        onOutcome: name === ""
          ? undefined
          : (outcome: QueryOutcome) => remember(outcome.error === undefined ? outcome.description : undefined)
      })
    } catch (cause) {
      // A custom codec may throw instead of returning its failure.
      return Result.fail(bindError(cause instanceof Error ? cause : new Error(String(cause))))
    }
  }

  private finish<A>(
    sql: string,
    run: Effect.Effect<QueryOutcome, ConnectionError | ProtocolError>,
    factory: RowFactory.RowFactory<A>
  ): Effect.Effect<QueryResult<A>, PgError> {
    return traced(
      Effect.flatMap(run, (outcome) => this.settle(outcome, factory)),
      "pgfx.execute",
      { "db.statement": sql, "db.system": "postgresql" }
    )
  }

  /** A statement's outcome as its caller's result: shaped rows or its error, with its notices logged. */
  private settle<A>(outcome: QueryOutcome, factory: RowFactory.RowFactory<A>): Effect.Effect<QueryResult<A>, PgError> {
    for (const result of outcome.results) this.statements.observe(result.commandTag)
    const result: Exit.Exit<QueryResult<A>, PgError> = outcome.error === undefined
      ? shapeResult(outcome, factory)
      : Exit.fail(outcome.error)
    const notices = this.takeNotices(outcome.notices)
    return notices.length === 0 ? result : Effect.andThen(logNotices(notices), result)
  }

  /** The notices of a statement plus any that arrived between statements; each goes to the listeners once. */
  private takeNotices(notices: ReadonlyArray<Diagnostic>): ReadonlyArray<Diagnostic> {
    for (const notice of notices) this.emitNotice(notice)
    if (this.strayNotices.length === 0) return notices
    const all = [...this.strayNotices, ...notices]
    this.strayNotices.length = 0
    return all
  }

  stream<A = R>(
    sql: string,
    params?: ReadonlyArray<unknown>,
    options?: StreamOptions<A>
  ): Stream.Stream<A, PgError> {
    const factory = (options?.rowFactory ?? this.rowFactory) as RowFactory.RowFactory<A>
    const batchSize = options?.batchSize ?? 1000
    const self = this
    return Stream.unwrap(Effect.gen(function*() {
      const held = yield* self.holdScoped
      // planned once the session is held: the frames go out as planned, no other request between
      const planned = self.plan(sql, params ?? [], policyOf(options?.prepare))
      if (Result.isFailure(planned)) return Stream.fail(planned.failure)
      const plan = planned.success
      const portal = new PortalHandler(sql, plan.preset, batchSize)
      yield* Effect.addFinalizer(() =>
        Effect.provideService(self.closePortal(portal), HeldSessions, held).pipe(
          // a Parse whose stream ended early is not remembered, and no longer blocks preparing
          Effect.ensuring(Effect.sync(() => plan.remember(undefined)))
        )
      )
      if (self.wire.closed) return Stream.fail(self.notOpen())
      self.wire.enqueue(portal)
      self.wire.writeAll([...plan.frames, portal.executeFrame, FLUSH])
      let shape: ((values: ReadonlyArray<unknown>) => A) | undefined
      const pull: Pull.Pull<Arr.NonEmptyReadonlyArray<A>, PgError> = Effect.flatMap(
        portal.next,
        (batch): Pull.Pull<Arr.NonEmptyReadonlyArray<A>, PgError> => {
          if (batch === undefined) {
            plan.remember(portal.description)
            return Cause.done()
          }
          shape ??= factory.make(portal.fields.map(toField))
          return Effect.try({
            try: () => batch.map(shape!) as unknown as Arr.NonEmptyReadonlyArray<A>,
            catch: (cause) => cause as DecodeError
          })
        }
      )
      return Stream.fromPull(Effect.succeed(pull))
    })).pipe(Stream.scoped)
  }

  /** With autocommit off, a statement from IDLE first opens a transaction (psycopg's implicit BEGIN). */
  private implicitBegin<A, E>(sql: string, effect: Effect.Effect<A, E>): Effect.Effect<A, E | PgError> {
    return Effect.suspend(() => {
      if (this.autocommit || this.status !== "IDLE" || this.wire.closed || transactionControl.test(sql)) return effect
      return Effect.andThen(
        this.finish("BEGIN", this.request([encodeQuery("BEGIN")], new QueryHandler("BEGIN", undefined)), RowFactory.tuple),
        effect
      )
    })
  }

  executeMany<A = R>(
    sql: string,
    paramsList: ReadonlyArray<ReadonlyArray<unknown>>,
    options?: ExecuteOptions<A>
  ): Effect.Effect<ReadonlyArray<QueryResult<A>>, PgError> {
    if (paramsList.length === 0) return Effect.succeed([])
    return Effect.flatMap(
      this.pipeline(paramsList.map((params) => ({ sql, params })), options),
      (exits): Effect.Effect<ReadonlyArray<QueryResult<A>>, PgError> => {
        const results: Array<QueryResult<A>> = []
        for (const exit of exits) {
          if (Exit.isFailure(exit)) return Effect.failCause(exit.cause)
          results.push(exit.value)
        }
        return Effect.succeed(results)
      }
    )
  }

  pipeline<A = R>(
    statements: ReadonlyArray<PipelineStatement>,
    options?: Pick<ExecuteOptions<A>, "rowFactory">
  ): Effect.Effect<ReadonlyArray<Exit.Exit<QueryResult<A>, PgError>>, ConnectionError | ProtocolError> {
    return Effect.suspend(() => this.pipelineNow(statements, options))
  }

  private pipelineNow<A>(
    statements: ReadonlyArray<PipelineStatement>,
    options: Pick<ExecuteOptions<A>, "rowFactory"> | undefined
  ): Effect.Effect<ReadonlyArray<Exit.Exit<QueryResult<A>, PgError>>, ConnectionError | ProtocolError> {
    const factory = (options?.rowFactory ?? this.rowFactory) as RowFactory.RowFactory<A>
    const frames: Array<Uint8Array> = []
    const slots: Array<PipelineSlot> = []
    for (const statement of statements) {
      const planned = this.plan(statement.sql, statement.params ?? [], "cached")
      // A statement that cannot be sent fails alone, like an aborted one.
      if (Result.isFailure(planned)) {
        const failure = planned.failure
        return Effect.succeed(statements.map((other) =>
          Exit.fail(other === statement ? failure : new PipelineAborted({ message: `not sent: ${failure.message}` }))
        ))
      }
      frames.push(...planned.success.frames, EXECUTE_ALL)
      slots.push({ sql: statement.sql, preset: planned.success.preset })
    }
    frames.push(SYNC)
    const run = this.request(frames, new PipelineHandler(slots))
    return this.implicitBegin(statements[0]?.sql ?? "", run).pipe(
      Effect.map((outcome) =>
        outcome.slots.map((slot): Exit.Exit<QueryResult<A>, PgError> => {
          if (slot._tag !== "Done") return Exit.fail(slot.error)
          this.statements.observe(slot.result.commandTag)
          const shaped = Effect.runSyncExit(shapeResult({
            results: [slot.result],
            error: undefined,
            notices: [],
            status: outcome.status,
            description: slot.description
          }, factory))
          return shaped
        })
      ),
      Effect.catchIf(
        (error): error is ConnectionError | ProtocolError => error._tag === "ConnectionError" || error._tag === "ProtocolError",
        Effect.fail,
        (error) => Effect.succeed(statements.map(() => Exit.fail(error)))
      ),
      Effect.withSpan(
        "pgfx.pipeline",
        { attributes: { "db.system": "postgresql", "db.operation.batch.size": statements.length } },
        noStackTrace
      )
    )
  }

  transaction<A, E, R2>(
    effect: Effect.Effect<A, E, R2>,
    options?: Transaction.TransactionOptions
  ): Effect.Effect<Transaction.BlockResult<A, E>, Exclude<E, Transaction.Rollback> | PgError, R2> {
    return Transaction.run(this, effect, options)
  }

  cursor<A = R>(options?: { readonly rowFactory?: RowFactory.RowFactory<A> | undefined }): Cursor.Cursor<A> {
    return Cursor.make<R, A>(this, options)
  }

  serverCursor<A = R>(
    name: string,
    sql: string,
    params?: ReadonlyArray<unknown>,
    options?: Cursor.ServerCursorOptions<A>
  ): Effect.Effect<Cursor.ServerCursor<A>, PgError, Scope.Scope> {
    return Cursor.declare<R, A>(this, name, sql, params, options)
  }

  listen(...channels: ReadonlyArray<string>): Stream.Stream<Notification, PgError> {
    const self = this
    return Stream.unwrap(Effect.gen(function*() {
      if (self.options.pgbouncer) {
        return yield* new InterfaceError({ message: pgbouncerRefusal("LISTEN") })
      }
      const queue = yield* Queue.unbounded<Notification, PgError | Cause.Done>()
      // The channels this stream is registered on so far, released alike when the stream ends and
      // when a LISTEN fails midway: a registration left behind would make a later listen on the
      // channel skip its LISTEN and stall silently, and keep earlier channels LISTENed.
      const registered: Array<string> = []
      const unregister = Effect.suspend(() =>
        Effect.forEach(registered.splice(0), (channel) => {
          const subscribers = self.listeners.get(channel)
          subscribers?.delete(queue)
          if (subscribers === undefined || subscribers.size > 0) return Effect.void
          self.listeners.delete(channel)
          return self.closed
            ? Effect.void
            : Effect.ignore(self.bounded(self.listenCommand("UNLISTEN", channel), "UNLISTEN"))
        }, { discard: true })
      )
      yield* Effect.acquireRelease(
        Effect.forEach(channels, (channel) => {
          let subscribers = self.listeners.get(channel)
          const first = subscribers === undefined
          if (subscribers === undefined) {
            subscribers = new Set()
            self.listeners.set(channel, subscribers)
          }
          subscribers.add(queue)
          registered.push(channel)
          return first ? self.listenCommand("LISTEN", channel) : Effect.void
        }, { discard: true }).pipe(Effect.onError(() => unregister)),
        () => unregister
      )
      return Stream.fromQueue(queue)
    })).pipe(Stream.scoped)
  }

  /**
   * LISTEN / UNLISTEN as a statement of its own. They take effect at COMMIT,
   * so a LISTEN inside a transaction (a block, or autocommit-off's implicit
   * one) would leave the stream silent until then, and for good after a
   * ROLLBACK: it is refused unless the session is IDLE, and never wrapped in
   * an implicit BEGIN.
   */
  private listenCommand(verb: "LISTEN" | "UNLISTEN", channel: string): Effect.Effect<void, PgError> {
    const sql = `${verb} ${Cursor.quoteIdentifier(channel)}`
    return this.exclusive(Effect.suspend(() => {
      if (sql.includes("\u0000")) return Effect.fail(nulInQuery())
      if (verb === "LISTEN" && this.status !== "IDLE") {
        return Effect.fail(
          new InterfaceError({
            message: `listen inside a transaction (status ${this.status}): LISTEN would only take effect at COMMIT, ` +
              "and never after a ROLLBACK; listen outside transactions"
          })
        )
      }
      return Effect.asVoid(this.finish(sql, this.request([encodeQuery(sql)], new QueryHandler(sql, undefined)), RowFactory.tuple))
    }))
  }

  notify(channel: string, payload = ""): Effect.Effect<void, PgError> {
    return Effect.asVoid(this.execute("SELECT pg_catalog.pg_notify($1, $2)", [channel, payload], { prepare: false }))
  }

  setAutocommit(value: boolean): Effect.Effect<void, InterfaceError> {
    return Effect.suspend(() => {
      if (this.status !== "IDLE" || this.wire.pending > 0) {
        return Effect.fail(new InterfaceError({
          message: `can't change autocommit now: connection in transaction status ${this.info.transactionStatus}`
        }))
      }
      this.autocommit = value
      return Effect.void
    })
  }

  get commit(): Effect.Effect<void, PgError> {
    return Effect.suspend(() => this.status === "IDLE" ? Effect.void : Effect.asVoid(this.execute("COMMIT")))
  }

  get rollback(): Effect.Effect<void, PgError> {
    return Effect.suspend(() => this.status === "IDLE" ? Effect.void : Effect.asVoid(this.execute("ROLLBACK")))
  }

  /**
   * The scope's finalizer: with autocommit off, COMMIT after success and
   * ROLLBACK after failure (psycopg's `with conn:`), then Terminate. A
   * failing COMMIT or ROLLBACK is logged; the scope's own outcome stands.
   */
  closeAfter(exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (this.autocommit || this.wire.closed || this.status === "IDLE") return this.close
      const end = Exit.isSuccess(exit) && this.status === "INTRANS" ? "COMMIT" : "ROLLBACK"
      return this.bounded(this.execute(end), `${end} on close`).pipe(
        Effect.catchCause((cause) =>
          Effect.logWarning(`pgfx: ${end} on close failed`).pipe(Effect.annotateLogs({ cause: Cause.pretty(cause) }))
        ),
        Effect.andThen(this.close)
      )
    })
  }

  get hold(): Effect.Effect<<A, E, R2>(effect: Effect.Effect<A, E, R2>) => Effect.Effect<A, E, R2>, never, Scope.Scope> {
    return Effect.map(this.holdScoped, (held) => <A, E, R2>(effect: Effect.Effect<A, E, R2>) => Effect.provideService(effect, HeldSessions, held))
  }

  /** Takes the session for the life of a scope, unless the fiber already holds it. */
  private get holdScoped(): Effect.Effect<ReadonlySet<ConnectionImpl<unknown>>, never, Scope.Scope> {
    return Effect.flatMap(HeldSessions, (held) => {
      if (this.holds(held)) return Effect.succeed(held)
      const counted = Effect.acquireRelease(
        Effect.sync(() => {
          this.lockUsers++
        }),
        () =>
          Effect.sync(() => {
            this.lockUsers--
          })
      )
      return Effect.as(
        Effect.andThen(Effect.andThen(counted, Semaphore.takeScoped(this.sessionLock, 1)), this.quiet),
        new Set(held).add(this as ConnectionImpl<unknown>)
      )
    })
  }

  /** Ends a portal early or late: Sync when the server is waiting, cancel when it is working. */
  private closePortal(portal: PortalHandler): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (portal.done || this.wire.closed) return Effect.void
      if (portal.stop(this.wire.context)) {
        return portal.await.pipe(
          Effect.timeoutOption(this.options.drainTimeout),
          Effect.flatMap((drained) => drained._tag === "Some" ? Effect.void : this.session.invalidate("a portal did not close in time")),
          Effect.catch(() => Effect.void)
        )
      }
      return this.cancelAndDrain(portal)
    })
  }
}

/** A request whose completion can be told: `ResponseHandler`s, portals. */
type Tracked = ProtocolHandler & { readonly done: boolean }

/**
 * When to prepare: `auto` after `prepareThreshold` runs, `always` now,
 * `never` (no cache at all), `cached` (use a prepared statement when there is
 * one, never create one: for batches whose responses come later).
 */
type PreparePolicy = "auto" | "always" | "never" | "cached"

const policyOf = (prepare: boolean | undefined): PreparePolicy =>
  prepare === undefined ? "auto" : prepare ? "always" : "never"

/** Transaction-control statements never get an implicit BEGIN. */
const transactionControl = /^\s*(BEGIN|START|COMMIT|END|ROLLBACK|ABORT|SAVEPOINT|RELEASE|PREPARE\s+TRANSACTION)\b/i

interface Plan {
  readonly frames: ReadonlyArray<Uint8Array>
  readonly preset: ReadonlyArray<PgProtocol.FieldDescription> | undefined
  /** Caches the statement's columns once it ran successfully (prepared statements only). */
  readonly remember: (description: ReadonlyArray<PgProtocol.FieldDescription> | undefined) => void
  /** `remember` for a QueryHandler's outcome, when there is something to remember. */
  readonly onOutcome: ((outcome: QueryOutcome) => void) | undefined
}

const noRemember = () => {}

/** Spans of every statement: a stack trace each would cost more than the statement. */
const noStackTrace = { captureStackTrace: false } as const

const nulInQuery = () => new ParameterError({ message: "the query text contains a NUL byte" })

const shapeResult = <A>(outcome: QueryOutcome, factory: RowFactory.RowFactory<A>): Exit.Exit<QueryResult<A>, DecodeError> => {
  try {
    const sets = outcome.results
    if (sets.length === 1) {
      // the common case, without the array of one
      const result = shapeSet(sets[0], factory)
      return Exit.succeed({ ...result, results: [result] })
    }
    const results = sets.map((set) => shapeSet(set, factory))
    const first = results[0] ?? { command: "", commandTag: "", rowCount: undefined, rows: [], fields: [], results: [] }
    return Exit.succeed({ ...first, results })
  } catch (cause) {
    // a row factory's schema decoding throws its DecodeError
    return Exit.fail(cause as DecodeError)
  }
}

const shapeSet = <A>(set: QueryOutcome["results"][number], factory: RowFactory.RowFactory<A>): QueryResult<A> => {
  const { command, rowCount } = parseCommandTag(set.commandTag)
  const fields = fieldsOf(set.fields)
  // tuple rows are the decoded arrays themselves: nothing to build
  const rows = factory === RowFactory.tuple ? set.rows as Array<A> : set.rows.map(factory.make(fields))
  return { command, commandTag: set.commandTag, rowCount, rows, fields, results: [] }
}

/** Public `Field`s of a description; a prepared statement's cached description converts once. */
const fieldsOf = (description: ReadonlyArray<PgProtocol.FieldDescription>): ReadonlyArray<Field> => {
  let fields = fieldCache.get(description)
  if (fields === undefined) {
    fields = description.map(toField)
    fieldCache.set(description, fields)
  }
  return fields
}

const fieldCache = new WeakMap<ReadonlyArray<PgProtocol.FieldDescription>, ReadonlyArray<Field>>()

const bindError = (cause: { readonly message: string }) =>
  new ParameterError({ message: `cannot encode parameters: ${cause.message}`, cause })

// -----------------------------------------------------------------------------
// connecting
// -----------------------------------------------------------------------------

interface Attempt {
  readonly endpoint: Endpoint
  readonly hostaddr: string | undefined
}

type AttemptOrFailure = Attempt | { readonly failed: ConnectionError; readonly host: PgConfig.HostSpec }

/**
 * The host list, in order (shuffled with `load_balance_hosts=random`), each
 * entry an effect giving that host's attempts. Like libpq, a host name is
 * resolved only when its turn comes — by the `HostResolver` in force, at
 * every connect (no cache beyond this connect: prefer-standby's second pass
 * reuses the answer); each lookup is bounded by `timeout` (connect_timeout),
 * and a failed, empty or non-IP answer fails that host only.
 */
const resolveAttempts = (config: PgConfig.PgConfig, timeout: Duration.Duration) =>
  Effect.flatMap(HostResolver.HostResolver, (resolver) => {
    const hosts = config.loadBalanceHosts === "random" ? shuffle(config.hosts) : config.hosts
    return Effect.forEach(hosts, (host) => Effect.cached(attemptsOf(host, config, resolver, timeout)))
  })

/** The attempts of one host of the list: one per address of a host name. */
const attemptsOf = (
  host: PgConfig.HostSpec,
  config: PgConfig.PgConfig,
  resolver: HostResolver.HostResolver,
  timeout: Duration.Duration
): Effect.Effect<ReadonlyArray<AttemptOrFailure>> => {
  if (host.host.startsWith("/")) {
    return Effect.succeed([{
      endpoint: { host: host.host, address: `${host.host}/.s.PGSQL.${host.port}`, port: host.port, unix: true },
      hostaddr: undefined
    }])
  }
  if (host.hostaddr !== undefined) {
    return Effect.succeed([{
      endpoint: { host: host.host || host.hostaddr, address: host.hostaddr, port: host.port, unix: false },
      hostaddr: host.hostaddr
    }])
  }
  if (net.isIP(host.host) !== 0) {
    return Effect.succeed([
      { endpoint: { host: host.host, address: host.host, port: host.port, unix: false }, hostaddr: host.host }
    ])
  }
  const unknown = (detail: string, cause?: unknown) =>
    new ConnectionError({
      reason: "UnknownHost",
      message: `could not translate host name "${host.host}" to an address${detail}`,
      address: `${host.host}:${host.port}`,
      cause
    })
  return Effect.suspend(() => resolver.lookup(host.host)).pipe(
    Effect.mapError((cause) => unknown("", cause)),
    Effect.timeoutOrElse({
      duration: timeout,
      orElse: () => Effect.fail(unknown(`: no answer within ${Duration.format(timeout)} (connect_timeout)`))
    }),
    Effect.flatMap((list) => {
      const bad = list.find((address) => net.isIP(address) === 0)
      if (bad !== undefined) return Effect.fail(unknown(`: the resolver answered "${bad}", not an IP address`))
      return list.length === 0 ? Effect.fail(unknown(": no address")) : Effect.succeed(list)
    }),
    Effect.match({
      onFailure: (failed): ReadonlyArray<AttemptOrFailure> => [{ failed, host }],
      onSuccess: (addresses) =>
        (config.loadBalanceHosts === "random" ? shuffle(addresses) : addresses).map((address) => ({
          endpoint: { host: host.host, address, port: host.port, unix: false },
          hostaddr: address
        }))
    })
  )
}

const shuffle = <A>(items: ReadonlyArray<A>): Array<A> => {
  const out = items.slice()
  for (let index = out.length - 1; index > 0; index--) {
    const other = Math.floor(Math.random() * (index + 1))
    ;[out[index], out[other]] = [out[other], out[index]]
  }
  return out
}

/** Whether a fresh session satisfies `target_session_attrs`. */
const checkSessionAttrs = (
  connection: ConnectionImpl<unknown>,
  wanted: PgConfig.TargetSessionAttrs
): Effect.Effect<boolean, PgError> =>
  Effect.gen(function*() {
    if (wanted === "any") return true
    const readOnly = isReadOnly(connection)
    const standby = isStandby(connection)
    switch (wanted) {
      case "read-write":
        return !(yield* readOnly)
      case "read-only":
        return yield* readOnly
      case "primary":
        return !(yield* standby)
      case "standby":
      case "prefer-standby":
        return yield* standby
    }
    return true
  })

// Servers 14+ report both settings at startup; older ones are asked.
const isReadOnly = (connection: ConnectionImpl<unknown>) => {
  const reported = connection.info.parameterStatus("default_transaction_read_only")
  const standby = connection.info.parameterStatus("in_hot_standby")
  if (reported !== undefined && standby !== undefined) return Effect.succeed(reported === "on" || standby === "on")
  return Effect.map(
    connection.execute("SHOW transaction_read_only", undefined, { rowFactory: RowFactory.tuple }),
    (result) => result.rows[0]?.[0] === "on"
  )
}

const isStandby = (connection: ConnectionImpl<unknown>) => {
  const reported = connection.info.parameterStatus("in_hot_standby")
  if (reported !== undefined) return Effect.succeed(reported === "on")
  return Effect.map(
    connection.execute("SELECT pg_catalog.pg_is_in_recovery()", undefined, { rowFactory: RowFactory.tuple }),
    (result) => result.rows[0]?.[0] === true
  )
}

/** Startup on an open socket: returns a ready connection. */
const handshake = (
  transport: { readonly socket: net.Socket; readonly encrypted: boolean },
  endpoint: Endpoint,
  config: PgConfig.PgConfig,
  password: Redacted.Redacted<string> | undefined,
  options: ResolvedOptions
) =>
  Effect.callback<ConnectionImpl<unknown>, ConnectionError | ProtocolError>((resume) => {
    const where = describeEndpoint(endpoint)
    const wire = new Wire(transport.socket, where)
    const machine = makeStartup({
      user: config.user,
      database: config.database,
      password: () => password === undefined ? undefined : Redacted.value(password),
      // With `pgbouncer`, only the parameters PgBouncer tracks (internal/pgbouncer.ts).
      parameters: options.startupParameters,
      address: where,
      channelBinding: config.channelBinding,
      serverCertificate: () => transport.encrypted ? (transport.socket as tls.TLSSocket).getPeerCertificate(true)?.raw : undefined
    })
    let ready: ConnectionImpl<unknown> | undefined
    wire.enqueue({
      onMessage: (message) => {
        const step = machine.onMessage(message)
        switch (step._tag) {
          case "Send":
            wire.write(step.bytes)
            return false
          case "Continue":
            return false
          case "Failed":
            resume(Effect.fail(step.error))
            wire.destroy(step.error)
            return true
          case "Ready":
            ready = new ConnectionImpl(wire, endpoint, step.result, config, options, transport.encrypted, options.rowFactory)
            return true
        }
      },
      onDone: () => {
        if (ready !== undefined) resume(Effect.succeed(ready))
      },
      onClose: (error) => resume(Effect.fail(error))
    })
    wire.write(machine.start())
    return Effect.sync(() => wire.destroy(new ConnectionError({ reason: "NotOpen", message: "connect interrupted" })))
  })

interface ResolvedOptions {
  readonly rowFactory: RowFactory.RowFactory<unknown>
  readonly autocommit: boolean
  readonly prepareThreshold: number | null
  readonly preparedMax: number
  readonly cancelTimeout: Duration.Duration
  readonly drainTimeout: Duration.Duration
  readonly pgbouncer: boolean
  readonly startupParameters: StartupParameters
}

const attemptOne = (
  attempt: Attempt,
  config: PgConfig.PgConfig,
  options: ResolvedOptions,
  timeout: Duration.Duration
): Effect.Effect<ConnectionImpl<unknown>, PgError> => {
  const where = describeEndpoint(attempt.endpoint)
  return Effect.gen(function*() {
    const password = yield* PgConfig.passwordFor(config, {
      host: attempt.endpoint.host,
      port: attempt.endpoint.port,
      hostaddr: attempt.hostaddr
    })
    const socket = yield* openSocket(attempt.endpoint, {
      enable: config.keepalives,
      idleSeconds: config.keepalivesIdle
    })
    const transport = yield* negotiateTls(socket, attempt.endpoint, {
      sslmode: config.sslmode,
      sslrootcert: config.sslrootcert,
      sslcert: config.sslcert,
      sslkey: config.sslkey,
      sslpassword: config.sslpassword === undefined ? undefined : Redacted.value(config.sslpassword)
    }).pipe(Effect.onError(() => Effect.sync(() => socket.destroy())))
    return yield* handshake(transport, attempt.endpoint, config, password, options)
  }).pipe(
    Effect.timeoutOrElse({
      duration: timeout,
      orElse: () =>
        Effect.fail(
          new ConnectionError({
            reason: "Timeout",
            message: `connection to ${where} timed out after ${Duration.format(timeout)} (connect_timeout)`,
            address: where
          })
        )
    })
  )
}

const describeAttempt = (endpoint: Endpoint, hostaddr: string | undefined) =>
  `host: '${endpoint.host}', port: '${endpoint.port}', hostaddr: '${hostaddr ?? ""}'`

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
    const pgbouncer = options?.pgbouncer === true
    const resolved: ResolvedOptions = {
      rowFactory: options?.rowFactory ?? RowFactory.tuple,
      autocommit: options?.autocommit ?? true,
      // Behind PgBouncer a named statement may be missing on (or already exist on) the next server connection.
      prepareThreshold: pgbouncer ? null : options?.prepareThreshold === undefined ? 5 : options.prepareThreshold,
      preparedMax: options?.preparedMax ?? 100,
      cancelTimeout: Duration.fromInputUnsafe(options?.cancelTimeout ?? "5 seconds"),
      drainTimeout: Duration.fromInputUnsafe(options?.drainTimeout ?? "5 seconds"),
      pgbouncer,
      startupParameters: yield* Effect.fromResult(startupParameters(config, pgbouncer))
    }
    const timeout = config.connectTimeout !== undefined && config.connectTimeout > 0
      ? Duration.seconds(config.connectTimeout)
      : Duration.fromInputUnsafe(options?.defaultConnectTimeout ?? "30 seconds")
    // Interruptible: every step of an attempt cleans up its own socket.
    const connection = yield* Effect.acquireRelease(
      openFirst(config, resolved, timeout),
      (connection, exit) => connection.closeAfter(exit),
      { interruptible: true }
    )
    return connection as ConnectionImpl<unknown> as Connection<R>
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

const openFirst = (config: PgConfig.PgConfig, options: ResolvedOptions, timeout: Duration.Duration) =>
  Effect.gen(function*() {
    const hosts = yield* resolveAttempts(config, timeout)
    const failures: Array<{ readonly label: string; readonly error: PgError }> = []
    const passes: ReadonlyArray<PgConfig.TargetSessionAttrs> = config.targetSessionAttrs === "prefer-standby"
      ? ["standby", "any"]
      : [config.targetSessionAttrs]
    for (const wanted of passes) {
      for (const host of hosts) {
        // resolved when its turn comes, once per connect
        for (const attempt of yield* host) {
          if ("failed" in attempt) {
            if (wanted === passes[0]) {
              failures.push({ label: describeAttempt({ host: attempt.host.host, port: attempt.host.port, address: "", unix: false }, undefined), error: attempt.failed })
            }
            continue
          }
          const label = describeAttempt(attempt.endpoint, attempt.hostaddr)
          const opened = yield* Effect.result(attemptOne(attempt, config, options, timeout))
          if (Result.isFailure(opened)) {
            failures.push({ label, error: opened.failure })
            continue
          }
          const connection = opened.success
          const accepted = yield* Effect.result(checkSessionAttrs(connection, wanted)).pipe(
            Effect.onInterrupt(() => connection.close)
          )
          if (Result.isSuccess(accepted) && accepted.success) return connection
          yield* connection.close
          failures.push({
            label,
            error: Result.isFailure(accepted) ? accepted.failure : new ConnectionError({
              reason: "TargetSessionAttrs",
              message: `server does not satisfy target_session_attrs=${wanted}`,
              address: describeEndpoint(attempt.endpoint)
            })
          })
        }
      }
    }
    return yield* Effect.fail(aggregate(failures))
  })

/** One failure is returned as it is; several are summarised like psycopg does. */
const aggregate = (failures: ReadonlyArray<{ readonly label: string; readonly error: PgError }>): PgError => {
  if (failures.length === 0) {
    return new ConnectionError({ reason: "UnknownHost", message: "no host to connect to" })
  }
  const last = failures[failures.length - 1].error
  if (failures.length === 1) return last
  const message = `${last.message}\nMultiple connection attempts failed. All failures were:\n` +
    failures.map((failure) => `- ${failure.label}: ${failure.error.message}`).join("\n")
  return new ConnectionError({
    reason: last._tag === "ConnectionError" ? last.reason : "Rejected",
    message,
    address: last._tag === "ConnectionError" ? last.address : undefined,
    sqlState: last._tag === "ConnectionError" ? last.sqlState : undefined,
    cause: failures.map((failure) => failure.error)
  })
}

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
