/**
 * F28 (reliability.md A.4, design rule 8, pain 10): PgBouncer in transaction pooling mode, in
 * front of a throwaway embedded server, with `pgbouncer: true` (`ConnectOptions.pgbouncer`).
 *
 * - Without the mode, PgBouncer refuses pgfx's startup (`extra_float_digits`): a typed
 *   `ConnectionError` (the failure mode the mode exists for).
 * - With it: only tracked startup parameters; no named prepared statements, so six clients
 *   sharing two server connections never hit "prepared statement … already exists / does not
 *   exist" (a control run without the mode, through a PgBouncer told to ignore
 *   `extra_float_digits`, does); transactions, savepoints and `SET LOCAL`; parameters and types
 *   round-trip with the server's default `extra_float_digits`; LISTEN, WITH HOLD and
 *   `prepare: true` refused typed before anything is sent; cancel through PgBouncer (three in a
 *   row: a half-closed cancel socket made PgBouncer 1.18 drop the cancel or exit); COPY in and
 *   out; the option passed on by `PgSql` and `ConnectionPool`.
 * - What the mode decides before connecting (which `options` it accepts) is checked without
 *   PgBouncer, so it runs even when the binary is absent.
 * - Every test ends with the leak audit on the server (nothing busy or idle in transaction) and
 *   on PgBouncer (`SHOW POOLS`: no client or server connection left active).
 *
 * PgBouncer runs from the binary on PATH (or /usr/sbin, /usr/local/sbin, `PGFX_PGBOUNCER`);
 * without it every test that needs it is reported skipped, with the reason. PgBouncer runs as
 * the server's OS user when the tests run as root (it refuses root), and a watchdog stops it if
 * the test process dies without closing the scope. The `max_prepared_statements`
 * variants need PgBouncer 1.21+; with an older one they are reported skipped. One throwaway
 * server for the file; run in one project only (the server is PostgreSQL 18 whatever the target).
 */
import { describe, expect, it, layer } from "@effect/vitest"
import { Copy } from "@pgfx/copy"
import { ConnectionPool } from "@pgfx/pool"
import { Cause, Context, Effect, Exit, Fiber, Layer, type Scope, Stream } from "effect"
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { Connection, Cursor, PgConfig, type PgError, PgSql, RowFactory } from "../../src/index.ts"
import { primaryTarget, throwawayServer, type ThrowawayServer } from "../../../../test/harness.ts"
import { admin, appName, interruptedOnly, leakAudit, withApp, withParams } from "./support.ts"

// -----------------------------------------------------------------------------
// the binary
// -----------------------------------------------------------------------------

type Binary =
  | { readonly _tag: "Found"; readonly file: string; readonly version: string; readonly major: number; readonly minor: number }
  | { readonly _tag: "Missing"; readonly reason: string }

const findBinary = (): Binary => {
  const fromEnv = process.env.PGFX_PGBOUNCER
  const candidates = fromEnv !== undefined && fromEnv !== ""
    ? [fromEnv]
    : [
      ...(process.env.PATH ?? "").split(path.delimiter).filter((dir) => dir !== "").map((dir) => path.join(dir, "pgbouncer")),
      "/usr/sbin/pgbouncer",
      "/usr/local/sbin/pgbouncer",
      "/usr/local/bin/pgbouncer"
    ]
  const file = candidates.find((candidate) => {
    try {
      fs.accessSync(candidate, fs.constants.X_OK)
      return fs.statSync(candidate).isFile()
    } catch {
      return false
    }
  })
  if (file === undefined) {
    return { _tag: "Missing", reason: `no pgbouncer binary (looked in ${candidates.join(", ")}); .ci/run installs it` }
  }
  try {
    const output = execFileSync(file, ["--version"], { encoding: "utf8", timeout: 10_000 })
    const match = /PgBouncer (\d+)\.(\d+)(?:\.(\d+))?/.exec(output)
    if (match === null) return { _tag: "Missing", reason: `${file} --version printed no version: ${output.trim()}` }
    return { _tag: "Found", file, version: match[0].slice("PgBouncer ".length), major: Number(match[1]), minor: Number(match[2]) }
  } catch (cause) {
    return { _tag: "Missing", reason: `${file} --version failed: ${(cause as Error).message}` }
  }
}

const binary = findBinary()

/** `max_prepared_statements` (protocol-level prepared statements in transaction mode) arrived in 1.21. */
const preparedTracking = binary._tag === "Found" && (binary.major > 1 || binary.minor >= 21)

// -----------------------------------------------------------------------------
// a PgBouncer as a scoped resource
// -----------------------------------------------------------------------------

interface Bouncer {
  readonly port: number
  readonly version: string
  /** A client URL through PgBouncer to the test database, tagged with `app`. */
  readonly url: (app: string, params?: Readonly<Record<string, string | number>>) => string
  /** The admin console (`SHOW POOLS`, …) over the simple protocol. */
  readonly show: (what: string) => Effect.Effect<ReadonlyArray<Record<string, unknown>>, unknown>
  /** What PgBouncer logged so far. */
  readonly logs: () => string
  /** Whether the process still runs. */
  readonly alive: () => boolean
}

/** Test database behind PgBouncer. */
const DB = "f28"
const POOL_SIZE = 2

const isRoot = typeof process.getuid === "function" && process.getuid() === 0

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const probe = net.createServer()
    probe.unref()
    probe.once("error", reject)
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      probe.close(() => (port > 0 ? resolve(port) : reject(new Error("no free port"))))
    })
  })

const answers = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port })
    socket.once("connect", () => {
      socket.destroy()
      resolve(true)
    })
    socket.once("error", () => resolve(false))
  })

/** Waits for `child` to exit, at most `ms`; whether it did. */
const exited = (child: ChildProcess, ms: number): Promise<boolean> =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve(true)
    : new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), ms)
      child.once("exit", () => {
        clearTimeout(timer)
        resolve(true)
      })
    })

