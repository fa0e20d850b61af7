/**
 * Typed errors of pgfx.
 *
 * Three families, so callers can tell "my statement was wrong" from "the
 * connection is gone" from "I passed a bad value":
 *
 * - server errors (`ErrorResponse`): one tagged class per common SQLSTATE
 *   (`UniqueViolation`, `QueryCanceled`, ...) and `ServerError` for the rest,
 *   all carrying the full diagnostic (`sqlState`, `detail`, `hint`, ...);
 * - `ConnectionError`: the session is unusable (socket, TLS, authentication,
 *   timeout, server shutdown) — retry on a new connection, never on this one;
 * - `ProtocolError` (the server said something we cannot understand) and
 *   `ParameterError` (a value cannot be sent; detected before anything is
 *   written, so the connection stays usable).
 *
 * Every error converts to effect's `SqlError` with `toSqlError`.
 *
 * @since 0.1.0
 */
import type * as Cause from "effect/Cause"
import * as Data from "effect/Data"
import * as SqlError from "effect/sql/SqlError"

/**
 * The fields of a server `ErrorResponse` / `NoticeResponse`, named after
 * psycopg's `Diagnostic`.
 *
 * @since 0.1.0
 */
export interface Diagnostic {
  /** `ERROR`, `FATAL`, `PANIC`, or for notices `WARNING`, `NOTICE`, … (possibly localized). */
  readonly severity: string
  /** The severity, never localized (PostgreSQL 9.6+). */
  readonly severityNonLocalized: string | undefined
  /** The five-character SQLSTATE, e.g. `23505`. */
  readonly sqlState: string
  /** The primary message, one line. */
  readonly message: string
  /** The secondary message, with more detail (may span lines). */
  readonly detail: string | undefined
  /** A suggestion of what to do about the problem. */
  readonly hint: string | undefined
  /** 1-based character offset of the error in the statement. */
  readonly position: number | undefined
  /** Like `position`, but in `internalQuery` (an internally generated command). */
  readonly internalPosition: number | undefined
  /** The text of an internally generated command that failed, e.g. inside a PL/pgSQL function. */
  readonly internalQuery: string | undefined
  /** The context: a call stack of PL/pgSQL functions, the COPY line, … */
  readonly where: string | undefined
  /** The schema of the object the error is about. */
  readonly schema: string | undefined
  /** The table the error is about. */
  readonly table: string | undefined
  /** The column the error is about. */
  readonly column: string | undefined
  /** The data type the error is about. */
  readonly dataType: string | undefined
  /** The constraint the error is about, e.g. `test_pkey` for a `UniqueViolation`. */
  readonly constraint: string | undefined
  /** The server's source file that reported the error. */
  readonly file: string | undefined
  /** The line in `file`. */
  readonly line: number | undefined
  /** The server's source routine that reported the error. */
  readonly routine: string | undefined
}

/**
 * psycopg's DBAPI class of a SQLSTATE (`IntegrityError`, `OperationalError`,
 * ...), derived from its first two characters.
 *
 * @since 0.1.0
 */
export type ErrorClass =
  | "DatabaseError"
  | "DataError"
  | "OperationalError"
  | "IntegrityError"
  | "InternalError"
  | "ProgrammingError"
  | "NotSupportedError"

const classByPrefix: Record<string, ErrorClass> = {
  "08": "OperationalError",
  "0A": "NotSupportedError",
  "20": "ProgrammingError",
  "21": "ProgrammingError",
  "22": "DataError",
  "23": "IntegrityError",
  "24": "InternalError",
  "25": "InternalError",
  "26": "ProgrammingError",
  "27": "OperationalError",
  "28": "OperationalError",
  "2B": "InternalError",
  "2D": "InternalError",
  "2F": "OperationalError",
  "34": "ProgrammingError",
  "38": "OperationalError",
  "39": "OperationalError",
  "3B": "OperationalError",
  "3D": "ProgrammingError",
  "3F": "ProgrammingError",
  "40": "OperationalError",
  "42": "ProgrammingError",
  "44": "ProgrammingError",
  "53": "OperationalError",
  "54": "OperationalError",
  "55": "OperationalError",
  "57": "OperationalError",
  "58": "OperationalError"
}

