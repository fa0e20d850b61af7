/**
 * The COPY statement and its data format: the format the caller names is
 * checked against the one the statement names, and when the statement ends
 * at `STDIN` / `STDOUT` with no options of its own, the options are appended
 * (`WITH (FORMAT csv, HEADER true, DELIMITER ';')`).
 */
import { PgError } from "@pgfx/core"
import * as Result from "effect/Result"
import { type Dialect, makeDialect } from "./textEncode.ts"

/** The data formats of COPY. */
export type Format = "text" | "csv" | "binary"

/** The format options a caller may give. */
export interface FormatSettings {
  readonly format?: Format | undefined
  readonly delimiter?: string | undefined
  readonly null?: string | undefined
  readonly quote?: string | undefined
  readonly escape?: string | undefined
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
export const plan = (sql: string, settings: FormatSettings | undefined): Result.Result<Plan, PgError.PgError> => {
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
