/**
 * COPY on the connections users get from elsewhere: inside core's
 * transaction blocks, on a pooled connection, and through the SqlClient
 * layer's connection.
 */
import { expect, layer } from "@effect/vitest"
import { PgSql } from "@pgfx/core"
import { ConnectionPool } from "@pgfx/pool"
import { Deferred, Effect, Stream } from "effect"
import { Copy } from "../src/index.ts"
import { TestDatabase } from "../../../test/harness.ts"
import { auditPool, eventually, scenario as poolScenario, withApp } from "../../pool/test/helpers.ts"
import { connect, expectNoIdleInTransaction } from "./helpers.ts"

layer(TestDatabase.layer, { excludeTestServices: true })("COPY with transactions, pools and SqlClient", (it) => {
  it.effect("inside conn.transaction: committed with the block, rolled back when the COPY fails", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      const observer = yield* connect
      yield* conn.execute("CREATE TABLE tx_copy (n int primary key)")
      const loaded = yield* conn.transaction(Effect.gen(function*() {
        yield* conn.execute("INSERT INTO tx_copy VALUES (0)")
        return yield* Copy.fromStream(conn, "COPY tx_copy FROM STDIN", Stream.make([1], [2]), { format: "binary", types: ["int4"] })
      }))
      expect(loaded).toBe(2)
      const error = yield* Effect.flip(conn.transaction(Effect.gen(function*() {
        yield* conn.execute("INSERT INTO tx_copy VALUES (10)")
        return yield* Copy.fromStream(conn, "COPY tx_copy FROM STDIN", Stream.make([11], [2]))
      })))
      expect(error._tag).toBe("UniqueViolation")
      const inner = yield* conn.transaction(Effect.gen(function*() {
        yield* conn.execute("INSERT INTO tx_copy VALUES (20)")
        // a nested block is a savepoint: the failed COPY is undone, the outer work stays
        const failed = yield* Effect.flip(conn.transaction(Copy.fromStream(conn, "COPY tx_copy FROM STDIN", Stream.make([21], [0]))))
        return failed._tag
      }))
      expect(inner).toBe("UniqueViolation")
      const read = yield* conn.transaction(Stream.runCollect(Copy.to(conn, "COPY (SELECT n FROM tx_copy ORDER BY n) TO STDOUT", { types: ["int4"] })))
      expect(read).toEqual([[0], [1], [2], [20]])
      expect(conn.info.transactionStatus).toBe("IDLE")
      yield* expectNoIdleInTransaction(observer)
    }))

  it.effect("on a pooled connection: COPY in, an early-stopped COPY out, and the connection serves the next user", () =>
    Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const pool = yield* ConnectionPool.make({ conninfo: url, minSize: 1, maxSize: 1 })
      yield* pool.use((conn) => conn.execute("CREATE TABLE pooled (n int4)"))
      const loaded = yield* pool.use((conn) =>
        Copy.fromStream(conn, "COPY pooled FROM STDIN", Stream.range(1, 10_000).pipe(Stream.map((n) => [n] as const)), {
          types: ["int4"]
        })
      )
      expect(loaded).toBe(10_000)
      const firstThree = yield* pool.use((conn) =>
        Stream.runCollect(Stream.take(Copy.to(conn, "COPY (SELECT n FROM pooled ORDER BY n) TO STDOUT", { types: ["int4"] }), 3))
      )
      expect(firstThree).toEqual([[1], [2], [3]])
      const after = yield* pool.use((conn) =>
        Effect.map(conn.execute("SELECT count(*)::int FROM pooled"), (result) => [result.rows, conn.info.transactionStatus])
      )
      expect(after).toEqual([[[10_000]], "IDLE"])
      const aborted = yield* Effect.flip(pool.use((conn) =>
        Copy.fromStream(conn, "COPY pooled FROM STDIN", Stream.concat(Stream.make([1]), Stream.fail("stop" as const)))
      ))
      expect(aborted).toBe("stop")
      const count = yield* pool.use((conn) => conn.execute("SELECT count(*)::int FROM pooled"))
      expect(count.rows).toEqual([[10_000]])
    }))

  it.effect("F17(c) a pooled connection returned with its COPY TO half read is closed and replaced; the COPY stops", () =>
    poolScenario("f17c_copy", (app) =>
      Effect.gen(function*() {
        const url = yield* TestDatabase.url
        const pool = yield* ConnectionPool.make({ conninfo: withApp(url, app), minSize: 1, maxSize: 1, name: "f17c" })
        const copying = yield* Deferred.make<void>()
        const first = yield* pool.use((conn) =>
          Effect.gen(function*() {
            // a reader that outlives the block keeps the COPY running when the lease ends
            yield* Effect.forkDetach(Effect.ignore(
              // generate_series in the select list streams (in FROM it would be materialised first)
              Copy.toBytes(conn, "COPY (SELECT generate_series(1, 100000000)) TO STDOUT").pipe(
                Stream.tap(() => Effect.andThen(Deferred.succeed(copying, undefined), Effect.sleep("5 millis"))),
                Stream.runDrain
              )
            ))
            yield* Deferred.await(copying)
            expect(conn.info.transactionStatus).toBe("ACTIVE")
            return conn.info.backendPid
          })
        )
        const second = yield* pool.use((conn) =>
          Effect.map(conn.execute("SELECT pg_backend_pid()"), (result) => [result.rows[0][0], conn.info.transactionStatus])
        )
        expect(second[0]).not.toBe(first)
        expect(second[1]).toBe("IDLE")
        expect((yield* pool.stats).returns_bad).toBe(1)
        // the half-read COPY's backend is gone, not streaming on
        const observer = yield* connect
        yield* eventually(
          Effect.map(observer.execute("SELECT count(*)::int FROM pg_stat_activity WHERE pid = $1", [first]), (r) => r.rows[0][0] === 0),
          5000
        )
        yield* auditPool(pool, url, app)
      })))

  it.effect("through the SqlClient layer's connection, in and out of withTransaction", () =>
    Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const sql = yield* PgSql.make({ settings: url })
      yield* sql`CREATE TABLE via_sql (n int4, t text)`
      const loaded = yield* Effect.scoped(Effect.flatMap(sql.connection, (conn) =>
        Copy.fromStream(conn, "COPY via_sql FROM STDIN", Stream.make([1, "one"], [2, "two"]))))
      expect(loaded).toBe(2)
      const failed = yield* Effect.flip(sql.withTransaction(Effect.gen(function*() {
        yield* sql`INSERT INTO via_sql VALUES (3, 'three')`
        yield* Effect.scoped(Effect.flatMap(sql.connection, (conn) =>
          Copy.fromStream(conn, "COPY via_sql FROM STDIN", Stream.make([4, "four"], ["x", "bad"]))))
      })))
      expect(failed._tag).toBe("InvalidTextRepresentation")
      const rows = yield* Effect.scoped(Effect.flatMap(sql.connection, (conn) =>
        Stream.runCollect(Copy.to(conn, "COPY (SELECT * FROM via_sql ORDER BY n) TO STDOUT", { types: ["int4", "text"] }))))
      expect(rows).toEqual([[1, "one"], [2, "two"]])
      const plain = yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM via_sql`
      expect(plain).toEqual([{ n: 2 }])
    }))
})
