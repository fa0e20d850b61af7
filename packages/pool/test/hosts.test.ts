/**
 * Host lists under a pool (reliability.md F10, F12), on three throwaway clusters: a primary P
 * (127.0.0.1:X), a second server B on the same port at another loopback address (127.0.0.2:X),
 * and S, a real streaming hot standby of P (127.0.0.1:Y, `EmbeddedServer.standbyOf`).
 *
 * - F12 DNS change: a pool made under an injected `HostResolver` that answers P's address, then
 *   B's: new connections go to B at once, the pooled ones stay on P until `maxLifetime` retires
 *   them and their replacements (made in the pool's background fibers) go to B. A null pool
 *   connecting in a client's fiber uses the pool's resolver too.
 * - F10 role flip under a `target_session_attrs=primary` pool over [P, S]: P is shut down under
 *   in-flight statements (typed 57P01 errors), S is promoted, P comes back as S's standby; the
 *   pool refills from S (`pg_is_in_recovery()` false).
 *
 * Every test ends with the leak audit (pool gauges and sessions, then nothing left on any server
 * once the pool is closed). The connection-level halves are in
 * `packages/core/test/reliability/hosts.test.ts`. One project only: the servers are the file's own.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Connection, HostResolver, PgError } from "@pgfx/core"
import { EmbeddedServer } from "@pgfx/testing"
import { Context, Effect, Fiber, Layer } from "effect"
import { ConnectionPool, NullConnectionPool, PoolError } from "../src/index.ts"
import { primaryTarget, throwawayServer, type ThrowawayServer } from "../../../test/harness.ts"
import { admin, appName, eventually, failureOf, leakAudit } from "../../core/test/reliability/support.ts"
import { auditPool, captureLogs } from "./helpers.ts"

/** One password for the three clusters (the standby has its primary's anyway). */
const password = "pgfx-pool-hosts-pw"

interface Trio {
  /** 127.0.0.1:X (and ::1:X). */
  readonly primary: ThrowawayServer
  /** 127.0.0.2:X: the "new address" of a DNS change. */
  readonly other: ThrowawayServer
  /** 127.0.0.1:Y, a hot standby streaming from `primary`. */
  readonly standby: ThrowawayServer
}

class Servers extends Context.Service<Servers, Trio>()("pgfx/test/pool/hosts/Servers") {
  static readonly layer = Layer.effect(
    Servers,
    Effect.gen(function*() {
      const primary = yield* throwawayServer({ password, label: "pgfx-pool-hosts-p" })
      const [other, standby] = yield* Effect.all([
        throwawayServer({ password, host: "127.0.0.2", port: primary.port, label: "pgfx-pool-hosts-b" }),
        EmbeddedServer.standbyOf(primary)
      ], { concurrency: 2 })
      return { primary, other, standby }
    })
  )
}

const settings = (app: string) =>
  `user=postgres password=${password} dbname=postgres sslmode=disable connect_timeout=5 application_name=${app}`

/** Where a session is, as the server sees it. */
const whereIs = (conn: Connection.Connection) =>
  Effect.map(
    conn.execute("SELECT host(inet_server_addr()), inet_server_port(), pg_is_in_recovery()"),
    (result) => {
      const [address, port, recovery] = result.rows[0] as [string, number, boolean]
      return { address, port, recovery, pid: conn.info.backendPid }
    }
  )

/** `count` connections of the pool held at once, and where each one is. */
const holdAll = (pool: ConnectionPool.ConnectionPool, count: number) =>
  Effect.scoped(Effect.forEach(
    Array.from({ length: count }, (_, i) => i),
    () => Effect.flatMap(pool.connectionWith({ timeout: "20 seconds" }), whereIs),
    { concurrency: "unbounded" }
  ))

/** After the pool is closed: no session of `app` left on any running server. */
const auditServers = (trio: Trio, app: string) =>
  Effect.forEach(
    Object.values(trio).filter((server) => server.running()),
    (server) => leakAudit(server.url, app),
    { discard: true }
  )

