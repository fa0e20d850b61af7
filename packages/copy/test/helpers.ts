/**
 * Shared fixtures of the COPY tests: psycopg's sample data (`tests/_test_copy.py`),
 * server-state checks, and the leak audit of the COPY fault scenarios (`scenario`).
 */
import { expect } from "@effect/vitest"
import { Connection, type PgConfig, type PgError } from "@pgfx/core"
import { Effect } from "effect"
import type { Scope } from "effect"
import { concat } from "../../../test/faults/fakeServer.ts"
import { TestDatabase } from "../../../test/harness.ts"
import { appName, leakAudit, withApp } from "../../core/test/reliability/support.ts"

/** A fresh connection to the file's database, closed with the test's scope. */
export const connect = Effect.flatMap(TestDatabase.url, (url) => Connection.connect(url))

/** `(40010, 40020, "hello"), (40040, None, "world")`. */
export const sampleRecords: ReadonlyArray<readonly [number, number | null, string]> = [
  [40010, 40020, "hello"],
  [40040, null, "world"]
]

/** The sample values as SQL. */
export const sampleValues = "values (40010::int, 40020::int, 'hello'::text), (40040, NULL, 'world')"

/** The sample records in text format. */
export const sampleText = "40010\t40020\thello\n40040\t\\N\tworld\n"

const hex = (text: string): Uint8Array => Uint8Array.from(text.split(" ").map((byte) => parseInt(byte, 16)))

/** The sample records in binary format, block by block as the server sends them (T01). */
export const sampleBinaryBlocks: ReadonlyArray<Uint8Array> = [
  hex(
    "50 47 43 4f 50 59 0a ff 0d 0a 00 00 00 00 00 00 00 00 00 00 03 00 00 00 04 00 00 9c 4a 00 00 00 04 00 00 9c 54 00 00 00 05 68 65 6c 6c 6f"
  ),
  hex("00 03 00 00 00 04 00 00 9c 68 ff ff ff ff 00 00 00 05 77 6f 72 6c 64"),
  hex("ff ff")
]

/** The 71 bytes of the whole binary sample. */
export const sampleBinary: Uint8Array = concat(sampleBinaryBlocks)

/** psycopg's `copy_in` table. */
export const createCopyIn = (conn: Connection.Connection) =>
  conn.execute("DROP TABLE IF EXISTS copy_in; CREATE TABLE copy_in (col1 serial primary key, col2 int, data text)")

/** `select * from copy_in order by 1`. */
export const copyInRows = (conn: Connection.Connection) =>
  Effect.map(conn.execute("SELECT * FROM copy_in ORDER BY 1"), (result) => result.rows)

/** The state of a backend in `pg_stat_activity`, seen from another connection. */
export const backendState = (observer: Connection.Connection, pid: number) =>
  Effect.map(
    observer.execute("SELECT state, wait_event FROM pg_stat_activity WHERE pid = $1", [pid]),
    (result) => result.rows[0] as readonly [string | null, string | null] | undefined
  )

/** No session of this database is left `idle in transaction`. */
export const expectNoIdleInTransaction = (observer: Connection.Connection) =>
  Effect.gen(function*() {
    const result = yield* observer.execute(
      "SELECT count(*)::int FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'"
    )
    expect(result.rows[0]).toEqual([0])
  })

/** `connect`, for a scenario: its connections carry the scenario's `application_name`. */
export type Connect = Effect.Effect<Connection.Connection, PgError.PgError | PgConfig.PgConfigError, Scope.Scope>

/**
 * A COPY fault scenario (reliability.md A.4) ending with the leak audit. `body` opens its
 * connections with the `connect` it is given, tagged with a fresh `application_name`. After it,
 * while they are still open: no session of that name is busy or `idle in transaction` (core's
 * `leakAudit`) and every one of them answers `SELECT 1`; once the scope has closed them, no
 * session of that name is left at all and a fresh connection answers `SELECT 1`.
 */
export const scenario = <A, E, R>(label: string, body: (connect: Connect) => Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const url = yield* TestDatabase.url
    const app = appName(label)
    const opened: Array<Connection.Connection> = []
    const connect: Connect = Effect.tap(Connection.connect(withApp(url, app)), (conn) =>
      Effect.sync(() => {
        opened.push(conn)
      }))
    const result = yield* Effect.scoped(Effect.gen(function*() {
      const result = yield* body(connect)
      yield* leakAudit(url, app, { allowIdle: true })
      for (const conn of opened) {
        expect((yield* conn.execute("SELECT 1")).rows, `connection ${conn.info.backendPid} after the scenario`).toEqual([[1]])
      }
      return result
    }))
    yield* leakAudit(url, app)
    return result
  })

/** A tagged error of the tests' own, like psycopg's ZeroDivisionError. */
export class Boom extends Error {
  readonly _tag = "Boom"
}

export const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text)
export const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes)
