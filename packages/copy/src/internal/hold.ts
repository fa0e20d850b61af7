/**
 * Holding a connection for the life of a scope.
 *
 * `Session.exclusive` wraps one effect; a COPY is a scoped resource whose
 * life is the caller's scope. So a holder fiber enters `exclusive` and waits
 * there until the scope closes, and hands back its context: session calls
 * run in it are recognised as the holder's (re-entrant, so a COPY inside a
 * transaction that already holds the connection works), while every other
 * fiber's statements wait until the COPY is over.
 */
import { Session } from "@pgfx/core"
import type * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import type * as Scope from "effect/Scope"

/** The context in which the held session's calls must run. */
export type Held = Context.Context<never>

/**
 * Takes the session for the rest of the scope (interruptible while waiting
 * for it); `release` gives it back earlier, once the COPY is over.
 */
export const holdSession = (
  session: Session.Session
): Effect.Effect<{ readonly held: Held; readonly release: Effect.Effect<void> }, never, Scope.Scope> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.gen(function*() {
      const acquired = yield* Deferred.make<Held>()
      const holder = yield* Effect.forkDetach(
        session.exclusive(
          Effect.context<never>().pipe(
            Effect.flatMap((context) => Deferred.succeed(acquired, context)),
            Effect.andThen(Effect.never)
          )
        )
      )
      const release = Effect.asVoid(Fiber.interrupt(holder))
      yield* Effect.addFinalizer(() => release)
      const held = yield* restore(Deferred.await(acquired))
      return { held, release }
    })
  )

/** Runs a session call as the holder. */
export const asHolder = <A, E>(held: Held, effect: Effect.Effect<A, E>): Effect.Effect<A, E> =>
  Effect.provideContext(effect, held)
