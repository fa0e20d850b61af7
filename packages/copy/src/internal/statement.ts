/**
 * The COPY statement and its data format: the format the caller names is
 * checked against the one the statement names, and when the statement ends
 * at `STDIN` / `STDOUT` with no options of its own, the options are appended
 * (`WITH (FORMAT csv, HEADER true, DELIMITER ';')`).
 */
import { PgError } from "@pgfx/core"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import { type Dialect, makeDialect } from "./dialect.ts"

/**
 * The data format of a COPY: `text` (PostgreSQL's default), `csv` or
 * `binary`.
 *
 * @since 0.1.0
 */
export type Format = "text" | "csv" | "binary"

/**
 * Format options. With `format: "csv"` the CSV options apply; `header` is
 * `true` (the data has a header line) or, for `writeRow`, the column names
 * to write as header. `delimiter` and `null` also apply to `text`.
 *
 * @since 0.1.0
 */
export interface FormatOptions {
  /** `text` (default), `csv` or `binary`. */
  readonly format?: Format | undefined
  /** Field separator: tab in text, `,` in CSV. */
  readonly delimiter?: string | undefined
  /** How NULL is written: `\N` in text, an unquoted empty field in CSV. */
  readonly null?: string | undefined
  /** CSV quote character (default `"`). */
  readonly quote?: string | undefined
  /** CSV escape character inside quotes (default: the quote, doubled). */
  readonly escape?: string | undefined
  /** CSV: `true` when the data has a header line; for `writeRow`, the names to write as header. */
  readonly header?: boolean | ReadonlyArray<string> | undefined
}

export interface Plan {
  readonly sql: string
  readonly format: Format
  readonly dialect: Dialect
  readonly header: boolean | ReadonlyArray<string>
}

const endsAtStdio = /\b(?:stdin|stdout)\s*;?\s*$/i
const formatOption = /\bformat\s+'?(binary|csv|text)\b/i
const legacyFormat = /\b(?:stdin|stdout)\b[\s\S]*?\b(binary|csv)\b/i

const headerOption = /\b(?:stdin|stdout)\b[\s\S]*\bheader\b(?!\s+(?:false|off|0)\b)/i

/** The format a statement names itself, if it names one. */
export const sniffFormat = (sql: string): Format | undefined => {
  const named = formatOption.exec(sql) ?? legacyFormat.exec(sql)
  return named === null ? undefined : (named[1].toLowerCase() as Format)
}

const literal = (text: string): string => `E'${text.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`

const usage = (message: string) => Result.fail(new PgError.InterfaceError({ message }))

const singleByte = (name: string, value: string | undefined): string | undefined => {
  if (value === undefined) return undefined
  if (value.length !== 1 || value.charCodeAt(0) > 0x7f || value === "\n" || value === "\r") {
    return `${name} must be a single one-byte character, got ${JSON.stringify(value)}`
  }
  return undefined
}

/** Validates the options and settles the statement text and dialect. */
export const plan = (sql: string, settings: FormatOptions | undefined): Result.Result<Plan, PgError.PgError> => {
  const options = settings ?? {}
  if (sql.includes("\u0000")) return Result.fail(new PgError.ParameterError({ message: "the query text contains a NUL byte" }))
  const named = sniffFormat(sql)
  if (named !== undefined && options.format !== undefined && named !== options.format) {
    return usage(`the statement says FORMAT ${named} but the options say format "${options.format}"`)
  }
  const format: Format = options.format ?? named ?? "text"
  const problem = singleByte("delimiter", options.delimiter) ?? singleByte("quote", options.quote) ??
    singleByte("escape", options.escape)
  if (problem !== undefined) return usage(problem)
  if (format !== "csv" && (options.quote !== undefined || options.escape !== undefined)) {
    return usage("quote and escape are CSV options")
  }
  if (format === "binary" && (options.delimiter !== undefined || options.null !== undefined || options.header)) {
    return usage("delimiter, null and header are not binary options")
  }
  if (options.null !== undefined && /[\r\n]/.test(options.null)) return usage("the NULL string cannot contain a newline")
  // A statement with its own options may ask for a header line itself.
  const header = options.header ?? (named !== undefined && headerOption.test(sql))
  const extras: Array<string> = []
  if (header !== false) extras.push("HEADER true")
  if (options.delimiter !== undefined) extras.push(`DELIMITER ${literal(options.delimiter)}`)
  if (options.null !== undefined) extras.push(`NULL ${literal(options.null)}`)
  if (options.quote !== undefined) extras.push(`QUOTE ${literal(options.quote)}`)
  if (options.escape !== undefined) extras.push(`ESCAPE ${literal(options.escape)}`)
  let text = sql
  if (named === undefined && (format !== "text" || extras.length > 0)) {
    if (!endsAtStdio.test(sql)) {
      return usage(
        "the statement has options of its own: name the format in it (FORMAT …) or end it at STDIN / STDOUT so pgfx can add the options"
      )
    }
    text = `${sql.replace(/\s*;?\s*$/, "")} WITH (FORMAT ${format}${extras.map((extra) => `, ${extra}`).join("")})`
  }
  const dialect = makeDialect({
    csv: format === "csv",
    delimiter: options.delimiter,
    quote: options.quote,
    escape: options.escape,
    null: options.null
  })
  return Result.succeed({ sql: text, format, dialect, header })
}

/** `plan` as an effect, for the constructors that fail with its error. */
export const planOrFail = (sql: string, settings: FormatOptions | undefined): Effect.Effect<Plan, PgError.PgError> => {
  const planned = plan(sql, settings)
  return Result.isSuccess(planned) ? Effect.succeed(planned.success) : Effect.fail(planned.failure)
}
