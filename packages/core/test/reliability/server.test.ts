/**
 * Scenarios that need a server of their own (reliability.md F7, F8c, F8d): a hung backend
 * (SIGSTOP), a slow login (`post_auth_delay`), a role over its CONNECTION LIMIT. One throwaway
 * embedded server for the file; run in one project only.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Cause, Context, Effect, Exit, Layer } from "effect"
import { Connection, PgError } from "../../src/index.ts"
import { primaryTarget, throwawayServer, type ThrowawayServer } from "../../../../test/harness.ts"
import { appName, failureOf, leakAudit, withApp } from "./support.ts"

class Server extends Context.Service<Server, ThrowawayServer>()("pgfx/test/reliability/Server") {
  static readonly layer = Layer.effect(
    Server,
    throwawayServer({ users: [{ name: "limited", password: "limited-pw", passwordEncryption: "scram-sha-256" }] })
  )
}

/** Only root (or the server's own OS user) may signal a backend. */
const canSignalBackends = typeof process.getuid === "function" && process.getuid() === 0

const isTimeout = (exit: Exit.Exit<unknown, unknown>) =>
  Exit.isFailure(exit) && Cause.pretty(exit.cause).includes("TimeoutError")

describe.runIf(primaryTarget())("needs a server of its own", () => {
  layer(Server.layer, { excludeTestServices: true, timeout: "60 seconds" })("throwaway server (F7, F8c, F8d)", (it) => {
    ;(canSignalBackends ? it.effect : it.effect.skip)(
      "F7: a hung backend (SIGSTOP) → only the client deadline helps: timeout, bounded cancel+drain, retired; SIGCONT leaves nothing",
      () =>
        Effect.gen(function*() {
          const server = yield* Server
          const app = appName("f7")
          yield* Effect.gen(function*() {
            const conn = yield* Connection.connect(withApp(server.url, app), {
              cancelTimeout: "500 millis",
              drainTimeout: "500 millis"
            })
            const pid = (yield* conn.execute("SELECT pg_backend_pid()")).rows[0][0] as number
            expect(pid).toBe(conn.info.backendPid)
            process.kill(pid, "SIGSTOP")
            const exit = yield* Effect.gen(function*() {
              const started = performance.now()
              const exit = yield* conn.execute("SELECT 1").pipe(Effect.timeout("300 millis"), Effect.exit)
              // the caller's deadline is kept; the cancel and the drain go on in the background
              expect(performance.now() - started).toBeLessThan(300 + 250)
              yield* conn.session.settled
              const elapsed = performance.now() - started
              expect(isTimeout(exit)).toBe(true)
              // timeout + cancel (the postmaster answers at once) + drain (bounded) + slack
              expect(elapsed).toBeLessThan(300 + 500 + 500 + 400)
              expect(conn.broken).toBe(true)
              return exit
            }).pipe(Effect.ensuring(Effect.sync(() => process.kill(pid, "SIGCONT"))))
            expect(Exit.isFailure(exit)).toBe(true)
            const next = yield* Effect.flip(conn.execute("SELECT 1"))
            expect(next._tag).toBe("ConnectionError")
          }).pipe(Effect.scoped)
          // after SIGCONT the backend reads the closed socket and exits
          yield* leakAudit(server.url, app, { waitMs: 3000 })
        })
    )

    it.effect("F8c: a slow login (post_auth_delay) is bounded by connect_timeout", () =>
      Effect.gen(function*() {
        const server = yield* Server
        const app = appName("f8c")
        const url = withApp(server.url, app, { connect_timeout: 2, options: "-c post_auth_delay=3" })
        const started = performance.now()
        const error = yield* Effect.flip(Effect.scoped(Connection.connect(url)))
        const elapsed = performance.now() - started
        expect(error._tag).toBe("ConnectionError")
        if (error._tag === "ConnectionError") expect(error.reason).toBe("Timeout")
        expect(elapsed).toBeGreaterThanOrEqual(1900)
        expect(elapsed).toBeLessThan(2600)
        // the delayed backend finds its client gone and exits
        yield* leakAudit(server.url, app, { waitMs: 2500 })
      }))

    it.effect("F8d: a role over its CONNECTION LIMIT gets a typed 53300 at once", () =>
      Effect.gen(function*() {
        const server = yield* Server
        const app = appName("f8d")
        yield* server.query("ALTER ROLE limited CONNECTION LIMIT 1")
        const url = withApp(server.urlFor({ user: "limited", password: "limited-pw" }), app)
        yield* Effect.gen(function*() {
          const first = yield* Connection.connect(url)
          expect((yield* first.execute("SELECT current_user")).rows).toEqual([["limited"]])
          const started = performance.now()
          const exit = yield* Effect.exit(Effect.scoped(Connection.connect(url)))
          expect(performance.now() - started).toBeLessThan(1000)
          const error = failureOf(exit) as PgError.PgError
          expect(error._tag).toBe("ConnectionError")
          if (error._tag === "ConnectionError") {
            expect(error.sqlState).toBe("53300")
            expect(error.reason).toBe("Rejected")
            expect(error.message).toMatch(/too many connections for role "limited"/)
          }
          expect(first.closed).toBe(false)
        }).pipe(Effect.scoped)
        yield* leakAudit(server.url, app)
      }))
  })
})
