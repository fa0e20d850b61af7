/**
 * A hostile server (test/faults/fakeServer.ts): truncated, oversized, unknown, out-of-order and
 * malformed messages, wrong authentication requests, garbage after SSLRequest. Whatever it
 * sends, the client never crashes, never buffers what a length field claims before checking it
 * against a limit, never hangs past its deadline, and fails with a typed ProtocolError or
 * ConnectionError. No PostgreSQL involved: one project only.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, Fiber } from "effect"
import { Connection, PgError } from "../../src/index.ts"
import { maxMessageSize } from "../../src/internal/wire.ts"
import { primaryTarget } from "../../../../test/harness.ts"
import * as Fake from "../../../../test/faults/fakeServer.ts"
import { failureOf } from "./support.ts"

const { msg, frame, raw, concat } = Fake

type Script = (client: Fake.FakeClient) => Effect.Effect<unknown, unknown>

/** Connects to a fake server running `script`; returns the exit, the time taken and the server. */
const connectTo = (script: Script, extra = "connect_timeout=2", options?: Connection.ConnectOptions) =>
  Effect.gen(function*() {
    const server = yield* Fake.make(script)
    const started = performance.now()
    const exit = yield* Effect.exit(Effect.scoped(Effect.flatMap(
      Connection.connect(server.conninfo(extra), options),
      (conn) => conn.execute("SELECT 1")
    )))
    return { exit, ms: performance.now() - started, server }
  })

/** The failure is a typed pgfx error of one of `tags`. */
const expectTyped = (exit: Exit.Exit<unknown, unknown>, tags: ReadonlyArray<string>) => {
  const error = failureOf(exit)
  expect(PgError.isPgError(error), `not a pgfx error: ${String(error)}`).toBe(true)
  expect(tags).toContain((error as PgError.PgError)._tag)
  return error as PgError.PgError
}

const arrayBuffers = () => process.memoryUsage().arrayBuffers

/** Sends the startup answer `bytes`, then keeps the socket open without a word. */
const answerLogin = (...bytes: ReadonlyArray<Uint8Array | string>): Script => (client) =>
  Effect.gen(function*() {
    yield* client.readPacket
    yield* client.send(...bytes)
    yield* client.hang
  })

/** A normal login, then the answer to the first Query is `bytes`; then hangs. */
const answerQuery = (...bytes: ReadonlyArray<Uint8Array | string>): Script => (client) =>
  Effect.gen(function*() {
    yield* client.acceptLogin
    yield* client.readUntil("Q")
    yield* client.send(...bytes)
    yield* client.hang
  })

const ok = () => concat([msg.rowDescription([{ name: "x", typeOid: 23 }]), msg.dataRow(["1"]), msg.commandComplete("SELECT 1"), msg.readyForQuery()])

