/**
 * psycopg_pool's `AttemptWithBackoff`: the state of a repeated attempt (a
 * reconnection, a failing `check`) with exponential backoff.
 *
 * The first delay is `initialDelay` ± `jitter`; each next one is `factor`
 * times the previous; the delay is capped so that the last attempt lands on
 * the deadline (`timeout` after the first failure). All times are in
 * milliseconds.
 */

/** Backoff tunables (psycopg: 1 s, 10 %, ×2). */
export interface BackoffSettings {
  readonly initialDelayMs: number
  readonly jitter: number
  readonly factor: number
}

/** `value` plus a random amount between `minFraction` and `maxFraction` of it. */
export const jitter = (value: number, minFraction: number, maxFraction: number, random: () => number = Math.random) =>
  value * (1 + (maxFraction - minFraction) * random() + minFraction)

/** One repeated attempt. */
export class Backoff {
  /** The delay before the next attempt. */
  delay = 0
  private giveUpAt = 0

  constructor(
    private readonly timeoutMs: number,
    private readonly settings: BackoffSettings,
    private readonly random: () => number = Math.random
  ) {}

  /** After a failure at `now`: computes the delay before the next attempt. */
  updateDelay(now: number): void {
    if (this.delay === 0) {
      this.giveUpAt = now + this.timeoutMs
      this.delay = jitter(this.settings.initialDelayMs, -this.settings.jitter, this.settings.jitter, this.random)
    } else {
      this.delay *= this.settings.factor
    }
    if (this.delay + now > this.giveUpAt) this.delay = Math.max(0, this.giveUpAt - now)
  }

  /** Whether an attempt started at `now` is past the deadline. */
  timeToGiveUp(now: number): boolean {
    return this.giveUpAt > 0 && now >= this.giveUpAt
  }
}
