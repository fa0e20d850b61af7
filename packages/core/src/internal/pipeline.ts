/**
 * The response to several extended-protocol statements sent in one batch
 * with a single Sync (pipeline mode, `executeMany`). Each statement gets its
 * own outcome, in order. As in PostgreSQL, an error aborts every later
 * statement of the batch (they are skipped until Sync) and, outside a
 * transaction block, rolls back the earlier ones too: one implicit
 * transaction.
 */
import type * as PgProtocol from "@effect/sql-pg/PgProtocol"
import { type DecodeError, fromDiagnostic, PipelineAborted, type StatementError } from "../PgError.ts"
import type { ProtocolContext } from "../Session.ts"
import { toDiagnostic } from "./diagnostic.ts"
import type { ResultSet } from "./query.ts"
import { RowsHandler } from "./rowsHandler.ts"

/** One statement of a batch: its SQL (for errors) and cached columns, if prepared. */
export interface PipelineSlot {
  readonly sql: string
  readonly preset: ReadonlyArray<PgProtocol.FieldDescription> | undefined
}

export type SlotOutcome =
  | { readonly _tag: "Done"; readonly result: ResultSet; readonly description: ReadonlyArray<PgProtocol.FieldDescription> | undefined }
  | { readonly _tag: "Failed"; readonly error: StatementError | DecodeError }
  | { readonly _tag: "Aborted"; readonly error: PipelineAborted }

export interface PipelineOutcome {
  readonly slots: ReadonlyArray<SlotOutcome>
  readonly status: PgProtocol.TransactionStatus
}

export class PipelineHandler extends RowsHandler<PipelineOutcome> {
  private readonly outcomes: Array<SlotOutcome> = []
  private rows: Array<ReadonlyArray<unknown>> = []

  constructor(private readonly slots: ReadonlyArray<PipelineSlot>) {
    super()
  }

  private complete(outcome: SlotOutcome): void {
    this.outcomes.push(outcome)
    this.fields = []
    this.description = undefined
    this.rows = []
    this.decodeError = undefined
  }

  protected handle(message: PgProtocol.BackendMessage<unknown>, context: ProtocolContext): boolean {
    if (this.describe(message, context, this.slots[this.outcomes.length]?.preset)) return false
    switch (message._tag) {
      case "DataRow":
        this.rows.push(message.values)
        return false
      case "CommandComplete":
      case "EmptyQueryResponse": {
        const commandTag = message._tag === "CommandComplete" ? message.commandTag : ""
        this.complete(
          this.decodeError !== undefined
            ? { _tag: "Failed", error: this.decodeError }
            : { _tag: "Done", result: { commandTag, fields: this.fields, rows: this.rows }, description: this.description }
        )
        return false
      }
      case "ErrorResponse": {
        const slot = this.slots[this.outcomes.length]
        this.complete({ _tag: "Failed", error: fromDiagnostic(toDiagnostic(message.fields), slot?.sql) })
        return false
      }
      case "ReadyForQuery": {
        context.setFieldReader(undefined)
        while (this.outcomes.length < this.slots.length) {
          this.complete({
            _tag: "Aborted",
            error: new PipelineAborted({ message: "pipeline aborted: an earlier statement of the batch failed" })
          })
        }
        this.finish({ slots: this.outcomes, status: message.status })
        return true
      }
      default:
        return false
    }
  }
}
