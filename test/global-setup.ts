/**
 * vitest `globalSetup` of every target project (see `vitest.config.ts`, `test/targets.ts`).
 *
 * The project config provides `pgfxTarget` and `pgfxServerUrl` ("" = start an embedded server).
 * Setup starts the embedded PostgreSQL 18 when needed (one per run, password/SCRAM auth) and
 * provides the final URL and this run's id to the tests (`inject`, see `test/harness.ts`).
 * Teardown removes the embedded server; on an external server it drops the databases this run
 * left behind. On a loopback external server, setup also drops databases left by runs whose
 * process is gone (interrupted runs).
 *
 * An interrupted run (SIGINT/SIGTERM, even SIGKILL) still removes the embedded server: see the
 * exit hooks and watchdog in `test/embedded.ts`.
 */
import { Effect } from "effect"
import pg from "pg"
import type { TestProject } from "vitest/node"
import { makeEmbeddedServer } from "./embedded.ts"
import type { EmbeddedServer } from "./embedded.ts"
import type {} from "./provided-context.ts"

const isLoopback = (url: string): boolean => {
  try {
    const host = new URL(url).hostname
    return host === "127.0.0.1" || host === "localhost" || host === "[::1]" || host === "::1"
  } catch {
    return false
  }
}

const pidAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM"
  }
}

/** Drop test databases whose run matches `shouldDrop(runId)`. */
const dropDatabases = async (url: string, shouldDrop: (runId: string) => boolean): Promise<void> => {
  const client = new pg.Client({ connectionString: url })
  client.on("error", () => {})
  await client.connect()
  try {
    const { rows } = await client.query<{ datname: string }>(
      String.raw`SELECT datname FROM pg_database WHERE datname ~ '^pgfxt_[0-9]+_'`
    )
    for (const { datname } of rows) {
      const runId = /^pgfxt_([0-9]+)_/.exec(datname)?.[1]
      if (runId === undefined || !shouldDrop(runId)) continue
      await client.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(datname)} WITH (FORCE)`).catch(() => undefined)
    }
  } finally {
    await client.end().catch(() => undefined)
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const runId = String(process.pid)
  const configured = project.getProvidedContext().pgfxServerUrl
  let server: EmbeddedServer | undefined
  let url: string
  if (configured === undefined || configured === "") {
    server = await Effect.runPromise(makeEmbeddedServer({ label: `pgfx-${project.name || "pg"}` }))
    url = server.url
  } else {
    url = configured
    if (isLoopback(url)) {
      await dropDatabases(url, (id) => id !== runId && !pidAlive(Number(id))).catch(() => undefined)
    }
  }
  project.provide("pgfxServerUrl", url)
  project.provide("pgfxRunId", runId)
  return async () => {
    if (server !== undefined) await Effect.runPromise(server.remove)
    else await dropDatabases(url, (id) => id === runId).catch(() => undefined)
  }
}
