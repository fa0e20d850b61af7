/**
 * Property-based tests (fast-check) of the two parsers that read untrusted input: the protocol
 * decoder on core's wire path (FrameGuard + `PgProtocol` parser configured like core's + the
 * `Wire` dispatch into the startup and query handlers) and the conninfo parser (`PgConfig.parse`).
 * Pure: no server, one project only. Run counts are fixed and small; every property is bounded.
 */
import * as PgProtocol from "@effect/sql-pg/PgProtocol"
import { Effect, Exit, Redacted } from "effect"
import fc from "fast-check"
import { EventEmitter } from "node:events"
import type * as net from "node:net"
import { describe, expect, it } from "vitest"
import { PgConfig, PgError } from "../../src/index.ts"
import * as Conninfo from "../../src/internal/conninfo.ts"
import { QueryHandler } from "../../src/internal/query.ts"
import { makeStartup } from "../../src/internal/startup.ts"
import { FrameGuard, maxMessageSize, maxShortMessageSize, Wire } from "../../src/internal/wire.ts"
import type { ProtocolHandler } from "../../src/Session.ts"
import { primaryTarget } from "../../../../test/harness.ts"

/** Runs per property; `PGFX_FUZZ_RUNS=5000` for a deeper search. */
const RUNS = Number(process.env.PGFX_FUZZ_RUNS ?? 300)

// -----------------------------------------------------------------------------------------------
// protocol
// -----------------------------------------------------------------------------------------------

/** A socket stand-in for `Wire`: data is pushed with `emit("data", chunk)`. */
class FakeSocket extends EventEmitter {
  destroyed = false
  writableNeedDrain = false
  readonly written: Array<Uint8Array> = []
  write(bytes: Uint8Array) {
    this.written.push(bytes)
    return true
  }
  end() {
    this.destroyed = true
  }
  destroy() {
    this.destroyed = true
  }
  pause() {}
  resume() {}
}

const backendTypes = "RSKZTDCIn123stEANvGHWdcV"

/** A frame with a known type and a random body (structurally plausible or not). */
const arbFrame = fc.tuple(
  fc.constantFrom(...backendTypes.split(""), "x", "\u0000"),
  fc.oneof(
    fc.uint8Array({ maxLength: 40 }),
    // bodies that start like real ones: int16/int32 counts, then bytes
    fc.tuple(fc.integer({ min: -3, max: 5 }), fc.uint8Array({ maxLength: 30 })).map(([count, rest]) => {
      const out = new Uint8Array(2 + rest.length)
      new DataView(out.buffer).setInt16(0, count)
      out.set(rest, 2)
      return out
    })
  )
).map(([type, body]) => {
  const out = new Uint8Array(5 + body.length)
  out[0] = type.charCodeAt(0)
  new DataView(out.buffer).setInt32(1, 4 + body.length)
  out.set(body, 5)
  return out
})

/** Bytes: pure noise, or a run of frames, optionally with a corrupted length. */
const arbStream = fc.oneof(
  fc.uint8Array({ maxLength: 200 }),
  fc.array(arbFrame, { maxLength: 12 }).map((frames) => Uint8Array.from(frames.flatMap((f) => [...f]))),
  fc.tuple(fc.array(arbFrame, { minLength: 1, maxLength: 6 }), fc.nat(), fc.integer()).map(([frames, at, length]) => {
    const bytes = Uint8Array.from(frames.flatMap((f) => [...f]))
    const offset = at % Math.max(1, bytes.length - 4)
    new DataView(bytes.buffer).setInt32(offset, length)
    return bytes
  })
)

/** Splits bytes into chunks at random cut points (1-byte chunks included). */
const arbChunked = fc.tuple(arbStream, fc.array(fc.nat(), { maxLength: 20 })).map(([bytes, cuts]) => {
  const points = [...new Set(cuts.map((c) => (bytes.length === 0 ? 0 : c % bytes.length)))].sort((a, b) => a - b)
  const chunks: Array<Uint8Array> = []
  let last = 0
  for (const point of points) {
    if (point > last) chunks.push(bytes.subarray(last, point))
    last = point
  }
  chunks.push(bytes.subarray(last))
  return chunks.filter((c) => c.length > 0)
})

