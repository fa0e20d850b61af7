/**
 * The chart of a run, as a self-contained SVG (no library, no browser):
 * one bar panel per main series (ceilings in grey), the seed's headline on
 * a log scale, and line panels for how cost grows with size (W3) and with
 * concurrency (W2).
 */
import type { RunReport } from "./report.ts"
import { formatNumber, type Series } from "./types.ts"

const WIDTH = 980
const LABEL = 300
const BAR = 520
const ROW = 20

const palette: Record<string, string> = {
  pgfx: "#1f5fbf",
  "pgfx FanOut": "#1f5fbf",
  "pgfx pipeline": "#0b8a8a",
  "pgfx text": "#1f5fbf",
  "pgfx binary": "#0b8a8a",
  pg: "#d9822b",
  "pg-cursor": "#d9822b",
  "pg-copy-streams": "#d9822b",
  "postgres.js": "#8e44ad",
  "@effect/sql-pg": "#2e8b57",
  "@effect/sql-pg multiplex": "#7fb800"
}
const colorOf = (client: string) => palette[client] ?? palette[client.split(" ")[0]] ?? "#777777"

const clip = (text: string, max: number) => (text.length <= max ? text : `${text.slice(0, max - 1)}…`)

const esc = (text: string) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")

interface Bar {
  readonly label: string
  readonly value: number
  readonly color: string
  readonly bold?: boolean
}

const barPanel = (y0: number, title: string, subtitle: string, bars: ReadonlyArray<Bar>, unit: string, log = false) => {
  const parts: Array<string> = []
  parts.push(`<text x="10" y="${y0 + 16}" class="t">${esc(title)}</text>`)
  parts.push(`<text x="10" y="${y0 + 32}" class="s">${esc(subtitle)}</text>`)
  const max = Math.max(...bars.map((b) => b.value), 1e-9)
  const min = Math.min(...bars.map((b) => b.value).filter((v) => v > 0), max)
  const lo = log ? Math.pow(10, Math.floor(Math.log10(min / 2))) : 0
  const scale = (v: number) =>
    log ? (BAR * (Math.log10(v) - Math.log10(lo))) / Math.max(1e-9, Math.log10(max) - Math.log10(lo)) : (BAR * v) / max
  bars.forEach((b, i) => {
    const y = y0 + 42 + i * ROW
    const w = Math.max(1, scale(b.value))
    parts.push(`<text x="${LABEL - 6}" y="${y + 14}" class="${b.bold ? "lb" : "l"}" text-anchor="end">${esc(b.label)}</text>`)
    parts.push(`<rect x="${LABEL}" y="${y + 3}" width="${w.toFixed(1)}" height="${ROW - 6}" fill="${b.color}" rx="2"/>`)
    parts.push(`<text x="${LABEL + w + 6}" y="${y + 14}" class="v">${esc(`${formatNumber(b.value)} ${unit}`)}</text>`)
  })
  return { svg: parts.join("\n"), height: 42 + bars.length * ROW + 18 }
}

const seriesBars = (series: Series): Array<Bar> => [
  ...series.results
    .filter((r) => r.status === "ok" && r.median !== undefined)
    .map((r) => ({ label: r.client, value: r.median!, color: colorOf(r.client), bold: r.kind === "pgfx" })),
  ...series.ceilings
    .filter((c) => c.value !== undefined)
    .map((c) => ({ label: clip(`ceiling: ${c.label}`, 48), value: c.value!, color: "#b0b0b0" }))
]

const linePanel = (
  y0: number,
  title: string,
  xLabels: ReadonlyArray<string>,
  lines: ReadonlyArray<{ readonly client: string; readonly values: ReadonlyArray<number | undefined> }>,
  unit: string
) => {
  const height = 230
  const left = 90
  const right = WIDTH - 220
  const top = y0 + 40
  const bottom = y0 + height - 30
  const parts: Array<string> = [`<text x="10" y="${y0 + 16}" class="t">${esc(title)}</text>`]
  const all = lines.flatMap((l) => l.values.filter((v): v is number => v !== undefined))
  const max = Math.max(...all, 1e-9) * 1.08
  const x = (i: number) => left + (xLabels.length === 1 ? 0 : ((right - left) * i) / (xLabels.length - 1))
  const y = (v: number) => bottom - ((bottom - top) * v) / max
  parts.push(`<line x1="${left}" y1="${bottom}" x2="${right}" y2="${bottom}" stroke="#999"/>`)
  parts.push(`<line x1="${left}" y1="${top}" x2="${left}" y2="${bottom}" stroke="#999"/>`)
  for (let k = 0; k <= 4; k++) {
    const v = (max * k) / 4
    parts.push(`<text x="${left - 6}" y="${y(v) + 4}" class="v" text-anchor="end">${esc(formatNumber(v))}</text>`)
    if (k > 0) parts.push(`<line x1="${left}" y1="${y(v)}" x2="${right}" y2="${y(v)}" stroke="#eee"/>`)
  }
  xLabels.forEach((label, i) => parts.push(`<text x="${x(i)}" y="${bottom + 16}" class="v" text-anchor="middle">${esc(label)}</text>`))
  parts.push(`<text x="${left}" y="${top - 8}" class="s">${esc(unit)}</text>`)
  lines.forEach((line, index) => {
    const color = colorOf(line.client)
    const dash = line.client.startsWith("pgfx") ? "" : ` stroke-dasharray="5 3"`
    const points = line.values
      .map((v, i) => (v === undefined ? undefined : `${x(i).toFixed(1)},${y(v).toFixed(1)}`))
      .filter((p): p is string => p !== undefined)
    if (points.length > 1) parts.push(`<polyline points="${points.join(" ")}" fill="none" stroke="${color}" stroke-width="2"${dash}/>`)
    for (const p of points) {
      const [px, py] = p.split(",")
      parts.push(`<circle cx="${px}" cy="${py}" r="3" fill="${color}"/>`)
    }
    const ly = top + index * 18
    parts.push(`<line x1="${right + 20}" y1="${ly}" x2="${right + 44}" y2="${ly}" stroke="${color}" stroke-width="2"${dash}/>`)
    parts.push(`<text x="${right + 50}" y="${ly + 4}" class="l">${esc(line.client)}</text>`)
  })
  return { svg: parts.join("\n"), height }
}

