/**
 * COPY text format for the peers that move raw bytes (pg-copy-streams,
 * postgres.js): honest escaping on the way in, honest parsing into typed
 * values on the way out — what an application has to write around them.
 *
 * Escaping follows PostgreSQL's text format: backslash, tab, newline,
 * carriage return, backspace, form feed and vertical tab are escaped, NULL
 * is `\N`. Values are encoded by their JavaScript type (string, number,
 * bigint, boolean, Date, null).
 */

const escapable = /[\\\t\n\r\b\f\v]/
const escapableAll = /[\\\t\n\r\b\f\v]/g
const escapes: Record<string, string> = {
  "\\": "\\\\",
  "\t": "\\t",
  "\n": "\\n",
  "\r": "\\r",
  "\b": "\\b",
  "\f": "\\f",
  "\v": "\\v"
}
const escapeChar = (c: string): string => escapes[c]

/** One value in COPY text format. */
export const encodeValue = (value: unknown): string => {
  switch (typeof value) {
    case "string":
      if (value.includes("\u0000")) throw new Error("NUL byte in a text value")
      return escapable.test(value) ? value.replace(escapableAll, escapeChar) : value
    case "number":
    case "bigint":
      return String(value)
    case "boolean":
      return value ? "t" : "f"
    case "object":
      if (value === null) return "\\N"
      if (value instanceof Date) {
        if (Number.isNaN(value.getTime())) throw new Error("invalid Date")
        return value.toISOString()
      }
      break
    case "undefined":
      return "\\N"
  }
  throw new Error(`cannot encode ${typeof value} for COPY text`)
}

/** Rows → one string of COPY text lines. */
export const encodeRows = (rows: ReadonlyArray<ReadonlyArray<unknown>>): string => {
  let out = ""
  for (const row of rows) {
    let line = ""
    for (let j = 0; j < row.length; j++) {
      if (j > 0) line += "\t"
      line += encodeValue(row[j])
    }
    out += line + "\n"
  }
  return out
}

// ---------------------------------------------------------------------------
// parsing
// ---------------------------------------------------------------------------

const unescapeText = (field: string): string => {
  if (!field.includes("\\")) return field
  let out = ""
  for (let i = 0; i < field.length; i++) {
    const c = field[i]
    if (c !== "\\") {
      out += c
      continue
    }
    const n = field[++i]
    switch (n) {
      case "b":
        out += "\b"
        break
      case "f":
        out += "\f"
        break
      case "n":
        out += "\n"
        break
      case "r":
        out += "\r"
        break
      case "t":
        out += "\t"
        break
      case "v":
        out += "\v"
        break
      case "x": {
        const hex = /^[0-9a-fA-F]{1,2}/.exec(field.slice(i + 1, i + 3))?.[0] ?? ""
        out += String.fromCharCode(parseInt(hex, 16))
        i += hex.length
        break
      }
      default:
        if (n >= "0" && n <= "7") {
          const oct = /^[0-7]{1,3}/.exec(field.slice(i, i + 3))![0]
          out += String.fromCharCode(parseInt(oct, 8))
          i += oct.length - 1
        } else {
          out += n
        }
    }
  }
  return out
}

const digits = (s: string, from: number, to: number): number => {
  let n = 0
  for (let i = from; i < to; i++) n = n * 10 + (s.charCodeAt(i) - 48)
  return n
}

/** `YYYY-MM-DD HH:MM:SS[.ffffff]±HH[:MM[:SS]]` → Date (PostgreSQL's ISO output). */
export const parseTimestamptz = (s: string): Date => {
  if (s === "infinity" || s === "-infinity") return new Date(NaN)
  const year = digits(s, 0, 4)
  const month = digits(s, 5, 7)
  const day = digits(s, 8, 10)
  const hour = digits(s, 11, 13)
  const minute = digits(s, 14, 16)
  const second = digits(s, 17, 19)
  let i = 19
  let ms = 0
  if (s[i] === ".") {
    const start = ++i
    while (i < s.length && s.charCodeAt(i) >= 48 && s.charCodeAt(i) <= 57) i++
    ms = Number(`0.${s.slice(start, i)}`) * 1000
  }
  let offset = 0
  if (s[i] === "+" || s[i] === "-") {
    const sign = s[i] === "-" ? -1 : 1
    const oh = digits(s, i + 1, i + 3)
    const om = s[i + 3] === ":" ? digits(s, i + 4, i + 6) : 0
    const os = s[i + 6] === ":" ? digits(s, i + 7, i + 9) : 0
    offset = sign * (oh * 3600 + om * 60 + os) * 1000
  }
  if (s.endsWith(" BC")) throw new Error("BC timestamps are not handled by the bench parser")
  return new Date(Date.UTC(year, month - 1, day, hour, minute, second) + Math.floor(ms) - offset)
}

type FieldParser = (text: string) => unknown

const parsers: Record<string, FieldParser> = {
  int2: Number,
  int4: Number,
  int8: BigInt,
  float4: Number,
  float8: Number,
  text: unescapeText,
  timestamptz: (text) => parseTimestamptz(unescapeText(text)),
  bool: (text) => text === "t"
}

/**
 * Splits COPY text output into rows of typed values. Feed it the raw chunks
 * (split anywhere, even inside a UTF-8 sequence); `onRow` gets each row.
 */
export class CopyTextParser {
  private readonly fieldParsers: ReadonlyArray<FieldParser>
  private rest: Buffer | undefined
  rows = 0

  constructor(types: ReadonlyArray<string>, private readonly onRow: (row: Array<unknown>) => void) {
    this.fieldParsers = types.map((type) => {
      const parser = parsers[type]
      if (parser === undefined) throw new Error(`no parser for ${type}`)
      return parser
    })
  }

  push(chunk: Buffer): void {
    const last = chunk.lastIndexOf(10)
    if (last === -1) {
      this.rest = this.rest === undefined ? chunk : Buffer.concat([this.rest, chunk])
      return
    }
    const complete = this.rest === undefined
      ? chunk.subarray(0, last)
      : Buffer.concat([this.rest, chunk.subarray(0, last)])
    this.rest = last + 1 < chunk.length ? chunk.subarray(last + 1) : undefined
    this.lines(complete.toString("utf8"))
  }

  end(): void {
    if (this.rest !== undefined && this.rest.length > 0) throw new Error("COPY data ended inside a row")
  }

  private lines(text: string): void {
    const parsers = this.fieldParsers
    const width = parsers.length
    let start = 0
    while (start <= text.length) {
      let end = text.indexOf("\n", start)
      if (end === -1) end = text.length
      const row = new Array<unknown>(width)
      let fieldStart = start
      for (let j = 0; j < width; j++) {
        let fieldEnd = j === width - 1 ? end : text.indexOf("\t", fieldStart)
        if (fieldEnd === -1 || fieldEnd > end) throw new Error(`row ${this.rows + 1}: expected ${width} columns`)
        const field = text.slice(fieldStart, fieldEnd)
        row[j] = field === "\\N" ? null : parsers[j](field)
        fieldStart = fieldEnd + 1
      }
      this.rows++
      this.onRow(row)
      start = end + 1
    }
  }
}
