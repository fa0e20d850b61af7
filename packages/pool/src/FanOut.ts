/**
 * The seed's `parallel_query`, made honest: run an effect over many items
 * with bounded concurrency and one overall deadline, and report what
 * completed, what failed and what did not finish in time.
 *
 * ```ts
 * const result = yield* FanOut.run(
 *   ids,
 *   (id) => pool.execute("SELECT * FROM items WHERE id = $1", [id]), // pipelined on shared connections
 *   { concurrency: 8, timeout: "3 seconds" }
 * )
 * // result.completed: [{ item, index, value }] in input order
 * // result.failed:    [{ item, index, error }]
 * // result.timedOut:  [item]
 * ```
 *
 * At the deadline, work still running is interrupted and `run` returns: with
 * pgfx connections the interruption sends each statement's cancel request,
 * and the connection goes back to the pool once the server has confirmed
 * (milliseconds later; bounded by `cancelTimeout` and `drainTimeout`), so
 * nothing keeps running unobserved (the seed's thread pool could not stop
 * its threads). Items never started are reported as timed out.
 * Typed failures are collected; defects propagate.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Duration from "effect/Duration"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"

/**
 * Options of {@link run} and {@link stream}.
 *
 * @since 0.1.0
 */
export interface Options {
  /** Items processed at once (default `"unbounded"`). */
  readonly concurrency?: number | "unbounded" | undefined
  /** One deadline for the whole run (default: none). */
  readonly timeout?: Duration.Input | undefined
}

/**
 * An item whose effect succeeded.
 *
 * @since 0.1.0
 */
export interface Completed<A, B> {
  /** The input item. */
  readonly item: A
  /** Position of the item in the input. */
  readonly index: number
  /** What its effect returned. */
  readonly value: B
}

/**
 * An item whose effect failed with a typed error.
 *
 * @since 0.1.0
 */
export interface Failed<A, E> {
  /** The input item. */
  readonly item: A
  /** Position of the item in the input. */
  readonly index: number
  /** The typed error its effect failed with. */
  readonly error: E
}

/**
 * The outcome of {@link run}.
 *
 * @since 0.1.0
 */
export interface Result<A, B, E> {
  /** Successes, in input order. */
  readonly completed: ReadonlyArray<Completed<A, B>>
  /** Typed failures, in input order. */
  readonly failed: ReadonlyArray<Failed<A, E>>
  /** Items not finished at the deadline (interrupted, or never started), in input order. */
  readonly timedOut: ReadonlyArray<A>
}

/**
 * One outcome of {@link stream}, emitted as it happens.
 *
 * @since 0.1.0
 */
export type Event<A, B, E> =
  /** The item's effect succeeded with `value`. */
  | {
    /** The kind of outcome. */ readonly _tag: "Completed"
    /** The input item. */ readonly item: A
    /** Its position in the input. */ readonly index: number
    /** What its effect returned. */ readonly value: B
  }
  /** The item's effect failed with `error`. */
  | {
    /** The kind of outcome. */ readonly _tag: "Failed"
    /** The input item. */ readonly item: A
    /** Its position in the input. */ readonly index: number
    /** The typed error. */ readonly error: E
  }
  /** The item did not finish before the deadline (interrupted, or never started). */
  | {
    /** The kind of outcome. */ readonly _tag: "TimedOut"
    /** The input item. */ readonly item: A
    /** Its position in the input. */ readonly index: number
  }

/** The exit of one item: a typed failure is an outcome; a defect propagates; an interruption leaves it unfinished. */
const settle = <B, E>(exit: Exit.Exit<B, E>): Effect.Effect<Exit.Exit<B, E> | undefined> => {
  if (Exit.isSuccess(exit)) return Effect.succeed(exit)
  if (Cause.hasDies(exit.cause)) return Effect.failCause(exit.cause as Cause.Cause<never>)
  if (Option.isSome(Cause.findErrorOption(exit.cause))) return Effect.succeed(exit)
  return Effect.succeed(undefined)
}

