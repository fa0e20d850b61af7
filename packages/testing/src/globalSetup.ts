/**
 * vitest `globalSetup` of the harness (one per project / target):
 *
 * - a project whose config provides `pgfxServerUrl` (see `@pgfx/testing/vitest-config`) or a
 *   run with `DATABASE_URL` uses that server; on a server of this machine, databases left by
 *   runs whose process is gone (interrupted runs) are dropped first, and this run's are dropped
 *   at the end;
 * - otherwise the run gets one embedded PostgreSQL 18, started when the first test asks for it
 *   (through a small broker on 127.0.0.1) and removed when the run ends — also when it is
 *   interrupted or killed (exit hooks and a watchdog, see `EmbeddedServer`).
 *
 * Tests read the result through `TestServer` / `PgTest` / `TestDatabase`, or synchronously
 * through `@pgfx/testing/vitest`.
 *
 * ```ts
 * // vitest.config.ts
 * export default defineConfig({ test: { globalSetup: ["@pgfx/testing/global-setup"] } })
 * ```
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import type { TestProject } from "vitest/node"
import { type EmbeddedServer, makeEmbeddedServer } from "./EmbeddedServer.ts"
import { dropRunDatabases, isLoopback, runIsOver } from "./internal/admin.ts"
import { type Broker, startBroker } from "./internal/broker.ts"
import type {} from "./internal/providedContext.ts"

/**
 * Sets up the project's server; returns the teardown.
 *
 * @since 0.1.0
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const runId = String(process.pid)
  const provided = project.getProvidedContext()
  const configured = provided.pgfxServerUrl || process.env.DATABASE_URL || ""
  project.provide("pgfxRunId", runId)
  if (provided.pgfxTarget === undefined) project.provide("pgfxTarget", "default")
  if (provided.pgfxPrimary === undefined) project.provide("pgfxPrimary", true)

  if (configured !== "") {
    if (isLoopback(configured)) {
      await Effect.runPromise(dropRunDatabases(configured, (id) => id !== runId && runIsOver(id)))
    }
    project.provide("pgfxServerUrl", configured)
    project.provide("pgfxServerBroker", "")
    return async () => {
      await Effect.runPromise(dropRunDatabases(configured, (id) => id === runId))
    }
  }

  let server: EmbeddedServer | undefined
  let starting: Promise<unknown> = Promise.resolve()
  const broker: Broker = await startBroker(() => {
    const start = Effect.runPromise(makeEmbeddedServer({ label: `pgfx-${project.name || "pg"}` })).then((started) => {
      server = started
      return started.url
    })
    starting = start.catch(() => undefined)
    return start
  })
  project.provide("pgfxServerUrl", "")
  project.provide("pgfxServerBroker", broker.endpoint)
  return async () => {
    await broker.close()
    await starting
    if (server !== undefined) await Effect.runPromise(server.remove)
  }
}
