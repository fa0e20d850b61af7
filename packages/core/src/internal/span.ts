/**
 * Spans of the request path. Effect's default tracer keeps spans in memory
 * only, where nobody can see them, and making one costs more than the rest of
 * a statement's client-side work; so a span is made when a tracer that
 * exports spans is installed (`Effect.withTracer`, an OpenTelemetry layer).
 */
import * as Effect from "effect/Effect"
import * as Tracer from "effect/Tracer"

/** `effect` in a span named `name`, when anybody can observe the span. */
export const traced = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  name: string,
  attributes: Record<string, unknown>
): Effect.Effect<A, E, R> =>
  Effect.withFiber((fiber) =>
    fiber.getRef(Tracer.Tracer) === Tracer.nativeTracer
      ? effect
      : Effect.withSpan(effect, name, { attributes, captureStackTrace: false }) as Effect.Effect<A, E, R>
  )
