/**
 * LISTEN streams of one connection: which streams subscribe to which
 * channel, NotificationResponse delivery, and LISTEN / UNLISTEN on the
 * first subscriber in and the last one out.
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"
import type { PgError } from "../PgError.ts"
import type { Notification } from "./results.ts"

/** What subscribing needs of the connection. */
export interface ListenCommands {
  /** Sends `LISTEN channel` / `UNLISTEN channel` as a statement of its own. */
  readonly command: (verb: "LISTEN" | "UNLISTEN", channel: string) => Effect.Effect<void, PgError>
  /** Bounds a cleanup step by the connection's drain timeout. */
  readonly bounded: <A, E>(effect: Effect.Effect<A, E>, what: string) => Effect.Effect<A, E>
  readonly closed: () => boolean
}

export class Listeners {
  private readonly channels = new Map<string, Set<Queue.Queue<Notification, PgError | Cause.Done>>>()

  constructor(private readonly commands: ListenCommands) {}

  /** Hands a NotificationResponse to every stream on its channel. */
  deliver(channel: string, payload: string, pid: number): void {
    const subscribers = this.channels.get(channel)
    if (subscribers === undefined) return
    const notification: Notification = { channel, payload, pid }
    for (const queue of subscribers) Queue.offerUnsafe(queue, notification)
  }

  /** The connection is gone: every stream fails with its error. */
  failAll(error: PgError): void {
    for (const subscribers of this.channels.values()) {
      for (const queue of subscribers) Queue.failCauseUnsafe(queue, Cause.fail(error))
    }
  }

  /** A stream of the notifications on `channels`, subscribed for the stream's life. */
  stream(channels: ReadonlyArray<string>): Stream.Stream<Notification, PgError> {
    const self = this
    return Stream.unwrap(Effect.gen(function*() {
      const queue = yield* Queue.unbounded<Notification, PgError | Cause.Done>()
      // The channels this stream is registered on so far, released alike when the stream ends and
      // when a LISTEN fails midway: a registration left behind would make a later listen on the
      // channel skip its LISTEN and stall silently, and keep earlier channels LISTENed.
      const registered: Array<string> = []
      const unregister = Effect.suspend(() =>
        Effect.forEach(registered.splice(0), (channel) => {
          const subscribers = self.channels.get(channel)
          subscribers?.delete(queue)
          if (subscribers === undefined || subscribers.size > 0) return Effect.void
          self.channels.delete(channel)
          return self.commands.closed()
            ? Effect.void
            : Effect.ignore(self.commands.bounded(self.commands.command("UNLISTEN", channel), "UNLISTEN"))
        }, { discard: true })
      )
      yield* Effect.acquireRelease(
        Effect.forEach(channels, (channel) => {
          let subscribers = self.channels.get(channel)
          const first = subscribers === undefined
          if (subscribers === undefined) {
            subscribers = new Set()
            self.channels.set(channel, subscribers)
          }
          subscribers.add(queue)
          registered.push(channel)
          return first ? self.commands.command("LISTEN", channel) : Effect.void
        }, { discard: true }).pipe(Effect.onError(() => unregister)),
        () => unregister
      )
      return Stream.fromQueue(queue)
    })).pipe(Stream.scoped)
  }
}
