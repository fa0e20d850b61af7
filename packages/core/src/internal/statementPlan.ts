/**
 * Planning a statement: the frames that run `sql` with `params` under the
 * prepared-statement policy (psycopg's `prepare_threshold`), and what to
 * remember of it once it ran. Shared by `execute`, `stream` and `pipeline`.
 */
import * as PgProtocol from "@effect/sql-pg/PgProtocol"
import * as PgTypes from "@effect/sql-pg/PgTypes"
import * as Result from "effect/Result"
import { InterfaceError, ParameterError } from "../PgError.ts"
import { toParameters } from "./parameters.ts"
import { refusal as pgbouncerRefusal } from "./pgbouncer.ts"
import type { QueryOutcome } from "./query.ts"
import { resultFormat } from "./rowReader.ts"
import type { StatementCache } from "./statementCache.ts"

const encodeBind = PgProtocol.makeBindEncoder(PgTypes.writeParameter, PgTypes.isTextFormat)
export const SYNC = PgProtocol.encodeSync()
export const EXECUTE_ALL = PgProtocol.encodeExecute({ portal: "", maxRows: 0 })
export const FLUSH = PgProtocol.encodeFlush()
const DESCRIBE_PORTAL = PgProtocol.encodeDescribe({ target: "portal", name: "" })
export const EXECUTE_SYNC: ReadonlyArray<Uint8Array> = [EXECUTE_ALL, SYNC]

/**
 * When to prepare: `auto` after `prepareThreshold` runs, `always` now,
 * `never` (no cache at all), `cached` (use a prepared statement when there is
 * one, never create one: for batches whose responses come later).
 */
export type PreparePolicy = "auto" | "always" | "never" | "cached"

/** The policy of an `ExecuteOptions.prepare`. */
export const policyOf = (prepare: boolean | undefined): PreparePolicy =>
  prepare === undefined ? "auto" : prepare ? "always" : "never"

/** The connection's settings that planning follows. */
export interface PlanSettings {
  readonly pgbouncer: boolean
  readonly prepareThreshold: number | null
}

export interface Plan {
  readonly frames: ReadonlyArray<Uint8Array>
  readonly preset: ReadonlyArray<PgProtocol.FieldDescription> | undefined
  /** Caches the statement's columns once it ran successfully (prepared statements only). */
  readonly remember: (description: ReadonlyArray<PgProtocol.FieldDescription> | undefined) => void
  /** `remember` for a QueryHandler's outcome, when there is something to remember. */
  readonly onOutcome: ((outcome: QueryOutcome) => void) | undefined
}

const noRemember = () => {}

export const nulInQuery = () => new ParameterError({ message: "the query text contains a NUL byte" })

const bindError = (cause: { readonly message: string }) =>
  new ParameterError({ message: `cannot encode parameters: ${cause.message}`, cause })

/**
 * Rewrites the result-format codes at the end of a Bind frame (`PgProtocol`
 * asks for binary everywhere): `formats` per column, or all text.
 */
const withResultFormats = (bind: Uint8Array, formats: ReadonlyArray<0 | 1> | "text"): Uint8Array => {
  if (formats === "text") {
    bind[bind.length - 1] = 0
    return bind
  }
  if (formats.every((format) => format === 1)) return bind
  const head = bind.length - 4
  const out = new Uint8Array(head + 2 + formats.length * 2)
  out.set(bind.subarray(0, head))
  const view = new DataView(out.buffer)
  view.setInt16(head, formats.length)
  formats.forEach((format, index) => view.setInt16(head + 2 + index * 2, format))
  view.setInt32(1, out.length - 1)
  return out
}

/**
 * The frames that bind `params` to `sql` (Parse when not prepared, Bind,
 * Describe when the columns are not known yet), following the
 * prepared-statement policy. Execute and Sync are left to the caller.
 */
export const planStatement = (
  cache: StatementCache,
  settings: PlanSettings,
  sql: string,
  params: ReadonlyArray<unknown>,
  policy: PreparePolicy
): Result.Result<Plan, ParameterError | InterfaceError> => {
  if (sql.includes("\u0000")) return Result.fail(nulInQuery())
  const converted = toParameters(params)
  if (Result.isFailure(converted)) return Result.fail(converted.failure)
  const parameters = converted.success
  const oids = parameters.map((parameter) => parameter.oid)
  const key = oids.length === 0 ? sql : `${sql}\u0000${oids.join(",")}`
  const frames: Array<Uint8Array> = []
  if (policy === "always" && settings.pgbouncer) {
    return Result.fail(new InterfaceError({ message: pgbouncerRefusal("a prepared statement ({ prepare: true })") }))
  }
  const cached = policy === "never" ? undefined : cache.get(key)
  try {
    if (cached !== undefined) {
      const bind = encodeBind({ portal: "", statement: cached.name, parameters })
      if (Result.isFailure(bind)) return Result.fail(bindError(bind.failure))
      for (const name of cache.takeEvicted()) {
        frames.push(PgProtocol.encodeClose({ target: "statement", name }))
      }
      frames.push(withResultFormats(bind.success, cached.formats))
      return Result.succeed({ frames, preset: cached.fields, remember: noRemember, onOutcome: undefined })
    }
    const threshold = settings.prepareThreshold
    const wanted = policy === "always" ||
      (policy === "auto" && threshold !== null && cache.countUse(key) >= threshold)
    const name = (wanted ? cache.startPreparing(key) : undefined) ?? ""
    const parse = PgProtocol.encodeParse({ name, query: sql, parameterTypes: oids })
    if (Result.isFailure(parse)) return Result.fail(bindError(parse.failure))
    const bind = encodeBind({ portal: "", statement: name, parameters })
    if (Result.isFailure(bind)) return Result.fail(bindError(bind.failure))
    for (const evicted of cache.takeEvicted()) {
      frames.push(PgProtocol.encodeClose({ target: "statement", name: evicted }))
    }
    // First runs ask for text results: the column types are not known
    // before Bind, and text decodes every type. Prepared runs get binary.
    frames.push(parse.success, withResultFormats(bind.success, "text"), DESCRIBE_PORTAL)
    const remember = name === "" ? noRemember : (description: ReadonlyArray<PgProtocol.FieldDescription> | undefined) => {
      if (!cache.finishPreparing(key, name) || description === undefined) return
      const fields = description.map((field) => ({ ...field, format: resultFormat(field.dataTypeOid) }))
      cache.set(key, { name, fields, formats: fields.map((field) => field.format) })
    }
    return Result.succeed({
      frames,
      preset: undefined,
      remember,
      onOutcome: name === ""
        ? undefined
        : (outcome: QueryOutcome) => remember(outcome.error === undefined ? outcome.description : undefined)
    })
  } catch (cause) {
    // A custom codec may throw instead of returning its failure.
    return Result.fail(bindError(cause instanceof Error ? cause : new Error(String(cause))))
  }
}
