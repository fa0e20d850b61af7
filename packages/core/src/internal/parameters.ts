/**
 * Turning JavaScript values into typed bind parameters (`PgTypes.Parameter`),
 * and checking them before anything is written to the socket.
 *
 * Inference, after psycopg's dumpers:
 *
 * | JavaScript                               | PostgreSQL parameter                               |
 * | ---------------------------------------- | -------------------------------------------------- |
 * | `null`, `undefined`                      | NULL, untyped                                      |
 * | string                                   | untyped text (OID 0): the server infers the type   |
 * | number, integer in int32                 | int4                                               |
 * | number, other safe integer               | int8 (sent as bigint)                              |
 * | number, fractional / unsafe / NaN / ±Inf | float8                                             |
 * | bigint                                   | int8, or numeric beyond int64                      |
 * | boolean                                  | bool                                               |
 * | Date, effect `DateTime`                  | timestamptz                                        |
 * | effect `BigDecimal`                      | numeric (scale kept)                               |
 * | Uint8Array, Buffer                       | bytea                                              |
 * | plain object (`{}` or null prototype)    | jsonb                                              |
 * | `PgTypes.Parameter` (`PgValue.int2(1)`…) | as given                                           |
 * | array                                    | array of the elements' common type (see below)     |
 *
 * Arrays: strings → `text[]`, integers → `int4[]` / `int8[]`, any fraction →
 * `float8[]`, bigints beyond 2^53 with fractions → `numeric[]`, Dates →
 * `timestamptz[]`, objects → `jsonb[]`, explicit parameters of one type → that
 * type's array. An empty or all-NULL array is sent untyped (`{}`), so the
 * server takes the column's array type. Mixed types, nested arrays and
 * anything else (symbols, functions, Maps, class instances) are a
 * `ParameterError`, as are strings holding NUL or a lone UTF-16 surrogate.
 *
 * @since 0.1.0
 */
import * as PgTypes from "@effect/sql-pg/PgTypes"
import * as BigDecimal from "effect/BigDecimal"
import * as DateTime from "effect/DateTime"
import * as Result from "effect/Result"
import { ParameterError } from "../PgError.ts"

const OID = PgTypes.OID
const UNTYPED = 0

const INT64_MIN = BigInt("-9223372036854775808")
const INT64_MAX = BigInt("9223372036854775807")
const SAFE_MIN = BigInt(Number.MIN_SAFE_INTEGER)
const SAFE_MAX = BigInt(Number.MAX_SAFE_INTEGER)
/** 4714-11-24 00:00:00 BC UTC, the earliest `timestamptz`. Later JS Dates all fit. */
const MIN_TIMESTAMP_MS = -210_866_803_200_000
/** PostgreSQL's limit on parameters of one statement (an int16 count). */
const MAX_PARAMETERS = 65535

const TypeId: PgTypes.ParameterTypeId = PgTypes.ParameterTypeId

/**
 * A class rather than an object literal: the type-id key is not known where
 * a literal is parsed, which makes V8 build each literal the slow way.
 */
class InferredParameter implements PgTypes.Parameter {
  readonly [TypeId]: PgTypes.ParameterTypeId = TypeId
  constructor(readonly oid: number, readonly value: unknown) {}
}

const makeParameter = (oid: number, value: unknown): PgTypes.Parameter => new InferredParameter(oid, value)

const untypedNull = makeParameter(UNTYPED, null)
const trueParameter = makeParameter(OID.bool, true)
const falseParameter = makeParameter(OID.bool, false)

// -----------------------------------------------------------------------------
// string checks
// -----------------------------------------------------------------------------

type WellFormed = (this: string) => boolean
const nativeIsWellFormed = (String.prototype as { isWellFormed?: WellFormed }).isWellFormed

