/**
 * Runs an example: against `DATABASE_URL`, or an embedded PostgreSQL
 * started for the run and removed afterwards.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect } from "effect"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { withEmbeddedServer } from "../test/embedded.ts"

/** Whether the module at `url` is the program node was started with. */
export const isMain = (url: string): boolean =>
  process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(url)

export const runMain = <A, E>(program: (url: string) => Effect.Effect<A, E>): void =>
  NodeRuntime.runMain(Effect.asVoid(withEmbeddedServer(program)))
