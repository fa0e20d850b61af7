/**
 * The one module that owns a connection's socket after it is open.
 *
 * Requests are written whole; their responses arrive in order, so each
 * request registers a `ProtocolHandler` in a FIFO and every backend message goes
 * to the handler at its head until that handler says it is done (normally on
 * its ReadyForQuery). This keeps the protocol conversations I/O-free: a
 * handler sees messages, may ask to write, and reports completion.
 *
 * Asynchronous messages (NotificationResponse, ParameterStatus, and notices
 * outside a request) go to the connection's hooks instead.
 */
import * as PgProtocol from "@effect/sql-pg/PgProtocol"
import * as Effect from "effect/Effect"
import type * as net from "node:net"
import { ConnectionError, type Diagnostic, ProtocolError } from "../PgError.ts"
import type { ProtocolContext, ProtocolHandler } from "../Session.ts"
import { isSessionFatal, toDiagnostic } from "./diagnostic.ts"

export interface WireHooks {
  readonly onNotification: (message: PgProtocol.NotificationResponse) => void
  readonly onParameterStatus: (name: string, value: string) => void
  readonly onNotice: (notice: Diagnostic) => void
  readonly onReadyForQuery: (status: PgProtocol.TransactionStatus) => void
  readonly onClose: (error: ConnectionError | ProtocolError) => void
}

/** Largest backend message accepted before its bytes are buffered. */
export const maxMessageSize = 1024 * 1024 * 1024

/**
 * Largest message of a type that is always small (libpq's limit: everything
 * but DataRow, CopyData, RowDescription, ErrorResponse, NoticeResponse,
 * NotificationResponse and FunctionCallResponse).
 */
export const maxShortMessageSize = 30_000

/** Types whose messages may be long: `D`, `d`, `T`, `E`, `N`, `A`, `V`, and `t` (65535 parameters). */
const longTypes = new Set([0x44, 0x64, 0x54, 0x45, 0x4e, 0x41, 0x56, 0x74])

/**
 * Follows the message boundaries of the backend stream and checks each
 * length field as soon as its header arrives, before the parser buffers the
 * body: a server (or anything posing as one) claiming a 1 GiB
 * ReadyForQuery is refused at once, like libpq's sync-loss check, instead of
 * being buffered up to `maxMessageSize`.
 */
export class FrameGuard {
  private readonly header = new Uint8Array(5)
  private have = 0
  private remaining = 0

  /** Throws a `ProtocolError` at the first header that claims an impossible length. */
  check(chunk: Uint8Array): void {
    let index = 0
    while (index < chunk.length) {
      if (this.remaining > 0) {
        const skip = Math.min(this.remaining, chunk.length - index)
        this.remaining -= skip
        index += skip
        continue
      }
      this.header[this.have++] = chunk[index++]
      if (this.have < 5) continue
      this.have = 0
      const type = this.header[0]
      const length = ((this.header[1] << 24) | (this.header[2] << 16) | (this.header[3] << 8) | this.header[4]) >>> 0
      const limit = longTypes.has(type) ? maxMessageSize : maxShortMessageSize
      if (length < 4 || length > limit) {
        const name = type >= 0x20 && type < 0x7f ? `'${String.fromCharCode(type)}'` : `0x${type.toString(16)}`
        throw new ProtocolError({
          message: `invalid message length ${length} for message type ${name} (limit ${limit}): lost synchronization with the server`
        })
      }
      this.remaining = length - 4
    }
  }
}

export class Wire {
  private readonly parser = PgProtocol.makeParser<unknown>({ maxMessageSize })
  private readonly guard = new FrameGuard()
  private readonly queue: Array<ProtocolHandler> = []
  private head = 0
  private paused = false
  private hooks: WireHooks | undefined
  closed = false
  closeError: ConnectionError | ProtocolError | undefined
  /** A FATAL ErrorResponse that preceded the end of the socket. */
  private fatal: Diagnostic | undefined

  readonly context: ProtocolContext = {
    setFieldReader: (reader) => {
      this.parser.readField = reader
    },
    write: (bytes) => this.write(bytes),
    pause: () => {
      if (!this.paused) {
        this.paused = true
        this.socket.pause()
      }
    },
    resume: () => {
      if (this.paused) {
        this.paused = false
        this.socket.resume()
      }
    }
  }

