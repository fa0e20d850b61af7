/**
 * A client's place in the pool's queue (psycopg_pool's `WaitingClient`).
 *
 * The pool hands it a connection (`serve`) or an error (`fail`) at most
 * once; the client, when its wait ends without a result (timeout,
 * interruption), `abandon`s it and gets back the connection that may have
 * been handed to it in the meantime, so a late hand-over never loses a
 * connection.
 */
import * as Effect from "effect/Effect"
import type { PoolClosed } from "../PoolError.ts"

/** A waiting client. `A` is what the pool hands over. */
export class Waiter<A> {
  private state: "waiting" | "served" | "failed" | "abandoned" = "waiting"
  private lease: A | undefined
  private error: PoolClosed | undefined
  private resume: ((effect: Effect.Effect<A | undefined, PoolClosed>) => void) | undefined
  private timer: ReturnType<typeof setTimeout> | undefined

  /** Still queued: neither served, failed nor abandoned. */
  get waiting(): boolean {
    return this.state === "waiting"
  }

  /** Hands over `lease`; `false` when the client is gone (the caller keeps it). */
  serve(lease: A): boolean {
    if (this.state !== "waiting") return false
    this.state = "served"
    this.lease = lease
    this.wake(Effect.succeed(lease))
    return true
  }

  /** Fails the client (the pool closed). */
  fail(error: PoolClosed): boolean {
    if (this.state !== "waiting") return false
    this.state = "failed"
    this.error = error
    this.wake(Effect.fail(error))
    return true
  }

  private wake(effect: Effect.Effect<A | undefined, PoolClosed>): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer)
      this.timer = undefined
    }
    const resume = this.resume
    this.resume = undefined
    resume?.(effect)
  }

  /**
   * The client stops waiting. Returns the connection handed over too late,
   * which the caller must give back.
   */
  abandon(): A | undefined {
    const lease = this.state === "served" ? this.lease : undefined
    this.state = "abandoned"
    this.lease = undefined
    return lease
  }

  /**
   * Waits for `serve` or `fail`, at most `timeoutMs`: `undefined` means the
   * deadline passed (then `abandon`). Interruptible. One timer, no fiber:
   * this is the pool's hot path under load.
   */
  await(timeoutMs: number): Effect.Effect<A | undefined, PoolClosed> {
    return Effect.callback((resume) => {
      if (this.state === "served") return resume(Effect.succeed(this.lease))
      if (this.state === "failed") return resume(Effect.fail(this.error as PoolClosed))
      this.resume = resume
      if (Number.isFinite(timeoutMs)) {
        this.timer = setTimeout(() => {
          this.timer = undefined
          if (this.state !== "waiting" || this.resume !== resume) return
          this.resume = undefined
          resume(Effect.succeed(undefined))
        }, Math.max(0, timeoutMs))
      }
      return Effect.sync(() => {
        if (this.timer !== undefined) {
          clearTimeout(this.timer)
          this.timer = undefined
        }
        if (this.resume === resume) this.resume = undefined
      })
    })
  }
}
