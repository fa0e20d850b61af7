/**
 * Text-format decoders, keyed by type OID, for the results of the simple
 * query protocol (and text COPY).
 *
 * The extended protocol reads results in binary through `PgTypes`; these
 * decoders turn the text PostgreSQL prints for the same value into exactly
 * the JavaScript value the binary decoder produces, so a query gives the same
 * types whichever protocol ran it:
 *
 * | PostgreSQL                                  | JavaScript                                   |
 * | ------------------------------------------- | -------------------------------------------- |
 * | bool                                        | boolean                                      |
 * | int2, int4, oid, float4, float8             | number (float4 rounded to single precision)  |
 * | int8                                        | bigint                                       |
 * | numeric                                     | string (exact; `NaN`, `Infinity`, `-Infinity`) |
 * | text, varchar, bpchar, name, unknown, …     | string                                       |
 * | bytea (hex or legacy escape output)         | Uint8Array                                   |
 * | date                                        | string `YYYY-MM-DD` (BC as a negative astronomical year, `infinity`) |
 * | time                                        | bigint microseconds since midnight           |
 * | timetz                                      | string `HH:MM:SS[.ffffff]±HH:MM`             |
 * | timestamp, timestamptz                      | Date (ms, truncated toward 2000-01-01; infinities are an invalid Date) |
 * | interval                                    | `PgTypes.Interval` (months, days, bigint µs) |
 * | uuid                                        | string                                       |
 * | json, jsonb                                 | parsed JSON                                  |
 * | inet, cidr                                  | string, formatted as the binary decoder does |
 * | arrays of the above                         | arrays (multi-dimensional → nested arrays)   |
 * | any other OID                               | the text itself                              |
 *
 * Dates and timestamps are read in the `ISO` DateStyle (PostgreSQL's
 * default); intervals in every IntervalStyle (`postgres`, `postgres_verbose`,
 * `sql_standard`, `iso_8601`). Two deliberate differences from the binary
 * path: `regclass` (and other reg* types) print as names, so they decode as
 * strings; and arrays with other lower bounds or several dimensions decode
 * (bounds dropped, dimensions nested) where the binary decoder refuses them.
 *
 * A malformed value of a known type throws `PgTypes.CodecError`, as the
 * binary field reader does.
 *
 * @since 0.1.0
 */
import { decodeTextArray } from "./textCodecs/array.ts"
import { decodeDate, decodeTime, decodeTimestamp, decodeTimestamptz, decodeTimetz } from "./textCodecs/calendar.ts"
import { identity, OID, type TextValueDecoder } from "./textCodecs/common.ts"
import { decodeInterval } from "./textCodecs/interval.ts"
import { decodeBool, decodeBytea, decodeFloat4, decodeFloat8, decodeInt8, decodeInteger, decodeJson, networkDecoder } from "./textCodecs/scalars.ts"

export type { TextValueDecoder } from "./textCodecs/common.ts"
export { decodeTextArray } from "./textCodecs/array.ts"

// -----------------------------------------------------------------------------
// the table
// -----------------------------------------------------------------------------

const scalarDecoders: ReadonlyArray<readonly [number, TextValueDecoder]> = [
  [OID.bool, decodeBool],
  [OID.bytea, decodeBytea],
  [OID.name, identity],
  [OID.int8, decodeInt8],
  [OID.int2, decodeInteger],
  [OID.int4, decodeInteger],
  [OID.text, identity],
  [OID.oid, decodeInteger],
  [OID.json, decodeJson],
  [OID.cidr, networkDecoder(OID.cidr)],
  [OID.float4, decodeFloat4],
  [OID.float8, decodeFloat8],
  [OID.inet, networkDecoder(OID.inet)],
  [OID.bpchar, identity],
  [OID.varchar, identity],
  [OID.date, decodeDate],
  [OID.time, decodeTime],
  [OID.timestamp, decodeTimestamp],
  [OID.timestamptz, decodeTimestamptz],
  [OID.interval, decodeInterval],
  [OID.timetz, decodeTimetz],
  [OID.numeric, identity],
  [OID.uuid, identity],
  [OID.jsonb, decodeJson]
]

const arrayElements: ReadonlyArray<readonly [number, number]> = [
  [OID.boolArray, OID.bool],
  [OID.byteaArray, OID.bytea],
  [OID.nameArray, OID.name],
  [OID.int8Array, OID.int8],
  [OID.int2Array, OID.int2],
  [OID.int4Array, OID.int4],
  [OID.textArray, OID.text],
  [OID.oidArray, OID.oid],
  [OID.jsonArray, OID.json],
  [OID.cidrArray, OID.cidr],
  [OID.float4Array, OID.float4],
  [OID.float8Array, OID.float8],
  [OID.inetArray, OID.inet],
  [OID.bpcharArray, OID.bpchar],
  [OID.varcharArray, OID.varchar],
  [OID.dateArray, OID.date],
  [OID.timeArray, OID.time],
  [OID.timestampArray, OID.timestamp],
  [OID.timestamptzArray, OID.timestamptz],
  [OID.intervalArray, OID.interval],
  [OID.timetzArray, OID.timetz],
  [OID.numericArray, OID.numeric],
  [OID.regclassArray, OID.regclass],
  [OID.uuidArray, OID.uuid],
  [OID.jsonbArray, OID.jsonb]
]

/** Every built-in OID is below this; the rest are looked up in the map. */
const TABLE_SIZE = 4096
const table: Array<TextValueDecoder | undefined> = new Array(TABLE_SIZE)
const others = new Map<number, TextValueDecoder>()

const install = (oid: number, decoder: TextValueDecoder): void => {
  if (oid < TABLE_SIZE) table[oid] = decoder
  else others.set(oid, decoder)
}

for (const [oid, decoder] of scalarDecoders) install(oid, decoder)
for (const [arrayOid, elementOid] of arrayElements) {
  const element = (elementOid < TABLE_SIZE ? table[elementOid] : others.get(elementOid)) ?? identity
  install(arrayOid, (text) => decodeTextArray(text, element))
}

/**
 * The text decoder for a column of type `oid`. Unknown OIDs decode to the
 * text itself; a known OID with malformed text throws `PgTypes.CodecError`.
 * Resolve once per column, not once per field.
 *
 * @since 0.1.0
 */
export const textDecoderFor = (oid: number): TextValueDecoder =>
  (oid >= 0 && oid < TABLE_SIZE ? table[oid] : others.get(oid)) ?? identity

/**
 * Decodes the text of one field of type `oid` (a shortcut for
 * `textDecoderFor(oid)(text)`).
 *
 * @since 0.1.0
 */
export const decodeText = (text: string, oid: number): unknown => textDecoderFor(oid)(text)
