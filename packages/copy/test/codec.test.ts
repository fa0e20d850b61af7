/**
 * The COPY codecs without a server: parsers fed rows split across (or packed
 * into) messages, the in-place fast paths agreeing with core's text decoders,
 * statement options, and the binary framing of `encodeRows`.
 */
import { describe, expect, it } from "@effect/vitest"
import { PgValue } from "@pgfx/core"
import { Effect, Result } from "effect"
import { Copy } from "../src/index.ts"
import { binaryParser } from "../src/internal/binaryDecode.ts"
import type { RowParser } from "../src/internal/decode.ts"
import { plan } from "../src/internal/statement.ts"
import { makeDialect } from "../src/internal/dialect.ts"
import { csvParser, textParser } from "../src/internal/textParse.ts"
import { primaryTarget } from "../../../test/harness.ts"
import { sampleBinary, sampleBinaryBlocks, sampleRecords, sampleText, utf8 } from "./helpers.ts"

/** Feeds `data` to a parser in pieces of `size` bytes, carrying incomplete rows like the handler does. */
const feed = (parser: RowParser, data: Uint8Array, size: number): Array<ReadonlyArray<unknown>> => {
  const out: Array<ReadonlyArray<unknown>> = []
  let carry = new Uint8Array(0)
  for (let at = 0; at < data.length; at += size) {
    const piece = data.subarray(at, Math.min(at + size, data.length))
    const bytes = new Uint8Array(carry.length + piece.length)
    bytes.set(carry)
    bytes.set(piece, carry.length)
    const used = parser.parse(bytes, 0, bytes.length, out)
    carry = bytes.slice(used)
  }
  expect(carry.length).toBe(0)
  return out
}

const OID = PgValue.OID

