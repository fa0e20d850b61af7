/**
 * One W5 client run in its own process, so its peak RSS is its own:
 *   tsx bench/w5-child.ts '{"client":"pg-cursor","url":"…","table":"copy_src_1000000","rows":1000000,"batch":1000,"warmup":1,"rounds":3}'
 * Prints one JSON line: rows/s per round, RSS after connecting, peak RSS.
 * Only the client under test is imported. w5-stream.ts runs it bundled
 * (esbuild, plain node, no tsx) so that RSS is what an application would see.
 */
interface Args {
  readonly client: string
  readonly url: string
  readonly table: string
  readonly rows: number
  readonly batch: number
  readonly warmup: number
  readonly rounds: number
}


interface Streamer {
  /** Streams every row once; returns how many. */
  readonly run: () => Promise<number>
  readonly close: () => Promise<void>
}

/**
 * The client under test. When bundled (see w5-stream.ts), esbuild replaces
 * `process.env.PGFX_W5_CLIENT` with the client's name, so the other clients'
 * branches — and their imports — are dropped from the bundle.
 */
const open = async (args: Args): Promise<Streamer> => {
  const SQL = `SELECT a, b, c, d, e FROM ${args.table}`
  if (
    process.env.PGFX_W5_CLIENT === "pgfx" || process.env.PGFX_W5_CLIENT === "pgfx unprepared" ||
    (process.env.PGFX_W5_CLIENT === undefined && args.client.startsWith("pgfx"))
  ) {
    const { Connection } = await import("@pgfx/core")
    const Stream = await import("effect/Stream")
    const { hold } = await import("./lib/effect.ts")
    const held = await hold(Connection.connect(args.url))
    // `prepare: true`: binary results from the second run on; unprepared (the default
    // threshold of 5 runs) a statement run once or twice per connection gets text results
    const prepare = args.client === "pgfx" ? true : undefined
    const work = Stream.runCount(held.value.stream(SQL, [], { batchSize: args.batch, prepare }))
    return { run: () => held.run(work), close: held.close }
  }
  if (process.env.PGFX_W5_CLIENT === "pg-cursor" || (process.env.PGFX_W5_CLIENT === undefined && args.client === "pg-cursor")) {
    const { default: pg } = await import("pg")
    const { default: Cursor } = await import("pg-cursor")
    const connection = new pg.Client({ connectionString: args.url })
    await connection.connect()
    return {
      run: async () => {
        const cursor = connection.query(new Cursor(SQL, [], { rowMode: "array" }))
        let n = 0
        while (true) {
          const rows = await cursor.read(args.batch)
          if (rows.length === 0) break
          n += rows.length
        }
        await cursor.close()
        return n
      },
      close: () => connection.end()
    }
  }
  if (process.env.PGFX_W5_CLIENT === "postgres.js" || (process.env.PGFX_W5_CLIENT === undefined && args.client === "postgres.js")) {
    const { default: postgres } = await import("postgres")
    const sql = postgres(args.url, { max: 1, onnotice: () => {} })
    await sql.unsafe("SELECT 1")
    return {
      run: async () => {
        let n = 0
        await sql.unsafe(SQL).values().cursor(args.batch, (rows) => {
          n += rows.length
        })
        return n
      },
      close: () => sql.end({ timeout: 5 })
    }
  }
  if (process.env.PGFX_W5_CLIENT === "@effect/sql-pg" || (process.env.PGFX_W5_CLIENT === undefined && args.client === "@effect/sql-pg")) {
    const Stream = await import("effect/Stream")
    const Effect = await import("effect/Effect")
    const PgClient = await import("@effect/sql-pg/PgClient")
    const Reactivity = await import("effect/reactivity/Reactivity")
    const Redacted = await import("effect/Redacted")
    const { hold } = await import("./lib/effect.ts")
    const held = await hold(
      PgClient.makeClient({ url: Redacted.make(args.url) }).pipe(Effect.provide(Reactivity.layer))
    )
    const work = Stream.runCount(held.value.unsafe(SQL).stream)
    return { run: () => held.run(work), close: held.close }
  }
  throw new Error(`unknown client ${args.client}`)
}

const main = async () => {
  const args = JSON.parse(process.argv[2] ?? "{}") as Args
  const streamer = await open(args)
  const baselineRssMB = process.memoryUsage.rss() / 2 ** 20
  for (let i = 0; i < args.warmup; i++) await streamer.run()
  const samples: Array<number> = []
  const cpuMs: Array<number> = []
  const wallMs: Array<number> = []
  for (let i = 0; i < args.rounds; i++) {
    const cpu = process.cpuUsage()
    const start = performance.now()
    const n = await streamer.run()
    const ms = performance.now() - start
    const used = process.cpuUsage(cpu)
    cpuMs.push((used.user + used.system) / 1000)
    wallMs.push(ms)
    if (n !== args.rows) throw new Error(`${n} rows streamed, ${args.rows} expected`)
    samples.push(n / (ms / 1000))
  }
  await streamer.close()
  const peakRssMB = process.resourceUsage().maxRSS / 1024
  process.stdout.write(`${JSON.stringify({ samples, cpuMs, wallMs, baselineRssMB, peakRssMB })}\n`)
}

main().then(
  () => process.exit(0),
  (error) => {
    process.stderr.write(`${error instanceof Error ? error.stack ?? error.message : String(error)}\n`)
    process.exit(1)
  }
)
