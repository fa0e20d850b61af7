/**
 * Every example runs against a fresh database, so none can rot.
 */
import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { program as cursorBasics } from "../examples/01-cursor-basics.ts"
import { TestDatabase } from "./harness.ts"

layer(TestDatabase.layer, { excludeTestServices: true })("examples", (it) => {
  it.effect("1. cursor basics prints the seed's row", () =>
    Effect.gen(function*() {
      const first = yield* cursorBasics(yield* TestDatabase.url)
      expect(first).toEqual([1, 100, "abc'def"])
    }))
})
