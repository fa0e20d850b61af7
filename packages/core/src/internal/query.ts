/**
 * The response side of a simple or extended query, as an I/O-free handler:
 * it collects result sets, the first error, notices and the final
 * transaction status, and completes on ReadyForQuery.
 */
import type * as PgProtocol from "@effect/sql-pg/PgProtocol"
import {
  type DecodeError,
  type Diagnostic,
  fromDiagnostic,
  InterfaceError,
  ParameterError,
  ProtocolError,
  type StatementError
} from "../PgError.ts"
import type { ProtocolContext } from "../Session.ts"
import { encodeCopyFail } from "./frontend.ts"
import { toDiagnostic } from "./diagnostic.ts"
import { RowsHandler } from "./rowsHandler.ts"

/** One statement's result. */
export interface ResultSet {
  /** The full command tag, e.g. `INSERT 0 3`. */
  readonly commandTag: string
  readonly fields: ReadonlyArray<PgProtocol.FieldDescription>
  readonly rows: Array<ReadonlyArray<unknown>>
}

export interface QueryOutcome {
  readonly results: ReadonlyArray<ResultSet>
  readonly error: StatementError | ParameterError | DecodeError | InterfaceError | undefined
  readonly notices: ReadonlyArray<Diagnostic>
  readonly status: PgProtocol.TransactionStatus
  /** The row description seen for the (single) statement, for the statement cache. */
  readonly description: ReadonlyArray<PgProtocol.FieldDescription> | undefined
}

/** Splits a command tag into its command and row count (`INSERT 0 3` → `INSERT`, 3). */
export const parseCommandTag = (tag: string): { command: string; rowCount: number | undefined } => {
  // statements in a loop repeat their tag (`SELECT 1`): the last one parsed is kept
  if (tag === lastTag) return lastParsed
  lastParsed = parseTag(tag)
  lastTag = tag
  return lastParsed
}

let lastTag = ""
let lastParsed: { command: string; rowCount: number | undefined } = { command: "", rowCount: undefined }

const parseTag = (tag: string): { command: string; rowCount: number | undefined } => {
  const space = tag.indexOf(" ")
  if (space < 0) return { command: tag, rowCount: undefined }
  const command = tag.slice(0, space)
  const last = tag.lastIndexOf(" ")
  const count = Number(tag.slice(last + 1))
  const counted = command === "SELECT" || command === "INSERT" || command === "UPDATE" || command === "DELETE" ||
    command === "MERGE" || command === "FETCH" || command === "MOVE" || command === "COPY"
  return { command, rowCount: counted && Number.isFinite(count) ? count : undefined }
}

export class QueryHandler extends RowsHandler<QueryOutcome> {
  private readonly results: Array<ResultSet> = []
  private rows: Array<ReadonlyArray<unknown>> = []
  private error: QueryOutcome["error"]

  /**
   * @param query the SQL, attached to server errors
   * @param preset the cached row description of a prepared statement, whose
   *   Bind carries no Describe
   * @param onOutcome sees the outcome as it arrives, whether or not anybody
   *   still awaits it (the statement cache learns of an interrupted caller's
   *   Parse too)
   */
  constructor(
    readonly query: string,
    private readonly preset: ReadonlyArray<PgProtocol.FieldDescription> | undefined,
    private readonly onOutcome?: (outcome: QueryOutcome) => void
  ) {
    super()
  }

  private endResult(commandTag: string): void {
    this.results.push({ commandTag, fields: this.fields, rows: this.rows })
    this.fields = []
    this.rows = []
    this.described = false
  }

  protected handle(message: PgProtocol.BackendMessage<unknown>, context: ProtocolContext): boolean {
    if (this.describe(message, context, this.preset)) return false
    switch (message._tag) {
      case "DataRow":
        // libpq: "server sent data ("D" message) without prior row description"
        if (!this.described) throw new ProtocolError({ message: "the server sent a DataRow without a RowDescription" })
        this.rows.push(message.values)
        return false
      case "CommandComplete":
        this.endResult(message.commandTag)
        return false
      case "EmptyQueryResponse":
        this.endResult("")
        return false
      case "ErrorResponse": {
        const diagnostic = toDiagnostic(message.fields)
        this.fields = []
        this.rows = []
        this.described = false
        // 08P01 from Bind is the server refusing our parameters (count or
        // format); the session itself is fine.
        this.error ??= diagnostic.sqlState === "08P01" && diagnostic.severityNonLocalized !== "FATAL"
          ? new ParameterError({ message: diagnostic.message, cause: fromDiagnostic(diagnostic, this.query) })
          : fromDiagnostic(diagnostic, this.query)
        return false
      }
      case "CopyInResponse":
        // COPY needs @pgfx/copy; refuse it without breaking the session.
        this.error ??= copyRefused()
        context.write(encodeCopyFail("COPY FROM STDIN is not supported by execute; use @pgfx/copy"))
        return false
      case "CopyOutResponse":
        this.error ??= copyRefused()
        return false
      case "ReadyForQuery":
        context.setFieldReader(undefined)
        const outcome: QueryOutcome = {
          results: this.results,
          error: this.error ?? this.decodeError,
          notices: this.notices,
          status: message.status,
          description: this.description
        }
        this.onOutcome?.(outcome)
        this.finish(outcome)
        return true
      default:
        // ParseComplete, CloseComplete, ParameterDescription, PortalSuspended,
        // CopyData, CopyDone, ParameterStatus: nothing to collect.
        return false
    }
  }
}

const copyRefused = () =>
  new InterfaceError({ message: "COPY cannot run through execute; use @pgfx/copy (Copy.from / Copy.to)" })