  constructor(readonly socket: net.Socket, readonly address: string) {
    socket.on("data", (chunk: Uint8Array) => this.receive(chunk))
    socket.on("error", (cause) => this.fail(this.lostError(cause)))
    socket.on("close", () => this.fail(this.lostError(undefined)))
  }

  setHooks(hooks: WireHooks): void {
    this.hooks = hooks
  }

  get pending(): number {
    return this.queue.length - this.head
  }

  /** Whether every request still in flight satisfies `test` (`true` when none is). */
  everyPending(test: (handler: ProtocolHandler) => boolean): boolean {
    for (let index = this.head; index < this.queue.length; index++) {
      if (!test(this.queue[index])) return false
    }
    return true
  }

  private advanceWaiters: Array<() => void> = []

  /** Completes when the oldest request in flight has been answered (or the connection is gone). */
  readonly advanced: Effect.Effect<void> = Effect.callback((resume) => {
    if (this.closed || this.pending === 0) return resume(Effect.void)
    const wake = () => resume(Effect.void)
    this.advanceWaiters.push(wake)
    return Effect.sync(() => {
      const index = this.advanceWaiters.indexOf(wake)
      if (index >= 0) this.advanceWaiters.splice(index, 1)
    })
  })

  private wakeAdvanceWaiters(): void {
    if (this.advanceWaiters.length === 0) return
    const waiters = this.advanceWaiters
    this.advanceWaiters = []
    for (const wake of waiters) wake()
  }

  /** Registers a handler for the response to the next request written. */
  enqueue(handler: ProtocolHandler): void {
    if (this.closed) {
      handler.onClose(this.closeError ?? this.lostError(undefined))
      return
    }
    if (this.head === this.queue.length) this.headSince = performance.now()
    this.queue.push(handler)
  }

  /** When the oldest request in flight became the one the server answers (`performance.now()`). */
  private headSince = 0

  /** Milliseconds the oldest request in flight has been the one answered; 0 when none is. */
  get headAge(): number {
    return this.pending === 0 ? 0 : performance.now() - this.headSince
  }

  /**
   * Writes now (after anything `writeAll` has queued); returns `false` when
   * the send buffer is full (wait for `drained`).
   */
  write(bytes: Uint8Array): boolean {
    if (this.closed) return true
    if (this.outgoing.length > 0) this.flush()
    return this.socket.write(bytes)
  }

  /**
   * Queues frames for the next flush: every request written in the same
   * turn of the event loop (the fibers a batch of responses woke, a pipeline
   * of concurrent callers) leaves in one socket write instead of one
   * syscall each.
   */
  writeAll(frames: ReadonlyArray<Uint8Array>): void {
    if (this.closed) return
    for (let index = 0; index < frames.length; index++) {
      this.outgoing.push(frames[index])
      this.outgoingSize += frames[index].length
    }
    if (!this.flushScheduled) {
      this.flushScheduled = true
      // after the poll phase: the requests that every socket's answers of this turn provoked
      setImmediate(this.flushLater)
    }
  }

  private outgoing: Array<Uint8Array> = []
  private outgoingSize = 0
  private flushScheduled = false
  private readonly flushLater = (): void => {
    this.flushScheduled = false
    this.flush()
  }

  /** Sends what `writeAll` queued, as one buffer. */
  flush(): void {
    const frames = this.outgoing
    if (frames.length === 0 || this.closed) return
    const size = this.outgoingSize
    this.outgoing = []
    this.outgoingSize = 0
    if (frames.length === 1) {
      this.socket.write(frames[0])
      return
    }
    const bytes = Buffer.allocUnsafe(size)
    let offset = 0
    for (let index = 0; index < frames.length; index++) {
      bytes.set(frames[index], offset)
      offset += frames[index].length
    }
    this.socket.write(bytes)
  }

