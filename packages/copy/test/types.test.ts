/**
 * Typed values through COPY in every format: the common types and arrays of
 * them round-trip unchanged and decode to the same values queries give;
 * psycopg's T06 (array writes), T11 (text escaping); 200k awkward rows are
 * identical in text, CSV and binary.
 */
import { expect, layer } from "@effect/vitest"
import { Effect, Stream } from "effect"
import { Copy } from "../src/index.ts"
import { TestDatabase } from "../../../test/harness.ts"
import { connect, text } from "./helpers.ts"

const formats = ["text", "csv", "binary"] as const

const columns = [
  ["b", "bool"],
  ["i2", "int2"],
  ["i4", "int4"],
  ["i8", "int8"],
  ["f4", "float4"],
  ["f8", "float8"],
  ["n", "numeric"],
  ["t", "text"],
  ["vc", "varchar"],
  ["by", "bytea"],
  ["d", "date"],
  ["ts", "timestamp"],
  ["tz", "timestamptz"],
  ["iv", "interval"],
  ["u", "uuid"],
  ["j", "json"],
  ["jb", "jsonb"],
  ["ab", "bool[]"],
  ["ai2", "int2[]"],
  ["ai4", "int4[]"],
  ["ai8", "int8[]"],
  ["af4", "float4[]"],
  ["af8", "float8[]"],
  ["an", "numeric[]"],
  ["at", "text[]"],
  ["aby", "bytea[]"],
  ["ad", "date[]"],
  ["ats", "timestamp[]"],
  ["atz", "timestamptz[]"],
  ["aiv", "interval[]"],
  ["au", "uuid[]"],
  ["aj", "json[]"],
  ["ajb", "jsonb[]"]
] as const

const types = columns.map(([, type]) => type)

const awkward = "tab\there, back\\slash, \"quotes\", 'single', {braces}, comma, ünïcödé € 😀\nnew line\r"

const rows: ReadonlyArray<ReadonlyArray<unknown>> = [
  [
    true,
    -32768,
    2147483647,
    BigInt("9007199254740993"),
    1.5,
    0.1,
    "12345.678900",
    awkward,
    "",
    new Uint8Array([0, 1, 2, 92, 10, 255]),
    "2024-02-29",
    new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 678)),
    new Date(Date.UTC(1969, 6, 20, 20, 17, 40)),
    { months: 14, days: -3, microseconds: BigInt(3_723_000_004) },
    "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
    { a: [1, "x", null], b: { c: true } },
    { nested: { list: [1.5, -2] }, s: awkward },
    [true, null, false],
    [[1, 2], [3, -4]],
    [10, null, 30],
    [BigInt("-9223372036854775808"), BigInt("9223372036854775807")],
    [Math.fround(0.1), -0.5],
    [Number.POSITIVE_INFINITY, Number.NaN, -1e-300],
    ["NaN", "-0.000001", "1e+3"],
    ["", "NULL", "null", awkward, "a b", "x,y", "{}", null],
    [new Uint8Array([]), new Uint8Array([0, 34, 92, 123])],
    ["2000-01-01", "-0043-03-15", "infinity"],
    [new Date(Date.UTC(1999, 11, 31, 23, 59, 59, 999))],
    [new Date(Date.UTC(2030, 5, 1)), null],
    [{ months: -1, days: 0, microseconds: BigInt(-1) }],
    ["00000000-0000-0000-0000-000000000000"],
    [{ k: "v \" \\" }, [1, 2]],
    [{ k: ["w"] }, "string"]
  ],
  [
    false,
    0,
    -2147483648,
    BigInt(0),
    -0.25,
    Number.NEGATIVE_INFINITY,
    "-Infinity",
    "",
    "x",
    new Uint8Array([]),
    "-0043-03-15",
    new Date(Date.UTC(1, 0, 1)),
    new Date(-1),
    { months: 0, days: 0, microseconds: BigInt(-1) },
    "ffffffff-ffff-ffff-ffff-ffffffffffff",
    [1, 2, 3],
    "just a string",
    [],
    [],
    [[[1]]],
    [null],
    [],
    [],
    [],
    [[awkward, "b"], ["c", null]],
    [null],
    [],
    [],
    [],
    [],
    [],
    [],
    []
  ],
  columns.map(() => null)
]

/** Canonical forms the server gives back for values written in another form. */
const expected = (): ReadonlyArray<ReadonlyArray<unknown>> =>
  rows.map((row, index) =>
    index === 0
      ? row.map((value, column) => {
        if (columns[column][0] === "an") return ["NaN", "-0.000001", "1000"]
        if (columns[column][0] === "ad") return ["2000-01-01", "-0043-03-15", "infinity"]
        return value
      })
      : row
  )

const createAll = (name: string) =>
  `CREATE TABLE ${name} (${columns.map(([column, type]) => `${column} ${type}`).join(", ")})`

