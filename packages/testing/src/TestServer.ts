/**
 * The PostgreSQL server the tests run on, resolved once per process:
 *
 * 1. the server the vitest project was given (`provide: { pgfxServerUrl }`, see
 *    `@pgfx/testing/vitest-config`);
 * 2. otherwise, under `@pgfx/testing/global-setup`, the embedded server of the run: started by
 *    the first worker that asks for it, shared by every worker, removed when the run ends;
 * 3. otherwise `DATABASE_URL`;
 * 4. otherwise an embedded PostgreSQL 18 of this process (started on first use, removed when the
 *    process exits) — add the global setup to share one per run.
 *
 * The URL is a superuser's (or at least a role with CREATEDB): the harness creates and drops
 * databases on it.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { embeddedServer, type EmbeddedServer, type EmbeddedServerOptions, makeEmbeddedServer } from "./EmbeddedServer.ts"
import { dropRunDatabases, isLoopback, isUrl, runIsOver } from "./internal/admin.ts"
import { askBroker } from "./internal/broker.ts"
import { injected } from "./internal/vitest.ts"

/**
 * Where the server came from.
 *
 * @since 0.1.0
 */
export type Source = "project" | "run" | "DATABASE_URL" | "process"

/**
 * The resolved server.
 *
 * @since 0.1.0
 */
export interface TestServer {
  /** Superuser URL (`postgresql://…`). */
  readonly url: string
  /** Id of the run: database names start with `pgfxt_<runId>_`. */
  readonly runId: string
  /** Where it came from: the vitest project, the run's embedded server, `DATABASE_URL`, or this process's own. */
  readonly source: Source
}

/**
 * No server could be found or started.
 *
 * @since 0.1.0
 */
export class TestServerError extends Data.TaggedError("TestServerError")<{
  /** Why. */
  readonly message: string
  /** The underlying error. */
  readonly cause?: unknown
}> {}

const nonEmpty = (value: string | undefined): string | undefined => (value === undefined || value === "" ? undefined : value)

/** What the resolution depends on: the values the vitest project provides (none outside vitest). */
interface Inputs {
  readonly runId: string
  readonly provided: string | undefined
  readonly broker: string | undefined
}

const inputs: Effect.Effect<Inputs> = Effect.gen(function*() {
  return {
    runId: (yield* injected("pgfxRunId")) ?? String(process.pid),
    provided: nonEmpty(yield* injected("pgfxServerUrl")),
    broker: nonEmpty(yield* injected("pgfxServerBroker"))
  }
})

const resolve = ({ broker, provided, runId }: Inputs): Effect.Effect<TestServer, TestServerError> =>
  Effect.gen(function*() {
    if (provided !== undefined) return { url: provided, runId, source: "project" } satisfies TestServer
    if (broker !== undefined) {
      const url = yield* Effect.tryPromise({
        try: () => askBroker(broker),
        catch: (cause) => new TestServerError({ message: (cause as Error).message, cause })
      })
      return { url, runId, source: "run" } satisfies TestServer
    }
    const fromEnv = nonEmpty(process.env.DATABASE_URL)
    if (fromEnv !== undefined) {
      // without a global setup nobody drops what interrupted runs left: do it here
      if (isLoopback(fromEnv)) yield* dropRunDatabases(fromEnv, (id) => id !== runId && runIsOver(id))
      return { url: fromEnv, runId, source: "DATABASE_URL" } satisfies TestServer
    }
    const server = yield* Effect.mapError(
      makeEmbeddedServer({ label: "pgfx-test" }),
      (cause) => new TestServerError({ message: `cannot start an embedded PostgreSQL: ${cause.message}`, cause })
    )
    return { url: server.url, runId, source: "process" } satisfies TestServer
  }).pipe(
    Effect.flatMap((server) =>
      isUrl(server.url)
        ? Effect.succeed(server)
        : Effect.fail(
          new TestServerError({ message: "the test server must be given as a postgresql:// URL (DATABASE_URL, pgfxServerUrl)" })
        )
    )
  )

/**
 * Resolutions of this process, by their inputs. Kept on `globalThis`: vitest re-evaluates the
 * modules for every test file of a worker, and an embedded server of the process must not be
 * started again for each file.
 */
const cache: Map<string, Promise<TestServer>> = (() => {
  const slot = Symbol.for("@pgfx/testing/TestServer/cache")
  const holder = globalThis as { [slot]?: Map<string, Promise<TestServer>> }
  return (holder[slot] ??= new Map())
})()

/**
 * The server of this process (resolved on first use, then cached; a failure is retried on the
 * next use).
 *
 * @example
 * ```ts
 * const server = yield* TestServer.get
 * server.source // "run", "DATABASE_URL", …
 * ```
 *
 * @since 0.1.0
 */
export const get: Effect.Effect<TestServer, TestServerError> = Effect.flatMap(inputs, (given) => {
  const key = `${given.runId}|${given.provided ?? ""}|${given.broker ?? ""}`
  let pending = cache.get(key)
  if (pending === undefined) {
    const attempt = Effect.runPromise(Effect.result(resolve(given))).then((result) => {
      if (result._tag === "Failure") throw result.failure
      return result.success
    })
    cache.set(key, attempt)
    attempt.catch(() => {
      if (cache.get(key) === attempt) cache.delete(key)
    })
    pending = attempt
  }
  const settled = pending
  return Effect.tryPromise({
    try: () => settled,
    catch: (cause) => cause instanceof TestServerError ? cause : new TestServerError({ message: String(cause), cause })
  })
})

/**
 * The server's superuser URL.
 *
 * @example
 * ```ts
 * const admin = yield* Connection.connect(yield* TestServer.url)
 * ```
 *
 * @since 0.1.0
 */
export const url: Effect.Effect<string, TestServerError> = Effect.map(get, (server) => server.url)

/**
 * A separate embedded PostgreSQL 18 for tests that stop, break or reconfigure a server, removed
 * when the scope closes. The default pg_hba rules use `md5`, which PostgreSQL upgrades to SCRAM
 * for roles whose password is stored as SCRAM: MD5 and SCRAM users both work unless you add
 * stricter rules. See `EmbeddedServer.EmbeddedServerOptions` for the knobs.
 *
 * @example
 * ```ts
 * it.effect("reconnects after a restart", () =>
 *   Effect.gen(function*() {
 *     const server = yield* TestServer.throwaway()
 *     const pool = yield* ConnectionPool.make({ conninfo: server.url, minSize: 1 })
 *     yield* server.restart
 *     yield* pool.use((conn) => conn.execute("SELECT 1"))
 *   }))
 * ```
 *
 * @since 0.1.0
 */
export const throwaway = (options: EmbeddedServerOptions = {}): Effect.Effect<EmbeddedServer, Error, Scope.Scope> =>
  embeddedServer({ label: "pgfx-throwaway", defaultAuthMethod: "md5", ...options })
