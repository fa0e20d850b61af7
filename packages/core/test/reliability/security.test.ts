/**
 * Security: secrets stay Redacted everywhere they could show (errors, logs, spans, inspect,
 * JSON, String), identifiers for LISTEN and cursor names are quoted, and an injection corpus sent
 * through every API that takes values comes back byte-identical and harms nothing.
 */
import { expect, layer } from "@effect/vitest"
import { Cause, ConfigProvider, Context, Effect, Exit, Fiber, Formatter, Layer, Redacted, Stream, Tracer } from "effect"
import { SqlClient } from "effect/sql"
import { randomBytes } from "node:crypto"
import * as Util from "node:util"
import { Connection, PgConfig, PgError, PgSql } from "../../src/index.ts"
import { primaryTarget, TestDatabase, throwawayServer, type ThrowawayServer } from "../../../../test/harness.ts"
import * as Fake from "../../../../test/faults/fakeServer.ts"
import { admin, appName, captureLogs, eventually, failureOf, leakAudit, withApp } from "./support.ts"

// -----------------------------------------------------------------------------------------------
// secrets
// -----------------------------------------------------------------------------------------------

/** Every rendering of a value a program could print or ship. */
const renderings = (value: unknown): Record<string, string> => {
  const out: Record<string, string> = {
    inspect: Util.inspect(value, { depth: 8, showHidden: true, getters: true }),
    format: Formatter.format(value),
    string: String(value),
    template: `${value as string}`
  }
  try {
    out.json = JSON.stringify(value) ?? ""
  } catch (error) {
    // a structure JSON cannot serialise (a socket's cycles) shows nothing either
    out.json = String(error)
  }
  if (value instanceof Error) {
    out.message = value.message
    out.stack = value.stack ?? ""
  }
  return out
}

const expectNoSecret = (value: unknown, secret: string, what: string) => {
  for (const [how, text] of Object.entries(renderings(value))) {
    expect(text.includes(secret), `${what} shows the secret through ${how}`).toBe(false)
  }
}

/** A tracer that keeps every span, rendered with its attributes, events and exit. */
const recordingTracer = () => {
  const spans: Array<Tracer.NativeSpan> = []
  const tracer = Tracer.make({
    span: (options) => {
      const span = new Tracer.NativeSpan(options)
      spans.push(span)
      return span
    }
  })
  const rendered = () =>
    spans.map((span) =>
      JSON.stringify({
        name: span.name,
        attributes: [...span.attributes].map(([k, v]) => [k, Formatter.format(v)]),
        events: span.events,
        status: span.status._tag === "Ended"
          ? Exit.isFailure(span.status.exit) ? Cause.pretty(span.status.exit.cause) : "ok"
          : "open"
      })
    ).join("\n")
  return { tracer, spans, rendered }
}

class Server extends Context.Service<Server, ThrowawayServer & { readonly secret: string }>()("pgfx/test/security/Server") {
  static readonly layer = Layer.effect(
    Server,
    Effect.gen(function*() {
      const secret = `Sx9-${randomBytes(6).toString("hex")}`
      const server = yield* throwawayServer({
        hba: [{ user: "plain_u", method: "password" }],
        users: [
          { name: "scram_u", password: `${secret}-scram`, passwordEncryption: "scram-sha-256" },
          { name: "md5_u", password: `${secret}-md5`, passwordEncryption: "md5" },
          { name: "plain_u", password: `${secret}-plain`, passwordEncryption: "scram-sha-256" }
        ]
      })
      return { ...server, secret }
    })
  )
}