/** Whether every surrogate in the string is half of a pair (so it has a UTF-8 encoding). */
export const isWellFormed: (text: string) => boolean = nativeIsWellFormed !== undefined
  ? (text) => nativeIsWellFormed.call(text)
  : (text) => {
    for (let at = 0; at < text.length; at++) {
      const code = text.charCodeAt(at)
      if (code >= 0xd800 && code <= 0xdfff) {
        if (code >= 0xdc00) return false
        const next = text.charCodeAt(at + 1)
        if (!(next >= 0xdc00 && next <= 0xdfff)) return false
        at++
      }
    }
    return true
  }

/** Why the string cannot travel as PostgreSQL text, or undefined when it can. */
const stringProblem = (text: string): string | undefined => {
  if (text.indexOf("\u0000") !== -1) {
    return "contains a NUL byte (\\u0000), which PostgreSQL text cannot hold"
  }
  if (!isWellFormed(text)) {
    return "contains a lone UTF-16 surrogate, which cannot be encoded as UTF-8"
  }
  return undefined
}

const where = (index: number, element: number): string =>
  element < 0 ? `parameter $${index + 1}` : `parameter $${index + 1} element ${element + 1}`

const error = (index: number, element: number, message: string, cause?: unknown): ParameterError =>
  new ParameterError({ message: `${where(index, element)} ${message}`, index: index + 1, cause })

// -----------------------------------------------------------------------------
// scalars
// -----------------------------------------------------------------------------

// `scalar` returns the OID (or -1 on error) and leaves the value to send in
// `scalarValue` and any error in `scalarError`, so inferring a parameter
// allocates nothing but the parameter itself.
let scalarValue: unknown = null
let scalarError: ParameterError | undefined = undefined

const failWith = (failure: ParameterError): undefined => {
  scalarError = failure
  return undefined
}

const reject = (index: number, element: number, message: string, cause?: unknown): number => {
  scalarError = error(index, element, message, cause)
  return -1
}

const describe = (value: unknown): string => {
  if (typeof value === "function") return "a function"
  if (typeof value === "symbol") return "a symbol"
  const name = (value as { constructor?: { name?: unknown } }).constructor?.name
  return typeof name === "string" && name.length > 0 ? `a ${name}` : "an object"
}

const bigDecimalText = (decimal: BigDecimal.BigDecimal): string => {
  const scale = decimal.scale
  if (scale <= 0) return (decimal.value * BigInt(10) ** BigInt(-scale)).toString()
  const negative = decimal.value < BigInt(0)
  const digits = (negative ? -decimal.value : decimal.value).toString().padStart(scale + 1, "0")
  const point = digits.length - scale
  return `${negative ? "-" : ""}${digits.slice(0, point)}.${digits.slice(point)}`
}

