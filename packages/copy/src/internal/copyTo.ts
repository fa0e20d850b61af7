/**
 * COPY TO STDOUT: the conversation started on a held connection, its
 * buffered items pulled as a Stream, rows parsed per format, and the
 * finaliser that cancels and drains a COPY whose stream ended early.
 */
import { PgError, Session } from "@pgfx/core"
import type * as Arr from "effect/Array"
import * as Cause from "effect/Cause"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Pull from "effect/Pull"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { type CopyConnection, drain, drainTimeoutOf, logNotices, resolveTypes } from "./connection.ts"
import { binaryParser } from "./binaryDecode.ts"
import type { RowParser } from "./decode.ts"
import { csvParser, textParser } from "./textParse.ts"
import { CopyOutHandler, type Delivery } from "./protocol.ts"
import { type FormatOptions, type Plan, planOrFail } from "./statement.ts"

/** What a COPY TO reads of the options (`ToOptions` and `FileOptions` have it). */
export interface ToSettings extends FormatOptions {
  readonly types?: ReadonlyArray<string | number> | undefined
  readonly drainTimeout?: Duration.Input | undefined
}

/** Starts a COPY TO in the current scope: held session, handler, and the finaliser that cancels it. */
export const startTo = (
  conn: CopyConnection,
  sql: string,
  delivery: Delivery,
  drainTimeout: Duration.Duration
): Effect.Effect<{ readonly handler: CopyOutHandler; readonly release: Effect.Effect<void> }, PgError.PgError, Scope.Scope> =>
  Effect.gen(function*() {
    const hold = yield* conn.session.hold
    const handler = new CopyOutHandler(sql, delivery)
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        if (!handler.done) {
          handler.discard()
          yield* drain(conn, handler, drainTimeout, !handler.dataEnded)
        }
        yield* logNotices(handler.notices)
      }).pipe(Effect.ensuring(hold.release))
    )
    yield* hold.run(conn.session.send([Session.encodeQuery(sql)], handler))
    return { handler, release: hold.release }
  })

/** The pull of a COPY TO: what is buffered, or wait; the outcome once it is over. */
export const pullItems = <A>(handler: CopyOutHandler, release: Effect.Effect<void>): Pull.Pull<Arr.NonEmptyReadonlyArray<A>, PgError.PgError> => {
  const pull: Pull.Pull<Arr.NonEmptyReadonlyArray<A>, PgError.PgError> = Effect.suspend(() => {
    if (handler.failure !== undefined) return Effect.fail(handler.failure)
    if (handler.items.length > 0) return Effect.succeed(handler.take() as unknown as Arr.NonEmptyReadonlyArray<A>)
    if (handler.done) {
      return handler.await.pipe(
        Effect.andThen(release),
        Effect.andThen(Effect.suspend((): Pull.Pull<never, PgError.PgError> => {
          const error = handler.outcomeError()
          return error === undefined ? Cause.done() : Effect.fail(error)
        }))
      )
    }
    return Effect.andThen(
      handler.until(() => handler.items.length > 0 || handler.failure !== undefined || handler.done),
      pull
    )
  })
  return pull
}

/** The parser for the format the server announced, checked against the plan and the types. */
const rowParser = (
  planned: Plan,
  types: ReadonlyArray<number> | undefined
) =>
(columns: number, format: number): RowParser | PgError.PgError => {
  if ((format === 1) !== (planned.format === "binary")) {
    return new PgError.InterfaceError({
      message: `the server sends ${format === 1 ? "binary" : "text"} COPY data, but the format is ${planned.format}`
    })
  }
  if (types !== undefined && types.length !== columns) {
    return new PgError.InterfaceError({
      message: `${types.length} types were given for a COPY of ${columns} columns`
    })
  }
  const header = planned.header !== false
  switch (planned.format) {
    case "binary":
      return binaryParser(types, columns)
    case "csv":
      return csvParser(types, columns, planned.dialect, header)
    case "text":
      return textParser(types, columns, planned.dialect, header)
  }
}

/** The rows of `COPY … TO STDOUT`, typed with the resolved `types`. */
export const toRows = <A>(conn: CopyConnection, sql: string, options: ToSettings | undefined): Stream.Stream<A, PgError.PgError> =>
  Stream.unwrap(Effect.gen(function*() {
    const planned = yield* planOrFail(sql, options)
    const types = yield* resolveTypes(conn, options?.types)
    const { handler, release } = yield* startTo(
      conn,
      planned.sql,
      { _tag: "Rows", parser: rowParser(planned, types) },
      drainTimeoutOf(options)
    )
    return Stream.fromPull(Effect.succeed(pullItems<A>(handler, release)))
  })).pipe(Stream.scoped, Stream.withSpan("Copy.to"))

/** The raw CopyData blocks of `COPY … TO STDOUT`. */
export const toBlocks = (conn: CopyConnection, sql: string, options: ToSettings | undefined): Stream.Stream<Uint8Array, PgError.PgError> =>
  Stream.unwrap(Effect.gen(function*() {
    const planned = yield* planOrFail(sql, options)
    const { handler, release } = yield* startTo(conn, planned.sql, { _tag: "Blocks" }, drainTimeoutOf(options))
    return Stream.fromPull(Effect.succeed(pullItems<Uint8Array>(handler, release)))
  })).pipe(Stream.scoped, Stream.withSpan("Copy.toBytes"))
