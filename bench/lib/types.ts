/**
 * The shapes every workload reports in, and the measurement loop they share.
 */
import type { Tables } from "./data.ts"
import type { BenchEnv } from "./env.ts"

/** How one client did on one series. */
export interface ClientResult {
  /** Display name, e.g. `pgfx`, `pg`, `postgres.js`, `@effect/sql-pg`. */
  readonly client: string
  /** `pgfx` for pgfx's own variants, `peer` for the others. */
  readonly kind: "pgfx" | "peer"
  readonly status: "ok" | "unavailable" | "error"
  /** One value per measured round, in the series' unit. */
  readonly samples: ReadonlyArray<number>
  readonly median?: number | undefined
  readonly min?: number | undefined
  readonly max?: number | undefined
  /** (max − min) / median, as a fraction. */
  readonly spread?: number | undefined
  /** How the client ran (its settings), or why it did not. */
  readonly note?: string | undefined
  /** Workload-specific figures, e.g. peak RSS. */
  readonly extra?: Readonly<Record<string, number | string>> | undefined
}

/** A reference figure that is not a client: pgbench, server-side COPY, psql. */
export interface Ceiling {
  readonly label: string
  readonly value: number | undefined
  readonly note?: string | undefined
}

/** One table: a workload at one size / concurrency / network. */
export interface Series {
  /** `W1` … `W6`, `H` (the seed's headline). */
  readonly workload: string
  /** Stable id, e.g. `W3/1000000`, `W2/c32`, `H/proxy/fanout`. */
  readonly id: string
  readonly title: string
  /** Size, concurrency, network: what distinguishes series of one workload. */
  readonly variant: string
  readonly unit: string
  readonly better: "higher" | "lower"
  readonly results: ReadonlyArray<ClientResult>
  readonly ceilings: ReadonlyArray<Ceiling>
  /** Free text shown under the table. */
  readonly notes: ReadonlyArray<string>
}

/** A client's code for one series: set up (untimed), run rounds (timed), close. */
export interface Runner {
  /** Untimed work before every round (TRUNCATE, …). */
  readonly before?: (() => Promise<void>) | undefined
  /** The timed work of one round. */
  readonly run: () => Promise<void>
  readonly close: () => Promise<void>
  /** Figures to attach after the rounds (e.g. rows checked). */
  readonly extra?: (() => Promise<Record<string, number | string>>) | undefined
}

export interface Contender {
  readonly client: string
  /** Connections it holds while set up (default 1); decides whether rounds can be interleaved. */
  readonly connections?: number | undefined
  readonly kind: "pgfx" | "peer"
  /** Settings shown in the report. */
  readonly note?: string | undefined
  /** A runner, or the reason this client cannot do the workload. */
  readonly setup: () => Promise<Runner | { readonly unavailable: string }>
}

export interface RoundPlan {
  readonly warmup: number
  readonly rounds: number
}

/** Summary statistics of samples. */
export const summarize = (samples: ReadonlyArray<number>) => {
  if (samples.length === 0) return { median: undefined, min: undefined, max: undefined, spread: undefined }
  const sorted = [...samples].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  const median = sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
  const min = sorted[0]
  const max = sorted[sorted.length - 1]
  return { median, min, max, spread: median === 0 ? 0 : (max - min) / median }
}

const describeError = (error: unknown): string => {
  if (error instanceof Error) return error.message.split("\n")[0].slice(0, 300)
  return String(error).split("\n")[0].slice(0, 300)
}

export type Log = (line: string) => void

/** One contender's state during a series. */
interface Entry {
  readonly contender: Contender
  runner: Runner | undefined
  readonly samples: Array<number>
  /** Client CPU (user + system) of each measured round, ms, and the round's wall time. */
  readonly cpuMs: Array<number>
  readonly wallMs: Array<number>
  unavailable: string | undefined
  error: string | undefined
}

const closeEntry = async (entry: Entry, log: Log): Promise<void> => {
  const runner = entry.runner
  entry.runner = undefined
  if (runner !== undefined) {
    await runner.close().catch((error) => log(`    ${entry.contender.client}: close failed: ${describeError(error)}`))
  }
}

