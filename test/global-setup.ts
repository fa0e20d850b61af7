/**
 * vitest `globalSetup` of every target project (see `vitest.config.ts`): `@pgfx/testing`'s —
 * the project's server, or the run's embedded PostgreSQL 18 started when a test first needs it.
 */
export { default } from "@pgfx/testing/global-setup"
