/**
 * The row types of a COPY (re-exported by `Copy.ts`): the JavaScript value
 * of each type name, read and written, and the rows `to` yields and
 * `writeRow` takes for a list of column types.
 */
import type { PgValue } from "@pgfx/core"
import type { Format } from "./statement.ts"

/**
 * The JavaScript value each type name decodes to (the same values core's
 * queries return; see `PgValue`).
 *
 * @since 0.1.0
 */
export interface TypeValues {
  readonly bool: boolean
  readonly boolean: boolean
  readonly bytea: Uint8Array
  readonly name: string
  readonly int8: bigint
  readonly bigint: bigint
  readonly int2: number
  readonly smallint: number
  readonly int4: number
  readonly int: number
  readonly integer: number
  readonly text: string
  readonly oid: number
  readonly json: unknown
  readonly jsonb: unknown
  readonly cidr: string
  readonly inet: string
  readonly float4: number
  readonly real: number
  readonly float8: number
  readonly "double precision": number
  readonly float: number
  readonly bpchar: string
  readonly char: string
  readonly character: string
  readonly varchar: string
  readonly "character varying": string
  readonly date: string
  readonly time: bigint
  readonly timetz: string
  readonly timestamp: Date
  readonly "timestamp without time zone": Date
  readonly timestamptz: Date
  readonly "timestamp with time zone": Date
  readonly interval: PgValue.Interval
  readonly numeric: string
  readonly decimal: string
  readonly uuid: string
}

/**
 * The JavaScript values accepted for each type name when writing (wider
 * than `TypeValues` where a conversion is lossless).
 *
 * @since 0.1.0
 */
export interface TypeInputs extends
  Omit<
    TypeValues,
    "int8" | "bigint" | "numeric" | "decimal" | "date" | "time" | "timestamp" | "timestamptz" |
    "timestamp with time zone" | "timestamp without time zone"
  >
{
  readonly int8: bigint | number
  readonly bigint: bigint | number
  readonly numeric: string | number | bigint
  readonly decimal: string | number | bigint
  readonly date: string | Date
  readonly time: bigint | number
  readonly timestamp: Date | number
  readonly "timestamp without time zone": Date | number
  readonly timestamptz: Date | number
  readonly "timestamp with time zone": Date | number
}

/**
 * A built-in type name `types` understands without asking the server.
 *
 * @since 0.1.0
 */
export type TypeName = keyof TypeValues

/**
 * A column type: a built-in name, an array of one (`"int4[]"`), any other
 * type name the server knows (looked up with `::regtype`: enums, domains,
 * `schema.type`), or a type OID.
 *
 * @since 0.1.0
 */
export type TypeSpec = TypeName | `${TypeName}[]` | (string & {}) | number

/**
 * A PostgreSQL array in JavaScript: nested arrays for several dimensions,
 * `null` for NULL elements.
 *
 * @since 0.1.0
 */
export type PgArray<T> = ReadonlyArray<T | null | PgArray<T>>

type ValueOf<S, M> = S extends keyof M ? M[S]
  : S extends `${infer E}[]` ? E extends keyof M ? PgArray<M[E]> : unknown
  : unknown

/**
 * The row `Copy.to` yields for `types` (a tuple typed after the names), or
 * without types the raw fields: strings for text and CSV, bytes for binary.
 *
 * @since 0.1.0
 */
export type OutputRow<T extends ReadonlyArray<TypeSpec> | undefined, F extends Format = Format> = T extends
  ReadonlyArray<TypeSpec> ? { readonly [K in keyof T]: ValueOf<T[K], TypeValues> | null }
  : F extends "binary" ? ReadonlyArray<Uint8Array | null>
  : ReadonlyArray<string | null>

/**
 * The row `writeRow` takes for `types`, or without types any values (their
 * type inferred as for query parameters, `PgValue.int4(1)` and friends
 * accepted everywhere).
 *
 * @since 0.1.0
 */
export type InputRow<T extends ReadonlyArray<TypeSpec> | undefined> = T extends ReadonlyArray<TypeSpec>
  ? { readonly [K in keyof T]: ValueOf<T[K], TypeInputs> | PgValue.Parameter | null | undefined }
  : ReadonlyArray<unknown>