/**
 * The DBAPI class of a SQLSTATE, with psycopg's fallback rules (two
 * characters, then one: `F`/`H` → operational, `P` → programming, `X` →
 * internal).
 *
 * @example
 * ```ts
 * PgError.errorClassOf("23505") // "IntegrityError"
 * PgError.errorClassOf("PXX99") // "ProgrammingError"
 * ```
 *
 * @since 0.1.0
 */
export const errorClassOf = (sqlState: string): ErrorClass => {
  const byTwo = classByPrefix[sqlState.slice(0, 2)]
  if (byTwo !== undefined) return byTwo
  switch (sqlState[0]) {
    case "F":
    case "H":
      return "OperationalError"
    case "P":
      return "ProgrammingError"
    case "X":
      return "InternalError"
    default:
      return "DatabaseError"
  }
}

interface ServerErrorFields extends Diagnostic {
  /** The statement that failed, when there was one (never its parameters). */
  readonly query: string | undefined
}

/**
 * An instance of a server error class (`UniqueViolation`, `ServerError`, …): named so the
 * classes' declarations can be emitted (the inferred base type uses effect's private names).
 *
 * @since 0.1.0
 */
export interface ServerErrorInstance<Tag extends string> extends Cause.YieldableError, ServerErrorFields {
  /** The class's name, for `Effect.catchTag`. */
  readonly _tag: Tag
  /** The server's primary message (restated: `Error`'s is not readonly). */
  readonly message: string
  /** psycopg's DBAPI class of this SQLSTATE. */
  readonly errorClass: ErrorClass
}

/**
 * The constructor of a server error class.
 *
 * @since 0.1.0
 */
export interface ServerErrorClass<Tag extends string> {
  /** An error from the fields of the server's `ErrorResponse` and the statement that failed. */
  new(fields: ServerErrorFields): ServerErrorInstance<Tag>
}

const ServerErrorBase = <const Tag extends string>(tag: Tag): ServerErrorClass<Tag> =>
  class extends Data.TaggedError(tag)<ServerErrorFields> {
    /** psycopg's DBAPI class of this SQLSTATE. */
    get errorClass(): ErrorClass {
      return errorClassOf(this.sqlState)
    }
    /** `Tag [SQLSTATE]: message`, e.g. `UniqueViolation [23505]: duplicate key value …`. */
    override toString(): string {
      return `${this._tag} [${this.sqlState}]: ${this.message}`
    }
  }

/**
 * 23505: a unique or primary-key constraint rejected the row; `constraint`
 * names it.
 *
 * @example
 * ```ts
 * const created = conn.execute("INSERT INTO users (email) VALUES ($1)", [email]).pipe(
 *   Effect.as("created" as const),
 *   Effect.catchTag("UniqueViolation", (error) => Effect.succeed(`taken (${error.constraint})` as const))
 * )
 * ```
 *
 * @since 0.1.0
 */
export class UniqueViolation extends ServerErrorBase("UniqueViolation") {}
/** @since 0.1.0 */
export class ForeignKeyViolation extends ServerErrorBase("ForeignKeyViolation") {}
/** @since 0.1.0 */
export class NotNullViolation extends ServerErrorBase("NotNullViolation") {}
/** @since 0.1.0 */
export class CheckViolation extends ServerErrorBase("CheckViolation") {}
/** @since 0.1.0 */
export class ExclusionViolation extends ServerErrorBase("ExclusionViolation") {}
/**
 * 40001: a serializable or repeatable-read transaction could not be ordered
 * with concurrent ones; retry the whole transaction (`Transaction.retry`).
 *
 * @since 0.1.0
 */
