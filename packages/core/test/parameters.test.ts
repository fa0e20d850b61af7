/**
 * Parameter type inference and the checks made before anything is sent.
 */
import * as PgProtocol from "@effect/sql-pg/PgProtocol"
import * as PgTypes from "@effect/sql-pg/PgTypes"
import * as BigDecimal from "effect/BigDecimal"
import * as DateTime from "effect/DateTime"
import * as Result from "effect/Result"
import { describe, expect, it } from "vitest"
import { parameterOids, toParameter, toParameters } from "../src/internal/parameters.ts"
import { ParameterError } from "../src/PgError.ts"
import * as PgValue from "../src/PgValue.ts"

const OID = PgTypes.OID

const infer = (value: unknown, index = 0): PgTypes.Parameter => {
  const result = toParameter(value, index)
  if (Result.isFailure(result)) throw new Error(`unexpected ParameterError: ${result.failure.message}`)
  return result.success
}

const refuse = (value: unknown, index = 0): ParameterError => {
  const result = toParameter(value, index)
  if (Result.isSuccess(result)) throw new Error(`expected a ParameterError, got OID ${result.success.oid}`)
  expect(result.failure).toBeInstanceOf(ParameterError)
  expect(result.failure._tag).toBe("ParameterError")
  return result.failure
}

const shape = (parameter: PgTypes.Parameter) => ({ oid: parameter.oid, value: parameter.value })

const encodeBind = PgProtocol.makeBindEncoder(PgTypes.writeParameter, PgTypes.isTextFormat)