describe.runIf(primaryTarget())("hostile server: startup", () => {
  it.live("a truncated authentication request, then FIN → typed ConnectionError at once", () =>
    Effect.gen(function*() {
      const { exit, ms } = yield* connectTo((client) =>
        Effect.gen(function*() {
          yield* client.readPacket
          yield* client.send(msg.authOk().subarray(0, 6))
          yield* client.end
          yield* client.hang
        })
      )
      const error = expectTyped(exit, ["ConnectionError"])
      if (error._tag === "ConnectionError") expect(error.reason).toBe("Closed")
      expect(ms).toBeLessThan(500)
    }).pipe(Effect.scoped))

  it.live("a truncated message, then silence → never past connect_timeout", () =>
    Effect.gen(function*() {
      const { exit, ms } = yield* connectTo(answerLogin(msg.authOk().subarray(0, 3)))
      const error = expectTyped(exit, ["ConnectionError"])
      if (error._tag === "ConnectionError") expect(error.reason).toBe("Timeout")
      expect(ms).toBeLessThan(2500)
    }).pipe(Effect.scoped))

  for (const [label, length] of [
    ["2^31 - 1", 2 ** 31 - 1],
    ["2^31 (negative as int32)", 2 ** 31],
    ["2^32 - 1 (-1)", 2 ** 32 - 1],
    ["3 (below the 4-byte minimum)", 3],
    ["maxMessageSize + 1", maxMessageSize + 1],
    ["exactly maxMessageSize (1 GiB) for an authentication request", maxMessageSize],
    ["64 KiB for an authentication request", 64 * 1024]
  ] as const) {
    it.live(`a length field of ${label} is refused before its bytes are buffered`, () =>
      Effect.gen(function*() {
        const before = arrayBuffers()
        const { exit, ms } = yield* connectTo((client) =>
          Effect.gen(function*() {
            yield* client.readPacket
            yield* client.send(raw("R", length, new Uint8Array(16)))
            // keep feeding: a client that believed the length would keep buffering
            for (let i = 0; i < 16 && !client.socket.destroyed; i++) {
              yield* client.send(new Uint8Array(64 * 1024))
              yield* Effect.sleep("5 millis")
            }
            yield* client.hang
          })
        )
        const error = expectTyped(exit, ["ProtocolError"])
        expect(error.message).toMatch(/length|exceeds|invalid/i)
        expect(ms).toBeLessThan(500)
        expect(arrayBuffers() - before).toBeLessThan(32 * 1024 * 1024)
      }).pipe(Effect.scoped))
  }

  const startupCases: ReadonlyArray<readonly [string, Uint8Array, ReadonlyArray<string>]> = [
    ["an unknown message type", frame("x", "what"), ["ProtocolError"]],
    ["ReadyForQuery before AuthenticationOk", msg.readyForQuery(), ["ProtocolError"]],
    ["a DataRow during startup", concat([msg.authOk(), msg.dataRow(["1"])]), ["ProtocolError"]],
    ["SASLContinue without SASL", msg.authSaslContinue("r=abc,s=c2FsdA==,i=4096"), ["ProtocolError"]],
    ["SASLFinal without SASL", msg.authSaslFinal("v=abc"), ["ProtocolError"]],
    ["a BackendKeyData 4 bytes short", concat([msg.authOk(), frame("K", { int32: 1 })]), ["ProtocolError"]],
    ["an unterminated SASL mechanism list", frame("R", { int32: 10 }, new TextEncoder().encode("SCRAM-SHA-256")), ["ProtocolError"]],
    ["an ErrorResponse without its terminator", frame("E", { byte: 0x53 }, new TextEncoder().encode("FATAL")), ["ProtocolError"]],
    ["an MD5 request with a 2-byte salt", frame("R", { int32: 5 }, Uint8Array.of(1, 2)), ["ProtocolError"]],
    ["a ReadyForQuery with status 'X'", concat([msg.authOk(), frame("Z", { byte: 0x58 })]), ["ProtocolError"]],
    ["a NegotiateProtocolVersion claiming 2^31-1 options", frame("v", { int32: 0 }, { int32: 2 ** 31 - 1 }), ["ProtocolError"]],
    ["trailing bytes after an AuthenticationOk", frame("R", { int32: 0 }, { int32: 7 }), ["ProtocolError"]],
    ["GSSAPI authentication (code 7)", msg.authCode(7), ["ConnectionError"]],
    ["SSPI authentication (code 9)", msg.authCode(9), ["ConnectionError"]],
    ["an unknown authentication code (99)", msg.authCode(99), ["ConnectionError"]],
    ["SASL offering only SCRAM-SHA-256-PLUS and OAUTHBEARER", msg.authSasl("SCRAM-SHA-256-PLUS", "OAUTHBEARER"), ["ConnectionError"]],
    ["SASL offering no mechanism at all", msg.authSasl(), ["ConnectionError"]],
    // a server that skips the SASL exchange it started never proved it knows the password
    ["AuthenticationOk right after the SASL request", concat([msg.authSasl("SCRAM-SHA-256"), msg.authOk()]), ["ProtocolError"]],
    ["a FATAL 28P01 password failure", msg.error({ S: "FATAL", V: "FATAL", C: "28P01", M: "password authentication failed" }), ["ConnectionError"]],
    ["an ErrorResponse with no fields", frame("E", Uint8Array.of(0)), ["ConnectionError"]]
  ]
  for (const [label, bytes, tags] of startupCases) {
    it.live(`startup: ${label} → ${tags.join("/")}`, () =>
      Effect.gen(function*() {
        const { exit, ms } = yield* connectTo(answerLogin(bytes), "connect_timeout=2 password=secret")
        expectTyped(exit, tags)
        expect(ms).toBeLessThan(1000)
      }).pipe(Effect.scoped))
  }

  it.live("a password request when no password is configured → typed Authentication error", () =>
    Effect.gen(function*() {
      for (const request of [msg.authCleartext(), msg.authMd5(), msg.authSasl("SCRAM-SHA-256")]) {
        const { exit } = yield* connectTo(answerLogin(request), "connect_timeout=2 passfile=/nonexistent")
        const error = expectTyped(exit, ["ConnectionError"])
        if (error._tag === "ConnectionError") expect(error.reason).toBe("Authentication")
      }
    }).pipe(Effect.scoped))

  /** Runs a SCRAM exchange whose server messages are made by `serverFirst` / `serverFinal`. */
  const scram = (serverFirst: (clientNonce: string) => string, serverFinal = "v=AAAA") =>
    (client: Fake.FakeClient) =>
      Effect.gen(function*() {
        yield* client.readPacket
        yield* client.send(msg.authSasl("SCRAM-SHA-256"))
        const initial = yield* client.readMessage
        const text = new TextDecoder().decode(initial.body)
        const nonce = /r=([^,\u0000]+)/.exec(text)?.[1] ?? ""
        yield* client.send(msg.authSaslContinue(serverFirst(nonce)))
        yield* client.readMessage
        yield* client.send(msg.authSaslFinal(serverFinal), msg.authOk(), msg.backendKeyData(), msg.readyForQuery())
        yield* client.hang
      })

  it.live("SCRAM: a server nonce that does not extend ours, a bad iteration count, a forged signature → Authentication", () =>
    Effect.gen(function*() {
      const salt = Buffer.from("salty salt").toString("base64")
      const cases: ReadonlyArray<readonly [string, Script]> = [
        ["foreign nonce", scram(() => `r=someone-elses-nonce,s=${salt},i=4096`)],
        ["iteration count 0", scram((n) => `r=${n}xyz,s=${salt},i=0`)],
        ["iteration count 2^31 - 1 (hours of PBKDF2)", scram((n) => `r=${n}xyz,s=${salt},i=2147483647`)],
        ["missing salt", scram((n) => `r=${n}xyz,i=4096`)],
        ["garbage", scram(() => "\u0001\u0002 not scram at all")],
        ["forged server signature", scram((n) => `r=${n}xyz,s=${salt},i=4096`, `v=${Buffer.alloc(32).toString("base64")}`)],
        ["server error instead of the final message", scram((n) => `r=${n}xyz,s=${salt},i=4096`, "e=invalid-proof")]
      ]
      for (const [label, script] of cases) {
        const { exit, ms } = yield* connectTo(script, "connect_timeout=2 password=secret")
        const error = expectTyped(exit, ["ConnectionError", "ProtocolError"])
        expect(error._tag, label).toBe("ConnectionError")
        if (error._tag === "ConnectionError") expect(error.reason, label).toBe("Authentication")
        expect(ms, label).toBeLessThan(1500)
      }
    }).pipe(Effect.scoped))

  const sslCases: ReadonlyArray<readonly [string, ReadonlyArray<Uint8Array | string>, string, ReadonlyArray<string>]> = [
    ["'N' and garbage in one packet (CVE-2021-23222)", [concat([new TextEncoder().encode("N"), msg.authOk()])], "prefer", ["ProtocolError"]],
    ["'S' and plaintext in one packet (CVE-2021-23222)", [concat([new TextEncoder().encode("S"), msg.authOk()])], "require", ["ProtocolError"]],
    ["an answer that is neither S nor N", ["X"], "prefer", ["ProtocolError"]],
    ["an HTTP response", ["HTTP/1.1 400 Bad Request\r\n\r\n"], "prefer", ["ProtocolError"]],
    ["an ErrorResponse", [msg.error({ S: "FATAL", C: "08P01", M: "unsupported frontend protocol" })], "prefer", ["ProtocolError"]],
    ["'N' when TLS is required", ["N"], "require", ["ConnectionError"]]
  ]
  for (const [label, answer, sslmode, tags] of sslCases) {
    it.live(`after SSLRequest: ${label} → ${tags.join("/")}`, () =>
      Effect.gen(function*() {
        const { exit, ms } = yield* connectTo(
          (client) =>
            Effect.gen(function*() {
              const packet = yield* client.readPacket
              expect(packet._tag).toBe("SSLRequest")
              yield* client.send(...answer)
              yield* client.hang
            }),
          `connect_timeout=2 sslmode=${sslmode}`
        )
        expectTyped(exit, tags)
        expect(ms).toBeLessThan(1000)
      }).pipe(Effect.scoped))
  }

  it.live("after SSLRequest: 'S' then garbage instead of a TLS handshake → typed Tls error", () =>
    Effect.gen(function*() {
      const { exit, ms } = yield* connectTo(
        (client) =>
          Effect.gen(function*() {
            yield* client.readPacket
            yield* client.send("S")
            yield* client.readMessage.pipe(Effect.timeout("500 millis"), Effect.ignore)
            yield* client.send("this is not a TLS ServerHello at all, just bytes\r\n")
            yield* client.hang
          }),
        "connect_timeout=2 sslmode=require"
      )
      const error = expectTyped(exit, ["ConnectionError"])
      if (error._tag === "ConnectionError") expect(error.reason).toBe("Tls")
      expect(ms).toBeLessThan(1500)
    }).pipe(Effect.scoped))

  it.live("after SSLRequest: 'N' then garbage in a later packet → ProtocolError", () =>
    Effect.gen(function*() {
      const { exit, ms } = yield* connectTo(
        (client) =>
          Effect.gen(function*() {
            yield* client.readPacket
            yield* client.send("N")
            yield* client.readPacket
            yield* client.send("HTTP/1.1 400 Bad Request\r\n\r\n")
            yield* client.hang
          }),
        "connect_timeout=2 sslmode=prefer"
      )
      expectTyped(exit, ["ProtocolError"])
      expect(ms).toBeLessThan(1000)
    }).pipe(Effect.scoped))

  it.live("a server that RSTs right after accepting, or right after 'N' → typed ConnectionError, no crash", () =>
    Effect.gen(function*() {
      for (let round = 0; round < 10; round++) {
        const { exit } = yield* connectTo(
          (client) =>
            round % 2 === 0
              ? client.reset
              : Effect.gen(function*() {
                yield* client.readPacket
                yield* client.send("N")
                yield* client.reset
              }),
          "connect_timeout=2 sslmode=prefer"
        )
        expectTyped(exit, ["ConnectionError"])
      }
    }).pipe(Effect.scoped))

  it.live("a login sliced into 1-byte writes parses", () =>
    Effect.gen(function*() {
      const { exit } = yield* connectTo((client) =>
        Effect.gen(function*() {
          yield* client.readPacket
          yield* client.sendSliced(Fake.loginOk())
          yield* client.readUntil("Q")
          yield* client.sendSliced(ok())
          yield* client.hang
        })
      )
      expect(Exit.isSuccess(exit)).toBe(true)
      if (Exit.isSuccess(exit)) expect(exit.value.rows).toEqual([[1]])
    }).pipe(Effect.scoped))
})

