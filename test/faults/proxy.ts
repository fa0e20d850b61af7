/**
 * A fault-injection TCP proxy for PostgreSQL tests, on a free loopback port.
 *
 * Put it between a client and a server (`proxy.url(serverUrl)` rewrites a URL to go through it)
 * and break the network on demand, the way reliability.md's scenarios ask:
 *
 * - `blackhole`: stop forwarding in both directions while every socket stays open (a half-open
 *   TCP connection); connections accepted meanwhile are held and never forwarded. `heal` forwards
 *   again and delivers the closes that were held back.
 * - `reset` (RST) and `close` (FIN) every open connection.
 * - `latency(ms)`: delay every chunk, both directions, order kept.
 * - `slice(true)`: write what the server sends one byte at a time, yielding to the event loop
 *   between bytes, so the client reads 1-byte chunks.
 * - `stall({ before, after })`: hold the server's stream at a message boundary (before the
 *   first message of a type, or after N messages) until `resume`.
 * - `limitData(n)`: close each open connection once `n` more bytes went to the client.
 * - `cancelPolicy({ delay, drop })`: CancelRequest side connections (recognised by their first
 *   packet) are forwarded late, or dropped (`"close"`: closed unforwarded; `"hang"`: held open
 *   unforwarded). A delayed cancel is delivered even if the client gave up meanwhile, like a
 *   packet already in flight.
 *
 * Message boundaries are tracked on the server's stream (the one-byte SSLRequest answer
 * included); after a TLS upgrade the stream is opaque and `stall` never triggers. Use
 * `sslmode=disable` through the proxy for message-level faults.
 *
 * Written with Effect: the proxy is a scoped resource; each direction of each connection is a
 * fiber of the proxy's FiberSet that takes chunks from a queue; every control is an Effect.
 * It only ever listens on and connects to loopback addresses.
 */
import * as net from "node:net"
import { Deferred, Effect, Fiber, FiberSet, Queue } from "effect"
import type { Scope } from "effect"

/** Where the proxy forwards to. Only loopback addresses are accepted. */
export interface ProxyTarget {
  readonly host: string
  readonly port: number
}

/** What happens to CancelRequest side connections. */
export interface CancelPolicy {
  /** Milliseconds to hold the cancel connection before forwarding it. */
  readonly delay?: number | undefined
  /** `close`: close it without forwarding; `hang`: keep it open, never forwarded. */
  readonly drop?: "close" | "hang" | undefined
}

/** Where to stall the server's stream. */
export interface StallOptions {
  /** Stall before the first message of this type (e.g. `"Z"` for ReadyForQuery). */
  readonly before?: string | undefined
  /** Stall after this many messages (counted from now). */
  readonly after?: number | undefined
}

/** Counters and a log of what the proxy saw. */
export interface ProxyStats {
  /** Connections accepted, cancel ones included. */
  readonly accepted: number
  /** Session connections currently open. */
  readonly open: number
  /** Cancel side connections seen. */
  readonly cancelRequests: number
  /** Cancel requests actually forwarded to the server. */
  readonly cancelsForwarded: number
  /** Bytes forwarded to clients. */
  readonly bytesDown: number
  /** Bytes forwarded to the server. */
  readonly bytesUp: number
}

/** A running proxy. */
export interface FaultProxy {
  readonly host: string
  readonly port: number
  /** `url` with its host and port replaced by the proxy's (query parameters kept). */
  readonly url: (url: string) => string
  readonly stats: () => ProxyStats
  readonly blackhole: Effect.Effect<void>
  readonly heal: Effect.Effect<void>
  readonly reset: Effect.Effect<void>
  readonly close: Effect.Effect<void>
  readonly latency: (ms: number) => Effect.Effect<void>
  readonly slice: (on: boolean) => Effect.Effect<void>
  readonly stall: (options: StallOptions) => Effect.Effect<void>
  readonly resume: Effect.Effect<void>
  readonly limitData: (bytes: number | undefined) => Effect.Effect<void>
  readonly cancelPolicy: (policy: CancelPolicy) => Effect.Effect<void>
  /** Completes once the proxy has stalled (a stall armed with `stall` has triggered). */
  readonly stalled: Effect.Effect<void>
}

const CANCEL_CODE = 80877102
const SSL_CODE = 80877103
const GSS_CODE = 80877104

