/**
 * PostgreSQL values in JavaScript: explicit typed parameters, and the type
 * mapping pgfx applies in both directions.
 *
 * **Parameters.** A plain JavaScript value passed as a parameter gets its
 * type inferred:
 *
 * | JavaScript                               | sent as                                            |
 * | ---------------------------------------- | -------------------------------------------------- |
 * | `null`, `undefined`                      | NULL                                               |
 * | string                                   | untyped text: the server infers the type, as for a quoted literal |
 * | number, integer in int32 range           | `int4`                                             |
 * | number, other safe integer               | `int8`                                             |
 * | number, fractional, unsafe, NaN, ±Infinity | `float8`                                         |
 * | bigint                                   | `int8`; `numeric` beyond the int64 range           |
 * | boolean                                  | `bool`                                             |
 * | Date, effect `DateTime`                  | `timestamptz` (an invalid Date is an error)        |
 * | effect `BigDecimal`                      | `numeric`                                          |
 * | Uint8Array, Buffer                       | `bytea`                                            |
 * | plain object                             | `jsonb`                                            |
 * | array                                    | array of the elements' common type: `text[]`, `int4[]`, `int8[]`, `float8[]`, `numeric[]`, `bool[]`, `timestamptz[]`, `bytea[]`, `jsonb[]`; empty / all-NULL arrays untyped |
 * | a value built here (`PgValue.int2(1)`)   | exactly that type                                  |
 *
 * Use the constructors of this module when inference is not what you want:
 * `PgValue.int2(1)`, `PgValue.uuid(id)`, `PgValue.jsonb([1, 2])` (a JSON
 * array, not a `jsonb[]`), `PgValue.timestamp(date)` (wall clock, no zone),
 * `PgValue.arrayOf("uuid", ids)`, `PgValue.untyped("{1,2}")`. Strings with a
 * NUL character or a lone UTF-16 surrogate, symbols, functions, Maps and
 * class instances are refused with a `ParameterError` before anything is
 * sent.
 *
 * **Results.** Columns decode to the same values whether the statement ran
 * through the extended protocol (binary) or the simple protocol (text):
 *
 * | PostgreSQL                          | JavaScript                                           |
 * | ----------------------------------- | ---------------------------------------------------- |
 * | `bool`                              | boolean                                              |
 * | `int2`, `int4`, `oid`               | number                                               |
 * | `int8`                              | bigint                                               |
 * | `float4`, `float8`                  | number                                               |
 * | `numeric`                           | string, exact (`"NaN"`, `"Infinity"`, `"-Infinity"`) |
 * | `text`, `varchar`, `bpchar`, `name` | string                                               |
 * | `bytea`                             | Uint8Array                                           |
 * | `uuid`                              | string                                               |
 * | `json`, `jsonb`                     | parsed JSON                                          |
 * | `date`                              | string `YYYY-MM-DD` (`"infinity"`, astronomical years BC) |
 * | `time`                              | bigint, microseconds since midnight                  |
 * | `timetz`                            | string `HH:MM:SS[.ffffff]±HH:MM`                      |
 * | `timestamp`                         | Date whose UTC fields are the wall-clock fields      |
 * | `timestamptz`                       | Date (the instant)                                   |
 * | `interval`                          | `{ months, days, microseconds: bigint }`             |
 * | `inet`, `cidr`                      | string                                               |
 * | arrays of these                     | arrays                                               |
 * | anything else                       | string (the server's text)                           |
 *
 * Timestamps keep millisecond precision (microseconds are truncated toward
 * 2000-01-01); `infinity` and `-infinity` become an invalid Date.
 *
 * @since 0.1.0
 */
import * as PgTypes from "@effect/sql-pg/PgTypes"
import type * as Result from "effect/Result"

const TypeId: PgTypes.ParameterTypeId = PgTypes.ParameterTypeId

/** The parameters this module builds itself (`PgTypes.isParameter` accepts them). */
class TypedParameter implements PgTypes.Parameter {
  readonly [TypeId]: PgTypes.ParameterTypeId = TypeId
  constructor(readonly oid: number, readonly value: unknown) {}
}

