/**
 * The connection the SqlClient of a transaction-isolated test runs on: the test's connection,
 * with the client's own transaction statements turned into a savepoint, so `sql.withTransaction`
 * nests inside the test's transaction instead of committing it.
 *
 * effect's SqlClient sends `BEGIN` (or the statement of `SqlClient.BeginTransaction`), `COMMIT`
 * and `ROLLBACK` for its outermost transaction and `SAVEPOINT effect_sql_<n>` … for nested ones.
 * Here the outermost BEGIN becomes `SAVEPOINT pgfx_test_sql`, COMMIT `RELEASE SAVEPOINT` (rolled
 * back and failed when the transaction is aborted, like a COMMIT that answers ROLLBACK), ROLLBACK
 * `ROLLBACK TO SAVEPOINT` + `RELEASE SAVEPOINT`. Outermost client transactions of one test take
 * turns (a semaphore held from BEGIN to COMMIT / ROLLBACK): on a pool they would have had a
 * connection each.
 *
 * Everything else is the connection itself (same object for `transaction`, `session`, …).
 *
 * @internal
 */
import { type Connection, PgError } from "@pgfx/core"
import * as Effect from "effect/Effect"
import * as Semaphore from "effect/Semaphore"

const savepoint = "pgfx_test_sql"
const begin = /^\s*(?:begin|start\s+transaction)\b/i
const commit = /^\s*(?:commit|end)(?:\s+(?:work|transaction))?\s*;?\s*$/i
const rollback = /^\s*(?:rollback|abort)(?:\s+(?:work|transaction))?\s*;?\s*$/i

/** `connection`, with outermost transaction statements mapped to a savepoint. */
export const savepointing = (connection: Connection.Connection): Connection.Connection => {
  const turn = Semaphore.makeUnsafe(1)
  let open = false
  const execute: Connection.Connection["execute"] = (sql, params, options) => {
    if (params !== undefined && params.length > 0) return connection.execute(sql, params, options)
    if (begin.test(sql)) {
      return Effect.andThen(
        turn.take(1),
        connection.execute(`SAVEPOINT ${savepoint}`, undefined, options).pipe(
          Effect.tap(() => Effect.sync(() => (open = true))),
          Effect.onError(() => turn.release(1))
        )
      )
    }
    if (open && commit.test(sql)) {
      const aborted = connection.info.transactionStatus === "INERROR"
      const end = Effect.ensuring(
        connection.execute(
          aborted
            ? `ROLLBACK TO SAVEPOINT ${savepoint}; RELEASE SAVEPOINT ${savepoint}`
            : `RELEASE SAVEPOINT ${savepoint}`,
          undefined,
          options
        ),
        Effect.andThen(Effect.sync(() => (open = false)), turn.release(1))
      )
      return aborted
        ? Effect.andThen(
          end,
          Effect.fail(
            PgError.fromDiagnostic(
              PgError.clientDiagnostic(
                "25P02",
                "the transaction was rolled back on COMMIT because a statement in it failed"
              ),
              "COMMIT"
            )
          )
        )
        : end
    }
    if (open && rollback.test(sql)) {
      return Effect.ensuring(
        connection.execute(`ROLLBACK TO SAVEPOINT ${savepoint}; RELEASE SAVEPOINT ${savepoint}`, undefined, options),
        Effect.andThen(Effect.sync(() => (open = false)), turn.release(1))
      )
    }
    return connection.execute(sql, params, options)
  }
  return new Proxy(connection, {
    get(target, property) {
      if (property === "execute") return execute
      const value: unknown = Reflect.get(target, property, target)
      return typeof value === "function" ? (value as (...args: Array<unknown>) => unknown).bind(target) : value
    }
  })
}
