/**
 * Turns the raw fields of an ErrorResponse / NoticeResponse into a
 * `Diagnostic`.
 */
import type * as PgProtocol from "@effect/sql-pg/PgProtocol"
import type { Diagnostic } from "../PgError.ts"

const int = (text: string | undefined): number | undefined => {
  if (text === undefined) return undefined
  const value = Number(text)
  return Number.isInteger(value) ? value : undefined
}

export const toDiagnostic = (fields: PgProtocol.ErrorFields): Diagnostic => ({
  severity: fields.severity ?? fields.severityUnlocalized ?? "ERROR",
  severityNonLocalized: fields.severityUnlocalized,
  sqlState: fields.code ?? "",
  message: fields.message ?? "",
  detail: fields.detail,
  hint: fields.hint,
  position: int(fields.position),
  internalPosition: int(fields.internalPosition),
  internalQuery: fields.internalQuery,
  where: fields.where,
  schema: fields.schema,
  table: fields.table,
  column: fields.column,
  dataType: fields.dataType,
  constraint: fields.constraint,
  file: fields.file,
  line: int(fields.line),
  routine: fields.routine
})

/** FATAL and PANIC end the session; ERROR ends only the statement. */
export const isSessionFatal = (diagnostic: Diagnostic): boolean => {
  const severity = diagnostic.severityNonLocalized ?? diagnostic.severity
  return severity === "FATAL" || severity === "PANIC"
}
