/**
 * Rows → COPY data in a `Chunk`: the row layout of each format around the
 * column encoders (text/CSV: delimiter, NULL, newline, optional header
 * line; binary: signature, field count, lengths, trailer).
 */
import { BINARY_HEADER, BINARY_TRAILER, type BinaryEncoder, binaryEncoder } from "./binaryEncode.ts"
import { type Chunk, EncodeFailure } from "./chunk.ts"
import { messageOf } from "./errors.ts"
import type { Plan } from "./statement.ts"
import { type TextEncoder, textEncoder } from "./textEncode.ts"
import { writeField, writeNull } from "./textQuoting.ts"

export class RowEncoder {
  private readonly text: ReadonlyArray<TextEncoder>
  private readonly binary: ReadonlyArray<BinaryEncoder>
  private binaryStarted = false
  private headerPending: ReadonlyArray<string> | undefined

  constructor(
    readonly plan: Plan,
    readonly columns: number,
    types: ReadonlyArray<number> | undefined
  ) {
    const isBinary = plan.format === "binary"
    this.binary = isBinary ? Array.from({ length: columns }, (_, i) => binaryEncoder(types?.[i])) : []
    this.text = isBinary ? [] : Array.from({ length: columns }, (_, i) => textEncoder(types?.[i], plan.dialect))
    if (!isBinary && plan.header !== false) {
      this.headerPending = plan.header === true
        ? Array.from({ length: columns }, (_, i) => `column_${i + 1}`)
        : plan.header
    }
  }

  /** Pre-formatted data was written: it carries its own header line. */
  skipHeader(): void {
    this.headerPending = undefined
  }

  /** Whether binary rows were written (so the trailer is due). */
  get started(): boolean {
    return this.binaryStarted
  }

  /** Writes one row and marks its end; throws `EncodeFailure` (with the column) leaving a partial row to drop. */
  row(chunk: Chunk, row: ReadonlyArray<unknown>): void {
    if (!Array.isArray(row)) throw new EncodeFailure("a row must be an array of values")
    const columns = this.columns
    if (row.length !== columns) {
      throw new EncodeFailure(`the row has ${row.length} values but the COPY has ${columns} columns`)
    }
    if (this.plan.format === "binary") {
      if (!this.binaryStarted) {
        chunk.raw(BINARY_HEADER)
        chunk.endRow()
        this.binaryStarted = true
      }
      const encoders = this.binary
      chunk.int16(columns)
      for (let i = 0; i < columns; i++) {
        const value = row[i]
        if (value === null || value === undefined) {
          chunk.int32(-1)
          continue
        }
        try {
          encoders[i](value, chunk)
        } catch (error) {
          throw new EncodeFailure(messageOf(error), i)
        }
      }
      chunk.endRow()
      return
    }
    const dialect = this.plan.dialect
    if (this.headerPending !== undefined) {
      this.headerPending.forEach((name, i) => {
        if (i > 0) chunk.byte(dialect.delimiter)
        writeField(chunk, name, dialect)
      })
      chunk.byte(10)
      chunk.endRow()
      this.headerPending = undefined
    }
    const encoders = this.text
    const delimiter = dialect.delimiter
    for (let i = 0; i < columns; i++) {
      if (i > 0) chunk.byte(delimiter)
      const value = row[i]
      if (value === null || value === undefined) {
        writeNull(chunk, dialect)
        continue
      }
      try {
        encoders[i](value, chunk)
      } catch (error) {
        throw new EncodeFailure(messageOf(error), i)
      }
    }
    chunk.byte(10)
    chunk.endRow()
  }

  /**
   * The end of binary data: the trailer after rows, or header and trailer
   * when nothing was written (`raw`: the caller wrote pre-formatted data,
   * which carries its own).
   */
  end(chunk: Chunk, raw: boolean): void {
    if (this.plan.format !== "binary" || (raw && !this.binaryStarted)) return
    if (!this.binaryStarted) chunk.raw(BINARY_HEADER)
    chunk.raw(BINARY_TRAILER)
    chunk.endRow()
  }
}
