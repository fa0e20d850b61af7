/** The text decoder of arrays (`{…}`, quoted elements, NULL, nested dimensions, bounds). */
import { fail, type TextValueDecoder } from "./common.ts"


const isSpace = (code: number): boolean => code === 32 || (code >= 9 && code <= 13)

const badArray = (text: string, at: number): never =>
  fail(`Invalid array text at position ${at}: "${text.length > 80 ? text.slice(0, 80) + "…" : text}"`)

/** Parser state for one array literal. */
interface ArrayCursor {
  readonly text: string
  readonly decode: TextValueDecoder
  readonly delimiter: number
  at: number
}

const skipSpaces = (cursor: ArrayCursor): void => {
  const text = cursor.text
  while (cursor.at < text.length && isSpace(text.charCodeAt(cursor.at))) cursor.at++
}

/** Reads a quoted element; `cursor.at` is just past the opening quote. */
const quotedElement = (cursor: ArrayCursor): string => {
  const text = cursor.text
  let start = cursor.at
  let value = ""
  for (let at = start; at < text.length; at++) {
    const code = text.charCodeAt(at)
    if (code === 34) {
      cursor.at = at + 1
      return value + text.slice(start, at)
    }
    if (code === 92) {
      value += text.slice(start, at)
      at++
      start = at
    }
  }
  return badArray(text, text.length)
}

/** Reads an unquoted element up to a delimiter or `}`; null for `NULL`. */
const unquotedElement = (cursor: ArrayCursor): string | null => {
  const text = cursor.text
  const delimiter = cursor.delimiter
  let start = cursor.at
  let value = ""
  let escaped = false
  // Trailing unescaped white space is not part of the element.
  let keep = 0
  let at = start
  for (; at < text.length; at++) {
    const code = text.charCodeAt(at)
    if (code === delimiter || code === 125) break
    if (code === 92) {
      value += text.slice(start, at)
      at++
      start = at
      escaped = true
      keep = value.length + 1
    } else if (code === 123 || code === 34) {
      return badArray(text, at)
    } else if (!isSpace(code)) {
      keep = value.length + at - start + 1
    }
  }
  if (at >= text.length) return badArray(text, at)
  cursor.at = at
  value = (value + text.slice(start, at)).slice(0, keep)
  if (value.length === 0) return badArray(text, at)
  if (
    !escaped && value.length === 4 && (value.charCodeAt(0) | 32) === 110 && (value.charCodeAt(1) | 32) === 117 &&
    (value.charCodeAt(2) | 32) === 108 && (value.charCodeAt(3) | 32) === 108
  ) {
    return null
  }
  return value
}

/** Reads `{…}` with `cursor.at` on the brace, nested levels as nested arrays. */
const arrayLevel = (cursor: ArrayCursor): Array<unknown> => {
  const text = cursor.text
  if (text.charCodeAt(cursor.at) !== 123) return badArray(text, cursor.at)
  cursor.at++
  const values: Array<unknown> = []
  skipSpaces(cursor)
  if (text.charCodeAt(cursor.at) === 125) {
    cursor.at++
    return values
  }
  for (;;) {
    skipSpaces(cursor)
    const code = text.charCodeAt(cursor.at)
    if (code === 123) {
      values.push(arrayLevel(cursor))
    } else if (code === 34) {
      cursor.at++
      values.push(cursor.decode(quotedElement(cursor)))
    } else {
      const element = unquotedElement(cursor)
      values.push(element === null ? null : cursor.decode(element))
    }
    skipSpaces(cursor)
    const next = text.charCodeAt(cursor.at)
    cursor.at++
    if (next === 125) return values
    if (next !== cursor.delimiter) return badArray(text, cursor.at - 1)
  }
}

/**
 * Decodes PostgreSQL array text (`{1,2,NULL}`, `{"a,b","c\"d"}`, `{}`,
 * `[0:1]={1,2}`, `{{1,2},{3,4}}`), applying `decodeElement` to every
 * non-NULL element. Unquoted `NULL` (any case) is `null`; a quoted `"NULL"`
 * is the string. Dimension decorations are dropped; several dimensions give
 * nested arrays. `delimiter` is `,` for every built-in type but `box` (`;`).
 *
 * @since 0.1.0
 */
export const decodeTextArray = (
  text: string,
  decodeElement: TextValueDecoder,
  delimiter: string = ","
): Array<unknown> => {
  const cursor: ArrayCursor = { text, decode: decodeElement, delimiter: delimiter.charCodeAt(0), at: 0 }
  if (text.charCodeAt(0) === 91) {
    // dimension decoration: [lower:upper][…]={…}
    const equals = text.indexOf("=")
    if (equals === -1) return badArray(text, 0)
    cursor.at = equals + 1
  }
  skipSpaces(cursor)
  const values = arrayLevel(cursor)
  skipSpaces(cursor)
  if (cursor.at !== text.length) return badArray(text, cursor.at)
  return values
}
