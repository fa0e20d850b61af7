/**
 * Database administration on the test server: names, URLs, CREATE / DROP DATABASE, cleanup of
 * the databases a run left behind.
 *
 * @internal
 */
import { randomBytes } from "node:crypto"
import * as path from "node:path"
import { Connection, type PgConfig, type PgError, RowFactory } from "@pgfx/core"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { quoteIdent } from "./sqlText.ts"

/** Test databases are named `pgfxt_<runId>_<label>_<random>`; templates `pgfxt_<runId>_tpl_<label>_<digest>`. */
export const databasePrefix = "pgfxt_"

/** A label for humans inside a database name: lowercase, `[a-z0-9_]`, at most 24 characters. */
export const sanitize = (label: string): string =>
  label
    .toLowerCase()
    .replace(/\.(test|spec)\.[cm]?[jt]sx?$/, "")
    .replace(/[^a-z0-9]+/g, "_")
    .replace(/^_+|_+$/g, "")
    .slice(0, 24)
    .replace(/_+$/, "") || "db"

/** The label of a test file's databases: its base name. */
export const fileLabel = (testPath: string | undefined): string => (testPath ? path.basename(testPath) : "db")

/** A fresh database name for the run. */
export const freshName = (runId: string, label: string): string =>
  `${databasePrefix}${runId}_${sanitize(label)}_${randomBytes(4).toString("hex")}`

/** The template name for a run, a label and a digest. */
export const templateName = (runId: string, label: string, digest: string): string =>
  `${databasePrefix}${runId}_tpl_${sanitize(label).slice(0, 16)}_${digest.slice(0, 12)}`

/** The server URL with the database replaced. */
export const databaseUrl = (serverUrl: string, database: string): string => {
  const url = new URL(serverUrl)
  url.pathname = `/${encodeURIComponent(database)}`
  return url.toString()
}

/** Whether the server URL is a `postgres://` / `postgresql://` URL (the harness needs one). */
export const isUrl = (serverUrl: string): boolean => {
  try {
    const url = new URL(serverUrl)
    return url.protocol === "postgresql:" || url.protocol === "postgres:"
  } catch {
    return false
  }
}

/** An administration session on the server (the URL's own database). */
export const connect = (serverUrl: string): Effect.Effect<Connection.Connection, PgError.PgError | PgConfig.PgConfigError, Scope.Scope> =>
  Effect.tap(
    Connection.connect(serverUrl, { defaultConnectTimeout: "30 seconds", prepareThreshold: null }),
    // no NOTICE lines ("database … does not exist, skipping") in the tests' output
    (admin) => admin.execute("SET client_min_messages TO warning")
  )

/** `CREATE DATABASE name TEMPLATE template` (UTF8 when cloning template0). */
export const createDatabase = (
  admin: Connection.Connection,
  name: string,
  template: string
): Effect.Effect<void, PgError.PgError> =>
  Effect.asVoid(
    admin.execute(
      `CREATE DATABASE ${quoteIdent(name)} TEMPLATE ${quoteIdent(template)}${template === "template0" ? " ENCODING 'UTF8'" : ""}`
    )
  )

/** `DROP DATABASE IF EXISTS name WITH (FORCE)`: ends the sessions still connected. */
export const dropDatabase = (admin: Connection.Connection, name: string): Effect.Effect<void, PgError.PgError> =>
  Effect.asVoid(admin.execute(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`))

/** Whether a database exists. */
export const databaseExists = (admin: Connection.Connection, name: string): Effect.Effect<boolean, PgError.PgError> =>
  Effect.map(admin.execute("SELECT 1 FROM pg_database WHERE datname = $1", [name]), (result) => result.rows.length > 0)

const pidAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM"
  }
}

/** Whether the server is on this machine (so a run id — a process id — can be checked). */
export const isLoopback = (serverUrl: string): boolean => {
  try {
    const host = new URL(serverUrl).hostname
    return host === "127.0.0.1" || host === "localhost" || host === "[::1]" || host === "::1"
  } catch {
    return false
  }
}

/** Whether the run that named a database is over (its process is gone). */
export const runIsOver = (runId: string): boolean => !pidAlive(Number(runId))

/** Drops the test databases (clones and templates) whose run id matches. Never fails. */
export const dropRunDatabases = (serverUrl: string, shouldDrop: (runId: string) => boolean): Effect.Effect<void> =>
  Effect.scoped(
    Effect.gen(function*() {
      const admin = yield* connect(serverUrl)
      const { rows } = yield* admin.execute(
        "SELECT datname FROM pg_database WHERE datname ~ '^pgfxt_[0-9]+_' ORDER BY datname",
        undefined,
        { rowFactory: RowFactory.record }
      )
      for (const row of rows) {
        const name = String(row.datname)
        const runId = /^pgfxt_([0-9]+)_/.exec(name)?.[1]
        if (runId === undefined || !shouldDrop(runId)) continue
        yield* Effect.ignore(dropDatabase(admin, name))
      }
    })
  ).pipe(Effect.ignore)
