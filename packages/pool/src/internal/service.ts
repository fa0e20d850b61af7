/**
 * From public options to a running pool and its service object; shared by
 * `ConnectionPool` and `NullConnectionPool`.
 */
import { Connection, PgConfig, PgError } from "@pgfx/core"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { CheckoutError, CheckoutOptions, ConnectionPool as Pool, Options } from "./model.ts"
import { PoolConfigError } from "../PoolError.ts"
import { checkSize, makeState, type PoolSettings, type PoolState } from "./pool.ts"

let poolCounter = 0

/**
 * Statements that open, end or mark a transaction (after leading comments):
 * on a shared connection the other statements would run inside it.
 */
const transactionControl =
  /^(?:\s|--[^\n]*(?:\n|$)|\/\*[\s\S]*?\*\/)*(BEGIN|START|COMMIT|END|ROLLBACK|ABORT|SAVEPOINT|RELEASE|PREPARE\s+TRANSACTION)\b/i

const durationMs = (
  name: string,
  input: Duration.Input | undefined,
  fallback: number
): Exit.Exit<number, PoolConfigError> => {
  if (input === undefined) return Exit.succeed(fallback)
  const duration = Duration.fromInput(input)
  if (Option.isNone(duration)) return Exit.fail(new PoolConfigError({ message: `${name}: invalid duration` }))
  const ms = Duration.toMillis(duration.value)
  if (!(ms >= 0)) return Exit.fail(new PoolConfigError({ message: `${name} cannot be negative` }))
  return Exit.succeed(ms)
}

/** Whether settings are an already resolved `PgConfig` (a host list and an sslmode). */
const isResolved = (settings: Connection.ConnectionSettings): settings is PgConfig.PgConfig =>
  typeof settings === "object" && settings !== null && Array.isArray((settings as PgConfig.PgConfig).hosts) &&
  typeof (settings as PgConfig.PgConfig).sslmode === "string"

/** Validates the options; a static conninfo is resolved once, now. */
const resolveSettings = <R>(
  options: Options<R>,
  nullPool: boolean
): Effect.Effect<PoolSettings, PoolConfigError | PgConfig.PgConfigError> =>
  Effect.gen(function*() {
    const sizes = yield* checkSize(nullPool, options.minSize ?? (nullPool ? 0 : 4), options.maxSize)
    const timeoutMs = yield* durationMs("timeout", options.timeout, 30_000)
    const maxLifetimeMs = yield* durationMs("maxLifetime", options.maxLifetime, 3_600_000)
    const maxIdleMs = yield* durationMs("maxIdle", options.maxIdle, 600_000)
    const reconnectTimeoutMs = yield* durationMs("reconnectTimeout", options.reconnectTimeout, 300_000)
    const cleanupTimeoutMs = yield* durationMs("cleanupTimeout", options.cleanupTimeout, 5_000)
    const initialDelayMs = yield* durationMs("backoff.initialDelay", options.backoff?.initialDelay, 1_000)
    const numWorkers = options.numWorkers ?? 3
    if (!Number.isInteger(numWorkers) || numWorkers < 1) {
      return yield* new PoolConfigError({ message: "numWorkers must be at least 1" })
    }
    const maxPipeline = options.maxPipeline ?? 16
    if (!Number.isInteger(maxPipeline) || maxPipeline < 1) {
      return yield* new PoolConfigError({ message: "maxPipeline must be at least 1" })
    }
    const maxWaiting = options.maxWaiting ?? 0
    if (!Number.isInteger(maxWaiting) || maxWaiting < 0) {
      return yield* new PoolConfigError({ message: "maxWaiting must be a non-negative integer" })
    }
    const jitter = options.backoff?.jitter ?? 0.1
    const factor = options.backoff?.factor ?? 2
    if (!(jitter >= 0 && jitter < 1) || !(factor >= 1)) {
      return yield* new PoolConfigError({ message: "backoff: jitter must be in [0, 1) and factor at least 1" })
    }
    let healthCheck: PoolSettings["healthCheck"]
    if (options.healthCheck !== undefined) {
      const intervalMs = yield* durationMs("healthCheck.interval", options.healthCheck.interval, 0)
      if (intervalMs <= 0) return yield* new PoolConfigError({ message: "healthCheck.interval must be positive" })
      healthCheck = {
        intervalMs,
        query: options.healthCheck.query ?? "SELECT 1",
        timeoutMs: yield* durationMs("healthCheck.timeout", options.healthCheck.timeout, 5_000)
      }
    }
    const leakDetectionMs = options.leakDetectionThreshold === undefined
      ? undefined
      : yield* durationMs("leakDetectionThreshold", options.leakDetectionThreshold, 0)
    const source = options.conninfo ?? ""
    let conninfo: PoolSettings["conninfo"]
    if (Effect.isEffect(source)) {
      conninfo = source as PoolSettings["conninfo"]
    } else {
      const settings = source as Connection.ConnectionSettings
      const resolved = isResolved(settings) ? settings : yield* PgConfig.make(settings)
      // A setting `connect` would refuse fails `make`, not every reconnection.
      yield* Connection.checkSettings(resolved, options)
      conninfo = Effect.succeed(resolved)
    }
    const level: LogLevel.LogLevel = options.checkoutLogLevel ?? "Debug"
    // Per-request lines below the minimum level in force now cost nothing.
    const traced = level !== "None" && (yield* LogLevel.isEnabled(level === "All" ? "Trace" : level))
    return {
      name: options.name ?? `pool-${++poolCounter}`,
      nullPool,
      minSize: sizes.minSize,
      maxSize: sizes.maxSize,
      timeoutMs,
      maxWaiting,
      maxLifetimeMs,
      maxIdleMs,
      reconnectTimeoutMs,
      cleanupTimeoutMs,
      numWorkers,
      conninfo,
      connectOptions: options as Options<unknown>,
      configure: options.configure as PoolSettings["configure"],
      check: options.check as PoolSettings["check"],
      reset: options.reset as PoolSettings["reset"],
      reconnectFailed: options.reconnectFailed as PoolSettings["reconnectFailed"],
      healthCheck,
      leakDetectionMs,
      backoff: { initialDelayMs, jitter, factor },
      checkoutLogLevel: traced ? (level === "All" ? "Trace" : level) : undefined,
      maxPipeline
    }
  })