describe.runIf(primaryTarget())("COPY codecs", () => {
  it("text rows parse the same whatever the message boundaries", () => {
    const data = utf8(sampleText.repeat(3) + "1\t\\N\tback\\\\slash\\ttab\\n\n")
    for (const size of [1, 2, 3, 7, 1000]) {
      const rows = feed(textParser([OID.int4, OID.int4, OID.text], 3, makeDialect({ csv: false }), false), data, size)
      expect(rows).toEqual([...sampleRecords, ...sampleRecords, ...sampleRecords, [1, null, "back\\slash\ttab\n"]])
    }
  })

  it("text unescaping covers every backslash sequence the server reads", () => {
    const parser = textParser(undefined, 1, makeDialect({ csv: false }), false)
    const rows = feed(parser, utf8("\\b\\f\\n\\r\\t\\v\\\\\\101\\x41\\x4\\q\\N\n\\N\n"), 5)
    expect(rows).toEqual([["\b\f\n\r\t\v\\AA\u0004qN"], [null]])
  })

  it("CSV rows with quotes, embedded newlines and CRLF parse across boundaries", () => {
    const data = utf8("h1,h2\r\n1,\"a \"\"quoted\"\"\nline\"\r\n2,\n3,\"\"\n")
    for (const size of [1, 4, 100]) {
      const rows = feed(csvParser([OID.int4, OID.text], 2, makeDialect({ csv: true }), true), data, size)
      expect(rows).toEqual([[1, "a \"quoted\"\nline"], [2, null], [3, ""]])
    }
    const escaped = feed(
      csvParser(undefined, 1, makeDialect({ csv: true, escape: "\\" }), false),
      utf8("\"a\\\"b\\\\c\"\n"),
      3
    )
    expect(escaped).toEqual([["a\"b\\c"]])
  })

  it("binary rows parse the same whatever the message boundaries; a wrong signature is refused", () => {
    for (const size of [1, 5, 19, 46, 71]) {
      const parser = binaryParser([OID.int4, OID.int4, OID.text], 3)
      expect(feed(parser, sampleBinary, size)).toEqual(sampleRecords)
      expect(parser.ended).toBe(true)
    }
    const bad = binaryParser(undefined, 3)
    expect(() => bad.parse(utf8("PGCOPY\nXXX"), 0, 10, [])).toThrow("binary copy doesn't start with the expected signature")
  })

  it("encodeRows writes psycopg's exact binary sample: signature, rows, trailer", () =>
    Effect.runPromise(Effect.gen(function*() {
      const bytes = yield* Copy.encodeRows(sampleRecords, { format: "binary", types: ["int4", "int4", "text"] })
      expect(bytes).toEqual(sampleBinary)
      const empty = yield* Copy.encodeRows([], { format: "binary", columns: 3 })
      expect(Array.from(empty)).toEqual([...sampleBinaryBlocks[0].subarray(0, 19), 0xff, 0xff])
      const text = yield* Copy.encodeRows(sampleRecords)
      expect(new TextDecoder().decode(text)).toBe(sampleText)
    })))

  it("the in-place float and timestamp readers give exactly core's values", () => {
    const floats = [
      "0", "-0", "1", "-1.5", "0.1", "3.141592653589793", "1e+21", "1.7976931348623157e+308", "5e-324", "123456789012345",
      "1234567890123456789", "-2.5e-7", "NaN", "Infinity", "-Infinity", "100", "0.30000000000000004", "4.35", "1e22", "1e23"
    ]
    const timestamps = [
      "2024-01-02 03:04:05", "2024-01-02 03:04:05.678", "2024-01-02 03:04:05.678901", "1999-12-31 23:59:59.9999999",
      "1969-07-20 20:17:40+00", "1969-07-20 20:17:40.5-03:30", "2000-01-01 00:00:00.0005+05:45:30", "0044-03-15 12:00:00 BC",
      "infinity", "-infinity", "12345-01-01 00:00:00", "1900-02-28 23:59:59.999999+14"
    ]
    for (const [oid, values] of [[OID.float8, floats], [OID.float4, floats], [OID.timestamptz, timestamps], [
      OID.timestamp,
      timestamps.filter((value) => !/[+-]\d\d(:\d\d)*$/.test(value) || value.endsWith("infinity"))
    ]] as const) {
      const parser = textParser([oid], 1, makeDialect({ csv: false }), false)
      const rows = feed(parser, utf8(values.map((value) => `${value}\n`).join("")), 1000)
      const decode = PgValue.textDecoderFor(oid)
      rows.forEach((row, i) => {
        const expected = decode(values[i])
        if (expected instanceof Date) expect((row[0] as Date).getTime()).toEqual(expected.getTime())
        else expect(row[0]).toEqual(expected)
      })
    }
  })

  it("statements get their options appended when they end at STDIN/STDOUT, and are checked", () => {
    const planned = plan("COPY t (a, b) FROM STDIN;", { format: "csv", header: true, delimiter: ";", null: "it's" })
    expect(Result.isSuccess(planned) && planned.success.sql).toBe(
      "COPY t (a, b) FROM STDIN WITH (FORMAT csv, HEADER true, DELIMITER E';', NULL E'it\\'s')"
    )
    const own = plan("COPY t TO STDOUT (FORMAT binary)", undefined)
    expect(Result.isSuccess(own) && own.success.format).toBe("binary")
    const legacy = plan("COPY t TO STDOUT WITH CSV HEADER", undefined)
    expect(Result.isSuccess(legacy) && legacy.success.format).toBe("csv")
    expect(Result.isSuccess(legacy) && legacy.success.header).toBe(true)
    const noHeader = plan("COPY t TO STDOUT (FORMAT csv, HEADER false)", undefined)
    expect(Result.isSuccess(noHeader) && noHeader.success.header).toBe(false)
    const plain = plan("COPY t FROM STDIN", undefined)
    expect(Result.isSuccess(plain) && plain.success.sql).toBe("COPY t FROM STDIN")
    expect(Result.isFailure(plan("COPY t FROM STDIN WHERE a > 1", { format: "csv" }))).toBe(true)
    expect(Result.isFailure(plan("COPY t FROM STDIN (FORMAT text)", { format: "binary" }))).toBe(true)
    expect(Result.isFailure(plan("COPY t FROM STDIN", { format: "binary", header: true }))).toBe(true)
  })
})