export const isLoopback = (host: string): boolean =>
  host === "127.0.0.1" || host === "::1" || host === "localhost" || /^127\.\d+\.\d+\.\d+$/.test(host)

type Item =
  | { readonly _tag: "Data"; readonly bytes: Uint8Array; readonly at: number; readonly starts: ReadonlyArray<Start> }
  | { readonly _tag: "End"; readonly at: number }

/** A message starting at `offset` of a chunk, with its type byte. */
interface Start {
  readonly offset: number
  readonly type: number
}

/**
 * Follows message boundaries on a server → client stream. The first byte is a bare answer when
 * the client opened with SSLRequest/GSSENCRequest; a TLS/GSS upgrade makes the stream opaque.
 */
class Framer {
  private header = new Uint8Array(5)
  private have = 0
  private remaining = 0
  /** Bare answer bytes expected before framed messages. */
  bare = 0
  opaque = false

  scan(chunk: Uint8Array): ReadonlyArray<Start> {
    const starts: Array<Start> = []
    let i = 0
    while (i < chunk.length && !this.opaque) {
      if (this.bare > 0) {
        this.bare--
        const answer = chunk[i]
        if (answer === 0x53 || answer === 0x47) this.opaque = true // 'S' / 'G': encrypted from now on
        starts.push({ offset: i, type: answer })
        i++
        continue
      }
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, chunk.length - i)
        this.remaining -= n
        i += n
        continue
      }
      if (this.have === 0) starts.push({ offset: i, type: chunk[i] })
      this.header[this.have++] = chunk[i++]
      if (this.have === 5) {
        const length = ((this.header[1] << 24) | (this.header[2] << 16) | (this.header[3] << 8) | this.header[4]) >>> 0
        this.remaining = Math.max(0, length - 4)
        this.have = 0
      }
    }
    return starts
  }
}

interface Link {
  readonly id: number
  readonly client: net.Socket
  server: net.Socket | undefined
  kind: "pending" | "session" | "cancel"
  head: Uint8Array
  readonly framer: Framer
  readonly up: Queue.Queue<Item>
  readonly down: Queue.Queue<Item>
  /** Bytes this link may still send down before it is closed (limitData). */
  budget: number | undefined
  closed: boolean
}

const now = () => performance.now()

/** One turn of the event loop (I/O callbacks run before it completes). */
const nextTick = Effect.callback<void>((resume) => {
  const timer = setImmediate(() => resume(Effect.void))
  return Effect.sync(() => clearImmediate(timer))
})

const sleepMs = (ms: number) => (ms <= 0 ? Effect.void : Effect.sleep(`${Math.ceil(ms)} millis`))

/** Writes and waits for `drain` when the socket's buffer is full. */
const writeTo = (socket: net.Socket, bytes: Uint8Array) =>
  Effect.callback<void>((resume) => {
    if (socket.destroyed || !socket.writable) return resume(Effect.void)
    if (socket.write(bytes)) return resume(Effect.void)
    const done = () => {
      socket.off("drain", done)
      socket.off("close", done)
      resume(Effect.void)
    }
    socket.once("drain", done)
    socket.once("close", done)
    return Effect.sync(() => {
      socket.off("drain", done)
      socket.off("close", done)
    })
  })

/**
 * Starts a proxy to `target` on a free port of 127.0.0.1 (or `listenHost`, a loopback address);
 * closed, with every connection, when the scope closes.
 */
