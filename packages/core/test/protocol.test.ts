/**
 * The I/O-free protocol conversations, driven with byte vectors: no server.
 */
import * as PgProtocol from "@effect/sql-pg/PgProtocol"
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { encodeCopyData, encodeCopyDone, encodeCopyFail, encodeQuery } from "../src/internal/frontend.ts"
import { parseCommandTag, QueryHandler } from "../src/internal/query.ts"
import { makeStartup } from "../src/internal/startup.ts"
import { StatementCache } from "../src/internal/statementCache.ts"
import type { ProtocolContext } from "../src/Session.ts"
import { createHash } from "node:crypto"

/** Builds one backend message: type byte, int32 length, body. */
const message = (type: string, ...parts: Array<Uint8Array | string | number>): Uint8Array => {
  const chunks: Array<Uint8Array> = []
  for (const part of parts) {
    if (typeof part === "string") chunks.push(new TextEncoder().encode(part + "\u0000"))
    else if (typeof part === "number") {
      const bytes = new Uint8Array(4)
      new DataView(bytes.buffer).setInt32(0, part)
      chunks.push(bytes)
    } else chunks.push(part)
  }
  const size = chunks.reduce((total, chunk) => total + chunk.length, 0)
  const out = new Uint8Array(5 + size)
  out[0] = type.charCodeAt(0)
  new DataView(out.buffer).setInt32(1, 4 + size)
  let offset = 5
  for (const chunk of chunks) {
    out.set(chunk, offset)
    offset += chunk.length
  }
  return out
}
const int16 = (value: number) => {
  const bytes = new Uint8Array(2)
  new DataView(bytes.buffer).setInt16(0, value)
  return bytes
}
const byte = (value: number) => Uint8Array.of(value)

const parse = (...frames: Array<Uint8Array>) => {
  const parser = PgProtocol.makeParser()
  const all = new Uint8Array(frames.reduce((n, f) => n + f.length, 0))
  let offset = 0
  for (const frame of frames) {
    all.set(frame, offset)
    offset += frame.length
  }
  return parser.push(all)
}

const authOk = message("R", 0)
const keyData = message("K", 1234, 5678)
const ready = (status: string) => message("Z", byte(status.charCodeAt(0)))

const startupOptions = {
  user: "alice",
  database: "test",
  parameters: {},
  address: "127.0.0.1:5432"
}

describe("startup conversation", () => {
  it("completes with trust authentication and keeps pid, secret and parameters", () => {
    const machine = makeStartup({ ...startupOptions, password: () => undefined })
    const steps = parse(authOk, message("S", "server_version", "18.4"), keyData, ready("I")).map(machine.onMessage)
    const last = steps[steps.length - 1]
    expect(last._tag).toBe("Ready")
    if (last._tag !== "Ready") return
    expect(last.result.pid).toBe(1234)
    expect(last.result.secret).toBe(5678)
    expect(last.result.parameters.get("server_version")).toBe("18.4")
  })

  it("answers an MD5 challenge with md5(md5(password + user) + salt)", () => {
    const machine = makeStartup({ ...startupOptions, password: () => "s3cret" })
    const salt = Uint8Array.of(1, 2, 3, 4)
    const [step] = parse(message("R", 5, salt)).map(machine.onMessage)
    expect(step._tag).toBe("Send")
    if (step._tag !== "Send") return
    const inner = createHash("md5").update("s3cretalice").digest("hex")
    const expected = "md5" + createHash("md5").update(inner).update(salt).digest("hex")
    const body = new TextDecoder().decode(step.bytes.subarray(5, step.bytes.length - 1))
    expect(String.fromCharCode(step.bytes[0])).toBe("p")
    expect(body).toBe(expected)
  })

  it("fails with a typed authentication error when a password is needed but missing", () => {
    const machine = makeStartup({ ...startupOptions, password: () => undefined })
    const [step] = parse(message("R", 3)).map(machine.onMessage)
    expect(step._tag).toBe("Failed")
    if (step._tag !== "Failed") return
    expect(step.error._tag).toBe("ConnectionError")
    expect(step.error.message).toContain("no password was supplied")
  })

  it("reports the server's refusal with its SQLSTATE and never the password", () => {
    const machine = makeStartup({ ...startupOptions, password: () => "hunter2" })
    const refusal = message(
      "E",
      "SFATAL",
      "VFATAL",
      "C28P01",
      "Mpassword authentication failed for user \"alice\"",
      ""
    )
    const steps = parse(message("R", 3), refusal).map(machine.onMessage)
    expect(steps[0]._tag).toBe("Send")
    const failed = steps[1]
    expect(failed._tag).toBe("Failed")
    if (failed._tag !== "Failed" || failed.error._tag !== "ConnectionError") throw new Error("expected failure")
    expect(failed.error.reason).toBe("Authentication")
    expect(failed.error.sqlState).toBe("28P01")
    expect(JSON.stringify(failed.error)).not.toContain("hunter2")
  })

  it("refuses ReadyForQuery before authentication and unknown messages", () => {
    const machine = makeStartup({ ...startupOptions, password: () => undefined })
    const [step] = parse(ready("I")).map(machine.onMessage)
    expect(step._tag).toBe("Failed")
    if (step._tag === "Failed") expect(step.error._tag).toBe("ProtocolError")
    const other = makeStartup({ ...startupOptions, password: () => undefined })
    const [data] = parse(message("D", int16(0))).map(other.onMessage)
    expect(data._tag).toBe("Failed")
  })

  it("refuses SASL mechanisms it does not implement", () => {
    const machine = makeStartup({ ...startupOptions, password: () => "x" })
    const [step] = parse(message("R", 10, "SCRAM-SHA-1", "")).map(machine.onMessage)
    expect(step._tag).toBe("Failed")
  })
})

