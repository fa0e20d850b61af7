/**
 * The format layer of COPY FROM in text and CSV: a value's text → the
 * field's bytes in the chunk. Text format escapes backslash, the delimiter
 * and the control characters 8–13 as `\b \t \n \v \f \r \\` (psycopg's
 * rules); CSV quotes a field when it contains the delimiter, the quote, a
 * newline, or would read as NULL.
 */
import { type Chunk, isWellFormed, loneSurrogate, nulByte } from "./chunk.ts"
import type { Dialect } from "./dialect.ts"

/** The letter after the backslash for the escaped control characters, by code. */
const escapeLetter = new Uint8Array(128)
escapeLetter[8] = 98 // b
escapeLetter[9] = 116 // t
escapeLetter[10] = 110 // n
escapeLetter[11] = 118 // v
escapeLetter[12] = 102 // f
escapeLetter[13] = 114 // r
escapeLetter[92] = 92 // backslash

/** ASCII characters written as they are in text format with a tab delimiter (1) or not (0). */
const plainAscii = new Uint8Array(128)
for (let code = 0x20; code < 0x7f; code++) plainAscii[code] = code === 92 ? 0 : 1

/** A string in text format: escapes backslash, the delimiter and the control characters 8–13. */
export const writeTextString = (chunk: Chunk, text: string, delimiter: number): void => {
  const n = text.length
  chunk.ensure(n * 3)
  const buf = chunk.buf
  let pos = chunk.pos
  const tab = delimiter === 9
  for (let i = 0; i < n; i++) {
    const code = text.charCodeAt(i)
    if (code < 0x80 && plainAscii[code] === 1 && (tab || code !== delimiter)) {
      buf[pos++] = code
      continue
    }
    if (code >= 0x7f) {
      if (code === 0x7f) {
        buf[pos++] = code
        continue
      }
      chunk.pos = pos
      return writeTextTail(chunk, text, i, delimiter)
    }
    if (code === 0) nulByte()
    const letter = escapeLetter[code]
    if (letter !== 0) {
      buf[pos++] = 92
      buf[pos++] = letter
    } else if (code === delimiter) {
      buf[pos++] = 92
      buf[pos++] = code
    } else {
      buf[pos++] = code
    }
  }
  chunk.pos = pos
}

/** The rest of a string from its first non-ASCII character: UTF-8 in one call, then escapes in place. */
const writeTextTail = (chunk: Chunk, text: string, from: number, delimiter: number): void => {
  if (!isWellFormed(text)) loneSurrogate()
  const buf = chunk.buf
  const start = chunk.pos
  const written = buf.write(from === 0 ? text : text.slice(from), start, "utf8")
  const end = start + written
  let specials = 0
  for (let p = start; p < end; p++) {
    const byte = buf[p]
    if (byte < 0x20 || byte === 92 || byte === delimiter) {
      if (byte === 0) nulByte()
      if (escapeLetter[byte] !== 0 || byte === delimiter) specials++
    }
  }
  if (specials === 0) {
    chunk.pos = end
    return
  }
  // Widen from the end so nothing is overwritten before it is read.
  let dst = end + specials - 1
  for (let src = end - 1; src >= start; src--) {
    const byte = buf[src]
    const letter = byte < 128 ? escapeLetter[byte] : 0
    if (letter !== 0) {
      buf[dst--] = letter
      buf[dst--] = 92
    } else if (byte === delimiter) {
      buf[dst--] = byte
      buf[dst--] = 92
    } else {
      buf[dst--] = byte
    }
  }
  chunk.pos = end + specials
}

/** A string in CSV: as it is, or quoted (quote and escape characters doubled) when it must be. */
export const writeCsvString = (chunk: Chunk, text: string, dialect: Dialect): void => {
  const n = text.length
  if (n === 0) {
    if (dialect.nullText === "") {
      chunk.byte(dialect.quote)
      chunk.byte(dialect.quote)
    }
    return
  }
  chunk.ensure(n * 3 + 2)
  const buf = chunk.buf
  const start = chunk.pos
  let pos = start
  const { delimiter, quote } = dialect
  let i = 0
  for (; i < n; i++) {
    const code = text.charCodeAt(i)
    if (code >= 0x80 || code === delimiter || code === quote || code === 10 || code === 13 || code === 0) break
    buf[pos++] = code
  }
  if (i === n) {
    if (text === dialect.nullText || (n === 2 && text === "\\.")) {
      chunk.pos = start
      return writeCsvQuoted(chunk, text, dialect)
    }
    chunk.pos = pos
    return
  }
  chunk.pos = start
  const code = text.charCodeAt(i)
  if (code === 0 || text.indexOf("\u0000", i) !== -1) nulByte()
  if (code >= 0x80) {
    if (!isWellFormed(text)) loneSurrogate()
    const needs = text.indexOf(String.fromCharCode(delimiter), i) !== -1 ||
      text.indexOf(String.fromCharCode(quote), i) !== -1 || text.indexOf("\n", i) !== -1 ||
      text.indexOf("\r", i) !== -1 || text === dialect.nullText
    if (!needs) {
      chunk.pos += buf.write(text, start, "utf8")
      return
    }
  }
  writeCsvQuoted(chunk, text, dialect)
}

const writeCsvQuoted = (chunk: Chunk, text: string, dialect: Dialect): void => {
  const quote = String.fromCharCode(dialect.quote)
  const escape = String.fromCharCode(dialect.escape)
  let body = text
  if (dialect.escape !== dialect.quote && text.indexOf(escape) !== -1) body = body.split(escape).join(escape + escape)
  if (text.indexOf(quote) !== -1) body = body.split(quote).join(escape + quote)
  chunk.ensure(body.length * 3 + 2)
  chunk.byte(dialect.quote)
  chunk.pos += chunk.buf.write(body, chunk.pos, "utf8")
  chunk.byte(dialect.quote)
}

/** A field whose text is `text`, quoted or escaped as the format needs. */
export const writeField = (chunk: Chunk, text: string, dialect: Dialect): void => {
  if (dialect.csv) writeCsvString(chunk, text, dialect)
  else writeTextString(chunk, text, dialect.delimiter)
}

/** ASCII text that needs no quoting in a plain dialect. */
export const writePlain = (chunk: Chunk, text: string, dialect: Dialect): void => {
  if (dialect.plain) chunk.ascii(text)
  else writeField(chunk, text, dialect)
}

export const writeNull = (chunk: Chunk, dialect: Dialect): void => {
  const text = dialect.nullText
  if (text === "\\N") {
    chunk.ensure(2)
    chunk.buf[chunk.pos] = 92
    chunk.buf[chunk.pos + 1] = 78
    chunk.pos += 2
  } else if (text.length > 0) {
    chunk.ensure(text.length * 3)
    chunk.pos += chunk.buf.write(text, chunk.pos, "utf8")
  }
}