describe.runIf(primaryTarget())("pools over host lists (F10, F12)", () => {
  layer(Servers.layer, { excludeTestServices: true, timeout: "120 seconds" })("primary, other address, standby", (it) => {
    it.effect("F12: DNS switches A → B: new connections go to B; pooled ones age out by maxLifetime and come back on B", () =>
      Effect.gen(function*() {
        const trio = yield* Servers
        const { primary, other } = trio
        const app = appName("f12_pool")
        let answer = primary.host
        const asked: Array<string> = []
        const resolver: HostResolver.HostResolver = {
          lookup: (host) =>
            Effect.sync(() => {
              asked.push(host)
              return host === "db.pgfx.test" ? [answer] : []
            })
        }
        const conninfo = `host=db.pgfx.test port=${primary.port} ${settings(app)}`
        const logs = captureLogs()
        yield* logs.provide(Effect.gen(function*() {
          const watcher = yield* admin(other.url)
          // only `make` runs under the resolver: the pool keeps it for its own connections
          const pool = yield* ConnectionPool.make({ conninfo, minSize: 2, name: "f12", maxLifetime: "4 seconds" }).pipe(
            Effect.provideService(HostResolver.HostResolver, resolver)
          )
          yield* pool.wait("20 seconds")
          const before = yield* holdAll(pool, 2)
          const createdBy = performance.now()
          expect(before.map((s) => s.address)).toEqual([primary.host, primary.host])
          expect(asked).toEqual(["db.pgfx.test", "db.pgfx.test"])

          answer = other.host // the record changes
          const direct = yield* Effect.scoped(
            Effect.flatMap(Connection.connect(conninfo), whereIs).pipe(Effect.provideService(HostResolver.HostResolver, resolver))
          )
          expect(direct.address).toBe(other.host)
          // the pooled connections stay on A while they live (same sessions)
          const still = yield* holdAll(pool, 2)
          expect(still.map((s) => s.address)).toEqual([primary.host, primary.host])
          expect(new Set(still.map((s) => s.pid))).toEqual(new Set(before.map((s) => s.pid)))
          expect(asked).toHaveLength(3)

          // past maxLifetime: returned connections are discarded and replaced — on B
          yield* Effect.sleep(Math.max(0, 4000 - (performance.now() - createdBy)) + 200)
          const expiredAt = performance.now()
          let after = yield* holdAll(pool, 2) // the expired ones, discarded when they come back
          yield* eventually(
            Effect.map(holdAll(pool, 2), (now) => {
              after = now
              return now.every((s) => s.address === other.host)
            }),
            "the pooled connections to move to B",
            10_000
          )
          console.log(`F12: pooled connections on B ${Math.round(performance.now() - expiredAt)} ms after maxLifetime`)
          expect(after.every((s) => s.address === other.host && s.port === primary.port)).toBe(true)
          // one lookup per connection made, nothing cached: 2 + the direct one + 2 replacements
          expect(asked).toHaveLength(5)
          const stats = yield* pool.stats
          expect(stats.connections_num).toBe(4)
          expect(stats.connections_errors ?? 0).toBe(0)
          expect(logs.poolLines("f12").filter((r) => r.message.startsWith("discarding expired connection"))).toHaveLength(2)

          yield* auditPool(pool, watcher.conn, app)
        }).pipe(Effect.scoped))
        expect(logs.records.filter((r) => r.level === "Error" || r.level === "Fatal")).toEqual([])
        yield* auditServers(trio, app)
      }))

    it.effect("F12: a null pool connects in the client's fiber with the resolver of the pool, not the client's", () =>
      Effect.gen(function*() {
        const trio = yield* Servers
        const app = appName("f12_null")
        const resolver = HostResolver.layer((host) => Effect.succeed(host === "db.pgfx.test" ? [trio.other.host] : []))
        yield* Effect.gen(function*() {
          const pool = yield* NullConnectionPool.make({
            conninfo: `host=db.pgfx.test port=${trio.other.port} ${settings(app)}`,
            name: "f12-null"
          }).pipe(Effect.provide(resolver))
          // the client runs without the override: the system resolver knows no db.pgfx.test
          const where = yield* pool.use(whereIs)
          expect(where.address).toBe(trio.other.host)
          expect((yield* pool.use((conn) => conn.execute("SELECT 1"))).rows).toEqual([[1]])
          const stats = yield* pool.stats
          expect(stats.pool_size).toBe(0)
        }).pipe(Effect.scoped)
        yield* auditServers(trio, app)
      }))

    it.effect("F10: role flip under a primary pool — in-flight work fails typed (57P01), then the pool reconnects to the new primary", () =>
      Effect.gen(function*() {
        const trio = yield* Servers
        const { primary, standby } = trio
        const app = appName("f10_flip")
        const conninfo = `host=${primary.host},${standby.host} port=${primary.port},${standby.port} ${
          settings(app)
        } target_session_attrs=primary`
        const logs = captureLogs()
        yield* logs.provide(Effect.gen(function*() {
          const pool = yield* ConnectionPool.make({
            conninfo,
            minSize: 2,
            name: "f10",
            backoff: { initialDelay: "100 millis", jitter: 0 },
            reconnectTimeout: "60 seconds"
          })
          yield* pool.wait("20 seconds")
          const before = yield* holdAll(pool, 2)
          expect(before.map((s) => [s.port, s.recovery])).toEqual([[primary.port, false], [primary.port, false]])

          // two statements in flight on the old primary
          const watcher = yield* admin(primary.url)
          const inFlight = yield* Effect.forEach([0, 1], () =>
            Effect.forkChild(Effect.exit(pool.use((conn) => conn.execute("SELECT pg_sleep(30)")))))
          yield* eventually(
            Effect.map(watcher.sessions(app), (rows) =>
              rows.filter((row) => row[1] === "active" && String(row[2]).includes("pg_sleep")).length === 2),
            "both statements to run"
          )

          // failover: the primary goes down, the standby is promoted, the old primary follows it
          const stopping = performance.now()
          yield* primary.stop
          const stopMs = performance.now() - stopping
          const exits = yield* Effect.forEach(inFlight, Fiber.join)
          const failedWithin = performance.now() - stopping
          for (const exit of exits) {
            const error = failureOf(exit)
            expect(PgError.isPgError(error), String(error)).toBe(true)
            const typed = error as PgError.PgError
            expect(typed._tag).toBe("ConnectionError")
            if (typed._tag === "ConnectionError") {
              expect(typed.reason).toBe("Terminated")
              expect(typed.sqlState).toBe("57P01")
            }
          }
          expect(failedWithin).toBeLessThan(stopMs + 1000)
          // no primary anywhere for now: a checkout times out, typed
          const waiting = yield* Effect.flip(pool.use(whereIs, { timeout: "300 millis" }))
          expect(PoolError.isPoolError(waiting) && waiting._tag).toBe("PoolTimeout")

          const promoting = performance.now()
          yield* standby.promote
          const promoteMs = performance.now() - promoting
          const served = yield* pool.use(whereIs, { timeout: "20 seconds" })
          const recoveredMs = performance.now() - promoting
          expect(served).toMatchObject({ port: standby.port, recovery: false })
          yield* primary.follow(standby)
          expect((yield* primary.query("SELECT pg_is_in_recovery() AS r"))[0]?.r).toBe(true)

          // every pooled connection is on the new primary
          const after = yield* holdAll(pool, 2)
          expect(after.map((s) => [s.port, s.recovery])).toEqual([[standby.port, false], [standby.port, false]])
          expect((yield* pool.use((conn) => conn.execute("SELECT pg_is_in_recovery()"))).rows).toEqual([[false]])
          const stats = yield* pool.stats
          console.log(
            `F10 flip: in-flight failed ${Math.round(failedWithin)} ms after the stop began (stop ${Math.round(stopMs)} ms); ` +
              `promote ${Math.round(promoteMs)} ms; pool served by the new primary ${Math.round(recoveredMs)} ms after ` +
              `promotion began; connections_errors=${stats.connections_errors ?? 0}, returns_bad=${stats.returns_bad ?? 0}`
          )
          expect(stats.connections_errors ?? 0).toBeGreaterThanOrEqual(1)

          const observer = yield* admin(standby.url)
          yield* auditPool(pool, observer.conn, app)
        }).pipe(Effect.scoped))
        expect(logs.records.filter((r) => r.level === "Error" || r.level === "Fatal")).toEqual([])
        // the pool warned about the broken connections and the failed attempts, nothing worse
        expect(logs.warnings("f10").some((r) => r.message.startsWith("error connecting"))).toBe(true)
        yield* auditServers(trio, app)
      }))

    it.effect("the flipped pair: primary/standby targets find the new roles", () =>
      Effect.gen(function*() {
        const { primary, standby } = yield* Servers
        const app = appName("f10_after")
        const hosts = `host=${primary.host},${standby.host} port=${primary.port},${standby.port} ${settings(app)}`
        const portOf = (target: string) =>
          Effect.scoped(Effect.map(Connection.connect(`${hosts} target_session_attrs=${target}`), (conn) => conn.info.port))
        expect(yield* portOf("primary")).toBe(standby.port)
        expect(yield* portOf("standby")).toBe(primary.port)
        expect(yield* portOf("read-write")).toBe(standby.port)
        // the old primary really streams from the new one
        yield* standby.query("CREATE TABLE flipped AS SELECT 7 AS x")
        let rows: ReadonlyArray<Record<string, unknown>> = []
        for (let i = 0; i < 100 && rows.length === 0; i++) {
          rows = yield* Effect.orElseSucceed(primary.query("SELECT x FROM flipped"), () => [])
          if (rows.length === 0) yield* Effect.sleep("50 millis")
        }
        expect(rows).toEqual([{ x: 7 }])
        yield* leakAudit(standby.url, app)
        yield* leakAudit(primary.url, app)
      }))
  })
})