if (primaryTarget()) {
  layer(Server.layer, { excludeTestServices: true, timeout: "60 seconds" })("secrets stay Redacted", (it) => {
    it.effect("configs from conninfo, URL, object, Redacted and PGPASSWORD never show the password", () =>
      Effect.gen(function*() {
        const secret = `Cf7-${randomBytes(6).toString("hex")}`
        // the checks themselves see a leak
        expect(Object.values(renderings({ password: secret })).some((text) => text.includes(secret))).toBe(true)
        expect(renderings(new Error(`x ${secret}`)).message).toContain(secret)
        const inputs: ReadonlyArray<readonly [string, string | PgConfig.PgConfigInput]> = [
          ["conninfo", `host=127.0.0.1 user=u password=${secret} sslpassword=${secret}`],
          ["quoted conninfo", `host=127.0.0.1 user=u password='${secret} x'`],
          ["URL", `postgresql://u:${secret}@127.0.0.1/db?sslpassword=${secret}`],
          ["URL query", `postgresql://u@127.0.0.1/db?password=${secret}`],
          ["object", { host: "127.0.0.1", user: "u", password: secret }],
          ["Redacted", { host: "127.0.0.1", user: "u", password: Redacted.make(secret) }]
        ]
        for (const [label, input] of inputs) {
          const config = yield* PgConfig.make(input)
          expect(Redacted.value(config.password!)).toContain(secret)
          expectNoSecret(config, secret, `config (${label})`)
          expectNoSecret(PgConfig.describe(config), secret, `describe (${label})`)
          if (typeof input === "string") expectNoSecret(yield* PgConfig.parse(input), secret, `parse (${label})`)
        }
        const fromEnv = yield* PgConfig.make("host=127.0.0.1 user=u").pipe(
          Effect.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({ PGPASSWORD: secret })))
        )
        expect(Redacted.value(fromEnv.password!)).toBe(secret)
        expectNoSecret(fromEnv, secret, "config from PGPASSWORD")
        // malformed conninfo around a password: the error never echoes it
        for (const text of [
          `password=${secret} bogus`,
          `host='db password='${secret} x`,
          `host='db password='${secret}=1`,
          `postgresql://u:${secret}@h:x/d`,
          `postgresql://u:${secret}/x@h/d`
        ]) {
          const error = yield* Effect.flip(PgConfig.parse(text))
          expectNoSecret(error, secret, `parse error of ${JSON.stringify(text.replace(secret, "<secret>"))}`)
        }
      }))

    it.effect("a failed login (SCRAM, MD5, cleartext): no password in the error, the logs or the spans", () =>
      Effect.gen(function*() {
        const server = yield* Server
        for (const user of ["scram_u", "md5_u", "plain_u"]) {
          const wrong = `${server.secret}-wrong`
          const { tracer, rendered } = recordingTracer()
          const { exit, lines } = yield* captureLogs(
            Effect.scoped(Connection.connect(server.urlFor({ user, password: wrong }))).pipe(Effect.withTracer(tracer))
          )
          const error = failureOf(exit) as PgError.PgError
          expect(error._tag).toBe("ConnectionError")
          if (error._tag === "ConnectionError") {
            expect(error.reason).toBe("Authentication")
            expect(error.sqlState).toBe("28P01")
          }
          expectNoSecret(error, server.secret, `login error (${user})`)
          expectNoSecret(Cause.pretty((exit as Exit.Failure<unknown, unknown>).cause), server.secret, `cause (${user})`)
          expect(lines.join("\n")).not.toContain(server.secret)
          expect(rendered()).not.toContain(server.secret)
        }
      }))

    it.effect("an open connection, its info, statement errors and spans never show the password", () =>
      Effect.gen(function*() {
        const server = yield* Server
        const { tracer, spans, rendered } = recordingTracer()
        const { exit, lines } = yield* captureLogs(Effect.scoped(Effect.gen(function*() {
          const conn = yield* Connection.connect(server.urlFor({ user: "scram_u", password: `${server.secret}-scram` }))
          yield* conn.execute("SELECT $1::text", ["x"])
          const error = yield* Effect.flip(conn.execute("SELECT 1/0"))
          yield* conn.execute("DO $$ BEGIN RAISE NOTICE 'a notice'; END $$")
          expectNoSecret(conn, server.secret, "connection")
          expectNoSecret(conn.info, server.secret, "connection info")
          expectNoSecret(conn.info.dsn, server.secret, "dsn")
          expectNoSecret(error, server.secret, "statement error")
          const sql = yield* SqlClient.SqlClient
          yield* sql`SELECT ${"y"}::text`
          const sqlError = yield* Effect.flip(sql`SELECT 1/0`)
          expectNoSecret(sqlError, server.secret, "SqlError")
        }).pipe(
          Effect.provide(PgSql.layer({ settings: server.urlFor({ user: "scram_u", password: `${server.secret}-scram` }) }))
        )).pipe(Effect.withTracer(tracer)))
        expect(Exit.isSuccess(exit)).toBe(true)
        expect(spans.length).toBeGreaterThan(2)
        expect(rendered()).not.toContain(server.secret)
        expect(lines.join("\n")).not.toContain(server.secret)
      }))

    it.effect("a refused or unknown host with a password in the URL: no password in the error", () =>
      Effect.gen(function*() {
        const server = yield* Server
        const fake = yield* Fake.make((client) => client.end)
        for (const url of [
          `postgresql://u:${server.secret}@127.0.0.1:${fake.port}/d?sslmode=disable&connect_timeout=2`,
          `postgresql://u:${server.secret}@no-such-host.invalid:5432/d?connect_timeout=2`
        ]) {
          const exit = yield* Effect.exit(Effect.scoped(Connection.connect(url)))
          const error = failureOf(exit)
          expectNoSecret(error, server.secret, "connect error")
          expectNoSecret(Cause.pretty((exit as Exit.Failure<unknown, unknown>).cause), server.secret, "connect cause")
        }
      }).pipe(Effect.scoped))
  })
}

