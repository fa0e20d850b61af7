/**
 * `fromFile` / `toFile`: CSV or text files (gzip optional) streamed into
 * COPY FROM or out of COPY TO, as Streams of progress events; `toFile`
 * writes a temporary file renamed once the COPY succeeded.
 */
import { PgError } from "@pgfx/core"
import type * as Arr from "effect/Array"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Pull from "effect/Pull"
import * as Result from "effect/Result"
import * as Stream from "effect/Stream"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { pipeline } from "node:stream"
import * as zlib from "node:zlib"
import { DEFAULT_CHUNK_SIZE } from "./chunk.ts"
import { type CopyConnection, drainTimeoutOf } from "./connection.ts"
import { type FromSettings, startFrom } from "./copyFrom.ts"
import { pullItems, startTo } from "./copyTo.ts"
import { type CopyError, type CopyFileError, fileError } from "./errors.ts"
import { type Progress, progressOf } from "./progress.ts"
import { copyCount } from "./protocol.ts"
import { type Plan, planOrFail } from "./statement.ts"

/** What the file helpers read of the options (`FileOptions`). */
export interface FileSettings extends FromSettings {
  readonly gzip?: boolean | undefined
  readonly progressInterval?: Duration.Input | undefined
}

/** Counts row ends in data: every newline in text format; newlines outside quotes in CSV. */
const rowCounter = (planned: Plan): (bytes: Uint8Array) => number => {
  if (planned.format !== "csv") {
    return (bytes) => {
      let rows = 0
      for (let at = bytes.indexOf(10); at !== -1; at = bytes.indexOf(10, at + 1)) rows++
      return rows
    }
  }
  const { escape, quote } = planned.dialect
  let quoted = false
  let escaped = false
  return (bytes) => {
    let rows = 0
    for (let i = 0; i < bytes.length; i++) {
      const byte = bytes[i]
      if (escaped) {
        escaped = false
      } else if (quoted && escape !== quote && byte === escape) {
        escaped = true
      } else if (byte === quote) {
        quoted = !quoted
      } else if (byte === 10 && !quoted) {
        rows++
      }
    }
    return rows
  }
}

/** Copies a CSV or text file into `COPY … FROM STDIN`, reporting progress. */
export const fromFile = (
  conn: CopyConnection,
  sql: string,
  file: string,
  options: FileSettings | undefined
): Stream.Stream<Progress, CopyError | CopyFileError> =>
  Stream.unwrap(Effect.gen(function*() {
    if (options?.format === "binary") {
      return yield* Effect.fail(new PgError.InterfaceError({ message: "fromFile copies CSV or text files" }))
    }
    const stat = yield* Effect.tryPromise({ try: () => fs.promises.stat(file), catch: fileError(file, "cannot read") })
    const gzip = options?.gzip ?? file.endsWith(".gz")
    const interval = Duration.toMillis(Duration.fromInputUnsafe(options?.progressInterval ?? "100 millis"))
    const input = fs.createReadStream(file, { highWaterMark: 64 * 1024 })
    const source = gzip
      ? pipeline(input, zlib.createGunzip(), () => {})
      : input
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        input.destroy()
        source.destroy()
      })
    )
    const iterator = (source as AsyncIterable<Buffer>)[Symbol.asyncIterator]()
    const writer = yield* startFrom(conn, sql, options, false)
    const countRows = rowCounter(writer.plan)
    const headerLines = writer.plan.header === false ? 0 : 1
    const started = yield* Clock.currentTimeMillis
    let lastEvent = started
    let rows = 0
    let finished = false
    const pull: Pull.Pull<Arr.NonEmptyReadonlyArray<Progress>, CopyError | CopyFileError> = Effect.gen(function*() {
      if (finished) return yield* Cause.done()
      for (;;) {
        const next = yield* Effect.tryPromise({ try: () => iterator.next(), catch: fileError(file, "cannot read") })
        const now = yield* Clock.currentTimeMillis
        if (next.done === true) {
          const loaded = yield* writer.finish
          finished = true
          return [progressOf(loaded, writer.bytesSent, input.bytesRead, stat.size, now - started, true)] as const
        }
        rows += countRows(next.value)
        yield* writer.write(next.value)
        if (now - lastEvent >= interval) {
          lastEvent = now
          const shown = Math.max(0, rows - headerLines)
          return [progressOf(shown, writer.bytesSent, input.bytesRead, stat.size, now - started, false)] as const
        }
      }
    })
    return Stream.fromPull(Effect.succeed(pull))
  })).pipe(Stream.scoped, Stream.withSpan("Copy.fromFile"))

