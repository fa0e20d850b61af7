/**
 * Text-format decoders: literal server text in, the same JavaScript values
 * the binary `PgTypes` decoders give out.
 */
import * as PgTypes from "@effect/sql-pg/PgTypes"
import * as Result from "effect/Result"
import { describe, expect, it } from "vitest"
import { decodeText, decodeTextArray, textDecoderFor } from "../src/internal/textCodecs.ts"

const OID = PgTypes.OID

/** Epoch ms of a UTC wall-clock time, any year (Date.UTC maps 0–99 to 19xx). */
const utc = (year: number, month = 1, day = 1, hour = 0, minute = 0, second = 0, ms = 0): number => {
  const date = new Date(Date.UTC(2000, month - 1, day, hour, minute, second, ms))
  date.setUTCFullYear(year)
  return date.getTime()
}

/** Dates compare by time value, so two invalid Dates are equal. */
const comparable = (value: unknown): unknown =>
  value instanceof Date
    ? { date: value.getTime() }
    : value instanceof Uint8Array
    ? { bytes: Array.from(value) }
    : Array.isArray(value)
    ? value.map(comparable)
    : value

const binary = (value: unknown, oid: number): unknown => {
  const encoded = PgTypes.encode(value, oid)
  if (Result.isFailure(encoded)) throw encoded.failure
  const decoded = PgTypes.decode(encoded.success, oid, 1)
  if (Result.isFailure(decoded)) throw decoded.failure
  return decoded.success
}

/**
 * One value per row: `value` is what `PgTypes.encode` takes, `text` is what
 * PostgreSQL prints for the same value (checked against a PostgreSQL 15
 * server with `SELECT $$text$$::type`, in `timeZone` and `intervalStyle`).
 */
export interface ParityRow {
  readonly type: string
  readonly oid: number
  readonly value: unknown
  readonly text: string
  readonly timeZone?: string
  readonly intervalStyle?: "postgres" | "postgres_verbose" | "sql_standard" | "iso_8601"
}

const INT64_MAX = BigInt("9223372036854775807")
const HOUR = BigInt(3_600_000_000)
const iv = (months: number, days: number, microseconds: bigint | number): PgTypes.Interval => ({
  months,
  days,
  microseconds: BigInt(microseconds)
})

const rows = (type: string, oid: number, pairs: ReadonlyArray<readonly [unknown, string]>, extra?: Partial<ParityRow>) =>
  pairs.map(([value, text]): ParityRow => ({ type, oid, value, text, ...extra }))