/**
 * A value paired with the type OID it is sent as.
 *
 * @since 0.1.0
 */
export type Parameter = PgTypes.Parameter

/**
 * A PostgreSQL interval: calendar months, days and microseconds, each signed
 * and independent (no normalisation).
 *
 * @since 0.1.0
 */
export type Interval = PgTypes.Interval

/**
 * The type OIDs of the built-in types pgfx encodes and decodes
 * (`OID.int4 === 23`, `OID.int4Array === 1007`, ...).
 *
 * @example
 * ```ts
 * const result = yield* conn.execute("SELECT 1::int8 AS n")
 * result.fields[0].typeOid === PgValue.OID.int8 // true
 * ```
 *
 * @since 0.1.0
 */
export const OID: typeof PgTypes.OID = PgTypes.OID

/**
 * Whether a value is an explicit typed parameter.
 *
 * @example
 * ```ts
 * PgValue.isParameter(PgValue.int2(1)) // true
 * PgValue.isParameter(1)               // false: its type is inferred when sent
 * ```
 *
 * @since 0.1.0
 */
export const isParameter: (value: unknown) => value is Parameter = PgTypes.isParameter

/**
 * An untyped parameter (OID 0): the text travels as is and the server infers
 * the type from the statement, as for a quoted literal (`'{1,2}'`,
 * `'2024-01-02'`, an enum label).
 *
 * @example
 * ```ts
 * // a Postgres array literal, typed by the column it is compared with
 * yield* conn.execute("SELECT * FROM t WHERE tags && $1", [PgValue.untyped("{red,blue}")])
 * ```
 *
 * @since 0.1.0
 */
export const untyped = (text: string | null): Parameter => new TypedParameter(0, text)

/** A `bool` parameter. @since 0.1.0 */
export const bool: (value: boolean | null) => Parameter = PgTypes.bool

/**
 * An `int2` parameter (-32768 to 32767). A plain number would be sent as
 * `int4`; pin the type where the server does not cast (binary COPY, function
 * overloads).
 *
 * @example
 * ```ts
 * yield* conn.execute("SELECT pg_typeof($1)::text", [PgValue.int2(7)]) // [["smallint"]]
 * ```
 *
 * @since 0.1.0
 */
export const int2: (value: number | null) => Parameter = PgTypes.int2

/** An `int4` parameter. @since 0.1.0 */
export const int4: (value: number | null) => Parameter = PgTypes.int4

/** An `int8` parameter, given as a bigint. @since 0.1.0 */
export const int8: (value: bigint | null) => Parameter = PgTypes.int8

/** An `oid` parameter (0 to 4294967295). @since 0.1.0 */
export const oid: (value: number | null) => Parameter = PgTypes.oid

/** A `float4` parameter. @since 0.1.0 */
export const float4: (value: number | null) => Parameter = PgTypes.float4

/** A `float8` parameter (also for integral numbers that must stay floats). @since 0.1.0 */
export const float8: (value: number | null) => Parameter = PgTypes.float8

/**
 * A `numeric` parameter, given as a decimal string (`"12.50"`, `"1e-3"`,
 * `"NaN"`, `"Infinity"`).
 *
 * @since 0.1.0
 */
export const numeric: (value: string | null) => Parameter = PgTypes.numeric

/** A `text` parameter (a typed string, where inference would leave it untyped). @since 0.1.0 */
export const text: (value: string | null) => Parameter = PgTypes.text

/** A `varchar` parameter. @since 0.1.0 */
export const varchar: (value: string | null) => Parameter = PgTypes.varchar

/** A `bpchar` (`char(n)`) parameter. @since 0.1.0 */
export const bpchar: (value: string | null) => Parameter = PgTypes.bpchar

/** A `name` parameter. @since 0.1.0 */
export const name: (value: string | null) => Parameter = PgTypes.name

/** A `bytea` parameter. @since 0.1.0 */
export const bytea: (value: Uint8Array | null) => Parameter = PgTypes.bytea

