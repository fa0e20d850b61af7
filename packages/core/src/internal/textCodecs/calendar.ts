/** Text decoders of date, time, timetz, timestamp and timestamptz (ISO DateStyle). */
import { fail } from "./common.ts"


/** Milliseconds from the Unix epoch to the PostgreSQL epoch (2000-01-01). */
export const PG_EPOCH_MS = 946_684_800_000

/** Days from 1970-01-01 to a proleptic Gregorian date (astronomical year numbering). */
export const daysFromCivil = (year: number, month: number, day: number): number => {
  const y = month <= 2 ? year - 1 : year
  const era = Math.floor(y / 400)
  const yearOfEra = y - era * 400
  const shiftedMonth = month > 2 ? month - 3 : month + 9
  const dayOfYear = Math.floor((153 * shiftedMonth + 2) / 5) + day - 1
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear
  return era * 146097 + dayOfEra - 719468
}

/** The two-digit number at `at`, or -1. */
const twoDigitsAt = (text: string, at: number): number => {
  const tens = text.charCodeAt(at) - 48
  const units = text.charCodeAt(at + 1) - 48
  return tens >= 0 && tens <= 9 && units >= 0 && units <= 9 ? tens * 10 + units : -1
}

const endsWithBC = (text: string): boolean => {
  const length = text.length
  return length > 3 && text.charCodeAt(length - 3) === 32 && text.charCodeAt(length - 2) === 66 &&
    text.charCodeAt(length - 1) === 67
}

/** Position after the year digits starting at 0, or -1 when there are none. */
const yearEnd = (text: string, end: number): number => {
  let at = 0
  while (at < end) {
    const digit = text.charCodeAt(at) - 48
    if (digit < 0 || digit > 9) break
    at++
  }
  return at === 0 ? -1 : at
}

const pad4 = (value: number): string => value < 1000 ? String(value).padStart(4, "0") : String(value)

/**
 * `date` text in the ISO DateStyle. The binary decoder prints years before 1
 * AD with astronomical numbering (1 BC is year 0, 2 BC is -0001), so a BC
 * date is renumbered the same way.
 */
export const decodeDate = (text: string): string => {
  if (text === "infinity" || text === "-infinity") return text
  const bc = endsWithBC(text)
  const end = bc ? text.length - 3 : text.length
  const at = yearEnd(text, end)
  if (
    at === -1 || end !== at + 6 || text.charCodeAt(at) !== 45 || text.charCodeAt(at + 3) !== 45 ||
    twoDigitsAt(text, at + 1) === -1 || twoDigitsAt(text, at + 4) === -1
  ) {
    return fail(`Expected an ISO date (DateStyle ISO), received "${text}"`)
  }
  if (!bc) return text
  const year = Number(text.slice(0, at))
  const rest = text.slice(at, end)
  return year === 1 ? `0000${rest}` : `-${pad4(year - 1)}${rest}`
}

// Results of `readClock`, kept in module state so parsing allocates nothing.
export let clockHours = 0
/** Minutes, seconds and fraction of a clock reading, in microseconds. */
export let clockMicros = 0

/**
 * Reads `H+:MM[:SS[.ffffff]]` from `text[start, end)` into `clockHours` and
 * `clockMicros`. Fraction digits past the sixth are dropped. Returns false
 * when the text is not a clock reading.
 */
export const readClock = (text: string, start: number, end: number): boolean => {
  let at = start
  let hours = 0
  while (at < end) {
    const digit = text.charCodeAt(at) - 48
    if (digit < 0 || digit > 9) break
    hours = hours * 10 + digit
    at++
  }
  if (at === start || text.charCodeAt(at) !== 58 || at + 3 > end) return false
  const minutes = twoDigitsAt(text, at + 1)
  if (minutes === -1) return false
  at += 3
  let seconds = 0
  let fraction = 0
  if (at < end) {
    if (text.charCodeAt(at) !== 58 || at + 3 > end) return false
    seconds = twoDigitsAt(text, at + 1)
    if (seconds === -1) return false
    at += 3
    if (at < end) {
      if (text.charCodeAt(at) !== 46) return false
      at++
      let scale = 100_000
      const fractionStart = at
      while (at < end) {
        const digit = text.charCodeAt(at) - 48
        if (digit < 0 || digit > 9) return false
        fraction += digit * scale
        scale = scale / 10
        at++
      }
      if (at === fractionStart) return false
      fraction = Math.trunc(fraction)
    }
  }
  clockHours = hours
  clockMicros = minutes * 60_000_000 + seconds * 1_000_000 + fraction
  return true
}

