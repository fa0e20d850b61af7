/**
 * W5 streaming: the rows of `copy_src_<rows>` (1M; 50k with --quick) through a
 * cursor / stream, 1,000 rows per batch; rows/s and peak RSS.
 *
 * Every measured round is its own process (bench/w5-child.ts, bundled by
 * esbuild with only that client's code and run by plain node — no tsx), so
 * RSS is the client's own: the peak includes Node itself (~40 MB) and the
 * client's code (see "RSS after connect"). Each process warms up first; the
 * clients take turns round by round, so load from elsewhere hits them alike.
 */
import * as fs from "node:fs"
import { bundle } from "./lib/bundle.ts"
import { runBundle, runTs } from "./lib/child.ts"
import { type BenchContext, type ClientResult, formatNumber, matchesClient, type Series, summarize } from "./lib/types.ts"

const clients: ReadonlyArray<{ readonly client: string; readonly kind: "pgfx" | "peer"; readonly note: string }> = [
  {
    client: "pgfx",
    kind: "pgfx",
    note: "Connection.stream (portal, batchSize 1000, next batch prefetched), prepare: true (binary results once prepared: the measured run)"
  },
  {
    client: "pgfx unprepared",
    kind: "pgfx",
    note: "Connection.stream, default prepare threshold (5): each process's runs get text results"
  },
  { client: "pg-cursor", kind: "peer", note: "pg + pg-cursor, read(1000) loop, rowMode array" },
  { client: "postgres.js", kind: "peer", note: "sql`…`.values().cursor(1000)" },
  { client: "@effect/sql-pg", kind: "peer", note: "sql.unsafe(…).stream (socket-paused backpressure)" }
]

interface ChildOutput {
  readonly samples: Array<number>
  readonly cpuMs: Array<number>
  readonly wallMs: Array<number>
  readonly baselineRssMB: number
  readonly peakRssMB: number
}

interface Entry {
  readonly client: string
  readonly kind: "pgfx" | "peer"
  readonly note: string
  bundled: string | undefined
  readonly outputs: Array<ChildOutput>
  error: string | undefined
}

export const w5 = async (ctx: BenchContext, copyRows: number): Promise<Array<Series>> => {
  const rounds = copyRows >= 1_000_000 ? Math.min(ctx.plan.rounds, 3) : ctx.plan.rounds
  const warmup = Math.max(1, ctx.plan.warmup)
  ctx.log(`  W5: streaming ${copyRows.toLocaleString("en-US")} rows, one process per client and round (warm-up ${warmup} in each, rounds ${rounds})`)
  const entries: Array<Entry> = clients
    .filter(({ client }) => ctx.clients === undefined || ctx.clients.some((name) => matchesClient(client, name)))
    .map((c) => ({ ...c, bundled: undefined, outputs: [], error: undefined }))
  let tsxFallback = false
  try {
    for (const entry of entries) {
      entry.bundled = await bundle("w5-child.ts", `w5-${entry.client.replace(/[^a-z0-9]+/gi, "_")}`, {
        "process.env.PGFX_W5_CLIENT": JSON.stringify(entry.client)
      }).catch((error) => {
        ctx.log(`    ${entry.client}: bundling failed (${(error as Error).message.split("\n")[0]}); running under tsx, RSS includes tsx`)
        tsxFallback = true
        return undefined
      })
    }
    for (let round = 0; round < rounds; round++) {
      for (let k = 0; k < entries.length; k++) {
        const entry = entries[(k + round) % entries.length]
        if (entry.error !== undefined) continue
        const args = JSON.stringify({ client: entry.client, url: ctx.env.url, table: ctx.tables.copySrc, rows: copyRows, batch: 1000, warmup, rounds: 1 })
        try {
          const out = entry.bundled === undefined
            ? await runTs("w5-child.ts", [args], 900_000)
            : await runBundle(entry.bundled, [args], 900_000)
          entry.outputs.push(JSON.parse(out.trim().split("\n").pop()!) as ChildOutput)
        } catch (error) {
          entry.error = (error as Error).message.slice(0, 300)
          ctx.log(`    ${entry.client}: ERROR ${entry.error}`)
        }
      }
    }
  } finally {
    for (const entry of entries) if (entry.bundled !== undefined) fs.rmSync(entry.bundled, { force: true })
  }
  const results: Array<ClientResult> = entries.map((entry) => {
    if (entry.error !== undefined) return { client: entry.client, kind: entry.kind, status: "error", samples: [], note: entry.error }
    const samples = entry.outputs.flatMap((o) => o.samples)
    const peak = Math.max(...entry.outputs.map((o) => o.peakRssMB))
    const baseline = summarize(entry.outputs.map((o) => o.baselineRssMB)).median!
    ctx.log(`    ${entry.client}: ${samples.map((s) => formatNumber(s)).join(" ")} rows/s, peak RSS ${peak.toFixed(0)} MB`)
    return {
      client: entry.client,
      kind: entry.kind,
      status: "ok",
      samples,
      ...summarize(samples),
      note: entry.note,
      extra: {
        clientCpuMsPerRound: Math.round(summarize(entry.outputs.flatMap((o) => o.cpuMs)).median! * 10) / 10,
        clientCpuPctOfWall: Math.round(
          summarize(entry.outputs.flatMap((o) => o.cpuMs.map((cpu, i) => cpu / o.wallMs[i]))).median! * 100
        ),
        peakRssMB: Math.round(peak * 10) / 10,
        rssAfterConnectMB: Math.round(baseline * 10) / 10,
        rssGrowthMB: Math.round((peak - baseline) * 10) / 10
      }
    }
  })
  return [
    {
      workload: "W5",
      id: "W5",
      title: "streaming through a cursor / stream, 1,000 rows per batch",
      variant: `${copyRows.toLocaleString("en-US")} rows`,
      unit: "rows/s",
      better: "higher",
      results,
      ceilings: [],
      notes: [
        "peak RSS (MB): the highest process.resourceUsage().maxRSS of the client's processes; target: < 150 MB",
        tsxFallback
          ? "bundling failed for some client: it ran under tsx, whose RSS includes tsx (~50 MB)"
          : "each client runs bundled by esbuild in plain node (no tsx); rssGrowthMB = peak − RSS after connecting, the streaming's own cost",
        "one process per client and round, clients taking turns"
      ]
    }
  ]
}
