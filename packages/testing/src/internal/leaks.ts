/**
 * `PgTest.assertNoLeaks`: what a test may not leave behind in its database.
 *
 * @internal
 */
import { Connection, type PgError, RowFactory } from "@pgfx/core"
import { ConnectionPool } from "@pgfx/pool"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { TestDatabase } from "../TestDatabase.ts"
import { viewCheckouts } from "./poolView.ts"

/**
 * A session of the test's database that is busy or inside a transaction.
 *
 * @since 0.1.0
 */
export interface LeakedSession {
  /** The session's backend pid. */
  readonly pid: number
  /** `active`, `idle in transaction`, `idle in transaction (aborted)`. */
  readonly state: string
  /** The last statement. */
  readonly query: string
  /** The session's `application_name`. */
  readonly applicationName: string
  /** When its transaction began (`xact_start`), `null` outside a transaction. */
  readonly transactionStartedAt: string | null
}

/**
 * A server cursor still open on one of the test's connections.
 *
 * @since 0.1.0
 */
export interface LeakedCursor {
  /** The cursor's name (`pg_cursors.name`). */
  readonly name: string
  /** The statement that declared it. */
  readonly statement: string
  /** Declared `WITH HOLD`. */
  readonly holdable: boolean
  /** The session it is open on. */
  readonly backendPid: number
}

/**
 * An advisory lock held by a session of the test's database.
 *
 * @since 0.1.0
 */
export interface LeakedLock {
  /** The session holding the lock. */
  readonly pid: number
  /** `classid:objid` (two-key form) or the 64-bit key. */
  readonly key: string
}

/**
 * Everything found.
 *
 * @since 0.1.0
 */
export interface Leaks {
  /** Sessions busy or inside a transaction. */
  readonly sessions: ReadonlyArray<LeakedSession>
  /** Server cursors still open. */
  readonly cursors: ReadonlyArray<LeakedCursor>
  /** Advisory locks still held. */
  readonly advisoryLocks: ReadonlyArray<LeakedLock>
  /** Connections of the test's pool checked out and clients waiting; `undefined` without a pool. */
  readonly pool: {
    /** Connections still checked out. */
    readonly checkedOut: number
    /** Clients still waiting for one. */
    readonly waiting: number
  } | undefined
}

/**
 * `assertNoLeaks` found something left behind. `leaks` has the details; the message lists them.
 *
 * @since 0.1.0
 */
export class LeakDetected extends Data.TaggedError("LeakDetected")<{
  /** One line per leak. */
  readonly message: string
  /** The test database. */
  readonly database: string
  /** What was found. */
  readonly leaks: Leaks
}> {}

/**
 * Options of `assertNoLeaksWith`.
 *
 * @since 0.1.0
 */
export interface AssertNoLeaksOptions {
  /** How long to wait for sessions and pool checkouts to settle (default 2 seconds). */
  readonly within?: Duration.Input | undefined
  /** Also check out the pool's idle connections to look for open cursors on them (default true). */
  readonly poolCursors?: boolean | undefined
}

const isEmpty = (leaks: Leaks): boolean =>
  leaks.sessions.length === 0 && leaks.cursors.length === 0 && leaks.advisoryLocks.length === 0 &&
  (leaks.pool === undefined || (leaks.pool.checkedOut === 0 && leaks.pool.waiting === 0))

const describeLeaks = (database: string, leaks: Leaks): string => {
  const lines = [`the test left things behind in database ${database}:`]
  for (const s of leaks.sessions) {
    lines.push(`- session ${s.pid} (${s.applicationName || "no application_name"}) is ${s.state}; last statement: ${s.query.slice(0, 200)}`)
  }
  for (const c of leaks.cursors) {
    lines.push(`- server cursor ${c.name} open on session ${c.backendPid}${c.holdable ? " (WITH HOLD)" : ""}: ${c.statement.slice(0, 200)}`)
  }
  for (const l of leaks.advisoryLocks) lines.push(`- advisory lock ${l.key} held by session ${l.pid}`)
  if (leaks.pool !== undefined && (leaks.pool.checkedOut > 0 || leaks.pool.waiting > 0)) {
    lines.push(`- the pool has ${leaks.pool.checkedOut} connection(s) checked out and ${leaks.pool.waiting} client(s) waiting`)
  }
  return lines.join("\n")
}

const text = (value: unknown): string => (value === null || value === undefined ? "" : String(value))

