/**
 * Progress of the file helpers: the `Progress` event (re-exported by
 * `Copy.ts`), its rates, and the terminal bar `withProgressBar` draws with
 * `cli-progress`.
 */
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { SingleBar } from "cli-progress"

/**
 * Progress of `fromFile` / `toFile`.
 *
 * @since 0.1.0
 */
export interface Progress {
  /** Rows so far (counted from the data; the final event has the server's count). */
  readonly rows: number
  /** COPY data bytes so far (uncompressed). */
  readonly bytes: number
  /** File bytes read or written so far (compressed when gzip). */
  readonly fileBytes: number
  /** Size of the input file (`fromFile`), for a percentage. */
  readonly totalFileBytes: number | undefined
  /** Time since the COPY started. */
  readonly elapsedMillis: number
  /** Average rate since the start. */
  readonly rowsPerSecond: number
  /** Average rate of COPY data since the start. */
  readonly bytesPerSecond: number
  /** The last event: the COPY is over and committed. */
  readonly done: boolean
}

/** A progress event, with the average rates since the start. */
export const progressOf = (
  rows: number,
  bytes: number,
  fileBytes: number,
  totalFileBytes: number | undefined,
  elapsedMillis: number,
  done: boolean
): Progress => {
  const seconds = Math.max(elapsedMillis, 1) / 1000
  return {
    rows,
    bytes,
    fileBytes,
    totalFileBytes,
    elapsedMillis,
    rowsPerSecond: rows / seconds,
    bytesPerSecond: bytes / seconds,
    done
  }
}

const megabytes = (bytes: number): string => (bytes / 1048576).toFixed(1)

/** Runs a progress stream, drawing a bar labelled `label` on `output`; returns the last event. */
export const withProgressBar: <E, R>(
  progress: Stream.Stream<Progress, E, R>,
  label: string,
  output: NodeJS.WritableStream
) => Effect.Effect<Progress | undefined, E, R> = Effect.fnUntraced(function*<E, R>(
  progress: Stream.Stream<Progress, E, R>,
  label: string,
  output: NodeJS.WritableStream
) {
  let bar: SingleBar | undefined
  let last: Progress | undefined
  const payload = (event: Progress) => ({
    rows: event.rows.toLocaleString("en-US"),
    rate: Math.round(event.rowsPerSecond).toLocaleString("en-US"),
    mb: megabytes(event.bytes)
  })
  return yield* Stream.runForEach(progress, (event) =>
    Effect.sync(() => {
      last = event
      if (bar === undefined) {
        const known = event.totalFileBytes !== undefined && event.totalFileBytes > 0
        bar = new SingleBar({
          format: known
            ? `${label} [{bar}] {percentage}% | {rows} rows | {rate} rows/s | {mb} MB`
            : `${label} {rows} rows | {rate} rows/s | {mb} MB | {duration_formatted}`,
          stream: output,
          hideCursor: true,
          barCompleteChar: "\u2588",
          barIncompleteChar: "\u2591"
        })
        bar.start(known ? event.totalFileBytes! : 1, 0, payload(event))
      }
      bar.update(event.totalFileBytes !== undefined ? event.fileBytes : 0, payload(event))
    })).pipe(
      Effect.map(() => last),
      Effect.ensuring(Effect.sync(() => bar?.stop()))
    )
})
