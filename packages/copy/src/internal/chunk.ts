/**
 * The output buffer of COPY FROM: rows are encoded straight into a growing
 * byte chunk that starts with room for the CopyData header, and complete
 * chunks (~`chunkSize` bytes, cut at row boundaries) are queued as ready
 * frames for the writer to send. A row that fails half way is dropped with
 * `dropRow`, so the COPY can go on.
 *
 * It is also a `PgProtocol.ValueSink`, so the binary codecs of
 * `@effect/sql-pg`'s `PgTypes` write COPY BINARY fields in place.
 */
import type * as PgProtocol from "@effect/sql-pg/PgProtocol"
import { PgValue, Session } from "@pgfx/core"

/** Bytes reserved at the front of each chunk for the CopyData header. */
const HEADER = 5

/** Bytes gathered per CopyData message unless the caller says otherwise. */
export const DEFAULT_CHUNK_SIZE = 64 * 1024

/** A value that cannot be written: the row is dropped and the caller gets a typed error. */
export class EncodeFailure extends Error {
  constructor(message: string, readonly column?: number) {
    super(message)
  }
}

/** Whether every UTF-16 surrogate of the string is half of a pair (so it has a UTF-8 encoding). */
export const isWellFormed: (text: string) => boolean = PgValue.isWellFormed

export const loneSurrogate = (): never => {
  throw new EncodeFailure("the string contains a lone UTF-16 surrogate, which has no UTF-8 encoding")
}

export const nulByte = (): never => {
  throw new EncodeFailure("the string contains a NUL byte, which PostgreSQL text cannot hold")
}

export class Chunk implements PgProtocol.ValueSink {
  buf: Buffer
  view: DataView
  /** Next byte to write. */
  pos = HEADER
  /** Where the row being written started (everything before it is complete rows). */
  rowStart = HEADER
  /** Framed CopyData messages ready to send. */
  ready: Array<Uint8Array> = []
  /** Payload bytes framed so far. */
  bytesFramed = 0

