/**
 * Test harness of pgfx's own suites: a thin re-export of `@pgfx/testing` (one harness for
 * core, pool, copy and the cross-package tests).
 *
 * Every test file runs once per target (vitest project `pg18`: the run's embedded PostgreSQL 18,
 * started on first use, or `DATABASE_URL`; `pg15`: the machine's server, when it answers). A file
 * gets its own fresh database; tests that stop, break or reconfigure a server use a throwaway
 * server of their own.
 *
 * ```ts
 * import { assert, layer } from "@effect/vitest"
 * import { Effect } from "effect"
 * import { TestDatabase } from "../../../test/harness.ts"
 *
 * layer(TestDatabase.layer)("Connection", (it) => {
 *   it.effect("connects", () =>
 *     Effect.gen(function* () {
 *       const { url } = yield* TestDatabase // fresh database of this file, dropped afterwards
 *       assert.match(url, /^postgresql:\/\//)
 *     }))
 * })
 * ```
 *
 * API:
 * - {@link serverUrl} / {@link serverTarget}: the project's server (superuser URL) and target name.
 * - {@link primaryTarget}: true in one project only — for tests that do not need the target.
 * - {@link createTestDatabase}: a fresh database (Promise flavour, call `drop` yourself).
 * - {@link TestDatabase} (`TestDatabase.layer`) and {@link testDatabaseUrl}: the same, scoped.
 * - {@link throwawayServer}: a separate embedded server for fault / auth / TLS tests.
 *
 * For typed suites with migrations, fixtures and per-test isolation use `PgTest` from
 * `@pgfx/testing` directly.
 */
import { TestDatabase as TestDatabaseModule, TestServer } from "@pgfx/testing"
import type { EmbeddedServer as Embedded } from "@pgfx/testing"

export { primaryTarget, serverTarget, serverUrl } from "@pgfx/testing/vitest"
export type { AuthMethod, EmbeddedServer, EmbeddedServerOptions, HbaRule, ServerUser } from "./embedded.ts"

/** A database created for a test file. */
export type TestDatabaseHandle = TestDatabaseModule.Handle

/**
 * A fresh, uniquely named database on the project's server (UTF8, from `template0`). `name` is a
 * label for humans (default: the test file's name).
 */
export const createTestDatabase = TestDatabaseModule.createTestDatabase

/** URL of a fresh test database, dropped (WITH (FORCE)) when the scope closes. */
export const testDatabaseUrl = TestDatabaseModule.testDatabaseUrl

/**
 * A fresh test database as a service. `TestDatabase.layer` creates it when the layer is built
 * (with `layer(TestDatabase.layer)(…)` from `@effect/vitest`: once per block, i.e. per file) and
 * drops it when the layer is released; `TestDatabase.url`, `TestDatabase.dbName`,
 * `TestDatabase.provide`.
 */
export const TestDatabase = TestDatabaseModule.TestDatabase
/** The service type of {@link TestDatabase}. */
export type TestDatabase = TestDatabaseModule.TestDatabase

/** A throwaway server's handle (see `EmbeddedServer`). */
export type ThrowawayServer = Embedded.EmbeddedServer

/**
 * A separate embedded PostgreSQL 18 for tests that stop, break or reconfigure a server; removed
 * when the scope closes (see `TestServer.throwaway`).
 */
export const throwawayServer = TestServer.throwaway