describe("scalar inference", () => {
  it("null and undefined are untyped NULLs", () => {
    expect(shape(infer(null))).toEqual({ oid: 0, value: null })
    expect(shape(infer(undefined))).toEqual({ oid: 0, value: null })
  })

  it("strings are untyped, for the server to infer", () => {
    expect(shape(infer("hello"))).toEqual({ oid: 0, value: "hello" })
    expect(shape(infer(""))).toEqual({ oid: 0, value: "" })
    expect(shape(infer("é ✓ 😀"))).toEqual({ oid: 0, value: "é ✓ 😀" })
  })

  it("integers within int32 are int4", () => {
    for (const value of [0, 1, -1, 2147483647, -2147483648, -0]) {
      expect(infer(value).oid).toBe(OID.int4)
    }
  })

  it("other safe integers are int8, sent as bigint", () => {
    expect(shape(infer(2147483648))).toEqual({ oid: OID.int8, value: BigInt(2147483648) })
    expect(shape(infer(-2147483649))).toEqual({ oid: OID.int8, value: BigInt(-2147483649) })
    expect(shape(infer(Number.MAX_SAFE_INTEGER))).toEqual({ oid: OID.int8, value: BigInt(Number.MAX_SAFE_INTEGER) })
    expect(shape(infer(Number.MIN_SAFE_INTEGER))).toEqual({ oid: OID.int8, value: BigInt(Number.MIN_SAFE_INTEGER) })
  })

  it("fractions, unsafe integers, NaN and infinities are float8", () => {
    for (const value of [1.5, -0.1, 2 ** 53, 1e300, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      const parameter = infer(value)
      expect(parameter.oid).toBe(OID.float8)
      expect(Object.is(parameter.value, value)).toBe(true)
    }
  })

  it("bigints are int8 when they fit, numeric text beyond", () => {
    expect(shape(infer(BigInt(5)))).toEqual({ oid: OID.int8, value: BigInt(5) })
    expect(shape(infer(BigInt("9223372036854775807")))).toEqual({
      oid: OID.int8,
      value: BigInt("9223372036854775807")
    })
    expect(shape(infer(BigInt("9223372036854775808")))).toEqual({ oid: OID.numeric, value: "9223372036854775808" })
    expect(shape(infer(BigInt("-9223372036854775809")))).toEqual({ oid: OID.numeric, value: "-9223372036854775809" })
  })

  it("booleans are bool", () => {
    expect(shape(infer(true))).toEqual({ oid: OID.bool, value: true })
    expect(shape(infer(false))).toEqual({ oid: OID.bool, value: false })
  })

  it("Dates are timestamptz", () => {
    const date = new Date("2024-01-02T03:04:05.678Z")
    expect(shape(infer(date))).toEqual({ oid: OID.timestamptz, value: date })
    expect(infer(new Date("-004713-11-24T00:00:00Z")).oid).toBe(OID.timestamptz)
  })

  it("effect DateTimes are timestamptz (the instant)", () => {
    const utc = DateTime.makeUnsafe("2024-01-02T03:04:05.678Z")
    expect(shape(infer(utc))).toEqual({ oid: OID.timestamptz, value: Date.parse("2024-01-02T03:04:05.678Z") })
    const zoned = DateTime.makeZonedUnsafe(utc, { timeZone: "Europe/Paris" })
    expect(shape(infer(zoned))).toEqual({ oid: OID.timestamptz, value: Date.parse("2024-01-02T03:04:05.678Z") })
  })

  it("effect BigDecimals are numeric, scale kept", () => {
    expect(shape(infer(BigDecimal.fromStringUnsafe("1.50")))).toEqual({ oid: OID.numeric, value: "1.50" })
    expect(shape(infer(BigDecimal.fromStringUnsafe("-0.001")))).toEqual({ oid: OID.numeric, value: "-0.001" })
    expect(shape(infer(BigDecimal.make(BigInt(12), -3)))).toEqual({ oid: OID.numeric, value: "12000" })
    expect(shape(infer(BigDecimal.fromStringUnsafe("0")))).toEqual({ oid: OID.numeric, value: "0" })
  })

  it("Uint8Arrays and Buffers are bytea", () => {
    const bytes = new Uint8Array([1, 2, 3])
    expect(shape(infer(bytes))).toEqual({ oid: OID.bytea, value: bytes })
    const buffer = Buffer.from("abc")
    expect(shape(infer(buffer))).toEqual({ oid: OID.bytea, value: buffer })
  })

  it("plain objects are jsonb", () => {
    const value = { a: 1, b: [true, null], c: { d: "é" } }
    expect(shape(infer(value))).toEqual({ oid: OID.jsonb, value })
    const bare = Object.assign(Object.create(null), { x: 1 })
    expect(infer(bare).oid).toBe(OID.jsonb)
    expect(infer({}).oid).toBe(OID.jsonb)
  })

  it("explicit parameters pass through unchanged", () => {
    for (
      const parameter of [
        PgValue.int2(1),
        PgValue.text("x"),
        PgValue.uuid("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
        PgValue.jsonb([1, 2]),
        PgValue.timestamp(new Date(0)),
        PgValue.numeric("1.5"),
        PgValue.int8(BigInt(1)),
        PgValue.untyped("{1,2}"),
        PgValue.arrayOf("uuid", ["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", null]),
        PgValue.int4(null)
      ]
    ) {
      expect(infer(parameter)).toBe(parameter)
    }
    expect(infer(Result.getOrThrow(PgValue.array([1, 2], OID.int2))).oid).toBe(OID.int2Array)
  })

  it("an explicit parameter holding undefined becomes NULL of its type", () => {
    expect(shape(infer(PgValue.int4(undefined as unknown as null)))).toEqual({ oid: OID.int4, value: null })
  })
})

describe("array inference", () => {
  it("integers within int32 are int4[]", () => {
    expect(shape(infer([1, 2, null, -3]))).toEqual({ oid: OID.int4Array, value: [1, 2, null, -3] })
  })

  it("wider integers widen the whole array to int8[]", () => {
    expect(shape(infer([1, 2 ** 40, null]))).toEqual({
      oid: OID.int8Array,
      value: [BigInt(1), BigInt(2 ** 40), null]
    })
    expect(shape(infer([1, BigInt(2)]))).toEqual({ oid: OID.int8Array, value: [BigInt(1), BigInt(2)] })
  })

  it("any fraction makes float8[]", () => {
    expect(shape(infer([1, 2.5, 2 ** 40]))).toEqual({ oid: OID.float8Array, value: [1, 2.5, 2 ** 40] })
    expect(shape(infer([BigInt(3), 0.5]))).toEqual({ oid: OID.float8Array, value: [3, 0.5] })
    expect(infer([Number.NaN, 1]).oid).toBe(OID.float8Array)
  })

  it("precision is never lost: big bigints with fractions or beyond int64 make numeric[]", () => {
    expect(shape(infer([BigInt("9007199254740993"), 0.5]))).toEqual({
      oid: OID.numericArray,
      value: ["9007199254740993", "0.5"]
    })
    expect(shape(infer([0.5, BigInt("9007199254740993")]))).toEqual({
      oid: OID.numericArray,
      value: ["0.5", "9007199254740993"]
    })
    expect(shape(infer([1, BigInt("99999999999999999999")]))).toEqual({
      oid: OID.numericArray,
      value: ["1", "99999999999999999999"]
    })
    expect(shape(infer([BigDecimal.fromStringUnsafe("1.10"), 2]))).toEqual({
      oid: OID.numericArray,
      value: ["1.10", "2"]
    })
  })

  it("strings are text[]", () => {
    expect(shape(infer(["a", null, "b,c"]))).toEqual({ oid: OID.textArray, value: ["a", null, "b,c"] })
  })

  it("booleans, Dates, bytes and objects have their array types", () => {
    const date = new Date(0)
    const bytes = new Uint8Array([1])
    expect(shape(infer([true, null, false]))).toEqual({ oid: OID.boolArray, value: [true, null, false] })
    expect(shape(infer([date, null]))).toEqual({ oid: OID.timestamptzArray, value: [date, null] })
    expect(shape(infer([bytes]))).toEqual({ oid: OID.byteaArray, value: [bytes] })
    expect(shape(infer([{ a: 1 }, { b: 2 }]))).toEqual({ oid: OID.jsonbArray, value: [{ a: 1 }, { b: 2 }] })
  })

  it("undefined elements become NULL", () => {
    expect(shape(infer([1, undefined, 2]))).toEqual({ oid: OID.int4Array, value: [1, null, 2] })
  })

  it("empty and all-NULL arrays are untyped array literals", () => {
    expect(shape(infer([]))).toEqual({ oid: 0, value: "{}" })
    expect(shape(infer([null, undefined]))).toEqual({ oid: 0, value: "{NULL,NULL}" })
  })

  it("explicit parameters of one type make that type's array", () => {
    expect(shape(infer([PgValue.int2(1), PgValue.int2(null), null, PgValue.int2(3)]))).toEqual({
      oid: OID.int2Array,
      value: [1, null, null, 3]
    })
    const id = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
    expect(shape(infer([PgValue.uuid(id)]))).toEqual({ oid: OID.uuidArray, value: [id] })
  })

  it("does not copy more than it sends: the caller's array is left alone", () => {
    const values = [1, undefined, 2 ** 40]
    infer(values)
    expect(values).toEqual([1, undefined, 2 ** 40])
  })
})

describe("ParameterError before anything is sent", () => {
  it("a NUL byte names the 1-based parameter", () => {
    const result = toParameters(["ok", "a\u0000b"])
    expect(Result.isFailure(result)).toBe(true)
    const failure = Result.isFailure(result) ? result.failure : undefined
    expect(failure).toBeInstanceOf(ParameterError)
    expect(failure?.index).toBe(2)
    expect(failure?.message).toMatch(/^parameter \$2 contains a NUL byte/)
  })

  it("a lone UTF-16 surrogate cannot be encoded as UTF-8", () => {
    for (const text of ["\ud800", "a\udc00b", "x\ud83d", "\ude00\ud83d"]) {
      expect(refuse(text, 4).message).toMatch(/^parameter \$5 contains a lone UTF-16 surrogate/)
    }
    expect(infer("\ud83d\ude00").oid).toBe(0)
  })

  it("NUL and surrogates are refused inside arrays and explicit text parameters", () => {
    expect(refuse(["a", "b\u0000"]).message).toMatch(/^parameter \$1 element 2 contains a NUL byte/)
    expect(refuse(["\udfff"]).message).toMatch(/element 1 contains a lone UTF-16 surrogate/)
    expect(refuse(PgValue.text("a\u0000")).message).toMatch(/NUL byte/)
    expect(refuse(PgValue.varchar("\ud800")).message).toMatch(/surrogate/)
    expect(refuse(PgValue.untyped("\u0000")).message).toMatch(/NUL byte/)
    expect(refuse(PgValue.arrayOf("text", ["ok", "\u0000"])).message).toMatch(/element 2 contains a NUL byte/)
  })

  it("symbols and functions have no PostgreSQL type", () => {
    expect(refuse(Symbol("x")).message).toMatch(/^parameter \$1 is a symbol/)
    expect(refuse(() => 1).message).toMatch(/^parameter \$1 is a function/)
    expect(refuse([Symbol("x")]).message).toMatch(/element 1 is a symbol/)
  })

  it("Maps, Sets, class instances and typed arrays other than Uint8Array are refused", () => {
    class Point {
      constructor(readonly x: number) {}
    }
    expect(refuse(new Map()).message).toMatch(/is a Map/)
    expect(refuse(new Set([1])).message).toMatch(/is a Set/)
    expect(refuse(new Point(1)).message).toMatch(/is a Point/)
    expect(refuse(new Int32Array(2)).message).toMatch(/is a Int32Array/)
    expect(refuse(/x/).message).toMatch(/is a RegExp/)
  })

  it("an invalid Date, or one before 4714 BC, is refused", () => {
    expect(refuse(new Date(Number.NaN)).message).toMatch(/invalid Date/)
    expect(refuse(new Date("-004713-11-23T23:59:59.999Z")).message).toMatch(/earliest PostgreSQL timestamp/)
    expect(refuse([new Date(0), new Date("x")]).message).toMatch(/element 2 is an invalid Date/)
    expect(refuse(PgValue.timestamptz(new Date(Number.NaN))).message).toMatch(/invalid Date/)
    expect(refuse(PgValue.timestamp(-210_866_803_200_001)).message).toMatch(/earliest PostgreSQL timestamp/)
    // the infinities are PostgreSQL's own sentinels
    expect(infer(PgValue.timestamptz(Number.NEGATIVE_INFINITY)).oid).toBe(OID.timestamptz)
    expect(infer(PgValue.timestamp(Number.POSITIVE_INFINITY)).oid).toBe(OID.timestamp)
  })

  it("objects that cannot be JSON are refused", () => {
    const circular: Record<string, unknown> = {}
    circular.self = circular
    expect(refuse(circular).message).toMatch(/cannot be serialised as JSON/)
    expect(refuse({ big: BigInt(1) }).message).toMatch(/cannot be serialised as JSON/)
    expect(refuse({ text: "a\u0000" }).message).toMatch(/jsonb cannot hold/)
    expect(refuse(PgValue.jsonb(() => 1)).message).toMatch(/cannot be serialised as JSON/)
    // json keeps \u0000 escapes, jsonb cannot
    expect(infer(PgValue.json({ text: "a\u0000" })).oid).toBe(OID.json)
  })

  it("mixed element types are refused", () => {
    expect(refuse([1, "a"]).message).toMatch(/^parameter \$1 element 2 a string cannot share an array with a number/)
    expect(refuse(["a", 1]).message).toMatch(/a number cannot share an array with a string/)
    expect(refuse([true, 1]).message).toMatch(/element 2/)
    expect(refuse([new Date(0), "2024-01-01"]).message).toMatch(/element 2/)
    expect(refuse([{ a: 1 }, "x"]).message).toMatch(/element 2/)
    expect(refuse([PgValue.int2(1), 2]).message).toMatch(/element 2/)
    expect(refuse([2, PgValue.int2(1)]).message).toMatch(/element 2/)
    expect(refuse([PgValue.int2(1), PgValue.int4(2)]).message).toMatch(/element 2/)
  })

  it("nested arrays are refused", () => {
    expect(refuse([[1, 2], [3, 4]]).message).toMatch(/element 1 is a nested array/)
    expect(refuse([1, [2]]).message).toMatch(/element 2 is a nested array/)
    expect(refuse(PgValue.arrayOf("int4", [[1] as unknown as number])).message).toMatch(/nested array/)
  })

  it("explicit parameters the codec cannot encode are refused", () => {
    expect(refuse(PgValue.int4(2 ** 40)).message).toMatch(/cannot be encoded/)
    expect(refuse(PgValue.int2(1.5)).message).toMatch(/cannot be encoded/)
    expect(refuse(PgValue.int8(1 as unknown as bigint)).message).toMatch(/cannot be encoded/)
    expect(refuse(PgValue.uuid("not-a-uuid")).message).toMatch(/cannot be encoded/)
    expect(refuse(PgValue.numeric("1,5")).message).toMatch(/cannot be encoded/)
    expect(refuse(PgValue.date("2024-02-30")).message).toMatch(/cannot be encoded/)
    expect(refuse(PgValue.inet("10.0.0.256")).message).toMatch(/cannot be encoded/)
    expect(refuse(PgValue.bytea("x" as unknown as Uint8Array)).message).toMatch(/not a Uint8Array/)
    expect(refuse(PgValue.text(1 as unknown as string)).message).toMatch(/not a string/)
    expect(refuse(PgValue.untyped({} as unknown as string)).message).toMatch(/not a string/)
    expect(refuse(PgValue.arrayOf("int4", [1, 2 ** 40])).message).toMatch(/element 2 cannot be encoded/)
    expect(refuse(PgValue.arrayOf("int4", 5 as unknown as Array<number>)).message).toMatch(/not an array/)
    expect(refuse([PgValue.int4(2 ** 40)]).message).toMatch(/element 1 cannot be encoded/)
    const noArrayType = { ...PgValue.int4(1), oid: 0 }
    expect(refuse([noArrayType]).message).toMatch(/no known array type/)
  })

  it("more than 65535 parameters are refused", () => {
    const result = toParameters(new Array(65536).fill(1))
    expect(Result.isFailure(result) && result.failure.message).toMatch(/at most 65535/)
  })

  it("toParameters stops at the first bad value", () => {
    const result = toParameters([1, Symbol("a"), "\u0000"])
    expect(Result.isFailure(result) && result.failure.index).toBe(2)
  })
})

describe("toParameters and parameterOids", () => {
  it("infers every value and lists the OIDs for Parse", () => {
    const parameters = Result.getOrThrow(toParameters(["a", 1, 2 ** 40, 1.5, true, null, [1], PgValue.uuid(null)]))
    expect(parameterOids(parameters)).toEqual([
      0,
      OID.int4,
      OID.int8,
      OID.float8,
      OID.bool,
      0,
      OID.int4Array,
      OID.uuid
    ])
    expect(parameterOids([])).toEqual([])
    expect(Result.getOrThrow(toParameters([]))).toEqual([])
  })

  it("every inferred parameter encodes into a Bind message", () => {
    const values: ReadonlyArray<unknown> = [
      null,
      "text é",
      0,
      -2147483648,
      2 ** 40,
      1.5,
      Number.NaN,
      BigInt("9223372036854775807"),
      BigInt("-99999999999999999999999"),
      true,
      new Date(0),
      new Uint8Array([0, 255]),
      { a: [1, "x"] },
      [1, 2, null],
      [1, 2 ** 40],
      [0.5, BigInt("9007199254740993")],
      ["a", null],
      [true],
      [new Date(0)],
      [new Uint8Array([1])],
      [{ a: 1 }],
      [],
      [null],
      DateTime.makeUnsafe(0),
      BigDecimal.fromStringUnsafe("-12.340"),
      PgValue.int2(5),
      PgValue.arrayOf("int2", [1, undefined as unknown as null])
    ]
    const parameters = Result.getOrThrow(toParameters(values))
    const frame = encodeBind({ portal: "", statement: "", parameters })
    expect(Result.isSuccess(frame)).toBe(true)
  })

  it("inferred values decode back to what was given", () => {
    const cases: ReadonlyArray<readonly [unknown, unknown]> = [
      [2 ** 40, BigInt(2 ** 40)],
      [BigInt("-99999999999999999999999"), "-99999999999999999999999"],
      [BigDecimal.fromStringUnsafe("-12.340"), "-12.340"],
      [{ a: [1, "x"] }, { a: [1, "x"] }],
      [[1, 2 ** 40, null], [BigInt(1), BigInt(2 ** 40), null]],
      [[0.5, BigInt("9007199254740993")], ["0.5", "9007199254740993"]],
      [DateTime.makeUnsafe(1234), new Date(1234)]
    ]
    for (const [value, expected] of cases) {
      const parameter = infer(value)
      const bytes = Result.getOrThrow(PgTypes.encode(parameter.value, parameter.oid))
      expect(Result.getOrThrow(PgTypes.decode(bytes, parameter.oid, 1))).toEqual(expected)
    }
  })
})
