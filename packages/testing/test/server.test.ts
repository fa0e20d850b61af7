/**
 * The run's server: the project's own URL, or the embedded server the global setup starts when a
 * test first asks (through the broker), the same for every worker and every way of asking.
 */
import { assert, describe, it } from "@effect/vitest"
import { TestDatabase, TestServer } from "@pgfx/testing"
import { runId, serverTarget, serverUrl } from "@pgfx/testing/vitest"
import { Effect } from "effect"
import { inject } from "vitest"
import { databaseExists, queryAt } from "./helpers.ts"

describe("TestServer", () => {
  it.effect("is the project's server, or the run's embedded one, asked for lazily", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.get
      assert.strictEqual(server.runId, runId())
      if (inject("pgfxServerUrl") !== "") {
        assert.strictEqual(server.source, "project")
        assert.strictEqual(server.url, inject("pgfxServerUrl"))
      } else {
        assert.strictEqual(server.source, "run")
        assert.match(inject("pgfxServerBroker"), /^http:\/\/127\.0\.0\.1:\d+\/[0-9a-f]{32}$/)
      }
      // the synchronous accessor agrees
      assert.strictEqual(serverUrl(), server.url)
      const [row] = yield* queryAt(server.url, "SELECT current_setting('server_version_num')::int AS v")
      if (serverTarget() === "pg15") assert.isAtLeast(Number(row.v), 150000)
    }))

  it.effect("TestDatabase.make: a fresh empty database for the scope, named after the file", () =>
    Effect.gen(function*() {
      const url = yield* TestServer.url
      const name = yield* Effect.scoped(
        Effect.gen(function*() {
          const db = yield* TestDatabase.make()
          assert.match(db.name, new RegExp(`^pgfxt_${runId()}_server_[0-9a-f]{8}$`))
          assert.isTrue(yield* databaseExists(url, db.name))
          return db.name
        })
      )
      assert.isFalse(yield* databaseExists(url, name))
    }))
})
