/**
 * The server's own ceilings on this machine: pgbench for point queries,
 * server-side COPY and psql's \copy for bulk transfer.
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { adminQuery, type BenchEnv } from "./env.ts"
import { pgArgs, pgEnv } from "./data.ts"

const run = (file: string, args: ReadonlyArray<string>, env: NodeJS.ProcessEnv, timeoutMs: number) =>
  new Promise<{ readonly out: string; readonly ms: number }>((resolve, reject) => {
    const start = performance.now()
    const child = spawn(file, args, { env, stdio: ["ignore", "pipe", "pipe"] })
    let out = ""
    let err = ""
    child.stdout.on("data", (chunk) => (out += chunk))
    child.stderr.on("data", (chunk) => (err += chunk))
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs)
    child.on("error", reject)
    child.on("close", (code) => {
      clearTimeout(timer)
      const ms = performance.now() - start
      if (code === 0) resolve({ out, ms })
      else reject(new Error(`${path.basename(file)} exited with ${code}: ${err.trim().split("\n").pop()}`))
    })
  })

const scripts = new Set<string>()

/** A pgbench script in a temp file (removed by `removeScripts`). */
const script = (name: string, text: string): string => {
  const file = path.join(os.tmpdir(), `pgfx-bench-${process.pid}-${name}.sql`)
  fs.writeFileSync(file, text)
  scripts.add(file)
  return file
}

export const removeScripts = (): void => {
  for (const file of scripts) fs.rmSync(file, { force: true })
  scripts.clear()
}

export const W1_SCRIPT = () => script("w1", "\\set x random(1, 10000)\nSELECT :x::int4 * :x::int4;\n")
export const W2_SCRIPT = () => script("w2", "\\set id random(1, 100000)\nSELECT id, payload FROM items WHERE id = :id;\n")
export const W6_SCRIPT = () => script("w6", "SELECT 1;\n")

/**
 * Transactions per second of `pgbench -n -M prepared <args>` for `seconds`
 * (excluding connection time), or undefined without pgbench.
 */
export const pgbench = async (env: BenchEnv, args: ReadonlyArray<string>, seconds: number): Promise<number | undefined> => {
  if (env.pgbench === undefined) return undefined
  const { out } = await run(
    env.pgbench,
    ["-n", "-M", "prepared", "-T", String(seconds), ...args, ...pgArgs(env), env.database],
    pgEnv(env),
    (seconds + 60) * 1000
  )
  const match = /tps = ([0-9.]+) \(without initial connection time\)/.exec(out) ?? /tps = ([0-9.]+)/.exec(out)
  if (match === null) throw new Error(`no tps in pgbench output: ${out.slice(-200)}`)
  return Number(match[1])
}

/** Milliseconds of `psql -c <command>` (includes psql's own start, a few ms). */
export const psqlMs = async (env: BenchEnv, command: string): Promise<number | undefined> => {
  if (env.psql === undefined) return undefined
  const { ms } = await run(env.psql, ["-X", "-q", "-v", "ON_ERROR_STOP=1", ...pgArgs(env), "-d", env.database, "-c", command], pgEnv(env), 600_000)
  return ms
}

/** Milliseconds of one server-side statement (run by pg on a fresh connection, connection time excluded). */
export const serverStatementMs = async (env: BenchEnv, sql: string): Promise<number> => {
  const { default: pg } = await import("pg")
  const client = new pg.Client({ connectionString: env.url })
  client.on("error", () => {})
  await client.connect()
  try {
    const start = performance.now()
    await client.query(sql)
    return performance.now() - start
  } finally {
    await client.end().catch(() => undefined)
  }
}

/** Median of `times` runs of `f` (untimed `before` each). */
export const medianOf = async (
  times: number,
  f: () => Promise<number | undefined>,
  before?: () => Promise<unknown>
): Promise<number | undefined> => {
  const values: Array<number> = []
  for (let i = 0; i < times; i++) {
    await before?.()
    const value = await f()
    if (value === undefined) return undefined
    values.push(value)
  }
  values.sort((a, b) => a - b)
  return values[values.length >> 1]
}

export { adminQuery }