/** Writes a buffer to a Node writable, waiting for `drain` when it is full. */
const writeTo = (target: NodeJS.WritableStream, bytes: Uint8Array, file: string): Effect.Effect<void, CopyFileError> =>
  Effect.callback<void, CopyFileError>((resume) => {
    if (target.write(bytes)) return resume(Effect.void)
    const onDrain = () => {
      cleanup()
      resume(Effect.void)
    }
    const onError = (cause: unknown) => {
      cleanup()
      resume(Effect.fail(fileError(file, "cannot write")(cause)))
    }
    const cleanup = () => {
      target.off("drain", onDrain)
      target.off("error", onError)
    }
    target.once("drain", onDrain)
    target.once("error", onError)
    return Effect.sync(cleanup)
  })

/** Copies `COPY … TO STDOUT` into a CSV or text file, reporting progress. */
export const toFile = (
  conn: CopyConnection,
  sql: string,
  file: string,
  options: FileSettings | undefined
): Stream.Stream<Progress, PgError.PgError | CopyFileError> =>
  Stream.unwrap(Effect.gen(function*() {
    if (options?.format === "binary") {
      return yield* Effect.fail(new PgError.InterfaceError({ message: "toFile writes CSV or text files" }))
    }
    const planned = yield* planOrFail(sql, options)
    const gzip = options?.gzip ?? file.endsWith(".gz")
    const interval = Duration.toMillis(Duration.fromInputUnsafe(options?.progressInterval ?? "100 millis"))
    const drainTimeout = drainTimeoutOf(options)
    const temporary = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(4).toString("hex")}.partial`)
    const output = fs.createWriteStream(temporary)
    const compressor = gzip ? zlib.createGzip() : undefined
    const target: NodeJS.WritableStream = compressor ?? output
    const closed = new Promise<void>((resolve, reject) => {
      if (compressor !== undefined) pipeline(compressor, output, (error) => (error ? reject(error) : resolve()))
      else output.once("close", resolve).once("error", reject)
    })
    closed.catch(() => {})
    let committed = false
    yield* Effect.addFinalizer(() =>
      committed ? Effect.void : Effect.promise(async () => {
        compressor?.destroy()
        output.destroy()
        await fs.promises.rm(temporary, { force: true })
      })
    )
    yield* Effect.tryPromise({
      try: () => new Promise<void>((resolve, reject) => output.once("open", () => resolve()).once("error", reject)),
      catch: fileError(temporary, "cannot create")
    })
    const { handler, release } = yield* startTo(conn, planned.sql, { _tag: "Chunks", size: options?.chunkSize ?? DEFAULT_CHUNK_SIZE }, drainTimeout)
    const items = pullItems<Uint8Array>(handler, release)
    const headerLines = planned.header === false ? 0 : 1
    const started = yield* Clock.currentTimeMillis
    let lastEvent = started
    let finished = false
    const progress = (now: number, done: boolean, rows: number) =>
      progressOf(rows, handler.bytes, output.bytesWritten, undefined, now - started, done)
    const pull: Pull.Pull<Arr.NonEmptyReadonlyArray<Progress>, PgError.PgError | CopyFileError> = Effect.gen(function*() {
      if (finished) return yield* Cause.done()
      for (;;) {
        const next = yield* Effect.result(items)
        const now = yield* Clock.currentTimeMillis
        if (Result.isFailure(next)) {
          if (!Cause.isDone(next.failure)) return yield* Effect.fail(next.failure)
          target.end()
          yield* Effect.tryPromise({ try: () => closed, catch: fileError(temporary, "cannot write") })
          yield* Effect.tryPromise({ try: () => fs.promises.rename(temporary, file), catch: fileError(file, "cannot create") })
          committed = true
          finished = true
          return [progress(now, true, copyCount(handler.commandTag))] as const
        }
        for (const chunk of next.success) yield* writeTo(target, chunk, temporary)
        if (now - lastEvent >= interval) {
          lastEvent = now
          return [progress(now, false, Math.max(0, handler.messages - headerLines))] as const
        }
      }
    })
    return Stream.fromPull(Effect.succeed(pull))
  })).pipe(Stream.scoped, Stream.withSpan("Copy.toFile"))
