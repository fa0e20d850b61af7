/**
 * Dates and times as COPY text: `date`, `time`, `timestamp[tz]` (written
 * straight into the chunk for years 1–9999) and `interval`, as the
 * server's `::text` prints them, BC years included.
 */
import { PgValue } from "@pgfx/core"
import { type Chunk, EncodeFailure } from "./chunk.ts"
import type { Dialect } from "./dialect.ts"
import { writePlain } from "./textQuoting.ts"
import { checkInteger, INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN, wrongType } from "./valueChecks.ts"

const twoDigits = Array.from({ length: 100 }, (_, n) => (n < 10 ? "0" : "") + n)
const threeDigits = Array.from({ length: 1000 }, (_, n) => String(n).padStart(3, "0"))

/** The civil date of a day count since 1970-01-01 (Howard Hinnant's algorithm). */
const civil = (days: number, out: Int32Array): void => {
  const z = days + 719468
  const era = Math.floor(z / 146097)
  const doe = z - era * 146097
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365)
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100))
  const mp = Math.floor((5 * doy + 2) / 153)
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1
  const month = mp < 10 ? mp + 3 : mp - 9
  out[0] = yoe + era * 400 + (month <= 2 ? 1 : 0)
  out[1] = month
  out[2] = day
}

const civilScratch = new Int32Array(3)

/** `YYYY-MM-DD`, BC years as PostgreSQL writes them (`0044-03-15 BC` is returned as date + suffix). */
const dateParts = (days: number): { readonly date: string; readonly bc: boolean } => {
  civil(days, civilScratch)
  const year = civilScratch[0]
  const bc = year <= 0
  const shown = bc ? 1 - year : year
  const yearText = shown < 10000 ? twoDigits[(shown / 100) | 0] + twoDigits[shown % 100] : String(shown)
  return { date: `${yearText}-${twoDigits[civilScratch[1]]}-${twoDigits[civilScratch[2]]}`, bc }
}

const MS_PER_DAY = 86_400_000

/** The time of day `splitDay` found: hours, minutes, seconds, milliseconds (truncated). */
const clock = new Int32Array(4)

/** Splits epoch milliseconds into the day count since 1970-01-01 (returned) and the time of day (into `clock`). */
const splitDay = (ms: number): number => {
  const days = Math.floor(ms / MS_PER_DAY)
  let rest = ms - days * MS_PER_DAY
  const hours = Math.floor(rest / 3_600_000)
  rest -= hours * 3_600_000
  const minutes = Math.floor(rest / 60_000)
  rest -= minutes * 60_000
  const seconds = Math.floor(rest / 1000)
  clock[0] = hours
  clock[1] = minutes
  clock[2] = seconds
  clock[3] = Math.floor(rest - seconds * 1000)
  return days
}

/** Epoch milliseconds of a Date, a number or a typed parameter (NaN and invalid Dates refused). */
export const timestampMillis = (value: unknown, type: string): number => {
  if (value instanceof Date) {
    const ms = value.getTime()
    if (Number.isNaN(ms)) throw new EncodeFailure(`an invalid Date cannot be sent as ${type}`)
    return ms
  }
  if (typeof value === "number") {
    if (Number.isNaN(value)) throw new EncodeFailure(`NaN cannot be sent as ${type}`)
    return value
  }
  if (PgValue.isParameter(value)) return timestampMillis(value.value, type)
  return wrongType(value, "a Date or epoch milliseconds", type)
}

/** The text of a timestamp: UTC fields, with `+00` for timestamptz. */
export const timestampText = (ms: number, zone: boolean): string => {
  if (ms === Number.POSITIVE_INFINITY) return "infinity"
  if (ms === Number.NEGATIVE_INFINITY) return "-infinity"
  const { bc, date } = dateParts(splitDay(ms))
  const hours = clock[0]
  const minutes = clock[1]
  const seconds = clock[2]
  const millis = clock[3]
  let text = `${date} ${twoDigits[hours]}:${twoDigits[minutes]}:${twoDigits[seconds]}`
  if (millis !== 0) text += `.${threeDigits[millis]}`
  if (zone) text += "+00"
  return bc ? `${text} BC` : text
}

/**
 * Writes a timestamp straight into the chunk for years 1–9999 (the common
 * case); anything else goes through `timestampText`.
 */