interface Running {
  readonly child: ChildProcess
  readonly dir: string
  readonly port: number
  readonly output: Array<string>
  readonly onExit: () => void
}

/**
 * Starts `file` on a free loopback port with a generated ini in a temp dir: `pool_mode =
 * transaction`, `default_pool_size = 2`, trust for clients (the auth file holds the server
 * password PgBouncer logs in with), no Unix socket. As root it runs as the server's OS user
 * (PgBouncer refuses root). Retries another port if the one picked was taken meanwhile.
 */
const startBouncer = async (
  file: string,
  server: ThrowawayServer,
  settings: Readonly<Record<string, string | number>>
): Promise<Running> => {
  let lastError: Error | undefined
  for (let attempt = 0; attempt < 3; attempt++) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pgfx-pgbouncer-"))
    const port = await freePort()
    const ini = [
      "[databases]",
      `${DB} = host=127.0.0.1 port=${server.port} dbname=${DB}`,
      "[pgbouncer]",
      "listen_addr = 127.0.0.1",
      `listen_port = ${port}`,
      "unix_socket_dir =",
      "auth_type = trust",
      `auth_file = ${path.join(dir, "users.txt")}`,
      `admin_users = ${server.user}`,
      "pool_mode = transaction",
      `default_pool_size = ${POOL_SIZE}`,
      "max_client_conn = 100",
      `logfile = ${path.join(dir, "pgbouncer.log")}`,
      `pidfile = ${path.join(dir, "pgbouncer.pid")}`,
      ...Object.entries(settings).map(([key, value]) => `${key} = ${value}`),
      ""
    ].join("\n")
    fs.writeFileSync(path.join(dir, "pgbouncer.ini"), ini)
    fs.writeFileSync(path.join(dir, "users.txt"), `"${server.user}" "${server.password}"\n`, { mode: 0o600 })
    let owner: { uid: number; gid: number } | undefined
    if (isRoot) {
      // the embedded server's data directory belongs to its (unprivileged) OS user
      const stat = fs.statSync(server.dataDir)
      owner = stat.uid === 0 ? { uid: 65534, gid: 65534 } : { uid: stat.uid, gid: stat.gid }
      for (const name of ["", "pgbouncer.ini", "users.txt"]) fs.chownSync(path.join(dir, name), owner.uid, owner.gid)
    }
    const output: Array<string> = []
    const child = spawn(file, [path.join(dir, "pgbouncer.ini")], {
      stdio: ["ignore", "pipe", "pipe"],
      ...(owner ?? {})
    })
    child.stdout?.on("data", (chunk: Buffer) => output.push(chunk.toString("utf8")))
    child.stderr?.on("data", (chunk: Buffer) => output.push(chunk.toString("utf8")))
    // a test process that ends without closing the scope must not leave PgBouncer listening
    const onExit = () => child.kill("SIGKILL")
    process.once("exit", onExit)
    if (child.pid !== undefined) spawnWatchdog(dir, child.pid)
    const running: Running = { child, dir, port, output, onExit }
    const deadline = performance.now() + 15_000
    while (performance.now() < deadline && child.exitCode === null && child.signalCode === null) {
      if (await answers(port)) return running
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    lastError = new Error(`pgbouncer did not start on port ${port}:\n${output.join("")}`)
    await stopBouncer(running)
  }
  throw lastError
}

/**
 * A detached shell that stops PgBouncer and removes its directory if this process dies without
 * doing it (killed by a signal: no `exit` event), like the embedded servers' watchdog. It ends
 * by itself once the directory is gone.
 */
const spawnWatchdog = (dir: string, pid: number): void => {
  const script = [
    "alive() {",
    '  kill -0 "$1" 2>/dev/null || return 1',
    '  read -r st < "/proc/$1/stat" 2>/dev/null || return 0',
    '  st=${st##*")"}; st=${st# }',
    "  case $st in Z*) return 1 ;; esac",
    "}",
    'while alive "$1" && [ -d "$2" ]; do sleep 0.5; done',
    '[ -d "$2" ] || exit 0',
    'kill -TERM "$3" 2>/dev/null',
    'n=0; while alive "$3" && [ $n -lt 50 ]; do sleep 0.1; n=$((n+1)); done',
    'kill -KILL "$3" 2>/dev/null',
    'rm -rf "$2"'
  ].join("\n")
  try {
    const watchdog = spawn("sh", ["-c", script, "pgfx-pgbouncer-watchdog", String(process.pid), dir, String(pid)], {
      detached: true,
      stdio: "ignore"
    })
    watchdog.on("error", () => {})
    watchdog.unref()
  } catch {
    // no sh: the exit hook still applies
  }
}

/** SIGTERM (immediate shutdown), SIGKILL if it lingers; removes the temp dir. */
const stopBouncer = async (running: Running): Promise<void> => {
  process.removeListener("exit", running.onExit)
  if (running.child.exitCode === null && running.child.signalCode === null) {
    running.child.kill("SIGTERM")
    if (!(await exited(running.child, 5_000))) {
      running.child.kill("SIGKILL")
      await exited(running.child, 5_000)
    }
  }
  fs.rmSync(running.dir, { recursive: true, force: true })
}