export class SerializationFailure extends ServerErrorBase("SerializationFailure") {}
/** 40P01: this session was chosen to break a deadlock; retry the transaction. @since 0.1.0 */
export class DeadlockDetected extends ServerErrorBase("DeadlockDetected") {}
/** 57014: a cancel request or `statement_timeout`. @since 0.1.0 */
export class QueryCanceled extends ServerErrorBase("QueryCanceled") {}
/** @since 0.1.0 */
export class LockNotAvailable extends ServerErrorBase("LockNotAvailable") {}
/** @since 0.1.0 */
export class UndefinedTable extends ServerErrorBase("UndefinedTable") {}
/** @since 0.1.0 */
export class UndefinedColumn extends ServerErrorBase("UndefinedColumn") {}
/** @since 0.1.0 */
export class UndefinedFunction extends ServerErrorBase("UndefinedFunction") {}
/** 42601. Named so it does not shadow the global `SyntaxError`. @since 0.1.0 */
export class SqlSyntaxError extends ServerErrorBase("SqlSyntaxError") {}
/** @since 0.1.0 */
export class InsufficientPrivilege extends ServerErrorBase("InsufficientPrivilege") {}
/** @since 0.1.0 */
export class InFailedSqlTransaction extends ServerErrorBase("InFailedSqlTransaction") {}
/** @since 0.1.0 */
export class InvalidCursorName extends ServerErrorBase("InvalidCursorName") {}
/** @since 0.1.0 */
export class DivisionByZero extends ServerErrorBase("DivisionByZero") {}
/** @since 0.1.0 */
export class InvalidTextRepresentation extends ServerErrorBase("InvalidTextRepresentation") {}
/** @since 0.1.0 */
export class NumericValueOutOfRange extends ServerErrorBase("NumericValueOutOfRange") {}
/** @since 0.1.0 */
export class BadCopyFileFormat extends ServerErrorBase("BadCopyFileFormat") {}
/** Any other SQLSTATE; see `sqlState` and `errorClass`. @since 0.1.0 */
export class ServerError extends ServerErrorBase("ServerError") {}

/**
 * Every error the server reports for a statement.
 *
 * @since 0.1.0
 */
export type StatementError =
  | UniqueViolation
  | ForeignKeyViolation
  | NotNullViolation
  | CheckViolation
  | ExclusionViolation
  | SerializationFailure
  | DeadlockDetected
  | QueryCanceled
  | LockNotAvailable
  | UndefinedTable
  | UndefinedColumn
  | UndefinedFunction
  | SqlSyntaxError
  | InsufficientPrivilege
  | InFailedSqlTransaction
  | InvalidCursorName
  | DivisionByZero
  | InvalidTextRepresentation
  | NumericValueOutOfRange
  | BadCopyFileFormat
  | ServerError

type StatementErrorClass = new(fields: ServerErrorFields) => StatementError

const classBySqlState: Record<string, StatementErrorClass> = {
  "23505": UniqueViolation,
  "23503": ForeignKeyViolation,
  "23502": NotNullViolation,
  "23514": CheckViolation,
  "23P01": ExclusionViolation,
  "40001": SerializationFailure,
  "40P01": DeadlockDetected,
  "57014": QueryCanceled,
  "55P03": LockNotAvailable,
  "42P01": UndefinedTable,
  "42703": UndefinedColumn,
  "42883": UndefinedFunction,
  "42601": SqlSyntaxError,
  "42501": InsufficientPrivilege,
  "25P02": InFailedSqlTransaction,
  "34000": InvalidCursorName,
  "22012": DivisionByZero,
  "22P02": InvalidTextRepresentation,
  "22003": NumericValueOutOfRange,
  "22P04": BadCopyFileFormat
}

/**
 * Builds the tagged error for a server diagnostic.
 *
 * @example
 * ```ts
 * const error = PgError.fromDiagnostic(PgError.clientDiagnostic("23505", "duplicate key"), "INSERT …")
 * error._tag // "UniqueViolation"
 * ```
 *
 * @since 0.1.0
 */
export const fromDiagnostic = (diagnostic: Diagnostic, query?: string): StatementError => {
  const Class = classBySqlState[diagnostic.sqlState] ?? ServerError
  return new Class({ ...diagnostic, query })
}

/**
 * SQLSTATEs after which the session is gone: connection exceptions (class
 * 08), operator intervention that ends the session (57P01–57P03), and
 * `idle_in_transaction_session_timeout` (25P03).
 *
 * @example
 * ```ts
 * PgError.isFatalSqlState("57P01") // true: admin_shutdown, the session is gone
 * PgError.isFatalSqlState("23505") // false
 * ```
 *
 * @since 0.1.0
 */
export const isFatalSqlState = (sqlState: string): boolean =>
  // 08P01 is also how the server refuses malformed data (bad Bind, binary
  // COPY) with severity ERROR while the session lives on.
  (sqlState.startsWith("08") && sqlState !== "08P01") || sqlState === "57P01" || sqlState === "57P02" || sqlState === "57P03" ||
  sqlState === "25P03" || sqlState === "57P05"

/**
 * Why a connection is unusable.
 *
 * @since 0.1.0
 */