/** Sessions, advisory locks and the pool, as seen now. */
const snapshot = (
  admin: Connection.Connection,
  database: string,
  expectedInTransaction: number | undefined,
  pool: Option.Option<ConnectionPool.ConnectionPool>
): Effect.Effect<Leaks, PgError.PgError> =>
  Effect.gen(function*() {
    const activity = yield* admin.execute(
      `SELECT pid, state, query, application_name, xact_start::text AS xact_start
         FROM pg_stat_activity
        WHERE datname = $1 AND backend_type = 'client backend' AND pid <> pg_backend_pid()
          AND (state = 'active' OR state LIKE 'idle in transaction%')
        ORDER BY pid`,
      [database],
      { rowFactory: RowFactory.record }
    )
    const sessions = activity.rows
      .map((row): LeakedSession => ({
        pid: Number(row.pid),
        state: text(row.state),
        query: text(row.query),
        applicationName: text(row.application_name),
        transactionStartedAt: row.xact_start === null ? null : text(row.xact_start)
      }))
      // the connection of a test isolated in a transaction is in it on purpose
      .filter((s) => !(s.pid === expectedInTransaction && s.state.startsWith("idle in transaction")))
    const locks = yield* admin.execute(
      `SELECT l.pid, l.classid, l.objid, l.objsubid
         FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'advisory' AND l.granted AND a.datname = $1
        ORDER BY l.pid`,
      [database],
      { rowFactory: RowFactory.record }
    )
    const advisoryLocks = locks.rows.map((row): LeakedLock => ({
      pid: Number(row.pid),
      key: Number(row.objsubid) === 1
        ? String((BigInt(Number(row.classid)) << 32n) | BigInt(Number(row.objid)))
        : `${text(row.classid)}:${text(row.objid)}`
    }))
    let poolState: Leaks["pool"] = undefined
    if (Option.isSome(pool)) {
      const view = viewCheckouts(pool.value)
      if (view !== undefined) poolState = { checkedOut: view, waiting: 0 }
      else {
        const stats = yield* pool.value.stats
        poolState = { checkedOut: Math.max(0, stats.pool_size - stats.pool_available), waiting: stats.requests_waiting }
      }
    }
    return { sessions, cursors: [], advisoryLocks, pool: poolState }
  })

const cursorsOf = (connection: Connection.Connection): Effect.Effect<ReadonlyArray<LeakedCursor>, PgError.PgError> =>
  Effect.map(
    connection.execute("SELECT name, statement, is_holdable FROM pg_cursors ORDER BY name", undefined, {
      rowFactory: RowFactory.record
    }),
    (result) =>
      result.rows.map((row) => ({
        name: text(row.name),
        statement: text(row.statement),
        holdable: row.is_holdable === true,
        backendPid: connection.info.backendPid
      }))
  )

/** Open cursors on the pool's idle connections (checked out all at once, then returned). */
const poolCursors = (pool: ConnectionPool.ConnectionPool): Effect.Effect<ReadonlyArray<LeakedCursor>> =>
  Effect.scoped(
    Effect.gen(function*() {
      const stats = yield* pool.stats
      const connections = yield* Effect.forEach(
        Array.from({ length: stats.pool_available }, (_, i) => i),
        () => Effect.option(pool.connectionWith({ timeout: "1 second" })),
        { concurrency: "unbounded" }
      )
      const found: Array<LeakedCursor> = []
      for (const connection of connections) {
        if (Option.isNone(connection)) continue
        found.push(...(yield* Effect.orElseSucceed(cursorsOf(connection.value), () => [])))
      }
      return found
    })
  )

/** Waits in real time (tests under @effect/vitest's `it.effect` run on a TestClock). */
const realSleep = (ms: number): Effect.Effect<void> => Effect.promise(() => new Promise((resolve) => setTimeout(resolve, ms)))

/** The check; `expectedInTransaction`: the backend pid of a transaction-isolated test's connection. */
export const assertNoLeaks = (
  admin: Connection.Connection,
  expectedInTransaction: (connection: Connection.Connection) => number | undefined,
  options?: AssertNoLeaksOptions
): Effect.Effect<void, LeakDetected | PgError.PgError, Connection.PgConnection | TestDatabase> =>
  Effect.gen(function*() {
    const database = yield* TestDatabase
    const connection = yield* Connection.PgConnection
    const pool = yield* Effect.serviceOption(ConnectionPool.ConnectionPool)
    const expected = expectedInTransaction(connection)
    const deadline = Date.now() + Duration.toMillis(Duration.fromInputUnsafe(options?.within ?? "2 seconds"))
    let leaks = yield* snapshot(admin, database.name, expected, pool)
    while (!isEmpty(leaks) && Date.now() < deadline) {
      yield* realSleep(25)
      leaks = yield* snapshot(admin, database.name, expected, pool)
    }
    const cursors = connection.closed ? [] : [...(yield* cursorsOf(connection))]
    if (
      Option.isSome(pool) && viewCheckouts(pool.value) === undefined && (options?.poolCursors ?? true) &&
      leaks.pool !== undefined && leaks.pool.checkedOut === 0
    ) {
      cursors.push(...(yield* poolCursors(pool.value)))
    }
    leaks = { ...leaks, cursors }
    if (!isEmpty(leaks)) {
      return yield* Effect.fail(new LeakDetected({ message: describeLeaks(database.name, leaks), database: database.name, leaks }))
    }
  })