export const renderSvg = (report: RunReport): string => {
  const parts: Array<string> = []
  let y = 0
  const { info } = report
  parts.push(`<text x="10" y="22" class="h">${esc(`pgfx vs peers — ${info.startedAt}${info.quick ? " (--quick)" : ""}`)}</text>`)
  const setting = `PostgreSQL ${info.server.version.split(" ")[0]} (${info.server.source}, auth ${info.server.auth}), Node ${info.node}, ${info.cores} cores, load average ${info.loadAverageStart.map((l) => l.toFixed(1)).join(" / ")} at start. Bars: medians; grey: server ceilings.`
  parts.push(`<text x="10" y="40" class="s">${esc(setting)}</text>`)
  y = 52
  const main = ["W1", "W2/c32", "W3/1000000", "W4", "W5", "W6"]
  const byId = new Map(report.series.map((s) => [s.id, s]))
  const w3 = report.series.filter((s) => s.workload === "W3")
  if (!byId.has("W3/1000000") && w3.length > 0) main[2] = w3[w3.length - 1].id
  for (const id of main) {
    const series = byId.get(id)
    if (series === undefined) continue
    const bars = seriesBars(series)
    if (bars.length === 0) continue
    const panel = barPanel(y, `${series.id} — ${series.title}`, `${series.variant}; ${series.unit}, ${series.better} is better`, bars, series.unit)
    parts.push(panel.svg)
    y += panel.height
  }
  for (const network of ["loopback", "proxy"]) {
    const modes = ["fresh", "one-by-one", "fan-out"] as const
    const bars: Array<Bar> = []
    let subtitle = ""
    for (const mode of modes) {
      const series = byId.get(`H/${network}/${mode}`)
      if (series === undefined) continue
      subtitle = series.variant.split(":")[0]
      for (const r of series.results) {
        if (r.status !== "ok" || r.median === undefined) continue
        bars.push({ label: `${r.client} — ${mode}`, value: r.median, color: colorOf(r.client), bold: r.kind === "pgfx" })
      }
    }
    if (bars.length === 0) continue
    const panel = barPanel(y, `Seed headline: 1,000 point queries one by one vs fanned out (${subtitle})`, "ms per 1,000, lower is better, log scale", bars, "ms", true)
    parts.push(panel.svg)
    y += panel.height
  }
  const w2 = report.series.filter((s) => s.workload === "W2")
  if (w2.length > 0) {
    const clients = [...new Set(w2.flatMap((s) => s.results.filter((r) => r.status === "ok").map((r) => r.client)))]
    const panel = linePanel(
      y,
      "W2 scaling: 1,000 point queries through a pool of 10 vs queries in flight",
      w2.map((s) => s.variant.replace(" in flight", "")),
      clients.map((client) => ({ client, values: w2.map((s) => s.results.find((r) => r.client === client && r.status === "ok")?.median) })),
      "ms for 1,000 (lower is better)"
    )
    parts.push(panel.svg)
    y += panel.height
  }
  if (w3.length > 0) {
    const clients = [...new Set(w3.flatMap((s) => s.results.filter((r) => r.status === "ok").map((r) => r.client)))]
    const lines = clients.map((client) => ({ client, values: w3.map((s) => s.results.find((r) => r.client === client && r.status === "ok")?.median) }))
    const server = w3.map((s) => s.ceilings.find((c) => c.label === "server COPY FROM file")?.value)
    if (server.some((v) => v !== undefined)) lines.push({ client: "server COPY FROM file", values: server })
    const panel = linePanel(y, "W3 scaling: COPY FROM STDIN rows/s vs rows copied", w3.map((s) => s.variant), lines, "rows/s (higher is better)")
    parts.push(panel.svg)
    y += panel.height
  }
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${y + 10}" viewBox="0 0 ${WIDTH} ${y + 10}" font-family="DejaVu Sans, Arial, sans-serif">`,
    "<style>.h{font-size:14px;font-weight:bold}.t{font-size:13px;font-weight:bold}.s{font-size:11px;fill:#555}.l{font-size:11px}.lb{font-size:11px;font-weight:bold}.v{font-size:10px;fill:#333}</style>",
    `<rect width="100%" height="100%" fill="white"/>`,
    ...parts,
    "</svg>",
    ""
  ].join("\n")
}