export type ConnectionErrorReason =
  /** Name resolution failed. */
  | "UnknownHost"
  /** Nothing listens on the address. */
  | "Refused"
  /** `connect_timeout` or another deadline expired. */
  | "Timeout"
  /** The socket closed or errored under a session. */
  | "Closed"
  /** The server refused the login (password, role, database, limits). */
  | "Authentication"
  /** The server rejected the connection for another reason (e.g. too many connections). */
  | "Rejected"
  /** TLS negotiation or certificate verification failed. */
  | "Tls"
  /** The session was ended by the server (`pg_terminate_backend`, shutdown, idle timeout). */
  | "Terminated"
  /** No host of the list satisfied `target_session_attrs`. */
  | "TargetSessionAttrs"
  /** The connection was closed by us earlier, or left broken after a failed cancel. */
  | "NotOpen"

/**
 * The connection cannot be used any more (or could not be made). Retrying on
 * a fresh connection may succeed; this one is closed.
 *
 * @example
 * ```ts
 * Connection.connect("host=db.example port=5432 connect_timeout=3").pipe(
 *   Effect.catchTag("ConnectionError", (error) =>
 *     Effect.fail(`cannot reach the database (${error.reason}): ${error.message}`))
 * )
 * ```
 *
 * @since 0.1.0
 */
export class ConnectionError extends Data.TaggedError("ConnectionError")<{
  /** Why: `Refused`, `UnknownHost`, `Timeout`, `Authentication`, `Tls`, `Terminated`, `Closed`, … */
  readonly reason: ConnectionErrorReason
  /** What happened, with every attempt when several hosts were tried; never a password. */
  readonly message: string
  /** `host:port` (or socket path) of the attempt, when known. */
  readonly address?: string | undefined
  /** The server's SQLSTATE when the server ended or refused the session. */
  readonly sqlState?: string | undefined
  /** The server diagnostic, when the server said why. */
  readonly diagnostic?: Diagnostic | undefined
  /** The underlying error (socket, TLS, …), when there is one. */
  readonly cause?: unknown
}> {}

/**
 * The server sent bytes that are not valid protocol in the current state
 * (malformed, oversized, unexpected). The connection is closed.
 *
 * @since 0.1.0
 */
export class ProtocolError extends Data.TaggedError("ProtocolError")<{
  /** What was wrong with the server's bytes. */
  readonly message: string
  /** The decoder's error, when there is one. */
  readonly cause?: unknown
}> {}

/**
 * A parameter cannot be sent: wrong count, NUL byte in text, invalid UTF-8,
 * a number that does not fit its type, an unsupported value. Detected before
 * anything is written, so the connection is untouched.
 *
 * @since 0.1.0
 */
export class ParameterError extends Data.TaggedError("ParameterError")<{
  /** Which value, and why it cannot be sent. */
  readonly message: string
  /** 1-based index of the offending parameter, when there is one. */
  readonly index?: number | undefined
  /** The encoder's error, when there is one. */
  readonly cause?: unknown
}> {}

/**
 * A value of a result could not be decoded (for example invalid UTF-8 in a
 * database that is not UTF8). The result was read to its end, so the
 * connection stays usable.
 *
 * @since 0.1.0
 */
export class DecodeError extends Data.TaggedError("DecodeError")<{
  /** Which column, and why its value could not be decoded. */
  readonly message: string
  /** 0-based column index. */
  readonly column: number
  /** OID of the column's type. */
  readonly typeOid: number
  /** The decoder's or the Schema's error. */
  readonly cause?: unknown
}> {}

/**
 * A statement of a pipeline (or `executeMany` batch) that the server skipped
 * because an earlier statement of the batch failed (psycopg's
 * `PipelineAborted`).
 *
 * @since 0.1.0
 */
export class PipelineAborted extends Data.TaggedError("PipelineAborted")<{
  /** Why the statement was not run (an earlier statement of the batch failed). */
  readonly message: string
}> {}

/**
 * The API was used in a way that cannot work (psycopg's ProgrammingError
 * raised by the client): for example changing autocommit inside a
 * transaction.
 *
 * @since 0.1.0
 */
export class InterfaceError extends Data.TaggedError("InterfaceError")<{
  /** What cannot work, and why. */
  readonly message: string
}> {}

/**
 * Every error a pgfx connection operation can fail with.
 *
 * @since 0.1.0
 */
export type PgError =
  | StatementError
  | ConnectionError
  | ProtocolError
  | ParameterError
  | DecodeError
  | PipelineAborted
  | InterfaceError

