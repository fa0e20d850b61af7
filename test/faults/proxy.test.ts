/**
 * The fault proxy's own behaviour, against a small scripted upstream (no PostgreSQL).
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect } from "effect"
import type { Scope } from "effect"
import * as net from "node:net"
import { primaryTarget } from "../harness.ts"
import * as FaultProxy from "./proxy.ts"

/** A framed message: type byte, int32 length, body. */
const frame = (type: string, body: string): Uint8Array => {
  const payload = Buffer.from(body)
  const out = Buffer.alloc(5 + payload.length)
  out[0] = type.charCodeAt(0)
  out.writeInt32BE(4 + payload.length, 1)
  payload.copy(out, 5)
  return out
}

const startupPacket = (code: number, extra = 0): Buffer => {
  const out = Buffer.alloc(8 + extra)
  out.writeInt32BE(8 + extra, 0)
  out.writeInt32BE(code, 4)
  return out
}

/** An upstream that records what it receives and answers each chunk with `reply`. */
const upstream = (reply: Uint8Array) =>
  Effect.gen(function*() {
    const received: Array<Buffer> = []
    const sockets = new Set<net.Socket>()
    let closes = 0
    const server = yield* Effect.acquireRelease(
      Effect.callback<net.Server, Error>((resume) => {
        const srv = net.createServer((socket) => {
          sockets.add(socket)
          socket.on("error", () => {})
          socket.on("data", (chunk) => {
            received.push(chunk)
            socket.write(reply)
          })
          socket.on("close", () => {
            closes++
            sockets.delete(socket)
          })
        })
        srv.listen(0, "127.0.0.1", () => resume(Effect.succeed(srv)))
      }),
      (srv) =>
        Effect.callback<void>((resume) => {
          for (const socket of sockets) socket.destroy()
          srv.close(() => resume(Effect.void))
        })
    )
    return {
      port: (server.address() as net.AddressInfo).port,
      received: () => Buffer.concat(received),
      closes: () => closes
    }
  })

interface RawClient {
  readonly socket: net.Socket
  readonly bytes: () => Buffer
  readonly chunkSizes: Array<number>
  readonly events: Array<string>
  /** Waits until at least `n` bytes arrived (bounded by `ms`). */
  readonly waitBytes: (n: number, ms?: number) => Effect.Effect<void, Error>
  readonly waitEvent: (name: string, ms?: number) => Effect.Effect<void, Error>
}

const rawClient = (port: number): Effect.Effect<RawClient, Error, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.callback<RawClient, Error>((resume) => {
      const socket = net.connect({ host: "127.0.0.1", port })
      const chunks: Array<Buffer> = []
      const chunkSizes: Array<number> = []
      const events: Array<string> = []
      socket.on("data", (chunk) => {
        chunks.push(chunk)
        chunkSizes.push(chunk.length)
      })
      socket.on("error", (error: NodeJS.ErrnoException) => events.push(`error:${error.code}`))
      socket.on("end", () => events.push("end"))
      socket.on("close", () => events.push("close"))
      const poll = (check: () => boolean, ms: number, what: string) =>
        Effect.gen(function*() {
          const deadline = Date.now() + ms
          while (!check()) {
            if (Date.now() > deadline) return yield* Effect.fail(new Error(`timed out waiting for ${what}`))
            yield* Effect.sleep("5 millis")
          }
        })
      socket.once("connect", () =>
        resume(Effect.succeed({
          socket,
          bytes: () => Buffer.concat(chunks),
          chunkSizes,
          events,
          waitBytes: (n, ms = 2000) => poll(() => Buffer.concat(chunks).length >= n, ms, `${n} bytes`),
          waitEvent: (name, ms = 2000) => poll(() => events.some((e) => e.startsWith(name)), ms, name)
        })))
      socket.once("error", (error) => resume(Effect.fail(error)))
    }),
    (client) => Effect.sync(() => client.socket.destroy())
  )

const reply = Buffer.concat([frame("A", "first"), frame("B", "second"), frame("Z", "I")])

const setup = Effect.gen(function*() {
  const up = yield* upstream(reply)
  const proxy = yield* FaultProxy.make({ host: "127.0.0.1", port: up.port })
  return { up, proxy }
})

