/**
 * Shared leases: statements of many callers pipelined on pooled connections
 * (`pool.execute`, `pool.share`), each connection going back when its last
 * sharer is done.
 */
import { Connection } from "@pgfx/core"
import * as Effect from "effect/Effect"
import type { CheckoutError } from "../model.ts"
import { PoolCheckout } from "./checkout.ts"
import { type Pooled, type Restore, STALLED_MS } from "./state.ts"

export abstract class PoolSharing extends PoolCheckout {
  /** Connections lent to `share`, each while statements run on it (`sharers`). */
  protected readonly sharing: Array<Pooled> = []

  /**
   * The connection lent to `share` that takes the next statement, or
   * `undefined` to take one the usual way (an idle one, growing, or queueing).
   * The busiest one below `maxPipeline` is chosen: statements issued in the
   * same tick then leave in one write and their answers arrive in one read,
   * which on a loaded client costs far less than one write per connection
   * (W2/W6 in bench/). A connection whose oldest statement has been running
   * for `STALLED_MS` is passed over, so that a slow statement does not
   * gather others behind it. Clients waiting for a checkout come first: the
   * statement then queues like them.
   */
  protected pickShared(): Pooled | undefined {
    if (this.waiting.length > 0) return undefined
    let best: Pooled | undefined
    for (const pooled of this.sharing) {
      if (pooled.sharers >= this.settings.maxPipeline || (best !== undefined && pooled.sharers <= best.sharers)) continue
      const session = pooled.conn.session
      if (pooled.conn.closed || session.settling || session.headAge > STALLED_MS) continue
      best = pooled
    }
    return best
  }

  /** Whether statements may share connections: autocommit on (no implicit transactions), not a null pool. */
  protected get shareable(): boolean {
    return !this.settings.nullPool && this.settings.connectOptions.autocommit !== false
  }

  /**
   * Runs `f` with a pooled connection that other `share` calls use at the
   * same time: their statements are pipelined on it (see
   * `Connection.execute`). The connection goes back to the pool when its
   * last sharer is done. Where sharing is not possible it is `use`.
   */
  share<A, E, R>(
    f: (connection: Connection.Connection<unknown>) => Effect.Effect<A, E, R>
  ): Effect.Effect<A, E | CheckoutError, R> {
    if (!this.shareable) return this.use(f, undefined)
    return Effect.uninterruptibleMask((restore) =>
      Effect.suspend(() => {
        if (this.closed) return Effect.fail(this.closedError())
        const ready = this.pickShared()
        if (ready !== undefined) return this.runShared(ready, f, restore)
        return Effect.flatMap(this.traced(this.acquire(restore, this.settings.timeoutMs)), (pooled) => {
          this.sharing.push(pooled)
          return this.runShared(pooled, f, restore)
        })
      })
    )
  }

  protected runShared<A, E, R>(
    pooled: Pooled,
    f: (connection: Connection.Connection<unknown>) => Effect.Effect<A, E, R>,
    restore: Restore
  ): Effect.Effect<A, E, R> {
    pooled.sharers++
    return Effect.flatMap(Effect.exit(restore(f(pooled.conn))), (exit) => {
      if (--pooled.sharers > 0) return exit
      const index = this.sharing.indexOf(pooled)
      if (index >= 0) this.sharing.splice(index, 1)
      return Effect.andThen(this.release(pooled, exit), exit)
    })
  }
}
