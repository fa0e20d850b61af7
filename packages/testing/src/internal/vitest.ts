/**
 * Access to vitest from code that must also run without it: the module is imported lazily, and
 * every accessor answers `undefined` outside a vitest worker.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import type { ProvidedContext } from "vitest"
import type {} from "./providedContext.ts"

type VitestModule = typeof import("vitest")

let loading: Promise<VitestModule | undefined> | undefined

/** The vitest module when this process is a vitest worker (and vitest is installed). */
export const vitest: Effect.Effect<VitestModule | undefined> = Effect.promise(() =>
  loading ??= import("vitest").then(
    (module) => {
      try {
        // outside a worker, vitest's state is missing and its accessors throw
        module.expect.getState()
        return module
      } catch {
        return undefined
      }
    },
    () => undefined
  )
)

/** A value provided by the global setup / project config, when there is one. */
export const injected = <K extends keyof ProvidedContext>(key: K): Effect.Effect<ProvidedContext[K] | undefined> =>
  Effect.map(vitest, (module) => {
    if (module === undefined) return undefined
    try {
      return module.inject(key)
    } catch {
      return undefined
    }
  })

/** Path of the test file running now, when vitest knows it. */
export const currentTestFile: Effect.Effect<string | undefined> = Effect.map(vitest, (module) => {
  try {
    return module?.expect.getState().testPath ?? undefined
  } catch {
    return undefined
  }
})
