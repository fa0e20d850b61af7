/**
 * Background upkeep: health checks of idle connections, shrinking by one
 * idle connection per `maxIdle`, leak detection, and `resize`.
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { PoolConfigError } from "../../PoolError.ts"
import { ping } from "../ping.ts"
import { PoolSharing } from "./sharing.ts"
import { checkSize, describeCause, type Pooled, seconds } from "./state.ts"

export abstract class PoolMaintenance extends PoolSharing {
  /**
   * Checks one connection taken out of the idle queue: expired ones are
   * replaced; one that fails `query` (or does not answer in time) is counted
   * lost, logged and replaced; a good one goes back.
   */
  protected checkIdle(pooled: Pooled, query: string, timeoutMs: number): Effect.Effect<void> {
    const self = this
    return Effect.uninterruptibleMask((restore) =>
      Effect.gen(function*() {
        if (pooled.expiresAt <= self.now() || pooled.generation < self.generation) {
          yield* self.debug(`discarding expired connection ${self.describe(pooled)}`)
          yield* self.closeConnection(pooled)
          self.replace()
          return
        }
        const result = yield* Effect.exit(
          restore(self.bounded(pooled.conn, ping(pooled.conn, query), timeoutMs, "connection check"))
        )
        if (Exit.isFailure(result)) return yield* self.addToPool(pooled) // interrupted: the pool is closing
        const checked = result.value
        if (Exit.isSuccess(checked) && pooled.conn.info.transactionStatus === "IDLE") {
          return yield* self.addToPool(pooled)
        }
        self.counters.add("connections_lost")
        yield* self.warn(
          `discarding broken connection: ${self.describe(pooled)}${
            Exit.isFailure(checked) ? `: ${describeCause(checked.cause)}` : ""
          }`
        )
        yield* self.closeConnection(pooled)
        self.replace()
      })
    )
  }

  /** psycopg's `check()`: every idle connection is checked; the pool may grow. */
  readonly check: Effect.Effect<void> = Effect.suspend(() => {
    if (this.settings.nullPool || this.closed) return Effect.void
    const taken = this.idle.splice(0)
    this.maybeGrow()
    return Effect.forEach(
      taken.reverse(),
      (pooled) => this.checkIdle(pooled, "", this.settings.cleanupTimeoutMs),
      { concurrency: this.settings.numWorkers, discard: true }
    )
  })

  /** One round of the health-check fiber: idle connections unused for an interval are pinged. */
  protected healthCheckOnce(query: string, intervalMs: number, timeoutMs: number): Effect.Effect<void> {
    const self = this
    return Effect.gen(function*() {
      for (const pooled of self.idle.slice()) {
        if (self.closed) return
        if (self.now() - pooled.lastUsedAt < intervalMs && pooled.expiresAt > self.now()) continue
        const index = self.idle.indexOf(pooled)
        if (index < 0) continue
        self.idle.splice(index, 1)
        yield* self.checkIdle(pooled, query, timeoutMs)
      }
      if (self.nconns < self.minSize) self.maybeGrow()
    })
  }

  /** psycopg's `_shrink_pool`: at most one idle connection above `minSize` per `maxIdle`. */
  protected readonly shrink: Effect.Effect<void> = Effect.suspend(() => {
    const nconnsMin = this.nconnsMin
    this.nconnsMin = this.idle.length
    if (this.nconns > this.minSize && nconnsMin > 0 && this.idle.length > 0) {
      const pooled = this.idle.shift()!
      this.nconns -= 1
      this.nconnsMin -= 1
      return Effect.andThen(
        this.debug(
          `shrinking pool '${this.settings.name}' to ${this.nconns} because ${nconnsMin} unused connections in the last ${
            seconds(this.settings.maxIdleMs)
          } sec`
        ),
        this.closeConnection(pooled)
      )
    }
    return Effect.void
  })

  /** Warns about connections held longer than `leakDetectionThreshold`. */
  protected detectLeaks(thresholdMs: number): Effect.Effect<void> {
    return Effect.suspend(() => {
      const now = this.now()
      const reports: Array<Effect.Effect<void>> = []
      for (const pooled of this.outstanding) {
        if (pooled.leakReported || now - pooled.checkedOutAt < thresholdMs) continue
        pooled.leakReported = true
        reports.push(
          this.warn(
            `connection leak detection: ${this.describe(pooled)} checked out for ${
              now - pooled.checkedOutAt
            } ms (threshold ${thresholdMs} ms) by ${pooled.borrower ?? "an unknown borrower"}`
          )
        )
      }
      return Effect.all(reports, { discard: true })
    })
  }

  /** psycopg's `drain()`: close the idle connections, replace them; the others are replaced when returned. */
  readonly drain: Effect.Effect<void> = Effect.suspend(() => {
    const taken = this.idle.splice(0)
    this.generation += 1
    return Effect.forEach(taken, (pooled) =>
      Effect.andThen(this.closeConnection(pooled), Effect.sync(() => this.replace())), { discard: true })
  })

  /** psycopg's `resize()`: growing `minSize` adds connections at once; shrinking is gradual. */
  resize(minSize: number, maxSize: number | undefined): Effect.Effect<void, PoolConfigError> {
    return Effect.suspend(() => {
      const checked = checkSize(this.settings.nullPool, minSize, maxSize)
      if (Exit.isFailure(checked)) return checked
      const sizes = checked.value
      const grow = this.settings.nullPool ? 0 : Math.max(0, sizes.minSize - this.minSize)
      this.minSize = sizes.minSize
      this.maxSize = sizes.maxSize
      if (!this.closed) {
        this.nconns += grow
        for (let index = 0; index < grow; index++) this.spawn(this.addConnection(false))
      }
      return this.debug(
        `resizing '${this.settings.name}' to min_size=${sizes.minSize} max_size=${sizes.maxSize}`
      )
    })
  }
}
