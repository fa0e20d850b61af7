/**
 * Checking a connection out (psycopg's `getconn`): an idle one FIFO, a new
 * one while the pool may grow, or a place in the queue with a deadline; a
 * waiter that gives up never loses a connection handed to it late.
 */
import { Connection } from "@pgfx/core"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import type { CheckoutError } from "../model.ts"
import { PoolTimeout, TooManyRequests } from "../../PoolError.ts"
import { Backoff } from "../backoff.ts"
import { Waiter } from "../waiter.ts"
import { PoolReturns } from "./returning.ts"
import { describeCause, type Pooled, type Restore, seconds } from "./state.ts"

export abstract class PoolCheckout extends PoolReturns {
  /**
   * The oldest idle connection (FIFO). Connections the server already closed
   * while idle (their socket says so; no round trip) are replaced, never
   * served.
   */
  protected takeIdle(): Pooled | undefined {
    while (this.idle.length > 0) {
      const pooled = this.idle.shift()!
      if (this.idle.length < this.nconnsMin) this.nconnsMin = this.idle.length
      if (!pooled.conn.closed) return pooled
      this.counters.add("connections_lost")
      this.spawn(
        Effect.andThen(
          this.info(`not serving connection found closed while idle: ${this.describe(pooled)}`),
          this.closeConnection(pooled)
        )
      )
      this.replace()
    }
    return undefined
  }

  /** psycopg's `_getconn_unchecked`: an idle connection, or a place in the queue. */
  protected getconnUnchecked(
    restore: Restore,
    timeoutMs: number
  ): Effect.Effect<Pooled, CheckoutError> {
    return Effect.suspend((): Effect.Effect<Pooled, CheckoutError> => {
      if (this.closed) return Effect.fail(this.closedError())
      if (timeoutMs <= 0) return Effect.fail(new PoolTimeout({ message: "", pool: this.settings.name }))
      const ready = this.takeIdle()
      if (ready !== undefined) return Effect.succeed(ready)
      if (this.settings.nullPool && (this.maxSize === 0 || this.nconns < this.maxSize)) {
        return this.connectForClient(restore, timeoutMs)
      }
      if (this.settings.maxWaiting > 0 && this.waiting.length >= this.settings.maxWaiting) {
        this.counters.add("requests_errors")
        return Effect.fail(
          new TooManyRequests({
            message: `the pool '${this.settings.name}' has already ${this.waiting.length} requests waiting`,
            pool: this.settings.name
          })
        )
      }
      const waiter = new Waiter<Pooled>()
      this.waiting.push(waiter)
      this.counters.add("requests_queued")
      this.maybeGrow()
      const started = this.now()
      const queued = this.settings.checkoutLogLevel === undefined
        ? Effect.void
        : this.trace(`waiting for a connection from '${this.settings.name}' (${this.waiting.length} waiting)`)
      return Effect.andThen(
        queued,
        Effect.flatMap(
          Effect.exit(restore(waiter.await(timeoutMs))),
          (exit): Effect.Effect<Pooled, CheckoutError> => {
            this.counters.add("requests_wait_ms", this.now() - started)
            if (Exit.isSuccess(exit) && exit.value !== undefined) return Effect.succeed(exit.value)
            // Timed out, failed or interrupted: leave the queue; a connection
            // handed over in the meantime goes back to the pool.
            const late = waiter.abandon()
            const index = this.waiting.indexOf(waiter)
            if (index >= 0) this.waiting.splice(index, 1)
            this.counters.add("requests_errors")
            const giveBack = late === undefined ? Effect.void : this.addToPool(late)
            if (Exit.isSuccess(exit)) {
              return Effect.andThen(giveBack, Effect.fail(new PoolTimeout({ message: "", pool: this.settings.name })))
            }
            return Effect.andThen(giveBack, Effect.failCause(exit.cause))
          }
        )
      )
    })
  }

  /** A null pool connects in the client's own fiber, within the client's deadline. */
  protected connectForClient(restore: Restore, timeoutMs: number): Effect.Effect<Pooled, CheckoutError> {
    this.nconns += 1
    return Effect.flatMap(
      Effect.exit(restore(Effect.timeoutOption(this.connect, timeoutMs))),
      (exit): Effect.Effect<Pooled, CheckoutError> => {
        if (Exit.isSuccess(exit) && Option.isSome(exit.value)) return Effect.succeed(exit.value.value)
        this.nconns = Math.max(0, this.nconns - 1)
        if (Exit.isSuccess(exit)) {
          return Effect.fail(
            new PoolTimeout({
              message: `connection attempt timed out after ${seconds(timeoutMs)} sec`,
              pool: this.settings.name
            })
          )
        }
        return Effect.failCause(exit.cause)
      }
    )
  }

