/**
 * W3 COPY FROM STDIN: rows (int4, int8 NULL every 10th, text with a tab and a
 * backslash, timestamptz, float8) from in-memory values into the run's
 * UNLOGGED `copy_in_<pid>`, at 100k / 1M / 10M rows (10k / 100k with --quick). Reported in
 * rows/s. Peers move text they escaped by hand (lib/copytext.ts);
 * @effect/sql-pg refuses COPY. Ceilings: server-side `COPY … FROM '<file>'`
 * and `psql \copy … from '<file>'` on the same rows.
 */
import { once } from "node:events"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { finished } from "node:stream/promises"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { from as copyFrom } from "pg-copy-streams"
import type { Writable } from "node:stream"
import { adminQuery, medianOf, psqlMs, serverStatementMs } from "./lib/ceilings.ts"
import { pgClient, pgfxConnection, postgresJs } from "./lib/clients.ts"
import { encodeRows } from "./lib/copytext.ts"
import { COPY_COLUMNS, COPY_TYPES, RowSource, truncate } from "./lib/data.ts"
import { loadCopy, type CopyFormat } from "./lib/pgfxCopy.ts"
import { type BenchContext, type Ceiling, check, type Contender, type RoundPlan, runSeries, type Series } from "./lib/types.ts"

const copyInSql = (table: string) => `COPY ${table} (${COPY_COLUMNS}) FROM STDIN`

const verifySql = (table: string) => String.raw`
  SELECT count(*)::text AS n,
         count(*) FILTER (WHERE
           b IS DISTINCT FROM (CASE WHEN a % 10 = 0 THEN NULL ELSE a::int8 * 1000003 END)
           OR c IS DISTINCT FROM ('text ' || a || E'\twith tab and back\\slash')
           OR d IS DISTINCT FROM (timestamptz '2024-01-01 00:00:00+00' + a * interval '1 second')
           OR e IS DISTINCT FROM (a * 1.5::float8 + 0.25)
           OR a IS NULL OR a < 0)::text AS bad
  FROM ${table}`

/** Writes the source's rows as COPY text to a writable, honouring backpressure. */
const writeText = async (source: RowSource, stream: Writable): Promise<void> => {
  for (const chunk of source.arrays()) {
    if (!stream.write(encodeRows(chunk))) await once(stream, "drain")
  }
  stream.end()
  await finished(stream)
}

/** The source's rows as an Effect Stream of arrays (no per-row allocation). */
const rowStream = (source: RowSource): Stream.Stream<ReadonlyArray<unknown>> =>
  Stream.fromPull(
    Effect.sync(() => {
      const arrays = source.arrays()
      return Effect.suspend(() => {
        const next = arrays.next()
        return next.done ? Cause.done() : Effect.succeed(next.value as readonly [ReadonlyArray<unknown>, ...Array<ReadonlyArray<unknown>>])
      })
    })
  )