export const make = (
  target: ProxyTarget,
  options?: { readonly listenHost?: string | undefined }
): Effect.Effect<FaultProxy, Error, Scope.Scope> =>
  Effect.gen(function*() {
    const listenHost = options?.listenHost ?? "127.0.0.1"
    if (!isLoopback(target.host) || !isLoopback(listenHost)) {
      return yield* Effect.fail(new Error(`the fault proxy only works on loopback addresses (got ${target.host})`))
    }
    const fibers = yield* FiberSet.make<unknown, never>()
    const run = yield* FiberSet.runtime(fibers)<never>()

    const links = new Set<Link>()
    const cancelLinks = new Set<Link>()
    let nextId = 1
    let blackholed = false
    let latencyMs = 0
    let slicing = false
    let limit: number | undefined
    let cancel: CancelPolicy = {}
    let stall: { before: number | undefined; after: number | undefined; seen: number } | undefined
    let stallGate = Deferred.makeUnsafe<void>()
    Deferred.doneUnsafe(stallGate, Effect.void)
    let stalledSignal = Deferred.makeUnsafe<void>()
    let healGate = Deferred.makeUnsafe<void>()
    Deferred.doneUnsafe(healGate, Effect.void)
    const stats = { accepted: 0, cancelRequests: 0, cancelsForwarded: 0, bytesDown: 0, bytesUp: 0 }

    const destroyLink = (link: Link, how: "reset" | "end" | "destroy") => {
      if (link.closed) return
      link.closed = true
      links.delete(link)
      cancelLinks.delete(link)
      Queue.shutdownUnsafe(link.up)
      Queue.shutdownUnsafe(link.down)
      if (how === "reset") link.client.resetAndDestroy()
      else if (how === "end") {
        link.client.end()
        setTimeout(() => link.client.destroy(), 200).unref()
      } else link.client.destroy()
      if (link.server !== undefined) {
        if (how === "end") {
          link.server.end()
          setTimeout(() => link.server?.destroy(), 200).unref()
        } else link.server.destroy()
      }
    }

    /** Takes items of one direction and writes them, applying the faults. */
    const pump = (link: Link, direction: "up" | "down") =>
      Effect.gen(function*() {
        const queue = direction === "up" ? link.up : link.down
        while (true) {
          const item = yield* Queue.take(queue)
          const delay = item.at + latencyMs - now()
          if (delay > 0) yield* sleepMs(delay)
          const destination = direction === "up" ? link.server : link.client
          if (item._tag === "End") {
            // a close during a blackhole is delivered by heal
            yield* Deferred.await(healGate)
            if (link.closed || destination === undefined) return
            if (direction === "up") destination.end()
            else destroyLink(link, "end")
            return
          }
          if (destination === undefined || link.closed) return
          let bytes = item.bytes
          if (direction === "up") {
            stats.bytesUp += bytes.length
            yield* writeTo(destination, bytes)
            continue
          }
          // stall at a message boundary
          let starts = item.starts
          while (stall !== undefined && starts.length > 0) {
            const current = stall
            const index = starts.findIndex((start) => {
              if (current.before !== undefined && start.type === current.before) return true
              if (current.after !== undefined && current.seen >= current.after) return true
              current.seen++
              return false
            })
            if (index < 0) break
            const cut = starts[index].offset
            yield* writeDown(link, destination, bytes.subarray(0, cut))
            if (link.closed) return
            bytes = bytes.subarray(cut)
            starts = starts.slice(index).map((start) => ({ offset: start.offset - cut, type: start.type }))
            stall = undefined
            stallGate = Deferred.makeUnsafe<void>()
            Deferred.doneUnsafe(stalledSignal, Effect.void)
            yield* Deferred.await(stallGate)
          }
          yield* writeDown(link, destination, bytes)
          if (link.closed) return
        }
      }).pipe(Effect.ignore)

    const writeDown = (link: Link, destination: net.Socket, chunk: Uint8Array) =>
      Effect.gen(function*() {
        const bytes = chunk
        if (link.budget !== undefined && bytes.length >= link.budget) {
          const allowed = bytes.subarray(0, link.budget)
          link.budget = 0
          stats.bytesDown += allowed.length
          if (allowed.length > 0) yield* writeTo(destination, allowed)
          destroyLink(link, "end")
          return
        }
        if (link.budget !== undefined) link.budget -= bytes.length
        if (!slicing) {
          stats.bytesDown += bytes.length
          if (bytes.length > 0) yield* writeTo(destination, bytes)
          return
        }
        for (let i = 0; i < bytes.length; i++) {
          if (link.closed) return
          stats.bytesDown += 1
          yield* writeTo(destination, bytes.subarray(i, i + 1))
          // let the client read this byte on its own before the next one
          yield* nextTick
        }
      })

    const connectUpstream = (link: Link) => {
      const server = net.connect({ host: target.host, port: target.port })
      link.server = server
      server.setNoDelay(true)
      server.on("error", () => {})
      server.on("data", (chunk: Buffer) => {
        if (link.closed || blackholed) return
        Queue.offerUnsafe(link.down, { _tag: "Data", bytes: chunk, at: now(), starts: link.framer.scan(chunk) })
      })
      server.on("close", () => {
        if (link.closed) return
        Queue.offerUnsafe(link.down, { _tag: "End", at: now() })
      })
    }

    const forwardCancel = (link: Link) => {
      if (cancel.drop === "close") {
        destroyLink(link, "end")
        return
      }
      if (cancel.drop === "hang") return
      const deliver = () => {
        if (link.closed) return
        stats.cancelsForwarded++
        const bytes = link.head
        const server = net.connect({ host: target.host, port: target.port })
        server.on("error", () => {})
        server.on("connect", () => server.end(bytes))
        server.on("close", () => {
          // the postmaster closed: so does the client side (if it is still there)
          link.client.end()
          setTimeout(() => link.client.destroy(), 200).unref()
        })
        link.server = server
      }
      if ((cancel.delay ?? 0) > 0) setTimeout(deliver, cancel.delay).unref()
      else deliver()
    }

    const onClientData = (link: Link, chunk: Buffer) => {
      if (link.closed) return
      if (link.kind === "pending") {
        const head = new Uint8Array(link.head.length + chunk.length)
        head.set(link.head)
        head.set(chunk, link.head.length)
        link.head = head
        if (head.length < 8) return
        const code = ((head[4] << 24) | (head[5] << 16) | (head[6] << 8) | head[7]) >>> 0
        if (code === CANCEL_CODE) {
          if (head.length < 16) return
          link.kind = "cancel"
          links.delete(link)
          cancelLinks.add(link)
          stats.cancelRequests++
          if (blackholed) return // held like any connection during a blackhole
          forwardCancel(link)
          return
        }
        link.kind = "session"
        if (code === SSL_CODE || code === GSS_CODE) link.framer.bare = 1
        if (blackholed) return // the first packet is lost: this connection stays dead
        connectUpstream(link)
        Queue.offerUnsafe(link.up, { _tag: "Data", bytes: head, at: now(), starts: [] })
        return
      }
      if (link.kind === "cancel") return
      if (blackholed || link.server === undefined) return
      Queue.offerUnsafe(link.up, { _tag: "Data", bytes: chunk, at: now(), starts: [] })
    }

    const onConnection = (client: net.Socket) => {
      stats.accepted++
      client.setNoDelay(true)
      const link: Link = {
        id: nextId++,
        client,
        server: undefined,
        kind: "pending",
        head: new Uint8Array(0),
        framer: new Framer(),
        up: Effect.runSync(Queue.unbounded<Item>()),
        down: Effect.runSync(Queue.unbounded<Item>()),
        budget: limit,
        closed: false
      }
      links.add(link)
      client.on("error", () => {})
      client.on("data", (chunk: Buffer) => onClientData(link, chunk))
      // the client's FIN or close goes to the server after the data before it
      let ended = false
      const onClientEnd = () => {
        if (link.closed || ended) return
        if (link.kind === "cancel") return // a delayed cancel is still delivered (it is "in flight")
        ended = true
        if (link.server === undefined) {
          destroyLink(link, "destroy")
          return
        }
        Queue.offerUnsafe(link.up, { _tag: "End", at: now() })
      }
      client.on("end", onClientEnd)
      client.on("close", onClientEnd)
      run(pump(link, "up"))
      run(pump(link, "down"))
    }

    const server = yield* Effect.acquireRelease(
      Effect.callback<net.Server, Error>((resume) => {
        const srv = net.createServer({ noDelay: true, allowHalfOpen: true }, onConnection)
        srv.once("error", (error) => resume(Effect.fail(error)))
        srv.listen(0, listenHost, () => resume(Effect.succeed(srv)))
      }),
      (srv) =>
        Effect.callback<void>((resume) => {
          for (const link of [...links, ...cancelLinks]) destroyLink(link, "destroy")
          srv.close(() => resume(Effect.void))
          // connections held outside `links` (cancel ones) must not keep close() waiting
          setTimeout(() => resume(Effect.void), 500).unref()
        })
    )
    // the fibers go before the server: interrupt them first (scope finalizers run in reverse)
    yield* Effect.addFinalizer(() => FiberSet.clear(fibers))
    const address = server.address() as net.AddressInfo
    const port = address.port

    const sessionLinks = () => [...links].filter((link) => link.kind !== "cancel")

    const proxy: FaultProxy = {
      host: listenHost,
      port,
      url: (url) => {
        const u = new URL(url)
        u.hostname = listenHost.includes(":") ? `[${listenHost}]` : listenHost
        u.port = String(port)
        return u.toString()
      },
      stats: () => ({ ...stats, open: sessionLinks().filter((link) => !link.closed).length }),
      blackhole: Effect.sync(() => {
        blackholed = true
        if (Deferred.isDoneUnsafe(healGate)) healGate = Deferred.makeUnsafe<void>()
      }),
      heal: Effect.sync(() => {
        blackholed = false
        Deferred.doneUnsafe(healGate, Effect.void)
      }),
      reset: Effect.sync(() => {
        for (const link of sessionLinks()) destroyLink(link, "reset")
      }),
      close: Effect.sync(() => {
        for (const link of sessionLinks()) destroyLink(link, "end")
      }),
      latency: (ms) =>
        Effect.sync(() => {
          latencyMs = ms
        }),
      slice: (on) =>
        Effect.sync(() => {
          slicing = on
        }),
      stall: (options) =>
        Effect.sync(() => {
          stall = {
            before: options.before === undefined ? undefined : options.before.charCodeAt(0),
            after: options.after,
            seen: 0
          }
          if (Deferred.isDoneUnsafe(stalledSignal)) stalledSignal = Deferred.makeUnsafe<void>()
        }),
      resume: Effect.sync(() => {
        stall = undefined
        Deferred.doneUnsafe(stallGate, Effect.void)
      }),
      limitData: (bytes) =>
        Effect.sync(() => {
          limit = bytes
          for (const link of sessionLinks()) link.budget = bytes
        }),
      cancelPolicy: (policy) =>
        Effect.sync(() => {
          cancel = policy
        }),
      stalled: Effect.suspend(() => Deferred.await(stalledSignal))
    }
    return proxy
  })

