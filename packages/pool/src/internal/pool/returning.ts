/**
 * What happens when a connection comes back (psycopg's `putconn`): the
 * borrower's transaction ended (rolled back after a failure, committed for
 * autocommit-off), the session reset, and the connection handed to the next
 * waiter, kept idle, or discarded and replaced.
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { PoolGrowth } from "./grow.ts"
import { describeCause, type Pooled } from "./state.ts"

export abstract class PoolReturns extends PoolGrowth {
  /** The return path of a checkout, whatever its exit. */
  protected release(pooled: Pooled, exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> {
    return Effect.suspend(() => {
      const session = pooled.conn.session
      if (session.settling) {
        // An interrupted statement is still being cancelled and drained: the
        // borrower (whose deadline it was) goes on at once; the connection
        // comes back once the outcome is known, or is closed with the pool.
        this.spawn(
          Effect.andThen(session.settled, this.returnNow(pooled, exit)).pipe(
            Effect.onInterrupt(() => this.closeConnection(pooled))
          )
        )
        return Effect.void
      }
      return this.returnNow(pooled, exit)
    })
  }

  protected returnNow(pooled: Pooled, exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> {
    return Effect.suspend(() => {
      this.counters.add("usage_ms", this.now() - pooled.checkedOutAt)
      // Fast path, no round trip: an IDLE connection of an open pool, fit for
      // reuse, goes straight to the next waiter or the idle queue.
      const conn = pooled.conn
      const fast = !this.closed && !this.settings.nullPool && this.settings.reset === undefined &&
        this.settings.leakDetectionMs === undefined && !conn.closed && conn.info.transactionStatus === "IDLE" &&
        pooled.generation === this.generation && pooled.expiresAt > this.now()
      const back = fast ? this.addToPool(pooled) : Effect.andThen(this.endBlock(pooled, exit), this.giveBack(pooled))
      return this.settings.checkoutLogLevel === undefined
        ? back
        : Effect.andThen(this.trace(`returning connection to '${this.settings.name}'`), back)
    })
  }

  /**
   * psycopg's connection context on exit (`with pool.connection()`): after a
   * failure an open transaction is rolled back quietly; after success, the
   * implicit transaction of an `autocommit: false` connection is committed.
   * Problems are logged; the scope's own outcome stands.
   */
  protected endBlock(pooled: Pooled, exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> {
    return Effect.suspend(() => {
      const conn = pooled.conn
      if (conn.closed) return Effect.void
      const status = conn.info.transactionStatus
      const failed = Exit.isFailure(exit)
      if (failed && (status === "INTRANS" || status === "INERROR")) {
        return this.endQuietly(pooled, conn.rollback, "rollback", "error ignored in rollback on")
      }
      if (!failed && !conn.autocommit && status === "INTRANS") {
        return this.endQuietly(pooled, conn.commit, "commit", "commit failed on returned connection")
      }
      return Effect.void
    })
  }

  /** A bounded ROLLBACK / COMMIT of a returned connection; a failure is logged, never raised. */
  protected endQuietly(
    pooled: Pooled,
    step: Effect.Effect<void, unknown>,
    what: string,
    problem: string
  ): Effect.Effect<void> {
    return Effect.flatMap(
      this.bounded(pooled.conn, step, this.settings.cleanupTimeoutMs, what),
      (done) =>
        Exit.isFailure(done)
          ? this.warn(`${problem} ${this.describe(pooled)}: ${describeCause(done.cause)}`)
          : Effect.void
    )
  }

  /** `putconn`: the return path of a checked-out connection. */
  protected giveBack(pooled: Pooled): Effect.Effect<void> {
    return Effect.suspend(() => {
      let report = Effect.void
      if (this.outstanding.delete(pooled) && pooled.leakReported) {
        report = this.info(
          `previously reported leaked connection ${this.describe(pooled)} returned after ${
            this.now() - pooled.checkedOutAt
          } ms`
        )
      }
      if (this.settings.nullPool && (this.closed || this.waiting.length === 0)) {
        // Nobody wants it: close it.
        if (pooled.conn.closed) this.counters.add("returns_bad")
        this.nconns = Math.max(0, this.nconns - 1)
        return Effect.andThen(report, this.closeConnection(pooled))
      }
      return Effect.andThen(report, this.returnConnection(pooled, false))
    })
  }

  /**
   * psycopg's `_return_connection`: bring the session back to IDLE (or close
   * it), then discard it when broken, expired or drained, else hand it on.
   */
  protected returnConnection(pooled: Pooled, fromGetconn: boolean): Effect.Effect<void> {
    const self = this
    return Effect.gen(function*() {
      if (self.closed) return yield* self.closeConnection(pooled)
      yield* self.resetConnection(pooled)
      if (pooled.conn.closed) {
        if (fromGetconn) {
          self.counters.add("connections_lost")
          yield* self.info("not serving connection found broken")
        } else {
          self.counters.add("returns_bad")
          yield* self.warn(`discarding closed connection: ${self.describe(pooled)}`)
        }
        yield* self.closeConnection(pooled)
        self.replace()
        return
      }
      if (pooled.generation < self.generation || pooled.expiresAt <= self.now()) {
        yield* self.debug("discarding expired connection")
        yield* self.closeConnection(pooled)
        self.replace()
        return
      }
      yield* self.addToPool(pooled)
    })
  }

  /** psycopg's `_reset_connection`: roll back, close an ACTIVE one, run `reset`. */
  protected resetConnection(pooled: Pooled): Effect.Effect<void> {
    const self = this
    const conn = pooled.conn
    return Effect.gen(function*() {
      const status = conn.info.transactionStatus
      if (status === "UNKNOWN") return
      if (status === "INTRANS" || status === "INERROR") {
        yield* self.warn(`rolling back returned connection: ${self.describe(pooled)}`)
        const rolledBack = yield* self.bounded(conn, conn.rollback, self.settings.cleanupTimeoutMs, "rollback")
        if (Exit.isFailure(rolledBack)) {
          yield* self.warn(
            `rollback failed: ${describeCause(rolledBack.cause)}. Discarding connection ${self.describe(pooled)}`
          )
          yield* conn.close
        }
      } else if (status === "ACTIVE") {
        // A statement still runs (a fiber kept using the connection): stop it
        // on the server and close the session.
        yield* self.warn(`closing returned connection: ${self.describe(pooled)}`)
        self.spawn(Effect.ignore(conn.cancel))
        yield* conn.close
      }
      const reset = self.settings.reset
      if (reset === undefined || conn.closed) return
      const done = yield* self.bounded(conn, reset(conn), self.settings.cleanupTimeoutMs, "reset")
      let problem: string | undefined
      if (Exit.isFailure(done)) problem = describeCause(done.cause)
      else if (conn.closed || conn.info.transactionStatus !== "IDLE") {
        problem = `connection left in status ${conn.closed ? "BAD" : conn.info.transactionStatus} by reset function: discarded`
      }
      if (problem !== undefined) {
        yield* self.warn(`error resetting connection: ${problem}`)
        yield* conn.close
      }
    })
  }
}