const fakeContext = (written: Array<Uint8Array>): ProtocolContext => ({
  setFieldReader: () => {},
  write: (bytes) => {
    written.push(bytes)
  },
  pause: () => {},
  resume: () => {}
})

describe("query conversation", () => {
  it("collects results, the first error and the final status", () => {
    const handler = new QueryHandler("select 1; select x", undefined)
    const context = fakeContext([])
    const messages = parse(
      message("T", int16(0)),
      message("C", "SELECT 0"),
      message("E", "SERROR", "VERROR", "C42703", "Mcolumn \"x\" does not exist", "P8", ""),
      ready("I")
    )
    const done = messages.map((m) => handler.onMessage(m, context))
    expect(done).toEqual([false, false, false, true])
    handler.onDone()
    expect(handler.done).toBe(true)
    const outcome = Effect.runSync(handler.await)
    expect(outcome.results.map((result) => result.commandTag)).toEqual(["SELECT 0"])
    expect(outcome.error?._tag).toBe("UndefinedColumn")
    expect(outcome.status).toBe("I")
  })

  it("refuses COPY FROM STDIN with CopyFail and stays in sync", () => {
    const handler = new QueryHandler("copy t from stdin", undefined)
    const written: Array<Uint8Array> = []
    const context = fakeContext(written)
    for (const m of parse(message("G", byte(0), int16(0)))) handler.onMessage(m, context)
    expect(written).toHaveLength(1)
    expect(String.fromCharCode(written[0][0])).toBe("f")
  })

  it("parses command tags", () => {
    expect(parseCommandTag("INSERT 0 3")).toEqual({ command: "INSERT", rowCount: 3 })
    expect(parseCommandTag("SELECT 10")).toEqual({ command: "SELECT", rowCount: 10 })
    expect(parseCommandTag("CREATE TABLE")).toEqual({ command: "CREATE", rowCount: undefined })
    expect(parseCommandTag("BEGIN")).toEqual({ command: "BEGIN", rowCount: undefined })
  })
})

describe("frontend messages", () => {
  it("encodes Query, CopyData, CopyDone and CopyFail", () => {
    expect(Array.from(encodeQuery("select 1"))).toEqual([
      0x51, 0, 0, 0, 13, ...new TextEncoder().encode("select 1"), 0
    ])
    expect(Array.from(encodeCopyData(Uint8Array.of(7, 8)))).toEqual([0x64, 0, 0, 0, 6, 7, 8])
    expect(Array.from(encodeCopyDone())).toEqual([0x63, 0, 0, 0, 4])
    const fail = encodeCopyFail("x".repeat(50_000))
    expect(fail[0]).toBe(0x66)
    expect(fail.length).toBeLessThan(10_000)
  })
})

describe("statement cache", () => {
  it("prepares past the threshold and evicts the least recently used", () => {
    const cache = new StatementCache(2)
    expect([0, 1, 2].map(() => cache.countUse("a"))).toEqual([0, 1, 2])
    const statement = (name: string) => ({ name, fields: [], formats: [] })
    cache.set("a", statement("_pgfx_0"))
    cache.set("b", statement("_pgfx_1"))
    cache.get("a")
    cache.set("c", statement("_pgfx_2"))
    expect(cache.get("b")).toBeUndefined()
    expect(cache.takeEvicted()).toEqual(["_pgfx_1"])
    expect(cache.takeEvicted()).toEqual([])
    cache.observe("ALTER TABLE")
    expect(cache.size).toBe(0)
    expect(cache.takeEvicted()).toEqual(["_pgfx_0", "_pgfx_2"])
  })
})