// -----------------------------------------------------------------------------------------------
// identifiers and values
// -----------------------------------------------------------------------------------------------

const hostileNames = [
  `a"; DROP TABLE victim; --`,
  `x' OR '1'='1`,
  `"quoted"`,
  `$1`,
  `\\`,
  `%s`,
  `名前 with spaces`,
  `MixedCase`,
  `;`,
  `--`,
  `/* c */`
]

/** Values that break code that splices text into SQL. NUL-free (NUL is refused, see below). */
const corpus: ReadonlyArray<string> = [
  `'; DROP TABLE victim; --`,
  `' OR '1'='1`,
  `"; DROP TABLE victim; --`,
  `$1`,
  `$1::text`,
  `\\`,
  `\\'`,
  `'\\''`,
  `%s`,
  `%(name)s`,
  `?`,
  `:name`,
  `$$`,
  `$tag$ x $tag$`,
  `E'\\x41'`,
  `\\x00`,
  `/* unterminated`,
  `-- comment`,
  `\\N`,
  `NULL`,
  `''`,
  `"`,
  ``,
  ` `,
  `\t\r\n`,
  `\u2028\u2029`,
  `\uFEFFbom`,
  `é ü ß`,
  `日本語のテキスト`,
  `عربى`,
  `👩‍👩‍👧‍👦 🏳️‍🌈`,
  `a\u0301`,
  `\u0001\u001f\u007f`,
  `\uD83D\uDE00`,
  `; SELECT pg_sleep(10); --`,
  `\\'); DELETE FROM victim; --`,
  "x".repeat(100_000)
]

/** The corpus as sent through notify (payloads are limited to 8000 bytes). */
const notifyCorpus = corpus.filter((value) => Buffer.byteLength(value) < 7000)