/**
 * A `json` parameter: any JSON-serialisable value (arrays included, sent as
 * one JSON document).
 *
 * @since 0.1.0
 */
export const json: (value: unknown) => Parameter = PgTypes.json

/**
 * A `jsonb` parameter: any JSON-serialisable value (arrays included, sent as
 * one JSON document rather than a `jsonb[]`).
 *
 * @example
 * ```ts
 * // a plain array would be sent as int4[]; this is one JSON document
 * yield* conn.execute("INSERT INTO events (payload) VALUES ($1)", [PgValue.jsonb([1, 2, 3])])
 * ```
 *
 * @since 0.1.0
 */
export const jsonb: (value: unknown) => Parameter = PgTypes.jsonb

/**
 * A `uuid` parameter, in the hyphenated form.
 *
 * @example
 * ```ts
 * yield* conn.execute("SELECT * FROM users WHERE id = $1", [PgValue.uuid("5b9e0d4a-3c1f-4f6e-9a51-2f0c1e7d8a90")])
 * ```
 *
 * @since 0.1.0
 */
export const uuid: (value: string | null) => Parameter = PgTypes.uuid

/** An `inet` parameter (`"10.0.0.1"`, `"10.0.0.1/8"`, `"::1"`). @since 0.1.0 */
export const inet: (value: string | null) => Parameter = PgTypes.inet

/** A `cidr` parameter (`"10.0.0.0/8"`; host bits must be zero). @since 0.1.0 */
export const cidr: (value: string | null) => Parameter = PgTypes.cidr

/** A `date` parameter: `YYYY-MM-DD`, `"infinity"` or `"-infinity"`. @since 0.1.0 */
export const date: (value: string | null) => Parameter = PgTypes.date

/** A `time` parameter, in microseconds since midnight. @since 0.1.0 */
export const time: (value: bigint | null) => Parameter = PgTypes.time

/** A `timetz` parameter, such as `"12:34:56+02:00"`. @since 0.1.0 */
export const timetz: (value: string | null) => Parameter = PgTypes.timetz

/**
 * A `timestamp` (without time zone) parameter from a Date or epoch
 * milliseconds: its UTC fields become the stored wall-clock fields, whatever
 * the session `TimeZone`. `±Infinity` sends `±infinity`.
 *
 * @example
 * ```ts
 * // stored as 2026-01-02 03:04:05 whatever the session's TimeZone
 * yield* conn.execute("INSERT INTO log (at) VALUES ($1)", [PgValue.timestamp(new Date("2026-01-02T03:04:05Z"))])
 * ```
 *
 * @since 0.1.0
 */
export const timestamp: (value: Date | number | null) => Parameter = PgTypes.timestamp

/**
 * A `timestamptz` parameter from a Date or epoch milliseconds (what a plain
 * Date is sent as). `±Infinity` sends `±infinity`.
 *
 * @since 0.1.0
 */
export const timestamptz: (value: Date | number | null) => Parameter = PgTypes.timestamptz

/** An `interval` parameter: `{ months, days, microseconds: bigint }`. @since 0.1.0 */
export const interval: (value: Interval | null) => Parameter = PgTypes.interval

/**
 * A one-dimensional array parameter whose elements have the given type OID;
 * fails when that type has no array type pgfx knows. See `arrayOf` for a
 * variant checked at compile time.
 *
 * @example
 * ```ts
 * const ids = PgValue.array([1n, 2n, 3n], PgValue.OID.int8) // a Result: a CodecError for an unknown OID
 * if (Result.isSuccess(ids)) yield* conn.execute("SELECT * FROM t WHERE id = ANY($1)", [ids.success])
 * ```
 *
 * @since 0.1.0
 */
export const array: (
  values: ReadonlyArray<unknown> | null,
  elementOid: number
) => Result.Result<Parameter, PgTypes.CodecError> = (values, elementOid) => PgTypes.array(values, elementOid)

/**
 * The JavaScript value of each element type `arrayOf` accepts.
 *
 * @since 0.1.0
 */