const timeoutOf = (options: CheckoutOptions | undefined): Exit.Exit<number | undefined, PoolConfigError> =>
  options?.timeout === undefined ? Exit.succeed(undefined) : durationMs("timeout", options.timeout, 0)

/** The service object over a running state machine. */
const toService = <R>(state: PoolState): Pool<R> => {
  const settings = state.settings
  const checkout = (timeout: number | undefined) =>
    state.checkout(timeout) as Effect.Effect<Connection.Connection<R>, CheckoutError, Scope.Scope>
  const connectionWith = (options: CheckoutOptions) => {
    const timeout = timeoutOf(options)
    return Exit.isFailure(timeout) ? Effect.die(timeout.cause) : checkout(timeout.value)
  }
  const connection = checkout(undefined)
  const service: Pool<R> = {
    name: settings.name,
    get minSize() {
      return state.minSize
    },
    get maxSize() {
      return state.maxSize
    },
    timeout: Duration.millis(settings.timeoutMs),
    maxWaiting: settings.maxWaiting,
    maxLifetime: Duration.millis(settings.maxLifetimeMs),
    maxIdle: Duration.millis(settings.maxIdleMs),
    reconnectTimeout: Duration.millis(settings.reconnectTimeoutMs),
    get closed() {
      return state.closed
    },
    connection,
    connectionWith,
    use: <A, E, R2>(f: (connection: Connection.Connection<R>) => Effect.Effect<A, E, R2>, options?: CheckoutOptions) => {
      const timeout = timeoutOf(options)
      if (Exit.isFailure(timeout)) return Effect.die(timeout.cause)
      return state.use(f as (connection: Connection.Connection<unknown>) => Effect.Effect<A, E, R2>, timeout.value) as Effect.Effect<
        A,
        E | CheckoutError,
        Exclude<R2, Scope.Scope>
      >
    },
    execute: <A>(sql: string, params?: ReadonlyArray<unknown>, options?: Connection.ExecuteOptions<A>) =>
      transactionControl.test(sql)
        ? Effect.fail(
          new PgError.InterfaceError({
            message: "pool.execute runs statements on shared connections: transaction control needs " +
              "pool.use((conn) => conn.transaction(...)) (or conn.execute inside pool.use)"
          })
        )
        : state.share((conn) => conn.execute(sql, params ?? [], options as Connection.ExecuteOptions<A>)),
    share: <A, E, R2>(f: (connection: Connection.Connection<R>) => Effect.Effect<A, E, R2>) =>
      state.share(f as (connection: Connection.Connection<unknown>) => Effect.Effect<A, E, R2>),
    stream: <A>(sql: string, params?: ReadonlyArray<unknown>, options?: Connection.StreamOptions<A>) =>
      Stream.unwrap(Effect.map(connection, (conn) => conn.stream(sql, params, options as Connection.StreamOptions<A>))).pipe(
        Stream.scoped
      ) as Stream.Stream<A, PgError.PgError | CheckoutError>,
    wait: (timeout) => {
      const ms = durationMs("timeout", timeout, 30_000)
      return Exit.isFailure(ms) ? Effect.die(ms.cause) : state.wait(ms.value)
    },
    open: (options) => {
      const ms = durationMs("timeout", options?.timeout, 30_000)
      return Exit.isFailure(ms) ? Effect.die(ms.cause) : state.open(options?.wait ?? false, ms.value)
    },
    close: state.close,
    resize: (minSize, maxSize) => state.resize(minSize, maxSize),
    check: state.check,
    drain: state.drain,
    stats: state.stats(false),
    popStats: state.stats(true)
  }
  return service
}

/** `make` of both pools. */
export const makePool: <R>(
  options: Options<R>,
  nullPool: boolean
) => Effect.Effect<Pool<R>, PoolConfigError | PgConfig.PgConfigError, Scope.Scope> = Effect.fnUntraced(
  function*<R>(options: Options<R>, nullPool: boolean) {
    const settings = yield* resolveSettings(options, nullPool)
    const clock = yield* Clock.Clock
    const state = yield* makeState(settings, clock)
    const service = toService<R>(state)
    state.handle = service as Pool<unknown>
    if (options.open ?? true) yield* Effect.orDie(state.open(false, 0))
    return service
  }
)
