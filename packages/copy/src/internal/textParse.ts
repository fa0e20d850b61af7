/**
 * Text and CSV rows of COPY TO: fields split on the delimiter and newline
 * bytes in place (never inside a UTF-8 sequence, whose bytes are all
 * ≥ 0x80); a field is only copied when it has to be unescaped or unquoted.
 */
import type { Dialect } from "./dialect.ts"
import { decodeError, type FieldDecoder, type RowParser, wrongWidth } from "./decode.ts"
import { columnDecoder, textField } from "./textDecode.ts"

/** A growable scratch buffer for fields that must be unescaped or unquoted. */
class Scratch {
  bytes = Buffer.allocUnsafe(1024)
  length = 0
  reset(capacity: number): void {
    if (capacity > this.bytes.length) this.bytes = Buffer.allocUnsafe(Math.max(capacity, this.bytes.length * 2))
    this.length = 0
  }
}

const hexValue = (code: number): number =>
  code >= 48 && code <= 57 ? code - 48 : code >= 97 && code <= 102 ? code - 87 : code >= 65 && code <= 70 ? code - 55 : -1

/** Text format backslash sequences → bytes (`\t`, `\\`, `\123` octal, `\x4f` hex, `\c` → c). */
const unescapeText = (bytes: Uint8Array, start: number, end: number, scratch: Scratch): void => {
  scratch.reset(end - start)
  const out = scratch.bytes
  let n = 0
  for (let i = start; i < end; i++) {
    let byte = bytes[i]
    if (byte === 92 && i + 1 < end) {
      const next = bytes[++i]
      switch (next) {
        case 98:
          byte = 8
          break
        case 102:
          byte = 12
          break
        case 110:
          byte = 10
          break
        case 114:
          byte = 13
          break
        case 116:
          byte = 9
          break
        case 118:
          byte = 11
          break
        case 120: {
          const high = i + 1 < end ? hexValue(bytes[i + 1]) : -1
          if (high === -1) {
            byte = next
            break
          }
          i++
          byte = high
          const low = i + 1 < end ? hexValue(bytes[i + 1]) : -1
          if (low !== -1) {
            i++
            byte = high * 16 + low
          }
          break
        }
        default:
          if (next >= 48 && next <= 55) {
            byte = next - 48
            for (let k = 0; k < 2 && i + 1 < end && bytes[i + 1] >= 48 && bytes[i + 1] <= 55; k++) {
              byte = byte * 8 + bytes[++i] - 48
            }
            byte &= 0xff
          } else {
            byte = next
          }
      }
    }
    out[n++] = byte
  }
  scratch.length = n
}

/** A text or CSV parser: column types (`undefined`: the text itself), the column count, the dialect, whether a header line comes first. */
type TextLikeParser = (
  types: ReadonlyArray<number | undefined> | undefined,
  columns: number,
  dialect: Dialect,
  skipHeader: boolean
) => RowParser

/** What the text and CSV parsers set up per COPY: a decoder per column, the NULL string's bytes, scratch for unescaped fields. */
const columnsOf = (types: ReadonlyArray<number | undefined> | undefined, columns: number, dialect: Dialect): {
  readonly decoders: ReadonlyArray<FieldDecoder>
  readonly nullBytes: Uint8Array
  readonly scratch: Scratch
} => ({
  decoders: Array.from({ length: columns }, (_, i) => textField(types?.[i])),
  nullBytes: new TextEncoder().encode(dialect.nullText),
  scratch: new Scratch()
})

/** Whether `bytes[start, end)` equals `pattern`. */
const equalsBytes = (bytes: Uint8Array, start: number, end: number, pattern: Uint8Array): boolean => {
  if (end - start !== pattern.length) return false
  for (let i = 0; i < pattern.length; i++) if (bytes[start + i] !== pattern[i]) return false
  return true
}

/**
 * Text format rows: fields split on the delimiter, rows on `\n`; the NULL
 * string (`\N`) is compared before unescaping.
 */
