/**
 * Frontend messages that `@effect/sql-pg`'s `PgProtocol` does not encode:
 * simple Query and the COPY sub-protocol. Pure: strings in, bytes out.
 */
const utf8 = new TextEncoder()

/** PostgreSQL refuses an ErrorResponse-sized CopyFail reason above this. */
export const maxCopyFailReason = 9_000

const frame = (type: number, bodyLength: number): { bytes: Uint8Array; view: DataView } => {
  const bytes = new Uint8Array(5 + bodyLength)
  const view = new DataView(bytes.buffer)
  bytes[0] = type
  view.setInt32(1, 4 + bodyLength)
  return { bytes, view }
}

const cStringMessage = (type: number, text: string): Uint8Array => {
  const body = utf8.encode(text)
  const { bytes } = frame(type, body.length + 1)
  bytes.set(body, 5)
  return bytes
}

/** `Q`: a simple query, possibly several statements separated by `;`. */
export const encodeQuery = (sql: string): Uint8Array => cStringMessage(0x51, sql)

/** `d`: a chunk of COPY data. */
export const encodeCopyData = (data: Uint8Array): Uint8Array => {
  const { bytes } = frame(0x64, data.length)
  bytes.set(data, 5)
  return bytes
}

/** Writes a CopyData header for `length` bytes of payload into `target` at `offset`. */
export const writeCopyDataHeader = (target: Uint8Array, offset: number, length: number): void => {
  target[offset] = 0x64
  const size = length + 4
  target[offset + 1] = size >>> 24
  target[offset + 2] = size >>> 16
  target[offset + 3] = size >>> 8
  target[offset + 4] = size
}

/** `c`: the client finished sending COPY data. */
export const encodeCopyDone = (): Uint8Array => frame(0x63, 0).bytes

/**
 * `f`: abort COPY FROM STDIN with a reason the server reports back in its
 * ErrorResponse. The reason is cut to stay below the server's limit.
 */
export const encodeCopyFail = (reason: string): Uint8Array => {
  let text = reason.replaceAll("\u0000", "")
  if (utf8.encode(text).length > maxCopyFailReason) {
    text = text.slice(0, maxCopyFailReason / 4) + "…"
  }
  return cStringMessage(0x66, text)
}