/** A PgBouncer for the life of the scope, in front of `server`'s database `f28`. */
const bouncer = (
  server: ThrowawayServer,
  settings: Readonly<Record<string, string | number>> = {}
): Effect.Effect<Bouncer, Error, Scope.Scope> => {
  if (binary._tag === "Missing") return Effect.fail(new Error(binary.reason))
  const found = binary
  return Effect.acquireRelease(
    Effect.tryPromise({ try: () => startBouncer(found.file, server, settings), catch: (cause) => cause as Error }),
    (running) => Effect.promise(() => stopBouncer(running))
  ).pipe(Effect.map((running): Bouncer => {
    const base = `postgresql://${server.user}@127.0.0.1:${running.port}`
    return {
      port: running.port,
      version: found.version,
      url: (app, params = {}) => withApp(`${base}/${DB}`, app, params),
      show: (what) =>
        Effect.scoped(Effect.gen(function*() {
          const console = yield* Connection.connect(`${base}/pgbouncer`, { pgbouncer: true, rowFactory: RowFactory.record })
          return (yield* console.execute(`SHOW ${what}`)).rows
        })),
      alive: () => running.child.exitCode === null && running.child.signalCode === null,
      logs: () => {
        const file = path.join(running.dir, "pgbouncer.log")
        return fs.existsSync(file) ? fs.readFileSync(file, "utf8") : running.output.join("")
      }
    }
  }))
}

// -----------------------------------------------------------------------------
// the environment of the file: a throwaway server and two PgBouncers
// -----------------------------------------------------------------------------

interface Env {
  readonly server: ThrowawayServer
  /** The server's test database, directly (superuser). */
  readonly direct: string
  /** PgBouncer 1.18's defaults: refuses every untracked startup parameter. */
  readonly strict: Bouncer
  /** `ignore_startup_parameters = extra_float_digits`, for the control runs without the mode. */
  readonly lenient: Bouncer
}

class F28 extends Context.Service<F28, Env>()("pgfx/test/reliability/F28") {
  static readonly layer = Layer.effect(
    F28,
    Effect.gen(function*() {
      const server = yield* throwawayServer({ label: "pgfx-f28" })
      yield* server.query(`CREATE DATABASE ${DB}`)
      const direct = server.urlFor({ database: DB, password: server.password })
      yield* Effect.scoped(Effect.gen(function*() {
        const conn = yield* Connection.connect(direct)
        yield* conn.execute("CREATE TABLE f28_tx (id int PRIMARY KEY, note text); CREATE TABLE f28_copy (n int, s text)")
      }))
      const strict = yield* bouncer(server)
      const lenient = yield* bouncer(server, { ignore_startup_parameters: "extra_float_digits" })
      return { server, direct, strict, lenient }
    })
  )
}

// -----------------------------------------------------------------------------
// helpers
// -----------------------------------------------------------------------------

/** The pool row of the test database in PgBouncer's `SHOW POOLS`. */
const poolRow = (b: Bouncer) =>
  Effect.map(b.show("POOLS"), (rows) => rows.find((row) => row.database === DB))

const num = (value: unknown): number => Number(value ?? 0)

/**
 * The leak audit of a test: on the server (no session of `app` busy or idle in transaction;
 * PgBouncer's idle server connections are expected) and on PgBouncer (no client connection and
 * no server connection left active, nobody waiting, at most `default_pool_size` server
 * connections).
 */
const audit = (env: Env, b: Bouncer, app: string) =>
  Effect.gen(function*() {
    expect(b.alive(), "PgBouncer exited").toBe(true)
    yield* leakAudit(env.direct, app, { allowIdle: true, waitMs: 5000 })
    const deadline = performance.now() + 5000
    let row = yield* poolRow(b)
    // the columns this audit reads (a renamed column would make it vacuous)
    if (row !== undefined) expect(Object.keys(row)).toEqual(expect.arrayContaining(["cl_active", "cl_waiting", "sv_active", "sv_idle"]))
    const busy = (r: Record<string, unknown> | undefined) =>
      r !== undefined && (num(r.cl_active) > 0 || num(r.cl_waiting) > 0 || num(r.sv_active) > 0)
    while (busy(row) && performance.now() < deadline) {
      yield* Effect.sleep("50 millis")
      row = yield* poolRow(b)
    }
    expect(busy(row), `PgBouncer pool left busy: ${JSON.stringify(row, (_, v) => typeof v === "bigint" ? Number(v) : v)}`)
      .toBe(false)
    if (row !== undefined) {
      expect(num(row.sv_active) + num(row.sv_idle) + num(row.sv_used) + num(row.sv_tested) + num(row.sv_login))
        .toBeLessThanOrEqual(POOL_SIZE)
    }
  })

/**
 * Server backends serving the test database (PgBouncer's server connections), seen directly;
 * the leak audits' own direct connections (`…_audit`) left out.
 */
const serverBackends = (watcher: Connection.Connection) =>
  Effect.map(
    watcher.execute(
      "SELECT pid, state, query FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend' " +
        "AND application_name NOT LIKE '%\\_audit' AND pid <> pg_backend_pid()",
      [DB]
    ),
    (result) => result.rows.map((row) => ({ pid: row[0] as number, state: row[1] as string, query: row[2] as string }))
  )

const STATEMENT = "SELECT $1::int4 + 1, pg_backend_pid()"

interface WorkloadReport {
  /** Server backend pids the statements ran on. */
  readonly serverPids: ReadonlySet<number>
  /** Client connections used (their PgBouncer-issued pids). */
  readonly clients: number
  readonly statements: number
  /** SQLSTATEs (or tags) of the statements that failed. */
  readonly failures: ReadonlyArray<string>
}

/**
 * `clients` pooled connections at once, each running the same parameterized statement `runs`
 * times (well past `prepareThreshold`), plus transactions, a pipelined batch and a stream on
 * every seventh run. Failures are collected, not raised.
 */
