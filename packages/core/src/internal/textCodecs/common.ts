/** The shared vocabulary of the text decoders. */
import * as PgTypes from "@effect/sql-pg/PgTypes"

/**
 * Turns the text of one non-NULL field into its JavaScript value.
 *
 * @since 0.1.0
 */
export type TextValueDecoder = (text: string) => unknown

/** A malformed value of a known type: thrown as `PgTypes.CodecError`, as the binary field reader does. */
export const fail = (message: string): never => {
  throw new PgTypes.CodecError({ message })
}

export const identity = (text: string): string => text

export const OID = PgTypes.OID