const setupEntry = async (entry: Entry, log: Log): Promise<void> => {
  try {
    const made = await entry.contender.setup()
    if ("unavailable" in made) {
      entry.unavailable = made.unavailable
      log(`    ${entry.contender.client}: ${made.unavailable}`)
    } else {
      entry.runner = made
    }
  } catch (error) {
    entry.error = describeError(error)
    log(`    ${entry.contender.client}: ERROR in setup: ${entry.error}`)
  }
}

/** Runs `rounds` timed rounds (after `warmup` untimed ones) of one entry; false after an error. */
const roundsOf = async (entry: Entry, warmup: number, rounds: number, toValue: (ms: number) => number, log: Log): Promise<boolean> => {
  const runner = entry.runner
  if (runner === undefined) return false
  try {
    for (let i = 0; i < warmup; i++) {
      await runner.before?.()
      await runner.run()
    }
    for (let i = 0; i < rounds; i++) {
      await runner.before?.()
      const cpu = process.cpuUsage()
      const start = performance.now()
      await runner.run()
      const wall = performance.now() - start
      const used = process.cpuUsage(cpu)
      entry.samples.push(toValue(wall))
      entry.wallMs.push(wall)
      entry.cpuMs.push((used.user + used.system) / 1000)
    }
    return true
  } catch (error) {
    entry.error = describeError(error)
    log(`    ${entry.contender.client}: ERROR ${entry.error}`)
    await closeEntry(entry, log)
    return false
  }
}

/**
 * The client process's CPU per round: the median ms, and its share of the
 * wall time. Less sensitive to other load than wall time, and it shows
 * whether the client is what limits a workload.
 */
const cpuExtra = (entry: Entry): Record<string, number> => {
  if (entry.cpuMs.length === 0) return {}
  const share = entry.cpuMs.map((cpu, i) => (entry.wallMs[i] > 0 ? cpu / entry.wallMs[i] : 0))
  return {
    clientCpuMsPerRound: Math.round(summarize(entry.cpuMs).median! * 10) / 10,
    clientCpuPctOfWall: Math.round(summarize(share).median! * 100)
  }
}

const resultOf = async (entry: Entry, log: Log): Promise<ClientResult> => {
  const { contender } = entry
  const base = { client: contender.client, kind: contender.kind }
  if (entry.unavailable !== undefined) return { ...base, status: "unavailable", samples: [], note: entry.unavailable }
  if (entry.error === undefined && entry.runner?.extra !== undefined) {
    try {
      const extra = { ...cpuExtra(entry), ...(await entry.runner.extra()) }
      log(`    ${contender.client}: ${entry.samples.map((s) => formatNumber(s)).join(" ")}`)
      return { ...base, status: "ok", samples: entry.samples, ...summarize(entry.samples), note: contender.note, extra }
    } catch (error) {
      entry.error = describeError(error)
      log(`    ${contender.client}: ERROR ${entry.error}`)
    }
  }
  if (entry.error !== undefined) return { ...base, status: "error", samples: [], note: entry.error }
  log(`    ${contender.client}: ${entry.samples.map((s) => formatNumber(s)).join(" ")}`)
  return { ...base, status: "ok", samples: entry.samples, ...summarize(entry.samples), note: contender.note, extra: cpuExtra(entry) }
}

/**
 * Most connections the contenders of a series may hold at once for their
 * rounds to be interleaved (the local server is shared: keep well under its
 * max_connections).
 */
const INTERLEAVE_MAX_CONNECTIONS = 24

/**
 * Measures contenders. When they hold few connections in all, they are set
 * up together and their rounds interleaved (round r runs every contender, in
 * an order rotated each round), so a burst of load from elsewhere hits them
 * alike; otherwise (pools) one after the other. Errors are reported, never
 * thrown: one client failing does not stop the run.
 */
