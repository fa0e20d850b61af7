/**
 * Where the benchmarks run: a dedicated database `pgfx_bench` on the server of
 * `DATABASE_URL`, else on 127.0.0.1:5432 when it answers, else on an embedded
 * PostgreSQL (SCRAM) started for the run. `--embedded` forces the latter.
 */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import { Effect } from "effect"
import pg from "pg"
import { makeEmbeddedServer } from "../../test/embedded.ts"

export interface BenchEnv {
  /** URL of the benchmark database. */
  readonly url: string
  readonly host: string
  readonly port: number
  readonly user: string
  readonly password: string | undefined
  readonly database: string
  /** Where the server came from. */
  readonly source: "DATABASE_URL" | "local server" | "embedded"
  readonly serverVersion: string
  /** `trust` when a wrong password is accepted; `scram-sha-256` for the embedded server; else `password (<password_encryption>)`. */
  readonly auth: string
  /** `pgbench` and `psql` binaries, when found. */
  readonly pgbench: string | undefined
  readonly psql: string | undefined
  /** Stops an embedded server. */
  readonly close: () => Promise<void>
}

const localUrl = "postgresql://postgres@127.0.0.1:5432/postgres"

const answers = (host: string, port: number, timeoutMs: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = net.connect({ host, port })
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(timeoutMs, () => done(false))
    socket.once("connect", () => done(true))
    socket.once("error", () => done(false))
  })

const withDatabase = (url: string, database: string): string => {
  const u = new URL(url)
  u.pathname = `/${encodeURIComponent(database)}`
  return u.toString()
}

/** pg client on a URL, for setup work (not measured). */
export const adminQuery = async <R extends Record<string, unknown> = Record<string, unknown>>(
  url: string,
  sql: string,
  params?: Array<unknown>
): Promise<Array<R>> => {
  const client = new pg.Client({ connectionString: url })
  client.on("error", () => {})
  await client.connect()
  try {
    const result = await client.query(sql, params)
    return (Array.isArray(result) ? result[result.length - 1].rows : result.rows) as Array<R>
  } finally {
    await client.end().catch(() => undefined)
  }
}

const findBinary = (name: string): string | undefined => {
  const candidates: Array<string> = []
  try {
    for (const dir of fs.readdirSync("/usr/lib/postgresql").sort().reverse()) {
      candidates.push(`/usr/lib/postgresql/${dir}/bin/${name}`)
    }
  } catch {
    // no Debian layout
  }
  try {
    candidates.push(execFileSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" }).trim())
  } catch {
    // not on PATH
  }
  return candidates.find((file) => file !== "" && fs.existsSync(file))
}

const detectAuth = async (url: string): Promise<string> => {
  const u = new URL(url)
  u.password = "pgfx-bench-surely-wrong-password"
  const client = new pg.Client({ connectionString: u.toString() })
  client.on("error", () => {})
  try {
    await client.connect()
    await client.end()
    return "trust"
  } catch {
    const [row] = await adminQuery<{ password_encryption: string }>(url, "SHOW password_encryption").catch(() => [])
    return `password (${row?.password_encryption ?? "?"})`
  }
}

export const provision = async (options: { readonly embedded: boolean; readonly log: (line: string) => void }): Promise<BenchEnv> => {
  let base: string
  let source: BenchEnv["source"]
  let close = async () => {}
  const fromEnv = process.env.DATABASE_URL
  if (!options.embedded && fromEnv !== undefined && fromEnv !== "") {
    base = fromEnv
    source = "DATABASE_URL"
  } else if (!options.embedded && (await answers("127.0.0.1", 5432, 500))) {
    base = localUrl
    source = "local server"
  } else {
    options.log("starting an embedded PostgreSQL (SCRAM authentication) ...")
    const server = await Effect.runPromise(
      makeEmbeddedServer({
        label: "pgfx-bench",
        postgresqlConf: { shared_buffers: "256MB", max_wal_size: "4GB", checkpoint_timeout: "30min" }
      })
    )
    base = server.url
    source = "embedded"
    close = () => Effect.runPromise(server.remove)
  }
  const database = "pgfx_bench"
  const exists = await adminQuery(base, "SELECT 1 FROM pg_database WHERE datname = $1", [database])
  if (exists.length === 0) await adminQuery(base, `CREATE DATABASE ${database}`)
  const url = withDatabase(base, database)
  const u = new URL(url)
  const [{ server_version: version }] = await adminQuery<{ server_version: string }>(url, "SHOW server_version")
  return {
    url,
    host: decodeURIComponent(u.hostname) || "127.0.0.1",
    port: Number(u.port || 5432),
    user: decodeURIComponent(u.username) || "postgres",
    password: u.password === "" ? undefined : decodeURIComponent(u.password),
    database,
    source,
    serverVersion: version,
    auth: source === "embedded" ? "scram-sha-256" : await detectAuth(url),
    pgbench: findBinary("pgbench"),
    psql: findBinary("psql"),
    close
  }
}

/** The URL with another host and port (for the latency proxy). */
export const viaEndpoint = (url: string, host: string, port: number): string => {
  const u = new URL(url)
  u.hostname = host
  u.port = String(port)
  return u.toString()
}
