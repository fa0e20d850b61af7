/** The text decoder of interval, in every IntervalStyle. */
import * as PgTypes from "@effect/sql-pg/PgTypes"
import { readClock, clockHours, clockMicros } from "./calendar.ts"
import { fail } from "./common.ts"


const MICROS_PER_SECOND = BigInt(1_000_000)
const MICROS_PER_MINUTE = BigInt(60_000_000)
const MICROS_PER_HOUR = BigInt(3_600_000_000)
const BIG_ZERO = BigInt(0)

/** Interval units PostgreSQL prints, as (months, days, microseconds) per unit. */
type Unit = "year" | "month" | "week" | "day" | "hour" | "minute" | "second"

const units: Record<string, Unit> = {
  year: "year",
  years: "year",
  mon: "month",
  mons: "month",
  month: "month",
  months: "month",
  week: "week",
  weeks: "week",
  day: "day",
  days: "day",
  hour: "hour",
  hours: "hour",
  min: "minute",
  mins: "minute",
  minute: "minute",
  minutes: "minute",
  sec: "second",
  secs: "second",
  second: "second",
  seconds: "second"
}

const isUnit = (token: string | undefined): boolean => token !== undefined && Object.hasOwn(units, token)

/**
 * Microseconds of a signed decimal number of `unitMicros` (whole units, plus
 * up to six fraction digits of seconds). Undefined when malformed.
 */
const decimalMicros = (token: string, start: number, end: number, unitMicros: bigint): bigint | undefined => {
  let at = start
  let negative = false
  const sign = token.charCodeAt(at)
  if (sign === 45 || sign === 43) {
    negative = sign === 45
    at++
  }
  const wholeStart = at
  while (at < end) {
    const digit = token.charCodeAt(at) - 48
    if (digit < 0 || digit > 9) break
    at++
  }
  if (at === wholeStart) return undefined
  let micros = BigInt(token.slice(wholeStart, at)) * unitMicros
  if (at < end) {
    if (token.charCodeAt(at) !== 46 || unitMicros !== MICROS_PER_SECOND) return undefined
    const fraction = token.slice(at + 1, end)
    if (fraction.length === 0 || !/^\d+$/.test(fraction)) return undefined
    micros += BigInt(fraction.padEnd(6, "0").slice(0, 6))
  }
  return negative ? -micros : micros
}

/** A signed integer token, or undefined. */
const integerToken = (token: string, start: number, end: number): number | undefined => {
  const micros = decimalMicros(token, start, end, BigInt(1))
  return micros === undefined ? undefined : Number(micros)
}

/** A `[±]H+:MM:SS[.ffffff]` token as signed microseconds, or undefined. */
const clockToken = (token: string): bigint | undefined => {
  const sign = token.charCodeAt(0)
  const start = sign === 45 || sign === 43 ? 1 : 0
  if (!readClock(token, start, token.length)) return undefined
  const micros = clockHours < 2_000_000
    ? BigInt(clockHours * 3_600_000_000 + clockMicros)
    : BigInt(clockHours) * MICROS_PER_HOUR + BigInt(clockMicros)
  return sign === 45 ? -micros : micros
}

interface MutableInterval {
  months: number
  days: number
  microseconds: bigint
}

const badInterval = (text: string): never => fail(`Invalid interval "${text}"`)

/** `P1Y2M3DT4H5M6.789S`, each number signed on its own (IntervalStyle iso_8601). */
const decodeIsoInterval = (text: string): MutableInterval => {
  const result: MutableInterval = { months: 0, days: 0, microseconds: BIG_ZERO }
  let inTime = false
  let at = 1
  const end = text.length
  while (at < end) {
    if (text.charCodeAt(at) === 84 /* T */) {
      inTime = true
      at++
      continue
    }
    let designator = at
    while (designator < end) {
      const code = text.charCodeAt(designator)
      if ((code >= 48 && code <= 57) || code === 45 || code === 43 || code === 46) designator++
      else break
    }
    if (designator === at || designator >= end) return badInterval(text)
    const unit = text[designator]
    if (inTime) {
      const micros = decimalMicros(
        text,
        at,
        designator,
        unit === "H" ? MICROS_PER_HOUR : unit === "M" ? MICROS_PER_MINUTE : MICROS_PER_SECOND
      )
      if (micros === undefined || (unit !== "H" && unit !== "M" && unit !== "S")) return badInterval(text)
      result.microseconds += micros
    } else {
      const value = integerToken(text, at, designator)
      if (value === undefined) return badInterval(text)
      if (unit === "Y") result.months += value * 12
      else if (unit === "M") result.months += value
      else if (unit === "W") result.days += value * 7
      else if (unit === "D") result.days += value
      else return badInterval(text)
    }
    at = designator + 1
  }
  return result
}

