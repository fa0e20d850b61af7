/**
 * `PgSql`'s statement compiler: what effect's `sql` template turns into for
 * PostgreSQL (`$n` placeholders, quoted identifiers, `sql.json` as `jsonb`).
 */
import * as Statement from "effect/sql/Statement"
import * as PgValue from "../../PgValue.ts"

interface PgJson extends Statement.Custom<"PgJson", unknown> {}

const PgJson = Statement.custom<PgJson>("PgJson")

/** `sql.json(value)`: the value as a `jsonb` parameter (its keys renamed with the query names). */
export const json = (value: unknown): Statement.Fragment => Statement.fragment([PgJson(value, undefined, undefined)])

const escape = Statement.defaultEscape("\"")

/** The statement compiler for PostgreSQL (documented at `PgSql.makeCompiler`). */
export const makeCompiler = (
  transform?: ((name: string) => string) | undefined,
  transformJson = true
): Statement.Compiler => {
  const transformValue = transformJson && transform !== undefined
    ? Statement.defaultTransforms(transform).value
    : undefined
  return Statement.makeCompiler<PgJson>({
    dialect: "pg",
    placeholder: (index) => `$${index}`,
    onIdentifier: transform === undefined
      ? escape
      : (value, withoutTransform) => escape(withoutTransform ? value : transform(value)),
    onRecordUpdate: (placeholders, alias, columns, values, returning) => [
      `(values ${placeholders}) AS ${alias}${columns}${returning ? ` RETURNING ${returning[0]}` : ""}`,
      returning ? values.flat().concat(returning[1]) : values.flat()
    ],
    onCustom: (custom, placeholder, withoutTransform) => {
      const value = withoutTransform || transformValue === undefined ? custom.paramA : transformValue(custom.paramA)
      return [placeholder(undefined), [PgValue.jsonb(value)]]
    }
  })
}
