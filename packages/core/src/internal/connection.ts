/**
 * The implementation of `Connection` (Connection.ts has the interface and
 * `connect`).
 */
import type * as PgProtocol from "@effect/sql-pg/PgProtocol"
import type * as Arr from "effect/Array"
import * as Cause from "effect/Cause"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Pull from "effect/Pull"
import * as Result from "effect/Result"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Cursor from "../Cursor.ts"
import * as PgConfig from "../PgConfig.ts"
import {
  type ConnectionError,
  type DecodeError,
  type Diagnostic,
  InterfaceError,
  type PgError,
  PipelineAborted,
  type ProtocolError
} from "../PgError.ts"
import * as RowFactory from "../RowFactory.ts"
import * as Transaction from "../Transaction.ts"
import type { Executor } from "./executor.ts"
import { toField } from "./field.ts"
import { encodeQuery } from "./frontend.ts"
import { refusal as pgbouncerRefusal, type StartupParameters } from "./pgbouncer.ts"
import { PipelineHandler, type PipelineSlot } from "./pipeline.ts"
import { PortalHandler } from "./portal.ts"
import { QueryHandler, type QueryOutcome } from "./query.ts"
import type {
  ConnectionInfo,
  ExecuteOptions,
  Notification,
  PipelineStatement,
  QueryResult,
  StreamOptions,
  TransactionStatus
} from "./results.ts"
import { Listeners } from "./listen.ts"
import { SessionImpl } from "./session.ts"
import { shapeResult } from "./shape.ts"
import type { Endpoint } from "./socket.ts"
import { traced } from "./span.ts"
import type { StartupResult } from "./startup.ts"
import { StatementCache } from "./statementCache.ts"
import {
  EXECUTE_ALL,
  EXECUTE_SYNC,
  FLUSH,
  nulInQuery,
  planStatement,
  policyOf,
  type PreparePolicy,
  SYNC
} from "./statementPlan.ts"
import type { Wire } from "./wire.ts"

/** `connect`'s options with their defaults applied. */
export interface ResolvedOptions {
  readonly rowFactory: RowFactory.RowFactory<unknown>
  readonly autocommit: boolean
  readonly prepareThreshold: number | null
  readonly preparedMax: number
  readonly cancelTimeout: Duration.Duration
  readonly drainTimeout: Duration.Duration
  readonly pgbouncer: boolean
  readonly startupParameters: StartupParameters
}

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

/** Transaction-control statements never get an implicit BEGIN. */
const transactionControl = /^\s*(BEGIN|START|COMMIT|END|ROLLBACK|ABORT|SAVEPOINT|RELEASE|PREPARE\s+TRANSACTION)\b/i

/** Spans of every statement: a stack trace each would cost more than the statement. */
const noStackTrace = { captureStackTrace: false } as const

/**
 * An open connection: statements (simple and extended protocol, prepared
 * statements, pipelines, portals), notices, LISTEN, autocommit and the
 * session's transaction status. Who may write when is the session's
 * (session.ts); connecting is connect.ts's.
 */
export class ConnectionImpl<R> implements Executor<R> {
  private readonly statements: StatementCache
  private readonly parameters: Map<string, string>
  private status: TransactionStatus
  private closedByUser = false
  private readonly noticeListeners = new Set<(notice: Diagnostic) => void>()
  private readonly strayNotices: Array<Diagnostic> = []
  private readonly listeners = new Listeners({
    command: (verb, channel) => this.listenCommand(verb, channel),
    bounded: (effect, what) => this.session.bounded(effect, what),
    closed: () => this.closed
  })
  readonly info: ConnectionInfo
  readonly session: SessionImpl

