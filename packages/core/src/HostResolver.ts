/**
 * How host names become addresses when a connection is opened.
 *
 * `Connection.connect` asks the {@link HostResolver} in force for every host
 * name of the host list (IP addresses, `hostaddr` and Unix-socket directories
 * are used as they are), at every connection attempt: there is no cache in
 * pgfx, so a DNS change is seen by the next connection (a pool's existing
 * connections keep their address until they are replaced, e.g. after
 * `maxLifetime`). The default asks the operating system
 * (`dns.promises.lookup(host, { all: true })`, in its order) each time.
 *
 * Override it for service discovery, split-horizon setups or tests with
 * `Effect.provideService(HostResolver.HostResolver, resolver)` or
 * {@link layer}. A pool uses the resolver in force where it was made, for
 * its background (re)connections too.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Connection, HostResolver } from "@pgfx/core"
 *
 * const program = Effect.scoped(
 *   Effect.flatMap(Connection.connect("host=db.internal dbname=app"), (conn) => conn.execute("SELECT 1"))
 * ).pipe(
 *   // db.internal → whatever the registry says now
 *   Effect.provideService(HostResolver.HostResolver, {
 *     lookup: (host) => Effect.succeed(host === "db.internal" ? ["10.0.0.7"] : [])
 *   })
 * )
 * ```
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as dns from "node:dns"

/**
 * A host-name resolver: the IP addresses (IPv4 or IPv6 literals) to try for
 * a host name, in order. An empty list or a failure makes the host fail with
 * a `ConnectionError` of reason `UnknownHost` (the next host of the list is
 * tried); an entry that is not an IP address is refused the same way.
 *
 * @since 0.1.0
 */
export interface HostResolver {
  /** The addresses of `host`, asked at every connection attempt. */
  readonly lookup: (host: string) => Effect.Effect<ReadonlyArray<string>, unknown>
}

/**
 * The operating system's resolver: `dns.promises.lookup(host, { all: true })`
 * on every call (getaddrinfo: `/etc/hosts`, then DNS), no caching.
 *
 * @since 0.1.0
 */
export const system: HostResolver = {
  lookup: (host) =>
    Effect.map(
      Effect.tryPromise(() => dns.promises.lookup(host, { all: true })),
      (addresses) => addresses.map((entry) => entry.address)
    )
}

/**
 * The resolver `Connection.connect` uses: {@link system} unless one is
 * provided.
 *
 * @example
 * ```ts
 * const answers = new Map([["primary.db", ["10.0.0.7"]]])
 * const resolver: HostResolver.HostResolver = {
 *   lookup: (host) => Effect.succeed(answers.get(host) ?? [])
 * }
 * program.pipe(Effect.provideService(HostResolver.HostResolver, resolver))
 * ```
 *
 * @since 0.1.0
 */
export const HostResolver: Context.Reference<HostResolver> = Context.Reference<HostResolver>(
  "@pgfx/core/HostResolver",
  { defaultValue: () => system }
)

/**
 * A layer that installs a resolver (a {@link HostResolver} or just its
 * `lookup` function) for everything built on top of it.
 *
 * @example
 * ```ts
 * const Discovery = HostResolver.layer((host) => registry.addressesOf(host))
 * const Pool = ConnectionPool.layer({ conninfo: "host=primary.db dbname=app" })
 * const App = Pool.pipe(Layer.provide(Discovery))
 * ```
 *
 * @since 0.1.0
 */
export const layer = (resolver: HostResolver | HostResolver["lookup"]): Layer.Layer<never> =>
  Layer.succeed(HostResolver, typeof resolver === "function" ? { lookup: resolver } : resolver)
