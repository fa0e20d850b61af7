/**
 * The harness itself: the project's server, per-file databases, throwaway servers (password
 * methods, TLS, stop/start/kill). Talks to PostgreSQL with `pg`, independent of pgfx.
 */
import * as fs from "node:fs"
import { describe, expect, it, layer } from "@effect/vitest"
import { Effect } from "effect"
import pg from "pg"
import { inject } from "vitest"
import { createTestDatabase, primaryTarget, serverTarget, serverUrl, TestDatabase, testDatabaseUrl, throwawayServer } from "./harness.ts"

/** Run `f` on a fresh `pg` connection, closed afterwards. */
const withClient = <A>(config: string | pg.ClientConfig, f: (client: pg.Client) => Promise<A>): Effect.Effect<A> =>
  Effect.promise(async () => {
    const client = new pg.Client(typeof config === "string" ? { connectionString: config } : config)
    client.on("error", () => {})
    await client.connect()
    try {
      return await f(client)
    } finally {
      await client.end().catch(() => undefined)
    }
  })

const query = (config: string | pg.ClientConfig, sql: string, params?: Array<unknown>) =>
  withClient(config, async (client) => (await client.query(sql, params)).rows)

/** The SQLSTATE (or Node error code) a connection attempt fails with; "ok" when it succeeds. */
const connectOutcome = (config: pg.ClientConfig): Effect.Effect<string> =>
  Effect.promise(async () => {
    const client = new pg.Client(config)
    client.on("error", () => {})
    try {
      await client.connect()
      await client.query("SELECT 1")
      return "ok"
    } catch (error) {
      return String((error as { code?: unknown }).code ?? (error as Error).message)
    } finally {
      await client.end().catch(() => undefined)
    }
  })

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

const databaseExists = (name: string) =>
  Effect.map(query(serverUrl(), "SELECT 1 FROM pg_database WHERE datname = $1", [name]), (rows) => rows.length === 1)

describe("the project's server", () => {
  it.effect("answers on the injected URL, as the target's version", () =>
    Effect.gen(function* () {
      const [row] = yield* query(serverUrl(), "SELECT current_setting('server_version_num')::int AS v, current_user AS u")
      expect(row.u).toBe("postgres")
      if (serverTarget() === "pg15") expect(row.v).toBeGreaterThanOrEqual(150000)
      if (serverTarget() === "pg18" && !process.env.DATABASE_URL) expect(row.v).toBeGreaterThanOrEqual(180000)
    }))

  it.effect("requires the password when the URL has one (the embedded server uses SCRAM)", () =>
    Effect.gen(function* () {
      const url = new URL(serverUrl())
      if (url.password === "") return
      const [row] = yield* query(serverUrl(), "SELECT rolpassword LIKE 'SCRAM-SHA-256$%' AS scram FROM pg_authid WHERE rolname = current_user")
      if (!process.env.DATABASE_URL) expect(row.scram).toBe(true)
      url.password = "wrong"
      expect(yield* connectOutcome({ connectionString: url.toString() })).toBe("28P01")
    }))
})

layer(TestDatabase.layer)("TestDatabase.layer", (it) => {
  it.effect("gives this file a fresh UTF8 database named after the file and the run", () =>
    Effect.gen(function* () {
      const db = yield* TestDatabase
      expect(db.name).toMatch(new RegExp(`^pgfxt_${inject("pgfxRunId")}_harness_[0-9a-f]{8}$`))
      const [row] = yield* query(
        db.url,
        `SELECT current_database() AS name, pg_encoding_to_char(encoding) AS encoding,
                (SELECT count(*)::int FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')) AS objects
           FROM pg_database WHERE datname = current_database()`
      )
      expect(row).toEqual({ name: db.name, encoding: "UTF8", objects: 0 })
      yield* query(db.url, "CREATE TABLE kept (id int)")
    }))

  it.effect("keeps the database for the whole file", () =>
    Effect.gen(function* () {
      const rows = yield* query(yield* TestDatabase.url, "SELECT to_regclass('kept') IS NOT NULL AS kept")
      expect(rows).toEqual([{ kept: true }])
    }))
})

describe("createTestDatabase / testDatabaseUrl", () => {
  it.effect("creates isolated databases and drops them", () =>
    Effect.gen(function* () {
      const a = yield* Effect.promise(() => createTestDatabase("iso a"))
      const b = yield* Effect.promise(() => createTestDatabase("iso b"))
      expect(a.name).not.toBe(b.name)
      expect(a.name).toContain("_iso_a_")
      yield* query(a.url, "CREATE TABLE only_in_a (id int)")
      expect(yield* query(b.url, "SELECT to_regclass('only_in_a') AS t")).toEqual([{ t: null }])
      yield* query(b.url, "CREATE TABLE only_in_a (id int)") // same name, no clash
      // drop ends sessions still connected (WITH (FORCE)) and is idempotent
      const lingering = new pg.Client({ connectionString: a.url })
      lingering.on("error", () => {})
      yield* Effect.promise(() => lingering.connect())
      yield* Effect.promise(() => a.drop())
      yield* Effect.promise(() => a.drop())
      yield* Effect.promise(() => b.drop())
      expect(yield* databaseExists(a.name)).toBe(false)
      expect(yield* databaseExists(b.name)).toBe(false)
      yield* Effect.promise(() => lingering.end().catch(() => undefined))
    }))

  it.effect("testDatabaseUrl drops its database when the scope closes", () =>
    Effect.gen(function* () {
      const name = yield* Effect.scoped(
        Effect.gen(function* () {
          const url = yield* testDatabaseUrl
          const [row] = yield* query(url, "SELECT current_database() AS name")
          return String(row.name)
        })
      )
      expect(yield* databaseExists(name)).toBe(false)
    }))
})