  /** Completes once the socket's send buffer has drained (or the connection is gone). */
  get drained(): Effect.Effect<void, ConnectionError | ProtocolError> {
    return Effect.callback((resume) => {
      if (this.closed) return resume(Effect.fail(this.closeError ?? this.lostError(undefined)))
      this.flush()
      if (!this.socket.writableNeedDrain) return resume(Effect.void)
      const onDrain = () => {
        this.socket.off("close", onDrain)
        this.socket.off("drain", onDrain)
        resume(this.closed ? Effect.fail(this.closeError ?? this.lostError(undefined)) : Effect.void)
      }
      this.socket.once("drain", onDrain)
      this.socket.once("close", onDrain)
      return Effect.sync(() => {
        this.socket.off("drain", onDrain)
        this.socket.off("close", onDrain)
      })
    })
  }

  /** Ends the socket now; pending handlers fail with `error`. */
  destroy(error: ConnectionError | ProtocolError): void {
    this.fail(error)
  }

  /** Sends Terminate and half-closes; the socket closes when the server does. */
  terminate(): void {
    if (this.closed) return
    this.flush()
    this.socket.end(PgProtocol.encodeTerminate())
    this.fail(
      new ConnectionError({ reason: "NotOpen", message: "the connection is closed", address: this.address }),
      true
    )
  }

  private receive(chunk: Uint8Array): void {
    if (this.closed) return
    try {
      this.guard.check(chunk)
      this.parser.pushEach(chunk, this.dispatch)
    } catch (cause) {
      this.fail(
        cause instanceof ProtocolError ? cause : new ProtocolError({
          message: `invalid message from the server: ${cause instanceof Error ? cause.message : String(cause)}`,
          cause
        })
      )
    }
  }

  private readonly dispatch = (message: PgProtocol.BackendMessage<unknown>): void => {
    const handler = this.head < this.queue.length ? this.queue[this.head] : undefined
    switch (message._tag) {
      case "Unknown":
        // libpq: "unexpected response from server" — nothing can follow safely
        throw new ProtocolError({
          message: `unknown message type '${String.fromCharCode(message.type)}' from the server`
        })
      case "NotificationResponse":
        this.hooks?.onNotification(message)
        return
      case "ParameterStatus":
        this.hooks?.onParameterStatus(message.name, message.value)
        break
      case "NoticeResponse": {
        const notice = toDiagnostic(message.fields)
        if (handler?.onNotice !== undefined) handler.onNotice(notice)
        else this.hooks?.onNotice(notice)
        return
      }
      case "ErrorResponse": {
        const diagnostic = toDiagnostic(message.fields)
        if (isSessionFatal(diagnostic)) this.fatal = diagnostic
        break
      }
      case "ReadyForQuery":
        this.hooks?.onReadyForQuery(message.status)
        break
    }
    if (handler === undefined) {
      if (message._tag === "ParameterStatus" || message._tag === "ErrorResponse") return
      throw new ProtocolError({ message: `unexpected ${message._tag} while no request is pending` })
    }
    if (handler.onMessage(message, this.context)) {
      this.head++
      if (this.head === this.queue.length) {
        this.queue.length = 0
        this.head = 0
      } else {
        this.headSince = performance.now()
      }
      handler.onDone?.()
      this.wakeAdvanceWaiters()
    }
  }

  private lostError(cause: unknown): ConnectionError {
    const fatal = this.fatal
    if (fatal !== undefined) {
      return new ConnectionError({
        reason: "Terminated",
        message: fatal.message,
        address: this.address,
        sqlState: fatal.sqlState,
        diagnostic: fatal
      })
    }
    return new ConnectionError({
      reason: "Closed",
      message: cause instanceof Error
        ? `connection to ${this.address} lost: ${cause.message}`
        : `server closed the connection ${this.address} unexpectedly`,
      address: this.address,
      cause
    })
  }

  /** `afterTerminate`: let the Terminate flush before the socket goes (never lingering past 1 s). */
  private fail(error: ConnectionError | ProtocolError, afterTerminate = false): void {
    if (this.closed) return
    this.closed = true
    this.closeError = error
    this.outgoing = []
    this.outgoingSize = 0
    const pending = this.queue.slice(this.head)
    this.queue.length = 0
    this.head = 0
    if (afterTerminate) {
      setTimeout(() => this.socket.destroy(), 1000).unref()
    } else {
      this.socket.destroy()
    }
    for (const handler of pending) handler.onClose(error)
    this.wakeAdvanceWaiters()
    this.hooks?.onClose(error)
  }
}
