/**
 * Creating and running one embedded server: a fresh cluster (initdb) or a hot standby copied
 * from a primary, its configuration, and the controls of its handle.
 */
import type { ChildProcess } from "node:child_process"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as fsp from "node:fs/promises"
import * as net from "node:net"
import * as path from "node:path"
import { Effect } from "effect"
import { Connection, RowFactory } from "@pgfx/core"
import { serverEnvironment } from "./embeddedBinaries.ts"
import { isAlive, type LiveServer, readPostmasterPid, track, untrack } from "./embeddedCleanup.ts"
import { confLines, hbaFile, quoteIdentifier, quoteLiteral, replicationConninfo } from "./embeddedConfig.ts"
import { EmbeddedServerError, toEmbeddedServerError } from "./embeddedError.ts"
import { type ProcessContext, runInitdb, startPostgres } from "./embeddedProcess.ts"
import { execFileAsync, makeCertificates } from "./embeddedTls.ts"
import type { EmbeddedServer, EmbeddedServerOptions, HbaRule } from "./embeddedTypes.ts"

/** Test hooks: other binaries (`native/` layout) and another temp root than `os.tmpdir()`. */
export interface StartOverrides {
  readonly nativeDir?: string
  readonly tmpRoot?: string
}

/** A free TCP port on 127.0.0.1 (the OS picks; a race with other processes is retried at start). */
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

const toError = (cause: unknown): Error =>
  cause instanceof Error ? cause : new Error(typeof cause === "string" ? cause : `embedded PostgreSQL: ${String(cause)}`)

const startTimeoutMs = 60_000
const tlsFiles = ["ca.crt", "ca.key", "ca.srl", "server.crt", "server.key", "server.csr", "server.ext"]

/**
 * Creates and starts a server: a fresh cluster (initdb), or — with `primary` — a hot standby made
 * from a copy of `primary`'s data directory. Fails with an {@link EmbeddedServerError}.
 */