/** A handler driving the startup machine, as `Connection.handshake` does. */
const startupHandler = (): ProtocolHandler & { outcome: string | undefined } => {
  const machine = makeStartup({
    user: "alice",
    database: "db",
    password: () => "secret",
    parameters: {},
    address: "fuzz"
  })
  const handler = {
    outcome: undefined as string | undefined,
    onMessage: (message: PgProtocol.BackendMessage<unknown>) => {
      const step = machine.onMessage(message)
      if (step._tag === "Failed") {
        handler.outcome = step.error._tag
        return true
      }
      if (step._tag === "Ready") {
        handler.outcome = "Ready"
        return true
      }
      return false
    },
    onClose: (error: { readonly _tag: string }) => {
      handler.outcome ??= error._tag
    }
  }
  return handler
}

const isProtocolFailure = (error: unknown) =>
  error instanceof PgProtocol.ParseError || (PgError.isPgError(error) && error._tag === "ProtocolError")

describe.runIf(primaryTarget())("protocol decoder (fast-check)", () => {
  it("the parser configured like core's either decodes or throws its typed ParseError, on any bytes in any chunks", () => {
    fc.assert(
      fc.property(arbChunked, (chunks) => {
        const guard = new FrameGuard()
        const parser = PgProtocol.makeParser<unknown>({ maxMessageSize })
        try {
          for (const chunk of chunks) {
            guard.check(chunk)
            parser.pushEach(chunk, () => {})
          }
        } catch (error) {
          expect(isProtocolFailure(error), `untyped: ${String(error)}`).toBe(true)
        }
      }),
      { numRuns: RUNS }
    )
  })

  it("core's Wire never lets an exception escape: it stays open or closes with a typed error", () => {
    fc.assert(
      fc.property(arbChunked, fc.boolean(), (chunks, duringStartup) => {
        const socket = new FakeSocket()
        const wire = new Wire(socket as unknown as net.Socket, "fuzz")
        const closes: Array<string> = []
        wire.setHooks({
          onNotification: () => {},
          onParameterStatus: () => {},
          onNotice: () => {},
          onReadyForQuery: () => {},
          onClose: (error) => closes.push(error._tag)
        })
        const handler = duringStartup ? startupHandler() : new QueryHandler("SELECT fuzz", undefined)
        wire.enqueue(handler)
        for (const chunk of chunks) socket.emit("data", chunk)
        if (wire.closed) {
          expect(["ProtocolError", "ConnectionError"]).toContain(wire.closeError?._tag)
          expect(socket.destroyed).toBe(true)
        }
        if (handler instanceof QueryHandler && handler.done) {
          // a completed response, or a typed loss
          const exit = Effect.runSyncExit(handler.await)
          if (Exit.isFailure(exit)) expect(wire.closed).toBe(true)
        }
        if (!(handler instanceof QueryHandler) && handler.outcome !== undefined) {
          expect(["Ready", "ProtocolError", "ConnectionError"]).toContain(handler.outcome)
        }
      }),
      { numRuns: RUNS }
    )
  })

  it("a header claiming more than its type's limit is refused with nothing but the header buffered", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...backendTypes.split("")),
        fc.integer({ min: 0, max: 2 ** 32 - 1 }),
        fc.integer({ min: 1, max: 5 }),
        (type, length, split) => {
          const header = new Uint8Array(5)
          header[0] = type.charCodeAt(0)
          new DataView(header.buffer).setUint32(1, length)
          const long = "DdTENAVt".includes(type)
          const limit = long ? maxMessageSize : maxShortMessageSize
          const guard = new FrameGuard()
          let thrown: unknown
          try {
            // the header in two pieces: the check happens once all 5 bytes are there
            guard.check(header.subarray(0, split))
            guard.check(header.subarray(split))
          } catch (error) {
            thrown = error
          }
          const invalid = length < 4 || length > limit
          expect(thrown !== undefined).toBe(invalid)
          if (thrown !== undefined) expect(isProtocolFailure(thrown)).toBe(true)
        }
      ),
      { numRuns: RUNS }
    )
  })

  it("valid responses split at every byte decode exactly as in one piece", () => {
    const frames = [
      [0x54, 0, 1, ..."n\u0000".split("").map((c) => c.charCodeAt(0)), 0, 0, 0, 0, 0, 0, 0, 0, 0, 25, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0],
      [0x44, 0, 1, 0, 0, 0, 3, 0x61, 0x62, 0x63],
      [0x43, ..."SELECT 1\u0000".split("").map((c) => c.charCodeAt(0))],
      [0x5a, 0x49]
    ].map(([type, ...body]) => {
      const out = new Uint8Array(5 + body.length)
      out[0] = type
      new DataView(out.buffer).setInt32(1, 4 + body.length)
      out.set(body, 5)
      return out
    })
    const all = Uint8Array.from(frames.flatMap((f) => [...f]))
    const whole = PgProtocol.makeParser().push(all).map((m) => m._tag)
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: all.length - 1 }), { maxLength: all.length }), (cuts) => {
        const parser = PgProtocol.makeParser()
        const guard = new FrameGuard()
        const points = [0, ...new Set(cuts)].sort((a, b) => a - b)
        const tags: Array<string> = []
        points.forEach((point, index) => {
          const chunk = all.subarray(point, points[index + 1] ?? all.length)
          guard.check(chunk)
          for (const m of parser.push(chunk)) tags.push(m._tag)
        })
        expect(tags).toEqual(whole)
      }),
      { numRuns: 200 }
    )
  })
})

