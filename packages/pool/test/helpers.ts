/**
 * Test helpers for the pool suites: an observer session for
 * `pg_stat_activity`, the after-test audit (no session of the test database
 * left busy or `idle in transaction`), the leak audit of the fault scenarios
 * (reliability.md A.4: `scenario` and `auditPool`), a log capture, and a TCP
 * proxy that can stop, start and blackhole (psycopg's `proxy` fixture).
 */
import { Connection } from "@pgfx/core"
import { Cause, Effect, Exit, Logger, References } from "effect"
import type { Scope } from "effect"
import * as net from "node:net"
import { expect } from "vitest"
import { TestDatabase } from "../../../test/harness.ts"
import { admin, appName, leakAudit, withApp } from "../../core/test/reliability/support.ts"
import type { ConnectionPool } from "../src/index.ts"

export { appName, leakAudit, withApp }

/** A captured log line. */
export interface LogRecord {
  readonly level: string
  readonly message: string
  readonly annotations: Readonly<Record<string, unknown>>
  readonly time: number
}

/**
 * A logger that records every line instead of printing it, from `minimum` up
 * (default Debug: the pool's lifecycle lines included).
 */
export const captureLogs = (minimum: "Debug" | "Info" = "Debug") => {
  const records: Array<LogRecord> = []
  const logger = Logger.make((options) => {
    const message = Array.isArray(options.message) ? options.message.map(String).join(" ") : String(options.message)
    records.push({
      level: options.logLevel,
      message,
      annotations: options.fiber.getRef(References.CurrentLogAnnotations),
      time: Date.now()
    })
  })
  return {
    records,
    /** Lines logged by the pool at WARNING. */
    warnings: (pool?: string) =>
      records.filter((r) => r.level === "Warn" && r.annotations.logger === "pgfx.pool" && (pool === undefined || r.annotations.pool === pool)),
    /** Lines logged by the pool (any level). */
    poolLines: (pool?: string) =>
      records.filter((r) => r.annotations.logger === "pgfx.pool" && (pool === undefined || r.annotations.pool === pool)),
    provide: <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
      Effect.provide(effect, Logger.layer([logger])).pipe(Effect.provideService(References.MinimumLogLevel, minimum))
  }
}

/** Quiet logger for tests that do not inspect logs. */
export const quiet = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.provide(effect, Logger.layer([]))

/** A session for looking at the test database from outside. */
export const observe = (url: string): Effect.Effect<Connection.Connection, unknown, Scope.Scope> => Connection.connect(url)

/** Sessions of `database` other than the observer: pid, state, query. */
export const sessions = (observer: Connection.Connection, database: string) =>
  Effect.map(
    observer.execute(
      "SELECT pid, state, query FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() AND backend_type = 'client backend' ORDER BY pid",
      [database]
    ),
    (result) => result.rows.map((row) => ({ pid: row[0] as number, state: row[1] as string | null, query: row[2] as string }))
  )

/**
 * The after-test audit: within `withinMs`, no session of the database is
 * `active` or `idle in transaction` (other than the observer).
 */
export const auditSessions = (url: string, withinMs = 2000) =>
  Effect.scoped(
    Effect.gen(function*() {
      const observer = yield* Connection.connect(url)
      const database = new URL(url).pathname.slice(1)
      const deadline = Date.now() + withinMs
      let busy: Array<{ pid: number; state: string | null; query: string }> = []
      while (true) {
        busy = (yield* sessions(observer, database)).filter((s) =>
          s.state === "active" || (s.state ?? "").startsWith("idle in transaction")
        )
        if (busy.length === 0 || Date.now() > deadline) break
        yield* Effect.sleep("50 millis")
      }
      expect(busy, "sessions left busy or idle in transaction").toEqual([])
    })
  )

/** Polls `condition` until true or `withinMs` elapsed; returns its last value. */
export const eventually = <E, R>(condition: Effect.Effect<boolean, E, R>, withinMs = 2000, everyMs = 20) =>
  Effect.gen(function*() {
    const deadline = Date.now() + withinMs
    while (true) {
      if (yield* condition) return true
      if (Date.now() > deadline) return false
      yield* Effect.sleep(everyMs)
    }
  })

