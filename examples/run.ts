/**
 * Runs an example: against `DATABASE_URL`, or an embedded PostgreSQL
 * started for the run and removed afterwards.
 *
 * With `DATABASE_URL` the examples work in a scratch schema
 * (`pgfx_examples_<random>`, first on the `search_path` of every connection
 * they open) that is dropped at the end, so tables of yours named `test`,
 * `items`, … are never touched.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Cause, Console, Effect } from "effect"
import type { Scope } from "effect"
import { randomBytes } from "node:crypto"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { Connection } from "@pgfx/core"
import { embeddedServer, type EmbeddedServer } from "../test/embedded.ts"
import { describe } from "./logging.ts"

/** Whether the module at `url` is the program node was started with. */
export const isMain = (url: string): boolean =>
  process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(url)

/** Where the examples run. */
export interface Database {
  /** The URL to give the examples. */
  readonly url: string
  /** The embedded server, when `DATABASE_URL` is unset. */
  readonly server: EmbeddedServer | undefined
  /** The scratch schema, with `DATABASE_URL`. */
  readonly schema: string | undefined
}

/** `url` with `search_path` set to `schema` for every session (libpq's `options`). */
export const withSearchPath = (url: string, schema: string): string => {
  const setting = `-c search_path=${schema}`
  if (/^postgres(ql)?:\/\//.test(url)) {
    // libpq decodes %XX in URL parameters, not "+": build the query by hand
    const [head, query = ""] = url.split("?", 2)
    const params = query === "" ? [] : query.split("&")
    const existing = params.find((param) => param.startsWith("options="))
    const options = existing === undefined ? setting : `${decodeURIComponent(existing.slice(8))} ${setting}`
    const others = params.filter((param) => param !== existing)
    return `${head}?${[...others, `options=${encodeURIComponent(options)}`].join("&")}`
  }
  return `${url} options='${setting}'`
}

/**
 * `DATABASE_URL` (with a scratch schema dropped when the scope closes) or an
 * embedded PostgreSQL 18 removed when the scope closes.
 */
export const database: Effect.Effect<Database, unknown, Scope.Scope> = Effect.suspend((): Effect.Effect<
  Database,
  unknown,
  Scope.Scope
> => {
  const fromEnv = process.env.DATABASE_URL
  if (fromEnv === undefined || fromEnv === "") {
    return Effect.map(embeddedServer({ label: "pgfx-demo" }), (server) => ({ url: server.url, server, schema: undefined }))
  }
  const schema = `pgfx_examples_${randomBytes(4).toString("hex")}`
  const admin = (sql: string) => Effect.scoped(Effect.flatMap(Connection.connect(fromEnv), (conn) => conn.execute(sql)))
  return Effect.acquireRelease(
    Effect.as(admin(`CREATE SCHEMA ${schema}`), { url: withSearchPath(fromEnv, schema), server: undefined, schema }),
    () => Effect.ignore(admin(`DROP SCHEMA ${schema} CASCADE`))
  )
})

/** A failure as a few readable lines: the error's tag and message, and PostgreSQL's detail and hint. */
export const explain = (cause: Cause.Cause<unknown>): string => {
  const error = Cause.squash(cause)
  const lines = [describe(error)]
  if (typeof error === "object" && error !== null) {
    const { detail, hint } = error as { detail?: unknown; hint?: unknown }
    if (typeof detail === "string") lines.push(`  detail: ${detail}`)
    if (typeof hint === "string") lines.push(`  hint: ${hint}`)
  }
  return lines.join("\n")
}

/**
 * Runs `effect` as the main program: Ctrl-C interrupts it (everything is
 * released), and a failure prints a readable message (no stack dump) and
 * exits with status 1.
 */
export const runEffect = <A, E>(effect: Effect.Effect<A, E>): void =>
  NodeRuntime.runMain(
    effect.pipe(
      Effect.asVoid,
      Effect.onInterrupt(() => Console.error("\ninterrupted: everything opened is being closed")),
      Effect.catchCause((cause) =>
        Cause.hasInterruptsOnly(cause)
          ? Effect.failCause(cause)
          : Effect.andThen(Console.error(`\nerror: ${explain(cause)}`), Effect.failCause(cause))
      )
    ),
    { disableErrorReporting: true }
  )

/** Runs `program` with {@link database}'s URL, as {@link runEffect} does. */
export const runMain = <A, E>(program: (url: string) => Effect.Effect<A, E>): void =>
  runEffect(Effect.scoped(Effect.flatMap(database, (db) => program(db.url))))