/**
 * The `postgres` (`1 year 2 mons -3 days +04:05:06`), `postgres_verbose`
 * (`@ 1 year 2 mons 3 days 4 hours 5 mins 6.7 secs ago`) and `sql_standard`
 * (`1-2`, `-3 4:05:06`, `+1-2 -3 +4:05:06`) IntervalStyles.
 */
const decodeWordInterval = (text: string): MutableInterval => {
  const result: MutableInterval = { months: 0, days: 0, microseconds: BIG_ZERO }
  const tokens = text.split(" ").filter((token) => token.length > 0 && token !== "@")
  let ago = false
  // sql_standard writes one leading sign for the whole value when every field
  // has it, and then no sign on the later fields.
  let sqlStandard = false
  let laterSign = false
  for (let index = 0; index < tokens.length; index++) {
    const token = tokens[index]
    if (token === "ago") continue
    if (index > 0 && (token.charCodeAt(0) === 45 || token.charCodeAt(0) === 43)) laterSign = true
    if (isUnit(tokens[index + 1])) index++
    else if (token.indexOf(":") === -1) sqlStandard = true
  }
  const negateUnsigned = sqlStandard && !laterSign && tokens.length > 0 && tokens[0].charCodeAt(0) === 45
  for (let index = 0; index < tokens.length; index++) {
    const token = tokens[index]
    if (token === "ago") {
      ago = true
      continue
    }
    const first = token.charCodeAt(0)
    const negate = negateUnsigned && index > 0 && first !== 45 && first !== 43
    const unit = isUnit(tokens[index + 1]) ? units[tokens[index + 1]] : undefined
    if (unit !== undefined) {
      index++
      if (unit === "hour" || unit === "minute" || unit === "second") {
        const micros = decimalMicros(
          token,
          0,
          token.length,
          unit === "hour" ? MICROS_PER_HOUR : unit === "minute" ? MICROS_PER_MINUTE : MICROS_PER_SECOND
        )
        if (micros === undefined) return badInterval(text)
        result.microseconds += negate ? -micros : micros
      } else {
        const value = integerToken(token, 0, token.length)
        if (value === undefined) return badInterval(text)
        const signed = negate ? -value : value
        if (unit === "year") result.months += signed * 12
        else if (unit === "month") result.months += signed
        else if (unit === "week") result.days += signed * 7
        else result.days += signed
      }
    } else if (token.indexOf(":") !== -1) {
      const micros = clockToken(token)
      if (micros === undefined) return badInterval(text)
      result.microseconds += negate ? -micros : micros
    } else {
      // sql_standard: `Y-M` (one sign for both) or a bare number of days
      const start = first === 45 || first === 43 ? 1 : 0
      const dash = token.indexOf("-", start)
      if (dash === -1) {
        const value = integerToken(token, 0, token.length)
        if (value === undefined) return badInterval(text)
        result.days += negate ? -value : value
      } else {
        const years = integerToken(token, start, dash)
        const months = integerToken(token, dash + 1, token.length)
        if (years === undefined || months === undefined) return badInterval(text)
        const value = years * 12 + months
        result.months += first === 45 !== negate ? -value : value
      }
    }
  }
  if (ago) {
    result.months = -result.months
    result.days = -result.days
    result.microseconds = -result.microseconds
  }
  return result
}

export const decodeInterval = (text: string): PgTypes.Interval => {
  const interval = text.charCodeAt(0) === 80 ? decodeIsoInterval(text) : decodeWordInterval(text)
  // -0 would differ from the binary decoder's 0 under Object.is
  if (interval.months === 0) interval.months = 0
  if (interval.days === 0) interval.days = 0
  return interval
}