export const parityRows: ReadonlyArray<ParityRow> = [
  ...rows("bool", OID.bool, [[true, "t"], [false, "f"]]),
  ...rows("int2", OID.int2, [[-32768, "-32768"], [32767, "32767"], [0, "0"]]),
  ...rows("int4", OID.int4, [[2147483647, "2147483647"], [-2147483648, "-2147483648"], [42, "42"]]),
  ...rows("int8", OID.int8, [
    [INT64_MAX, "9223372036854775807"],
    [-INT64_MAX - BigInt(1), "-9223372036854775808"],
    [BigInt(0), "0"]
  ]),
  ...rows("oid", OID.oid, [[4294967295, "4294967295"], [0, "0"], [1259, "1259"]]),
  ...rows("float4", OID.float4, [
    [1.1, "1.1"],
    [0.1, "0.1"],
    [3.4028234663852886e38, "3.4028235e+38"],
    [1e-45, "1e-45"],
    [Number.NaN, "NaN"],
    [Number.NEGATIVE_INFINITY, "-Infinity"],
    [-0, "-0"],
    [16777217, "1.6777216e+07"]
  ]),
  ...rows("float8", OID.float8, [
    [0.1 + 0.2, "0.30000000000000004"],
    [1e100, "1e+100"],
    [-0, "-0"],
    [Number.NaN, "NaN"],
    [Number.POSITIVE_INFINITY, "Infinity"],
    [5e-324, "5e-324"],
    [1.7976931348623157e308, "1.7976931348623157e+308"],
    [123456789.125, "123456789.125"]
  ]),
  ...rows("numeric", OID.numeric, [
    ["1.50", "1.50"],
    ["-0.001", "-0.001"],
    ["NaN", "NaN"],
    ["Infinity", "Infinity"],
    ["-Infinity", "-Infinity"],
    ["123456789012345678901234567890.123456789", "123456789012345678901234567890.123456789"],
    ["0", "0"],
    ["0.000", "0.000"],
    ["1e-20", "0.00000000000000000001"],
    ["1e20", "100000000000000000000"],
    ["10000.0001", "10000.0001"]
  ]),
  ...rows("text", OID.text, [["héllo ✓ 😀", "héllo ✓ 😀"], ["", ""], ["a\\b\"c", "a\\b\"c"]]),
  ...rows("varchar", OID.varchar, [["x y", "x y"]]),
  ...rows("char(4)", OID.bpchar, [["ab  ", "ab  "]]),
  ...rows("name", OID.name, [["pg_class", "pg_class"]]),
  ...rows("bytea", OID.bytea, [
    [new Uint8Array([0, 1, 0xff, 0x5c]), "\\x0001ff5c"],
    [new Uint8Array([]), "\\x"],
    [new TextEncoder().encode("abc"), "\\x616263"]
  ]),
  ...rows("json", OID.json, [[{ a: [1, 2, { b: null }], c: "é" }, "{\"a\":[1,2,{\"b\":null}],\"c\":\"é\"}"]]),
  ...rows("jsonb", OID.jsonb, [
    [{ a: [1, 2, { b: null }], c: "é" }, "{\"a\": [1, 2, {\"b\": null}], \"c\": \"é\"}"],
    ["x", "\"x\""],
    [1.5, "1.5"],
    [null, "null"],
    [[true, false], "[true, false]"]
  ]),
  ...rows("uuid", OID.uuid, [["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"]]),
  ...rows("date", OID.date, [
    ["2024-02-29", "2024-02-29"],
    ["0000-01-01", "0001-01-01 BC"],
    ["-0043-03-15", "0044-03-15 BC"],
    ["-4713-11-24", "4714-11-24 BC"],
    ["0001-01-01", "0001-01-01"],
    ["0099-12-31", "0099-12-31"],
    ["10000-01-01", "10000-01-01"],
    ["infinity", "infinity"],
    ["-infinity", "-infinity"]
  ]),
  ...rows("time", OID.time, [
    [BigInt(0), "00:00:00"],
    [BigInt(86_400_000_000), "24:00:00"],
    [BigInt(14_706_789_000), "04:05:06.789"],
    [BigInt(1), "00:00:00.000001"],
    [BigInt(86_399_999_999), "23:59:59.999999"]
  ]),
  ...rows("timetz", OID.timetz, [
    ["04:05:06.789-02:30", "04:05:06.789-02:30"],
    ["12:00:00+01:00", "12:00:00+01"],
    ["04:05:06+00:09:21", "04:05:06+00:09:21"],
    ["00:00:00+00:00", "00:00:00+00"],
    ["23:59:59.999999-15:59", "23:59:59.999999-15:59"],
    ["24:00:00+00:00", "24:00:00+00"]
  ]),
  ...rows("timestamp", OID.timestamp, [
    [utc(2024, 1, 2, 3, 4, 5, 123), "2024-01-02 03:04:05.123"],
    [utc(2024, 1, 2, 3, 4, 5, 123) + 0.5, "2024-01-02 03:04:05.1235"],
    [utc(1999, 12, 31, 23, 59, 59, 999) + 0.5, "1999-12-31 23:59:59.9995"],
    [utc(1969, 12, 31, 23, 59, 59, 999) + 0.25, "1969-12-31 23:59:59.99925"],
    [utc(1970), "1970-01-01 00:00:00"],
    [utc(-43, 3, 15, 12), "0044-03-15 12:00:00 BC"],
    [utc(1), "0001-01-01 00:00:00"],
    [utc(0, 12, 31, 23, 59, 59), "0001-12-31 23:59:59 BC"],
    [utc(-4713, 11, 24), "4714-11-24 00:00:00 BC"],
    [utc(10000), "10000-01-01 00:00:00"],
    [utc(2000, 2, 29, 12, 0, 0, 1), "2000-02-29 12:00:00.001"],
    [Number.POSITIVE_INFINITY, "infinity"],
    [Number.NEGATIVE_INFINITY, "-infinity"]
  ]),
  ...([
    [utc(2024, 1, 2, 2, 4, 5, 123) + 0.5, "2024-01-02 03:04:05.1235+01", "Europe/Paris"],
    [utc(2024, 1, 2, 3, 4, 5), "2024-01-02 08:34:05+05:30", "Asia/Kolkata"],
    [utc(1799, 12, 31, 23, 50, 39), "1800-01-01 00:00:00+00:09:21", "Europe/Paris"],
    [utc(-43, 3, 15, 11, 50, 39), "0044-03-15 12:00:00+00:09:21 BC", "Europe/Paris"],
    [utc(2024, 7, 1, 6, 59, 59, 999) + 0.999, "2024-06-30 23:59:59.999999-07", "America/Los_Angeles"],
    [utc(2024, 1, 1), "2024-01-01 00:00:00+00", "UTC"],
    [utc(1900, 1, 1, 0, 0, 0, 0) - 0.5, "1899-12-31 23:59:59.9995+00", "UTC"],
    [Number.POSITIVE_INFINITY, "infinity", "UTC"],
    [Number.NEGATIVE_INFINITY, "-infinity", "UTC"]
  ] as const).map(([value, text, timeZone]): ParityRow => ({
    type: "timestamptz",
    oid: OID.timestamptz,
    value,
    text,
    timeZone
  })),
  ...(
    [
      [iv(14, 3, 14_706_789_000), [
        "1 year 2 mons 3 days 04:05:06.789",
        "@ 1 year 2 mons 3 days 4 hours 5 mins 6.789 secs",
        "+1-2 +3 +4:05:06.789",
        "P1Y2M3DT4H5M6.789S"
      ]],
      [iv(-14, 3, -14_706_000_000), [
        "-1 years -2 mons +3 days -04:05:06",
        "@ 1 year 2 mons -3 days 4 hours 5 mins 6 secs ago",
        "-1-2 +3 -4:05:06",
        "P-1Y-2M3DT-4H-5M-6S"
      ]],
      [iv(0, 0, 0), ["00:00:00", "@ 0", "0", "PT0S"]],
      [iv(0, -1, 7_200_000_000), ["-1 days +02:00:00", "@ 1 day -2 hours ago", "+0-0 -1 +2:00:00", "P-1DT2H"]],
      [iv(0, 0, -500_000), ["-00:00:00.5", "@ 0.5 secs ago", "-0:00:00.5", "PT-0.5S"]],
      [iv(-14, 0, 0), ["-1 years -2 mons", "@ 1 year 2 mons ago", "-1-2", "P-1Y-2M"]],
      [iv(0, -3, -3_600_000_000), ["-3 days -01:00:00", "@ 3 days 1 hour ago", "-3 1:00:00", "P-3DT-1H"]],
      [iv(0, 3, 0), ["3 days", "@ 3 days", "3 0:00:00", "P3D"]],
      [iv(12, 0, 0), ["1 year", "@ 1 year", "1-0", "P1Y"]],
      [iv(1, 1, 1), ["1 mon 1 day 00:00:00.000001", "@ 1 mon 1 day 0.000001 secs", "+0-1 +1 +0:00:00.000001", "P1M1DT0.000001S"]],
      [iv(0, 0, HOUR * BigInt(2_562_047_788)), [
        "2562047788:00:00",
        "@ 2562047788 hours",
        "2562047788:00:00",
        "PT2562047788H"
      ]],
      [iv(0, 0, INT64_MAX), [
        "2562047788:00:54.775807",
        "@ 2562047788 hours 54.775807 secs",
        "2562047788:00:54.775807",
        "PT2562047788H54.775807S"
      ]]
    ] as const
  ).flatMap(([value, [postgres, verbose, sqlStandard, iso]]) => [
    { type: "interval", oid: OID.interval, value, text: postgres, intervalStyle: "postgres" as const },
    { type: "interval", oid: OID.interval, value, text: verbose, intervalStyle: "postgres_verbose" as const },
    { type: "interval", oid: OID.interval, value, text: sqlStandard, intervalStyle: "sql_standard" as const },
    { type: "interval", oid: OID.interval, value, text: iso, intervalStyle: "iso_8601" as const }
  ]),
  ...rows("inet", OID.inet, [
    ["192.168.0.1", "192.168.0.1"],
    ["10.0.0.1/8", "10.0.0.1/8"],
    ["::102:304", "::1.2.3.4"],
    ["::ffff:1.2.3.4", "::ffff:1.2.3.4"],
    ["1:0:0:1::1", "1:0:0:1::1"],
    ["2001:db8::1/64", "2001:db8::1/64"],
    ["::2:3", "::0.2.0.3"],
    ["::", "::"],
    ["::1", "::1"]
  ]),
  ...rows("cidr", OID.cidr, [
    ["10.0.0.0/8", "10.0.0.0/8"],
    ["2001:db8::/32", "2001:db8::/32"],
    ["192.168.1.5/32", "192.168.1.5/32"]
  ]),
  ...rows("int4[]", OID.int4Array, [[[1, 2, null], "{1,2,NULL}"], [[], "{}"]]),
  ...rows("int2[]", OID.int2Array, [[[-1, 2], "{-1,2}"]]),
  ...rows("int8[]", OID.int8Array, [[[BigInt(1), null, INT64_MAX], "{1,NULL,9223372036854775807}"]]),
  ...rows("oid[]", OID.oidArray, [[[4294967295], "{4294967295}"]]),
  ...rows("text[]", OID.textArray, [
    [
      ["a,b", "c\"d", "", "NULL", null, " x ", "e\\f", "{}", "null", "plain", "é ✓"],
      "{\"a,b\",\"c\\\"d\",\"\",\"NULL\",NULL,\" x \",\"e\\\\f\",\"{}\",\"null\",plain,\"é ✓\"}"
    ],
    [[], "{}"]
  ]),
  ...rows("varchar[]", OID.varcharArray, [[["a", "b c"], "{a,\"b c\"}"]]),
  ...rows("char(2)[]", OID.bpcharArray, [[["a ", "bc"], "{\"a \",bc}"]]),
  ...rows("name[]", OID.nameArray, [[["x"], "{x}"]]),
  ...rows("bool[]", OID.boolArray, [[[true, false, null], "{t,f,NULL}"]]),
  ...rows("bytea[]", OID.byteaArray, [[[new Uint8Array([1, 2]), null], "{\"\\\\x0102\",NULL}"]]),
  ...rows("float4[]", OID.float4Array, [[[1.5, Number.NaN, Number.NEGATIVE_INFINITY], "{1.5,NaN,-Infinity}"]]),
  ...rows("float8[]", OID.float8Array, [[[1e100, -0, 0.1], "{1e+100,-0,0.1}"]]),
  ...rows("numeric[]", OID.numericArray, [[["NaN", "1.50", null], "{NaN,1.50,NULL}"]]),
  ...rows("uuid[]", OID.uuidArray, [[["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"], "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}"]]),
  ...rows("json[]", OID.jsonArray, [[[{ a: 1 }, [1, 2]], "{\"{\\\"a\\\":1}\",\"[1,2]\"}"]]),
  ...rows("jsonb[]", OID.jsonbArray, [[[{ a: 1 }, [1, 2], "x"], "{\"{\\\"a\\\": 1}\",\"[1, 2]\",\"\\\"x\\\"\"}"]]),
  ...rows("date[]", OID.dateArray, [
    [["2024-01-01", "-0043-03-15", "infinity", null], "{2024-01-01,\"0044-03-15 BC\",infinity,NULL}"]
  ]),
  ...rows("time[]", OID.timeArray, [[[BigInt(14_706_789_000)], "{04:05:06.789}"]]),
  ...rows("timetz[]", OID.timetzArray, [[["04:05:06+01:00"], "{04:05:06+01}"]]),
  ...rows("timestamp[]", OID.timestampArray, [
    [[utc(2024, 1, 1), Number.POSITIVE_INFINITY], "{\"2024-01-01 00:00:00\",infinity}"]
  ]),
  ...rows("timestamptz[]", OID.timestamptzArray, [
    [[utc(2024, 1, 1), Number.NEGATIVE_INFINITY], "{\"2024-01-01 00:00:00+00\",-infinity}"]
  ], { timeZone: "UTC" }),
  ...rows("interval[]", OID.intervalArray, [
    [[iv(0, 1, 0), iv(0, 0, -3_600_000_000)], "{\"1 day\",-01:00:00}"]
  ], { intervalStyle: "postgres" }),
  ...rows("inet[]", OID.inetArray, [[["192.168.0.1", "::102:304"], "{192.168.0.1,::1.2.3.4}"]]),
  ...rows("cidr[]", OID.cidrArray, [[["10.0.0.0/8"], "{10.0.0.0/8}"]])
]

