/**
 * vitest configuration helpers: which PostgreSQL servers a suite runs against, one vitest
 * project per server ("target"), each with the harness's global setup.
 *
 * ```ts
 * // vitest.config.ts (pgfx's own)
 * import { defineConfig } from "vitest/config"
 * import { projects, resolveTargets } from "./packages/testing/src/vitestConfig.ts"
 *
 * export default defineConfig(async () => ({
 *   test: { projects: projects(await resolveTargets()) }
 * }))
 * ```
 *
 * This module does not import vitest, so a config file may import it — by relative path: vite
 * loads configs with Node, which does not import TypeScript from `node_modules` (see the
 * README for the same projects written out).
 *
 * @since 0.1.0
 */
import * as net from "node:net"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

/**
 * A test target: its project name and its server URL (`undefined`: the embedded server of the
 * run, started when a test first needs it).
 *
 * @since 0.1.0
 */
export interface Target {
  readonly name: string
  readonly url: string | undefined
}

/**
 * The machine's PostgreSQL at the default place (trust authentication).
 *
 * @since 0.1.0
 */
export const localPg15Url = "postgresql://postgres@127.0.0.1:5432/test"

/**
 * Whether host:port accepts a TCP connection within `timeoutMs`.
 *
 * @since 0.1.0
 */
export const tcpAnswers = (host: string, port: number, timeoutMs = 300): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = net.connect({ host, port })
    const done = (ok: boolean): void => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(timeoutMs, () => done(false))
    socket.once("connect", () => done(true))
    socket.once("error", () => done(false))
  })

/**
 * The targets from the environment:
 *
 * - `pg18`: `DATABASE_URL` when set, otherwise the run's embedded PostgreSQL 18;
 * - `pg15`: the machine's PostgreSQL at {@link localPg15Url}, only when `DATABASE_URL` is unset
 *   and 127.0.0.1:5432 answers within 300 ms.
 *
 * `PGFX_TEST_TARGETS=pg18` (a comma list) restricts them; naming an unavailable target is an
 * error.
 *
 * @since 0.1.0
 */
export const resolveTargets = async (env: NodeJS.ProcessEnv = process.env): Promise<ReadonlyArray<Target>> => {
  const databaseUrl = env.DATABASE_URL !== undefined && env.DATABASE_URL !== "" ? env.DATABASE_URL : undefined
  const available: Array<Target> = [{ name: "pg18", url: databaseUrl }]
  if (databaseUrl === undefined && (await tcpAnswers("127.0.0.1", 5432))) {
    available.push({ name: "pg15", url: localPg15Url })
  }
  const wanted = (env.PGFX_TEST_TARGETS ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "")
  if (wanted.length === 0) return available
  const missing = wanted.filter((name) => !available.some((t) => t.name === name))
  if (missing.length > 0) {
    throw new Error(
      `PGFX_TEST_TARGETS names unavailable target(s): ${missing.join(", ")} (available: ${available.map((t) => t.name).join(", ")}` +
        `${databaseUrl !== undefined ? "; pg15 is not used when DATABASE_URL is set" : ""})`
    )
  }
  return available.filter((t) => wanted.includes(t.name))
}

/**
 * The path of the harness's global setup module (for `globalSetup`).
 *
 * @since 0.1.0
 */
export const globalSetupPath: string = fileURLToPath(
  // globalSetup.ts next to the sources, globalSetup.js next to the built dist/vitestConfig.js
  new URL(`./globalSetup${path.extname(fileURLToPath(import.meta.url))}`, import.meta.url)
)

/**
 * A vitest project per target (`extends: true`: the root config's other options apply), each
 * with the global setup and the target's server in its provided context. The first target is
 * the primary one (`primaryTarget()` in `@pgfx/testing/vitest`).
 *
 * @since 0.1.0
 */
export const projects = (targets: ReadonlyArray<Target>, options?: { readonly globalSetup?: ReadonlyArray<string> }) =>
  targets.map((target, index) => ({
    extends: true as const,
    test: {
      name: target.name,
      globalSetup: [...(options?.globalSetup ?? [globalSetupPath])],
      provide: { pgfxTarget: target.name, pgfxServerUrl: target.url ?? "", pgfxPrimary: index === 0 }
    }
  }))