/**
 * A diagnostic made by the client, for errors the server reported only
 * indirectly (e.g. COMMIT answered with ROLLBACK).
 *
 * @example
 * ```ts
 * PgError.clientDiagnostic("25P02", "the transaction was rolled back on COMMIT") // every other field undefined
 * ```
 *
 * @since 0.1.0
 */
export const clientDiagnostic = (sqlState: string, message: string): Diagnostic => ({
  severity: "ERROR",
  severityNonLocalized: "ERROR",
  sqlState,
  message,
  detail: undefined,
  hint: undefined,
  position: undefined,
  internalPosition: undefined,
  internalQuery: undefined,
  where: undefined,
  schema: undefined,
  table: undefined,
  column: undefined,
  dataType: undefined,
  constraint: undefined,
  file: undefined,
  line: undefined,
  routine: undefined
})

const statementTags = new Set<string>([
  ...Object.values(classBySqlState).map((Class) => new Class({ ...clientDiagnostic("", ""), query: undefined })._tag),
  "ServerError"
])

/**
 * Whether the error came from the server's `ErrorResponse` for a statement.
 *
 * @example
 * ```ts
 * Effect.catchIf(statement, PgError.isStatementError, (error) => Effect.logWarning(`${error.sqlState}: ${error.message}`))
 * ```
 *
 * @since 0.1.0
 */
export const isStatementError = (u: unknown): u is StatementError =>
  typeof u === "object" && u !== null && "_tag" in u && statementTags.has((u as { _tag: string })._tag) &&
  "sqlState" in u

/**
 * Whether the value is any pgfx error.
 *
 * @example
 * ```ts
 * const logged = Effect.tapError(program, (error) =>
 *   PgError.isPgError(error) ? Effect.logError(`${error._tag}: ${error.message}`) : Effect.void)
 * ```
 *
 * @since 0.1.0
 */
export const isPgError = (u: unknown): u is PgError =>
  isStatementError(u) ||
  (typeof u === "object" && u !== null && "_tag" in u &&
    ["ConnectionError", "ProtocolError", "ParameterError", "DecodeError", "PipelineAborted", "InterfaceError"].includes((u as { _tag: string })._tag))

/**
 * Converts a pgfx error to effect's `SqlError`, with the reason effect's own
 * PostgreSQL client would pick for the same SQLSTATE.
 *
 * @example
 * ```ts
 * const rows = conn.execute("SELECT * FROM users").pipe(
 *   Effect.mapError((error) => PgError.toSqlError(error)) // Effect<QueryResult, SqlError>
 * )
 * ```
 *
 * @since 0.1.0
 */
export const toSqlError = (error: PgError, operation = "execute"): SqlError.SqlError => {
  const props = { cause: error, message: error.message, operation }
  switch (error._tag) {
    case "ConnectionError":
      return new SqlError.SqlError({
        reason: error.reason === "Authentication"
          ? new SqlError.AuthenticationError(props)
          : new SqlError.ConnectionError(props)
      })
    case "ProtocolError":
      return new SqlError.SqlError({ reason: new SqlError.ConnectionError(props) })
    case "ParameterError":
    case "DecodeError":
    case "PipelineAborted":
    case "InterfaceError":
      return new SqlError.SqlError({ reason: new SqlError.UnknownError(props) })
    default:
      return new SqlError.SqlError({ reason: reasonForSqlState(error, props) })
  }
}

const reasonForSqlState = (
  error: StatementError,
  props: { cause: unknown; message: string; operation: string }
): SqlError.SqlErrorReason => {
  const code = error.sqlState
  if (code.startsWith("08")) return new SqlError.ConnectionError(props)
  if (code.startsWith("28")) return new SqlError.AuthenticationError(props)
  if (code === "42501") return new SqlError.AuthorizationError(props)
  if (code.startsWith("42")) return new SqlError.SqlSyntaxError(props)
  if (code === "23505") return new SqlError.UniqueViolation({ ...props, constraint: error.constraint ?? "unknown" })
  if (code.startsWith("23")) return new SqlError.ConstraintError(props)
  if (code === "40P01") return new SqlError.DeadlockError(props)
  if (code === "40001") return new SqlError.SerializationError(props)
  if (code === "55P03") return new SqlError.LockTimeoutError(props)
  if (code === "57014") return new SqlError.StatementTimeoutError(props)
  return new SqlError.UnknownError(props)
}
