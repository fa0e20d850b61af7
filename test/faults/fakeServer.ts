/**
 * A hostile fake PostgreSQL server for protocol tests, on a free loopback port.
 *
 * Each accepted connection runs a script (an Effect) against a `FakeClient`: read the client's
 * startup packet and messages, answer with any bytes at all — truncated, oversized, unknown,
 * out-of-order or malformed messages, wrong authentication requests, garbage after SSLRequest —
 * end, reset or just hang. `msg` builds backend messages; `raw` any frame with a chosen length.
 *
 * The server is a scoped resource: closing the scope closes every connection and interrupts
 * every script.
 */
import * as net from "node:net"
import { Effect, FiberSet } from "effect"
import type { Scope } from "effect"

const utf8 = new TextEncoder()

// -----------------------------------------------------------------------------------------------
// backend messages
// -----------------------------------------------------------------------------------------------

type Part = Uint8Array | string | { readonly int32: number } | { readonly int16: number } | { readonly byte: number }

const encodePart = (part: Part): Uint8Array => {
  if (part instanceof Uint8Array) return part
  if (typeof part === "string") {
    const bytes = utf8.encode(part)
    const out = new Uint8Array(bytes.length + 1)
    out.set(bytes)
    return out
  }
  if ("int32" in part) {
    const out = new Uint8Array(4)
    new DataView(out.buffer).setInt32(0, part.int32)
    return out
  }
  if ("int16" in part) {
    const out = new Uint8Array(2)
    new DataView(out.buffer).setInt16(0, part.int16)
    return out
  }
  return Uint8Array.of(part.byte)
}

export const concat = (chunks: ReadonlyArray<Uint8Array>): Uint8Array => {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0))
  let offset = 0
  for (const chunk of chunks) {
    out.set(chunk, offset)
    offset += chunk.length
  }
  return out
}

/** A frame: type, int32 length (counting itself), body. */
export const frame = (type: string, ...parts: ReadonlyArray<Part>): Uint8Array => {
  const body = concat(parts.map(encodePart))
  const out = new Uint8Array(5 + body.length)
  out[0] = type.charCodeAt(0)
  new DataView(out.buffer).setInt32(1, 4 + body.length)
  out.set(body, 5)
  return out
}

/** A header claiming `length` (any int32 bit pattern, e.g. 2**31 - 1 or 2**31) followed by `body`. */
export const raw = (type: string, length: number, body: Uint8Array = new Uint8Array(0)): Uint8Array => {
  const out = new Uint8Array(5 + body.length)
  out[0] = type.charCodeAt(0)
  new DataView(out.buffer).setUint32(1, length >>> 0)
  out.set(body, 5)
  return out
}

const int32 = (n: number) => ({ int32: n })
const int16 = (n: number) => ({ int16: n })

export interface Column {
  readonly name: string
  readonly typeOid: number
  readonly format?: 0 | 1
}

/** Well-formed backend messages. */
export const msg = {
  authOk: () => frame("R", int32(0)),
  authCleartext: () => frame("R", int32(3)),
  authMd5: (salt: Uint8Array = Uint8Array.of(1, 2, 3, 4)) => frame("R", int32(5), salt),
  authSasl: (...mechanisms: ReadonlyArray<string>) => frame("R", int32(10), ...mechanisms, Uint8Array.of(0)),
  authSaslContinue: (data: string) => frame("R", int32(11), utf8.encode(data)),
  authSaslFinal: (data: string) => frame("R", int32(12), utf8.encode(data)),
  authCode: (code: number) => frame("R", int32(code)),
  parameterStatus: (name: string, value: string) => frame("S", name, value),
  backendKeyData: (pid = 4242, secret = 1234) => frame("K", int32(pid), int32(secret)),
  readyForQuery: (status: "I" | "T" | "E" = "I") => frame("Z", { byte: status.charCodeAt(0) }),
  rowDescription: (columns: ReadonlyArray<Column>) =>
    frame(
      "T",
      int16(columns.length),
      ...columns.flatMap((c) => [c.name, int32(0), int16(0), int32(c.typeOid), int16(-1), int32(-1), int16(c.format ?? 0)])
    ),
  /** Text values (`null` for NULL). */
  dataRow: (values: ReadonlyArray<string | null>) =>
    frame(
      "D",
      int16(values.length),
      ...values.flatMap((v) => {
        if (v === null) return [int32(-1)]
        const bytes = utf8.encode(v)
        return [int32(bytes.length), bytes]
      })
    ),
  commandComplete: (tag: string) => frame("C", tag),
  emptyQuery: () => frame("I"),
  parseComplete: () => frame("1"),
  bindComplete: () => frame("2"),
  noData: () => frame("n"),
  error: (fields: Readonly<Record<string, string>>) =>
    frame("E", ...Object.entries(fields).flatMap(([code, value]) => [{ byte: code.charCodeAt(0) }, value]), Uint8Array.of(0)),
  notice: (fields: Readonly<Record<string, string>>) =>
    frame("N", ...Object.entries(fields).flatMap(([code, value]) => [{ byte: code.charCodeAt(0) }, value]), Uint8Array.of(0)),
  notification: (pid: number, channel: string, payload: string) => frame("A", int32(pid), channel, payload)
}

