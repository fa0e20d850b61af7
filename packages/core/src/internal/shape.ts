/**
 * A statement's outcome as its caller's `QueryResult`: command tags parsed,
 * fields converted once per description, rows shaped by the row factory.
 */
import * as Exit from "effect/Exit"
import type { DecodeError } from "../PgError.ts"
import * as RowFactory from "../RowFactory.ts"
import { fieldsOf } from "./field.ts"
import { parseCommandTag, type QueryOutcome } from "./query.ts"
import type { QueryResult } from "./results.ts"

/** The `QueryResult` of a successful outcome; a row factory that cannot decode a row fails with its `DecodeError`. */
export const shapeResult = <A>(outcome: QueryOutcome, factory: RowFactory.RowFactory<A>): Exit.Exit<QueryResult<A>, DecodeError> => {
  try {
    const sets = outcome.results
    if (sets.length === 1) {
      // the common case, without the array of one
      const result = shapeSet(sets[0], factory)
      return Exit.succeed({ ...result, results: [result] })
    }
    const results = sets.map((set) => shapeSet(set, factory))
    const first = results[0] ?? { command: "", commandTag: "", rowCount: undefined, rows: [], fields: [], results: [] }
    return Exit.succeed({ ...first, results })
  } catch (cause) {
    // a row factory's schema decoding throws its DecodeError
    return Exit.fail(cause as DecodeError)
  }
}

const shapeSet = <A>(set: QueryOutcome["results"][number], factory: RowFactory.RowFactory<A>): QueryResult<A> => {
  const { command, rowCount } = parseCommandTag(set.commandTag)
  const fields = fieldsOf(set.fields)
  // tuple rows are the decoded arrays themselves: nothing to build
  const rows = factory === RowFactory.tuple ? set.rows as Array<A> : set.rows.map(factory.make(fields))
  return { command, commandTag: set.commandTag, rowCount, rows, fields, results: [] }
}
