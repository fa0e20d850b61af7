/**
 * W2 fan-out: 1,000 × `SELECT id, payload FROM items WHERE id = $1` through
 * a pool of 10, at 1 / 8 / 32 / 64 in flight (32 is the reference's W2, the
 * seed's `parallel_query` with 32 threads). Reported in ms for the 1,000.
 * Ceiling: `pgbench -S -M prepared -c 10 -j 2` (and W2's statement as a
 * script), as the time 1,000 of its transactions take.
 */
import { pgbench, W2_SCRIPT } from "./lib/ceilings.ts"
import { pointIds, poolContenders } from "./lib/pointQueries.ts"
import { type BenchContext, type Ceiling, runSeries, type Series } from "./lib/types.ts"

export const W2_QUERIES = 1_000
export const POOL_SIZE = 10

export const w2 = async (ctx: BenchContext): Promise<Array<Series>> => {
  const ids = pointIds(W2_QUERIES)
  const ceilings: Array<Ceiling> = []
  if (ctx.ceilings) {
    const seconds = ctx.quick ? 2 : 5
    ctx.log("  W2 ceilings: pgbench -c 10 -j 2 ...")
    const msFor = (tps: number | undefined) => (tps === undefined ? undefined : (W2_QUERIES / tps) * 1000)
    ceilings.push({
      label: "pgbench -S -M prepared -c 10 -j 2",
      value: msFor(await pgbench(ctx.env, ["-S", "-c", "10", "-j", "2"], seconds).catch(() => undefined)),
      note: "time 1,000 select-only transactions take at pgbench's rate"
    })
    ceilings.push({
      label: "pgbench -M prepared -c 10 -j 2 (W2's statement)",
      value: msFor(await pgbench(ctx.env, ["-f", W2_SCRIPT(), "-c", "10", "-j", "2"], seconds).catch(() => undefined)),
      note: "the same point query on items as a pgbench script"
    })
  }
  const out: Array<Series> = []
  for (const concurrency of [1, 8, 32, 64]) {
    out.push(
      await runSeries(
        ctx,
        {
          workload: "W2",
          id: `W2/c${concurrency}`,
          title: `fan-out: ${W2_QUERIES.toLocaleString("en-US")} point queries on items through a pool of ${POOL_SIZE}`,
          variant: `${concurrency} in flight`,
          unit: "ms",
          better: "lower",
          ceilings,
          notes: concurrency === 1
            ? ["pgfx pipeline at 1 in flight is one pipeline of 1,000 statements on one connection"]
            : []
        },
        poolContenders({ url: ctx.env.url, ids, concurrency, poolSize: POOL_SIZE }),
        (ms) => ms,
        ctx.quick ? ctx.plan : { ...ctx.plan, warmup: Math.max(ctx.plan.warmup, 3) }
      )
    )
  }
  return out
}
