/**
 * Shared helpers of the cross-package reliability runs (F24 storm, load): a seeded random
 * source, the classification of every operation's exit (success, interruption, our own
 * timeout, typed pgfx error, or a defect / untyped error that fails the run), a tally of the
 * outcomes, and the pool half of the leak audit (reliability.md A.4): the pool's gauges agree
 * with each other and with the server, no lease is outstanding, every pooled session is IDLE
 * with no cursor or LISTEN left, and `SELECT 1` through the pool works.
 */
import { PgError } from "@pgfx/core"
import { PoolError } from "@pgfx/pool"
import { Cause, Effect, Exit, Logger, References } from "effect"

/** mulberry32: a small seeded PRNG, so a failing run can be replayed with its seed. */
export const makeRandom = (seed: number) => {
  let state = seed >>> 0
  const next = (): number => {
    state = (state + 0x6D2B79F5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  return {
    seed,
    next,
    /** An integer in [min, max]. */
    int: (min: number, max: number): number => min + Math.floor(next() * (max - min + 1)),
    /** A float in [min, max). */
    float: (min: number, max: number): number => min + next() * (max - min),
    pick: <A>(items: ReadonlyArray<A>): A => items[Math.floor(next() * items.length)],
    chance: (p: number): boolean => next() < p
  }
}
export type Random = ReturnType<typeof makeRandom>

/** The seed of a run: `PGFX_RELIABILITY_SEED` when set, else a fresh one (printed with the results). */
export const seedFromEnv = (): number => {
  const fromEnv = Number(process.env.PGFX_RELIABILITY_SEED)
  return Number.isInteger(fromEnv) && fromEnv > 0 ? fromEnv : Math.floor(Math.random() * 2 ** 31) + 1
}

/** The full (soak) form of the runs: `PGFX_SOAK=1`. */
export const soak = process.env.PGFX_SOAK === "1"

/** Every `_tag` pgfx may fail with (core's PgError, the pool's PoolError, COPY's own errors). */
const copyTags: ReadonlySet<string> = new Set(["CopyDataError", "CopyFileError"])

/** Whether `error` is one of pgfx's typed errors. */
export const isTypedPgfxError = (error: unknown): error is { readonly _tag: string } =>
  PgError.isPgError(error) || PoolError.isPoolError(error) ||
  (typeof error === "object" && error !== null && copyTags.has((error as { _tag?: unknown })._tag as string))

/** What an operation's exit was. */
export type Outcome =
  | { readonly _tag: "Success" }
  | { readonly _tag: "Interrupted" }
  /** Our own `Effect.timeout` fired (an interruption we asked for). */
  | { readonly _tag: "TimedOut" }
  | { readonly _tag: "Typed"; readonly tag: string; readonly error: unknown }
  /** A defect, or a failure that is not a pgfx error: the run fails. */
  | { readonly _tag: "Bad"; readonly description: string }

export const classify = (exit: Exit.Exit<unknown, unknown>): Outcome => {
  if (Exit.isSuccess(exit)) return { _tag: "Success" }
  const cause = exit.cause
  if (Cause.hasInterruptsOnly(cause)) return { _tag: "Interrupted" }
  if (Cause.hasDies(cause)) return { _tag: "Bad", description: `defect: ${Cause.pretty(cause)}` }
  const found = Cause.findErrorOption(cause)
  if (found._tag === "None") return { _tag: "Bad", description: `no error in cause: ${Cause.pretty(cause)}` }
  const error = found.value
  if (Cause.isTimeoutError(error)) return { _tag: "TimedOut" }
  if (isTypedPgfxError(error)) return { _tag: "Typed", tag: error._tag, error }
  return { _tag: "Bad", description: `untyped failure: ${Cause.pretty(cause)}` }
}

/** Counts of outcomes, by operation and by error tag. */
export class Tally {
  ops = 0
  successes = 0
  interrupted = 0
  timedOut = 0
  readonly failures: Record<string, number> = {}
  readonly byOp: Record<string, { ops: number; ok: number; failed: number }> = {}
  readonly bad: Array<string> = []

  record(op: string, exit: Exit.Exit<unknown, unknown>): Outcome {
    const outcome = classify(exit)
    this.ops++
    const perOp = (this.byOp[op] ??= { ops: 0, ok: 0, failed: 0 })
    perOp.ops++
    switch (outcome._tag) {
      case "Success":
        this.successes++
        perOp.ok++
        break
      case "Interrupted":
        this.interrupted++
        break
      case "TimedOut":
        this.timedOut++
        break
      case "Typed":
        this.failures[outcome.tag] = (this.failures[outcome.tag] ?? 0) + 1
        perOp.failed++
        break
      case "Bad":
        perOp.failed++
        if (this.bad.length < 20) this.bad.push(`[${op}] ${outcome.description}`)
        else this.bad.push("…")
        break
    }
    return outcome
  }
}

/** Extra diagnostics: `PGFX_RELIABILITY_VERBOSE=1`. */
export const verbose = process.env.PGFX_RELIABILITY_VERBOSE === "1"

/** `{a:1,b:2}` for a console line. */
export const compact = (record: Readonly<Record<string, number>>): string =>
  `{${Object.entries(record).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k}:${v}`).join(",")}}`

/** Percentile (0..1) of a sample, nearest rank. */
export const percentile = (sorted: ReadonlyArray<number>, p: number): number =>
  sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]

/** Log lines of a run, by level; the pool's and the library's own lines are kept, not printed. */
export const logCounter = () => {
  const byLevel: Record<string, number> = {}
  const errors: Array<string> = []
  /** Warnings by their message, numbers and pids blanked (printed with PGFX_RELIABILITY_VERBOSE=1). */
  const warnings: Record<string, number> = {}
  const logger = Logger.make((options) => {
    byLevel[options.logLevel] = (byLevel[options.logLevel] ?? 0) + 1
    if (options.logLevel === "Warn") {
      const text = (Array.isArray(options.message) ? options.message.map(String).join(" ") : String(options.message))
        .replace(/\d+(\.\d+)?/g, "N").slice(0, 120)
      warnings[text] = (warnings[text] ?? 0) + 1
    }
    if ((options.logLevel === "Error" || options.logLevel === "Fatal") && errors.length < 10) {
      errors.push(Array.isArray(options.message) ? options.message.map(String).join(" ") : String(options.message))
    }
  })
  return {
    byLevel,
    errors,
    warnings,
    provide: <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
      effect.pipe(Effect.provide(Logger.layer([logger])), Effect.provideService(References.MinimumLogLevel, "Info"))
  }
}

/** The pool half of the leak audit, shared with the pool's own tests. */
export { auditPool } from "../../packages/pool/test/helpers.ts"