export interface ArrayElementTypes {
  readonly bool: boolean
  readonly int2: number
  readonly int4: number
  readonly int8: bigint
  readonly oid: number
  readonly float4: number
  readonly float8: number
  readonly numeric: string
  readonly text: string
  readonly varchar: string
  readonly bpchar: string
  readonly name: string
  readonly bytea: Uint8Array
  readonly json: unknown
  readonly jsonb: unknown
  readonly uuid: string
  readonly inet: string
  readonly cidr: string
  readonly date: string
  readonly time: bigint
  readonly timetz: string
  readonly timestamp: Date | number
  readonly timestamptz: Date | number
  readonly interval: Interval
}

/**
 * The element type names `arrayOf` accepts.
 *
 * @since 0.1.0
 */
export type ArrayElementType = keyof ArrayElementTypes

const arrayOids: { readonly [K in ArrayElementType]: number } = {
  bool: PgTypes.OID.boolArray,
  int2: PgTypes.OID.int2Array,
  int4: PgTypes.OID.int4Array,
  int8: PgTypes.OID.int8Array,
  oid: PgTypes.OID.oidArray,
  float4: PgTypes.OID.float4Array,
  float8: PgTypes.OID.float8Array,
  numeric: PgTypes.OID.numericArray,
  text: PgTypes.OID.textArray,
  varchar: PgTypes.OID.varcharArray,
  bpchar: PgTypes.OID.bpcharArray,
  name: PgTypes.OID.nameArray,
  bytea: PgTypes.OID.byteaArray,
  json: PgTypes.OID.jsonArray,
  jsonb: PgTypes.OID.jsonbArray,
  uuid: PgTypes.OID.uuidArray,
  inet: PgTypes.OID.inetArray,
  cidr: PgTypes.OID.cidrArray,
  date: PgTypes.OID.dateArray,
  time: PgTypes.OID.timeArray,
  timetz: PgTypes.OID.timetzArray,
  timestamp: PgTypes.OID.timestampArray,
  timestamptz: PgTypes.OID.timestamptzArray,
  interval: PgTypes.OID.intervalArray
}

/**
 * A one-dimensional array parameter of a named element type, for example
 * `arrayOf("uuid", ids)` for `WHERE id = ANY($1)` on a uuid column, or
 * `arrayOf("int2", [1, 2])`. NULL elements are allowed.
 *
 * @example
 * ```ts
 * yield* conn.execute("SELECT * FROM users WHERE id = ANY($1)", [PgValue.arrayOf("uuid", ids)])
 * ```
 *
 * @since 0.1.0
 */
export const arrayOf = <K extends ArrayElementType>(
  type: K,
  values: ReadonlyArray<ArrayElementTypes[K] | null> | null
): Parameter => new TypedParameter(arrayOids[type], values)

/**
 * Text-format decoders (the simple query protocol, text COPY): the same JS
 * values the binary decoders give, per type OID; unknown OIDs return the
 * text itself.
 *
 * @since 0.1.0
 */
export { decodeText, decodeTextArray, textDecoderFor, type TextValueDecoder } from "./internal/textCodecs.ts"

/**
 * The calendar arithmetic of the date and timestamp codecs, for decoders
 * that read timestamps in place (COPY): days from 1970-01-01 to a proleptic
 * Gregorian date, and the PostgreSQL epoch (2000-01-01) in Unix milliseconds.
 *
 * @example
 * ```ts
 * PgValue.daysFromCivil(2000, 1, 1) * 86_400_000 === PgValue.PG_EPOCH_MS // true
 * ```
 *
 * @since 0.1.0
 */
export { daysFromCivil, PG_EPOCH_MS } from "./internal/textCodecs/calendar.ts"

/**
 * Infers the typed parameter of a JS value (see the table above); checks it
 * before anything is sent.
 *
 * @example
 * ```ts
 * PgValue.toParameters([1, "x", 2n]) // Result: [int4, untyped, int8], or a ParameterError
 * ```
 *
 * @since 0.1.0
 */
export { isWellFormed, toParameter, toParameters } from "./internal/parameters.ts"