layer(TestDatabase.layer, { excludeTestServices: true })("identifiers and values", (it) => {
  it.effect("hostile LISTEN channel names are quoted: each receives its own notifications; nothing else runs", () =>
    Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const app = appName("listen")
      const watcher = yield* admin(url)
      yield* watcher.conn.execute("CREATE TABLE IF NOT EXISTS victim (x int)")
      yield* watcher.conn.execute("CREATE TABLE IF NOT EXISTS x (x int)")
      yield* Effect.gen(function*() {
        const conn = yield* Connection.connect(withApp(url, app))
        const received: Array<[string, string]> = []
        const fiber = yield* Effect.forkChild(
          conn.listen(...hostileNames).pipe(
            Stream.take(hostileNames.length),
            Stream.runForEach((n) => Effect.sync(() => received.push([n.channel, n.payload])))
          )
        )
        yield* eventually(
          Effect.map(watcher.sessions(app), (rows) => rows.some((row) => String(row[2]).startsWith("LISTEN"))),
          "the LISTENs"
        )
        // wait for the last LISTEN too
        yield* Effect.sleep("100 millis")
        for (const name of hostileNames) yield* watcher.conn.notify(name, `to ${name}`)
        yield* Fiber.join(fiber)
        expect(received).toEqual(hostileNames.map((name) => [name, `to ${name}`]))
      }).pipe(Effect.scoped)
      expect((yield* watcher.conn.execute("SELECT to_regclass('victim') IS NOT NULL, to_regclass('x') IS NOT NULL")).rows)
        .toEqual([[true, true]])
      yield* leakAudit(url, app)
    }))

  it.effect("hostile cursor names are quoted: declared, fetched and closed under their exact name", () =>
    Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const app = appName("cursor")
      const watcher = yield* admin(url)
      yield* watcher.conn.execute("CREATE TABLE IF NOT EXISTS victim (x int)")
      yield* Effect.gen(function*() {
        const conn = yield* Connection.connect(withApp(url, app))
        for (const name of hostileNames) {
          yield* Effect.scoped(Effect.gen(function*() {
            const cursor = yield* conn.serverCursor(name, "SELECT g FROM generate_series(1, 3) g WHERE g > $1", [0])
            const names = yield* conn.execute("SELECT name FROM pg_cursors")
            expect(names.rows).toEqual([[name]])
            expect(yield* cursor.fetchAll).toEqual([[1], [2], [3]])
          }))
          expect((yield* conn.execute("SELECT count(*)::int FROM pg_cursors")).rows).toEqual([[0]])
          expect(conn.info.transactionStatus).toBe("IDLE")
        }
        // WITH HOLD too
        yield* Effect.scoped(Effect.gen(function*() {
          const cursor = yield* conn.serverCursor(hostileNames[0], "SELECT 1", [], { withHold: true })
          expect(yield* cursor.fetchOne).toEqual([1])
        }))
      }).pipe(Effect.scoped)
      expect((yield* watcher.conn.execute("SELECT to_regclass('victim') IS NOT NULL")).rows).toEqual([[true]])
      yield* leakAudit(url, app)
    }))

  it.effect("an injection corpus through execute, stream, pipeline, executeMany, cursors, server cursors, notify and sql`` comes back byte-identical", () =>
    Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const app = appName("inject")
      const watcher = yield* admin(url)
      yield* watcher.conn.execute("CREATE TABLE IF NOT EXISTS victim (x int)")
      yield* watcher.conn.execute("INSERT INTO victim VALUES (1), (2), (3)")
      yield* watcher.conn.execute("CREATE TABLE injected (id int PRIMARY KEY, v text)")
      const indexed = corpus.map((value, index) => [index, value] as const)
      yield* Effect.gen(function*() {
        const conn = yield* Connection.connect(withApp(url, app))
        // execute: unprepared, then prepared (binary results)
        for (const prepare of [false, true]) {
          for (const value of corpus) {
            const result = yield* conn.execute("SELECT $1::text, length($1::text), $1::text = $2", [value, value], { prepare })
            expect(result.rows).toEqual([[value, [...value].length, true]])
          }
        }
        // executeMany into a table, read back
        yield* conn.executeMany("INSERT INTO injected (id, v) VALUES ($1, $2)", indexed.map(([i, v]) => [i, v]))
        const stored = yield* conn.execute("SELECT id, v FROM injected ORDER BY id", [])
        expect(stored.rows).toEqual(indexed.map(([i, v]) => [i, v]))
        // pipeline
        const piped = yield* conn.pipeline(corpus.map((value) => ({ sql: "SELECT $1::text", params: [value] })))
        expect(piped.map((exit) => (Exit.isSuccess(exit) ? exit.value.rows[0][0] : "failed"))).toEqual(corpus)
        // stream
        const streamed = yield* conn.stream("SELECT v FROM injected WHERE v = ANY($1::text[]) ORDER BY id", [corpus], { batchSize: 5 })
          .pipe(Stream.runCollect)
        expect(streamed.map((row) => row[0])).toEqual(corpus)
        // client cursor
        const cursor = yield* conn.cursor().execute("SELECT $1::text, $2::text", [corpus[0], corpus[1]])
        expect(yield* cursor.fetchAll).toEqual([[corpus[0], corpus[1]]])
        // server cursor parameters
        for (const value of corpus.slice(0, 12)) {
          const fetched = yield* Effect.scoped(Effect.flatMap(
            conn.serverCursor("inj", "SELECT $1::text AS v", [value]),
            (server) => server.fetchAll
          ))
          expect(fetched).toEqual([[value]])
        }
        // notify payloads (and a hostile channel)
        const listener = yield* Connection.connect(withApp(url, app))
        const fiber = yield* Effect.forkChild(
          listener.listen(hostileNames[0]).pipe(Stream.take(notifyCorpus.length), Stream.runCollect)
        )
        yield* eventually(
          Effect.map(watcher.sessions(app), (rows) => rows.some((row) => String(row[2]).startsWith("LISTEN"))),
          "the LISTEN"
        )
        for (const value of notifyCorpus) yield* conn.notify(hostileNames[0], value)
        expect((yield* Fiber.join(fiber)).map((n) => n.payload)).toEqual(notifyCorpus)
        // effect's sql template
        const viaSql = yield* Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const out: Array<unknown> = []
          for (const value of corpus) out.push((yield* sql<{ v: string }>`SELECT ${value}::text AS v`)[0].v)
          out.push(...(yield* sql<{ v: string }>`SELECT v FROM injected WHERE v IN ${sql.in(corpus)} ORDER BY id`).map((r) => r.v))
          return out
        }).pipe(Effect.provide(PgSql.layer({ settings: withApp(url, app) })))
        expect(viaSql).toEqual([...corpus, ...corpus])
        // NUL is refused before anything is sent, and the connection stays usable
        const nul = yield* Effect.flip(conn.execute("SELECT $1::text", ["a\u0000b"]))
        expect(nul._tag).toBe("ParameterError")
        expect((yield* conn.execute("SELECT 1")).rows).toEqual([[1]])
      }).pipe(Effect.scoped)
      // nothing was harmed
      expect((yield* watcher.conn.execute("SELECT count(*)::int FROM victim")).rows).toEqual([[3]])
      expect((yield* watcher.conn.execute("SELECT count(*)::int FROM injected")).rows).toEqual([[corpus.length]])
      yield* leakAudit(url, app)
    }))
})
