/**
 * The seed's headline: "1,000 point queries, fanned out over a thread pool,
 * 10× faster than one by one". The same 1,000 queries as W2, three ways:
 * one by one on a fresh connection each, one by one through the pool, and
 * fanned out (32 in flight, pool of 10; pgfx also pipelined) — on loopback
 * and through the harness's latency proxy (1 ms each way), since the seed's
 * gain came from a network between client and database.
 */
import { startProxyProcess } from "./lib/child.ts"
import { viaEndpoint } from "./lib/env.ts"
import { freshContenders, pointIds, poolContenders } from "./lib/pointQueries.ts"
import { pgClient } from "./lib/clients.ts"
import { type BenchContext, type ClientResult, formatNumber, runSeries, type Series, summarize } from "./lib/types.ts"

const QUERIES = 1_000
const POOL_SIZE = 10
const FAN_OUT = 32
export const PROXY_DELAY_MS = 1

/** Median round trip of `SELECT 1` (ms). */
const roundTripMs = async (url: string): Promise<number> => {
  const client = await pgClient(url)
  try {
    const samples: Array<number> = []
    for (let i = 0; i < 200; i++) {
      const start = performance.now()
      await client.query({ name: "rtt", text: "SELECT 1" })
      samples.push(performance.now() - start)
    }
    return summarize(samples).median!
  } finally {
    await client.end()
  }
}

const medianOf = (series: Series | undefined, client: string): number | undefined =>
  series?.results.find((r: ClientResult) => r.client === client && r.status === "ok")?.median

const best = (...values: Array<number | undefined>): number | undefined => {
  const defined = values.filter((v): v is number => v !== undefined)
  return defined.length === 0 ? undefined : Math.min(...defined)
}

export const headline = async (ctx: BenchContext): Promise<Array<Series>> => {
  // --quick: 200 queries (20 on fresh connections), scaled to 1,000
  const count = ctx.quick ? 200 : QUERIES
  const ids = pointIds(count)
  const freshCount = ctx.quick ? 20 : 200
  const freshIds = ids.slice(0, freshCount)
  const proxy = await startProxyProcess(ctx.env.host, ctx.env.port, PROXY_DELAY_MS)
  const perThousand = (ms: number) => (ms * QUERIES) / count
  const scaled = count === QUERIES ? [] : [`measured on ${count} queries, scaled to 1,000`]
  const out: Array<Series> = []
  try {
    const networks = [
      { name: "loopback", url: ctx.env.url },
      { name: `proxy +${PROXY_DELAY_MS} ms each way`, url: viaEndpoint(ctx.env.url, "127.0.0.1", proxy.port) }
    ]
    const rtt: Record<string, number> = {}
    for (const network of networks) rtt[network.name] = await roundTripMs(network.url)
    ctx.log(`  round trip of SELECT 1: ${networks.map((n) => `${n.name} ${rtt[n.name].toFixed(3)} ms`).join(", ")}`)
    const fewerRounds = { warmup: 1, rounds: Math.max(2, Math.min(ctx.plan.rounds, 3)) }
    for (const network of networks) {
      const key = network.name === "loopback" ? "loopback" : "proxy"
      const base = { workload: "H", unit: "ms per 1,000", better: "lower" as const }
      const fresh = await runSeries(
        ctx,
        {
          ...base,
          id: `H/${key}/fresh`,
          title: `one by one, a fresh connection each (${network.name})`,
          variant: `${network.name}: fresh connection each`,
          notes: [`measured on ${freshCount} queries, scaled to 1,000; auth: ${ctx.env.auth}`, `SELECT 1 round trip ${rtt[network.name].toFixed(3)} ms`]
        },
        freshContenders(network.url, freshIds),
        (ms) => (ms * QUERIES) / freshCount,
        { warmup: 0, rounds: 2 }
      )
      const oneByOne = await runSeries(
        ctx,
        {
          ...base,
          id: `H/${key}/one-by-one`,
          title: `one by one through a pool of ${POOL_SIZE} (${network.name})`,
          variant: `${network.name}: one by one, pool`,
          notes: ["pgfx FanOut here is FanOut.run with concurrency 1", ...scaled]
        },
        poolContenders({ url: network.url, ids, concurrency: 1, poolSize: POOL_SIZE }).filter(
          (c) => c.client !== "pgfx pipeline" && c.client !== "@effect/sql-pg multiplex"
        ),
        perThousand,
        fewerRounds
      )
      const fanned = await runSeries(
        ctx,
        {
          ...base,
          id: `H/${key}/fan-out`,
          title: `fanned out, ${FAN_OUT} in flight, pool of ${POOL_SIZE} (${network.name})`,
          variant: `${network.name}: fan-out ${FAN_OUT}`,
          notes: scaled
        },
        poolContenders({ url: network.url, ids, concurrency: FAN_OUT, poolSize: POOL_SIZE }),
        perThousand,
        fewerRounds
      )
      const lines: Array<string> = []
      const rows: Array<[string, number | undefined, number | undefined, number | undefined]> = [
        ["pgfx", medianOf(fresh, "pgfx"), medianOf(oneByOne, "pgfx FanOut"), best(medianOf(fanned, "pgfx FanOut"), medianOf(fanned, "pgfx pool.execute"), medianOf(fanned, "pgfx pipeline"))],
        ["pg", medianOf(fresh, "pg"), medianOf(oneByOne, "pg"), medianOf(fanned, "pg")],
        ["postgres.js", medianOf(fresh, "postgres.js"), medianOf(oneByOne, "postgres.js"), medianOf(fanned, "postgres.js")],
        [
          "@effect/sql-pg",
          medianOf(fresh, "@effect/sql-pg"),
          medianOf(oneByOne, "@effect/sql-pg"),
          best(medianOf(fanned, "@effect/sql-pg"), medianOf(fanned, "@effect/sql-pg multiplex"))
        ]
      ]
      for (const [client, f, o, b] of rows) {
        if (b === undefined) continue
        const ratio = (x: number | undefined) => (x === undefined ? "—" : `${formatNumber(x / b)}×`)
        lines.push(`${client}: fanned out (best) ${formatNumber(b)} ms = ${ratio(o)} faster than one by one on the pool, ${ratio(f)} faster than a fresh connection each`)
      }
      out.push(fresh, oneByOne, { ...fanned, notes: [...fanned.notes, ...lines] })
    }
  } finally {
    proxy.stop()
  }
  return out
}
