/**
 * Test configuration: one vitest project per PostgreSQL target (see `test/targets.ts`), each with
 * `@pgfx/testing`'s global setup (the target's server, or the run's embedded PostgreSQL 18 started
 * when a test first needs it); the run ends with the line `N passed, N failed[, N skipped]`
 * (`test/summary-reporter.ts`).
 */
// vitest 5's main process uses Map.groupBy (printing failures), Object.groupBy and
// Promise.withResolvers, which Node 20 lacks: without them a failing run crashes the reporter
import "./scripts/node20-polyfills.mjs"
// relative: vite loads the config with Node, which cannot import the package's TypeScript sources
import { projects } from "./packages/testing/src/vitestConfig.ts"
import { defineConfig } from "vitest/config"
import { SummaryReporter } from "./test/summary-reporter.ts"
import { resolveTargets } from "./test/targets.ts"

export default defineConfig(async () => ({
  test: {
    include: ["packages/*/test/**/*.test.ts", "test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    teardownTimeout: 30_000,
    reporters: ["default", new SummaryReporter()],
    projects: projects(await resolveTargets(), { globalSetup: ["./test/global-setup.ts"] })
  }
}))
