/**
 * Reading one statement's rows from a portal in batches (Execute with a row
 * limit), as an I/O-free handler. The next batch is requested as soon as one
 * arrives, so the server works while the consumer does; at most two batches
 * are buffered. After the last row (or an error) the handler itself sends
 * Sync, and it is done at ReadyForQuery.
 */
import * as PgProtocol from "@effect/sql-pg/PgProtocol"
import * as Effect from "effect/Effect"
import {
  type ConnectionError,
  type DecodeError,
  fromDiagnostic,
  type ProtocolError,
  type StatementError
} from "../PgError.ts"
import type { ProtocolContext } from "../Session.ts"
import { toDiagnostic } from "./diagnostic.ts"
import { RowsHandler } from "./rowsHandler.ts"

const SYNC = PgProtocol.encodeSync()
const FLUSH = PgProtocol.encodeFlush()

type Batch = ReadonlyArray<ReadonlyArray<unknown>>

export class PortalHandler extends RowsHandler<void> {
  readonly executeFrame: Uint8Array
  /** Complete batches not yet taken by the consumer. */
  private readonly ready: Array<Batch> = []
  private rows: Array<ReadonlyArray<unknown>> = []
  /** An Execute is in flight: the server is producing rows. */
  private running = true
  /** CommandComplete seen: no more rows. */
  private complete = false
  private stopping = false
  private error: StatementError | undefined
  private wake: (() => void) | undefined
  private context: ProtocolContext | undefined

  constructor(
    readonly query: string,
    private readonly preset: ReadonlyArray<PgProtocol.FieldDescription> | undefined,
    batchSize: number
  ) {
    super()
    this.executeFrame = PgProtocol.encodeExecute({ portal: "", maxRows: batchSize })
  }

  private signal(): void {
    const wake = this.wake
    this.wake = undefined
    wake?.()
  }

  protected handle(message: PgProtocol.BackendMessage<unknown>, context: ProtocolContext): boolean {
    this.context = context
    if (this.describe(message, context, this.preset)) return false
    switch (message._tag) {
      case "DataRow":
        if (!this.stopping) this.rows.push(message.values)
        return false
      case "PortalSuspended":
        this.running = false
        this.pushBatch()
        if (this.stopping) context.write(SYNC)
        else if (this.ready.length < 2) this.requestMore(context)
        this.signal()
        return false
      case "CommandComplete":
      case "EmptyQueryResponse":
        this.running = false
        this.complete = true
        this.pushBatch()
        context.write(SYNC)
        this.signal()
        return false
      case "ErrorResponse":
        this.running = false
        this.error = fromDiagnostic(toDiagnostic(message.fields), this.query)
        context.write(SYNC)
        return false
      case "ReadyForQuery":
        context.setFieldReader(undefined)
        this.finish(undefined)
        return true
      default:
        return false
    }
  }

  override onDone(): void {
    super.onDone()
    this.signal()
  }

  override onClose(error: ConnectionError | ProtocolError): void {
    super.onClose(error)
    this.signal()
  }

  private pushBatch(): void {
    if (this.rows.length > 0 && !this.stopping) this.ready.push(this.rows)
    this.rows = []
  }

  private requestMore(context: ProtocolContext): void {
    this.running = true
    context.write(this.executeFrame)
    context.write(FLUSH)
  }

  /**
   * The next batch, or `undefined` after the last one; fails with the
   * statement's error once the response is drained.
   */
  readonly next: Effect.Effect<Batch | undefined, StatementError | DecodeError | ConnectionError | ProtocolError> =
    Effect.suspend(() => {
      const batch = this.ready.shift()
      if (batch !== undefined) {
        if (!this.running && !this.complete && this.error === undefined && this.context !== undefined) {
          this.requestMore(this.context)
        }
        return Effect.succeed(batch)
      }
      if (this.done || this.complete || this.error !== undefined) {
        return Effect.flatMap(this.await, () => {
          const error = this.error ?? this.decodeError
          return error === undefined ? Effect.succeed(undefined) : Effect.fail(error)
        })
      }
      return Effect.flatMap(
        Effect.callback<void>((resume) => {
          this.wake = () => resume(Effect.void)
          return Effect.sync(() => {
            this.wake = undefined
          })
        }),
        () => this.next
      )
    })

  /**
   * Starts closing the portal. Returns `true` when that needs no cancel:
   * the server is waiting for us (Sync sent now), or will be after a bounded
   * batch; `false` when an unbounded Execute may be running.
   */
  stop(context: ProtocolContext): boolean {
    if (this.stopping) return true
    this.stopping = true
    this.ready.length = 0
    if (this.complete || this.error !== undefined) return true
    if (!this.running) {
      context.write(SYNC)
      return true
    }
    // An Execute is in flight: its batch is bounded, so let it end and Sync then.
    return true
  }
}