export const startServer = async (
  options: EmbeddedServerOptions,
  primary?: EmbeddedServer,
  overrides: StartOverrides = {}
): Promise<EmbeddedServer> => {
  const host = options.host ?? "127.0.0.1"
  if (net.isIP(host) === 0) {
    throw new EmbeddedServerError({
      reason: "InvalidOptions",
      message: `embedded PostgreSQL: host must be an IP address (e.g. 127.0.0.2), not "${host}"`
    })
  }
  const env = await serverEnvironment(overrides)
  const baseDir = await fsp.mkdtemp(path.join(env.tmpRoot, `${options.label ?? "pgfx-pg"}-`)).catch((cause) => {
    throw toEmbeddedServerError("NoReachableDirectory", `cannot create a directory in ${env.tmpRoot}`)(cause)
  })
  // the server runs as OS user `postgres` when we are root: it must be able to traverse baseDir
  await fsp.chmod(baseDir, 0o755)
  const dataDir = path.join(baseDir, "data")
  const liveEntry: LiveServer = { baseDir, dataDir }
  track(liveEntry)

  // a standby has the primary's roles, hence its passwords
  const password = primary?.password ?? options.password ?? `pgfx-${randomBytes(12).toString("base64url")}`
  const defaultMethod = options.defaultAuthMethod ?? "scram-sha-256"
  const logLines: Array<string> = []
  const log = (line: string): void => {
    if (line !== "") logLines.push(line)
    if (logLines.length > 500) logLines.splice(0, logLines.length - 500)
  }
  const logs = (): string => logLines.join("\n")
  const tail = (): string => logLines.slice(-30).join("\n")
  const context: ProcessContext = { binaries: env.binaries, user: env.user, cwd: baseDir, log }

  let port = options.port ?? await freePort()
  let child: ChildProcess | undefined
  let exited: Promise<void> = Promise.resolve()
  const running = (): boolean => child !== undefined && child.exitCode === null && child.signalCode === null

  /** Files the server reads must belong to its OS user (PostgreSQL checks key files' owner). */
  const chownToServer = async (file: string): Promise<void> => {
    if (env.user !== undefined) await fsp.chown(file, env.user.uid, env.user.gid)
  }
  const writeOwned = async (file: string, content: string, mode = 0o600): Promise<void> => {
    await fsp.writeFile(file, content, { mode })
    await chownToServer(file)
  }
  const writeHbaFile = (rules: ReadonlyArray<string | HbaRule>) =>
    writeOwned(path.join(dataDir, "pg_hba.conf"), hbaFile(rules, defaultMethod, host))

  const initialise = async (): Promise<void> => {
    await fsp.mkdir(dataDir, { mode: 0o700 })
    await chownToServer(dataDir)
    const passwordFile = path.join(baseDir, "pwfile")
    await writeOwned(passwordFile, `${password}\n`)
    try {
      // C locale + UTF8 whatever the environment; no fsync during initdb (throwaway data)
      await runInitdb(context, { dataDir, passwordFile, flags: ["--encoding=UTF8", "--locale=C", "--no-sync"] })
    } finally {
      await fsp.rm(passwordFile, { force: true })
    }
  }

  const startOnce = async (): Promise<void> => {
    try {
      const started = await startPostgres(context, { dataDir, port, timeoutMs: startTimeoutMs })
      child = started.child
      exited = started.exited
    } catch (cause) {
      const error = toEmbeddedServerError("Start", "start")(cause)
      throw new EmbeddedServerError({
        reason: error.reason,
        message: `embedded PostgreSQL failed to start on port ${port}: ${
          error.message.replace(/^embedded PostgreSQL:? /, "")
        }\n${tail()}`,
        cause
      })
    }
  }

  const start = async (): Promise<void> => {
    if (running()) return
    await startOnce()
  }

  const stop = async (): Promise<void> => {
    // fast shutdown
    if (running()) child?.kill("SIGINT")
    await exited
  }

  const kill = async (signal: NodeJS.Signals = "SIGQUIT"): Promise<void> => {
    if (!running()) return
    child?.kill(signal)
    await exited
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
    untrack(liveEntry)
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

  /** Everything between initdb (or the copy) and the first start. */
  const configure = async (settings: Record<string, string | number | boolean>): Promise<void> => {
    if (primary === undefined) {
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
      for (const f of tlsFiles) await chownToServer(path.join(dataDir, f)).catch(() => undefined)
      Object.assign(settings, { ssl: true, ssl_cert_file: "server.crt", ssl_key_file: "server.key", ssl_ca_file: "ca.crt" })
    }
    Object.assign(settings, options.postgresqlConf ?? {})
    await fsp.appendFile(path.join(dataDir, "postgresql.conf"), `\n# pgfx test settings\n${confLines(settings)}\n`)
  }

  const createUsers = async (): Promise<void> => {
    for (const user of primary === undefined ? options.users ?? [] : []) {
      const ident = quoteIdentifier(user.name)
      const literal = quoteLiteral(user.password)
      await adminQuery(
        `SET password_encryption = ${quoteLiteral(user.passwordEncryption ?? "scram-sha-256")};
         SET client_min_messages = error;
         CREATE ROLE ${ident} LOGIN ${user.superuser ? "SUPERUSER" : ""} PASSWORD ${literal}`
      )
    }
  }

  try {
    if (primary === undefined) {
      await initialise().catch((cause) => {
        throw toEmbeddedServerError("Setup", `preparing ${dataDir} failed`)(cause)
      })
    }
    await configure({
      listen_addresses: options.host === undefined ? "localhost" : host,
      unix_socket_directories: dataDir,
      // throwaway data: durability off for speed
      fsync: false,
      synchronous_commit: false,
      full_page_writes: false,
      max_connections: 200
    }).catch((cause) => {
      throw toEmbeddedServerError("Setup", `setting up ${dataDir} failed`)(cause)
    })

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
    await createUsers().catch((cause) => {
      throw toEmbeddedServerError("Setup", "creating the roles of `users` failed")(cause)
    })
  } catch (error) {
    await remove()
    throw toEmbeddedServerError("Start", "start")(error)
  }

  const control = (what: string, run: () => Promise<void>): Effect.Effect<void, Error> =>
    Effect.tryPromise({ try: run, catch: toEmbeddedServerError("Control", `${what} on port ${port}`) })

  return {
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
    start: control("start", start),
    stop: control("stop", stop),
    restart: control("restart", async () => {
      await stop()
      await start()
    }),
    reload: control("reload", reload),
    kill: (signal) => control(`kill (${signal ?? "SIGQUIT"})`, () => kill(signal)),
    writeHba: (rules) => control("writeHba", () => writeHbaFile(rules)),
    promote: control("promote", promote),
    follow: (target) => control("follow", () => follow(target)),
    remove: Effect.promise(remove)
  }
}
