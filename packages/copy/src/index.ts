/**
 * @pgfx/copy: COPY FROM STDIN and COPY TO STDOUT for pgfx connections, in
 * text, CSV and binary, with typed rows, backpressure in both directions,
 * and file helpers with progress.
 *
 * @since 0.1.0
 * @module @pgfx/copy
 */

/** COPY streams: `Copy.from`, `Copy.fromStream`, `Copy.to`, `Copy.toBytes`, `Copy.fromFile`, `Copy.toFile`. @since 0.1.0 */
export * as Copy from "./Copy.ts"