// ---------------------------------------------------------------------------------------------
// conninfo
// ---------------------------------------------------------------------------------------------

const parseExit = (text: string) => Effect.runSyncExit(PgConfig.parse(text))

/** Only a typed PgConfigError, never a defect or a throw. */
const expectTypedOrSuccess = (exit: Exit.Exit<unknown, PgConfig.PgConfigError>) => {
  if (Exit.isSuccess(exit)) return
  const errors = exit.cause.reasons.filter((reason) => reason._tag === "Fail")
  expect(errors.length, "a defect or an interruption instead of a PgConfigError").toBe(exit.cause.reasons.length)
  for (const reason of errors) expect((reason as { error: { _tag: string } }).error._tag).toBe("PgConfigError")
}

const keywords = [
  "host", "hostaddr", "port", "dbname", "user", "password", "passfile", "connect_timeout", "application_name",
  "options", "sslmode", "target_session_attrs", "load_balance_hosts", "keepalives", "channel_binding", "service", "x"
]
/** Text made of conninfo's own characters, so the parser's branches are reached. */
const arbConninfoish = fc.array(
  fc.oneof(
    fc.constantFrom(...keywords, "=", " ", "'", "\\", ",", "\t", "\n", "%", "%2F", "%0", "%00", "%zz", "[", "]", ":", "@", "/", "?", "&",
      "postgresql://", "postgres://", "::1", "127.0.0.1", "65536", "-1", "require", "é", "😀", "\u0000"),
    fc.string({ maxLength: 4 })
  ),
  { maxLength: 20 }
).map((parts) => parts.join(""))

