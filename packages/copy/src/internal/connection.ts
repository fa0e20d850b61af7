/**
 * What a COPY needs of its connection and does with it around the data:
 * the `CopyConnection` shape (re-exported by `Copy.ts`), type names
 * resolved on the server, the server's notices logged, and a COPY that
 * will not end drained, cancelled, or its connection closed.
 */
import { type Connection, PgError, type Session } from "@pgfx/core"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import type { CopyInHandler, CopyOutHandler } from "./protocol.ts"
import { builtinOid } from "./types.ts"

/**
 * What a COPY needs of a connection: core's `Connection` (any row shape).
 *
 * @since 0.1.0
 */
export interface CopyConnection {
  /** The low-level session the COPY sub-protocol runs on. */
  readonly session: Session.Session
  /** Cancels a COPY the server is still running (ending a `to` stream early). */
  readonly cancel: Effect.Effect<void, PgError.ConnectionError>
  /** Runs a statement; used to resolve type names the codecs do not know. */
  readonly execute: (sql: string, params?: ReadonlyArray<unknown>) => Effect.Effect<
    Connection.QueryResult<unknown>,
    PgError.PgError
  >
}

/** How long an aborted or cancelled COPY may take to end: the option, 5 s by default. */
export const drainTimeoutOf = (options: { readonly drainTimeout?: Duration.Input | undefined } | undefined) =>
  Duration.fromInputUnsafe(options?.drainTimeout ?? Duration.seconds(5))

/** Resolves type names to OIDs; names the codecs do not know are asked of the server. */
export const resolveTypes = (
  conn: CopyConnection,
  types: ReadonlyArray<string | number> | undefined
): Effect.Effect<ReadonlyArray<number> | undefined, PgError.PgError> => {
  if (types === undefined) return Effect.succeed(undefined)
  return Effect.forEach(types, (spec) => {
    if (typeof spec === "number") {
      return Number.isInteger(spec) && spec > 0
        ? Effect.succeed(spec)
        : Effect.fail(new PgError.InterfaceError({ message: `invalid type OID ${spec}` }))
    }
    const known = builtinOid(spec)
    if (known !== undefined) return Effect.succeed(known)
    // Domains decode and encode as their base type, enums as text.
    return conn.execute(
      "SELECT CASE t.typtype WHEN 'd' THEN t.typbasetype WHEN 'e' THEN 25 ELSE t.oid END AS oid " +
        "FROM pg_catalog.pg_type t WHERE t.oid = $1::text::regtype",
      [spec]
    ).pipe(
      Effect.map((result) => {
        const row: unknown = result.rows[0]
        return Number(Array.isArray(row) ? row[0] : (row as { readonly oid?: unknown } | undefined)?.oid)
      })
    )
  })
}

/** Logs the server's notices of a COPY, as core does for statements. */
export const logNotices = (notices: ReadonlyArray<PgError.Diagnostic>): Effect.Effect<void> =>
  Effect.forEach(notices, (notice) =>
    Effect.logInfo(`${notice.severity}: ${notice.message}`).pipe(
      Effect.annotateLogs({ sqlState: notice.sqlState, source: "postgresql" })
    ), { discard: true })

/** Waits for a handler to end; cancels, then closes the connection, when it will not. */
export const drain = (
  conn: CopyConnection,
  handler: CopyInHandler | CopyOutHandler,
  timeout: Duration.Duration,
  cancelFirst: boolean
): Effect.Effect<void> =>
  Effect.gen(function*() {
    if (handler.done) return
    if (!cancelFirst) {
      const ended = yield* handler.until(() => handler.done).pipe(Effect.timeoutOption(timeout))
      if (Option.isSome(ended)) return
    }
    const cancelled = yield* Effect.exit(conn.cancel)
    if (Exit.isSuccess(cancelled)) {
      const ended = yield* handler.until(() => handler.done).pipe(Effect.timeoutOption(timeout))
      if (Option.isSome(ended)) return
    }
    yield* Effect.logWarning("pgfx: a COPY did not end in time; closing the connection")
    yield* conn.session.invalidate("a COPY did not end in time")
  })