export const measureAll = async (
  contenders: ReadonlyArray<Contender>,
  plan: RoundPlan,
  toValue: (elapsedMs: number) => number,
  log: Log
): Promise<{ readonly results: Array<ClientResult>; readonly interleaved: boolean }> => {
  const entries: Array<Entry> = contenders.map((contender) => ({
    contender,
    runner: undefined,
    samples: [],
    cpuMs: [],
    wallMs: [],
    unavailable: undefined,
    error: undefined
  }))
  const connections = contenders.reduce((sum, c) => sum + (c.connections ?? 1), 0)
  const interleaved = connections <= INTERLEAVE_MAX_CONNECTIONS && contenders.length > 1
  const results: Array<ClientResult> = []
  if (!interleaved) {
    for (const entry of entries) {
      await setupEntry(entry, log)
      await roundsOf(entry, plan.warmup, plan.rounds, toValue, log)
      results.push(await resultOf(entry, log))
      await closeEntry(entry, log)
    }
    return { results, interleaved }
  }
  try {
    for (const entry of entries) await setupEntry(entry, log)
    for (const entry of entries) await roundsOf(entry, plan.warmup, 0, toValue, log)
    for (let round = 0; round < plan.rounds; round++) {
      for (let k = 0; k < entries.length; k++) {
        await roundsOf(entries[(k + round) % entries.length], 0, 1, toValue, log)
      }
    }
    for (const entry of entries) results.push(await resultOf(entry, log))
  } finally {
    for (const entry of entries) await closeEntry(entry, log)
  }
  return { results, interleaved }
}

/** 12345.6 → "12,346"; 1.234 → "1.23"; 0.01234 → "0.0123". */
export const formatNumber = (value: number | undefined): string => {
  if (value === undefined || !Number.isFinite(value)) return "—"
  const abs = Math.abs(value)
  if (abs >= 100) return Math.round(value).toLocaleString("en-US")
  if (abs >= 10) return value.toFixed(1)
  if (abs >= 1) return value.toFixed(2)
  return value.toPrecision(3)
}

/** Runs `f(i)` for i in [0, n) with at most `concurrency` calls in flight. */
export const runLimited = async (n: number, concurrency: number, f: (i: number) => Promise<unknown>): Promise<void> => {
  let next = 0
  const worker = async () => {
    while (true) {
      const i = next++
      if (i >= n) return
      await f(i)
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker))
}

/** What every workload gets. */
export interface BenchContext {
  readonly env: BenchEnv
  readonly tables: Tables
  readonly quick: boolean
  /** Default rounds (a workload may use fewer for its big sizes). */
  readonly plan: RoundPlan
  readonly log: Log
  /** Whether to measure the server ceilings (pgbench, server COPY, psql). */
  readonly ceilings: boolean
  /** Clients to run (all when undefined); see `matchesClient`. */
  readonly clients: ReadonlyArray<string> | undefined
}

/** Measures every contender (one after the other) and returns the series. */
export const runSeries = async (
  ctx: BenchContext,
  spec: Omit<Series, "results" | "ceilings" | "notes"> & {
    readonly ceilings?: ReadonlyArray<Ceiling> | undefined
    readonly notes?: ReadonlyArray<string> | undefined
  },
  contenders: ReadonlyArray<Contender>,
  toValue: (elapsedMs: number) => number,
  plan: RoundPlan = ctx.plan
): Promise<Series> => {
  ctx.log(`  ${spec.id}: ${spec.title} [${spec.variant}] (${spec.unit}, warm-up ${plan.warmup}, rounds ${plan.rounds})`)
  const selected = contenders.filter((c) => ctx.clients === undefined || ctx.clients.some((name) => matchesClient(c.client, name)))
  const { results, interleaved } = await measureAll(selected, plan, toValue, ctx.log)
  const how = interleaved ? "rounds interleaved across clients" : "clients one after the other"
  return { ...spec, results, ceilings: spec.ceilings ?? [], notes: [...(spec.notes ?? []), how] }
}

/** `--clients` matching: the name itself, or a variant of it (`pgfx` → `pgfx binary`, not `pg` → `pgfx`). */
export const matchesClient = (client: string, name: string): boolean => client === name || client.startsWith(`${name} `)

/** Fails loudly when a client returned something else than expected. */
export const check = (condition: boolean, message: string): void => {
  if (!condition) throw new Error(`sanity check failed: ${message}`)
}
