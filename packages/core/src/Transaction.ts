/**
 * Transaction blocks (psycopg's `conn.transaction()`), as an Effect
 * combinator on a connection.
 *
 * - The outermost block sends BEGIN (with isolation level, read only,
 *   deferrable); it COMMITs when the effect succeeds and ROLLBACKs when it
 *   fails, dies or is interrupted — an interrupted statement is cancelled and
 *   drained first, by the connection.
 * - Nested blocks are savepoints: an inner failure rolls back to its
 *   savepoint (ROLLBACK TO, then RELEASE) and leaves the outer work intact.
 * - `Transaction.rollback` ends the innermost block without an error.
 * - The block holds the connection: other fibers' statements wait; the
 *   block's own fibers share it.
 * - A failing COMMIT surfaces as its typed error; a failing ROLLBACK is
 *   logged and never replaces the user's error.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Schedule from "effect/Schedule"
import type { Executor } from "./internal/executor.ts"
import { clientDiagnostic, fromDiagnostic, type PgError } from "./PgError.ts"

/**
 * psycopg's isolation levels.
 *
 * @since 0.1.0
 */
export type IsolationLevel = "read uncommitted" | "read committed" | "repeatable read" | "serializable"

/**
 * How the outermost block begins.
 *
 * @since 0.1.0
 */
export interface TransactionOptions {
  /** `BEGIN ISOLATION LEVEL …`; the server's default (`default_transaction_isolation`) when unset. */
  readonly isolationLevel?: IsolationLevel | undefined
  /** `READ ONLY` / `READ WRITE`; the server's default when unset. */
  readonly readOnly?: boolean | undefined
  /** `DEFERRABLE` / `NOT DEFERRABLE` (matters for serializable read-only transactions). */
  readonly deferrable?: boolean | undefined
}

/**
 * The signal that ends a block with a rollback and no error (psycopg's
 * `Rollback`). The block then returns `undefined`. Fail with
 * `Transaction.rollback`.
 *
 * @since 0.1.0
 */
export class Rollback extends Data.TaggedError("Rollback")<{}> {}

/**
 * Fails the innermost transaction block with the rollback signal: the block
 * rolls back (to its savepoint when nested), returns `undefined`, and the
 * code after it goes on.
 *
 * @example
 * ```ts
 * const result = yield* conn.transaction(Effect.gen(function*() {
 *   yield* conn.execute("INSERT INTO audit (event) VALUES ($1)", ["dry run"])
 *   if (dryRun) return yield* Transaction.rollback
 *   return "committed"
 * })) // "committed", or undefined after a rollback
 * ```
 *
 * @since 0.1.0
 */
export const rollback: Effect.Effect<never, Rollback> = Effect.fail(new Rollback())

/**
 * The value of a block: `A`, or `A | undefined` when the effect may signal
 * `Rollback`.
 *
 * @since 0.1.0
 */
export type BlockResult<A, E> = [Extract<E, Rollback>] extends [never] ? A : A | undefined

/** Depth of open blocks per connection, in the current fiber context. */
const Depths = Context.Reference<ReadonlyMap<object, number>>("@pgfx/core/Transaction/Depths", {
  defaultValue: () => new Map()
})

/**
 * The BEGIN statement for the options.
 *
 * @example
 * ```ts
 * Transaction.beginStatement({ isolationLevel: "serializable", readOnly: true })
 * // "BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY"
 * ```
 *
 * @since 0.1.0
 */
export const beginStatement = (options?: TransactionOptions): string => {
  let sql = "BEGIN"
  if (options?.isolationLevel !== undefined) sql += ` ISOLATION LEVEL ${options.isolationLevel.toUpperCase()}`
  if (options?.readOnly !== undefined) sql += options.readOnly ? " READ ONLY" : " READ WRITE"
  if (options?.deferrable !== undefined) sql += options.deferrable ? " DEFERRABLE" : " NOT DEFERRABLE"
  return sql
}

const isRollback = (error: unknown): error is Rollback =>
  typeof error === "object" && error !== null && (error as { _tag?: unknown })._tag === "Rollback"

/**
 * Runs `effect` in a transaction block on `conn` (a savepoint when a block of
 * this fiber is already open on it): COMMIT when it succeeds; ROLLBACK when
 * it fails, dies or is interrupted, and the error goes on.
 * `conn.transaction(effect, options)` is the same.
 *
 * @example
 * ```ts
 * // psycopg: with conn.transaction(): ...
 * yield* Transaction.run(conn, Effect.gen(function*() {
 *   yield* conn.execute("UPDATE accounts SET balance = balance - $1 WHERE id = $2", [100, from])
 *   yield* conn.execute("UPDATE accounts SET balance = balance + $1 WHERE id = $2", [100, to])
 * }), { isolationLevel: "repeatable read" })
 * ```
 *
 * @since 0.1.0
 */