export const textParser: TextLikeParser = (types, columns, dialect, skipHeader) => {
  const { decoders, nullBytes, scratch } = columnsOf(types, columns, dialect)
  const delimiter = dialect.delimiter
  let header = skipHeader
  const parser = {
    ended: false,
    parse(bytes: Uint8Array, start: number, end: number, out: Array<ReadonlyArray<unknown>>): number {
      let rowStart = start
      while (rowStart < end) {
        const row: Array<unknown> = new Array(columns)
        let column = 0
        let fieldStart = rowStart
        let escaped = false
        let i = rowStart
        let complete = false
        for (; i < end; i++) {
          const byte = bytes[i]
          if (byte === delimiter || byte === 10) {
            if (!header) {
              if (column >= columns) throw wrongWidth(columns, column + 1)
              row[column] = field(bytes, fieldStart, i, escaped, column)
            }
            column++
            if (byte === 10) {
              complete = true
              break
            }
            fieldStart = i + 1
            escaped = false
          } else if (byte === 92) {
            escaped = true
            i++
          }
        }
        if (!complete) return rowStart
        rowStart = i + 1
        if (header) {
          header = false
          continue
        }
        if (column !== columns) throw wrongWidth(columns, column)
        out.push(row)
      }
      return rowStart
    }
  }
  const decode = columnDecoder(types, decoders)
  const defaultNull = dialect.nullText === "\\N"
  const field = (bytes: Uint8Array, start: number, end: number, escaped: boolean, column: number): unknown => {
    if (
      defaultNull
        ? escaped && end - start === 2 && bytes[start] === 92 && bytes[start + 1] === 78
        : equalsBytes(bytes, start, end, nullBytes)
    ) return null
    try {
      if (!escaped) return decode(bytes, start, end, column)
      unescapeText(bytes, start, end, scratch)
      return decode(scratch.bytes, 0, scratch.length, column)
    } catch (error) {
      throw decodeError(error, column, types?.[column])
    }
  }
  return parser
}

/**
 * CSV rows: a field is quoted when it starts with the quote character (the
 * escape character before a quote or itself stands for it); an unquoted
 * field equal to the NULL string is NULL; newlines inside quotes belong to
 * the field.
 */
export const csvParser: TextLikeParser = (types, columns, dialect, skipHeader) => {
  const { decoders, nullBytes, scratch } = columnsOf(types, columns, dialect)
  const { delimiter, escape, quote } = dialect
  let header = skipHeader
  const decode = (bytes: Uint8Array, start: number, end: number, column: number): unknown => {
    try {
      return decoders[column](bytes, start, end)
    } catch (error) {
      throw decodeError(error, column, types?.[column])
    }
  }
  return {
    ended: false,
    parse(bytes, start, end, out) {
      let rowStart = start
      rows: while (rowStart < end) {
        const row: Array<unknown> = new Array(columns)
        let column = 0
        let i = rowStart
        for (;;) {
          // one field starting at i
          if (i >= end) return rowStart
          let value: unknown
          let fieldEnd: number
          if (bytes[i] === quote) {
            scratch.reset(end - i)
            const buf = scratch.bytes
            let n = 0
            let j = i + 1
            let closed = false
            while (j < end) {
              const byte = bytes[j]
              if (byte === escape && j + 1 < end && (bytes[j + 1] === quote || bytes[j + 1] === escape) &&
                !(escape === quote && bytes[j + 1] !== quote)) {
                buf[n++] = bytes[j + 1]
                j += 2
              } else if (byte === quote) {
                closed = true
                j++
                break
              } else {
                buf[n++] = byte
                j++
              }
            }
            if (!closed) return rowStart
            // characters after the closing quote, up to the delimiter, belong to the field
            while (j < end && bytes[j] !== delimiter && bytes[j] !== 10 && bytes[j] !== 13) buf[n++] = bytes[j++]
            fieldEnd = j
            scratch.length = n
            value = header ? undefined : decode(buf, 0, n, Math.min(column, columns - 1))
          } else {
            let j = i
            while (j < end && bytes[j] !== delimiter && bytes[j] !== 10 && bytes[j] !== 13) j++
            fieldEnd = j
            value = header
              ? undefined
              : equalsBytes(bytes, i, j, nullBytes)
              ? null
              : decode(bytes, i, j, Math.min(column, columns - 1))
          }
          if (fieldEnd >= end) return rowStart
          if (!header) {
            if (column >= columns) throw wrongWidth(columns, column + 1)
            row[column] = value
          }
          column++
          const stop = bytes[fieldEnd]
          if (stop === delimiter) {
            i = fieldEnd + 1
            continue
          }
          // end of row: \n or \r\n
          let next = fieldEnd + 1
          if (stop === 13) {
            if (next >= end) return rowStart
            if (bytes[next] === 10) next++
          }
          rowStart = next
          if (header) {
            header = false
            continue rows
          }
          if (column !== columns) throw wrongWidth(columns, column)
          out.push(row)
          continue rows
        }
      }
      return rowStart
    }
  }
}
