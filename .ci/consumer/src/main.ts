/**
 * A consumer's program, run with plain `node` from `tsc` output: an embedded PostgreSQL from
 * @pgfx/testing, a connection and a transaction (@pgfx/core), a pool fan-out (@pgfx/pool), and a
 * COPY in and out (@pgfx/copy). Any unexpected result fails the run.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Copy } from "@pgfx/copy"
import { Connection } from "@pgfx/core"
import { ConnectionPool, FanOut } from "@pgfx/pool"
import { EmbeddedServer } from "@pgfx/testing"
import { Console, Effect, Stream } from "effect"

const expectEqual = (what: string, actual: unknown, expected: unknown): Effect.Effect<void> =>
  JSON.stringify(actual) === JSON.stringify(expected)
    ? Effect.void
    : Effect.die(new Error(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`))

const program = Effect.gen(function*() {
  const server = yield* EmbeddedServer.embeddedServer({ label: "pgfx-consumer" })
  const conn = yield* Connection.connect(server.url)
  const version = yield* conn.execute("SHOW server_version")
  yield* Console.log(`connected: PostgreSQL ${String(version.rows[0]?.[0])}`)

  yield* conn.execute("CREATE TABLE accounts (id integer PRIMARY KEY, balance integer NOT NULL)")
  yield* conn.execute("INSERT INTO accounts VALUES (1, 100), (2, 0)")
  yield* conn.transaction(Effect.gen(function*() {
    yield* conn.execute("UPDATE accounts SET balance = balance - $1 WHERE id = 1", [30])
    yield* conn.execute("UPDATE accounts SET balance = balance + $1 WHERE id = 2", [30])
  }))
  const balances = yield* conn.execute("SELECT id, balance FROM accounts ORDER BY id")
  yield* expectEqual("balances after the transaction", balances.rows, [[1, 70], [2, 30]])
  yield* Console.log(`transaction: balances ${JSON.stringify(balances.rows)}`)

  const pool = yield* ConnectionPool.make({ conninfo: server.url, minSize: 2, maxSize: 4 })
  const fanOut = yield* FanOut.run(
    [1, 2, 3, 4, 5, 6, 7, 8],
    (n) => pool.execute("SELECT $1::int * $1::int", [n]),
    { concurrency: 4, timeout: "30 seconds" }
  )
  const squares = fanOut.completed.map(({ value }) => value.rows[0]?.[0])
  yield* expectEqual("fan-out squares", squares, [1, 4, 9, 16, 25, 36, 49, 64])
  yield* expectEqual("fan-out failures", fanOut.failed.length + fanOut.timedOut.length, 0)
  yield* Console.log(`fan-out: ${squares.length} queries on a pool of ${pool.maxSize}: ${squares.join(" ")}`)

  const written = yield* Effect.scoped(Effect.gen(function*() {
    const copy = yield* Copy.from(conn, "COPY accounts (id, balance) FROM STDIN")
    yield* copy.writeRows([[3, 7], [4, 8]])
    return yield* copy.finish
  }))
  const copied = yield* Stream.runCollect(
    Copy.to(conn, "COPY (SELECT id, balance FROM accounts ORDER BY id) TO STDOUT", { types: ["int4", "int4"] })
  )
  yield* expectEqual("COPY TO STDOUT rows", copied, [[1, 70], [2, 30], [3, 7], [4, 8]])
  yield* Console.log(`copy: ${written} rows in, ${copied.length} rows out: ${JSON.stringify(copied)}`)
}).pipe(Effect.scoped)

NodeRuntime.runMain(program)
