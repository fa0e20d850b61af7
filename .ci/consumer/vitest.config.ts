/**
 * The consumer's vitest config: @pgfx/testing's global setup (one embedded PostgreSQL for the
 * run), as its README says.
 */
import "./node20-polyfills.mjs"
import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 120_000,
    globalSetup: ["@pgfx/testing/global-setup"]
  }
})