/** Splits `host:port` out of a postgresql:// URL. */
export const targetOf = (url: string): ProxyTarget => {
  const u = new URL(url)
  const host = u.hostname.replace(/^\[|\]$/g, "") || "127.0.0.1"
  return { host: host === "localhost" ? "127.0.0.1" : host, port: Number(u.port || 5432) }
}

/** A proxy in front of the server of `url`, plus the URL that goes through it. */
export const inFrontOf = (url: string) =>
  Effect.map(make(targetOf(url)), (proxy) => ({ proxy, url: proxy.url(url) }))

/**
 * A listener that accepts connections and never answers (a silent server), on a free loopback
 * port. `accepted` counts the connections it got, `open` those the client has not closed yet.
 */
export const silentListener = (
  host = "127.0.0.1"
): Effect.Effect<{ readonly port: number; readonly accepted: () => number; readonly open: () => number }, Error, Scope.Scope> =>
  Effect.gen(function*() {
    if (!isLoopback(host)) return yield* Effect.fail(new Error("loopback only"))
    const sockets = new Set<net.Socket>()
    let accepted = 0
    const server = yield* Effect.acquireRelease(
      Effect.callback<net.Server, Error>((resume) => {
        const srv = net.createServer((socket) => {
          accepted++
          sockets.add(socket)
          socket.on("error", () => {})
          socket.on("close", () => sockets.delete(socket))
          // read and drop what the client sends: a socket with unread bytes never sees its EOF
          socket.resume()
        })
        srv.once("error", (error) => resume(Effect.fail(error)))
        srv.listen(0, host, () => resume(Effect.succeed(srv)))
      }),
      (srv) =>
        Effect.callback<void>((resume) => {
          for (const socket of sockets) socket.destroy()
          srv.close(() => resume(Effect.void))
        })
    )
    return { port: (server.address() as net.AddressInfo).port, accepted: () => accepted, open: () => sockets.size }
  })

/** A loopback port nothing listens on (bound, then released). */
export const refusedPort: Effect.Effect<number> = Effect.promise(
  () =>
    new Promise<number>((resolve, reject) => {
      const srv = net.createServer()
      srv.once("error", reject)
      srv.listen(0, "127.0.0.1", () => {
        const port = (srv.address() as net.AddressInfo).port
        srv.close(() => resolve(port))
      })
    })
)

/** Interrupts a fiber if it is still running (a helper for tests). */
export const interruptIfRunning = <A, E>(fiber: Fiber.Fiber<A, E>) => Fiber.interrupt(fiber)