/** The messages of a successful trust login. */
export const loginOk = (): Uint8Array =>
  concat([
    msg.authOk(),
    msg.parameterStatus("server_version", "18.4"),
    msg.parameterStatus("client_encoding", "UTF8"),
    msg.parameterStatus("integer_datetimes", "on"),
    msg.parameterStatus("default_transaction_read_only", "off"),
    msg.parameterStatus("in_hot_standby", "off"),
    msg.backendKeyData(),
    msg.readyForQuery("I")
  ])

// -----------------------------------------------------------------------------------------------
// the server
// -----------------------------------------------------------------------------------------------

/** The first packet a client sends (no type byte). */
export type StartupPacket =
  | { readonly _tag: "SSLRequest" }
  | { readonly _tag: "GSSENCRequest" }
  | { readonly _tag: "CancelRequest"; readonly pid: number; readonly secret: number }
  | { readonly _tag: "Startup"; readonly version: number; readonly parameters: Readonly<Record<string, string>> }

/** A frontend message after startup. */
export interface FrontendMessage {
  readonly type: string
  readonly body: Uint8Array
}

/** One client connection, seen from the fake server. */
export interface FakeClient {
  readonly socket: net.Socket
  readonly readPacket: Effect.Effect<StartupPacket, Error>
  readonly readMessage: Effect.Effect<FrontendMessage, Error>
  /** Reads messages until one of `type` (returned). */
  readonly readUntil: (type: string) => Effect.Effect<FrontendMessage, Error>
  readonly send: (...chunks: ReadonlyArray<Uint8Array | string>) => Effect.Effect<void>
  /** Writes one byte at a time, letting the client read each before the next. */
  readonly sendSliced: (...chunks: ReadonlyArray<Uint8Array | string>) => Effect.Effect<void>
  /** FIN. */
  readonly end: Effect.Effect<void>
  /** RST. */
  readonly reset: Effect.Effect<void>
  /** Never returns (until the scope closes or the client goes away). */
  readonly hang: Effect.Effect<never>
  /** Reads the startup packet (answering SSLRequest with "N") and sends a trust login. */
  readonly acceptLogin: Effect.Effect<Readonly<Record<string, string>>, Error>
}

export interface FakeServer {
  readonly port: number
  /** Connections accepted (cancel ones included). */
  readonly accepted: () => number
  /** CancelRequests received. */
  readonly cancels: () => number
  /** A conninfo string for this server (`sslmode=disable` unless given). */
  readonly conninfo: (extra?: string) => string
}

const toBytes = (chunk: Uint8Array | string) => (typeof chunk === "string" ? utf8.encode(chunk) : chunk)

