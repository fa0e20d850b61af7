/**
 * The `ConnectionPool` of a test isolated in a transaction: every checkout is the test's own
 * connection, so whatever the code under test does through the pool happens inside the test's
 * transaction and is rolled back with it. It counts checkouts (for `assertNoLeaks` and the
 * stats); it cannot be resized, drained or closed — the harness owns the connection.
 *
 * @internal
 */
import type { Connection } from "@pgfx/core"
import { ConnectionPool } from "@pgfx/pool"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"

interface ViewState {
  checkedOut: number
  requests: number
}

const views = new WeakMap<object, ViewState>()

/** Checkouts not returned yet, when `pool` is a transaction view. */
export const viewCheckouts = (pool: object): number | undefined => views.get(pool)?.checkedOut

/** A pool view over `connection`. */
export const makePoolView = (connection: Connection.Connection, name: string): ConnectionPool.ConnectionPool => {
  const state: ViewState = { checkedOut: 0, requests: 0 }
  const checkout = Effect.acquireRelease(
    Effect.sync(() => {
      state.checkedOut++
      state.requests++
      return connection
    }),
    () => Effect.sync(() => void state.checkedOut--)
  )
  const stats = (): ConnectionPool.PoolStats => ({
    pool_min: 1,
    pool_max: 1,
    pool_size: 1,
    pool_available: state.checkedOut > 0 ? 0 : 1,
    requests_waiting: 0,
    ...(state.requests > 0 ? { requests_num: state.requests } : {})
  })
  const pool: ConnectionPool.ConnectionPool = {
    name,
    minSize: 1,
    maxSize: 1,
    timeout: Duration.seconds(30),
    maxWaiting: 0,
    maxLifetime: Duration.infinity,
    maxIdle: Duration.infinity,
    reconnectTimeout: Duration.zero,
    get closed() {
      return connection.closed
    },
    connection: checkout,
    connectionWith: () => checkout,
    use: (f) => Effect.scoped(Effect.flatMap(checkout, f)),
    execute: (sql, params, options) => Effect.scoped(Effect.flatMap(checkout, (conn) => conn.execute(sql, params ?? [], options))),
    share: (f) => Effect.scoped(Effect.flatMap(checkout, f)),
    stream: (sql, params, options) =>
      Stream.unwrap(Effect.map(checkout, (conn) => conn.stream(sql, params, options))).pipe(Stream.scoped),
    wait: () => Effect.void,
    open: () => Effect.void,
    close: Effect.void,
    resize: () =>
      Effect.fail(
        new ConnectionPool.PoolConfigError({
          message: "the pool of a test isolated in a transaction is its one connection: it cannot be resized"
        })
      ),
    check: Effect.void,
    drain: Effect.void,
    stats: Effect.sync(stats),
    popStats: Effect.sync(() => {
      const current = stats()
      state.requests = 0
      return current
    })
  }
  views.set(pool, state)
  return pool
}
