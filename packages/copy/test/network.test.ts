/**
 * F21, COPY cut by the network (reliability.md A.4): the fault proxy (`test/faults/proxy.ts`)
 * sits between a pool and the server and breaks the connection in the middle of a COPY — by
 * `limitData` (closed after N more bytes to the client) for COPY OUT and for the server's answer
 * to a COPY IN, by `reset` (RST) and `close` (FIN) while a COPY IN writer is streaming.
 *
 * Pass: a typed `ConnectionError` reaches the caller, promptly; the COPY is never reported as a
 * success; nothing of a COPY IN is committed (counted on a direct connection) unless the server
 * had committed it before the cut (the one in-doubt case, as with a lost COMMIT answer); the
 * pool replaces the session (the next borrow works on a new backend, the gauges agree with the
 * server); and the leak audit holds.
 *
 * Runs on every target: the proxy sits in front of the project's server on loopback, with
 * `sslmode=disable` so it sees message boundaries.
 */
import { expect, layer } from "@effect/vitest"
import { Connection, PgError } from "@pgfx/core"
import { ConnectionPool } from "@pgfx/pool"
import { Effect, Exit, Logger, Stream } from "effect"
import { Copy } from "../src/index.ts"
import { TestDatabase } from "../../../test/harness.ts"
import * as FaultProxy from "../../../test/faults/proxy.ts"
import { admin, appName, failureOf, leakAudit, withApp } from "../../core/test/reliability/support.ts"
import { auditPool } from "../../pool/test/helpers.ts"

/** A COPY OUT of ~20 MB (100 000 rows of ~210 bytes): it is still streaming when the cut comes. */
const bigCopyOut = "COPY (SELECT g, repeat('x', 200) FROM generate_series(1, 100000) g) TO STDOUT"

/** The pool's INFO lines (new connections) are not this test's business. */
const quiet = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.provide(effect, Logger.layer([]))

const expectConnectionError = (exit: Exit.Exit<unknown, unknown>) => {
  expect(Exit.isSuccess(exit), "the COPY was reported as a success").toBe(false)
  const error = failureOf(exit)
  expect(PgError.isPgError(error), `not a pgfx error: ${String(error)}`).toBe(true)
  expect((error as PgError.PgError)._tag).toBe("ConnectionError")
  return error as PgError.ConnectionError
}

/**
 * A pool of one session through a fault proxy, tagged with a fresh application name, a direct
 * connection for setup and counting, and the admin watcher; `finish` is the pool side of the
 * leak audit plus the server side.
 */
const setup = (label: string) =>
  Effect.gen(function*() {
    const url = yield* TestDatabase.url
    const app = appName(label)
    const { proxy, url: through } = yield* FaultProxy.inFrontOf(url)
    const direct = yield* Connection.connect(url)
    const watcher = yield* admin(url)
    const pool = yield* ConnectionPool.make({
      conninfo: withApp(through, app, { sslmode: "disable" }),
      name: label,
      minSize: 1,
      maxSize: 1,
      timeout: "5 seconds",
      cancelTimeout: "1 second",
      drainTimeout: "1 second"
    })
    yield* pool.wait("5 seconds")
    const pidOf = pool.use((conn) => Effect.succeed(conn.info.backendPid))
    /** The session is replaced: a new backend answers, the gauges agree with the server, no leak. */
    const replaced = (before: number) =>
      Effect.gen(function*() {
        const after = yield* pool.use((conn) => Effect.map(conn.execute("SELECT pg_backend_pid()"), (r) => r.rows[0][0] as number))
        expect(after).not.toBe(before)
        const stats = yield* auditPool(pool, watcher.conn, app, { withinMs: 5000 })
        expect(stats.pool_size).toBe(1)
        expect(stats.returns_bad ?? 0).toBeGreaterThanOrEqual(1)
        yield* leakAudit(url, app, { allowIdle: true })
      })
    return { url, app, proxy, direct, pool, pidOf, replaced }
  })

