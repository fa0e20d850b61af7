/**
 * The COPY conversations as I/O-free response handlers (simple Query, so a
 * server error during COPY FROM ends with ReadyForQuery at once and later
 * CopyData / CopyDone / CopyFail are dropped by the server, per protocol).
 *
 * `CopyInHandler`: the answer to `COPY … FROM STDIN` — CopyInResponse, then
 * (after the client's CopyDone or CopyFail) CommandComplete or ErrorResponse,
 * then ReadyForQuery. `CopyOutHandler`: CopyOutResponse, CopyData per row,
 * CopyDone, CommandComplete, ReadyForQuery; it parses rows as they arrive
 * and pauses the socket while its consumer is behind.
 *
 * Statements that are not one COPY in the expected direction are reported
 * as misuse (psycopg's ProgrammingError); a COPY IN that arrives where it was
 * not expected is failed with CopyFail so nothing of it is committed.
 */
import type * as PgProtocol from "@effect/sql-pg/PgProtocol"
import { PgError, Session } from "@pgfx/core"
import * as Effect from "effect/Effect"
import type { RowParser } from "./decode.ts"

const { toDiagnostic } = Session

/** The row count of a `COPY n` command tag. */
export const copyCount = (tag: string | undefined): number => {
  if (tag === undefined) return 0
  const match = /^COPY (\d+)$/.exec(tag)
  return match === null ? 0 : Number(match[1])
}

const MIXED = "COPY cannot be mixed with other operations"
const NEEDS_IN = "Copy.from needs COPY … FROM STDIN"
const NEEDS_OUT = "Copy.to needs COPY … TO STDOUT"

/** State and wake-ups shared by both directions. */
abstract class CopyHandler extends Session.ResponseHandler<void> {
  /** A COPY response in the expected direction arrived. */
  sawCopy = false
  /** Results other than the COPY's (or a second COPY). */
  misuse: string | undefined
  /** The first ErrorResponse. */
  error: PgError.Diagnostic | undefined
  /** The COPY's own CommandComplete tag. */
  commandTag: string | undefined
  /** We sent CopyFail ourselves, so a 57014 that follows is ours. */
  failSent = false
  private waiter: (() => void) | undefined
  private wakeScheduled = false

  constructor(readonly query: string) {
    super()
  }

  /**
   * Wakes the waiting fiber once the messages of the current socket read are
   * all handled (a microtask later), so it finds them all at once rather
   * than one per message.
   */
  protected wake(): void {
    if (this.waiter === undefined || this.wakeScheduled) return
    this.wakeScheduled = true
    queueMicrotask(this.wakeNow)
  }

  private readonly wakeNow = (): void => {
    this.wakeScheduled = false
    const waiter = this.waiter
    if (waiter !== undefined) {
      this.waiter = undefined
      waiter()
    }
  }

  /** Completes once `condition` holds (checked now and after every message). */
  until(condition: () => boolean): Effect.Effect<void> {
    return Effect.callback<void>((resume) => {
      const check = () => {
        if (condition()) resume(Effect.void)
        else this.waiter = check
      }
      check()
      return Effect.sync(() => {
        if (this.waiter === check) this.waiter = undefined
      })
    })
  }

  override onDone(): void {
    super.onDone()
    this.wake()
  }

  override onClose(error: PgError.ConnectionError | PgError.ProtocolError): void {
    super.onClose(error)
    this.wake()
  }

  protected otherResult(what: string): void {
    this.misuse ??= this.sawCopy ? MIXED : what
  }

  /**
   * The messages both directions treat alike: the COPY's CommandComplete
   * (when `ownTag`: it started, and its data is over), any other statement's
   * result as misuse (`needs` says what was expected), the first error.
   */
  protected result(message: PgProtocol.BackendMessage<unknown>, needs: string, ownTag: boolean): void {
    switch (message._tag) {
      case "CommandComplete":
        if (ownTag && this.commandTag === undefined) this.commandTag = message.commandTag
        else this.otherResult(`${needs}; the statement returned ${message.commandTag}`)
        break
      case "RowDescription":
      case "EmptyQueryResponse":
        this.otherResult(`${needs}; the statement is not a COPY`)
        break
      case "ErrorResponse":
        this.error ??= toDiagnostic(message.fields)
        break
    }
  }

