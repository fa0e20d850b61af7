/**
 * Shared helpers of the reliability scenarios: tagging sessions with an `application_name`,
 * watching and killing them from an admin session, timing, and the leak audit every scenario
 * ends with (reliability.md, A.4).
 */
import { randomBytes } from "node:crypto"
import { Cause, Duration, Effect, Exit, Logger, References } from "effect"
import { expect } from "vitest"
import { Connection } from "../../src/index.ts"

/** A fresh `application_name` for one test: `pgfx_<label>_<random>` (short: PostgreSQL keeps 63 bytes). */
export const appName = (label: string): string =>
  `pgfx_${label.toLowerCase().replace(/[^a-z0-9]+/g, "_").slice(0, 24)}_${randomBytes(3).toString("hex")}`

/** `url` with query parameters set (e.g. `application_name`, `connect_timeout`). */
export const withParams = (url: string, params: Readonly<Record<string, string | number>>): string => {
  const u = new URL(url)
  for (const [key, value] of Object.entries(params)) u.searchParams.set(key, String(value))
  // libpq URIs percent-decode only: a space must be %20, never URLSearchParams' "+"
  u.search = [...u.searchParams].map(([key, value]) => `${encodeURIComponent(key)}=${encodeURIComponent(value)}`).join("&")
  return u.toString()
}

/** `url` tagged with an application name. */
export const withApp = (url: string, name: string, params: Readonly<Record<string, string | number>> = {}) =>
  withParams(url, { application_name: name, ...params })

/** Milliseconds since `start` (a `performance.now()` value). */
export const since = (start: number): number => performance.now() - start

/** Runs `effect` and reports how long it took, in milliseconds. */
export const timed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.map(Effect.timed(effect), ([duration, value]) => ({ ms: Duration.toMillis(duration), value }))

/** An admin session (superuser URL): look at and act on other sessions. */
export interface Admin {
  readonly conn: Connection.Connection
  /** pg_stat_activity rows of an application name: [pid, state, query, wait_event]. */
  readonly sessions: (app: string) => Effect.Effect<ReadonlyArray<ReadonlyArray<unknown>>, unknown>
  readonly stateOf: (pid: number) => Effect.Effect<string | undefined, unknown>
  readonly terminate: (pid: number) => Effect.Effect<boolean, unknown>
  /** Polls until the session `pid` is in `state` (bounded). */
  readonly waitForState: (pid: number, state: string | undefined, ms?: number) => Effect.Effect<void, unknown>
}

export const admin = (url: string) =>
  Effect.gen(function*() {
    const conn = yield* Connection.connect(withApp(url, "pgfx_admin"))
    const stateOf = (pid: number) =>
      Effect.map(
        conn.execute("SELECT state FROM pg_stat_activity WHERE pid = $1", [pid]),
        (result) => result.rows[0]?.[0] as string | undefined
      )
    const result: Admin = {
      conn,
      sessions: (app) =>
        Effect.map(
          conn.execute(
            "SELECT pid, state, query, wait_event FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()",
            [app]
          ),
          (r) => r.rows
        ),
      stateOf,
      terminate: (pid) =>
        Effect.map(conn.execute("SELECT pg_terminate_backend($1)", [pid]), (r) => r.rows[0]?.[0] === true),
      waitForState: (pid, state, ms = 3000) =>
        Effect.gen(function*() {
          const deadline = performance.now() + ms
          let seen = yield* stateOf(pid)
          while (seen !== state) {
            if (performance.now() > deadline) {
              return yield* Effect.fail(new Error(`session ${pid} is "${seen}", not "${state}" after ${ms} ms`))
            }
            yield* Effect.sleep("10 millis")
            seen = yield* stateOf(pid)
          }
        })
    }
    return result
  })

/** What the leak audit saw. */
export interface AuditReport {
  readonly sessions: ReadonlyArray<ReadonlyArray<unknown>>
  readonly waitedMs: number
}

/**
 * The leak audit: within `waitMs` (default 3 s, for sessions that are still ending), no session
 * of `app` is busy or `idle in transaction` — and none at all unless `allowIdle` — then a fresh
 * connection answers `SELECT 1`.
 */
export const leakAudit = (
  url: string,
  app: string,
  options?: { readonly allowIdle?: boolean | undefined; readonly waitMs?: number | undefined }
): Effect.Effect<AuditReport, unknown> =>
  Effect.scoped(Effect.gen(function*() {
    const started = performance.now()
    const watcher = yield* admin(url)
    const deadline = started + (options?.waitMs ?? 3000)
    let rows = yield* watcher.sessions(app)
    const bad = (all: ReadonlyArray<ReadonlyArray<unknown>>) =>
      all.filter((row) => !(options?.allowIdle === true && row[1] === "idle"))
    while (bad(rows).length > 0 && performance.now() < deadline) {
      yield* Effect.sleep("25 millis")
      rows = yield* watcher.sessions(app)
    }
    expect(bad(rows), `sessions of ${app} left behind`).toEqual([])
    const fresh = yield* Connection.connect(withApp(url, `${app}_audit`))
    expect((yield* fresh.execute("SELECT 1")).rows).toEqual([[1]])
    return { sessions: rows, waitedMs: since(started) }
  }))

/** Whether an exit failed with only interruptions. */
export const interruptedOnly = (exit: Exit.Exit<unknown, unknown>): boolean =>
  Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause)

/** The typed error of a failed exit (fails the test otherwise). */
export const failureOf = <E>(exit: Exit.Exit<unknown, E>): E => {
  if (Exit.isSuccess(exit)) throw new Error("expected a failure, got a success")
  const error = Cause.findErrorOption(exit.cause)
  if (error._tag === "None") throw new Error(`expected a typed failure, got ${Cause.pretty(exit.cause)}`)
  return error.value
}

/**
 * Runs `effect` with every log line captured (all levels) as structured JSON, and returns the
 * lines with the effect's exit.
 */
export const captureLogs = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const lines: Array<string> = []
    const capture = Logger.map(Logger.formatStructured, (entry) => {
      lines.push(JSON.stringify(entry))
    })
    const exit = yield* effect.pipe(
      Effect.provide(Logger.layer([capture])),
      Effect.provideService(References.MinimumLogLevel, "All"),
      Effect.exit
    )
    return { exit, lines }
  })

/** Polls `check` every 10 ms for up to `ms`; fails with `what` if it never holds. */
export const eventually = <E, R>(check: Effect.Effect<boolean, E, R>, what: string, ms = 3000) =>
  Effect.gen(function*() {
    const deadline = performance.now() + ms
    while (!(yield* check)) {
      if (performance.now() > deadline) return yield* Effect.fail(new Error(`timed out waiting for ${what}`))
      yield* Effect.sleep("10 millis")
    }
  })
