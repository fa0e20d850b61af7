/**
 * `@pgfx/copy`, loaded at run time: the package is being built alongside the
 * bench, and W3/W4 report "pgfx: not available yet" until its `Copy` module
 * has `fromStream` / `to` (the API of DESIGN.md and issue 5). The interface
 * below is what the bench calls.
 */
import type { Connection } from "@pgfx/core"
import type * as Effect from "effect/Effect"
import type * as Stream from "effect/Stream"

export type CopyFormat = "text" | "binary"

export interface CopyApi {
  /** Consumes a Stream of rows; returns the rows written. */
  readonly fromStream: (
    conn: Connection.Connection,
    sql: string,
    rows: Stream.Stream<ReadonlyArray<unknown>>,
    options: { readonly format: CopyFormat; readonly types?: ReadonlyArray<string> | undefined }
  ) => Effect.Effect<number | bigint, unknown>
  /** A Stream of typed rows. */
  readonly to: (
    conn: Connection.Connection,
    sql: string,
    options: { readonly format: CopyFormat; readonly types: ReadonlyArray<string> }
  ) => Stream.Stream<ReadonlyArray<unknown>, unknown>
}

let loaded: Promise<CopyApi | string> | undefined

/** The Copy module, or why it is not there. */
export const loadCopy = (): Promise<CopyApi | string> =>
  (loaded ??= (async () => {
    const specifier = "@pgfx/copy"
    try {
      const module = (await import(specifier)) as { readonly Copy?: Partial<CopyApi> }
      const copy = module.Copy
      if (copy === undefined) return "pgfx: not available yet (@pgfx/copy exports no Copy)"
      if (typeof copy.fromStream !== "function" || typeof copy.to !== "function") {
        return "pgfx: not available yet (Copy.fromStream / Copy.to missing)"
      }
      return copy as CopyApi
    } catch (error) {
      return `pgfx: not available yet (@pgfx/copy does not load: ${String((error as Error).message ?? error).split("\n")[0].slice(0, 120)})`
    }
  })())