  constructor(
    private readonly wire: Wire,
    endpoint: Endpoint,
    startup: StartupResult,
    config: PgConfig.PgConfig,
    private readonly options: ResolvedOptions,
    encrypted: boolean,
    readonly rowFactory: RowFactory.RowFactory<R>
  ) {
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
    this.session = new SessionImpl(wire, endpoint, {
      backendPid: startup.pid,
      secret: startup.secret,
      dsn: this.info.dsn,
      autocommit: options.autocommit,
      cancelTimeout: options.cancelTimeout,
      drainTimeout: options.drainTimeout
    })
    wire.setHooks({
      onNotification: (message) => {
        this.listeners.deliver(message.channel, message.payload, message.pid)
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
      onClose: (error) => this.listeners.failAll(error)
    })
  }

  get autocommit(): boolean {
    return this.session.autocommit
  }

  get cancel(): Effect.Effect<void, ConnectionError> {
    return this.session.cancel
  }

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
      this.session.canPipeline(fiber)
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
      const planned = this.planOf(sql, params, policyOf(options?.prepare))
      if (Result.isFailure(planned)) return Effect.fail(planned.failure)
      const plan = planned.success
      frames = plan.frames
      handler = new QueryHandler(sql, plan.preset, plan.onOutcome)
    }
    const factory = (options?.rowFactory ?? this.rowFactory) as RowFactory.RowFactory<A>
    return Effect.flatMap(
      Effect.uninterruptibleMask((restore) =>
        this.session.pipelined(frames, handler, restore, params === undefined ? undefined : EXECUTE_SYNC)
      ),
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
        this.finish(sql, this.session.request([encodeQuery(sql)], new QueryHandler(sql, undefined)), factory)
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
    const planned = this.planOf(sql, params, policyOf(options?.prepare))
    if (Result.isFailure(planned)) return Effect.fail(planned.failure)
    const plan = planned.success
    const handler = new QueryHandler(sql, plan.preset, plan.onOutcome)
    return this.finish(sql, this.session.request([...plan.frames, EXECUTE_ALL, SYNC], handler), factory)
  }

  private planOf(sql: string, params: ReadonlyArray<unknown>, policy: PreparePolicy) {
    return planStatement(this.statements, this.options, sql, params, policy)
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
      const hold = yield* self.session.hold
      // planned once the session is held: the frames go out as planned, no other request between
      const planned = self.planOf(sql, params ?? [], policyOf(options?.prepare))
      if (Result.isFailure(planned)) return Stream.fail(planned.failure)
      const plan = planned.success
      const portal = new PortalHandler(sql, plan.preset, batchSize)
      yield* Effect.addFinalizer(() =>
        hold.run(self.closePortal(portal)).pipe(
          // a Parse whose stream ended early is not remembered, and no longer blocks preparing
          Effect.ensuring(Effect.sync(() => plan.remember(undefined)))
        )
      )
      if (self.wire.closed) return Stream.fail(self.session.notOpen())
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
        this.finish("BEGIN", this.session.request([encodeQuery("BEGIN")], new QueryHandler("BEGIN", undefined)), RowFactory.tuple),
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
      const planned = this.planOf(statement.sql, statement.params ?? [], "cached")
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
    const run = this.session.request(frames, new PipelineHandler(slots))
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
    if (this.options.pgbouncer) return Stream.fail(new InterfaceError({ message: pgbouncerRefusal("LISTEN") }))
    return this.listeners.stream(channels)
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
    return this.session.exclusive(Effect.suspend(() => {
      if (sql.includes("\u0000")) return Effect.fail(nulInQuery())
      if (verb === "LISTEN" && this.status !== "IDLE") {
        return Effect.fail(
          new InterfaceError({
            message: `listen inside a transaction (status ${this.status}): LISTEN would only take effect at COMMIT, ` +
              "and never after a ROLLBACK; listen outside transactions"
          })
        )
      }
      return Effect.asVoid(this.finish(sql, this.session.request([encodeQuery(sql)], new QueryHandler(sql, undefined)), RowFactory.tuple))
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
      this.session.autocommit = value
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
      return this.session.bounded(this.execute(end), `${end} on close`).pipe(
        Effect.catchCause((cause) =>
          Effect.logWarning(`pgfx: ${end} on close failed`).pipe(Effect.annotateLogs({ cause: Cause.pretty(cause) }))
        ),
        Effect.andThen(this.close)
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
      return this.session.interruptions.cancelAndDrain(portal)
    })
  }
}