const makeClient = (socket: net.Socket): FakeClient => {
  let buffer = Buffer.alloc(0)
  let ended = false
  let waiter: (() => void) | undefined
  socket.on("data", (chunk: Buffer) => {
    buffer = Buffer.concat([buffer, chunk])
    waiter?.()
  })
  socket.on("end", () => {
    ended = true
    waiter?.()
  })
  socket.on("close", () => {
    ended = true
    waiter?.()
  })
  socket.on("error", () => {})

  const read = (n: number) =>
    Effect.callback<Buffer, Error>((resume) => {
      const check = () => {
        if (buffer.length >= n) {
          waiter = undefined
          const out = buffer.subarray(0, n)
          buffer = buffer.subarray(n)
          resume(Effect.succeed(out))
        } else if (ended) {
          waiter = undefined
          resume(Effect.fail(new Error("client went away")))
        }
      }
      waiter = check
      check()
      return Effect.sync(() => {
        waiter = undefined
      })
    })

  const write = (bytes: Uint8Array) =>
    Effect.callback<void>((resume) => {
      if (socket.destroyed) return resume(Effect.void)
      socket.write(bytes, () => resume(Effect.void))
    })

  const readPacket = Effect.gen(function*() {
    const head = yield* read(4)
    const length = head.readInt32BE(0)
    if (length < 8 || length > 10000) return yield* Effect.fail(new Error(`bad startup packet length ${length}`))
    const body = yield* read(length - 4)
    const code = body.readInt32BE(0)
    if (code === 80877103) return { _tag: "SSLRequest" } as const
    if (code === 80877104) return { _tag: "GSSENCRequest" } as const
    if (code === 80877102) return { _tag: "CancelRequest", pid: body.readInt32BE(4), secret: body.readInt32BE(8) } as const
    const parts = body.subarray(4).toString("utf8").split("\u0000")
    const parameters: Record<string, string> = {}
    for (let i = 0; i + 1 < parts.length; i += 2) if (parts[i] !== "") parameters[parts[i]] = parts[i + 1]
    return { _tag: "Startup", version: code, parameters } as const
  })

  const readMessage = Effect.gen(function*() {
    const head = yield* read(5)
    const length = head.readInt32BE(1)
    const body = yield* read(Math.max(0, length - 4))
    return { type: String.fromCharCode(head[0]), body: new Uint8Array(body) }
  })

  const client: FakeClient = {
    socket,
    readPacket,
    readMessage,
    readUntil: (type) =>
      Effect.gen(function*() {
        for (let i = 0; i < 1000; i++) {
          const message = yield* readMessage
          if (message.type === type) return message
        }
        return yield* Effect.fail(new Error(`no ${type} message`))
      }),
    send: (...chunks) => write(concat(chunks.map(toBytes))),
    sendSliced: (...chunks) =>
      Effect.gen(function*() {
        const bytes = concat(chunks.map(toBytes))
        for (let i = 0; i < bytes.length; i++) {
          yield* write(bytes.subarray(i, i + 1))
          yield* Effect.callback<void>((resume) => {
            const timer = setImmediate(() => resume(Effect.void))
            return Effect.sync(() => clearImmediate(timer))
          })
        }
      }),
    end: Effect.sync(() => {
      socket.end()
    }),
    reset: Effect.sync(() => {
      socket.resetAndDestroy()
    }),
    hang: Effect.never,
    acceptLogin: Effect.gen(function*() {
      let packet = yield* readPacket
      if (packet._tag === "SSLRequest" || packet._tag === "GSSENCRequest") {
        yield* write(utf8.encode("N"))
        packet = yield* readPacket
      }
      if (packet._tag !== "Startup") return yield* Effect.fail(new Error(`expected a startup packet, got ${packet._tag}`))
      yield* write(loginOk())
      return packet.parameters
    })
  }
  return client
}

/**
 * Starts a fake server on a free port of 127.0.0.1. `script` runs for each session connection;
 * CancelRequests are counted and closed (like a postmaster) without running it.
 */
export const make = (
  script: (client: FakeClient, index: number) => Effect.Effect<unknown, unknown>
): Effect.Effect<FakeServer, Error, Scope.Scope> =>
  Effect.gen(function*() {
    const fibers = yield* FiberSet.make<unknown, unknown>()
    const run = yield* FiberSet.runtime(fibers)<never>()
    const sockets = new Set<net.Socket>()
    let accepted = 0
    let sessions = 0
    let cancels = 0
    const server = yield* Effect.acquireRelease(
      Effect.callback<net.Server, Error>((resume) => {
        const srv = net.createServer({ noDelay: true, allowHalfOpen: true }, (socket) => {
          accepted++
          sockets.add(socket)
          socket.on("close", () => sockets.delete(socket))
          const client = makeClient(socket)
          // a CancelRequest is recognised from its first 8 bytes; anything else runs the script
          run(
            Effect.gen(function*() {
              const peek = yield* Effect.callback<Buffer | undefined>((resume) => {
                let seen = Buffer.alloc(0)
                const onData = (chunk: Buffer) => {
                  seen = Buffer.concat([seen, chunk])
                  if (seen.length >= 8) finish(seen)
                }
                const finish = (value: Buffer | undefined) => {
                  socket.off("data", onData)
                  socket.off("close", onClose)
                  resume(Effect.succeed(value))
                }
                const onClose = () => finish(undefined)
                socket.prependListener("data", onData)
                socket.on("close", onClose)
                return Effect.sync(() => {
                  socket.off("data", onData)
                  socket.off("close", onClose)
                })
              })
              if (peek === undefined) return
              if (peek.readInt32BE(4) === 80877102) {
                cancels++
                socket.end()
                return
              }
              yield* script(client, sessions++)
            }).pipe(
              Effect.ignore,
              Effect.ensuring(Effect.sync(() => {
                socket.end()
                setTimeout(() => socket.destroy(), 100).unref()
              }))
            )
          )
        })
        srv.once("error", (error) => resume(Effect.fail(error)))
        srv.listen(0, "127.0.0.1", () => resume(Effect.succeed(srv)))
      }),
      (srv) =>
        Effect.callback<void>((resume) => {
          for (const socket of sockets) socket.destroy()
          srv.close(() => resume(Effect.void))
        })
    )
    yield* Effect.addFinalizer(() => FiberSet.clear(fibers))
    const port = (server.address() as net.AddressInfo).port
    return {
      port,
      accepted: () => accepted,
      cancels: () => cancels,
      conninfo: (extra = "") =>
        `host=127.0.0.1 port=${port} user=fake dbname=fake ${/sslmode=/.test(extra) ? "" : "sslmode=disable "}${extra}`
    }
  })
