/**
 * Which PostgreSQL servers the suite runs against (one vitest project per target): a re-export of
 * `@pgfx/testing/vitest-config` (`pg18`: `DATABASE_URL` or the run's embedded server; `pg15`: the
 * machine's server when it answers; `PGFX_TEST_TARGETS` restricts them).
 */
export { localPg15Url, resolveTargets, tcpAnswers } from "../packages/testing/src/vitestConfig.ts"
export type { Target } from "../packages/testing/src/vitestConfig.ts"
