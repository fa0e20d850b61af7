/**
 * The one module that owns a connection's socket after it is open.
 *
 * Requests are written whole; their responses arrive in order, so each
 * request registers a `WireHandler` in a FIFO and every backend message goes
 * to the handler at its head until that handler says it is done (normally on
 * its ReadyForQuery). This keeps the protocol conversations I/O-free: a
 * handler sees messages, may ask to write, and reports completion.
 *
 * Asynchronous messages (NotificationResponse, ParameterStatus, and notices
 * outside a request) go to the connection's hooks instead.
 */
import * as PgProtocol from "@effect/sql-pg/PgProtocol"
import type * as net from "node:net"
import { ConnectionError, type Diagnostic, ProtocolError } from "../PgError.ts"
import { isSessionFatal, toDiagnostic } from "./diagnostic.ts"

/** What a handler may do to the connection while it holds the head of the queue. */
export interface WireContext {
  readonly setFieldReader: (reader: PgProtocol.FieldReader<unknown> | undefined) => void
  readonly write: (bytes: Uint8Array) => void
  /** Stops reading from the socket (backpressure) until `resume`. */
  readonly pause: () => void
  readonly resume: () => void
}

export interface WireHandler {
  /** Returns `true` when the handler has consumed its last message. */
  readonly onMessage: (message: PgProtocol.BackendMessage<unknown>, context: WireContext) => boolean
  /**
   * Called once the handler has left the queue. Waiters are resumed here, not
   * in `onMessage`: a resumed fiber may run at once and send its next request.
   */
  readonly onDone?: () => void
  /** The connection died before the handler finished. */
  readonly onClose: (error: ConnectionError | ProtocolError) => void
  /** A notice that arrived while this handler was active. */
  readonly onNotice?: (notice: Diagnostic) => void
}

export interface WireHooks {
  readonly onNotification: (message: PgProtocol.NotificationResponse) => void
  readonly onParameterStatus: (name: string, value: string) => void
  readonly onNotice: (notice: Diagnostic) => void
  readonly onReadyForQuery: (status: PgProtocol.TransactionStatus) => void
  readonly onClose: (error: ConnectionError | ProtocolError) => void
}

/** Largest backend message accepted before its bytes are buffered. */
export const maxMessageSize = 1024 * 1024 * 1024

export class Wire {
  private readonly parser = PgProtocol.makeParser<unknown>({ maxMessageSize })
  private readonly queue: Array<WireHandler> = []
  private head = 0
  private paused = false
  private hooks: WireHooks | undefined
  closed = false
  closeError: ConnectionError | ProtocolError | undefined
  /** A FATAL ErrorResponse that preceded the end of the socket. */
  private fatal: Diagnostic | undefined

  readonly context: WireContext = {
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

  /** Registers a handler for the response to the next request written. */
  enqueue(handler: WireHandler): void {
    if (this.closed) {
      handler.onClose(this.closeError ?? this.lostError(undefined))
      return
    }
    this.queue.push(handler)
  }

  write(bytes: Uint8Array): void {
    if (!this.closed) this.socket.write(bytes)
  }

  /** Writes several frames as one batch. */
  writeAll(frames: ReadonlyArray<Uint8Array>): void {
    if (this.closed) return
    if (frames.length === 1) {
      this.socket.write(frames[0])
      return
    }
    let size = 0
    for (const frame of frames) size += frame.length
    const bytes = new Uint8Array(size)
    let offset = 0
    for (const frame of frames) {
      bytes.set(frame, offset)
      offset += frame.length
    }
    this.socket.write(bytes)
  }

  /** Ends the socket now; pending handlers fail with `error`. */
  destroy(error: ConnectionError | ProtocolError): void {
    this.fail(error)
  }

  /** Sends Terminate and half-closes; the socket closes when the server does. */
  terminate(): void {
    if (this.closed) return
    this.socket.end(PgProtocol.encodeTerminate())
    this.fail(
      new ConnectionError({ reason: "NotOpen", message: "the connection is closed", address: this.address })
    )
  }

  private receive(chunk: Uint8Array): void {
    try {
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
      }
      handler.onDone?.()
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

  private fail(error: ConnectionError | ProtocolError): void {
    if (this.closed) return
    this.closed = true
    this.closeError = error
    const pending = this.queue.slice(this.head)
    this.queue.length = 0
    this.head = 0
    if (error._tag === "ConnectionError" && error.reason === "NotOpen") {
      // Closed by us after Terminate: let the bytes flush, but never linger.
      setTimeout(() => this.socket.destroy(), 1000).unref()
    } else {
      this.socket.destroy()
    }
    for (const handler of pending) handler.onClose(error)
    this.hooks?.onClose(error)
  }
}
