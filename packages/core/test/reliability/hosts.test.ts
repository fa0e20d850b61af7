/**
 * Host lists against real servers (reliability.md F10, F11, F12), at the connection level: three
 * throwaway clusters — a primary P (127.0.0.1:X), a second primary R with
 * `default_transaction_read_only=on` on the same port at another loopback address
 * (127.0.0.2:X), and S, a real streaming hot standby of P (127.0.0.1:Y, `EmbeddedServer.standbyOf`).
 *
 * - F10 `target_session_attrs`: read-write, read-only, primary, standby, prefer-standby (and its
 *   fallback when no standby is up).
 * - F11 `load_balance_hosts=random`: 50 connections reach every node; with two nodes stopped all
 *   land on the third and the refused attempts are not surfaced.
 * - F12 DNS change: an injected `HostResolver` answers P's address, then R's: the next connection
 *   goes to R; the resolver is asked at every connect (no cache), the default one too; a host is
 *   resolved only when its turn comes, each lookup bounded by connect_timeout; bad answers are
 *   typed `UnknownHost` errors for that host only.
 *
 * The pool halves (a role flip under a `primary` pool, pooled connections ageing out to the new
 * address) are in `packages/pool/test/hosts.test.ts`. One project only: the servers are the
 * file's own.
 */
import { describe, expect, layer } from "@effect/vitest"
import { EmbeddedServer } from "@pgfx/testing"
import { Context, Effect, Layer } from "effect"
import * as dns from "node:dns"
import { vi } from "vitest"
import { Connection, HostResolver, PgError } from "../../src/index.ts"
import { primaryTarget, throwawayServer, type ThrowawayServer } from "../../../../test/harness.ts"
import { appName, captureLogs, failureOf, leakAudit, timed } from "./support.ts"

/** One password for the three clusters (the standby has its primary's anyway): one conninfo fits all. */
const password = "pgfx-hosts-pw"

interface Trio {
  /** 127.0.0.1:X (and ::1:X), read-write primary. */
  readonly primary: ThrowawayServer
  /** 127.0.0.2:X, a primary with default_transaction_read_only=on. */
  readonly readOnly: ThrowawayServer
  /** 127.0.0.1:Y, a hot standby streaming from `primary`. */
  readonly standby: ThrowawayServer
}

class Servers extends Context.Service<Servers, Trio>()("pgfx/test/reliability/hosts/Servers") {
  static readonly layer = Layer.effect(
    Servers,
    Effect.gen(function*() {
      const primary = yield* throwawayServer({ password, label: "pgfx-hosts-p" })
      const [readOnly, standby] = yield* Effect.all([
        throwawayServer({
          password,
          host: "127.0.0.2",
          port: primary.port,
          label: "pgfx-hosts-r",
          postgresqlConf: { default_transaction_read_only: true }
        }),
        EmbeddedServer.standbyOf(primary)
      ], { concurrency: 2 })
      return { primary, readOnly, standby }
    })
  )
}

const name = (trio: Trio, address: string, port: number): string => {
  for (const [label, server] of Object.entries(trio)) {
    if (server.host === address && server.port === port) return label
  }
  return `${address}:${port}`
}

/** Which server a session is on, as the server sees it, and what it is. */
const whereIs = (trio: Trio, conn: Connection.Connection) =>
  Effect.map(
    conn.execute(
      "SELECT host(inet_server_addr()), inet_server_port(), pg_is_in_recovery(), current_setting('transaction_read_only')"
    ),
    (result) => {
      const [address, port, recovery, readOnly] = result.rows[0] as [string, number, boolean, string]
      return { server: name(trio, address, port), recovery, readOnly: readOnly === "on" }
    }
  )

/** A conninfo over `servers`, in that order. */
const hostList = (
  servers: ReadonlyArray<ThrowawayServer>,
  app: string,
  extra: Readonly<Record<string, string | number>> = {}
): string =>
  Object.entries({
    host: servers.map((s) => s.host).join(","),
    port: servers.map((s) => s.port).join(","),
    user: "postgres",
    password,
    dbname: "postgres",
    sslmode: "disable",
    connect_timeout: 5,
    application_name: app,
    ...extra
  }).map(([key, value]) => `${key}=${value}`).join(" ")

/** Connects with `conninfo` and reports where the session landed. */
const landing = (trio: Trio, conninfo: string) =>
  Effect.scoped(Effect.flatMap(Connection.connect(conninfo), (conn) => whereIs(trio, conn)))

/** The leak audit on every running server of the trio. */
const auditAll = (trio: Trio, app: string) =>
  Effect.forEach(
    Object.values(trio).filter((server) => server.running()),
    (server) => leakAudit(server.url, app),
    { discard: true }
  )

