/**
 * What every handler that receives rows shares: learning a result's columns
 * (RowDescription, or the cached description of a prepared statement at
 * BindComplete), installing the field reader, and keeping the first value
 * that could not be decoded.
 */
import type * as PgProtocol from "@effect/sql-pg/PgProtocol"
import type { DecodeError } from "../PgError.ts"
import { type ProtocolContext, ResponseHandler } from "../Session.ts"
import { decodeError, fieldReader } from "./rowReader.ts"

export abstract class RowsHandler<A> extends ResponseHandler<A> {
  /** Columns of the result being received. */
  fields: ReadonlyArray<PgProtocol.FieldDescription> = []
  /** The RowDescription (or NoData: empty) the server sent, for the statement cache. */
  description: ReadonlyArray<PgProtocol.FieldDescription> | undefined
  protected decodeError: DecodeError | undefined
  /** Whether the current result's columns are known (a DataRow before that is a protocol violation). */
  protected described = false

  /** The first value of the result that could not be decoded (the field reader's sink). */
  reportDecodeError(column: number, cause: unknown): void {
    this.decodeError ??= decodeError(this.fields, column, cause)
  }

  protected setFields(context: ProtocolContext, fields: ReadonlyArray<PgProtocol.FieldDescription>): void {
    this.fields = fields
    this.described = true
    context.setFieldReader(fields.length === 0 ? undefined : fieldReader(fields, this))
  }

  /**
   * Handles the messages that describe columns; returns whether `message`
   * was one. `preset` is the cached description of a prepared statement.
   */
  protected describe(
    message: PgProtocol.BackendMessage<unknown>,
    context: ProtocolContext,
    preset: ReadonlyArray<PgProtocol.FieldDescription> | undefined
  ): boolean {
    switch (message._tag) {
      case "BindComplete":
        if (preset !== undefined) this.setFields(context, preset)
        return true
      case "RowDescription":
        this.description = message.fields
        this.setFields(context, message.fields)
        return true
      case "NoData":
        this.description = []
        return true
      default:
        return false
    }
  }
}