  /** The failure this conversation ended with, once it is done, or `undefined`. */
  outcomeError(): PgError.PgError | undefined {
    const error = this.error
    if (error !== undefined && !(this.failSent && error.sqlState === "57014")) {
      return PgError.fromDiagnostic(error, this.query)
    }
    if (this.misuse !== undefined) return new PgError.InterfaceError({ message: this.misuse })
    return undefined
  }
}

/** The answer to `COPY … FROM STDIN`. */
export class CopyInHandler extends CopyHandler {
  columns = 0
  format = 0

  /** Started (CopyInResponse), or over without one. */
  get settled(): boolean {
    return this.sawCopy || this.done
  }

  protected handle(message: PgProtocol.BackendMessage<unknown>, context: Session.ProtocolContext): boolean {
    switch (message._tag) {
      case "CopyInResponse":
        if (this.sawCopy || this.misuse !== undefined) {
          this.misuse = MIXED
          this.failSent = true
          context.write(Session.encodeCopyFail(MIXED))
          break
        }
        this.sawCopy = true
        this.columns = message.columnFormats.length
        this.format = message.format
        break
      case "CopyOutResponse":
        this.otherResult(`${NEEDS_IN}; the statement is a COPY TO STDOUT`)
        break
      case "ReadyForQuery":
        this.finish(undefined)
        return true
      default:
        this.result(message, NEEDS_IN, this.sawCopy)
    }
    this.wake()
    return false
  }
}

/** How a COPY TO's data is delivered. */
export type Delivery =
  /** Parsed rows. */
  | { readonly _tag: "Rows"; readonly parser: (columns: number, format: number) => RowParser | PgError.PgError }
  /** One copied block per CopyData message (psycopg's `read()`). */
  | { readonly _tag: "Blocks" }
  /** Messages packed into chunks of about `size` bytes. */
  | { readonly _tag: "Chunks"; readonly size: number }

/** Rows (or bytes) buffered before the socket is paused. */
const HIGH_WATER_ITEMS = 16_384
const HIGH_WATER_BYTES = 1024 * 1024

/** The answer to `COPY … TO STDOUT`, delivered as it arrives. */
export class CopyOutHandler extends CopyHandler {
  /** Items not taken by the consumer yet. */
  items: Array<unknown> = []
  private itemBytes = 0
  /** A client-side failure (bad data, wrong type count): the rest is discarded. */
  failure: PgError.PgError | undefined
  /** Stop delivering: the consumer went away; the rest is drained and dropped. */
  discarding = false
  /** The server finished sending data (CopyDone). */
  dataEnded = false
  columns = 0
  /** CopyData messages received. */
  messages = 0
  /** CopyData payload bytes received. */
  bytes = 0
  private parser: RowParser | undefined
  private carry: Uint8Array | undefined
  private chunk: Buffer | undefined
  private chunkUsed = 0
  private context: Session.ProtocolContext | undefined
  private paused = false

  constructor(query: string, private readonly delivery: Delivery) {
    super(query)
  }

