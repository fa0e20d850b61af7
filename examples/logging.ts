/**
 * The seed's logging set-up, for Effect's logger:
 *
 * ```python
 * logging.basicConfig(
 *     level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
 * )
 * logging.getLogger("psycopg.pool").setLevel(logging.INFO)
 * ```
 *
 * `withSeedLogging(effect)` logs every line at INFO and above as
 * `2026-11-24 10:31:02,114 INFO pgfx.pool: connection given by 'pool-1'`.
 * `%(name)s` is the `logger` log annotation (the pool annotates its lines
 * with `logger=pgfx.pool`), or `root` like Python's `logging.info`. Lines go
 * to the current `Console` (stdout; tests capture them).
 */
import { Cause, Console, Effect, Logger, LogLevel, References } from "effect"
import { inspect } from "node:util"

const pad = (value: number, width = 2): string => String(value).padStart(width, "0")

/** Python's `%(asctime)s`: local time, `YYYY-MM-DD HH:MM:SS,mmm`. */
export const asctime = (date: Date): string =>
  `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
  `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())},${pad(date.getMilliseconds(), 3)}`

const levelNames: Record<LogLevel.LogLevel, string> = {
  All: "ALL",
  Trace: "TRACE",
  Debug: "DEBUG",
  Info: "INFO",
  Warn: "WARNING",
  Error: "ERROR",
  Fatal: "CRITICAL",
  None: "NONE"
}

const text = (message: unknown): string => {
  const parts = Array.isArray(message) ? message : [message]
  return parts.map((part) => (typeof part === "string" ? part : inspect(part, { depth: 4, breakLength: Infinity }))).join(" ")
}

/** An error as one line: `Tag: message`. */
export const describe = (error: unknown): string => {
  if (typeof error === "object" && error !== null) {
    const { _tag, message } = error as { _tag?: unknown; message?: unknown }
    const text = typeof message === "string" && message !== "" ? message : undefined
    if (typeof _tag === "string") return text === undefined ? _tag : `${_tag}: ${text}`
    if (text !== undefined) return text
  }
  return String(error)
}

/**
 * A logger printing `%(asctime)s %(levelname)s %(name)s: %(message)s`;
 * `levels` raises the level of some loggers (Python's
 * `logging.getLogger(name).setLevel(level)`).
 */
export const makeSeedLogger = (levels: Readonly<Record<string, LogLevel.LogLevel>> = {}) =>
  Logger.make<unknown, void>(({ cause, date, fiber, logLevel, message }) => {
    const annotations = fiber.getRef(References.CurrentLogAnnotations)
    const name = typeof annotations.logger === "string" ? annotations.logger : "root"
    const minimum = levels[name]
    if (minimum !== undefined && LogLevel.isLessThan(logLevel, minimum)) return
    let line = `${asctime(date)} ${levelNames[logLevel]} ${name}: ${text(message)}`
    // A failure is logged by its message, not a stack dump (loguru's `traceback` is left out).
    if (cause.reasons.length > 0) line += ` (${describe(Cause.squash(cause))})`
    fiber.getRef(Console.Console).log(line)
  })

/** The seed's logger: everything at INFO and above. */
export const seedLogger = makeSeedLogger()

/**
 * Runs `effect` with the seed's logging: minimum level INFO, and `levels`
 * per logger name (`{ "pgfx.pool": "Warn" }` silences the pool's INFO lines).
 */
export const withSeedLogging = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  levels?: Readonly<Record<string, LogLevel.LogLevel>>
): Effect.Effect<A, E, R> =>
  effect.pipe(
    Effect.provide(Logger.layer([levels === undefined ? seedLogger : makeSeedLogger(levels)])),
    Effect.provideService(References.MinimumLogLevel, "Info")
  )
