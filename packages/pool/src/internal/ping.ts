/**
 * A health query that never opens a transaction: with `autocommit` off the
 * connection is switched to autocommit for it, like psycopg's
 * `check_connection`.
 */
import type { Connection, PgError } from "@pgfx/core"
import * as Effect from "effect/Effect"

/** Runs `query` on `connection` without leaving a transaction open. */
export const ping = (connection: Connection.Connection<unknown>, query: string): Effect.Effect<void, PgError.PgError> =>
  Effect.suspend(() => {
    const run = Effect.asVoid(connection.execute(query))
    if (connection.autocommit || connection.info.transactionStatus !== "IDLE") return run
    return Effect.acquireUseRelease(
      connection.setAutocommit(true),
      () => run,
      () => Effect.ignore(connection.setAutocommit(false))
    )
  })
