/**
 * The main job: the examples in order, on `DATABASE_URL` or an embedded
 * PostgreSQL when it is unset.
 */
import { Console, Effect } from "effect"
import { program as cursorBasics } from "./01-cursor-basics.ts"
import { runMain } from "./run.ts"

const demo = (url: string) =>
  Effect.gen(function*() {
    yield* Console.log("== 1. cursor basics (the seed's first snippet)")
    yield* cursorBasics(url)
  })

runMain(demo)