/** Seconds east of UTC of `±HH[:MM[:SS]]` in `text[start, end)`, or NaN. */
const readZone = (text: string, start: number, end: number): number => {
  const sign = text.charCodeAt(start)
  if (sign !== 43 && sign !== 45) return Number.NaN
  const hours = twoDigitsAt(text, start + 1)
  if (hours === -1) return Number.NaN
  let seconds = hours * 3600
  let at = start + 3
  if (at < end) {
    if (text.charCodeAt(at) !== 58) return Number.NaN
    const minutes = twoDigitsAt(text, at + 1)
    if (minutes === -1) return Number.NaN
    seconds += minutes * 60
    at += 3
    if (at < end) {
      if (text.charCodeAt(at) !== 58) return Number.NaN
      const secs = twoDigitsAt(text, at + 1)
      if (secs === -1) return Number.NaN
      seconds += secs
      at += 3
    }
  }
  if (at !== end) return Number.NaN
  return sign === 45 ? -seconds : seconds
}

/**
 * Epoch milliseconds of an ISO-DateStyle `timestamp` / `timestamptz` text:
 * `YYYY-MM-DD HH:MM:SS[.ffffff][±HH[:MM[:SS]]][ BC]`. Sub-millisecond digits
 * are truncated toward the PostgreSQL epoch, as the binary decoder truncates
 * its microseconds. NaN for the infinities.
 */
const timestampMillis = (text: string, withZone: boolean): number => {
  const first = text.charCodeAt(0)
  if ((first === 105 && text === "infinity") || (first === 45 && text === "-infinity")) return Number.NaN
  const bc = endsWithBC(text)
  const end = bc ? text.length - 3 : text.length
  const at = yearEnd(text, end)
  const month = twoDigitsAt(text, at + 1)
  const day = twoDigitsAt(text, at + 4)
  const separator = text.charCodeAt(at + 6)
  if (
    at === -1 || text.charCodeAt(at) !== 45 || text.charCodeAt(at + 3) !== 45 || month === -1 || day === -1 ||
    (separator !== 32 && separator !== 84)
  ) {
    return fail(`Expected an ISO timestamp (DateStyle ISO), received "${text}"`)
  }
  // The clock ends where the zone starts.
  let zoneStart = end
  for (let index = at + 7; index < end; index++) {
    const code = text.charCodeAt(index)
    if (code === 43 || code === 45) {
      zoneStart = index
      break
    }
  }
  if (!readClock(text, at + 7, zoneStart)) return fail(`Invalid timestamp "${text}"`)
  let zoneSeconds = 0
  if (zoneStart < end) {
    zoneSeconds = withZone ? readZone(text, zoneStart, end) : Number.NaN
    if (zoneSeconds !== zoneSeconds) return fail(`Invalid timestamp zone in "${text}"`)
  }
  const digits = Number(text.slice(0, at))
  const year = bc ? 1 - digits : digits
  const micros = clockMicros
  const subMillis = micros % 1000
  let ms = daysFromCivil(year, month, day) * 86_400_000 + (clockHours * 3600 - zoneSeconds) * 1000 +
    (micros - subMillis) / 1000
  if (subMillis > 0 && ms < PG_EPOCH_MS) ms += 1
  return ms
}

export const decodeTimestamp = (text: string): Date => new Date(timestampMillis(text, false))

export const decodeTimestamptz = (text: string): Date => new Date(timestampMillis(text, true))

/** Microseconds since midnight of `time` text. */
export const decodeTime = (text: string): bigint => {
  if (!readClock(text, 0, text.length) || clockHours > 24) return fail(`Invalid time "${text}"`)
  const micros = clockHours * 3_600_000_000 + clockMicros
  return micros <= 86_400_000_000 ? BigInt(micros) : fail(`Invalid time "${text}"`)
}

const pad2 = (value: number): string => value < 10 ? `0${value}` : String(value)

/**
 * `timetz` in the binary decoder's shape: the time with trailing fraction
 * zeros dropped, then the zone as `±HH:MM` (zone seconds are dropped, as the
 * binary decoder drops them).
 */
export const decodeTimetz = (text: string): string => {
  const end = text.length
  let zoneStart = -1
  for (let index = 5; index < end; index++) {
    const code = text.charCodeAt(index)
    if (code === 43 || code === 45) {
      zoneStart = index
      break
    }
  }
  if (zoneStart === -1 || !readClock(text, 0, zoneStart) || clockHours > 24) return fail(`Invalid timetz "${text}"`)
  const east = readZone(text, zoneStart, end)
  if (east !== east) return fail(`Invalid timetz zone in "${text}"`)
  const micros = clockHours * 3_600_000_000 + clockMicros
  const seconds = Math.trunc(micros / 1_000_000)
  const fraction = micros - seconds * 1_000_000
  let result = `${pad2(Math.trunc(seconds / 3600))}:${pad2(Math.trunc(seconds / 60) % 60)}:${pad2(seconds % 60)}`
  if (fraction !== 0) {
    let digits = String(fraction).padStart(6, "0")
    let cut = digits.length
    while (digits.charCodeAt(cut - 1) === 48) cut--
    digits = digits.slice(0, cut)
    result += `.${digits}`
  }
  const total = Math.abs(east)
  return `${result}${east < 0 ? "-" : "+"}${pad2(Math.trunc(total / 3600))}:${pad2(Math.trunc(total / 60) % 60)}`
}
