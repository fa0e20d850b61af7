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
import { type ProtocolContext, ResponseHandler } from "../Session.ts"
import { toDiagnostic } from "./diagnostic.ts"
import type { ResultSet } from "./query.ts"
import { makeFieldReader } from "./rowReader.ts"

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

export class PipelineHandler extends ResponseHandler<PipelineOutcome> {
  private readonly outcomes: Array<SlotOutcome> = []
  private fields: ReadonlyArray<PgProtocol.FieldDescription> = []
  private description: ReadonlyArray<PgProtocol.FieldDescription> | undefined
  private rows: Array<ReadonlyArray<unknown>> = []
  private decodeError: DecodeError | undefined

  constructor(private readonly slots: ReadonlyArray<PipelineSlot>) {
    super()
  }

  private readonly onDecodeError = (error: DecodeError) => {
    this.decodeError ??= error
  }

  private setFields(context: ProtocolContext, fields: ReadonlyArray<PgProtocol.FieldDescription>): void {
    this.fields = fields
    context.setFieldReader(fields.length === 0 ? undefined : makeFieldReader(fields, this.onDecodeError))
  }

  private complete(outcome: SlotOutcome): void {
    this.outcomes.push(outcome)
    this.fields = []
    this.description = undefined
    this.rows = []
    this.decodeError = undefined
  }

  protected handle(message: PgProtocol.BackendMessage<unknown>, context: ProtocolContext): boolean {
    switch (message._tag) {
      case "DataRow":
        this.rows.push(message.values)
        return false
      case "BindComplete": {
        const preset = this.slots[this.outcomes.length]?.preset
        if (preset !== undefined) this.setFields(context, preset)
        return false
      }
      case "RowDescription":
        this.description = message.fields
        this.setFields(context, message.fields)
        return false
      case "NoData":
        this.description = []
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
