/**
 * libpq keyword/value entries (from a connection string, a URL or the
 * environment) into a `PgConfigInput`, with libpq's keyword checks.
 */
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Result from "effect/Result"
import { isIP } from "node:net"
import * as conninfo from "../conninfo.ts"
import { channelBindingValues, loadBalanceValues, type PgConfigInput, PgConfigError, sslModes, targetSessionAttrsValues } from "./model.ts"

/** libpq keywords pgfx knows but does not implement: named in the error. */
const unsupportedKeys: ReadonlySet<string> = new Set([
  "service",
  "servicefile",
  "requiressl",
  "sslcompression",
  "sslcrl",
  "sslcrldir",
  "sslsni",
  "sslcertmode",
  "sslkeylogfile",
  "requirepeer",
  "require_auth",
  "ssl_min_protocol_version",
  "ssl_max_protocol_version",
  "min_protocol_version",
  "max_protocol_version",
  "krbsrvname",
  "gsslib",
  "gssdelegation",
  "replication",
  "tcp_user_timeout",
  "keepalives_interval",
  "keepalives_count",
  "scram_client_key",
  "scram_server_key",
  "oauth_issuer",
  "oauth_client_id",
  "oauth_client_secret",
  "oauth_scope"
])

export type Mutable<T> = { -readonly [K in keyof T]: T[K] }

const entryFailure = (entry: conninfo.RawEntry, message: string): never =>
  entry.label !== undefined
    ? conninfo.fail(`${message} (environment variable ${entry.label})`, entry.label)
    : conninfo.fail(message, entry.key, entry.valuePosition)

const listOf = (entry: conninfo.RawEntry): ReadonlyArray<string> => entry.list ?? entry.value.split(",")

const oneOf = <A extends string>(entry: conninfo.RawEntry, values: ReadonlyArray<A>): A => {
  const v = entry.value as A
  return values.includes(v) ? v : entryFailure(entry, `invalid ${entry.key} value: "${entry.value}"`)
}

const intOf = (entry: conninfo.RawEntry): number => {
  const n = conninfo.parseIntStrict(entry.value)
  return n !== undefined
    ? n
    : entryFailure(entry, `invalid integer value "${entry.value}" for connection option "${entry.key}"`)
}

/** Validates entries and turns them into a `PgConfigInput`; later entries win. */
export const inputFromEntries = (entries: ReadonlyArray<conninfo.RawEntry>): PgConfigInput => {
  const out: Mutable<PgConfigInput> = {}
  for (const entry of entries) {
    const { key, value } = entry
    if (entry.afterSecret !== undefined && !knownKeys.has(key)) {
      conninfo.fail(
        `invalid connection option after the value of "${entry.afterSecret}" (quote a value that contains blanks)`,
        entry.afterSecret,
        entry.keyPosition
      )
    }
    if (unsupportedKeys.has(key)) {
      entryFailure(entry, `connection option "${key}" is not supported by pgfx`)
    }
    // empty values mean "not set" (the lower-precedence source or default applies)
    if (value === "" && key !== "host" && key !== "hostaddr" && key !== "port") {
      if (!knownKeys.has(key)) conninfo.fail(`invalid connection option "${key}"`, key, entry.keyPosition)
      continue
    }
    switch (key) {
      case "host": {
        const list = listOf(entry)
        if (list.every((h) => h === "")) break
        out.host = list.length === 1 ? list[0] : list
        break
      }
      case "hostaddr": {
        const list = listOf(entry)
        if (list.every((h) => h === "")) break
        for (const a of list) {
          if (a !== "" && isIP(a) === 0) entryFailure(entry, `invalid hostaddr "${a}": not a numeric IP address`)
        }
        out.hostaddr = list.length === 1 ? list[0] : list
        break
      }
      case "port": {
        const list = listOf(entry)
        if (list.every((p) => p === "")) break
        const ports = list.map((p) => {
          if (p === "") return ""
          const n = conninfo.parsePort(p)
          return n !== undefined ? n : entryFailure(entry, `invalid port number: "${p}"`)
        })
        out.port = ports.length === 1 ? ports[0] : ports
        break
      }
      case "dbname":
        out.database = value
        break
      case "user":
        out.user = value
        break
      case "password":
        out.password = Redacted.make(value)
        break
      case "sslpassword":
        out.sslpassword = Redacted.make(value)
        break
      case "passfile":
        out.passfile = value
        break
      case "application_name":
        out.applicationName = value
        break
      case "fallback_application_name":
        out.fallbackApplicationName = value
        break
      case "options":
        out.options = value
        break
      case "connect_timeout":
        out.connectTimeout = intOf(entry)
        break
      case "sslmode":
        out.sslmode = oneOf(entry, sslModes)
        break
      case "sslrootcert":
        out.sslrootcert = value
        break
      case "sslcert":
        out.sslcert = value
        break
      case "sslkey":
        out.sslkey = value
        break
      case "target_session_attrs":
        out.targetSessionAttrs = oneOf(entry, targetSessionAttrsValues)
        break
      case "load_balance_hosts":
        out.loadBalanceHosts = oneOf(entry, loadBalanceValues)
        break
      case "keepalives":
        out.keepalives = intOf(entry) !== 0
        break
      case "keepalives_idle": {
        const n = intOf(entry)
        if (n < 0) entryFailure(entry, `invalid value for connection option "keepalives_idle": must not be negative`)
        out.keepalivesIdle = n
        break
      }
      case "channel_binding":
        out.channelBinding = oneOf(entry, channelBindingValues)
        break
      case "client_encoding":
        // accepted only when it says what pgfx always uses
        if (!/^(utf-?8|unicode)$/i.test(value)) {
          entryFailure(entry, `client_encoding "${value}" is not supported: pgfx speaks UTF8 only`)
        }
        break
      case "gssencmode":
        if (value === "require") {
          entryFailure(entry, `gssencmode "require" is not supported: pgfx does not implement GSSAPI encryption`)
        }
        oneOf(entry, ["disable", "prefer"])
        break
      case "sslnegotiation":
        if (value === "direct") {
          entryFailure(entry, `sslnegotiation "direct" is not supported: pgfx negotiates TLS the PostgreSQL way`)
        }
        oneOf(entry, ["postgres"])
        break
      default:
        conninfo.fail(`invalid connection option "${key}"`, key, entry.keyPosition)
    }
  }
  return out
}

