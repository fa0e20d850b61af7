/**
 * The run's report: a markdown table per series with pgfx/peer ratios, the
 * targets of performance.md checked against the fastest peer of the same
 * run, the JSON of the run, and an SVG chart (lib/svg.ts).
 *
 * Ratios are speed ratios throughout: "1.25×" means pgfx did the work 1.25
 * times as fast (for ms series: took 1/1.25 of the time).
 */
import { type ClientResult, formatNumber, type Series } from "./types.ts"

export interface RunInfo {
  readonly startedAt: string
  readonly finishedAt: string
  readonly quick: boolean
  readonly argv: ReadonlyArray<string>
  readonly node: string
  readonly platform: string
  readonly cpus: string
  readonly cores: number
  readonly memoryGB: number
  readonly loadAverageStart: ReadonlyArray<number>
  readonly loadAverageEnd: ReadonlyArray<number>
  readonly server: {
    readonly source: string
    readonly version: string
    readonly auth: string
    readonly host: string
    readonly port: number
    readonly database: string
  }
  readonly versions: Readonly<Record<string, string>>
  readonly rounds: { readonly warmup: number; readonly rounds: number }
}

export interface Target {
  readonly workload: string
  readonly goal: string
  readonly measured: string
  readonly met: boolean | undefined
}

export interface RunReport {
  readonly info: RunInfo
  readonly series: ReadonlyArray<Series>
  readonly targets: ReadonlyArray<Target>
}

/** A value as a speed (bigger is better) whatever the unit. */
const speed = (series: Series, value: number | undefined): number | undefined =>
  value === undefined || value <= 0 ? undefined : series.better === "higher" ? value : 1 / value

const ok = (series: Series) => series.results.filter((r) => r.status === "ok" && r.median !== undefined)

export const bestOf = (series: Series, kind: "pgfx" | "peer"): ClientResult | undefined => {
  let best: ClientResult | undefined
  for (const r of ok(series)) {
    if (r.kind !== kind) continue
    if (best === undefined || speed(series, r.median)! > speed(series, best.median)!) best = r
  }
  return best
}

/** Speed of a over speed of b. */
export const speedRatio = (series: Series, a: number | undefined, b: number | undefined): number | undefined => {
  const sa = speed(series, a)
  const sb = speed(series, b)
  return sa === undefined || sb === undefined ? undefined : sa / sb
}

const ratioText = (r: number | undefined) => (r === undefined ? "—" : `${r.toFixed(2)}×`)
const pct = (r: number | undefined) => (r === undefined ? "" : `${(r * 100).toFixed(0)}%`)

export const seriesMarkdown = (series: Series): string => {
  const lines: Array<string> = []
  const pgfx = bestOf(series, "pgfx")
  const peer = bestOf(series, "peer")
  lines.push(`### ${series.id} — ${series.title}`)
  lines.push(
    `${series.variant}; ${series.unit}, ${series.better} is better. Ratio = best pgfx (${pgfx?.client ?? "none"}) speed ÷ that row's speed. ` +
      "Client CPU = the client process's user + system CPU per measured round (median) and its share of the round's wall time."
  )
  lines.push("")
  lines.push("| client | median | min – max | spread | pgfx ratio | client CPU / round | extra |")
  lines.push("|---|---:|---:|---:|---:|---:|---|")
  for (const r of series.results) {
    if (r.status !== "ok") {
      lines.push(`| ${r.client} | ${r.status === "unavailable" ? "n/a" : "error"} | | | | | ${(r.note ?? "").replace(/\|/g, "/")} |`)
      continue
    }
    const { clientCpuMsPerRound, clientCpuPctOfWall, ...rest } = r.extra ?? {}
    const cpu = clientCpuMsPerRound === undefined ? "" : `${formatNumber(Number(clientCpuMsPerRound))} ms (${clientCpuPctOfWall}%)`
    const extra = Object.entries(rest).map(([k, v]) => `${k} ${v}`).join(", ")
    const ratio = r.kind === "pgfx"
      ? (peer === undefined ? "—" : `${ratioText(speedRatio(series, r.median, peer.median))} vs ${peer.client}`)
      : ratioText(speedRatio(series, pgfx?.median, r.median))
    lines.push(
      `| ${r.kind === "pgfx" ? `**${r.client}**` : r.client} | ${formatNumber(r.median)} | ${formatNumber(r.min)} – ${formatNumber(r.max)} | ${pct(r.spread)} | ${ratio} | ${cpu} | ${extra} |`
    )
  }
  for (const c of series.ceilings) {
    lines.push(`| _ceiling: ${c.label}_ | ${formatNumber(c.value)} | | | ${ratioText(speedRatio(series, pgfx?.median, c.value))} | | ${c.note ?? ""} |`)
  }
  for (const note of series.notes) lines.push(`\n- ${note}`)
  return lines.join("\n")
}