// throwaway servers do not depend on the target: test them once per run
if (primaryTarget()) describe("throwawayServer", () => {
  it.effect("accepts the right md5 and SCRAM passwords and refuses wrong ones", () =>
    Effect.gen(function* () {
      const server = yield* throwawayServer({
        hba: [
          { user: "md5_user", method: "md5" },
          { user: "scram_user", method: "scram-sha-256" },
          { user: "trust_user", method: "trust" }
        ],
        users: [
          { name: "md5_user", password: "md5 secret", passwordEncryption: "md5" },
          { name: "scram_user", password: "scram secret", passwordEncryption: "scram-sha-256" },
          { name: "trust_user", password: "unused" }
        ],
        postgresqlConf: { log_connections: "on" }
      })
      const stored = yield* server.query(
        "SELECT rolname, left(rolpassword, 14) AS p FROM pg_authid WHERE rolname IN ('md5_user', 'scram_user') ORDER BY 1"
      )
      expect(stored).toEqual([
        { rolname: "md5_user", p: expect.stringMatching(/^md5[0-9a-f]{11}$/) },
        { rolname: "scram_user", p: "SCRAM-SHA-256$" }
      ])
      const attempt = (user: string, password: string) =>
        connectOutcome({ host: server.host, port: server.port, user, password, database: "postgres" })
      expect(yield* attempt("md5_user", "md5 secret")).toBe("ok")
      expect(yield* attempt("md5_user", "wrong")).toBe("28P01")
      expect(yield* attempt("scram_user", "scram secret")).toBe("ok")
      expect(yield* attempt("scram_user", "wrong")).toBe("28P01")
      expect(yield* attempt("trust_user", "anything")).toBe("ok")
      expect(yield* attempt("postgres", server.password)).toBe("ok")
      expect(yield* attempt("postgres", "wrong")).toBe("28P01")
      // the server says which method authenticated each session
      expect(server.logs()).toMatch(/identity="md5_user" method=md5/)
      expect(server.logs()).toMatch(/identity="scram_user" method=scram-sha-256/)
    }))

  it.effect("serves TLS with a certificate for localhost and 127.0.0.1 signed by its CA", () =>
    Effect.gen(function* () {
      const server = yield* throwawayServer({ ssl: true })
      expect(server.caFile).toBeDefined()
      const ca = fs.readFileSync(server.caFile!, "utf8")
      for (const host of ["127.0.0.1", "localhost"]) {
        const rows = yield* query(
          { host, port: server.port, user: "postgres", password: server.password, database: "postgres", ssl: { ca } },
          "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
        )
        expect(rows).toEqual([{ ssl: true, version: expect.stringMatching(/^TLSv1\.[23]$/) }])
      }
      // verification is real: without the CA the self-signed chain is refused
      const untrusted = yield* connectOutcome({
        host: server.host,
        port: server.port,
        user: "postgres",
        password: server.password,
        database: "postgres",
        ssl: { rejectUnauthorized: true }
      })
      expect(untrusted).toMatch(/SELF_SIGNED|self[- ]signed|UNABLE_TO_VERIFY/i)
    }))

  it.effect("stops, starts, restarts and survives a kill; hba changes apply on reload", () =>
    Effect.gen(function* () {
      const server = yield* throwawayServer({ users: [{ name: "app", password: "app secret" }] })
      const app = { host: server.host, port: server.port, user: "app", password: "app secret", database: "postgres" }
      yield* query(server.url, "CREATE TABLE survives (id int); INSERT INTO survives VALUES (1)")
      yield* server.stop
      expect(server.running()).toBe(false)
      expect(yield* connectOutcome(app)).toBe("ECONNREFUSED")
      yield* server.start
      expect(yield* connectOutcome(app)).toBe("ok")
      yield* server.kill() // immediate shutdown
      expect(server.running()).toBe(false)
      yield* server.restart
      expect(yield* query(server.url, "SELECT id FROM survives")).toEqual([{ id: 1 }])
      yield* server.writeHba([{ user: "app", method: "reject" }])
      yield* server.reload
      expect(yield* connectOutcome(app)).toBe("28000")
    }))

  it.effect("is removed, directory included, when its scope closes", () =>
    Effect.gen(function* () {
      const seen = yield* Effect.scoped(
        Effect.map(throwawayServer(), (server) => ({ dir: server.baseDir, pid: server.pid() }))
      )
      expect(fs.existsSync(seen.dir)).toBe(false)
      expect(seen.pid).toBeGreaterThan(0)
      expect(alive(seen.pid!)).toBe(false)
    }))
})