layer(TestDatabase.layer, { excludeTestServices: true })("F21: COPY cut by the network", (it) => {
  it.effect("COPY OUT (typed rows and raw bytes) cut by limitData: ConnectionError, never a success; the pool replaces the session", () =>
    quiet(Effect.gen(function*() {
      const { pool, proxy, pidOf, replaced } = yield* setup("f21_out")
      const reads = [
        (conn: Connection.Connection) => Stream.runCount(Copy.to(conn, bigCopyOut, { types: ["int4", "text"] })),
        (conn: Connection.Connection) => Stream.runFold(Copy.toBytes(conn, bigCopyOut), () => 0, (n, chunk) => n + chunk.length)
      ]
      for (const read of reads) {
        const before = yield* pidOf
        let received = 0
        const started = performance.now()
        const exit = yield* Effect.exit(pool.use((conn) =>
          Effect.andThen(
            proxy.limitData(256 * 1024),
            read(conn).pipe(
              Effect.tap((n) => Effect.sync(() => void (received = n))),
              // no new connection may inherit the limit (the pool replaces this one at once)
              Effect.ensuring(proxy.limitData(undefined))
            )
          )
        ))
        expect(received).toBe(0)
        const error = expectConnectionError(exit)
        expect(error.reason).toBe("Closed")
        expect(performance.now() - started).toBeLessThan(3000)
        yield* replaced(before)
      }
    })))

  for (const cut of ["reset", "close"] as const) {
    it.effect(`COPY IN cut by ${cut === "reset" ? "RST" : "FIN"} while the writer streams: ConnectionError, no row committed, session replaced`, () =>
      quiet(Effect.gen(function*() {
        const { direct, pool, proxy, pidOf, replaced } = yield* setup(`f21_in_${cut}`)
        yield* direct.execute("CREATE TABLE IF NOT EXISTS sink (n int, s text)")
        yield* direct.execute("TRUNCATE sink")
        const before = yield* pidOf
        let cutAt = 0
        let batches = 0
        let finished: number | undefined
        const started = performance.now()
        const exit = yield* Effect.exit(pool.use((conn) =>
          Effect.scoped(Effect.gen(function*() {
            const writer = yield* Copy.from(conn, "COPY sink (n, s) FROM STDIN", { types: ["int4", "text"] })
            // far more than gets through before the cut: a COPY that ends here was never cut
            for (; batches < 2000; batches++) {
              yield* writer.writeRows(Array.from({ length: 500 }, (_, i) => [batches * 500 + i, "payload ".repeat(8)]))
              yield* writer.flush
              if (cutAt === 0 && writer.bytesSent > 512 * 1024) {
                cutAt = writer.bytesSent
                yield* proxy[cut]
              }
            }
            finished = yield* writer.finish
          }))
        ))
        expect(finished, "the COPY was reported as a success").toBeUndefined()
        expect(cutAt).toBeGreaterThan(0)
        const error = expectConnectionError(exit)
        expect(["Closed", "Terminated"]).toContain(error.reason)
        expect(performance.now() - started).toBeLessThan(5000)
        // nothing of the COPY reached a commit
        expect((yield* direct.execute("SELECT count(*)::int FROM sink")).rows).toEqual([[0]])
        yield* replaced(before)
      })))
  }

  it.effect("COPY IN whose answer is cut (limitData on the server's responses): ConnectionError, not a success", () =>
    quiet(Effect.gen(function*() {
      const { direct, pool, proxy, pidOf, replaced } = yield* setup("f21_answer")
      yield* direct.execute("CREATE TABLE IF NOT EXISTS sink_answer (n int)")
      const load = (conn: Connection.Connection, rows: number) =>
        Effect.scoped(Effect.gen(function*() {
          const writer = yield* Copy.from(conn, "COPY sink_answer (n) FROM STDIN", { types: ["int4"] })
          yield* writer.writeRows(Array.from({ length: rows }, (_, i) => [i]))
          // the server's answer to CopyDone (CommandComplete, ReadyForQuery) is cut after 3 bytes
          yield* proxy.limitData(3)
          return yield* writer.finish
        })).pipe(Effect.ensuring(proxy.limitData(undefined)))

      // (a) inside a transaction block: the COPY's rows are never committed
      let before = yield* pidOf
      let exit = yield* Effect.exit(pool.use((conn) => conn.transaction(load(conn, 10_000))))
      expectConnectionError(exit)
      expect((yield* direct.execute("SELECT count(*)::int FROM sink_answer")).rows).toEqual([[0]])
      yield* replaced(before)

      // (b) in autocommit: the server committed before its answer was lost — the caller gets a
      // ConnectionError all the same (in doubt, like a lost COMMIT answer), never a success
      before = yield* pidOf
      exit = yield* Effect.exit(pool.use((conn) => load(conn, 1_000)))
      expectConnectionError(exit)
      expect((yield* direct.execute("SELECT count(*)::int FROM sink_answer")).rows).toEqual([[1_000]])
      yield* replaced(before)
    })))

  it.effect("COPY IN whose CopyInResponse is cut: Copy.from fails with ConnectionError, nothing committed", () =>
    quiet(Effect.gen(function*() {
      const { direct, pool, proxy, pidOf, replaced } = yield* setup("f21_start")
      yield* direct.execute("CREATE TABLE IF NOT EXISTS sink_start (n int)")
      const before = yield* pidOf
      const exit = yield* Effect.exit(pool.use((conn) =>
        Effect.scoped(Effect.gen(function*() {
          yield* proxy.limitData(2)
          const writer = yield* Copy.from(conn, "COPY sink_start (n) FROM STDIN", { types: ["int4"] })
          yield* writer.writeRow([1])
          return yield* writer.finish
        })).pipe(Effect.ensuring(proxy.limitData(undefined)))
      ))
      expectConnectionError(exit)
      expect((yield* direct.execute("SELECT count(*)::int FROM sink_start")).rows).toEqual([[0]])
      yield* replaced(before)
    })))
})