const find = (all: ReadonlyArray<Series>, id: string) => all.find((s) => s.id === id)
const largest = (all: ReadonlyArray<Series>, workload: string): Series | undefined => {
  const candidates = all.filter((s) => s.workload === workload)
  return candidates.sort((a, b) => Number(b.id.split("/")[1]) - Number(a.id.split("/")[1]))[0]
}

/** performance.md's targets, against the fastest peer of this run. */
export const evaluateTargets = (all: ReadonlyArray<Series>): Array<Target> => {
  const targets: Array<Target> = []
  /** A target on a speed ratio `r` (undefined: not measured), met at `min` or more. */
  const byRatio = (workload: string, goal: string, r: number | undefined, min: number, measured: (r: number) => string) => {
    targets.push({
      workload,
      goal,
      measured: r === undefined ? "not measured" : measured(r),
      met: r === undefined ? undefined : r >= min
    })
  }
  /** `client`'s ok result in `series`, or (no client named) the best pgfx one. */
  const pgfxOf = (series: Series, client?: string) =>
    client === undefined ? bestOf(series, "pgfx") : series.results.find((r) => r.client === client && r.status === "ok")
  const vsPeer = (series: Series | undefined, workload: string, goal: number, label?: string, client?: string) => {
    if (series === undefined) return
    const pgfx = pgfxOf(series, client)
    const peer = bestOf(series, "peer")
    byRatio(
      workload,
      label ?? `speed ≥ ${goal}× the fastest peer (${series.variant})`,
      speedRatio(series, pgfx?.median, peer?.median),
      goal,
      (r) => `${ratioText(r)} (${pgfx!.client} ${formatNumber(pgfx!.median)} vs ${peer!.client} ${formatNumber(peer!.median)} ${series.unit})`
    )
  }
  const vsCeiling = (series: Series | undefined, workload: string, label: string, goal: number) => {
    if (series === undefined) return
    const pgfx = bestOf(series, "pgfx")
    const ceiling = series.ceilings.find((c) => c.label === label)
    byRatio(
      workload,
      `≥ ${goal}× ${label}`,
      speedRatio(series, pgfx?.median, ceiling?.value),
      goal,
      (r) => `${ratioText(r)} (${formatNumber(pgfx!.median)} vs ${formatNumber(ceiling!.value)} ${series.unit})`
    )
  }
  const w1 = find(all, "W1")
  vsPeer(w1, "W1", 1.0)
  vsCeiling(w1, "W1", "pgbench -S -M prepared -c 1", 0.85)
  const w2 = find(all, "W2/c32")
  vsPeer(w2, "W2", 2.0, "idiomatic FanOut (pool.execute): time ≤ 0.5× the fastest peer's (speed ≥ 2×), 32 in flight", "pgfx pool.execute")
  const fresh = find(all, "H/loopback/fresh")
  if (w2 !== undefined && fresh !== undefined) {
    const pgfx = bestOf(w2, "pgfx")
    const one = fresh.results.find((r) => r.client === "pgfx" && r.status === "ok")
    byRatio(
      "W2",
      "≥ 10× faster than one by one through a fresh connection each (loopback)",
      speedRatio(w2, pgfx?.median, one?.median),
      10,
      (r) => `${ratioText(r)} (${formatNumber(pgfx!.median)} ms vs ${formatNumber(one!.median)} ms)`
    )
  }
  const w3 = find(all, "W3/1000000") ?? largest(all, "W3")
  vsPeer(w3, "W3", 1.5)
  vsCeiling(w3, "W3", "server COPY FROM file", 0.8)
  if (w3 !== undefined) {
    const text = w3.results.find((r) => r.client === "pgfx text" && r.status === "ok")
    const binary = w3.results.find((r) => r.client === "pgfx binary" && r.status === "ok")
    byRatio("W3", "binary at least as fast as text", speedRatio(w3, binary?.median, text?.median), 1, (r) => `binary ${ratioText(r)} text`)
  }
  const w4 = find(all, "W4")
  if (w4 !== undefined) {
    const pgfx = bestOf(w4, "pgfx")
    const streams = w4.results.find((r) => r.client === "pg-copy-streams" && r.status === "ok")
    byRatio(
      "W4",
      "≥ 1.5× pg-copy-streams with parsing",
      speedRatio(w4, pgfx?.median, streams?.median),
      1.5,
      (r) => `${ratioText(r)} (${formatNumber(pgfx!.median)} vs ${formatNumber(streams!.median)} rows/s)`
    )
  }
  const w5 = find(all, "W5")
  vsPeer(w5, "W5", 1.0)
  if (w5 !== undefined) {
    const pgfx = w5.results.find((r) => r.client === "pgfx" && r.status === "ok")
    const rss = pgfx?.extra?.peakRssMB
    targets.push({
      workload: "W5",
      goal: "peak RSS < 150 MB",
      measured: rss === undefined ? "not measured" : `${rss} MB (${w5.variant})`,
      met: rss === undefined ? undefined : Number(rss) < 150
    })
  }
  const w6 = find(all, "W6")
  vsPeer(w6, "W6", 1.2, "pool.execute: speed ≥ 1.2× the fastest peer", "pgfx pool.execute")
  /** `PgSql` within 1.25× of pgfx's own `execute` (speed ≥ 0.8×). */
  const sqlVsExecute = (series: Series | undefined, workload: string, execute: string) => {
    if (series === undefined) return
    const sql = pgfxOf(series, "pgfx PgSql")
    const own = pgfxOf(series, execute)
    byRatio(
      workload,
      `PgSql within 1.25× of ${execute} (speed ≥ 0.8×)`,
      speedRatio(series, sql?.median, own?.median),
      0.8,
      (r) => `${ratioText(r)} (${formatNumber(sql!.median)} vs ${formatNumber(own!.median)} ${series.unit})`
    )
  }
  sqlVsExecute(w1, "W1", "pgfx")
  sqlVsExecute(w6, "W6", "pgfx pool.execute")
  return targets
}