const workload = (pool: ConnectionPool.ConnectionPool, clients: number, runs: number) =>
  Effect.gen(function*() {
    const serverPids = new Set<number>()
    const clientPids = new Set<number>()
    const failures: Array<string> = []
    let statements = 0
    const record = <A>(effect: Effect.Effect<A, PgError.PgError>) =>
      Effect.gen(function*() {
        statements++
        const exit = yield* Effect.exit(effect)
        if (Exit.isFailure(exit)) {
          const error = Cause.findErrorOption(exit.cause)
          failures.push(
            error._tag === "Some"
              ? ("sqlState" in error.value && error.value.sqlState !== undefined
                ? `${error.value.sqlState} ${error.value.message}`
                : `${error.value._tag} ${error.value.message}`)
              : Cause.pretty(exit.cause)
          )
        }
        return exit
      })
    yield* Effect.forEach(
      Array.from({ length: clients }, (_, index) => index),
      () =>
        pool.use((conn) =>
          Effect.gen(function*() {
            clientPids.add(conn.info.backendPid)
            for (let run = 0; run < runs; run++) {
              const exit = yield* record(conn.execute(STATEMENT, [run]))
              if (Exit.isSuccess(exit)) {
                expect(exit.value.rows[0][0]).toBe(run + 1)
                serverPids.add(exit.value.rows[0][1] as number)
              }
              if (run % 7 === 3) {
                yield* record(conn.transaction(Effect.gen(function*() {
                  const first = yield* conn.execute(STATEMENT, [run])
                  const second = yield* conn.execute(STATEMENT, [run + 1])
                  // one transaction, one server connection
                  expect(second.rows[0][1]).toBe(first.rows[0][1])
                })))
                yield* record(conn.executeMany(STATEMENT, [[1], [2], [3]]))
                yield* record(Stream.runCollect(conn.stream("SELECT n FROM generate_series(1, $1::int) AS n", [25], { batchSize: 10 })))
              }
              // let the other clients in between, so server connections change hands
              if (run % 4 === 0) yield* Effect.sleep("1 millis")
            }
          })
        ),
      { concurrency: clients, discard: true }
    )
    return { serverPids, clients: clientPids.size, statements, failures } satisfies WorkloadReport
  })

/** Runs a test body; when it fails, prints the tail of each PgBouncer's log. */
const withLogs = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.flatMap(F28, (env) =>
    effect.pipe(Effect.onError(() =>
      Effect.sync(() => {
        for (const [name, b] of [["strict", env.strict], ["lenient", env.lenient]] as const) {
          console.log(`--- PgBouncer (${name}) log tail ---\n${b.logs().split("\n").slice(-40).join("\n")}`)
        }
      })
    )))

const pgbouncerRefused = (error: unknown, what: RegExp) => {
  expect((error as { _tag: string })._tag).toBe("InterfaceError")
  expect((error as { message: string }).message).toMatch(what)
  expect((error as { message: string }).message).toMatch(/pgbouncer: true/)
}

// -----------------------------------------------------------------------------
// the tests
// -----------------------------------------------------------------------------

const TESTS = {
  rejected: "without pgbouncer mode PgBouncer rejects the startup (extra_float_digits): a typed ConnectionError",
  startup: "pgbouncer mode sends only tracked startup parameters; options other than TimeZone are refused before connecting",
  names: "6 clients over 2 server connections: the same statement far past prepareThreshold never collides",
  control: "control, without pgbouncer mode (ignore_startup_parameters): the same workload hits prepared-statement collisions",
  transactions: "transactions, savepoints and SET LOCAL work; a failing transaction rolls back",
  types: "parameters and types round-trip with the server's extra_float_digits (int8, numeric, float8, timestamptz, json, arrays)",
  refused: "LISTEN, WITH HOLD and prepare: true are refused with an InterfaceError before anything is sent",
  cancel: "interrupting a statement cancels it through PgBouncer; the session stays usable",
  copy: "COPY in and out work; a COPY TO stopped early is cancelled through PgBouncer",
  sql: "the option flows through PgSql's connectOptions and ConnectionPool's options",
  prepared: "max_prepared_statements 0 and 200 (PgBouncer 1.21+)"
} as const

// What `pgbouncer: true` decides before any socket is opened: no PgBouncer needed.
describe.runIf(primaryTarget())("F28: pgbouncer: true settings (no PgBouncer needed)", () => {
  const check = (options: string, pgbouncer = true) =>
    Effect.flatMap(PgConfig.make({ host: "127.0.0.1", port: 1, options }), (config) =>
      Effect.exit(Connection.checkSettings(config, { pgbouncer })))

  it.effect("options that set only TimeZone are accepted, in every spelling of the switch", () =>
    Effect.gen(function*() {
      for (const options of ["", "  ", "-c TimeZone=UTC", "-cTimeZone=UTC", "--TimeZone=UTC", "-c timezone=Europe/Paris", "-c TimeZone=UTC  -c timezone=UTC"]) {
        expect(Exit.isSuccess(yield* check(options)), options).toBe(true)
      }
    }))

  it.effect("any other setting or switch is a PgConfigError naming it (key options); without the mode all pass", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [string, RegExp]> = [
        ["-c statement_timeout=5s", /statement_timeout/],
        ["-c TimeZone=UTC -c search_path=app", /search_path/],
        ["--search-path=app", /search_path/],
        ["-c DateStyle=German", /DateStyle/],
        ["-c client_encoding=LATIN1", /client_encoding/],
        ["-c application_name=x", /application_name/],
        ["-d 2", /-d 2/],
        ["-c", /-c/],
        ["-c TimeZone", /TimeZone/]
      ]
      for (const [options, named] of cases) {
        const exit = yield* check(options)
        expect(Exit.isFailure(exit), options).toBe(true)
        if (Exit.isFailure(exit)) {
          const error = Cause.findErrorOption(exit.cause)
          expect(error._tag === "Some" && error.value._tag, options).toBe("PgConfigError")
          if (error._tag === "Some") {
            expect(error.value.key).toBe("options")
            expect(error.value.message, options).toMatch(named)
          }
        }
        expect(Exit.isSuccess(yield* check(options, false)), options).toBe(true)
      }
    }))
})

