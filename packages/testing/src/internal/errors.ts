/**
 * The harness's own error.
 *
 * @internal
 */
import * as Data from "effect/Data"

/**
 * The harness could not do its part: find or start the server (`Server`), build the template
 * database (`Template`: a migration, fixture or setup failed), create or drop a test database
 * (`Database`), or keep a test isolated (`Isolation`: e.g. the test committed the harness's
 * transaction). `cause` is the underlying error.
 *
 * @since 0.1.0
 */
export class PgTestError extends Data.TaggedError("PgTestError")<{
  /** Which part of the harness failed. */
  readonly reason: "Server" | "Template" | "Database" | "Isolation"
  /** What happened, with the underlying messages. */
  readonly message: string
  /** The underlying error. */
  readonly cause?: unknown
}> {}

const ownMessage = (cause: unknown): string | undefined =>
  typeof cause === "object" && cause !== null && "message" in cause && typeof cause.message === "string"
    ? cause.message
    : undefined

/** The messages along the cause chain (`a: b: c`), each once. */
const messageOf = (cause: unknown): string => {
  const parts: Array<string> = []
  let current: unknown = cause
  for (let depth = 0; depth < 6 && current !== undefined && current !== null; depth++) {
    const message = ownMessage(current) ?? (depth === 0 ? String(current) : undefined)
    if (message !== undefined && message !== "" && !parts.some((part) => part.includes(message))) parts.push(message)
    current = typeof current === "object" && "cause" in current ? current.cause : undefined
  }
  return parts.join(": ")
}

/** Wraps any failure as a `PgTestError` with `context` before its message. */
export const wrap = (reason: PgTestError["reason"], context: string) => (cause: unknown): PgTestError =>
  cause instanceof PgTestError ? cause : new PgTestError({ reason, message: `${context}: ${messageOf(cause)}`, cause })
