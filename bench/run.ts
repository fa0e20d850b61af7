/**
 * `pnpm bench [--quick] [--only W1,W2,H,W3,W4,W5,W6] [--clients pgfx,pg,...]
 *             [--rounds N] [--warmup N] [--no-ceilings] [--embedded] [--out DIR]`
 *
 * Runs W1–W6 of shared/reference/performance.md and the seed's headline (H)
 * for pgfx and the peer clients, one after the other, in one run against
 * the same server and data; prints a markdown report with pgfx/peer ratios
 * and the targets, and writes `<stamp>.json`, `<stamp>.md` and the chart
 * `latest.svg` (`latest-quick.svg` for --quick) under bench/results/.
 * Exits non-zero only when a client crashed (status `error`) or the harness
 * itself failed; speed is never asserted.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { removeScripts } from "./lib/ceilings.ts"
import { benchDir, rootDir } from "./lib/child.ts"
import { seed, type Tables } from "./lib/data.ts"
import { provision } from "./lib/env.ts"
import { evaluateTargets, reportMarkdown, type RunReport } from "./lib/report.ts"
import { renderSvg } from "./lib/svg.ts"
import type { BenchContext, Series } from "./lib/types.ts"
import { headline } from "./headline.ts"
import { w1 } from "./w1-point.ts"
import { w2 } from "./w2-fanout.ts"
import { w3 } from "./w3-copy-in.ts"
import { w4 } from "./w4-copy-out.ts"
import { w5 } from "./w5-stream.ts"
import { w6 } from "./w6-pool.ts"

const usage = `usage: pnpm bench [options]
  --quick            every workload on small sizes (a minute or two; the CI smoke test)
  --only LIST        workloads to run, e.g. W1,W3 (W1 W2 H W3 W4 W5 W6; H = the seed's headline)
  --clients LIST     clients to run, by name prefix, e.g. pgfx,pg
  --rounds N         measured rounds per series (default 5, quick 2; big sizes use fewer)
  --warmup N         warm-up rounds (default 1)
  --no-ceilings      skip pgbench / server COPY / psql
  --embedded         use an embedded PostgreSQL (SCRAM) instead of DATABASE_URL / 127.0.0.1:5432
  --out DIR          where results go (default bench/results)`

const parseArgs = (argv: ReadonlyArray<string>) => {
  const options = {
    quick: false,
    only: undefined as Array<string> | undefined,
    clients: undefined as Array<string> | undefined,
    rounds: undefined as number | undefined,
    warmup: undefined as number | undefined,
    ceilings: true,
    embedded: false,
    out: path.join(benchDir, "results")
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    const value = () => {
      const v = argv[++i]
      if (v === undefined) throw new Error(`${arg} needs a value`)
      return v
    }
    switch (arg) {
      case "--":
        break
      case "--quick":
        options.quick = true
        break
      case "--only":
        options.only = value().split(",").map((w) => w.trim().toUpperCase())
        break
      case "--clients":
        options.clients = value().split(",").map((c) => c.trim())
        break
      case "--rounds":
        options.rounds = Number(value())
        break
      case "--warmup":
        options.warmup = Number(value())
        break
      case "--no-ceilings":
        options.ceilings = false
        break
      case "--embedded":
        options.embedded = true
        break
      case "--out":
        options.out = path.resolve(value())
        break
      case "-h":
      case "--help":
        console.log(usage)
        process.exit(0)
        break
      default:
        throw new Error(`unknown option ${arg}\n${usage}`)
    }
  }
  return options
}

const versionOf = (name: string): string => {
  try {
    const file = path.join(rootDir, "node_modules", name, "package.json")
    return (JSON.parse(fs.readFileSync(file, "utf8")) as { version: string }).version
  } catch {
    return "?"
  }
}

const stampOf = (date: Date) => date.toISOString().replace(/\.\d+Z$/, "Z").replace(/:/g, "-")

const main = async () => {
  const options = parseArgs(process.argv.slice(2))
  const log = (line: string) => console.log(line)
  const started = new Date()
  const loadAverageStart = os.loadavg()
  const env = await provision({ embedded: options.embedded, log })
  let tables: Tables | undefined
  try {
    log(`PostgreSQL ${env.serverVersion} (${env.source}) at ${env.host}:${env.port}, database ${env.database}, auth: ${env.auth}`)
    if (env.auth === "trust") log("note: the server trusts loopback connections (no SCRAM); connection set-up is cheaper than with SCRAM")
    if (os.loadavg()[0] > 0.5) log(`note: load average ${os.loadavg().map((l) => l.toFixed(2)).join(" ")} — other work is running; numbers will be noisy`)
    const copyRows = options.quick ? 50_000 : 1_000_000
    tables = await seed(env, copyRows, log)
    const ctx: BenchContext = {
      env,
      tables,
      quick: options.quick,
      plan: { warmup: options.warmup ?? 1, rounds: options.rounds ?? (options.quick ? 2 : 5) },
      log,
      ceilings: options.ceilings,
      clients: options.clients
    }
    const workloads: Array<[string, () => Promise<Array<Series>>]> = [
      ["W1", () => w1(ctx)],
      ["W2", () => w2(ctx)],
      ["H", () => headline(ctx)],
      ["W3", () => w3(ctx)],
      ["W4", () => w4(ctx, copyRows)],
      ["W5", () => w5(ctx, copyRows)],
      ["W6", () => w6(ctx)]
    ]
    const series: Array<Series> = []
    for (const [name, run] of workloads) {
      if (options.only !== undefined && !options.only.includes(name)) continue
      const start = performance.now()
      log(`${name} ...`)
      series.push(...(await run()))
      log(`${name} done in ${((performance.now() - start) / 1000).toFixed(1)} s`)
    }
    const report: RunReport = {
      info: {
        startedAt: started.toISOString(),
        finishedAt: new Date().toISOString(),
        quick: options.quick,
        argv: process.argv.slice(2),
        node: process.version,
        platform: `${os.platform()} ${os.release()}`,
        cpus: os.cpus()[0]?.model ?? "?",
        cores: os.cpus().length,
        memoryGB: Math.round(os.totalmem() / 2 ** 30),
        loadAverageStart,
        loadAverageEnd: os.loadavg(),
        server: { source: env.source, version: env.serverVersion, auth: env.auth, host: env.host, port: env.port, database: env.database },
        versions: Object.fromEntries(
          ["pg", "pg-cursor", "pg-copy-streams", "postgres", "@effect/sql-pg", "effect"].map((name) => [name, versionOf(name)])
        ),
        rounds: ctx.plan
      },
      series,
      targets: evaluateTargets(series)
    }
    const markdown = reportMarkdown(report)
    console.log(`\n${markdown}`)
    fs.mkdirSync(options.out, { recursive: true })
    const stamp = `${stampOf(started)}${options.quick ? "-quick" : ""}`
    fs.writeFileSync(path.join(options.out, `${stamp}.json`), `${JSON.stringify(report, null, 2)}\n`)
    fs.writeFileSync(path.join(options.out, `${stamp}.md`), markdown)
    const chart = path.join(options.out, options.quick ? "latest-quick.svg" : "latest.svg")
    fs.writeFileSync(chart, renderSvg(report))
    log(`results: ${path.join(options.out, `${stamp}.json`)}, ${stamp}.md, chart ${chart}`)
    const errors = series.flatMap((s) => s.results.filter((r) => r.status === "error").map((r) => `${s.id} ${r.client}: ${r.note}`))
    if (errors.length > 0) {
      log(`\n${errors.length} client run(s) failed:\n${errors.map((e) => `  ${e}`).join("\n")}`)
      process.exitCode = 1
    }
  } finally {
    removeScripts()
    await tables?.drop().catch(() => undefined)
    await env.close()
  }
}

main().then(
  () => process.exit(process.exitCode ?? 0),
  (error) => {
    console.error(error instanceof Error ? error.stack ?? error.message : error)
    process.exit(1)
  }
)