export const reportMarkdown = (report: RunReport): string => {
  const { info } = report
  const out: Array<string> = []
  out.push(`# pgfx benchmarks — ${info.startedAt}${info.quick ? " (--quick)" : ""}`)
  out.push("")
  out.push(
    `Node ${info.node}, ${info.cpus} × ${info.cores}, ${info.memoryGB} GB; PostgreSQL ${info.server.version} (${info.server.source}, ${info.server.host}:${info.server.port}, auth: ${info.server.auth}); ` +
      `load average at start ${info.loadAverageStart.map((l) => l.toFixed(2)).join(" ")}, at end ${info.loadAverageEnd.map((l) => l.toFixed(2)).join(" ")}; ` +
      `warm-up ${info.rounds.warmup}, rounds ${info.rounds.rounds} (fewer for the big sizes).`
  )
  out.push("")
  out.push(`Clients: ${Object.entries(info.versions).map(([k, v]) => `${k} ${v}`).join(", ")}.`)
  out.push("")
  out.push("## Summary: best pgfx vs the fastest peer")
  out.push("")
  out.push("| series | unit | best pgfx | fastest peer | pgfx speed ratio |")
  out.push("|---|---|---:|---:|---:|")
  for (const series of report.series) {
    const pgfx = bestOf(series, "pgfx")
    const peer = bestOf(series, "peer")
    out.push(
      `| ${series.id} (${series.variant}) | ${series.unit} | ${pgfx === undefined ? "—" : `${formatNumber(pgfx.median)} (${pgfx.client})`} | ${peer === undefined ? "—" : `${formatNumber(peer.median)} (${peer.client})`} | ${ratioText(speedRatio(series, pgfx?.median, peer?.median))} |`
    )
  }
  out.push("")
  out.push("## Targets (performance.md)")
  out.push("")
  out.push("| workload | target | measured | met |")
  out.push("|---|---|---|---|")
  for (const t of report.targets) out.push(`| ${t.workload} | ${t.goal} | ${t.measured} | ${t.met === undefined ? "—" : t.met ? "yes" : "**no**"} |`)
  out.push("")
  out.push("## Series")
  for (const series of report.series) {
    out.push("")
    out.push(seriesMarkdown(series))
  }
  out.push("")
  return out.join("\n")
}