  constructor(readonly chunkSize: number) {
    this.buf = Buffer.allocUnsafe(chunkSize + 16 * 1024)
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength)
  }

  /** Makes room for `n` more bytes (growing the chunk, never splitting a row). */
  ensure(n: number): void {
    if (this.pos + n > this.buf.length) this.grow(n)
  }

  private grow(n: number): void {
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n + 1024))
    this.buf.copy(next, 0, 0, this.pos)
    this.buf = next
    this.view = new DataView(next.buffer, next.byteOffset, next.byteLength)
  }

  /** Marks the end of a row; queues the chunk once it is large enough. */
  endRow(): void {
    this.rowStart = this.pos
    if (this.pos >= this.chunkSize) this.frame()
  }

  /** Forgets the bytes of the row being written. */
  dropRow(): void {
    this.pos = this.rowStart
  }

  /** Whether there are complete rows (or raw bytes) not framed yet. */
  get pending(): boolean {
    return this.rowStart > HEADER
  }

  /** Frames the complete rows as one CopyData message and starts a new chunk. */
  frame(): void {
    const end = this.rowStart
    if (end === HEADER) return
    Session.writeCopyDataHeader(this.buf, 0, end - HEADER)
    this.ready.push(this.buf.subarray(0, end))
    this.bytesFramed += end - HEADER
    const partial = this.pos - end
    const next = Buffer.allocUnsafe(Math.max(this.chunkSize + 16 * 1024, HEADER + partial + 1024))
    if (partial > 0) this.buf.copy(next, HEADER, end, this.pos)
    this.buf = next
    this.view = new DataView(next.buffer, next.byteOffset, next.byteLength)
    this.rowStart = HEADER
    this.pos = HEADER + partial
  }

  /** Takes the ready frames. */
  take(): Array<Uint8Array> {
    const ready = this.ready
    this.ready = []
    return ready
  }

  /** Appends raw bytes (no row structure), framing every `chunkSize` bytes. */
  appendRaw(bytes: Uint8Array): void {
    let at = 0
    while (at < bytes.length) {
      const n = Math.min(Math.max(this.chunkSize - this.pos, 1024), bytes.length - at)
      this.ensure(n)
      this.buf.set(bytes.subarray(at, at + n), this.pos)
      this.pos += n
      at += n
      this.endRow()
    }
  }

  /** Appends a string as UTF-8 (raw text-format data). */
  appendRawText(text: string): void {
    if (!isWellFormed(text)) loneSurrogate()
    // Large strings go through in slices so a chunk stays near its size.
    const step = Math.max(1024, this.chunkSize >> 1)
    let at = 0
    while (at < text.length) {
      let end = Math.min(at + step, text.length)
      // Never cut a surrogate pair.
      if (end < text.length) {
        const code = text.charCodeAt(end - 1)
        if (code >= 0xd800 && code <= 0xdbff) end++
      }
      const piece = at === 0 && end === text.length ? text : text.slice(at, end)
      this.ensure(piece.length * 3)
      this.pos += this.buf.write(piece, this.pos, "utf8")
      this.endRow()
      at = end
    }
  }

  // ---------------------------------------------------------------------------
  // plain writes
  // ---------------------------------------------------------------------------

  byte(value: number): void {
    if (this.pos >= this.buf.length) this.grow(1)
    this.buf[this.pos++] = value
  }

  /** ASCII text known to need no escaping or quoting. */
  ascii(text: string): void {
    const n = text.length
    this.ensure(n)
    const buf = this.buf
    let pos = this.pos
    for (let i = 0; i < n; i++) buf[pos++] = text.charCodeAt(i)
    this.pos = pos
  }

  /** A safe integer in decimal. */
  integer(value: number): void {
    this.ensure(21)
    const buf = this.buf
    let pos = this.pos
    if (value < 0) {
      buf[pos++] = 45
      value = -value
    }
    if (value < 10) {
      buf[pos] = 48 + value
      this.pos = pos + 1
      return
    }
    if (value <= 0x7fffffff) {
      // int32 arithmetic: the common case of int2 / int4 columns
      const digits = value < 100 ? 2 : value < 1000 ? 3 : value < 10000 ? 4 : value < 100000 ? 5 : value < 1000000
        ? 6
        : value < 10000000 ? 7 : value < 100000000 ? 8 : value < 1000000000 ? 9 : 10
      let at = pos + digits
      this.pos = at
      let rest = value | 0
      while (rest >= 10) {
        const next = (rest / 10) | 0
        buf[--at] = 48 + rest - next * 10
        rest = next
      }
      buf[--at] = 48 + rest
      return
    }
    let digits = 1
    for (let rest = value; rest >= 10; rest = Math.floor(rest / 10)) digits++
    let at = pos + digits
    this.pos = at
    while (value >= 10) {
      const next = Math.floor(value / 10)
      buf[--at] = 48 + (value - next * 10)
      value = next
    }
    buf[--at] = 48 + value
  }

  // ---------------------------------------------------------------------------
  // PgProtocol.ValueSink (COPY BINARY fields through PgTypes' codecs)
  // ---------------------------------------------------------------------------

  uint8(value: number): void {
    if (this.pos >= this.buf.length) this.grow(1)
    this.buf[this.pos++] = value
  }

  int16(value: number): void {
    this.ensure(2)
    const buf = this.buf
    buf[this.pos] = value >>> 8
    buf[this.pos + 1] = value
    this.pos += 2
  }

  int32(value: number): void {
    this.ensure(4)
    const buf = this.buf
    const pos = this.pos
    buf[pos] = value >>> 24
    buf[pos + 1] = value >>> 16
    buf[pos + 2] = value >>> 8
    buf[pos + 3] = value
    this.pos = pos + 4
  }

  float32(value: number): void {
    this.ensure(4)
    this.view.setFloat32(this.pos, value)
    this.pos += 4
  }

  float64(value: number): void {
    this.ensure(8)
    this.view.setFloat64(this.pos, value)
    this.pos += 8
  }

  bigInt64(value: bigint): void {
    this.ensure(8)
    this.view.setBigInt64(this.pos, value)
    this.pos += 8
  }

  raw(value: Uint8Array): void {
    this.ensure(value.length)
    this.buf.set(value, this.pos)
    this.pos += value.length
  }

  utf8(value: string): void {
    const n = value.length
    this.ensure(n * 3)
    const buf = this.buf
    let pos = this.pos
    if (n <= 48) {
      let i = 0
      for (; i < n; i++) {
        const code = value.charCodeAt(i)
        if (code > 0x7f || code === 0) break
        buf[pos++] = code
      }
      if (i === n) {
        this.pos = pos
        return
      }
      pos = this.pos
    }
    const written = buf.write(value, pos, "utf8")
    if (written !== n) {
      if (!isWellFormed(value)) loneSurrogate()
    }
    if (value.indexOf("\u0000") !== -1) nulByte()
    this.pos = pos + written
  }

  sqlNull(): void {
    // Never reached: NULL fields are written by the row encoder itself.
    this.int32(-1)
  }

  beginLength(): number {
    const token = this.pos
    this.ensure(4)
    this.pos += 4
    return token
  }

  endLength(token: number): void {
    const length = this.pos - token - 4
    const buf = this.buf
    buf[token] = length >>> 24
    buf[token + 1] = length >>> 16
    buf[token + 2] = length >>> 8
    buf[token + 3] = length
  }
}