const knownKeys: ReadonlySet<string> = new Set([
  "host",
  "hostaddr",
  "port",
  "dbname",
  "user",
  "password",
  "passfile",
  "connect_timeout",
  "application_name",
  "fallback_application_name",
  "options",
  "sslmode",
  "sslrootcert",
  "sslcert",
  "sslkey",
  "sslpassword",
  "target_session_attrs",
  "load_balance_hosts",
  "keepalives",
  "keepalives_idle",
  "channel_binding",
  "client_encoding",
  "gssencmode",
  "sslnegotiation"
])

const toError = (failure: conninfo.Failure): PgConfigError =>
  new PgConfigError({ message: failure.message, key: failure.key, position: failure.position })

export const fromAttempt = <A>(f: () => A): Effect.Effect<A, PgConfigError> =>
  Effect.suspend(() => Effect.fromResult(Result.mapError(conninfo.attempt(f), toError)))

/**
 * Parses a libpq connection string into settings, without consulting the
 * environment or applying defaults (that is {@link make}'s job).
 *
 * Two forms are accepted:
 *
 * - keyword/value: `"host=db port=5432 dbname=app user=me"`. Spaces may
 *   surround `=`; a value containing spaces is single-quoted; inside or
 *   outside quotes a backslash makes the next character literal (`\'`,
 *   `\\`). The empty string sets nothing.
 * - URL: `postgresql://[user[:password]@][host][:port][,host[:port]…][/dbname][?key=value&…]`
 *   (or `postgres://`). Parts are percent-decoded; IPv6 addresses go in
 *   brackets; a socket directory is written percent-encoded
 *   (`postgresql://%2Fvar%2Frun%2Fpostgresql/db`) or as `?host=/var/run/postgresql`;
 *   query parameters take any keyword and override the parts before them.
 *
 * Keywords are libpq's: `host`, `hostaddr`, `port`, `dbname`, `user`,
 * `password`, `passfile`, `connect_timeout`, `application_name`,
 * `fallback_application_name`, `options`, `sslmode`, `sslrootcert`, `sslcert`,
 * `sslkey`, `sslpassword`, `target_session_attrs`, `load_balance_hosts`,
 * `keepalives`, `keepalives_idle`, `channel_binding`. `client_encoding`
 * (UTF8 only), `gssencmode` (`disable`/`prefer`) and `sslnegotiation`
 * (`postgres`) are accepted and have no effect. Anything else — an unknown
 * keyword, a bad value, a syntax error — fails with a `PgConfigError` naming
 * the keyword and, for syntax errors, the 0-based position.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { PgConfig } from "@pgfx/core"
 *
 * const input = Effect.runSync(PgConfig.parse("host=db1,db2 port=5432,5433 dbname=app"))
 * // { host: ["db1", "db2"], port: [5432, 5433], database: "app" }
 * ```
 *
 * @since 0.1.0
 * @category parsing
 */
export const parse = (text: string): Effect.Effect<PgConfigInput, PgConfigError> =>
  fromAttempt(() => inputFromEntries(conninfo.parseConninfo(text)))
