/**
 * Binary rows of COPY TO: the signature and header once, then per row a
 * field count and length-prefixed fields, read with `@effect/sql-pg`'s
 * binary codecs (`PgTypes.makeFieldReader`) plus multi-dimensional array
 * framing.
 */
import * as PgTypes from "@effect/sql-pg/PgTypes"
import { PgError } from "@pgfx/core"
import * as Result from "effect/Result"
import { decodeError, type FieldDecoder, FieldError, type RowParser, wrongWidth } from "./decode.ts"
import { elementOf } from "./types.ts"

const readInt32 = (bytes: Uint8Array, at: number): number =>
  (bytes[at] << 24) | (bytes[at + 1] << 16) | (bytes[at + 2] << 8) | bytes[at + 3]

const SIGNATURE = [0x50, 0x47, 0x43, 0x4f, 0x50, 0x59, 0x0a, 0xff, 0x0d, 0x0a, 0x00]

const readerFor = (oid: number): FieldDecoder => {
  const made = PgTypes.makeFieldReader([{ dataTypeOid: oid, format: 1 }])
  if (Result.isFailure(made)) throw made.failure
  const read = made.success
  return (bytes, start, end) => read(bytes, start, end - start, 0)
}

/** Arrays of any number of dimensions (PgTypes' reader takes one), elements through PgTypes. */
const arrayReader = (element: number): FieldDecoder => {
  const read = readerFor(element)
  return (bytes, start, end) => {
    if (end - start < 12) throw new FieldError("truncated array")
    const dims = readInt32(bytes, start)
    const elementOid = readInt32(bytes, start + 8) >>> 0
    if (elementOid !== element) throw new FieldError(`array element type ${elementOid} is not ${element}`)
    if (dims === 0) return []
    if (dims < 0 || dims > 6) throw new FieldError(`invalid array dimensions ${dims}`)
    const sizes: Array<number> = []
    for (let d = 0; d < dims; d++) sizes.push(readInt32(bytes, start + 12 + d * 8))
    let at = start + 12 + dims * 8
    const level = (depth: number): Array<unknown> => {
      const size = sizes[depth]
      const values: Array<unknown> = new Array(size)
      for (let i = 0; i < size; i++) {
        if (depth < dims - 1) {
          values[i] = level(depth + 1)
          continue
        }
        if (at + 4 > end) throw new FieldError("truncated array element")
        const length = readInt32(bytes, at)
        at += 4
        if (length === -1) {
          values[i] = null
        } else {
          if (length < 0 || at + length > end) throw new FieldError("truncated array element")
          values[i] = read(bytes, at, at + length)
          at += length
        }
      }
      return values
    }
    const values = level(0)
    if (at !== end) throw new FieldError("array value has trailing bytes")
    return values
  }
}

const binaryField = (oid: number | undefined): FieldDecoder => {
  if (oid === undefined) return (bytes, start, end) => bytes.slice(start, end)
  const element = elementOf(oid)
  return element === undefined ? readerFor(oid) : arrayReader(element)
}

/**
 * Binary rows: the signature and header once, then per row an int16 field
 * count and per field an int32 length (-1 for NULL) and the bytes; -1 as
 * field count ends the data.
 */
export const binaryParser = (types: ReadonlyArray<number | undefined> | undefined, columns: number): RowParser => {
  const decoders = Array.from({ length: columns }, (_, i) => binaryField(types?.[i]))
  let headerRead = false
  const parser = {
    ended: false,
    parse(bytes: Uint8Array, start: number, end: number, out: Array<ReadonlyArray<unknown>>): number {
      let at = start
      if (!headerRead) {
        if (end - at < 19) {
          for (let i = 0; i < Math.min(end - at, SIGNATURE.length); i++) {
            if (bytes[at + i] !== SIGNATURE[i]) throw badSignature()
          }
          return at
        }
        for (let i = 0; i < SIGNATURE.length; i++) if (bytes[at + i] !== SIGNATURE[i]) throw badSignature()
        const extension = readInt32(bytes, at + 15)
        if (end - at < 19 + extension) return at
        at += 19 + extension
        headerRead = true
      }
      while (at + 2 <= end) {
        const count = ((bytes[at] << 8) | bytes[at + 1]) << 16 >> 16
        if (count === -1) {
          parser.ended = true
          return at + 2
        }
        if (count !== columns) throw wrongWidth(columns, count)
        const row: Array<unknown> = new Array(columns)
        let p = at + 2
        for (let column = 0; column < columns; column++) {
          if (p + 4 > end) return at
          const length = readInt32(bytes, p)
          p += 4
          if (length === -1) {
            row[column] = null
            continue
          }
          if (p + length > end) return at
          try {
            row[column] = decoders[column](bytes, p, p + length)
          } catch (error) {
            throw decodeError(error, column, types?.[column])
          }
          p += length
        }
        out.push(row)
        at = p
      }
      return at
    }
  }
  return parser
}

const badSignature = (): PgError.DecodeError =>
  new PgError.DecodeError({
    message: "binary copy doesn't start with the expected signature",
    column: 0,
    typeOid: 0
  })