export const w3 = async (ctx: BenchContext): Promise<Array<Series>> => {
  const sizes = ctx.quick ? [10_000, 100_000] : [100_000, 1_000_000, 10_000_000]
  const url = ctx.env.url
  const table = ctx.tables.copyIn
  const COPY_IN = copyInSql(table)
  const out: Array<Series> = []
  for (const rows of sizes) {
    const source = new RowSource(rows)
    // every row must hold exactly the values of row a (lib/data.ts), not just be there
    const verify = async () => {
      const [{ n, bad }] = await adminQuery<{ n: string; bad: string }>(url, verifySql(table))
      check(Number(n) === rows, `${n} rows in ${table}, ${rows} written`)
      check(Number(bad) === 0, `${bad} rows in ${table} differ from the values sent`)
      return { rowsChecked: Number(n) }
    }
    const before = () => truncate(ctx.env, table).then(() => undefined)
    const pgfx = (format: CopyFormat): Contender => ({
      client: `pgfx ${format}`,
      kind: "pgfx",
      note: `Copy.fromStream (${format}, types ${COPY_TYPES.join(",")})`,
      setup: async () => {
        const copy = await loadCopy()
        if (typeof copy === "string") return { unavailable: copy }
        const held = await pgfxConnection(url)
        const sql = format === "binary" ? `${COPY_IN} (FORMAT binary)` : COPY_IN
        const work = copy.fromStream(held.value, sql, rowStream(source), { format, types: COPY_TYPES })
        return { before, run: () => held.run(work).then(() => undefined), close: held.close, extra: verify }
      }
    })
    const contenders: Array<Contender> = [
      pgfx("text"),
      pgfx("binary"),
      {
        client: "pg-copy-streams",
        kind: "peer",
        note: "pg + pg-copy-streams, text escaped by hand, ~5,000-row writes",
        setup: async () => {
          const client = await pgClient(url)
          return {
            before,
            run: () => writeText(source, client.query(copyFrom(COPY_IN))),
            close: () => client.end(),
            extra: verify
          }
        }
      },
      {
        client: "postgres.js",
        kind: "peer",
        note: "sql`COPY … FROM STDIN`.writable(), text escaped by hand",
        setup: async () => {
          const sql = await postgresJs(url, 1)
          return {
            before,
            run: async () => writeText(source, await sql.unsafe(COPY_IN).writable()),
            close: () => sql.end({ timeout: 5 }),
            extra: verify
          }
        }
      },
      {
        client: "@effect/sql-pg",
        kind: "peer",
        setup: async () => ({ unavailable: "no COPY (PgConnection refuses it)" })
      }
    ]

    const ceilings: Array<Ceiling> = []
    if (ctx.ceilings) {
      ctx.log(`  W3 ceilings at ${rows.toLocaleString("en-US")} rows: writing the rows to a file ...`)
      const file = path.join(os.tmpdir(), `pgfx-bench-${process.pid}-w3-${rows}.tsv`)
      const stream = fs.createWriteStream(file, { mode: 0o644 })
      await writeText(source, stream)
      try {
        const times = rows >= 10_000_000 ? 1 : 3
        const server = await medianOf(times, () => serverStatementMs(ctx.env, `COPY ${table} (${COPY_COLUMNS}) FROM '${file}'`), before).catch(
          (error) => {
            ctx.log(`    server COPY failed: ${(error as Error).message}`)
            return undefined
          }
        )
        ceilings.push({
          label: "server COPY FROM file",
          value: server === undefined ? undefined : rows / (server / 1000),
          note: "COPY … FROM '<file>' run by the server itself"
        })
        const psql = await medianOf(times, () => psqlMs(ctx.env, `\\copy ${table} (${COPY_COLUMNS}) from '${file}'`), before).catch(() => undefined)
        ceilings.push({
          label: "psql \\copy from file",
          value: psql === undefined ? undefined : rows / (psql / 1000),
          note: "libpq client reading the file (psql start included)"
        })
      } finally {
        fs.rmSync(file, { force: true })
      }
    }

    const plan: RoundPlan = rows >= 10_000_000
      ? { warmup: 0, rounds: 1 }
      : rows >= 1_000_000
      ? { warmup: 1, rounds: Math.min(ctx.plan.rounds, 3) }
      : ctx.plan
    out.push(
      await runSeries(
        ctx,
        {
          workload: "W3",
          id: `W3/${rows}`,
          title: "COPY FROM STDIN into an UNLOGGED table, from in-memory values",
          variant: `${rows.toLocaleString("en-US")} rows`,
          unit: "rows/s",
          better: "higher",
          ceilings,
          notes: rows >= 10_000_000 ? ["10M rows: one round, no warm-up (the smaller sizes warmed up)"] : []
        },
        contenders,
        (ms) => rows / (ms / 1000),
        plan
      )
    )
    await truncate(ctx.env, table)
  }
  return out
}
