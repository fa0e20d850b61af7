/**
 * SQL text helpers: identifiers and fingerprints.
 *
 * @internal
 */
import { createHash } from "node:crypto"

/** A double-quoted identifier. */
export const quoteIdent = (name: string): string => `"${name.replace(/"/g, '""')}"`

/**
 * A table name as SQL: `schema.table` and `table` are quoted part by part; a name that already
 * contains a double quote is taken as written.
 */
export const quoteTable = (table: string): string =>
  table.includes('"') ? table : table.split(".").map(quoteIdent).join(".")

/** A column list `("a", "b")`. */
export const columnList = (columns: ReadonlyArray<string>): string => `(${columns.map(quoteIdent).join(", ")})`

/** JSON with bigint, Date and bytes spelled out, so equal data gives equal text. */
export const stableJson = (value: unknown): string =>
  JSON.stringify(value, (_key, inner: unknown) => {
    if (typeof inner === "bigint") return `${inner}n`
    if (inner instanceof Uint8Array) return `bytes:${Buffer.from(inner).toString("hex")}`
    if (inner === undefined) return null
    return inner
  }) ?? "null"

/** A short hex digest of the parts. */
export const digest = (...parts: ReadonlyArray<string>): string => {
  const hash = createHash("sha256")
  for (const part of parts) hash.update(part).update("\u0000")
  return hash.digest("hex")
}