export const writeTimestamp = (chunk: Chunk, ms: number, zone: boolean, dialect: Dialect): void => {
  // 0001-01-01 to 9999-12-31 in epoch milliseconds.
  if (!dialect.plain || !(ms >= -62_135_596_800_000 && ms < 253_402_300_800_000)) {
    return writePlain(chunk, timestampText(ms, zone), dialect)
  }
  civil(splitDay(ms), civilScratch)
  const year = civilScratch[0]
  chunk.ensure(30)
  const buf = chunk.buf
  let pos = chunk.pos
  buf[pos] = 48 + ((year / 1000) | 0)
  buf[pos + 1] = 48 + (((year / 100) | 0) % 10)
  buf[pos + 2] = 48 + (((year / 10) | 0) % 10)
  buf[pos + 3] = 48 + (year % 10)
  buf[pos + 4] = 45
  const month = civilScratch[1]
  buf[pos + 5] = 48 + ((month / 10) | 0)
  buf[pos + 6] = 48 + (month % 10)
  buf[pos + 7] = 45
  const day = civilScratch[2]
  buf[pos + 8] = 48 + ((day / 10) | 0)
  buf[pos + 9] = 48 + (day % 10)
  buf[pos + 10] = 32
  const hours = clock[0]
  const minutes = clock[1]
  const seconds = clock[2]
  const millis = clock[3]
  buf[pos + 11] = 48 + ((hours / 10) | 0)
  buf[pos + 12] = 48 + (hours % 10)
  buf[pos + 13] = 58
  buf[pos + 14] = 48 + ((minutes / 10) | 0)
  buf[pos + 15] = 48 + (minutes % 10)
  buf[pos + 16] = 58
  buf[pos + 17] = 48 + ((seconds / 10) | 0)
  buf[pos + 18] = 48 + (seconds % 10)
  pos += 19
  if (millis !== 0) {
    buf[pos] = 46
    buf[pos + 1] = 48 + ((millis / 100) | 0)
    buf[pos + 2] = 48 + (((millis / 10) | 0) % 10)
    buf[pos + 3] = 48 + (millis % 10)
    pos += 4
  }
  if (zone) {
    buf[pos] = 43
    buf[pos + 1] = 48
    buf[pos + 2] = 48
    pos += 3
  }
  chunk.pos = pos
}

/** The UTC date of a Date as `YYYY-MM-DD`, years before 1 AD astronomical (`-0043-03-15`). */
export const isoDate = (value: Date): string => {
  const ms = value.getTime()
  if (Number.isNaN(ms)) throw new EncodeFailure("an invalid Date cannot be sent as date")
  civil(Math.floor(ms / MS_PER_DAY), civilScratch)
  const year = civilScratch[0]
  const yearText = year < 0 ? `-${String(-year).padStart(4, "0")}` : String(year).padStart(4, "0")
  return `${yearText}-${twoDigits[civilScratch[1]]}-${twoDigits[civilScratch[2]]}`
}

const astronomicalDate = /^(-?)(\d{4,})(-\d\d-\d\d)$/

export const dateText = (value: unknown): string => {
  if (typeof value === "string") {
    // Years before 1 AD as the decoders give them (astronomical: 0000 is 1 BC, -0043 is 44 BC).
    const match = astronomicalDate.exec(value)
    if (match === null) return value
    const year = Number(match[2])
    if (match[1] === "") return year === 0 ? `0001${match[3]} BC` : value
    return `${String(year + 1).padStart(4, "0")}${match[3]} BC`
  }
  if (value instanceof Date) return dateText(isoDate(value))
  if (PgValue.isParameter(value)) return dateText(value.value)
  return wrongType(value, "a YYYY-MM-DD string or a Date", "date")
}

const MICROS_PER_SECOND = BigInt(1_000_000)
const MICROS_PER_MINUTE = BigInt(60_000_000)
const MICROS_PER_HOUR = BigInt(3_600_000_000)
const BIG_ZERO = BigInt(0)

/** `[-]H:MM:SS.ffffff` of a microsecond count (hours unbounded). */
const clockText = (micros: bigint): string => {
  const negative = micros < BIG_ZERO
  let rest = negative ? -micros : micros
  const hours = rest / MICROS_PER_HOUR
  rest -= hours * MICROS_PER_HOUR
  const minutes = Number(rest / MICROS_PER_MINUTE)
  rest -= BigInt(minutes) * MICROS_PER_MINUTE
  const seconds = Number(rest / MICROS_PER_SECOND)
  const fraction = Number(rest - BigInt(seconds) * MICROS_PER_SECOND)
  const base = `${negative ? "-" : ""}${hours < 10 ? "0" : ""}${hours}:${twoDigits[minutes]}:${twoDigits[seconds]}`
  return fraction === 0 ? base : `${base}.${String(fraction).padStart(6, "0")}`
}

export const timeText = (value: unknown): string => {
  if (typeof value === "string") return value
  if (PgValue.isParameter(value)) return timeText(value.value)
  const micros = typeof value === "bigint"
    ? value
    : typeof value === "number" && Number.isSafeInteger(value)
    ? BigInt(value)
    : wrongType(value, "microseconds since midnight (bigint)", "time")
  if (micros < BIG_ZERO || micros > BigInt(86_400_000_000)) throw new EncodeFailure(`time out of range: ${micros}`)
  return clockText(micros)
}

export const intervalText = (value: unknown): string => {
  if (typeof value === "string") return value
  if (PgValue.isParameter(value)) return intervalText(value.value)
  if (typeof value !== "object" || value === null) return wrongType(value, "{ months, days, microseconds }", "interval")
  const interval = value as PgValue.Interval
  const months = checkInteger(interval.months, "interval months", INT32_MIN, INT32_MAX)
  const days = checkInteger(interval.days, "interval days", INT32_MIN, INT32_MAX)
  const raw: unknown = interval.microseconds
  const micros = typeof raw === "bigint"
    ? raw
    : typeof raw === "number" && Number.isSafeInteger(raw)
    ? BigInt(raw)
    : wrongType(raw, "a bigint", "interval microseconds")
  if (micros < INT64_MIN || micros > INT64_MAX) throw new EncodeFailure(`interval microseconds out of range: ${micros}`)
  return `${months} mons ${days} days ${clockText(micros)}`
}