const isPlainObject = (value: object): boolean => {
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

/** Checks that the value serialises to JSON PostgreSQL accepts for `oid`. */
const jsonProblem = (value: unknown, oid: number): string | undefined => {
  let text: string | undefined
  try {
    text = JSON.stringify(value)
  } catch (cause) {
    return `cannot be serialised as JSON: ${cause instanceof Error ? cause.message : String(cause)}`
  }
  if (text === undefined) return "cannot be serialised as JSON"
  if (oid === OID.jsonb && text.indexOf("\\u0000") !== -1) {
    return "contains \\u0000, which jsonb cannot hold"
  }
  return undefined
}

const dateProblem = (ms: number): string | undefined =>
  ms !== ms
    ? "is an invalid Date"
    : ms < MIN_TIMESTAMP_MS && ms !== Number.NEGATIVE_INFINITY
    ? "is before 4714-11-24 BC, the earliest PostgreSQL timestamp"
    : undefined

/**
 * Infers the type of one non-array value. `element` is the position inside
 * an array parameter, or -1.
 */
const scalar = (value: unknown, index: number, element: number): number => {
  switch (typeof value) {
    case "string": {
      const problem = stringProblem(value)
      if (problem !== undefined) return reject(index, element, problem)
      scalarValue = value
      return UNTYPED
    }
    case "number": {
      scalarValue = value
      if ((value | 0) === value) return OID.int4
      if (Number.isSafeInteger(value)) {
        scalarValue = BigInt(value)
        return OID.int8
      }
      return OID.float8
    }
    case "bigint": {
      if (value >= INT64_MIN && value <= INT64_MAX) {
        scalarValue = value
        return OID.int8
      }
      scalarValue = value.toString()
      return OID.numeric
    }
    case "boolean":
      scalarValue = value
      return OID.bool
    case "undefined":
      scalarValue = null
      return UNTYPED
    case "object": {
      if (value === null) {
        scalarValue = null
        return UNTYPED
      }
      if (value instanceof Date) {
        const problem = dateProblem(value.getTime())
        if (problem !== undefined) return reject(index, element, problem)
        scalarValue = value
        return OID.timestamptz
      }
      if (value instanceof Uint8Array) {
        scalarValue = value
        return OID.bytea
      }
      if (Array.isArray(value)) {
        return reject(index, element, "is a nested array; only one-dimensional arrays can be sent")
      }
      if (PgTypes.isParameter(value)) {
        return reject(index, element, "is an explicit parameter; use PgValue.array(values, elementOid) instead")
      }
      if (DateTime.isDateTime(value)) {
        const ms = DateTime.toEpochMillis(value)
        const problem = dateProblem(ms)
        if (problem !== undefined) return reject(index, element, problem)
        scalarValue = ms
        return OID.timestamptz
      }
      if (BigDecimal.isBigDecimal(value)) {
        scalarValue = bigDecimalText(value)
        return OID.numeric
      }
      if (isPlainObject(value)) {
        const problem = jsonProblem(value, OID.jsonb)
        if (problem !== undefined) return reject(index, element, problem)
        scalarValue = value
        return OID.jsonb
      }
      return reject(
        index,
        element,
        `is ${describe(value)}, which has no PostgreSQL type; convert it, or wrap it (PgValue.jsonb(value), …)`
      )
    }
    default:
      return reject(index, element, `is ${describe(value)}, which cannot be sent to PostgreSQL`)
  }
}

// -----------------------------------------------------------------------------
// explicit parameters
// -----------------------------------------------------------------------------

const textOids = new Set<number>([OID.text, OID.varchar, OID.bpchar, OID.name])
const arrayElement = new Map<number, number>(
  (Object.keys(OID) as Array<keyof typeof OID>)
    .filter((key) => key.endsWith("Array"))
    .map((key) => [OID[key], OID[key.slice(0, -5) as keyof typeof OID]])
)

/** Checks one non-null value of an explicit parameter of type `oid`. */
const explicitProblem = (value: unknown, oid: number): string | undefined => {
  if (oid === UNTYPED) {
    return typeof value === "string"
      ? stringProblem(value)
      : typeof value === "number" || typeof value === "bigint" || typeof value === "boolean"
      ? undefined
      : "is untyped (OID 0) but not a string"
  }
  if (textOids.has(oid)) {
    return typeof value === "string" ? stringProblem(value) : `is not a string (type OID ${oid})`
  }
  if (oid === OID.bytea) return value instanceof Uint8Array ? undefined : "is not a Uint8Array (bytea)"
  if ((oid === OID.timestamp || oid === OID.timestamptz) && (value instanceof Date || typeof value === "number")) {
    const problem = dateProblem(value instanceof Date ? value.getTime() : value)
    if (problem !== undefined) return problem
  }
  if (oid === OID.json || oid === OID.jsonb) return jsonProblem(value, oid)
  // Everything else is small: let the codec itself try it.
  let encoded: Result.Result<Uint8Array, PgTypes.CodecError>
  try {
    encoded = PgTypes.encode(value, oid)
  } catch (cause) {
    return `cannot be encoded (type OID ${oid}): ${cause instanceof Error ? cause.message : String(cause)}`
  }
  return Result.isFailure(encoded) ? `cannot be encoded (type OID ${oid}): ${encoded.failure.message}` : undefined
}

const explicitParameter = (
  parameter: PgTypes.Parameter,
  index: number
): PgTypes.Parameter | undefined => {
  const value = parameter.value
  const oid = parameter.oid
  if (value === null || value === undefined) {
    return value === null ? parameter : makeParameter(oid, null)
  }
  const elementOid = arrayElement.get(oid)
  if (elementOid === undefined) {
    const problem = explicitProblem(value, oid)
    return problem === undefined ? parameter : failWith(error(index, -1, problem))
  }
  if (!Array.isArray(value)) return failWith(error(index, -1, `is not an array (type OID ${oid})`))
  let values: Array<unknown> | undefined
  for (let at = 0; at < value.length; at++) {
    const element: unknown = value[at]
    if (element === null) continue
    if (element === undefined) {
      values ??= value.slice()
      values[at] = null
      continue
    }
    if (Array.isArray(element)) {
      return failWith(error(index, at, "is a nested array; only one-dimensional arrays can be sent"))
    }
    const problem = explicitProblem(element, elementOid)
    if (problem !== undefined) return failWith(error(index, at, problem))
  }
  return values === undefined ? parameter : makeParameter(oid, values)
}

// -----------------------------------------------------------------------------
// arrays
// -----------------------------------------------------------------------------

/** `{NULL,NULL,…}`: the text of an array with no values. */
const nullArrayText = (length: number): string => length === 0 ? "{}" : `{${Array(length).fill("NULL").join(",")}}`

const isNumericFamily = (oid: number): boolean =>
  oid === OID.int4 || oid === OID.int8 || oid === OID.float8 || oid === OID.numeric

const numericText = (value: unknown): string => typeof value === "string" ? value : String(value)

const arrayParameter = (
  values: ReadonlyArray<unknown>,
  index: number
): PgTypes.Parameter | undefined => {
  const length = values.length
  const converted: Array<unknown> = new Array(length)
  let common = -1
  // An int8 beyond 2^53 cannot become a float8 exactly, so it and a fraction
  // together need numeric.
  let unsafeInt8 = false
  let explicit = false
  for (let at = 0; at < length; at++) {
    const value = values[at]
    let oid: number
    if (value === null || value === undefined) {
      converted[at] = null
      continue
    }
    if (PgTypes.isParameter(value)) {
      if (value.value === null || value.value === undefined) {
        converted[at] = null
      } else {
        const problem = explicitProblem(value.value, value.oid)
        if (problem !== undefined) return failWith(error(index, at, problem))
        converted[at] = value.value
      }
      oid = value.oid
      if (common !== -1 && (!explicit || common !== oid)) {
        return failWith(error(index, at, `has type OID ${oid}, unlike the elements before it`))
      }
      explicit = true
      common = oid
      continue
    }
    oid = scalar(value, index, at)
    if (oid === -1) return undefined
    if (oid === UNTYPED) oid = OID.text
    converted[at] = scalarValue
    if (oid === OID.int8 && ((scalarValue as bigint) < SAFE_MIN || (scalarValue as bigint) > SAFE_MAX)) {
      unsafeInt8 = true
    }
    if (common === -1) {
      common = oid
    } else if (common !== oid) {
      if (explicit || !isNumericFamily(common) || !isNumericFamily(oid)) {
        return failWith(error(index, at, `${kindOf(oid)} cannot share an array with ${kindOf(common)}`))
      }
      common = widen(common, oid, unsafeInt8)
    }
  }
  scalarValue = null
  if (common === -1) {
    // empty or all NULL: untyped, so the server takes the array type it needs
    return makeParameter(UNTYPED, nullArrayText(length))
  }
  if (common === OID.float8 && unsafeInt8) common = OID.numeric
  const arrayOid = PgTypes.arrayOidFor(common)
  if (arrayOid === undefined) {
    return failWith(error(index, -1, `has elements of type OID ${common}, which has no known array type`))
  }
  if (isNumericFamily(common)) {
    for (let at = 0; at < length; at++) {
      const value = converted[at]
      if (value === null) continue
      if (common === OID.int8) {
        if (typeof value === "number") converted[at] = BigInt(value)
      } else if (common === OID.float8) {
        if (typeof value === "bigint") converted[at] = Number(value)
      } else if (common === OID.numeric) {
        converted[at] = numericText(value)
      }
    }
  }
  return makeParameter(arrayOid, converted)
}

const widen = (left: number, right: number, unsafeInt8: boolean): number => {
  if (left === OID.numeric || right === OID.numeric) return OID.numeric
  if (left === OID.float8 || right === OID.float8) return unsafeInt8 ? OID.numeric : OID.float8
  return OID.int8
}

const kindOf = (oid: number): string => {
  switch (oid) {
    case OID.text:
      return "a string"
    case OID.int4:
    case OID.int8:
    case OID.float8:
    case OID.numeric:
      return "a number"
    case OID.bool:
      return "a boolean"
    case OID.timestamptz:
      return "a date"
    case OID.bytea:
      return "a Uint8Array"
    case OID.jsonb:
      return "an object"
    default:
      return `type OID ${oid}`
  }
}

// -----------------------------------------------------------------------------
// entry points
// -----------------------------------------------------------------------------

/**
 * Infers the PostgreSQL parameter for a JavaScript value (see the module
 * documentation for the rules) and checks it can be sent. `index` is the
 * value's 0-based position; errors name it 1-based, as `$n`.
 *
 * @since 0.1.0
 */
/** As `toParameter`, but undefined on failure with the error in `scalarError`. */
const infer = (value: unknown, index: number): PgTypes.Parameter | undefined => {
  switch (typeof value) {
    case "boolean":
      return value ? trueParameter : falseParameter
    case "object":
      if (value === null) return untypedNull
      if (Array.isArray(value)) return arrayParameter(value, index)
      if (PgTypes.isParameter(value)) return explicitParameter(value, index)
      break
    case "undefined":
      return untypedNull
  }
  const oid = scalar(value, index, -1)
  if (oid === -1) return undefined
  const parameter = makeParameter(oid, scalarValue)
  scalarValue = null
  return parameter
}

const takeError = (): ParameterError => {
  const failure = scalarError!
  scalarError = undefined
  return failure
}

/**
 * Infers the PostgreSQL parameter for a JavaScript value (see the module
 * documentation for the rules) and checks it can be sent. `index` is the
 * value's 0-based position; errors name it 1-based, as `$n`.
 *
 * @since 0.1.0
 */
export const toParameter = (value: unknown, index: number): Result.Result<PgTypes.Parameter, ParameterError> => {
  const parameter = infer(value, index)
  return parameter === undefined ? Result.fail(takeError()) : Result.succeed(parameter)
}

/**
 * Infers and checks every parameter of a statement, failing on the first
 * value that cannot be sent (or when there are more than 65535).
 *
 * @since 0.1.0
 */
export const toParameters = (
  values: ReadonlyArray<unknown>
): Result.Result<ReadonlyArray<PgTypes.Parameter>, ParameterError> => {
  const length = values.length
  if (length > MAX_PARAMETERS) {
    return Result.fail(
      new ParameterError({ message: `${length} parameters given; PostgreSQL accepts at most ${MAX_PARAMETERS}` })
    )
  }
  const parameters: Array<PgTypes.Parameter> = new Array(length)
  for (let index = 0; index < length; index++) {
    const parameter = infer(values[index], index)
    if (parameter === undefined) return Result.fail(takeError())
    parameters[index] = parameter
  }
  return Result.succeed(parameters)
}

/**
 * The type OIDs of the parameters, for `Parse` and the statement cache key
 * (0 where the server infers the type).
 *
 * @since 0.1.0
 */
export const parameterOids = (parameters: ReadonlyArray<PgTypes.Parameter>): ReadonlyArray<number> => {
  const length = parameters.length
  const oids: Array<number> = new Array(length)
  for (let index = 0; index < length; index++) oids[index] = parameters[index].oid
  return oids
}
