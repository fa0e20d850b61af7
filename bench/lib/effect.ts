/**
 * Bridges between the Promise-based harness and Effect-based clients (pgfx,
 * @effect/sql-pg): run an effect, or keep a scoped resource open across
 * rounds.
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as References from "effect/References"
import * as Scope from "effect/Scope"

/** Runs an effect with the log threshold at Warn (pool INFO lines would pollute the output). */
export const runEffect = <A, E>(effect: Effect.Effect<A, E>): Promise<A> =>
  Effect.runPromise(Effect.provideService(effect, References.MinimumLogLevel, "Warn"))

/** A scoped resource held open until `close`. */
export interface Held<A> {
  readonly value: A
  /** Runs an effect that may use the resource. */
  readonly run: <B, E>(effect: Effect.Effect<B, E>) => Promise<B>
  readonly close: () => Promise<void>
}

/** Acquires `acquire` in a fresh scope that stays open until `close()`. */
export const hold = async <A, E>(acquire: Effect.Effect<A, E, Scope.Scope>): Promise<Held<A>> => {
  const scope = await Effect.runPromise(Scope.make())
  try {
    const value = await runEffect(Scope.provide(scope)(acquire))
    return {
      value,
      run: runEffect,
      close: () => runEffect(Scope.close(scope, Exit.void))
    }
  } catch (error) {
    await runEffect(Scope.close(scope, Exit.void))
    throw error
  }
}
