/**
 * W4 COPY TO STDOUT: the rows of `copy_src_<rows>` (1M; 50k with --quick) out and
 * parsed into typed values (int4 → number, int8 → bigint, text unescaped,
 * timestamptz → Date, float8 → number). Peers get raw text chunks and parse
 * them with lib/copytext.ts; @effect/sql-pg refuses COPY. Ceilings, unparsed:
 * `psql \copy … to /dev/null` and the server's `COPY … TO '/dev/null'`.
 */
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import type { Readable } from "node:stream"
import { to as copyTo } from "pg-copy-streams"
import { medianOf, psqlMs, serverStatementMs } from "./lib/ceilings.ts"
import { pgClient, pgfxConnection, postgresJs } from "./lib/clients.ts"
import { CopyTextParser } from "./lib/copytext.ts"
import { COPY_COLUMNS, COPY_TYPES } from "./lib/data.ts"
import { loadCopy, type CopyFormat } from "./lib/pgfxCopy.ts"
import { type BenchContext, type Ceiling, check, type Contender, runSeries, type Series } from "./lib/types.ts"


/** Parses a COPY text stream; resolves with the row count (and checks the data). */
const parseStream = (stream: Readable): Promise<number> =>
  new Promise((resolve, reject) => {
    let sum = 0
    const parser = new CopyTextParser(COPY_TYPES, (row) => {
      sum += row[0] as number
    })
    stream.on("data", (chunk: Buffer) => {
      try {
        parser.push(chunk)
      } catch (error) {
        stream.destroy(error as Error)
      }
    })
    stream.once("error", reject)
    stream.once("end", () => {
      try {
        parser.end()
        check(sum === (parser.rows * (parser.rows - 1)) / 2, "column a does not sum to 0 + 1 + … + (n − 1)")
        resolve(parser.rows)
      } catch (error) {
        reject(error)
      }
    })
  })

export const w4 = async (ctx: BenchContext, copyRows: number): Promise<Array<Series>> => {
  const url = ctx.env.url
  const source = ctx.tables.copySrc
  const COPY_OUT = `COPY ${source} (${COPY_COLUMNS}) TO STDOUT`
  const expect = (rows: number) => check(rows === copyRows, `${rows} rows parsed, ${copyRows} expected`)
  const pgfx = (format: CopyFormat): Contender => ({
    client: `pgfx ${format}`,
    kind: "pgfx",
    note: `Copy.to (${format}, types ${COPY_TYPES.join(",")})`,
    setup: async () => {
      const copy = await loadCopy()
      if (typeof copy === "string") return { unavailable: copy }
      const held = await pgfxConnection(url)
      const sql = format === "binary" ? `${COPY_OUT} (FORMAT binary)` : COPY_OUT
      const work = Effect.map(Stream.runCount(copy.to(held.value, sql, { format, types: COPY_TYPES })), expect)
      return { run: () => held.run(work), close: held.close }
    }
  })
  const contenders: Array<Contender> = [
    pgfx("text"),
    pgfx("binary"),
    {
      client: "pg-copy-streams",
      kind: "peer",
      note: "pg + pg-copy-streams, text split and parsed by hand",
      setup: async () => {
        const client = await pgClient(url)
        return {
          run: async () => expect(await parseStream(client.query(copyTo(COPY_OUT)))),
          close: () => client.end()
        }
      }
    },
    {
      client: "postgres.js",
      kind: "peer",
      note: "sql`COPY … TO STDOUT`.readable(), text split and parsed by hand",
      setup: async () => {
        const sql = await postgresJs(url, 1)
        return {
          run: async () => expect(await parseStream(await sql.unsafe(COPY_OUT).readable())),
          close: () => sql.end({ timeout: 5 })
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
    ctx.log("  W4 ceilings: psql \\copy to /dev/null, server COPY TO '/dev/null' ...")
    const psql = await medianOf(3, () => psqlMs(ctx.env, `\\copy ${source} (${COPY_COLUMNS}) to '/dev/null'`)).catch(() => undefined)
    ceilings.push({
      label: "psql \\copy to /dev/null",
      value: psql === undefined ? undefined : copyRows / (psql / 1000),
      note: "unparsed; psql start included"
    })
    const server = await medianOf(3, () => serverStatementMs(ctx.env, `COPY ${source} (${COPY_COLUMNS}) TO '/dev/null'`)).catch(() => undefined)
    ceilings.push({
      label: "server COPY TO '/dev/null'",
      value: server === undefined ? undefined : copyRows / (server / 1000),
      note: "the server formatting rows with no client at all"
    })
  }
  return [
    await runSeries(
      ctx,
      {
        workload: "W4",
        id: "W4",
        title: "COPY TO STDOUT, parsed into typed values",
        variant: `${copyRows.toLocaleString("en-US")} rows`,
        unit: "rows/s",
        better: "higher",
        ceilings
      },
      contenders,
      (ms) => copyRows / (ms / 1000),
      copyRows >= 1_000_000 ? { warmup: 1, rounds: Math.min(ctx.plan.rounds, 3) } : ctx.plan
    )
  ]
}
