/**
 * Synchronous accessors for test files run by vitest with `@pgfx/testing/global-setup`
 * (for `describe.runIf(…)` and the like, evaluated while vitest collects the tests).
 *
 * @since 0.1.0
 */
import { inject } from "vitest"
import { askBrokerSync } from "./internal/broker.ts"
import type {} from "./internal/providedContext.ts"

/** URLs the broker gave this process (kept across vitest's per-file module re-evaluation). */
const brokerUrls: Map<string, string> = (() => {
  const slot = Symbol.for("@pgfx/testing/vitest/brokerUrls")
  const holder = globalThis as { [slot]?: Map<string, string> }
  return (holder[slot] ??= new Map())
})()

/**
 * Superuser URL of the current project's server. Under the global setup's lazy embedded server
 * the first call starts it (and waits).
 *
 * @since 0.1.0
 */
export const serverUrl = (): string => {
  const provided = inject("pgfxServerUrl")
  if (provided) return provided
  const broker = inject("pgfxServerBroker")
  if (broker) {
    const known = brokerUrls.get(broker)
    if (known !== undefined) return known
    const url = askBrokerSync(broker)
    brokerUrls.set(broker, url)
    return url
  }
  const fromEnv = process.env.DATABASE_URL
  if (fromEnv) return fromEnv
  throw new Error("no test server: add @pgfx/testing/global-setup to the vitest config (or set DATABASE_URL)")
}

/**
 * Name of the current target (vitest project), e.g. `pg18` or `pg15`; `"default"` without one.
 *
 * @since 0.1.0
 */
export const serverTarget = (): string => inject("pgfxTarget") ?? "default"

/**
 * True in exactly one project of the run. Guard tests that do not use the project's server
 * (throwaway servers, pure codec tests) with it so they run once, not once per target:
 * `describe.runIf(primaryTarget())(…)`.
 *
 * @since 0.1.0
 */
export const primaryTarget = (): boolean => inject("pgfxPrimary") ?? true

/**
 * Id of the run: the test databases' names start with `pgfxt_<runId>_`.
 *
 * @since 0.1.0
 */
export const runId = (): string => inject("pgfxRunId") ?? String(process.pid)
