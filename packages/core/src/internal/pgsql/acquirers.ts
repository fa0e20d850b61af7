/**
 * Where `PgSql` gets its connections: one shared connection (held by the
 * session's own hold for transactions, streams and `reserve`), a scoped
 * checkout per statement, or a pool's shared and checked-out connections.
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import * as Semaphore from "effect/Semaphore"
import type * as SqlConnection from "effect/sql/SqlConnection"
import type * as SqlError from "effect/sql/SqlError"
import * as Connection from "../../Connection.ts"
import * as PgConfig from "../../PgConfig.ts"
import * as RowFactory from "../../RowFactory.ts"
import { acquireError, PgSqlConnection } from "./sqlConnection.ts"

/**
 * What `PgSql` needs of a pool; `@pgfx/pool`'s `ConnectionPool` is one.
 */
export interface SharedPool<E = unknown> {
  /** A scoped exclusive checkout. */
  readonly connection: Effect.Effect<Connection.Connection<any>, E, Scope.Scope>
  /** Runs `f` on a connection shared with concurrent callers (statements pipelined). */
  readonly share: <A, E2, R>(
    f: (connection: Connection.Connection<any>) => Effect.Effect<A, E2, R>
  ) => Effect.Effect<A, E | E2, R>
}

export interface Acquirers {
  readonly acquirer: SqlConnection.Acquirer
  readonly borrower: SqlConnection.Borrower | undefined
  /** A connection for `listen` streams, for the life of the scope. */
  readonly listener: Effect.Effect<Connection.Connection<unknown>, SqlError.SqlError, Scope.Scope>
  readonly spanAttributes: ReadonlyArray<readonly [string, unknown]>
}

const isResolvedConfig = (settings: Connection.ConnectionSettings): settings is PgConfig.PgConfig =>
  typeof settings === "object" && Array.isArray((settings as PgConfig.PgConfig).hosts) &&
  typeof (settings as PgConfig.PgConfig).sslmode === "string"

/**
 * A long-lived connection of the client, opened in a child of the client's
 * scope and replaced (the lost one's scope closed) when it is found closed.
 */
const makeSlot = (
  parent: Scope.Scope,
  config: PgConfig.PgConfig,
  options: Connection.ConnectOptions<unknown>,
  batchSize: number | undefined
) => {
  let current: { readonly connection: PgSqlConnection; readonly scope: Scope.Closeable } | undefined
  // one reconnect at a time: fibers that find the connection lost wait for the same new one
  const reconnecting = Semaphore.makeUnsafe(1)
  // Only the wait for the server is interruptible.
  const reopen = Effect.uninterruptibleMask((restore) =>
    Effect.gen(function*() {
      if (current !== undefined && !current.connection.pg.closed) return current.connection
      if (current !== undefined) yield* Scope.close(current.scope, Exit.void)
      current = undefined
      const scope = yield* Scope.fork(parent)
      const pg = yield* restore(Connection.connect(config, options)).pipe(
        Scope.provide(scope),
        Effect.onError(() => Scope.close(scope, Exit.void)),
        Effect.mapError((error) => acquireError(error, "connect"))
      )
      current = { connection: new PgSqlConnection(pg, batchSize), scope }
      return current.connection
    })
  )
  const get: Effect.Effect<PgSqlConnection, SqlError.SqlError> = Effect.suspend(() =>
    current !== undefined && !current.connection.pg.closed ? Effect.succeed(current.connection) : reconnecting.withPermit(reopen)
  )
  return get
}

/**
 * One shared connection: a statement borrows it (pipelined with the other
 * fibers' statements, as the session does for any caller), a transaction,
 * stream or `reserve` holds it for its scope with the session's own hold, so
 * statements sent on the same connection by any other fiber — through this
 * client or directly — wait until it ends. A lost connection is replaced
 * before use. `listen` streams share a second connection, opened on first
 * use, so they neither hold the shared one nor slip a LISTEN into someone's
 * transaction.
 */
export const sharedAcquirers = (
  settings: Connection.ConnectionSettings,
  connectOptions: Connection.ConnectOptions<unknown> | undefined,
  batchSize: number | undefined
): Effect.Effect<Acquirers, SqlError.SqlError, Scope.Scope> =>
  Effect.gen(function*() {
    const config = isResolvedConfig(settings)
      ? settings
      : yield* Effect.mapError(PgConfig.make(settings), (error) => acquireError(error, "connect"))
    const parent = yield* Effect.scope
    const options: Connection.ConnectOptions<unknown> = { ...connectOptions, rowFactory: RowFactory.tuple, autocommit: true }
    const available = makeSlot(parent, config, options, batchSize)
    const listening = makeSlot(parent, config, options, batchSize)
    const first = yield* available
    const info = first.pg.info
    return {
      acquirer: Effect.flatMap(
        available,
        (connection) => Effect.map(connection.pg.session.hold, (hold) => new PgSqlConnection(connection.pg, batchSize, hold))
      ),
      borrower: (f) => Effect.flatMap(available, f),
      listener: Effect.map(listening, (connection) => connection.pg),
      spanAttributes: [
        ["db.namespace", info.database],
        ["server.address", info.host],
        ["server.port", info.port]
      ]
    }
  })

export const checkoutAcquirers = <E>(
  acquire: Effect.Effect<Connection.Connection<unknown>, E, Scope.Scope>,
  batchSize: number | undefined
): Acquirers => {
  const checkout = Effect.mapError(acquire, (error) => acquireError(error, "acquireConnection"))
  return {
    acquirer: Effect.map(checkout, (pg) => new PgSqlConnection(pg, batchSize)),
    borrower: undefined,
    listener: checkout,
    spanAttributes: []
  }
}

/** A statement's own failure, told apart from the pool's (checkout) failures. */
class StatementFailure {
  constructor(readonly error: unknown) {}
}

/**
 * Over a pool: each statement outside a transaction runs on a shared
 * connection (pipelined with the other fibers' statements), transactions
 * and streams check one out.
 */
export const poolAcquirers = <E>(pool: SharedPool<E>, batchSize: number | undefined): Acquirers => {
  const checkout = checkoutAcquirers(pool.connection, batchSize)
  const wrappers = new WeakMap<Connection.Connection<unknown>, PgSqlConnection>()
  const wrap = (pg: Connection.Connection<unknown>): PgSqlConnection => {
    let wrapper = wrappers.get(pg)
    if (wrapper === undefined) {
      wrapper = new PgSqlConnection(pg, batchSize)
      wrappers.set(pg, wrapper)
    }
    return wrapper
  }
  return {
    ...checkout,
    borrower: <A, E2, R>(f: (connection: SqlConnection.Connection) => Effect.Effect<A, E2, R>) =>
      Effect.mapError(
        pool.share((pg) => Effect.mapError(f(wrap(pg)), (error) => new StatementFailure(error))),
        (error): E2 | SqlError.SqlError =>
          error instanceof StatementFailure ? error.error as E2 : acquireError(error, "acquireConnection")
      )
  }
}