describe("text/binary parity", () => {
  it.each(parityRows.map((row) => [row.type, row.text, row] as const))(
    "%s %j decodes like the binary codec",
    (_type, text, row) => {
      expect(comparable(decodeText(text, row.oid))).toEqual(comparable(binary(row.value, row.oid)))
    }
  )
})

describe("scalar decoders", () => {
  it("bool reads t and f", () => {
    expect(decodeText("t", OID.bool)).toBe(true)
    expect(decodeText("f", OID.bool)).toBe(false)
    expect(() => decodeText("x", OID.bool)).toThrow(PgTypes.CodecError)
  })

  it("integers are numbers, int8 a bigint", () => {
    expect(decodeText("-32768", OID.int2)).toBe(-32768)
    expect(decodeText("2147483647", OID.int4)).toBe(2147483647)
    expect(decodeText("9223372036854775807", OID.int8)).toBe(INT64_MAX)
    expect(decodeText("4294967295", OID.oid)).toBe(4294967295)
    expect(() => decodeText("1.5", OID.int4)).toThrow(PgTypes.CodecError)
    expect(() => decodeText("", OID.int4)).toThrow(PgTypes.CodecError)
    expect(() => decodeText("x", OID.int8)).toThrow(PgTypes.CodecError)
    expect(() => decodeText("", OID.int8)).toThrow(PgTypes.CodecError)
  })

  it("floats, with float4 rounded to single precision", () => {
    expect(decodeText("1.1", OID.float4)).toBe(Math.fround(1.1))
    expect(decodeText("1.1", OID.float8)).toBe(1.1)
    expect(decodeText("NaN", OID.float8)).toBeNaN()
    expect(decodeText("-Infinity", OID.float8)).toBe(Number.NEGATIVE_INFINITY)
    expect(Object.is(decodeText("-0", OID.float8), -0)).toBe(true)
    expect(() => decodeText("abc", OID.float8)).toThrow(PgTypes.CodecError)
    expect(() => decodeText("", OID.float4)).toThrow(PgTypes.CodecError)
  })

  it("numeric stays exact text", () => {
    expect(decodeText("3.14159265358979323846264338327950288", OID.numeric)).toBe(
      "3.14159265358979323846264338327950288"
    )
    expect(decodeText("NaN", OID.numeric)).toBe("NaN")
  })

  it("text types are the text itself", () => {
    for (const oid of [OID.text, OID.varchar, OID.bpchar, OID.name, 705 /* unknown */]) {
      expect(decodeText(" a\\b ", oid)).toBe(" a\\b ")
    }
  })

  it("bytea reads hex output", () => {
    expect(Array.from(decodeText("\\xDEADbeef", OID.bytea) as Uint8Array)).toEqual([0xde, 0xad, 0xbe, 0xef])
    expect(decodeText("\\x", OID.bytea)).toEqual(new Uint8Array(0))
    expect(() => decodeText("\\x0", OID.bytea)).toThrow(PgTypes.CodecError)
    expect(() => decodeText("\\xzz", OID.bytea)).toThrow(PgTypes.CodecError)
  })

  it("bytea reads the legacy escape output", () => {
    // SET bytea_output = escape; SELECT '\x00016162275c7f80ff'::bytea
    expect(Array.from(decodeText("\\000\\001ab'\\\\\\177\\200\\377", OID.bytea) as Uint8Array)).toEqual([
      0x00,
      0x01,
      0x61,
      0x62,
      0x27,
      0x5c,
      0x7f,
      0x80,
      0xff
    ])
    expect(Array.from(decodeText("plain", OID.bytea) as Uint8Array)).toEqual([112, 108, 97, 105, 110])
    expect(decodeText("", OID.bytea)).toEqual(new Uint8Array(0))
    expect(() => decodeText("\\9", OID.bytea)).toThrow(PgTypes.CodecError)
    expect(() => decodeText("a\\", OID.bytea)).toThrow(PgTypes.CodecError)
  })

  it("date renumbers BC years as the binary decoder does", () => {
    expect(decodeText("2024-01-02", OID.date)).toBe("2024-01-02")
    expect(decodeText("0001-01-01 BC", OID.date)).toBe("0000-01-01")
    expect(decodeText("0002-01-01 BC", OID.date)).toBe("-0001-01-01")
    expect(decodeText("infinity", OID.date)).toBe("infinity")
  })

  it("date refuses other DateStyles", () => {
    expect(() => decodeText("01/02/2024", OID.date)).toThrow(/DateStyle/)
    expect(() => decodeText("Tue Jan 02 2024", OID.date)).toThrow(PgTypes.CodecError)
  })

  it("timestamp maps wall-clock fields to UTC fields", () => {
    const date = decodeText("2024-01-02 03:04:05.123456", OID.timestamp) as Date
    expect(date.toISOString()).toBe("2024-01-02T03:04:05.123Z")
    expect((decodeText("2024-01-02T03:04:05", OID.timestamp) as Date).toISOString()).toBe("2024-01-02T03:04:05.000Z")
  })

  it("timestamptz applies the printed offset, seconds included", () => {
    expect((decodeText("2024-01-02 03:04:05.123456+01", OID.timestamptz) as Date).toISOString()).toBe(
      "2024-01-02T02:04:05.123Z"
    )
    expect((decodeText("2024-01-02 03:04:05-03:30", OID.timestamptz) as Date).toISOString()).toBe(
      "2024-01-02T06:34:05.000Z"
    )
    expect((decodeText("1800-01-01 00:00:00+00:09:21", OID.timestamptz) as Date).toISOString()).toBe(
      "1799-12-31T23:50:39.000Z"
    )
  })

  it("timestamps truncate microseconds toward 2000-01-01", () => {
    expect((decodeText("1999-12-31 23:59:59.9995", OID.timestamp) as Date).toISOString()).toBe(
      "2000-01-01T00:00:00.000Z"
    )
    expect((decodeText("2000-01-01 00:00:00.0015", OID.timestamp) as Date).toISOString()).toBe(
      "2000-01-01T00:00:00.001Z"
    )
  })

  it("infinite and out-of-range timestamps are invalid Dates", () => {
    for (const text of ["infinity", "-infinity", "294276-12-31 23:59:59.999999"]) {
      expect((decodeText(text, OID.timestamp) as Date).getTime()).toBeNaN()
    }
    expect((decodeText("294276-12-31 23:59:59.999999+00", OID.timestamptz) as Date).getTime()).toBeNaN()
    expect((decodeText("-infinity", OID.timestamptz) as Date).getTime()).toBeNaN()
  })

  it("malformed timestamps throw", () => {
    for (const text of ["", "2024-01-02", "2024/01/02 00:00:00", "2024-01-02 03:04", "x"]) {
      if (text === "2024-01-02 03:04") {
        // HH:MM without seconds is still a clock reading
        expect((decodeText(text, OID.timestamp) as Date).toISOString()).toBe("2024-01-02T03:04:00.000Z")
        continue
      }
      expect(() => decodeText(text, OID.timestamp), text).toThrow(PgTypes.CodecError)
    }
    expect(() => decodeText("2024-01-02 03:04:05+01", OID.timestamp)).toThrow(PgTypes.CodecError)
    expect(() => decodeText("2024-01-02 03:04:05+1", OID.timestamptz)).toThrow(PgTypes.CodecError)
  })

  it("time is bigint microseconds, timetz a normalised string", () => {
    expect(decodeText("04:05:06.789", OID.time)).toBe(BigInt(14_706_789_000))
    expect(decodeText("04:05:06.5+05:30", OID.timetz)).toBe("04:05:06.5+05:30")
    expect(decodeText("04:05:06-08", OID.timetz)).toBe("04:05:06-08:00")
    expect(() => decodeText("25:00:00", OID.time)).toThrow(PgTypes.CodecError)
    expect(() => decodeText("24:00:01", OID.time)).toThrow(PgTypes.CodecError)
    expect(() => decodeText("4:5", OID.time)).toThrow(PgTypes.CodecError)
    expect(() => decodeText("04:05:06", OID.timetz)).toThrow(PgTypes.CodecError)
  })

  it("interval keeps months, days and microseconds apart", () => {
    expect(decodeText("1 year 2 mons 3 days 04:05:06.789", OID.interval)).toEqual(iv(14, 3, 14_706_789_000))
    expect(decodeText("-1 days +02:00:00", OID.interval)).toEqual(iv(0, -1, 7_200_000_000))
    expect(decodeText("00:00:00", OID.interval)).toEqual(iv(0, 0, 0))
    expect(decodeText("P1W", OID.interval)).toEqual(iv(0, 7, 0))
    expect(() => decodeText("1 fortnight", OID.interval)).toThrow(PgTypes.CodecError)
    expect(() => decodeText("P1X", OID.interval)).toThrow(PgTypes.CodecError)
  })

  it("uuid is the text; json and jsonb are parsed", () => {
    expect(decodeText("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", OID.uuid)).toBe("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
    expect(decodeText("{\"a\": [1, \"x\"]}", OID.jsonb)).toEqual({ a: [1, "x"] })
    expect(decodeText("12", OID.json)).toBe(12)
    expect(() => decodeText("{", OID.json)).toThrow(PgTypes.CodecError)
  })

  it("inet and cidr are formatted like the binary decoder", () => {
    expect(decodeText("::1.2.3.4", OID.inet)).toBe("::102:304")
    expect(decodeText("10.0.0.1/32", OID.inet)).toBe("10.0.0.1")
    expect(decodeText("10.0.0.0/8", OID.cidr)).toBe("10.0.0.0/8")
    expect(() => decodeText("not an address", OID.inet)).toThrow(PgTypes.CodecError)
  })

  it("unknown OIDs and reg* types decode to the text itself, never throwing", () => {
    expect(decodeText("(1,2)", 600 /* point */)).toBe("(1,2)")
    expect(decodeText("pg_class", OID.regclass)).toBe("pg_class")
    expect(decodeText("anything at all", 999_999)).toBe("anything at all")
    expect(decodeText("{1,2}", 1017 /* point[] */)).toBe("{1,2}")
    expect(textDecoderFor(-1)("x")).toBe("x")
  })

  it("textDecoderFor resolves one decoder per OID", () => {
    expect(textDecoderFor(OID.int4)).toBe(textDecoderFor(OID.int4))
    expect(textDecoderFor(OID.int4Array)("{1}")).toEqual([1])
  })
})

describe("array text", () => {
  const text = (value: string): string => value

  it("reads plain, NULL and empty arrays", () => {
    expect(decodeTextArray("{1,2,NULL}", Number)).toEqual([1, 2, null])
    expect(decodeTextArray("{}", text)).toEqual([])
    expect(decodeTextArray("{NULL}", text)).toEqual([null])
    expect(decodeTextArray("{null,Null}", text)).toEqual([null, null])
  })

  it("reads quoted elements with backslash escapes", () => {
    expect(decodeTextArray("{\"a,b\",\"c\\\"d\",\"e\\\\f\",\"\"}", text)).toEqual(["a,b", "c\"d", "e\\f", ""])
    expect(decodeTextArray("{\"NULL\",\"{}\",\" x \"}", text)).toEqual(["NULL", "{}", " x "])
  })

  it("reads unquoted escapes and drops unescaped surrounding white space", () => {
    expect(decodeTextArray("{a\\,b,c\\\"d}", text)).toEqual(["a,b", "c\"d"])
    expect(decodeTextArray("{ a , b c ,\t\"d\" }", text)).toEqual(["a", "b c", "d"])
    expect(decodeTextArray("{a\\ ,\\NULL}", text)).toEqual(["a ", "NULL"])
    expect(decodeTextArray("  {1}  ", Number)).toEqual([1])
  })

  it("drops lower-bound decorations", () => {
    expect(decodeTextArray("[0:1]={1,2}", Number)).toEqual([1, 2])
    expect(decodeTextArray("[-2:-2]={x}", text)).toEqual(["x"])
    expect(decodeTextArray("[1:2][1:1]={{1},{2}}", Number)).toEqual([[1], [2]])
  })

  it("reads several dimensions as nested arrays", () => {
    expect(decodeTextArray("{{1,2},{3,NULL}}", Number)).toEqual([[1, 2], [3, null]])
    expect(decodeTextArray("{{{\"a\"}},{{b}}}", text)).toEqual([[["a"]], [["b"]]])
    expect(decodeText("{{1,2},{3,4}}", OID.int4Array)).toEqual([[1, 2], [3, 4]])
  })

  it("applies the element decoder to every non-NULL element", () => {
    expect(decodeText("{t,f,NULL}", OID.boolArray)).toEqual([true, false, null])
    expect(decodeText("{\"2024-01-01 00:00:00+00\"}", OID.timestamptzArray)).toEqual([new Date(utc(2024))])
    expect(decodeText("{\"{\\\"a\\\": 1}\"}", OID.jsonbArray)).toEqual([{ a: 1 }])
    expect(decodeText("{1,NULL}", OID.int8Array)).toEqual([BigInt(1), null])
  })

  it("splits box arrays on semicolons", () => {
    expect(decodeTextArray("{(3,4),(1,2);(1,1),(0,0)}", text, ";")).toEqual(["(3,4),(1,2)", "(1,1),(0,0)"])
  })

  it("refuses malformed array text", () => {
    for (const bad of ["", "1,2", "{1,2", "{1,2}x", "{\"a}", "{a\"b}", "{,}", "{1,,2}", "[0:1]{1}", "{a\\}", "{{1}"]) {
      expect(() => decodeTextArray(bad, text), bad).toThrow(PgTypes.CodecError)
    }
  })

  it("reports an element that does not decode", () => {
    expect(() => decodeText("{1,x}", OID.int4Array)).toThrow(PgTypes.CodecError)
  })
})
