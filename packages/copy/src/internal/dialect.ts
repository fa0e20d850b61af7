/**
 * The text or CSV dialect of a COPY: delimiter, quote, escape and NULL
 * string as bytes, and whether plain values (numbers, booleans, dates, hex
 * bytes) can be written without quoting or escaping.
 */

/** The text or CSV dialect of a COPY. */
export interface Dialect {
  readonly csv: boolean
  readonly delimiter: number
  readonly quote: number
  readonly escape: number
  /** How NULL is written. */
  readonly nullText: string
  /**
   * Whether numbers, booleans, dates and hex bytes can be written without
   * quoting or escaping (the delimiter, quote and NULL string cannot occur
   * in them).
   */
  readonly plain: boolean
}

const plainDelimiters = new Set([9, 44, 59, 124])

export const makeDialect = (options: {
  readonly csv: boolean
  readonly delimiter?: string | undefined
  readonly quote?: string | undefined
  readonly escape?: string | undefined
  readonly null?: string | undefined
}): Dialect => {
  const delimiter = (options.delimiter ?? (options.csv ? "," : "\t")).charCodeAt(0)
  const quote = (options.quote ?? "\"").charCodeAt(0)
  const escape = (options.escape ?? options.quote ?? "\"").charCodeAt(0)
  const nullText = options.null ?? (options.csv ? "" : "\\N")
  const plain = plainDelimiters.has(delimiter) && (nullText === "" || nullText === "\\N") &&
    (!options.csv || ((quote === 34 || quote === 39) && (escape === 34 || escape === 39 || escape === 92)))
  return { csv: options.csv, delimiter, quote, escape, nullText, plain }
}
