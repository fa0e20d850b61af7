/**
 * Result columns: the public `Field` and its conversion from the protocol's
 * RowDescription entries. Its own module because `RowFactory` builds rows
 * from fields and every result type refers to them.
 */
import type * as PgProtocol from "@effect/sql-pg/PgProtocol"

/**
 * A result column.
 *
 * @since 0.1.0
 */
export interface Field {
  readonly name: string
  readonly typeOid: number
  readonly typeModifier: number
  readonly tableOid: number
  readonly columnNumber: number
  /** Size of the type in bytes, negative for variable-length types. */
  readonly typeSize: number
}

/** A RowDescription entry as a public `Field`. */
export const toField = (field: PgProtocol.FieldDescription): Field => ({
  name: field.name,
  typeOid: field.dataTypeOid,
  typeModifier: field.typeModifier,
  tableOid: field.tableOid,
  columnNumber: field.columnAttributeNumber,
  typeSize: field.dataTypeSize
})

/** Public `Field`s of a description; a prepared statement's cached description converts once. */
export const fieldsOf = (description: ReadonlyArray<PgProtocol.FieldDescription>): ReadonlyArray<Field> => {
  let fields = fieldCache.get(description)
  if (fields === undefined) {
    fields = description.map(toField)
    fieldCache.set(description, fields)
  }
  return fields
}

const fieldCache = new WeakMap<ReadonlyArray<PgProtocol.FieldDescription>, ReadonlyArray<Field>>()