describe.runIf(primaryTarget())("F28: PgBouncer transaction mode", () => {
  if (binary._tag === "Missing") {
    const reason = `F28 skipped: ${binary.reason}`
    console.warn(`[pgfx] ${reason}`)
    for (const name of Object.values(TESTS)) it(name, (ctx) => ctx.skip(reason))
    return
  }
  const found = binary

  layer(F28.layer, { excludeTestServices: true, timeout: "120 seconds" })(`PgBouncer ${found.version}`, (it) => {
    it.effect(TESTS.rejected, () =>
      Effect.gen(function*() {
        const env = yield* F28
        const app = appName("f28_rejected")
        const error = yield* Effect.flip(Effect.scoped(Connection.connect(env.strict.url(app))))
        expect(error._tag).toBe("ConnectionError")
        if (error._tag === "ConnectionError") {
          expect(error.reason).toBe("Rejected")
          expect(error.sqlState).toBe("08P01")
          expect(error.message).toMatch(/unsupported startup parameter: extra_float_digits/)
        }
        // a pool without the mode never gets a connection either
        const pool = yield* ConnectionPool.make({ conninfo: env.strict.url(app), minSize: 1, reconnectTimeout: "2 seconds" })
        const waited = yield* Effect.exit(pool.wait("2 seconds"))
        expect(Exit.isFailure(waited)).toBe(true)
        yield* pool.close
        expect(env.strict.logs()).toMatch(/unsupported startup parameter: extra_float_digits/)
        yield* audit(env, env.strict, app)
      }).pipe(withLogs), { timeout: 60_000 })

    it.effect(TESTS.startup, () =>
      Effect.gen(function*() {
        const env = yield* F28
        const app = appName("f28_startup")
        yield* Effect.scoped(Effect.gen(function*() {
          const conn = yield* Connection.connect(env.strict.url(app), { pgbouncer: true })
          expect(conn.pgbouncer).toBe(true)
          const settings = yield* conn.execute(
            "SELECT current_setting('extra_float_digits'), current_setting('DateStyle'), current_setting('application_name'), current_setting('client_encoding')"
          )
          // extra_float_digits not sent: the server's default (1 = shortest exact output, PostgreSQL 12+)
          expect(settings.rows).toEqual([["1", "ISO, MDY", app, "UTF8"]])
        }))
        // `-c TimeZone=…` goes as the tracked TimeZone parameter, re-applied on every server connection
        yield* Effect.scoped(Effect.gen(function*() {
          const conn = yield* Connection.connect(env.strict.url(app, { options: "-c TimeZone=Asia/Kolkata" }), { pgbouncer: true })
          for (let run = 0; run < 4; run++) {
            expect((yield* conn.execute("SHOW TimeZone")).rows).toEqual([["Asia/Kolkata"]])
          }
        }))
        // anything else is refused before a socket is opened (port 1: nothing listens)
        const bad = withParams(`postgresql://postgres@127.0.0.1:1/${DB}`, { options: "-c statement_timeout=5s -c TimeZone=UTC" })
        const refused = yield* Effect.flip(Effect.scoped(Connection.connect(bad, { pgbouncer: true })))
        expect(refused._tag).toBe("PgConfigError")
        if (refused._tag === "PgConfigError") {
          expect(refused.key).toBe("options")
          expect(refused.message).toMatch(/statement_timeout/)
          expect(refused.message).not.toMatch(/TimeZone,/)
          expect(refused.message).toMatch(/SET LOCAL/)
        }
        // the same through a pool fails at make, not on every reconnection
        const poolError = yield* Effect.flip(Effect.scoped(ConnectionPool.make({ conninfo: bad, pgbouncer: true, minSize: 1 })))
        expect(poolError._tag).toBe("PgConfigError")
        const resolved = yield* PgConfig.make(bad)
        expect((yield* Effect.flip(Connection.checkSettings(resolved, { pgbouncer: true })))._tag).toBe("PgConfigError")
        yield* Connection.checkSettings(resolved) // without the mode `options` goes as it is
        yield* audit(env, env.strict, app)
      }).pipe(withLogs), { timeout: 60_000 })

    it.effect(TESTS.names, () =>
      Effect.gen(function*() {
        const env = yield* F28
        const app = appName("f28_names")
        const watcher = yield* admin(env.server.url)
        yield* Effect.scoped(Effect.gen(function*() {
          const pool = yield* ConnectionPool.make({ conninfo: env.strict.url(app), minSize: 6, pgbouncer: true, name: "f28" })
          yield* pool.wait("30 seconds")
          let mostBackends = 0
          const sampler = yield* Effect.forkChild(Effect.forever(
            Effect.flatMap(serverBackends(watcher.conn), (backends) =>
              Effect.sync(() => {
                mostBackends = Math.max(mostBackends, backends.length)
              })).pipe(Effect.andThen(Effect.sleep("20 millis")))
          ))
          const report = yield* workload(pool, 6, 30)
          yield* Fiber.interrupt(sampler)
          expect(report.failures).toEqual([])
          expect(report.clients).toBe(6)
          // six clients really shared PgBouncer's two server connections
          expect(report.serverPids.size).toBeGreaterThanOrEqual(1)
          expect(report.serverPids.size).toBeLessThanOrEqual(POOL_SIZE)
          expect(mostBackends).toBeLessThanOrEqual(POOL_SIZE)
          const stats = yield* pool.stats
          expect(stats.pool_size).toBe(6)
          expect(stats.pool_available).toBe(6)
        }))
        yield* audit(env, env.strict, app)
      }).pipe(withLogs), { timeout: 120_000 })

    it.effect(TESTS.control, () =>
      Effect.gen(function*() {
        const env = yield* F28
        const app = appName("f28_control")
        yield* Effect.scoped(Effect.gen(function*() {
          // PgBouncer told to ignore extra_float_digits lets the default startup in; named
          // statements then meet server connections that already have, or lack, them
          const pool = yield* ConnectionPool.make({ conninfo: env.lenient.url(app), minSize: 6, name: "f28-control" })
          yield* pool.wait("30 seconds")
          const report = yield* workload(pool, 6, 30)
          expect(report.serverPids.size).toBeLessThanOrEqual(POOL_SIZE)
          // six clients each prepare `_pgfx_0` once; two server connections can hold only two
          expect(report.failures.length).toBeGreaterThan(0)
          expect(report.failures.every((failure) => /^(42P05|26000) prepared statement/.test(failure)), report.failures.join("\n"))
            .toBe(true)
        }))
        yield* audit(env, env.lenient, app)
      }).pipe(withLogs), { timeout: 120_000 })

    it.effect(TESTS.transactions, () =>
      Effect.gen(function*() {
        const env = yield* F28
        const app = appName("f28_tx")
        yield* Effect.scoped(Effect.gen(function*() {
          const pool = yield* ConnectionPool.make({ conninfo: env.strict.url(app), minSize: 3, pgbouncer: true })
          yield* pool.wait("30 seconds")
          yield* pool.use((conn) =>
            Effect.gen(function*() {
              yield* conn.transaction(Effect.gen(function*() {
                yield* conn.execute("INSERT INTO f28_tx VALUES ($1, $2)", [1, "committed"])
                // session settings only as SET LOCAL, inside the transaction
                yield* conn.execute("SET LOCAL statement_timeout = '5s'")
                expect((yield* conn.execute("SHOW statement_timeout")).rows).toEqual([["5s"]])
                // a savepoint that fails and rolls back alone
                const inner = yield* Effect.exit(conn.transaction(Effect.gen(function*() {
                  yield* conn.execute("INSERT INTO f28_tx VALUES ($1, $2)", [2, "savepoint"])
                  return yield* Effect.fail("inner boom" as const)
                })))
                expect(Exit.isFailure(inner)).toBe(true)
                yield* conn.execute("INSERT INTO f28_tx VALUES ($1, $2)", [3, "committed"])
                // a server cursor inside a transaction keeps its server connection
                const cursor = yield* Effect.scoped(Effect.gen(function*() {
                  const cur = yield* conn.serverCursor("f28_cur", "SELECT n FROM generate_series(1, $1::int) AS n", [10], { itersize: 3 })
                  return yield* Stream.runCollect(cur.stream)
                }))
                expect(cursor.map((row) => row[0])).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
              }))
              expect(conn.info.transactionStatus).toBe("IDLE")
              // the SET LOCAL ended with its transaction
              expect((yield* conn.execute("SHOW statement_timeout")).rows).toEqual([["0"]])
              // a failing transaction rolls back
              const failed = yield* Effect.exit(conn.transaction(Effect.gen(function*() {
                yield* conn.execute("INSERT INTO f28_tx VALUES ($1, $2)", [4, "rolled back"])
                return yield* Effect.fail("boom" as const)
              })))
              expect(Exit.isFailure(failed)).toBe(true)
              // and so does one the server fails
              const duplicate = yield* Effect.flip(conn.transaction(Effect.gen(function*() {
                yield* conn.execute("INSERT INTO f28_tx VALUES ($1, $2)", [5, "rolled back"])
                yield* conn.execute("INSERT INTO f28_tx VALUES ($1, $2)", [1, "duplicate"])
              })))
              expect(duplicate._tag).toBe("UniqueViolation")
              expect(conn.info.transactionStatus).toBe("IDLE")
            })
          )
          // seen from other clients (and other server connections) and directly
          const seen = yield* pool.use((conn) => conn.execute("SELECT id, note FROM f28_tx ORDER BY id"))
          expect(seen.rows).toEqual([[1, "committed"], [3, "committed"]])
          const direct = yield* Effect.scoped(Effect.flatMap(
            Connection.connect(env.direct),
            (conn) => conn.execute("SELECT id FROM f28_tx ORDER BY id")
          ))
          expect(direct.rows).toEqual([[1], [3]])
        }))
        yield* audit(env, env.strict, app)
      }).pipe(withLogs), { timeout: 60_000 })

    it.effect(TESTS.types, () =>
      Effect.gen(function*() {
        const env = yield* F28
        const app = appName("f28_types")
        yield* Effect.scoped(Effect.gen(function*() {
          const conn = yield* Connection.connect(
            env.strict.url(app, { options: "-c TimeZone=Asia/Kolkata" }),
            { pgbouncer: true }
          )
          const floats = [
            0.1, 1 / 3, Math.PI, -2.5e-7, 5e-324, 2.2250738585072014e-308, Number.MAX_VALUE, Number.EPSILON,
            123456789.12345678, 9007199254740993, 1e21, -0, Infinity, -Infinity, Number.NaN
          ]
          for (let run = 0; run < 8; run++) {
            // extended protocol (unnamed statement, text results: every run is a first run)
            const bound = yield* conn.execute("SELECT $1::float8 AS x", [floats[run]])
            expect(Object.is(bound.rows[0][0], floats[run]), `float8 ${floats[run]}`).toBe(true)
          }
          const array = yield* conn.execute("SELECT x FROM unnest($1::float8[]) AS x", [floats])
          expect(array.rows.map((row) => row[0])).toEqual(floats)
          array.rows.forEach((row, index) => expect(Object.is(row[0], floats[index]), `float8 ${floats[index]}`).toBe(true))
          // simple protocol, the server's own text output of literals
          const literals = floats.map((x) => `'${Object.is(x, -0) ? "-0" : String(x)}'::float8`).join(", ")
          const printed = yield* conn.execute(`SELECT ${literals}`)
          printed.rows[0].forEach((value, index) => expect(Object.is(value, floats[index]), `float8 ${floats[index]}`).toBe(true))
          const float4 = yield* conn.execute("SELECT $1::float4, '3.4028235e38'::float4", [0.1])
          expect(float4.rows[0]).toEqual([Math.fround(0.1), Math.fround(3.4028235e38)])

          const when = new Date("2024-02-29T12:34:56.789Z")
          const big = 9223372036854775807n
          const doc = { a: [1, "x", null, { b: true }], "é": "ü" }
          const values = yield* conn.execute(
            "SELECT $1::int8, $2::numeric, $3::timestamptz, $4::json, $5::jsonb, $6::int4[], $7::text[], $8::int8[], $9::numeric(40,20)",
            [big, "12345678901234567890.000000000123", when, doc, doc, [1, 2, null, 3], ["a,b", "q\"uote", "", null, "back\\slash", "NULL"], [-1n, big], "-0.00000000000000000001"]
          )
          expect(values.rows[0]).toEqual([
            big,
            "12345678901234567890.000000000123",
            when,
            doc,
            doc,
            [1, 2, null, 3],
            ["a,b", "q\"uote", "", null, "back\\slash", "NULL"],
            [-1n, big],
            "-0.00000000000000000001"
          ])
          // timestamptz printed in the session's TimeZone (+05:30) decodes to the same instant
          expect((yield* conn.execute("SELECT $1::timestamptz::text", [when])).rows[0][0]).toBe("2024-02-29 18:04:56.789+05:30")
          expect((yield* conn.execute("SELECT '2024-02-29 18:04:56.789+05:30'::timestamptz")).rows[0][0]).toEqual(when)
        }))
        yield* audit(env, env.strict, app)
      }).pipe(withLogs), { timeout: 60_000 })

    it.effect(TESTS.refused, () =>
      Effect.gen(function*() {
        const env = yield* F28
        const app = appName("f28_refused")
        const watcher = yield* admin(env.server.url)
        yield* Effect.scoped(Effect.gen(function*() {
          const conn = yield* Connection.connect(env.strict.url(app), { pgbouncer: true })
          yield* conn.execute("SELECT 'f28 marker'")
          // the last statement of each server backend (PgBouncer's server connections)
          const lastQueries = Effect.map(
            serverBackends(watcher.conn),
            (backends) => new Map(backends.map((b) => [b.pid, b.query] as const))
          )
          const before = yield* lastQueries

          pgbouncerRefused(yield* Effect.flip(Stream.runCollect(conn.listen("f28_channel"))), /^LISTEN/)
          pgbouncerRefused(
            yield* Effect.flip(Effect.scoped(conn.serverCursor("f28_hold", "SELECT 1", [], { withHold: true }))),
            /WITH HOLD/
          )
          pgbouncerRefused(
            yield* Effect.flip(Effect.scoped(Cursor.declare(conn, "f28_hold", "SELECT 1", undefined, { withHold: true }))),
            /WITH HOLD/
          )
          pgbouncerRefused(yield* Effect.flip(conn.execute("SELECT $1::int", [1], { prepare: true })), /prepare/)
          pgbouncerRefused(yield* Effect.flip(conn.cursor().execute("SELECT $1::int", [1], { prepare: true })), /prepare/)
          pgbouncerRefused(
            yield* Effect.flip(Stream.runCollect(conn.stream("SELECT $1::int", [1], { prepare: true }))),
            /prepare/
          )

          // nothing reached the server: no LISTEN, BEGIN or DECLARE ran; the session is untouched
          expect(conn.info.transactionStatus).toBe("IDLE")
          const after = yield* lastQueries
          expect([...after.values()].filter((query) => /LISTEN|DECLARE|BEGIN/i.test(query))).toEqual([])
          expect([...before.values()]).toContain("SELECT 'f28 marker'")
          for (const [pid, query] of before) {
            if (after.has(pid)) expect(after.get(pid), `server backend ${pid}`).toBe(query)
          }
          expect(env.strict.logs()).not.toMatch(/LISTEN/)
          // what does not need the session still works: a cursor inside a transaction, NOTIFY, prepare: false
          yield* conn.notify("f28_channel", "hello")
          expect((yield* conn.execute("SELECT $1::int", [7], { prepare: false })).rows).toEqual([[7]])
          const rows = yield* Effect.scoped(Effect.gen(function*() {
            const cur = yield* conn.serverCursor("f28_plain", "SELECT n FROM generate_series(1, 3) AS n")
            return yield* cur.fetchAll
          }))
          expect(rows).toEqual([[1], [2], [3]])
        }))
        yield* audit(env, env.strict, app)
      }).pipe(withLogs), { timeout: 60_000 })

    it.effect(TESTS.cancel, () =>
      Effect.gen(function*() {
        const env = yield* F28
        const app = appName("f28_cancel")
        const watcher = yield* admin(env.server.url)
        yield* Effect.scoped(Effect.gen(function*() {
          const conn = yield* Connection.connect(env.strict.url(app), { pgbouncer: true })
          const sleeping = Effect.flatMap(
            serverBackends(watcher.conn),
            (backends) => Effect.succeed(backends.find((b) => b.state === "active" && b.query.includes("pg_sleep(10)")))
          )
          // interrupting the fiber: CancelRequest through PgBouncer, response drained. Three
          // times: a cancel socket half-closed before PgBouncer forwarded it used to make
          // PgBouncer 1.18 drop the cancel, or exit ("FATAL … bad client state")
          for (let round = 0; round < 3; round++) {
            const fiber = yield* Effect.forkChild(conn.execute("SELECT pg_sleep(10)"))
            let backend = yield* sleeping
            const deadline = performance.now() + 10_000
            while (backend === undefined && performance.now() < deadline) {
              yield* Effect.sleep("20 millis")
              backend = yield* sleeping
            }
            expect(backend, "the statement never showed up as active on the server").toBeDefined()
            const started = performance.now()
            yield* Fiber.interrupt(fiber)
            const exit = yield* Fiber.await(fiber)
            expect(interruptedOnly(exit)).toBe(true)
            // cancel + drain, well below drainTimeout (5 s): the server confirmed the cancel
            expect(performance.now() - started).toBeLessThan(3000)
            expect(conn.broken).toBe(false)
            yield* watcher.waitForState(backend!.pid, "idle", 5000)
            expect((yield* conn.execute("SELECT 1")).rows).toEqual([[1]])
            expect(env.strict.alive()).toBe(true)
          }
          expect(env.strict.logs()).not.toMatch(/FATAL|client unexpected eof/)

          // a caller's deadline does the same
          const timedOut = yield* Effect.exit(conn.execute("SELECT pg_sleep(10)").pipe(Effect.timeout("300 millis")))
          expect(Exit.isFailure(timedOut) && Cause.pretty(timedOut.cause).includes("TimeoutError")).toBe(true)
          expect(conn.broken).toBe(false)
          expect((yield* conn.execute("SELECT $1::int", [2])).rows).toEqual([[2]])
          expect(conn.info.transactionStatus).toBe("IDLE")
          // no server backend still sleeping
          const stillSleeping = (yield* serverBackends(watcher.conn)).filter((b) => b.query.includes("pg_sleep") && b.state === "active")
          expect(stillSleeping).toEqual([])
        }))
        yield* audit(env, env.strict, app)
      }).pipe(withLogs), { timeout: 60_000 })

    it.effect(TESTS.copy, () =>
      Effect.gen(function*() {
        const env = yield* F28
        const app = appName("f28_copy")
        yield* Effect.scoped(Effect.gen(function*() {
          const conn = yield* Connection.connect(env.strict.url(app), { pgbouncer: true })
          // a COPY is one statement: it keeps its server connection until ReadyForQuery
          const rows = Stream.range(1, 5000).pipe(Stream.map((n) => [n, `row ${n}`] as const))
          expect(yield* Copy.fromStream(conn, "COPY f28_copy (n, s) FROM STDIN", rows, { types: ["int4", "text"] })).toBe(5000)
          const inTransaction = yield* conn.transaction(
            Copy.fromStream(conn, "COPY f28_copy (n, s) FROM STDIN", Stream.make([0, "in a transaction"] as const), {
              types: ["int4", "text"],
              format: "binary"
            })
          )
          expect(inTransaction).toBe(1)
          const out = yield* Stream.runCollect(
            Copy.to(conn, "COPY (SELECT n, s FROM f28_copy ORDER BY n) TO STDOUT", { types: ["int4", "text"] })
          )
          expect(out.length).toBe(5001)
          expect(out[0]).toEqual([0, "in a transaction"])
          expect(out[5000]).toEqual([5000, "row 5000"])
          // stopping early cancels the COPY on the server (through PgBouncer) and drains it
          const started = performance.now()
          const some = yield* Stream.runCollect(
            Stream.take(Copy.to(conn, "COPY (SELECT generate_series(1, 50000000)) TO STDOUT", { types: ["int4"] }), 5)
          )
          expect(some).toEqual([[1], [2], [3], [4], [5]])
          expect(performance.now() - started).toBeLessThan(4000)
          expect(conn.broken).toBe(false)
          expect((yield* conn.execute("SELECT count(*) FROM f28_copy")).rows).toEqual([[5001n]])
          expect(env.strict.alive()).toBe(true)
        }))
        yield* audit(env, env.strict, app)
      }).pipe(withLogs), { timeout: 60_000 })

    it.effect(TESTS.sql, () =>
      Effect.gen(function*() {
        const env = yield* F28
        const app = appName("f28_sql")
        yield* Effect.scoped(Effect.gen(function*() {
          const sql = yield* PgSql.make({ settings: env.strict.url(app), connectOptions: { pgbouncer: true } })
          for (let run = 0; run < 8; run++) {
            const rows = yield* sql<{ n: number }>`SELECT ${run}::int + 1 AS n`
            expect(rows).toEqual([{ n: run + 1 }])
          }
          const listened = yield* Effect.flip(Stream.runCollect(sql.listen("f28_sql")))
          expect(listened._tag).toBe("SqlError")
          expect(String(listened.message) + String((listened as { cause?: unknown }).cause)).toMatch(/LISTEN/)

          const pool = yield* ConnectionPool.make({ conninfo: env.strict.url(app), minSize: 2, pgbouncer: true })
          yield* pool.wait("30 seconds")
          const refused = yield* Effect.flip(pool.use((conn) => Stream.runCollect(conn.listen("f28_pool"))))
          pgbouncerRefused(refused, /^LISTEN/)
          yield* pool.use((conn) => Effect.sync(() => expect(conn.pgbouncer).toBe(true)))
        }))
        yield* audit(env, env.strict, app)
      }).pipe(withLogs), { timeout: 60_000 })

    if (!preparedTracking) {
      it(TESTS.prepared, (ctx) =>
        ctx.skip(
          `PgBouncer ${found.version} < 1.21: no max_prepared_statements (protocol-level prepared statements in ` +
            "transaction mode arrived in 1.21), so the 0 and 200 variants do not apply"
        ))
    } else {
      for (const maxPrepared of [0, 200]) {
        it.effect(`${TESTS.prepared}: max_prepared_statements = ${maxPrepared}`, () =>
          Effect.gen(function*() {
            const env = yield* F28
            const app = appName(`f28_mps_${maxPrepared}`)
            const variant = yield* bouncer(env.server, { max_prepared_statements: maxPrepared })
            yield* Effect.scoped(Effect.gen(function*() {
              const pool = yield* ConnectionPool.make({ conninfo: variant.url(app), minSize: 6, pgbouncer: true })
              yield* pool.wait("30 seconds")
              const report = yield* workload(pool, 6, 30)
              expect(report.failures).toEqual([])
              expect(report.serverPids.size).toBeLessThanOrEqual(POOL_SIZE)
            }))
            yield* audit(env, variant, app)
          }).pipe(withLogs), { timeout: 120_000 })
      }
    }
  })
})