export const run = <R0, A, E, R>(
  conn: Executor<R0>,
  effect: Effect.Effect<A, E, R>,
  options?: TransactionOptions
): Effect.Effect<BlockResult<A, E>, Exclude<E, Rollback> | PgError, R> =>
  conn.session.exclusive(Effect.flatMap(Depths, (depths) => {
    const depth = depths.get(conn) ?? 0
    // A block on a connection already in a transaction (autocommit off, or an
    // explicit BEGIN) is a savepoint inside it, as in psycopg.
    const outer = depth === 0 && conn.info.transactionStatus === "IDLE"
    const savepoint = `pgfx_savepoint_${depth + 1}`
    const begin = outer ? beginStatement(options) : `SAVEPOINT ${savepoint}`
    const inner = Effect.provideService(effect, Depths, new Map(depths).set(conn, depth + 1))
    return Effect.uninterruptibleMask((restore) =>
      Effect.flatMap(conn.execute(begin), () =>
        Effect.flatMap(Effect.exit(restore(inner)), (exit): Effect.Effect<BlockResult<A, E>, Exclude<E, Rollback> | PgError> => {
          if (Exit.isSuccess(exit)) {
            return Effect.as(commit(conn, outer, savepoint), exit.value as BlockResult<A, E>)
          }
          const signalled = Cause.findErrorOption(exit.cause)
          if (signalled._tag === "Some" && isRollback(signalled.value)) {
            return Effect.as(rollbackBlock(conn, outer, savepoint), undefined as BlockResult<A, E>)
          }
          return Effect.andThen(rollbackBlock(conn, outer, savepoint), exit as Exit.Exit<never, Exclude<E, Rollback>>)
        }))
    )
  }))

const commit = <R0>(conn: Executor<R0>, outer: boolean, savepoint: string): Effect.Effect<void, PgError> => {
  if (!outer) return Effect.asVoid(conn.execute(`RELEASE SAVEPOINT ${savepoint}`))
  return Effect.flatMap(conn.execute("COMMIT"), (result) =>
    // COMMIT of a failed transaction rolls back: the block did not commit.
    result.command === "ROLLBACK"
      ? Effect.fail(
        fromDiagnostic(
          clientDiagnostic("25P02", "the transaction was rolled back on COMMIT because a statement in it failed"),
          "COMMIT"
        )
      )
      : Effect.void)
}

/** Rolls back; a failure is logged, never returned (the user's error wins). */
const rollbackBlock = <R0>(conn: Executor<R0>, outer: boolean, savepoint: string): Effect.Effect<void> => {
  if (conn.closed) return Effect.void
  const statement = outer ? conn.execute("ROLLBACK") : Effect.andThen(
    conn.execute(`ROLLBACK TO SAVEPOINT ${savepoint}`),
    conn.execute(`RELEASE SAVEPOINT ${savepoint}`)
  )
  // bounded: this runs uninterruptibly, so no caller deadline could end a
  // ROLLBACK stuck on a half-open connection
  return conn.session.bounded(statement, "ROLLBACK").pipe(
    Effect.asVoid,
    Effect.catchCause((cause) =>
      Effect.logWarning("pgfx: rollback failed; keeping the original error").pipe(
        Effect.annotateLogs({ backendPid: conn.info.backendPid, cause: Cause.pretty(cause) })
      )
    )
  )
}


/**
 * Whether an error is worth retrying the whole transaction for:
 * serialization failures and deadlocks.
 *
 * @example
 * ```ts
 * Effect.retry(transfer, { times: 3, while: Transaction.isRetryable })
 * ```
 *
 * @since 0.1.0
 */
export const isRetryable = (error: unknown): boolean =>
  typeof error === "object" && error !== null &&
  ((error as { _tag?: unknown })._tag === "SerializationFailure" ||
    (error as { _tag?: unknown })._tag === "DeadlockDetected")

/**
 * Retries a transaction on serialization failures and deadlocks: `times`
 * retries (default 5) spaced by `schedule` (default exponential from 10 ms).
 * Wrap the whole block, so each attempt is a new transaction.
 *
 * @example
 * ```ts
 * const transfer = conn.transaction(
 *   Effect.gen(function*() { … }),
 *   { isolationLevel: "serializable" }
 * )
 * yield* Transaction.retry(transfer, { times: 3 })
 * ```
 *
 * @since 0.1.0
 */
export const retry = <A, E, R>(
  transaction: Effect.Effect<A, E, R>,
  options?: { readonly times?: number | undefined; readonly schedule?: Schedule.Schedule<unknown, E> | undefined }
): Effect.Effect<A, E, R> =>
  Effect.retry(transaction, {
    schedule: options?.schedule ?? Schedule.exponential("10 millis"),
    times: options?.times ?? 5,
    while: isRetryable
  })