  /** psycopg's `_getconn_with_check_loop`: runs `check` and retries with backoff until the deadline. */
  protected getconn(restore: Restore, timeoutMs: number): Effect.Effect<Pooled, CheckoutError> {
    const check = this.settings.check
    if (check === undefined) return this.getconnUnchecked(restore, timeoutMs)
    const self = this
    return Effect.gen(function*() {
      const deadline = self.now() + timeoutMs
      let attempt: Backoff | undefined
      while (true) {
        const pooled = yield* self.getconnUnchecked(restore, deadline - self.now())
        const remaining = Math.max(1, deadline - self.now())
        const checked = yield* Effect.exit(restore(self.bounded(pooled.conn, check(pooled.conn), remaining, "check")))
        const outcome = Exit.isSuccess(checked) ? checked.value : checked
        if (Exit.isSuccess(outcome)) return pooled
        yield* self.info(`connection failed check: ${describeCause(outcome.cause)}`)
        yield* self.returnConnection(pooled, true)
        if (Exit.isFailure(checked)) return yield* Effect.failCause(checked.cause)
        if (Cause.hasInterruptsOnly(outcome.cause)) return yield* Effect.interrupt
        const now = self.now()
        if (attempt === undefined) attempt = new Backoff(deadline - now, self.settings.backoff)
        else attempt.updateDelay(now)
        if (attempt.timeToGiveUp(now)) {
          return yield* new PoolTimeout({ message: "", pool: self.settings.name })
        }
        yield* restore(Effect.sleep(attempt.delay))
      }
    })
  }

  /**
   * Takes a connection for a client (inside an uninterruptible region whose
   * `restore` makes the waits interruptible): counts the request, applies
   * the deadline, registers it for leak detection.
   */
  protected acquire(restore: Restore, timeoutMs: number): Effect.Effect<Pooled, CheckoutError> {
    return Effect.suspend(() => {
      this.counters.add("requests_num")
      const trace = this.settings.checkoutLogLevel !== undefined
      const got = Effect.catchTag(
        this.getconn(restore, timeoutMs),
        "PoolTimeout",
        (error) =>
          Effect.fail(
            error.message === ""
              ? new PoolTimeout({
                message: `couldn't get a connection after ${(timeoutMs / 1000).toFixed(2)} sec`,
                pool: this.settings.name
              })
              : error
          )
      )
      const taken = Effect.tap(got, (pooled) => {
        pooled.checkedOutAt = this.now()
        const given = trace ? this.trace(`connection given by '${this.settings.name}'`) : Effect.void
        if (this.settings.leakDetectionMs === undefined) return given
        pooled.leakReported = false
        this.outstanding.add(pooled)
        return Effect.andThen(
          Effect.map(borrowerOf, (borrower) => {
            pooled.borrower = borrower
          }),
          given
        )
      })
      return trace ? Effect.andThen(this.trace(`connection requested from '${this.settings.name}'`), taken) : taken
    })
  }
  /** Opens a span around the acquisition. */
  protected traced<A, E, R>(acquire: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> {
    return Effect.withSpan(acquire, "pgfx.pool.connection", this.spanOptions)
  }


  /**
   * A scoped checkout: the connection goes back to the pool (rolled back,
   * reset, or replaced) when the scope closes, whatever its exit.
   */
  checkout(timeout: number | undefined): Effect.Effect<Connection.Connection<unknown>, CheckoutError, Scope.Scope> {
    const timeoutMs = timeout ?? this.settings.timeoutMs
    return this.traced(Effect.uninterruptibleMask((restore) =>
      Effect.flatMap(this.acquire(restore, timeoutMs), (pooled) =>
        Effect.as(
          Effect.addFinalizer((exit) => this.release(pooled, exit)),
          pooled.conn
        ))
    ))
  }

  /**
   * `pool.use`: acquire, run, release, without a `Scope`. With `autocommit`
   * off, the implicit transaction is committed when `f` succeeds (a failing
   * COMMIT fails `use`).
   */
  use<A, E, R>(
    f: (connection: Connection.Connection<unknown>) => Effect.Effect<A, E, R>,
    timeout: number | undefined
  ): Effect.Effect<A, E | CheckoutError, R> {
    const timeoutMs = timeout ?? this.settings.timeoutMs
    return Effect.uninterruptibleMask((restore) =>
      Effect.flatMap(this.traced(this.acquire(restore, timeoutMs)), (pooled) => {
        const conn = pooled.conn
        const body = conn.autocommit ? f(conn) : Effect.tap(f(conn), () => conn.autocommit ? Effect.void : conn.commit)
        return Effect.flatMap(
          Effect.exit(restore(body)),
          (exit) => Effect.andThen(this.release(pooled, exit), exit)
        )
      })
    )
  }
}

/** Who checks a connection out: the span around the checkout (or a stack), for leak reports. */
const borrowerOf: Effect.Effect<string> = Effect.map(Effect.option(Effect.currentSpan), (current) => {
  if (Option.isSome(current)) {
    const own = current.value
    const span = own.name === "pgfx.pool.connection" && Option.isSome(own.parent) ? own.parent.value : own
    return span._tag === "Span" ? `span '${span.name}' (trace ${span.traceId})` : `span ${span.spanId} (trace ${span.traceId})`
  }
  return `a fiber without span\n${new Error("checked out here").stack ?? ""}`
})