describe.runIf(primaryTarget())("conninfo parser (fast-check)", () => {
  it("PgConfig.parse never throws on arbitrary strings: a value or a typed PgConfigError", () => {
    fc.assert(fc.property(fc.string({ unit: "binary", maxLength: 200 }), (text) => expectTypedOrSuccess(parseExit(text))), { numRuns: RUNS })
    fc.assert(fc.property(arbConninfoish, (text) => expectTypedOrSuccess(parseExit(text))), { numRuns: RUNS * 3 })
    fc.assert(
      fc.property(arbConninfoish, (text) => expectTypedOrSuccess(parseExit(`postgresql://${text}`))),
      { numRuns: RUNS * 3 }
    )
  })

  it("PgConfig.make never throws either (validation of every setting)", () => {
    fc.assert(
      fc.property(arbConninfoish, (text) => {
        const exit = Effect.runSyncExit(PgConfig.make(text))
        if (Exit.isFailure(exit)) {
          for (const reason of exit.cause.reasons) expect(reason._tag).toBe("Fail")
        }
      }),
      { numRuns: RUNS }
    )
  })

  it("a password never appears in a parse error, whatever surrounds it", () => {
    const marker = "Pw9xQz7Secret"
    fc.assert(
      fc.property(arbConninfoish, arbConninfoish, fc.constantFrom("kv", "kvq", "url", "urlq"), (before, after, form) => {
        const text = form === "kv"
          ? `${before} password=${marker} ${after}`
          : form === "kvq"
          ? `${before} password='${marker} ${after}`
          : form === "url"
          ? `postgresql://user:${marker}${after}@${before}`
          : `postgresql://${before}?password=${marker}${after}`
        const exit = parseExit(text)
        if (Exit.isFailure(exit)) {
          const shown = JSON.stringify(exit.cause.reasons.map((r) => r._tag === "Fail" ? { ...r.error, message: r.error.message } : r))
          expect(shown).not.toContain(marker)
        }
      }),
      { numRuns: RUNS * 2 }
    )
  })

  // valid settings: generated, rendered as conninfo and as a URL, parsed back
  const arbText = fc.string({ unit: "grapheme", minLength: 1, maxLength: 12 }).filter((s) => !s.includes("\u0000"))
  const arbHostname = fc.oneof(
    fc.stringMatching(/^[a-z][a-z0-9-]{0,8}(\.[a-z][a-z0-9]{0,4}){0,2}$/),
    fc.ipV4()
  )
  const arbSettings = fc.record({
    hosts: fc.array(fc.tuple(arbHostname, fc.integer({ min: 1, max: 65535 })), { minLength: 1, maxLength: 3 }),
    database: arbText,
    user: arbText,
    // a recognisable prefix, so the "never shown" check below cannot match other settings
    password: arbText.map((text) => `PW§${text}`),
    applicationName: arbText,
    options: arbText,
    sslmode: fc.constantFrom("disable", "allow", "prefer", "require", "verify-ca", "verify-full"),
    connectTimeout: fc.integer({ min: 0, max: 3600 }),
    targetSessionAttrs: fc.constantFrom("any", "read-write", "read-only", "primary", "standby", "prefer-standby"),
    loadBalanceHosts: fc.constantFrom("disable", "random")
  })
  type Settings = typeof arbSettings extends fc.Arbitrary<infer A> ? A : never

  const quote = (value: string) => `'${value.replace(/[\\']/g, (c) => `\\${c}`)}'`

  const keywordForm = (s: Settings, quoteAll: boolean) => {
    const q = (v: string) => (quoteAll ? quote(v) : Conninfo.quoteValue(v))
    return [
      `host=${q(s.hosts.map(([h]) => h).join(","))}`,
      `port=${s.hosts.map(([, p]) => p).join(",")}`,
      `dbname=${q(s.database)}`,
      `user = ${q(s.user)}`,
      `password=${q(s.password)}`,
      `application_name=${q(s.applicationName)}`,
      `options=${q(s.options)}`,
      `sslmode=${s.sslmode}`,
      `connect_timeout=${s.connectTimeout}`,
      `target_session_attrs=${s.targetSessionAttrs}`,
      `load_balance_hosts=${s.loadBalanceHosts}`
    ].join(quoteAll ? "\t" : " ")
  }

  const urlForm = (s: Settings) => {
    const e = encodeURIComponent
    return `postgresql://${e(s.user)}:${e(s.password)}@${s.hosts.map(([h, p]) => `${h}:${p}`).join(",")}/${e(s.database)}` +
      `?application_name=${e(s.applicationName)}&options=${e(s.options)}&sslmode=${s.sslmode}` +
      `&connect_timeout=${s.connectTimeout}&target_session_attrs=${s.targetSessionAttrs}&load_balance_hosts=${s.loadBalanceHosts}`
  }

  const expectRoundTrip = (text: string, s: Settings) => {
    const exit = parseExit(text)
    if (Exit.isFailure(exit)) throw new Error(`did not parse: ${JSON.stringify(exit.cause.reasons)}`)
    const input = exit.value
    const hosts = s.hosts.map(([h]) => h)
    const ports = s.hosts.map(([, p]) => p)
    expect(input.host).toEqual(hosts.length === 1 ? hosts[0] : hosts)
    expect(input.port).toEqual(ports.length === 1 ? ports[0] : ports)
    expect(input.database).toBe(s.database)
    expect(input.user).toBe(s.user)
    expect(Redacted.isRedacted(input.password)).toBe(true)
    expect(Redacted.value(input.password as Redacted.Redacted<string>)).toBe(s.password)
    expect(input.applicationName).toBe(s.applicationName)
    expect(input.options).toBe(s.options)
    expect(input.sslmode).toBe(s.sslmode)
    expect(input.connectTimeout).toBe(s.connectTimeout)
    expect(input.targetSessionAttrs).toBe(s.targetSessionAttrs)
    expect(input.loadBalanceHosts).toBe(s.loadBalanceHosts)
    // and the resolved config never shows the password
    const config = Effect.runSyncExit(PgConfig.make(text))
    if (Exit.isSuccess(config)) {
      expect(PgConfig.describe(config.value)).not.toContain(`password`)
      expect(JSON.stringify(config.value)).not.toContain("PW§")
      expect(String(config.value.password)).not.toContain("PW§")
    }
  }

  it("generated valid settings round-trip through the keyword/value form (minimal and full quoting)", () => {
    fc.assert(fc.property(arbSettings, (s) => expectRoundTrip(keywordForm(s, false), s)), { numRuns: RUNS })
    fc.assert(fc.property(arbSettings, (s) => expectRoundTrip(keywordForm(s, true), s)), { numRuns: RUNS })
  })

  it("generated valid settings round-trip through the URL form", () => {
    fc.assert(fc.property(arbSettings, (s) => expectRoundTrip(urlForm(s), s)), { numRuns: RUNS })
  })
})