const expectConnectionError = (error: unknown, reason: PgError.ConnectionError["reason"]) => {
  expect(PgError.isPgError(error)).toBe(true)
  const typed = error as PgError.PgError
  expect(typed._tag).toBe("ConnectionError")
  if (typed._tag === "ConnectionError") expect(typed.reason).toBe(reason)
  return typed
}

describe.runIf(primaryTarget())("host lists on three clusters (F10, F11, F12)", () => {
  layer(Servers.layer, { excludeTestServices: true, timeout: "90 seconds" })("primary, read-only primary, standby", (it) => {
    it.effect("the three servers are what they claim to be", () =>
      Effect.gen(function*() {
        const trio = yield* Servers
        const app = appName("f10_setup")
        expect(yield* landing(trio, hostList([trio.primary], app))).toEqual({
          server: "primary",
          recovery: false,
          readOnly: false
        })
        expect(yield* landing(trio, hostList([trio.readOnly], app))).toEqual({
          server: "readOnly",
          recovery: false,
          readOnly: true
        })
        expect(yield* landing(trio, hostList([trio.standby], app))).toEqual({
          server: "standby",
          recovery: true,
          readOnly: true
        })
        // S really streams from P
        yield* trio.primary.query("CREATE TABLE IF NOT EXISTS f10_streamed AS SELECT 42 AS answer")
        let seen: ReadonlyArray<Record<string, unknown>> = []
        for (let i = 0; i < 100 && seen.length === 0; i++) {
          seen = yield* Effect.orElseSucceed(trio.standby.query("SELECT answer FROM f10_streamed"), () => [])
          if (seen.length === 0) yield* Effect.sleep("50 millis")
        }
        expect(seen).toEqual([{ answer: 42 }])
        yield* auditAll(trio, app)
      }))

    it.effect("F10: read-write skips the read-only primary and the standby; read-only picks them", () =>
      Effect.gen(function*() {
        const trio = yield* Servers
        const app = appName("f10_rw")
        const { primary, readOnly, standby } = trio
        expect(yield* landing(trio, hostList([readOnly, standby, primary], app, { target_session_attrs: "read-write" })))
          .toEqual({ server: "primary", recovery: false, readOnly: false })
        expect((yield* landing(trio, hostList([primary, readOnly], app, { target_session_attrs: "read-only" }))).server)
          .toBe("readOnly")
        expect((yield* landing(trio, hostList([primary, standby], app, { target_session_attrs: "read-only" }))).server)
          .toBe("standby")
        // nothing fits: one typed error naming every attempt
        const error = expectConnectionError(
          yield* Effect.flip(landing(trio, hostList([readOnly, standby], app, { target_session_attrs: "read-write" }))),
          "TargetSessionAttrs"
        )
        expect(error.message).toContain("Multiple connection attempts failed")
        expect(error.message).toContain(`port: '${readOnly.port}', hostaddr: '127.0.0.2'`)
        expect(error.message).toContain(`port: '${standby.port}'`)
        yield* auditAll(trio, app)
      }))

    it.effect("F10: standby and prefer-standby pick the standby; primary skips it (a read-only primary is a primary)", () =>
      Effect.gen(function*() {
        const trio = yield* Servers
        const app = appName("f10_sb")
        const { primary, readOnly, standby } = trio
        for (const target of ["standby", "prefer-standby"]) {
          expect(yield* landing(trio, hostList([primary, readOnly, standby], app, { target_session_attrs: target })), target)
            .toEqual({ server: "standby", recovery: true, readOnly: true })
        }
        expect((yield* landing(trio, hostList([standby, primary], app, { target_session_attrs: "primary" }))).server)
          .toBe("primary")
        expect((yield* landing(trio, hostList([standby, readOnly], app, { target_session_attrs: "primary" }))).server)
          .toBe("readOnly")
        expectConnectionError(
          yield* Effect.flip(landing(trio, hostList([primary, readOnly], app, { target_session_attrs: "standby" }))),
          "TargetSessionAttrs"
        )
        yield* auditAll(trio, app)
      }))

    it.effect("F10: prefer-standby falls back to a primary when no standby is up (nothing surfaced)", () =>
      Effect.gen(function*() {
        const trio = yield* Servers
        const app = appName("f10_pref")
        const { primary, readOnly, standby } = trio
        // no standby in the list: the second pass takes the first host that answers
        expect((yield* landing(trio, hostList([readOnly, primary], app, { target_session_attrs: "prefer-standby" }))).server)
          .toBe("readOnly")
        yield* Effect.gen(function*() {
          yield* standby.stop
          const { ms, value } = yield* timed(
            landing(trio, hostList([standby, primary], app, { target_session_attrs: "prefer-standby" }))
          )
          expect(value).toEqual({ server: "primary", recovery: false, readOnly: false })
          expect(ms).toBeLessThan(3000)
          // the plain standby target has nowhere to go: the refused standby and P are both reported
          const error = yield* Effect.flip(
            landing(trio, hostList([standby, primary], app, { target_session_attrs: "standby" }))
          )
          expect(error.message).toContain(`port: '${standby.port}'`)
          expect(error.message).toMatch(/refused/i)
        }).pipe(Effect.ensuring(Effect.orDie(standby.start)))
        // back as a standby
        expect((yield* landing(trio, hostList([primary, standby], app, { target_session_attrs: "standby" }))).server)
          .toBe("standby")
        yield* auditAll(trio, app)
      }))

    it.effect("F11: load_balance_hosts=random — 50 connections reach all three nodes; two stopped → all on the third", () =>
      Effect.gen(function*() {
        const trio = yield* Servers
        const app = appName("f11")
        const { primary, readOnly, standby } = trio
        const all = [primary, readOnly, standby]
        const spread = (conninfo: string, count: number) =>
          Effect.gen(function*() {
            const tally: Record<string, number> = {}
            const { ms } = yield* timed(Effect.forEach(
              Array.from({ length: count }, (_, i) => i),
              () => Effect.map(landing(trio, conninfo), ({ server }) => void (tally[server] = (tally[server] ?? 0) + 1)),
              { concurrency: 5, discard: true }
            ))
            return { tally, ms }
          })
        const random = yield* spread(hostList(all, app, { load_balance_hosts: "random" }), 50)
        console.log(`F11: 50 connections with load_balance_hosts=random: ${JSON.stringify(random.tally)} in ${Math.round(random.ms)} ms`)
        expect(Object.keys(random.tally).sort()).toEqual(["primary", "readOnly", "standby"])
        for (const count of Object.values(random.tally)) expect(count).toBeGreaterThanOrEqual(1)
        // without it, the first host every time
        expect((yield* spread(hostList(all, app), 10)).tally).toEqual({ primary: 10 })

        const { exit, lines } = yield* captureLogs(Effect.gen(function*() {
          yield* Effect.all([readOnly.stop, standby.stop], { concurrency: 2 })
          const survivors = yield* spread(hostList(all, app, { load_balance_hosts: "random" }), 50)
          console.log(`F11: the same with two nodes stopped: ${JSON.stringify(survivors.tally)} in ${Math.round(survivors.ms)} ms`)
          expect(survivors.tally).toEqual({ primary: 50 })
          // the refused attempts did happen: with only the stopped ones, both are reported
          const error = expectConnectionError(
            yield* Effect.flip(landing(trio, hostList([readOnly, standby], app, { load_balance_hosts: "random" }))),
            "Refused"
          )
          expect(error.message).toContain(`hostaddr: '127.0.0.2'`)
          expect(error.message).toContain(`port: '${standby.port}'`)
        }).pipe(Effect.ensuring(Effect.orDie(Effect.all([readOnly.start, standby.start], { concurrency: 2 })))))
        yield* exit
        // a connection that succeeded after refused attempts logs nothing about them
        expect(lines.filter((line) => /refused|ECONNREFUSED/i.test(line))).toEqual([])
        yield* auditAll(trio, app)
      }))

    it.effect("F12: an injected resolver answers A, then B — the next connection goes to B; asked at every connect", () =>
      Effect.gen(function*() {
        const trio = yield* Servers
        const app = appName("f12")
        const { primary, readOnly } = trio
        let answer = primary.host
        const asked: Array<string> = []
        const resolver: HostResolver.HostResolver = {
          lookup: (host) =>
            Effect.sync(() => {
              asked.push(host)
              return host === "db.pgfx.test" ? [answer] : []
            })
        }
        const conninfo = hostList([primary], app).replace(`host=${primary.host}`, "host=db.pgfx.test")
        yield* Effect.gen(function*() {
          const onA = yield* Connection.connect(conninfo)
          expect(onA.info.host).toBe("db.pgfx.test")
          expect((yield* whereIs(trio, onA)).server).toBe("primary")
          answer = readOnly.host // the DNS record changes
          const onB = yield* Connection.connect(conninfo)
          expect((yield* whereIs(trio, onB)).server).toBe("readOnly")
          // the existing connection stays where it is, and works
          expect((yield* whereIs(trio, onA)).server).toBe("primary")
          // the same through a layer
          const viaLayer = yield* Effect.provide(
            landing(trio, conninfo),
            HostResolver.layer((host) => Effect.succeed(host === "db.pgfx.test" ? [primary.host] : []))
          )
          expect(viaLayer.server).toBe("primary")
        }).pipe(Effect.scoped, Effect.provideService(HostResolver.HostResolver, resolver))
        // once per connect, nothing cached
        expect(asked).toEqual(["db.pgfx.test", "db.pgfx.test"])
        yield* auditAll(trio, app)
      }))

    it.effect("F12: the default resolver asks the operating system at every connect (no process-level cache)", () =>
      Effect.gen(function*() {
        const trio = yield* Servers
        const app = appName("f12_os")
        const lookup = vi.spyOn(dns.promises, "lookup")
        yield* Effect.gen(function*() {
          const conninfo = hostList([trio.primary], app).replace(`host=${trio.primary.host}`, "host=localhost")
          for (let i = 0; i < 3; i++) expect((yield* landing(trio, conninfo)).server).toBe("primary")
          expect(lookup.mock.calls.map((call) => call[0])).toEqual(["localhost", "localhost", "localhost"])
        }).pipe(Effect.ensuring(Effect.sync(() => lookup.mockRestore())))
        yield* auditAll(trio, app)
      }))

    it.effect("F12: a resolver that fails, answers nothing, answers a name or hangs fails that host only, typed", () =>
      Effect.gen(function*() {
        const trio = yield* Servers
        const app = appName("f12_bad")
        const resolver: HostResolver.HostResolver = {
          lookup: (host) => {
            switch (host) {
              case "fails.pgfx.test":
                return Effect.fail(new Error("NXDOMAIN"))
              case "empty.pgfx.test":
                return Effect.succeed([])
              case "name.pgfx.test":
                return Effect.succeed(["localhost"])
              case "hangs.pgfx.test":
                return Effect.never
              default:
                return Effect.succeed([trio.primary.host])
            }
          }
        }
        const withResolver = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
          Effect.provideService(effect, HostResolver.HostResolver, resolver)
        const port = trio.primary.port
        const base = `port=${port} user=postgres password=${password} dbname=postgres sslmode=disable application_name=${app}`
        // connect_timeout=2: libpq's smallest (1 counts as 2)
        const cases: ReadonlyArray<readonly [string, RegExp]> = [
          ["fails.pgfx.test", /could not translate host name "fails\.pgfx\.test" to an address$/],
          ["empty.pgfx.test", /no address/],
          ["name.pgfx.test", /answered "localhost", not an IP address/],
          ["hangs.pgfx.test", /no answer within 2s \(connect_timeout\)/]
        ]
        for (const [host, message] of cases) {
          const { ms, value: error } = yield* timed(
            Effect.flip(withResolver(landing(trio, `host=${host} ${base} connect_timeout=2`)))
          )
          const typed = expectConnectionError(error, "UnknownHost")
          expect(typed.message, host).toMatch(message)
          expect(ms, host).toBeLessThan(3500)
          // the next host of the list is tried
          expect((yield* withResolver(landing(trio, `host=${host},good.pgfx.test ${base} connect_timeout=2`))).server)
            .toBe("primary")
        }
        expect(failureOf(yield* Effect.exit(Effect.scoped(withResolver(Connection.connect(`host=empty.pgfx.test ${base}`))))))
          .toBeInstanceOf(PgError.ConnectionError)
        yield* auditAll(trio, app)
      }))

    it.effect("F12: a host is resolved only when its turn comes (a hanging lookup of a later host delays nothing)", () =>
      Effect.gen(function*() {
        const trio = yield* Servers
        const app = appName("f12_lazy")
        const asked: Array<string> = []
        const resolver: HostResolver.HostResolver = {
          lookup: (host) =>
            Effect.suspend(() => {
              asked.push(host)
              return host === "hangs.pgfx.test" ? Effect.never : Effect.succeed([trio.primary.host])
            })
        }
        const conninfo =
          `host=good.pgfx.test,hangs.pgfx.test port=${trio.primary.port} user=postgres password=${password} dbname=postgres sslmode=disable connect_timeout=10 application_name=${app}`
        const { ms, value } = yield* timed(
          Effect.provideService(landing(trio, conninfo), HostResolver.HostResolver, resolver)
        )
        expect(value.server).toBe("primary")
        expect(ms).toBeLessThan(1000)
        expect(asked).toEqual(["good.pgfx.test"])
        // prefer-standby's second pass reuses the answers of the first (one lookup per host per connect)
        asked.length = 0
        const preferred = yield* Effect.provideService(
          landing(trio, hostList([trio.primary], app, { target_session_attrs: "prefer-standby" }).replace(
            `host=${trio.primary.host}`,
            "host=good.pgfx.test"
          )),
          HostResolver.HostResolver,
          resolver
        )
        expect(preferred.server).toBe("primary")
        expect(asked).toEqual(["good.pgfx.test"])
        yield* auditAll(trio, app)
      }))
  })
})