  protected handle(message: PgProtocol.BackendMessage<unknown>, context: Session.ProtocolContext): boolean {
    this.context = context
    switch (message._tag) {
      case "CopyData":
        if (!this.sawCopy || this.discarding || this.failure !== undefined || this.misuse !== undefined) return false
        this.messages++
        this.bytes += message.data.length
        this.receive(message.data)
        if (this.items.length >= HIGH_WATER_ITEMS || this.itemBytes >= HIGH_WATER_BYTES) this.pauseSocket()
        break
      case "CopyOutResponse":
        if (this.sawCopy || this.misuse !== undefined) {
          this.misuse = MIXED
          break
        }
        this.sawCopy = true
        this.columns = message.columnFormats.length
        if (this.delivery._tag === "Rows") {
          const parser = this.delivery.parser(this.columns, message.format)
          if ("parse" in parser) this.parser = parser
          else this.failure = parser
        }
        break
      case "CopyDone":
        if (this.sawCopy && !this.dataEnded) {
          this.dataEnded = true
          this.endOfData()
        }
        break
      case "CopyInResponse":
        this.otherResult(`${NEEDS_OUT}; the statement is a COPY FROM STDIN`)
        this.failSent = true
        context.write(Session.encodeCopyFail(this.misuse ?? MIXED))
        break
      case "ReadyForQuery":
        this.resumeSocket()
        this.finish(undefined)
        return true
      default:
        this.result(message, NEEDS_OUT, this.sawCopy && this.dataEnded)
    }
    this.wake()
    return false
  }

  private receive(data: Uint8Array): void {
    switch (this.delivery._tag) {
      case "Blocks":
        this.items.push(data.slice())
        this.itemBytes += data.length
        return
      case "Chunks":
        return this.pack(data, this.delivery.size)
      case "Rows":
        return this.parse(data)
    }
  }

  private parse(data: Uint8Array): void {
    const parser = this.parser
    if (parser === undefined) return
    let bytes = data
    if (this.carry !== undefined) {
      bytes = new Uint8Array(this.carry.length + data.length)
      bytes.set(this.carry)
      bytes.set(data, this.carry.length)
      this.carry = undefined
    }
    const before = this.items.length
    try {
      const used = parser.parse(bytes, 0, bytes.length, this.items as Array<ReadonlyArray<unknown>>)
      if (used < bytes.length) this.carry = bytes.slice(used)
    } catch (error) {
      this.failure = PgError.isPgError(error)
        ? error
        : new PgError.DecodeError({ message: `cannot parse COPY data: ${String(error)}`, column: 0, typeOid: 0, cause: error })
    }
    this.itemBytes += (this.items.length - before) * 64
  }

  private pack(data: Uint8Array, size: number): void {
    let chunk = this.chunk
    if (chunk !== undefined && this.chunkUsed + data.length > chunk.length) {
      this.items.push(chunk.subarray(0, this.chunkUsed))
      this.itemBytes += this.chunkUsed
      chunk = undefined
    }
    if (chunk === undefined) {
      chunk = Buffer.allocUnsafe(Math.max(size, data.length))
      this.chunk = chunk
      this.chunkUsed = 0
    }
    chunk.set(data, this.chunkUsed)
    this.chunkUsed += data.length
  }

  private endOfData(): void {
    if (this.chunk !== undefined && this.chunkUsed > 0) {
      this.items.push(this.chunk.subarray(0, this.chunkUsed))
      this.chunk = undefined
    }
    if (this.failure === undefined && this.carry !== undefined && this.carry.length > 0) {
      this.failure = new PgError.DecodeError({
        message: "the COPY data ended inside a row",
        column: 0,
        typeOid: 0
      })
    }
  }

  /** Takes what is buffered and lets the socket flow again. */
  take(): Array<unknown> {
    const items = this.items
    this.items = []
    this.itemBytes = 0
    this.resumeSocket()
    return items
  }

  private pauseSocket(): void {
    if (!this.paused && this.context !== undefined) {
      this.paused = true
      this.context.pause()
    }
  }

  resumeSocket(): void {
    if (this.paused && this.context !== undefined) {
      this.paused = false
      this.context.resume()
    }
  }

  /** Drops what is buffered and everything still to come. */
  discard(): void {
    this.discarding = true
    this.items = []
    this.itemBytes = 0
    this.resumeSocket()
  }

  override outcomeError(): PgError.PgError | undefined {
    return this.failure ?? super.outcomeError()
  }
}
