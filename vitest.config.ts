/**
 * Test configuration: one vitest project per PostgreSQL target (see `test/targets.ts`), each
 * with its own server URL provided by `test/global-setup.ts`; the run ends with the line
 * `N passed, N failed[, N skipped]` (`test/summary-reporter.ts`).
 */
// vitest 5's main process uses Map.groupBy (printing failures), Object.groupBy and
// Promise.withResolvers, which Node 20 lacks: without them a failing run crashes the reporter
import "./scripts/node20-polyfills.mjs"
import { defineConfig } from "vitest/config"
import { SummaryReporter } from "./test/summary-reporter.ts"
import { resolveTargets } from "./test/targets.ts"

export default defineConfig(async () => {
  const targets = await resolveTargets()
  return {
    test: {
      include: ["packages/*/test/**/*.test.ts", "test/**/*.test.ts"],
      testTimeout: 30_000,
      hookTimeout: 60_000,
      teardownTimeout: 30_000,
      reporters: ["default", new SummaryReporter()],
      projects: targets.map((target, index) => ({
        extends: true,
        test: {
          name: target.name,
          globalSetup: ["./test/global-setup.ts"],
          provide: { pgfxTarget: target.name, pgfxServerUrl: target.url ?? "", pgfxPrimary: index === 0 }
        }
      }))
    }
  }
})