/** Wall-clock milliseconds an effect takes, with its exit. */
export const timed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const started = Date.now()
    const exit = yield* Effect.exit(effect)
    return { exit, ms: Date.now() - started }
  })

/** A TCP proxy in front of a server. */
export interface Proxy {
  readonly port: number
  /** `url` with host and port replaced by the proxy's. */
  readonly via: (url: string) => string
  /** Listens and forwards (again); ends a blackhole for new connections. */
  readonly start: Effect.Effect<void>
  /** Stops listening and cuts every forwarded connection (the server "goes away"). */
  readonly stop: Effect.Effect<void>
  /** Keeps every socket open but forwards nothing, in either direction (half-open TCP). */
  readonly blackhole: Effect.Effect<void>
  /** Bytes forwarded so far, both directions. */
  readonly forwarded: () => number
}

/** A proxy to `host:port` on a free loopback port, removed with the scope. */
export const makeProxy = (target: string): Effect.Effect<Proxy, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const upstream = new URL(target)
      const targetHost = upstream.hostname
      const targetPort = Number(upstream.port || 5432)
      const sockets = new Set<net.Socket>()
      let holes = false
      let forwarded = 0
      let server: net.Server | undefined
      const port = await new Promise<number>((resolve) => {
        const probe = net.createServer()
        probe.listen(0, "127.0.0.1", () => {
          const p = (probe.address() as net.AddressInfo).port
          probe.close(() => resolve(p))
        })
      })
      const onClient = (client: net.Socket) => {
        sockets.add(client)
        client.on("error", () => {})
        client.on("close", () => sockets.delete(client))
        if (holes) return
        const backend = net.connect({ host: targetHost, port: targetPort })
        sockets.add(backend)
        backend.on("error", () => client.destroy())
        client.on("error", () => backend.destroy())
        backend.on("close", () => {
          sockets.delete(backend)
          client.destroy()
        })
        client.on("close", () => backend.destroy())
        client.on("data", (chunk: Buffer) => {
          if (holes) return
          forwarded += chunk.length
          backend.write(chunk)
        })
        backend.on("data", (chunk: Buffer) => {
          if (holes) return
          forwarded += chunk.length
          client.write(chunk)
        })
      }
      const start = () =>
        new Promise<void>((resolve, reject) => {
          holes = false
          if (server !== undefined) return resolve()
          const s = net.createServer(onClient)
          s.once("error", reject)
          s.listen(port, "127.0.0.1", () => {
            server = s
            resolve()
          })
        })
      const stop = () =>
        new Promise<void>((resolve) => {
          const s = server
          server = undefined
          for (const socket of sockets) socket.destroy()
          sockets.clear()
          if (s === undefined) return resolve()
          s.close(() => resolve())
        })
      await start()
      const proxy: Proxy = {
        port,
        via: (url) => {
          const u = new URL(url)
          u.hostname = "127.0.0.1"
          u.port = String(port)
          return u.toString()
        },
        start: Effect.promise(start),
        stop: Effect.promise(stop),
        blackhole: Effect.sync(() => {
          holes = true
        }),
        forwarded: () => forwarded
      }
      return { proxy, stop }
    }),
    ({ stop }) => Effect.promise(stop)
  ).pipe(Effect.map(({ proxy }) => proxy))

/** Runs a test body in its own scope, then checks no session of the test database was left behind. */
export const audited = <A, E, R>(body: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const url = yield* TestDatabase.url
    yield* Effect.scoped(body)
    yield* auditSessions(url)
  })

/** The backend pid of a pooled connection, to tell connections apart. */
export const pid = (conn: Connection.Connection<unknown>) => conn.info.backendPid

/** The squashed failure of an exit, or `undefined` when it succeeded. */
export const failureOf = <A, E>(exit: Exit.Exit<A, E>) => Exit.isFailure(exit) ? Cause.squash(exit.cause) : undefined

