/**
 * Connection settings, the libpq way.
 *
 * A `PgConfig` is the one resolved description of where and how to connect
 * that the connection engine consumes. It is built by {@link make} from
 * (highest precedence first):
 *
 * 1. `overrides` — an object, typically settings the program insists on;
 * 2. `input` — a libpq keyword/value string (`"dbname=test user=postgres"`),
 *    a `postgresql://` URL, or an object ({@link PgConfigInput});
 * 3. the `PG*` environment variables, read through effect's `Config` (so a
 *    `ConfigProvider` can supply them in tests);
 * 4. defaults.
 *
 * Precedence is per setting, as in libpq: `make("dbname=app")` still takes
 * the host from `PGHOST`.
 *
 * Passwords are kept `Redacted` from the moment they are read: no error
 * message, log line ({@link describe}), `JSON.stringify`, `String()` or
 * inspection of a config ever shows one.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as conninfo from "./internal/conninfo.ts"
import { readEnvironment } from "./internal/config/environment.ts"
import type { HostSpec, PgConfig, PgConfigError, PgConfigInput } from "./internal/config/model.ts"
import { normalize } from "./internal/config/normalize.ts"
import { fromAttempt, parse } from "./internal/config/parse.ts"
import { resolve } from "./internal/config/resolve.ts"

export type {
  ChannelBinding,
  HostSpec,
  LoadBalanceHosts,
  PgConfig,
  PgConfigInput,
  SslMode,
  TargetSessionAttrs
} from "./internal/config/model.ts"
export { defaultHost, defaultPort, PgConfigError } from "./internal/config/model.ts"
export { parse } from "./internal/config/parse.ts"
export { defaultPassfile, passwordFor } from "./internal/config/passfile.ts"

/**
 * Resolves connection settings into a {@link PgConfig}, with libpq's
 * precedence, setting by setting: `overrides` > `input` (a connection string
 * — see {@link parse} — or an object) > `PG*` environment variables >
 * defaults.
 *
 * Environment variables are read through effect's `Config`, from the current
 * `ConfigProvider` (the process environment unless one is provided):
 * `PGHOST`, `PGHOSTADDR`, `PGPORT`, `PGDATABASE`, `PGUSER`, `PGPASSWORD`,
 * `PGPASSFILE`, `PGSSLMODE`, `PGSSLROOTCERT`, `PGSSLCERT`, `PGSSLKEY`,
 * `PGAPPNAME`, `PGCONNECT_TIMEOUT`, `PGOPTIONS`, `PGTARGETSESSIONATTRS`,
 * `PGLOADBALANCEHOSTS`, `PGCHANNELBINDING`.
 *
 * Defaults: host `localhost` (see {@link defaultHost}), port 5432, user the
 * OS user, database the user, `sslmode=prefer`, `target_session_attrs=any`,
 * `load_balance_hosts=disable`, keepalives on, no connect timeout.
 *
 * Host lists pair up with `hostaddr` and `port` lists element by element; a
 * single port applies to every host; an empty element means the default;
 * mismatched counts fail. `connect_timeout` of 0 or less means none and 1 is
 * raised to 2, as libpq does. An empty value counts as not set.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { PgConfig } from "@pgfx/core"
 *
 * const program = Effect.gen(function*() {
 *   const config = yield* PgConfig.make("postgresql://app@db1,db2:5433/orders", { applicationName: "billing" })
 *   console.log(PgConfig.describe(config))
 *   // host=db1,db2 port=5432,5433 dbname=orders user=app sslmode=prefer application_name=billing
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (
  input?: string | PgConfigInput | undefined,
  overrides?: PgConfigInput | undefined
) => Effect.Effect<PgConfig, PgConfigError> = Effect.fnUntraced(function*(
  input?: string | PgConfigInput | undefined,
  overrides?: PgConfigInput | undefined
) {
  const fromInput: PgConfigInput = typeof input === "string" ? yield* parse(input) : input ?? {}
  const fromEnv = yield* readEnvironment
  return yield* fromAttempt(() =>
    resolve([
      normalize(overrides ?? {}, "overrides"),
      normalize(fromInput, "input"),
      normalize(fromEnv, "environment")
    ])
  )
})

/**
 * A one-line, conninfo-like description of a config for logs and error
 * messages, e.g. `host=127.0.0.1 port=5432 dbname=test user=postgres sslmode=prefer`.
 * Never includes the password or `sslpassword`; settings at their defaults
 * are left out except `sslmode`.
 *
 * @example
 * ```ts
 * const config = yield* PgConfig.make("postgresql://me:secret@db/app")
 * yield* Effect.logInfo(`connecting to ${PgConfig.describe(config)}`)
 * // connecting to host=db port=5432 dbname=app user=me sslmode=prefer   (no password)
 * ```
 *
 * @since 0.1.0
 * @category rendering
 */
export const describe = (config: PgConfig): string => {
  const parts: Array<string> = []
  const add = (key: string, value: string | number | undefined) => {
    if (value !== undefined) parts.push(`${key}=${conninfo.quoteValue(String(value))}`)
  }
  add("host", config.hosts.map((h) => h.host).join(","))
  if (config.hosts.some((h) => h.hostaddr !== undefined)) {
    add("hostaddr", config.hosts.map((h) => h.hostaddr ?? "").join(","))
  }
  const ports = config.hosts.map((h) => h.port)
  add("port", ports.every((p) => p === ports[0]) ? ports[0] : ports.join(","))
  add("dbname", config.database)
  add("user", config.user)
  add("sslmode", config.sslmode)
  add("application_name", config.applicationName)
  add("connect_timeout", config.connectTimeout)
  if (config.targetSessionAttrs !== "any") add("target_session_attrs", config.targetSessionAttrs)
  if (config.loadBalanceHosts !== "disable") add("load_balance_hosts", config.loadBalanceHosts)
  if (config.channelBinding !== "prefer") add("channel_binding", config.channelBinding)
  return parts.join(" ")
}

/**
 * `true` when the host is a Unix-domain socket directory rather than a
 * network host.
 *
 * @example
 * ```ts
 * PgConfig.isUnixSocket({ host: "/var/run/postgresql", port: 5432 }) // true
 * PgConfig.isUnixSocket({ host: "db.internal", port: 5432 })         // false
 * ```
 *
 * @since 0.1.0
 * @category utils
 */
export const isUnixSocket = (host: HostSpec): boolean =>
  host.hostaddr === undefined && conninfo.isUnixSocketPath(host.host)
