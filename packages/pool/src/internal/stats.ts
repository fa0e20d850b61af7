/**
 * Pool statistics with psycopg_pool's key names, and their mirror as Effect
 * metrics (read when metrics are snapshotted, so counting costs one
 * addition).
 */
import type * as Context from "effect/Context"
import * as Metric from "effect/Metric"

/** psycopg_pool's counters (`pop_stats` resets them). */
export const counterKeys = [
  "requests_num",
  "requests_queued",
  "requests_wait_ms",
  "requests_errors",
  "usage_ms",
  "returns_bad",
  "connections_num",
  "connections_ms",
  "connections_errors",
  "connections_lost"
] as const

/** A counter name. */
export type CounterKey = typeof counterKeys[number]

/** psycopg_pool's gauges (always present). */
export const gaugeKeys = ["pool_min", "pool_max", "pool_size", "pool_available", "requests_waiting"] as const

/** A gauge name. */
export type GaugeKey = typeof gaugeKeys[number]

const descriptions: Record<CounterKey | GaugeKey, string> = {
  pool_min: "Minimum number of connections the pool keeps",
  pool_max: "Maximum number of connections",
  pool_size: "Connections managed by the pool (idle, in use, being created)",
  pool_available: "Idle connections",
  requests_waiting: "Clients waiting for a connection",
  requests_num: "Connection requests",
  requests_queued: "Requests that had to wait for a connection",
  requests_wait_ms: "Total time spent waiting for a connection, in milliseconds",
  requests_errors: "Requests that failed (timeout, queue full, interrupted waiter)",
  usage_ms: "Total time connections spent out of the pool, in milliseconds",
  returns_bad: "Connections returned in a bad state",
  connections_num: "Connection attempts",
  connections_ms: "Total time spent connecting, in milliseconds",
  connections_errors: "Failed connection attempts",
  connections_lost: "Connections found broken by check or by the check callback"
}

/** Mutable counters: `current` is reset by `popStats`, `total` never (it feeds the metrics). */
export class Counters {
  current: Record<CounterKey, number> = emptyCounters()
  readonly total: Record<CounterKey, number> = emptyCounters()

  add(key: CounterKey, amount = 1): void {
    this.current[key] += amount
    this.total[key] += amount
  }

  /** The current counters that are not zero (psycopg omits untouched keys). */
  snapshot(reset: boolean): Partial<Record<CounterKey, number>> {
    const out: Partial<Record<CounterKey, number>> = {}
    for (const key of counterKeys) {
      const value = this.current[key]
      if (value !== 0) out[key] = value
    }
    if (reset) this.current = emptyCounters()
    return out
  }
}

const emptyCounters = (): Record<CounterKey, number> => {
  const out = {} as Record<CounterKey, number>
  for (const key of counterKeys) out[key] = 0
  return out
}

/**
 * Registers one gauge per gauge key and one counter per counter key, named
 * `pgfx_pool_<key>` with the attribute `pool`, whose values are read from the
 * pool on each snapshot. Returns the function that removes them.
 */
export const registerMetrics = (
  context: Context.Context<never>,
  pool: string,
  gauges: () => Record<GaugeKey, number>,
  counters: Counters
): () => void => {
  const registrations: Array<Metric.Registration> = []
  const attributes = { pool }
  for (const key of gaugeKeys) {
    const gauge = Metric.gauge(`pgfx_pool_${key}`, { description: descriptions[key], attributes })
    registrations.push(Metric.registerUnsafe(gauge, context, {
      get: () => ({ value: gauges()[key] }),
      update: () => {},
      modify: () => {}
    }))
  }
  for (const key of counterKeys) {
    const counter = Metric.counter(`pgfx_pool_${key}`, {
      description: descriptions[key],
      attributes,
      incremental: true
    })
    registrations.push(Metric.registerUnsafe(counter, context, {
      get: () => ({ count: counters.total[key], incremental: true }),
      update: () => {},
      modify: () => {}
    }))
  }
  return () => {
    for (const registration of registrations) registration.remove()
  }
}