const timed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.map(Effect.timed(effect), ([duration, value]) => ({ ms: Duration.toMillis(duration), value }))

describe.runIf(primaryTarget())("fault proxy", () => {
  it.live("forwards both directions unchanged", () =>
    Effect.gen(function*() {
      const { up, proxy } = yield* setup
      const client = yield* rawClient(proxy.port)
      const hello = Buffer.concat([startupPacket(196608), Buffer.from("hello")])
      client.socket.write(hello)
      yield* client.waitBytes(reply.length)
      expect(client.bytes()).toEqual(Buffer.from(reply))
      expect(up.received()).toEqual(hello)
      expect(proxy.stats().open).toBe(1)
    }).pipe(Effect.scoped))

  it.live("slices the server's stream into 1-byte writes", () =>
    Effect.gen(function*() {
      const { proxy } = yield* setup
      yield* proxy.slice(true)
      const client = yield* rawClient(proxy.port)
      client.socket.write(startupPacket(196608))
      yield* client.waitBytes(reply.length)
      expect(client.bytes()).toEqual(Buffer.from(reply))
      // one write per byte, each followed by a turn of the event loop: the client reads
      // (almost always) one byte at a time
      const ones = client.chunkSizes.filter((size) => size === 1).length
      expect(ones).toBeGreaterThanOrEqual(reply.length * 0.8)
    }).pipe(Effect.scoped))

  it.live("adds latency in both directions", () =>
    Effect.gen(function*() {
      const { proxy } = yield* setup
      yield* proxy.latency(150)
      const client = yield* rawClient(proxy.port)
      const { ms } = yield* timed(Effect.andThen(
        Effect.sync(() => client.socket.write(startupPacket(196608))),
        client.waitBytes(reply.length)
      ))
      expect(ms).toBeGreaterThanOrEqual(290)
      expect(ms).toBeLessThan(1500)
    }).pipe(Effect.scoped))

  it.live("stalls before a message type until resumed", () =>
    Effect.gen(function*() {
      const { proxy } = yield* setup
      yield* proxy.stall({ before: "Z" })
      const client = yield* rawClient(proxy.port)
      client.socket.write(startupPacket(196608))
      yield* proxy.stalled
      const before = frame("A", "first").length + frame("B", "second").length
      yield* client.waitBytes(before)
      yield* Effect.sleep("150 millis")
      expect(client.bytes().length).toBe(before)
      yield* proxy.resume
      yield* client.waitBytes(reply.length)
      expect(client.bytes()).toEqual(Buffer.from(reply))
    }).pipe(Effect.scoped))

  it.live("stalls after N messages", () =>
    Effect.gen(function*() {
      const { proxy } = yield* setup
      yield* proxy.stall({ after: 1 })
      const client = yield* rawClient(proxy.port)
      client.socket.write(startupPacket(196608))
      yield* proxy.stalled
      yield* Effect.sleep("100 millis")
      expect(client.bytes()).toEqual(Buffer.from(frame("A", "first")))
      yield* proxy.resume
      yield* client.waitBytes(reply.length)
    }).pipe(Effect.scoped))

  it.live("tracks boundaries after the one-byte SSLRequest answer", () =>
    Effect.gen(function*() {
      // the upstream answers the SSLRequest with 'N' and (in the same chunk) framed messages
      const up = yield* upstream(Buffer.concat([Buffer.from("N"), reply]))
      const proxy = yield* FaultProxy.make({ host: "127.0.0.1", port: up.port })
      yield* proxy.stall({ after: 2 })
      const client = yield* rawClient(proxy.port)
      client.socket.write(startupPacket(80877103))
      yield* proxy.stalled
      yield* Effect.sleep("50 millis")
      // 'N', then the first framed message; the second is held
      expect(client.bytes()).toEqual(Buffer.concat([Buffer.from("N"), frame("A", "first")]))
      yield* proxy.resume
      yield* client.waitBytes(1 + reply.length)
    }).pipe(Effect.scoped))

  it.live("closes a connection after N bytes (limitData)", () =>
    Effect.gen(function*() {
      const { proxy } = yield* setup
      yield* proxy.limitData(7)
      const client = yield* rawClient(proxy.port)
      client.socket.write(startupPacket(196608))
      yield* client.waitEvent("end")
      expect(client.bytes().length).toBe(7)
    }).pipe(Effect.scoped))

  it.live("blackholes: nothing forwarded, sockets kept open, heal restores", () =>
    Effect.gen(function*() {
      const { up, proxy } = yield* setup
      const client = yield* rawClient(proxy.port)
      client.socket.write(startupPacket(196608))
      yield* client.waitBytes(reply.length)
      yield* proxy.blackhole
      const upBefore = up.received().length
      client.socket.write("lost")
      yield* Effect.sleep("200 millis")
      expect(up.received().length).toBe(upBefore)
      expect(client.bytes().length).toBe(reply.length)
      expect(client.events).toEqual([])
      // a new connection during the blackhole is accepted and held
      const other = yield* rawClient(proxy.port)
      other.socket.write(startupPacket(196608))
      yield* Effect.sleep("100 millis")
      expect(other.bytes().length).toBe(0)
      expect(other.events).toEqual([])
      yield* proxy.heal
      client.socket.write("again")
      yield* client.waitBytes(2 * reply.length)
      expect(up.received().subarray(upBefore).toString()).toBe("again")
    }).pipe(Effect.scoped))

  it.live("resets (RST) and closes (FIN) open connections", () =>
    Effect.gen(function*() {
      const { up, proxy } = yield* setup
      const a = yield* rawClient(proxy.port)
      a.socket.write(startupPacket(196608))
      yield* a.waitBytes(reply.length)
      yield* proxy.reset
      yield* a.waitEvent("error:ECONNRESET")
      const b = yield* rawClient(proxy.port)
      b.socket.write(startupPacket(196608))
      yield* b.waitBytes(reply.length)
      yield* proxy.close
      yield* b.waitEvent("end")
      expect(b.events).not.toContain("error:ECONNRESET")
      yield* Effect.sleep("50 millis")
      expect(up.closes()).toBe(2)
    }).pipe(Effect.scoped))

  it.live("delays, drops or holds cancel side connections", () =>
    Effect.gen(function*() {
      const { up, proxy } = yield* setup
      const cancel = Buffer.concat([startupPacket(80877102, 8)])
      cancel.writeInt32BE(16, 0)
      // delayed: forwarded 300 ms later, even though the client already left
      yield* proxy.cancelPolicy({ delay: 300 })
      const a = yield* rawClient(proxy.port)
      const sent = Date.now()
      a.socket.end(cancel)
      yield* Effect.sleep("150 millis")
      expect(up.received().length).toBe(0)
      const deadline = Date.now() + 2000
      while (up.received().length < 16 && Date.now() < deadline) yield* Effect.sleep("5 millis")
      expect(up.received()).toEqual(cancel)
      expect(Date.now() - sent).toBeGreaterThanOrEqual(280)
      // dropped with a close: the client sees the close, nothing forwarded
      yield* proxy.cancelPolicy({ drop: "close" })
      const b = yield* rawClient(proxy.port)
      b.socket.write(cancel)
      yield* b.waitEvent("end")
      // held: stays open, nothing forwarded
      yield* proxy.cancelPolicy({ drop: "hang" })
      const c = yield* rawClient(proxy.port)
      c.socket.write(cancel)
      yield* Effect.sleep("150 millis")
      expect(c.events).toEqual([])
      expect(up.received().length).toBe(16)
      expect(proxy.stats().cancelRequests).toBe(3)
      expect(proxy.stats().cancelsForwarded).toBe(1)
    }).pipe(Effect.scoped))

  it.live("a silent listener accepts and never answers; a refused port refuses", () =>
    Effect.gen(function*() {
      const silent = yield* FaultProxy.silentListener()
      const client = yield* rawClient(silent.port)
      client.socket.write(startupPacket(196608))
      yield* Effect.sleep("100 millis")
      expect(client.bytes().length).toBe(0)
      expect(silent.accepted()).toBe(1)
      const port = yield* FaultProxy.refusedPort
      const refused = yield* Effect.flip(rawClient(port))
      expect((refused as NodeJS.ErrnoException).code).toBe("ECONNREFUSED")
    }).pipe(Effect.scoped))
})