layer(TestDatabase.layer, { excludeTestServices: true })("COPY types", (it) => {
  it.effect("the common types and arrays of them round-trip in every format, as queries decode them", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      yield* conn.execute("SET TIME ZONE 'Asia/Kolkata'")
      const selected = columns.map(([column]) => column).join(", ")
      let reference: ReadonlyArray<unknown> | undefined
      for (const writeFormat of formats) {
        const table = `all_${writeFormat}`
        yield* conn.execute(createAll(table))
        const loaded = yield* Copy.fromStream(conn, `COPY ${table} (${selected}) FROM STDIN`, Stream.fromIterable(rows), {
          format: writeFormat,
          types
        })
        expect(loaded).toBe(rows.length)
        const queried = (yield* conn.execute(`SELECT ${selected} FROM ${table} ORDER BY b DESC NULLS LAST`, [])).rows
        reference ??= queried
        expect(queried).toEqual(reference)
        for (const readFormat of formats) {
          const read = yield* Stream.runCollect(
            Copy.to(conn, `COPY (SELECT ${selected} FROM ${table} ORDER BY b DESC NULLS LAST) TO STDOUT`, {
              format: readFormat,
              types
            })
          )
          expect(read).toEqual(expected())
          expect(read).toEqual(queried)
        }
      }
    }))

  it.effect("T06 writing arrays checks their shape: inconsistent depths are a CopyDataError, nothing is committed", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      yield* conn.execute("CREATE TABLE arrays (num int4, arr int4[][])")
      for (const format of formats) {
        const error = yield* Effect.flip(Effect.scoped(Effect.gen(function*() {
          const copy = yield* Copy.from(conn, "COPY arrays (num, arr) FROM STDIN", { format, types: ["int4", "int4[]"] })
          yield* copy.writeRow([15, null])
          yield* copy.writeRow([16, [[null], null]])
          return yield* copy.finish
        })))
        expect(error._tag).toBe("CopyDataError")
        expect(error.message).toContain("nested lists have inconsistent depths")
        const lengths = yield* Effect.flip(Effect.scoped(Effect.gen(function*() {
          const copy = yield* Copy.from(conn, "COPY arrays (num, arr) FROM STDIN", { format, types: ["int4", "int4[]"] })
          return yield* copy.writeRow([17, [[1, 2], [3]]])
        })))
        expect(lengths.message).toContain("nested lists have inconsistent lengths")
      }
      expect((yield* conn.execute("SELECT count(*)::int FROM arrays")).rows).toEqual([[0]])
    }))

  it.effect("T11 text escaping of characters 1–255: \\b \\t \\n \\v \\f \\r \\\\ escaped, the rest as is", () =>
    Effect.gen(function*() {
      const records = Array.from({ length: 255 }, (_, i) => [i + 1, String.fromCharCode(i + 1)] as const)
      const data = text(yield* Copy.encodeRows(records))
      const escapes: Record<number, string> = { 8: "\\b", 9: "\\t", 10: "\\n", 11: "\\v", 12: "\\f", 13: "\\r", 92: "\\\\" }
      const lines = data.split("\n")
      expect(lines.pop()).toBe("")
      expect(lines.length).toBe(255)
      lines.forEach((line, i) => {
        const code = i + 1
        expect(line).toBe(`${code}\t${escapes[code] ?? String.fromCharCode(code)}`)
      })
    }))

  it.effect("T11 all 255 characters and € round-trip through the server in every format", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      yield* conn.execute("CREATE TABLE chars (id int, data text)")
      const records = [...Array.from({ length: 255 }, (_, i) => [i + 1, String.fromCharCode(i + 1)] as const), [256, "€"] as const]
      for (const format of formats) {
        yield* conn.execute("TRUNCATE chars")
        yield* Copy.fromStream(conn, "COPY chars FROM STDIN", Stream.fromIterable(records), {
          format,
          types: ["int4", "text"]
        })
        for (const readFormat of formats) {
          const back = yield* Stream.runCollect(
            Copy.to(conn, "COPY (SELECT * FROM chars ORDER BY id) TO STDOUT", { format: readFormat, types: ["int4", "text"] })
          )
          expect(back).toEqual(records)
        }
        const untyped = yield* Stream.runCollect(Copy.to(conn, "COPY (SELECT data FROM chars ORDER BY id) TO STDOUT"))
        expect(untyped.map((row) => row[0])).toEqual(records.map((record) => record[1]))
      }
    }))

  it.effect("200k rows with NULLs, tabs, backslashes, newlines, quotes and non-ASCII text are identical in every format", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      const pieces = ["plain", "tab\t", "back\\slash", "new\nline", "cr\r", "\"quoted\"", "it's", "ünï€😀", "", "\\N", "NULL", ",;|"]
      const make = (n: number) =>
        [
          n,
          n % 7 === 0 ? null : `${pieces[n % pieces.length]} ${n} ${pieces[(n * 7) % pieces.length]}`,
          n % 5 === 0 ? null : BigInt(n) * BigInt(1_000_003),
          n / 8
        ] as const
      const original = Array.from({ length: 200_000 }, (_, i) => make(i))
      const rowTypes = ["int4", "text", "int8", "float8"] as const
      for (const format of formats) {
        yield* conn.execute(`CREATE UNLOGGED TABLE big_${format} (n int4, t text, i int8, f float8)`)
        const loaded = yield* Copy.fromStream(conn, `COPY big_${format} FROM STDIN`, Stream.fromIterable(original), {
          format,
          types: rowTypes
        })
        expect(loaded).toBe(200_000)
      }
      const differences = yield* conn.execute(
        "SELECT (SELECT count(*) FROM (SELECT * FROM big_text EXCEPT ALL SELECT * FROM big_csv) a)::int, " +
          "(SELECT count(*) FROM (SELECT * FROM big_text EXCEPT ALL SELECT * FROM big_binary) b)::int"
      )
      expect(differences.rows).toEqual([[0, 0]])
      for (const format of formats) {
        const back = yield* Stream.runCollect(
          Copy.to(conn, `COPY (SELECT * FROM big_${format} ORDER BY n) TO STDOUT`, { format, types: rowTypes })
        )
        expect(back.length).toBe(original.length)
        expect(back).toEqual(original)
      }
    }))

  it.effect("CSV and text options when writing: header names, delimiter, quote, escape, null", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      yield* conn.execute("CREATE TABLE opts (n int, t text, u text)")
      const records = [[1, "a;b", null], [2, "say 'hi'", ""], [3, "two\nlines", "NULL"], [4, "\\.", "back\\slash"]] as const
      const csv = { format: "csv", header: ["n", "t", "u"], delimiter: ";", quote: "'", null: "NULL" } as const
      const encoded = text(yield* Copy.encodeRows(records, csv))
      expect(encoded).toBe("n;t;u\n1;'a;b';NULL\n2;'say ''hi''';\n3;'two\nlines';'NULL'\n4;'\\.';back\\slash\n")
      const loaded = yield* Copy.fromStream(conn, "COPY opts FROM STDIN", Stream.fromIterable(records), csv)
      expect(loaded).toBe(4)
      const back = yield* Stream.runCollect(
        Copy.to(conn, "COPY (SELECT * FROM opts ORDER BY n) TO STDOUT", { ...csv, header: true, types: ["int4", "text", "text"] })
      )
      expect(back).toEqual(records)
      yield* conn.execute("TRUNCATE opts")
      const textOptions = { format: "text", delimiter: "|", null: "" } as const
      const pipe = [[1, "a|b", null], [2, "tab\there", "x"]] as const
      expect(text(yield* Copy.encodeRows(pipe, textOptions))).toBe("1|a\\|b|\n2|tab\\there|x\n")
      yield* Copy.fromStream(conn, "COPY opts FROM STDIN", Stream.fromIterable(pipe), textOptions)
      const pipeBack = yield* Stream.runCollect(
        Copy.to(conn, "COPY (SELECT * FROM opts ORDER BY n) TO STDOUT", { ...textOptions, types: ["int4", "text", "text"] })
      )
      expect(pipeBack).toEqual(pipe)
    }))

  it.effect("types by OID and by a name the server resolves (an enum, a domain)", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      yield* conn.execute("CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy'); CREATE DOMAIN posint AS int4 CHECK (VALUE > 0)")
      yield* conn.execute("CREATE TABLE moods (m mood, p posint)")
      for (const format of formats) {
        yield* conn.execute("TRUNCATE moods")
        yield* Copy.fromStream(conn, "COPY moods FROM STDIN", Stream.make(["happy", 1], ["sad", 2]), {
          format,
          types: ["mood", format === "binary" ? 23 : "posint"]
        })
        const back = yield* Stream.runCollect(
          Copy.to(conn, "COPY (SELECT m, p::int4 FROM moods ORDER BY p) TO STDOUT", { format, types: ["mood", 23] })
        )
        expect(back).toEqual([["happy", 1], ["sad", 2]])
      }
      const unknown = yield* Effect.flip(Stream.runCollect(Copy.to(conn, "COPY moods TO STDOUT", { types: ["nosuchtype", "int4"] })))
      expect(unknown._tag).toBe("ServerError")
    }))

  it.effect("values without declared types are inferred in text and CSV", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      yield* conn.execute(
        "CREATE TABLE inferred (b bool, i int8, f float8, t text, d timestamptz, by bytea, a int4[], j jsonb)"
      )
      const row = [
        true,
        BigInt("-9223372036854775808"),
        2.5,
        "x\ty",
        new Date(Date.UTC(2020, 1, 29, 12)),
        new Uint8Array([1, 2]),
        [[1, null], [3, 4]],
        { k: [1, "two"] }
      ]
      for (const format of ["text", "csv"] as const) {
        yield* conn.execute("TRUNCATE inferred")
        yield* Copy.fromStream(conn, "COPY inferred FROM STDIN", Stream.make(row), { format })
        expect((yield* conn.execute("SELECT * FROM inferred", [])).rows).toEqual([row])
      }
    }))
})