/**
 * Runs `f` over `items` with at most `concurrency` at once and one overall
 * `timeout`; returns the completed results and the failures (with their
 * items, in input order) and the items that did not finish in time. Work
 * running at the deadline is interrupted, and awaited, before `run`
 * returns.
 *
 * @example
 * ```ts
 * // psycopg: futures = [EXECUTOR.submit(query, sql) for sql in sqls]; wait(futures, timeout=3)
 * const { completed, failed, timedOut } = yield* FanOut.run(
 *   sqls,
 *   (sql) => pool.execute(sql),
 *   { concurrency: 32, timeout: "3 seconds" }
 * )
 * const rows = completed.flatMap(({ value }) => value.rows)
 * if (timedOut.length > 0) yield* Effect.logWarning(`${timedOut.length} queries did not finish in 3 s`)
 * ```
 *
 * @since 0.1.0
 */
export const run = <A, B, E, R>(
  items: Iterable<A>,
  f: (item: A, index: number) => Effect.Effect<B, E, R>,
  options?: Options
): Effect.Effect<Result<A, B, E>, never, R> =>
  Effect.suspend(() => {
    const list = Array.from(items)
    const outcomes: Array<Exit.Exit<B, E> | undefined> = new Array(list.length)
    const work = Effect.forEach(
      list,
      (item, index) =>
        Effect.flatMap(Effect.exit(f(item, index)), (exit) => {
          if (Exit.isSuccess(exit)) {
            outcomes[index] = exit
            return Effect.void
          }
          return Effect.map(settle(exit), (outcome) => void (outcomes[index] = outcome))
        }),
      { concurrency: options?.concurrency ?? "unbounded", discard: true }
    )
    const bounded = options?.timeout === undefined ? work : Effect.asVoid(Effect.timeoutOption(work, options.timeout))
    return Effect.map(bounded, () => {
      const completed: Array<Completed<A, B>> = []
      const failed: Array<Failed<A, E>> = []
      const timedOut: Array<A> = []
      list.forEach((item, index) => {
        const outcome = outcomes[index]
        if (outcome === undefined) timedOut.push(item)
        else if (Exit.isSuccess(outcome)) completed.push({ item, index, value: outcome.value })
        else failed.push({ item, index, error: Option.getOrThrow(Cause.findErrorOption(outcome.cause)) })
      })
      return { completed, failed, timedOut }
    })
  })

/**
 * {@link run} as a stream: each item's outcome is emitted as soon as it is
 * known (completion order); at the deadline the work still running is
 * interrupted and a `TimedOut` event follows for every item without an
 * outcome, then the stream ends.
 *
 * @example
 * ```ts
 * yield* FanOut.stream(ids, (id) => pool.execute("SELECT * FROM t WHERE id = $1", [id]), {
 *   concurrency: 8,
 *   timeout: "10 seconds"
 * }).pipe(
 *   Stream.runForEach((event) => Console.log(event._tag, event.item)) // as each one finishes
 * )
 * ```
 *
 * @since 0.1.0
 */
export const stream = <A, B, E, R>(
  items: Iterable<A>,
  f: (item: A, index: number) => Effect.Effect<B, E, R>,
  options?: Options
): Stream.Stream<Event<A, B, E>, never, R> =>
  Stream.suspend(() => {
    const list = Array.from(items)
    const emitted = new Array<boolean>(list.length).fill(false)
    const outcomes: Stream.Stream<Event<A, B, E>, never, R> = Stream.fromIterable(list.map((item, index) => ({ item, index }))).pipe(
      Stream.mapEffect(
        ({ index, item }) =>
          Effect.map(
            Effect.flatMap(Effect.exit(f(item, index)), settle),
            (outcome): Event<A, B, E> | undefined =>
              outcome === undefined
                ? undefined
                : Exit.isSuccess(outcome)
                ? { _tag: "Completed", item, index, value: outcome.value }
                : { _tag: "Failed", item, index, error: Option.getOrThrow(Cause.findErrorOption(outcome.cause)) }
          ),
        { concurrency: options?.concurrency ?? "unbounded", unordered: true }
      ),
      Stream.filter((event): event is Event<A, B, E> => event !== undefined),
      Stream.tap((event) => Effect.sync(() => void (emitted[event.index] = true)))
    )
    const bounded = options?.timeout === undefined
      ? outcomes
      : Stream.interruptWhen(outcomes, Effect.sleep(options.timeout))
    return Stream.concat(
      bounded,
      Stream.suspend(() =>
        Stream.fromIterable(
          list.flatMap((item, index): Array<Event<A, B, E>> => emitted[index] ? [] : [{ _tag: "TimedOut", item, index }])
        )
      )
    )
  })
