/**
 * Column types of a COPY (psycopg's `set_types`): PostgreSQL type names, SQL
 * aliases and `name[]` array spellings resolved to OIDs, plus the element
 * OID of each array type pgfx's codecs know.
 */
import * as PgTypes from "@effect/sql-pg/PgTypes"

const OID = PgTypes.OID

/** Names (and SQL spellings) of the built-in types, lower case. */
const scalarNames: ReadonlyArray<readonly [string, number]> = [
  ["bool", OID.bool],
  ["boolean", OID.bool],
  ["bytea", OID.bytea],
  ["name", OID.name],
  ["int8", OID.int8],
  ["bigint", OID.int8],
  ["int2", OID.int2],
  ["smallint", OID.int2],
  ["int4", OID.int4],
  ["int", OID.int4],
  ["integer", OID.int4],
  ["text", OID.text],
  ["oid", OID.oid],
  ["json", OID.json],
  ["cidr", OID.cidr],
  ["float4", OID.float4],
  ["real", OID.float4],
  ["float8", OID.float8],
  ["double precision", OID.float8],
  ["float", OID.float8],
  ["inet", OID.inet],
  ["bpchar", OID.bpchar],
  ["char", OID.bpchar],
  ["character", OID.bpchar],
  ["varchar", OID.varchar],
  ["character varying", OID.varchar],
  ["date", OID.date],
  ["time", OID.time],
  ["time without time zone", OID.time],
  ["timestamp", OID.timestamp],
  ["timestamp without time zone", OID.timestamp],
  ["timestamptz", OID.timestamptz],
  ["timestamp with time zone", OID.timestamptz],
  ["interval", OID.interval],
  ["timetz", OID.timetz],
  ["time with time zone", OID.timetz],
  ["numeric", OID.numeric],
  ["decimal", OID.numeric],
  ["uuid", OID.uuid],
  ["jsonb", OID.jsonb]
]

const byName = new Map<string, number>(scalarNames)

/** Array OID → element OID, for the arrays the codecs know. */
const arrayElement = new Map<number, number>()
for (const [, oid] of scalarNames) {
  const arrayOid = PgTypes.arrayOidFor(oid)
  if (arrayOid !== undefined) arrayElement.set(arrayOid, oid)
}
arrayElement.set(OID.regclassArray, OID.regclass)

/** The element OID of an array type, or `undefined` for a scalar (or unknown) type. */
export const elementOf = (oid: number): number | undefined => arrayElement.get(oid)

/** Types whose text form is the string itself. */
export const isTextLike = (oid: number): boolean =>
  oid === OID.text || oid === OID.varchar || oid === OID.bpchar || oid === OID.name

const normalise = (name: string): string => name.trim().toLowerCase().replace(/\s+/g, " ")

/**
 * The OID of a built-in type name (`"int4"`, `"bigint"`, `"float8[]"`,
 * `"timestamp with time zone"`), or `undefined` when the server must be asked.
 */
export const builtinOid = (name: string): number | undefined => {
  const text = normalise(name)
  if (text.endsWith("[]")) {
    const element = byName.get(text.slice(0, -2).trim())
    return element === undefined ? undefined : PgTypes.arrayOidFor(element)
  }
  if (text.startsWith("_")) {
    const element = byName.get(text.slice(1))
    return element === undefined ? undefined : PgTypes.arrayOidFor(element)
  }
  return byName.get(text)
}