describe.runIf(primaryTarget())("hostile server: statements", () => {
  const queryCases: ReadonlyArray<readonly [string, ReadonlyArray<Uint8Array>, ReadonlyArray<string>]> = [
    ["a DataRow before any RowDescription", [msg.dataRow(["1"]), msg.commandComplete("SELECT 1"), msg.readyForQuery()], ["ProtocolError"]],
    ["an unknown message type in the response", [frame("x", "?"), ok()], ["ProtocolError"]],
    ["a DataRow claiming 2^31-1 bytes", [msg.rowDescription([{ name: "x", typeOid: 23 }]), raw("D", 2 ** 31 - 1)], ["ProtocolError"]],
    ["a CommandComplete claiming 100 MiB", [raw("C", 100 * 1024 * 1024)], ["ProtocolError"]],
    ["a DataRow with more fields than its bytes", [msg.rowDescription([{ name: "x", typeOid: 23 }]), frame("D", { int16: 5 }, { int32: 1 }, "1")], ["ProtocolError"]],
    ["a DataRow field length of -2", [msg.rowDescription([{ name: "x", typeOid: 23 }]), frame("D", { int16: 1 }, { int32: -2 })], ["ProtocolError"]],
    ["a DataRow field running past the message", [msg.rowDescription([{ name: "x", typeOid: 23 }]), frame("D", { int16: 1 }, { int32: 1000 }, "1")], ["ProtocolError"]],
    ["a RowDescription with a negative field count", [frame("T", { int16: -1 })], ["ProtocolError"]],
    ["a CommandComplete without its terminator", [frame("C", new TextEncoder().encode("SELECT 1"))], ["ProtocolError"]],
    ["a FATAL ErrorResponse and a close", [msg.error({ S: "FATAL", V: "FATAL", C: "57P01", M: "terminating connection due to administrator command" })], ["ConnectionError"]]
  ]
  for (const [label, bytes, tags] of queryCases) {
    it.live(`query: ${label} → ${tags.join("/")}`, () =>
      Effect.gen(function*() {
        const before = arrayBuffers()
        const { exit, ms } = yield* connectTo((client) =>
          Effect.gen(function*() {
            yield* client.acceptLogin
            yield* client.readUntil("Q")
            yield* client.send(...bytes)
            if (tags[0] === "ConnectionError") yield* client.end
            yield* client.hang
          })
        )
        expectTyped(exit, tags)
        expect(ms).toBeLessThan(1000)
        expect(arrayBuffers() - before).toBeLessThan(32 * 1024 * 1024)
      }).pipe(Effect.scoped))
  }

  it.live("a truncated response and silence: the caller's timeout, a cancel, a bounded drain, then retired", () =>
    Effect.gen(function*() {
      const server = yield* Fake.make(answerQuery(msg.rowDescription([{ name: "x", typeOid: 23 }]), msg.dataRow(["1"]).subarray(0, 7)))
      const conn = yield* Connection.connect(server.conninfo(), { cancelTimeout: "300 millis", drainTimeout: "300 millis" })
      const started = performance.now()
      const exit = yield* conn.execute("SELECT 1").pipe(Effect.timeout("200 millis"), Effect.exit)
      expect(Exit.isFailure(exit) && Cause.pretty(exit.cause).includes("TimeoutError")).toBe(true)
      // the caller's deadline is kept; the cancel and the drain go on in the background
      expect(performance.now() - started).toBeLessThan(200 + 250)
      yield* conn.session.settled
      expect(performance.now() - started).toBeLessThan(200 + 300 + 300 + 300)
      // a cancel, repeated while unanswered (every 250 ms) until the drain deadline
      expect(server.cancels()).toBeGreaterThanOrEqual(1)
      expect(server.cancels()).toBeLessThanOrEqual(2)
      expect(conn.broken).toBe(true)
      const next = yield* Effect.flip(conn.execute("SELECT 1"))
      expect(next._tag).toBe("ConnectionError")
    }).pipe(Effect.scoped))

  it.live("a message nobody asked for, while idle, closes the connection with a ProtocolError", () =>
    Effect.gen(function*() {
      const server = yield* Fake.make((client) =>
        Effect.gen(function*() {
          yield* client.acceptLogin
          yield* Effect.sleep("50 millis")
          // harmless asynchronous messages first, then a stray DataRow
          yield* client.send(msg.parameterStatus("TimeZone", "UTC"), msg.notice({ S: "NOTICE", C: "00000", M: "hi" }))
          yield* client.send(msg.dataRow(["stray"]))
          yield* client.hang
        })
      )
      const conn = yield* Connection.connect(server.conninfo())
      yield* Effect.sleep("200 millis")
      expect(conn.info.parameterStatus("TimeZone")).toBe("UTC")
      expect(conn.closed).toBe(true)
      expect(conn.broken).toBe(true)
      const error = yield* Effect.flip(conn.execute("SELECT 1"))
      expect(error._tag).toBe("ProtocolError")
    }).pipe(Effect.scoped))

  it.live("an extra ReadyForQuery after a complete response closes the connection with a ProtocolError", () =>
    Effect.gen(function*() {
      const server = yield* Fake.make(answerQuery(ok(), msg.readyForQuery()))
      const conn = yield* Connection.connect(server.conninfo())
      expect((yield* conn.execute("SELECT 1")).rows).toEqual([[1]])
      yield* Effect.sleep("100 millis")
      expect(conn.broken).toBe(true)
      expect((yield* Effect.flip(conn.execute("SELECT 1")))._tag).toBe("ProtocolError")
    }).pipe(Effect.scoped))

  it.live("a statement answered one byte at a time parses, rows and errors alike", () =>
    Effect.gen(function*() {
      const server = yield* Fake.make((client) =>
        Effect.gen(function*() {
          yield* client.acceptLogin
          yield* client.readUntil("Q")
          yield* client.sendSliced(
            msg.rowDescription([{ name: "a", typeOid: 25 }, { name: "b", typeOid: 23 }]),
            msg.dataRow(["é€😀", "1"]),
            msg.dataRow([null, "2"]),
            msg.commandComplete("SELECT 2"),
            msg.readyForQuery()
          )
          yield* client.readUntil("Q")
          yield* client.sendSliced(msg.error({ S: "ERROR", V: "ERROR", C: "22012", M: "division by zero" }), msg.readyForQuery())
          yield* client.hang
        })
      )
      const conn = yield* Connection.connect(server.conninfo())
      expect((yield* conn.execute("SELECT a, b")).rows).toEqual([["é€😀", 1], [null, 2]])
      expect((yield* Effect.flip(conn.execute("SELECT 1/0")))._tag).toBe("DivisionByZero")
      expect(conn.closed).toBe(false)
    }).pipe(Effect.scoped))

  it.live("garbage bursts from a server at every stage never crash the process", () =>
    Effect.gen(function*() {
      // deterministic pseudo-random garbage (xorshift), 40 rounds
      let seed = 0x9e3779b9
      const next = () => {
        seed ^= seed << 13
        seed ^= seed >>> 17
        seed ^= seed << 5
        return seed >>> 0
      }
      const garbage = (n: number) => Uint8Array.from({ length: n }, () => next() & 0xff)
      const deadline = performance.now() + 8000
      let rounds = 0
      for (let round = 0; round < 40 && performance.now() < deadline; round++, rounds++) {
        const afterLogin = round % 2 === 1
        const bytes = garbage(1 + (next() % 300))
        const fiber = yield* Effect.forkChild(connectTo(
          (client) =>
            Effect.gen(function*() {
              if (afterLogin) {
                yield* client.acceptLogin
                yield* client.readUntil("Q")
              } else yield* client.readPacket
              yield* client.send(bytes)
              if (round % 3 === 0) yield* client.end
              yield* client.hang
            }),
          "connect_timeout=2",
          { cancelTimeout: "200 millis", drainTimeout: "200 millis" }
        ).pipe(Effect.map(({ exit }) => exit), Effect.timeout("1 second"), Effect.exit))
        const exit = yield* Fiber.join(fiber)
        // either a typed failure, or our own 1 s deadline around a client honouring its own
        if (Exit.isSuccess(exit)) {
          const inner = exit.value
          if (Exit.isFailure(inner)) {
            const error = Cause.findErrorOption(inner.cause)
            expect(error._tag).toBe("Some")
            if (error._tag === "Some") expect(PgError.isPgError(error.value)).toBe(true)
          }
        }
      }
      expect(rounds).toBeGreaterThan(5)
    }).pipe(Effect.scoped), 20_000)
})