/**
 * The pool half of the leak audit (reliability.md A.4), run while `pool` is
 * still open. The pool settles (within `withinMs`: sessions still ending,
 * replacements still connecting): nobody waits, `pool_size = pool_available`
 * (no lease outstanding, nothing being made: idle + in use = idle + 0) and the
 * server shows exactly `pool_size` sessions of `app`, all `idle`. Then every
 * pooled connection is borrowed at once (so none is secretly lent out) and
 * must be IDLE with no cursor and no LISTEN left, a `SELECT 1` through the
 * pool answers, and the pool settles again. Returns the final stats.
 *
 * `observer`: the test database's URL (an admin session is opened) or an open
 * connection to watch the server with. `leases`: the caller's own count of
 * checkouts still held (storm and load runs), which must be 0 too.
 */
export const auditPool = (
  pool: ConnectionPool.ConnectionPool,
  observer: string | Connection.Connection,
  app: string,
  options: { readonly withinMs?: number | undefined; readonly leases?: (() => number) | undefined } = {}
) =>
  Effect.scoped(Effect.gen(function*() {
    const watcher = typeof observer === "string" ? (yield* admin(observer)).conn : observer
    const withinMs = options.withinMs ?? 10_000
    const leases = options.leases ?? (() => 0)
    const settled = (when: string) =>
      Effect.gen(function*() {
        const deadline = Date.now() + withinMs
        while (true) {
          const stats = yield* pool.stats
          const backends = yield* backendsOf(watcher, app)
          if (
            stats.requests_waiting === 0 && stats.pool_size === stats.pool_available && leases() === 0 &&
            backends.length === stats.pool_size && backends.every((b) => b.state === "idle")
          ) return stats
          if (Date.now() > deadline) {
            return expect.fail(
              `pool '${pool.name}' did not settle ${when}: stats=${JSON.stringify(stats)} leases=${leases()} backends of ${app}=${JSON.stringify(backends)}`
            )
          }
          yield* Effect.sleep("25 millis")
        }
      })
    const before = yield* settled("before the audit")
    const pooled = yield* Effect.scoped(Effect.forEach(
      Array.from({ length: before.pool_size }, (_, i) => i),
      () =>
        Effect.flatMap(pool.connectionWith({ timeout: "5 seconds" }), (conn) =>
          Effect.map(
            conn.execute("SELECT (SELECT count(*)::int FROM pg_cursors), (SELECT count(*)::int FROM pg_listening_channels())"),
            (result) => ({ pid: conn.info.backendPid, status: conn.info.transactionStatus, cursorsAndChannels: result.rows[0] })
          )),
      { concurrency: "unbounded" }
    ))
    for (const session of pooled) {
      expect(session, `pooled session ${session.pid}`).toMatchObject({ status: "IDLE", cursorsAndChannels: [0, 0] })
    }
    expect(new Set(pooled.map((s) => s.pid)).size, "distinct pooled sessions").toBe(before.pool_size)
    expect((yield* pool.use((conn) => conn.execute("SELECT 1"), { timeout: "10 seconds" })).rows).toEqual([[1]])
    return yield* settled("after the audit")
  }))

/** Client backends of `app` on the server (not `observer`'s own): pid, state, query. */
export const backendsOf = (observer: Connection.Connection, app: string) =>
  Effect.map(
    observer.execute(
      "SELECT pid, state, query FROM pg_stat_activity WHERE application_name = $1 AND backend_type = 'client backend' AND pid <> pg_backend_pid()",
      [app]
    ),
    (result) => result.rows.map((row) => ({ pid: row[0] as number, state: row[1] as string | null, query: row[2] as string | null }))
  )

/**
 * A fault scenario of reliability.md A.4 on the test database, ending with
 * the whole leak audit. `body` gets a fresh `application_name` to tag its
 * conninfo with (`withApp(url, app)`) and ends with `auditPool` on its pool
 * while the pool is open; once its scope (and so the pool) is closed, no
 * session of the database is busy or `idle in transaction`, no session of
 * `app` is left at all, and a fresh connection answers `SELECT 1`.
 */
export const scenario = <A, E, R>(label: string, body: (app: string) => Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const url = yield* TestDatabase.url
    const app = appName(label)
    const result = yield* Effect.scoped(body(app))
    yield* auditSessions(url)
    yield* leakAudit(url, app)
    return result
  })
