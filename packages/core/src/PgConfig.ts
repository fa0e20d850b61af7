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
import * as Config from "effect/Config"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Result from "effect/Result"
import { isIP } from "node:net"
import * as Fs from "node:fs/promises"
import * as Os from "node:os"
import * as Path from "node:path"
import * as internal from "./internal/conninfo.ts"

// ---------------------------------------------------------------------------
// Models
// ---------------------------------------------------------------------------

/**
 * libpq's `sslmode`.
 *
 * - `disable`: plain TCP only;
 * - `allow`: plain first, TLS if the server insists;
 * - `prefer` (default): TLS if the server offers it, plain otherwise;
 * - `require`: TLS, server certificate not checked (checked against
 *   `sslrootcert` when one is given, as libpq does);
 * - `verify-ca`: TLS, certificate chain checked;
 * - `verify-full`: TLS, chain and host name checked.
 *
 * @since 0.1.0
 * @category models
 */
export type SslMode = "disable" | "allow" | "prefer" | "require" | "verify-ca" | "verify-full"

/**
 * libpq's `target_session_attrs`: which kind of server a multi-host config
 * accepts. `prefer-standby` tries standbys first and falls back to any.
 *
 * @since 0.1.0
 * @category models
 */
export type TargetSessionAttrs = "any" | "read-write" | "read-only" | "primary" | "standby" | "prefer-standby"

/**
 * libpq's `load_balance_hosts`: try the hosts in order (`disable`) or in a
 * random order (`random`).
 *
 * @since 0.1.0
 * @category models
 */
export type LoadBalanceHosts = "disable" | "random"

/**
 * libpq's `channel_binding` for SCRAM authentication: `prefer` (default) uses
 * SCRAM-SHA-256-PLUS (`tls-server-end-point`) when the connection is encrypted
 * and the server offers it, `require` refuses to authenticate without it
 * (never sending a password to a server that does not bind), `disable` never
 * uses it.
 *
 * @since 0.1.0
 * @category models
 */
export type ChannelBinding = "disable" | "prefer" | "require"

/**
 * One server to try.
 *
 * `host` is a host name, an IP address, or the absolute path of the
 * directory holding a Unix-domain socket (`"/var/run/postgresql"`; the socket
 * file is `<dir>/.s.PGSQL.<port>`). When `hostaddr` is set the engine connects
 * to that numeric address and uses `host` only for TLS verification and
 * `.pgpass` lookup (when only `hostaddr` was given, `host` repeats it).
 *
 * @since 0.1.0
 * @category models
 */
export interface HostSpec {
  /** A host name, an IP address, or a Unix-socket directory. */
  readonly host: string
  /** The TCP port, or the number in the socket file's name. */
  readonly port: number
  /** A numeric address to connect to instead of resolving `host`. */
  readonly hostaddr?: string | undefined
}

/**
 * A fully resolved connection configuration. Build one with {@link make}.
 *
 * @since 0.1.0
 * @category models
 */
export interface PgConfig {
  /** the servers to try, in order (at least one) */
  readonly hosts: ReadonlyArray<HostSpec>
  /** `dbname` */
  readonly database: string
  /** the role to log in as */
  readonly user: string
  /** the explicit password; see {@link passwordFor} for `.pgpass` */
  readonly password: Redacted.Redacted<string> | undefined
  /** the password file to consult; `undefined` means `~/.pgpass` */
  readonly passfile: string | undefined
  /** `application_name`, falling back to `fallback_application_name` */
  readonly applicationName: string | undefined
  /** libpq `options`: command-line options sent to the server, e.g. `"-c search_path=x"` */
  readonly options: string | undefined
  /** seconds allowed for each connection attempt; `undefined` = no limit (never 1: raised to 2 like libpq) */
  readonly connectTimeout: number | undefined
  /** whether and how to use TLS; see {@link SslMode} */
  readonly sslmode: SslMode
  /** file of the CA certificates that verify the server's certificate */
  readonly sslrootcert: string | undefined
  /** file of the client certificate, for certificate authentication */
  readonly sslcert: string | undefined
  /** file of the client certificate's private key */
  readonly sslkey: string | undefined
  /** passphrase of an encrypted `sslkey` */
  readonly sslpassword: Redacted.Redacted<string> | undefined
  /** which kind of server to accept from the host list; see {@link TargetSessionAttrs} */
  readonly targetSessionAttrs: TargetSessionAttrs
  /** try the hosts in order or shuffled; see {@link LoadBalanceHosts} */
  readonly loadBalanceHosts: LoadBalanceHosts
  /** TCP keepalive on the socket (default on) */
  readonly keepalives: boolean
  /** seconds of idleness before TCP keepalive probes; `undefined` = the OS default */
  readonly keepalivesIdle: number | undefined
  /** SCRAM channel binding; see {@link ChannelBinding} */
  readonly channelBinding: ChannelBinding
}

/**
 * Connection settings as a caller writes them: every key optional, in
 * camelCase. Also what {@link parse} returns.
 *
 * Lists (`host`, `hostaddr`, `port`) are either comma-separated strings, as in
 * libpq, or arrays; an empty element stands for the default (`localhost`,
 * `5432`). Durations given as numbers are seconds.
 *
 * @since 0.1.0
 * @category models
 */
export interface PgConfigInput {
  /** `host`: names, addresses or socket directories, in the order to try (`"db1,db2"` or an array) */
  readonly host?: string | ReadonlyArray<string> | undefined
  /** `hostaddr`: numeric addresses, paired with `host` element by element */
  readonly hostaddr?: string | ReadonlyArray<string> | undefined
  /** `port`: one for every host, or one per host */
  readonly port?: number | string | ReadonlyArray<number | string> | undefined
  /** `dbname` (default: the user name) */
  readonly database?: string | undefined
  /** `user` (default: the OS user) */
  readonly user?: string | undefined
  /** `password`; kept `Redacted` from here on */
  readonly password?: string | Redacted.Redacted<string> | undefined
  /** `passfile` (default `~/.pgpass`) */
  readonly passfile?: string | undefined
  /** `application_name`, shown in `pg_stat_activity` */
  readonly applicationName?: string | undefined
  /** `fallback_application_name`: used when `applicationName` is not set anywhere */
  readonly fallbackApplicationName?: string | undefined
  /** `options`: server settings at startup, e.g. `"-c search_path=app,public"` */
  readonly options?: string | undefined
  /** `connect_timeout`, per attempt: seconds or a `Duration` */
  readonly connectTimeout?: number | Duration.Duration | undefined
  /** `sslmode` (default `prefer`) */
  readonly sslmode?: SslMode | undefined
  /** `sslrootcert`: CA certificates file */
  readonly sslrootcert?: string | undefined
  /** `sslcert`: client certificate file */
  readonly sslcert?: string | undefined
  /** `sslkey`: client key file */
  readonly sslkey?: string | undefined
  /** `sslpassword`: passphrase of the client key */
  readonly sslpassword?: string | Redacted.Redacted<string> | undefined
  /** `target_session_attrs` (default `any`) */
  readonly targetSessionAttrs?: TargetSessionAttrs | undefined
  /** `load_balance_hosts` (default `disable`) */
  readonly loadBalanceHosts?: LoadBalanceHosts | undefined
  /** `keepalives` (default on) */
  readonly keepalives?: boolean | undefined
  /** `keepalives_idle`: seconds or a `Duration` */
  readonly keepalivesIdle?: number | Duration.Duration | undefined
  /** `channel_binding` (default `prefer`) */
  readonly channelBinding?: ChannelBinding | undefined
}

/**
 * Bad connection settings. `key` names the setting (the libpq keyword, the
 * `PgConfigInput` field or the environment variable); `position` is the
 * 0-based character offset in the connection string when there was one. The
 * message never contains a password.
 *
 * @since 0.1.0
 * @category errors
 */
export class PgConfigError extends Data.TaggedError("PgConfigError")<{
  /** What is wrong, never with a password. */
  readonly message: string
  /** The setting: libpq keyword, `PgConfigInput` field or environment variable. */
  readonly key?: string | undefined
  /** 0-based offset in the connection string, for syntax errors. */
  readonly position?: number | undefined
}> {}

// ---------------------------------------------------------------------------
// Constants
// ---------------------------------------------------------------------------

/**
 * The host used when none is given. libpq would use its compiled-in Unix
 * socket directory; that directory differs between distributions and does
 * not exist on Windows, so pgfx uses TCP to `localhost`. Write the directory
 * (`host=/var/run/postgresql`) to use a socket.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultHost = "localhost"

/**
 * The port used when none is given.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultPort = 5432

const sslModes: ReadonlyArray<SslMode> = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]
const targetSessionAttrsValues: ReadonlyArray<TargetSessionAttrs> = [
  "any",
  "read-write",
  "read-only",
  "primary",
  "standby",
  "prefer-standby"
]
const loadBalanceValues: ReadonlyArray<LoadBalanceHosts> = ["disable", "random"]
const channelBindingValues: ReadonlyArray<ChannelBinding> = ["disable", "prefer", "require"]

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

/** `PG*` environment variables and the libpq keyword each one sets. */
const environment: ReadonlyArray<readonly [string, string]> = [
  ["PGHOST", "host"],
  ["PGHOSTADDR", "hostaddr"],
  ["PGPORT", "port"],
  ["PGDATABASE", "dbname"],
  ["PGUSER", "user"],
  ["PGPASSWORD", "password"],
  ["PGPASSFILE", "passfile"],
  ["PGSSLMODE", "sslmode"],
  ["PGSSLROOTCERT", "sslrootcert"],
  ["PGSSLCERT", "sslcert"],
  ["PGSSLKEY", "sslkey"],
  ["PGAPPNAME", "application_name"],
  ["PGCONNECT_TIMEOUT", "connect_timeout"],
  ["PGOPTIONS", "options"],
  ["PGTARGETSESSIONATTRS", "target_session_attrs"],
  ["PGLOADBALANCEHOSTS", "load_balance_hosts"],
  ["PGCHANNELBINDING", "channel_binding"]
]

// ---------------------------------------------------------------------------
// Raw entries (string / environment) -> PgConfigInput
// ---------------------------------------------------------------------------

type Mutable<T> = { -readonly [K in keyof T]: T[K] }

const entryFailure = (entry: internal.RawEntry, message: string): never =>
  entry.label !== undefined
    ? internal.fail(`${message} (environment variable ${entry.label})`, entry.label)
    : internal.fail(message, entry.key, entry.valuePosition)

const listOf = (entry: internal.RawEntry): ReadonlyArray<string> => entry.list ?? entry.value.split(",")

const oneOf = <A extends string>(entry: internal.RawEntry, values: ReadonlyArray<A>): A => {
  const v = entry.value as A
  return values.includes(v) ? v : entryFailure(entry, `invalid ${entry.key} value: "${entry.value}"`)
}

const intOf = (entry: internal.RawEntry): number => {
  const n = internal.parseIntStrict(entry.value)
  return n !== undefined
    ? n
    : entryFailure(entry, `invalid integer value "${entry.value}" for connection option "${entry.key}"`)
}

/** Validates entries and turns them into a `PgConfigInput`; later entries win. */
const inputFromEntries = (entries: ReadonlyArray<internal.RawEntry>): PgConfigInput => {
  const out: Mutable<PgConfigInput> = {}
  for (const entry of entries) {
    const { key, value } = entry
    if (entry.afterSecret !== undefined && !knownKeys.has(key)) {
      internal.fail(
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
      if (!knownKeys.has(key)) internal.fail(`invalid connection option "${key}"`, key, entry.keyPosition)
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
          const n = internal.parsePort(p)
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
        internal.fail(`invalid connection option "${key}"`, key, entry.keyPosition)
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

const toError = (failure: internal.Failure): PgConfigError =>
  new PgConfigError({ message: failure.message, key: failure.key, position: failure.position })

const fromAttempt = <A>(f: () => A): Effect.Effect<A, PgConfigError> =>
  Effect.suspend(() => Effect.fromResult(Result.mapError(internal.attempt(f), toError)))

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
  fromAttempt(() => inputFromEntries(internal.parseConninfo(text)))

// ---------------------------------------------------------------------------
// PgConfigInput -> normalized settings
// ---------------------------------------------------------------------------

interface Settings {
  host?: ReadonlyArray<string>
  hostaddr?: ReadonlyArray<string>
  port?: ReadonlyArray<number | undefined>
  database?: string
  user?: string
  password?: Redacted.Redacted<string>
  passfile?: string
  applicationName?: string
  fallbackApplicationName?: string
  options?: string
  connectTimeout?: number
  sslmode?: SslMode
  sslrootcert?: string
  sslcert?: string
  sslkey?: string
  sslpassword?: Redacted.Redacted<string>
  targetSessionAttrs?: TargetSessionAttrs
  loadBalanceHosts?: LoadBalanceHosts
  keepalives?: boolean
  keepalivesIdle?: number
  channelBinding?: ChannelBinding
}

const inputKeys: ReadonlySet<string> = new Set<keyof PgConfigInput>([
  "host",
  "hostaddr",
  "port",
  "database",
  "user",
  "password",
  "passfile",
  "applicationName",
  "fallbackApplicationName",
  "options",
  "connectTimeout",
  "sslmode",
  "sslrootcert",
  "sslcert",
  "sslkey",
  "sslpassword",
  "targetSessionAttrs",
  "loadBalanceHosts",
  "keepalives",
  "keepalivesIdle",
  "channelBinding"
])

const describeValue = (u: unknown): string => {
  if (typeof u === "string") return JSON.stringify(u)
  if (typeof u === "number" || typeof u === "boolean" || u === null || u === undefined) return String(u)
  return typeof u
}

/** Normalizes an object input; `from` prefixes messages ("overrides", "input"). */
const normalize = (input: PgConfigInput, from: string): Settings => {
  const bad = (key: string, message: string): never => internal.fail(`${from}: ${message}`, key)
  const str = (key: keyof PgConfigInput): string | undefined => {
    const v: unknown = input[key]
    if (v === undefined || v === "") return undefined
    if (typeof v !== "string") return bad(key, `"${key}" must be a string, got ${describeValue(v)}`)
    return v
  }
  const list = (key: "host" | "hostaddr"): ReadonlyArray<string> | undefined => {
    const v: unknown = input[key]
    if (v === undefined) return undefined
    const items: ReadonlyArray<unknown> = typeof v === "string" ? v.split(",") : Array.isArray(v) ? v : [v]
    if (items.length === 0) return undefined
    const out = items.map((item) =>
      typeof item === "string" ? item : bad(key, `"${key}" must be a string or an array of strings`)
    )
    if (out.every((h) => h === "")) return undefined
    if (key === "hostaddr") {
      for (const a of out) {
        if (a !== "" && isIP(a) === 0) bad(key, `invalid hostaddr "${a}": not a numeric IP address`)
      }
    }
    return out
  }
  const ports = (): ReadonlyArray<number | undefined> | undefined => {
    const v: unknown = input.port
    if (v === undefined) return undefined
    const items: ReadonlyArray<unknown> = typeof v === "string" ? v.split(",") : Array.isArray(v) ? v : [v]
    if (items.length === 0 || items.every((p) => p === "")) return undefined
    return items.map((p) => {
      if (p === "") return undefined
      const n = typeof p === "number" || typeof p === "string" ? internal.parsePort(p) : undefined
      return n !== undefined ? n : bad("port", `invalid port number: ${describeValue(p)}`)
    })
  }
  const secret = (key: "password" | "sslpassword"): Redacted.Redacted<string> | undefined => {
    const v: unknown = input[key]
    if (v === undefined) return undefined
    if (typeof v === "string") return v === "" ? undefined : Redacted.make(v)
    if (Redacted.isRedacted(v)) {
      const inner: unknown = Redacted.value(v)
      if (typeof inner !== "string") return bad(key, `"${key}" must be a string or a Redacted string`)
      return inner === "" ? undefined : (v as Redacted.Redacted<string>)
    }
    return bad(key, `"${key}" must be a string or a Redacted string`)
  }
  const seconds = (key: "connectTimeout" | "keepalivesIdle"): number | undefined => {
    const v: unknown = input[key]
    if (v === undefined) return undefined
    if (Duration.isDuration(v)) {
      if (!Duration.isFinite(v)) return key === "connectTimeout" ? 0 : undefined
      return Math.ceil(Duration.toSeconds(v))
    }
    if (typeof v === "number" && Number.isInteger(v)) {
      if (key === "keepalivesIdle" && v < 0) return bad(key, `"${key}" must not be negative`)
      return v
    }
    return bad(key, `"${key}" must be a whole number of seconds or a Duration, got ${describeValue(v)}`)
  }
  const enumOf = <A extends string>(key: keyof PgConfigInput, values: ReadonlyArray<A>): A | undefined => {
    const v: unknown = input[key]
    if (v === undefined) return undefined
    return values.includes(v as A) ? (v as A) : bad(key, `invalid ${key} value: ${describeValue(v)}`)
  }
  for (const key of Object.keys(input)) {
    if (!inputKeys.has(key)) bad(key, `unknown setting "${key}"`)
  }
  if (input.keepalives !== undefined && typeof input.keepalives !== "boolean") {
    bad("keepalives", `"keepalives" must be a boolean`)
  }
  const settings: Settings = {
    host: list("host"),
    hostaddr: list("hostaddr"),
    port: ports(),
    database: str("database"),
    user: str("user"),
    password: secret("password"),
    passfile: str("passfile"),
    applicationName: str("applicationName"),
    fallbackApplicationName: str("fallbackApplicationName"),
    options: str("options"),
    connectTimeout: seconds("connectTimeout"),
    sslmode: enumOf("sslmode", sslModes),
    sslrootcert: str("sslrootcert"),
    sslcert: str("sslcert"),
    sslkey: str("sslkey"),
    sslpassword: secret("sslpassword"),
    targetSessionAttrs: enumOf("targetSessionAttrs", targetSessionAttrsValues),
    loadBalanceHosts: enumOf("loadBalanceHosts", loadBalanceValues),
    keepalives: input.keepalives,
    keepalivesIdle: seconds("keepalivesIdle"),
    channelBinding: enumOf("channelBinding", channelBindingValues)
  }
  return settings
}

// ---------------------------------------------------------------------------
// Environment
// ---------------------------------------------------------------------------

const environmentConfig = Config.all(
  Object.fromEntries(environment.map(([name]) => [name, Config.option(Config.String(name))]))
)

/** Reads the `PG*` variables through the current `ConfigProvider`. */
const readEnvironment: Effect.Effect<PgConfigInput, PgConfigError> = Effect.flatMap(
  Effect.mapError(
    environmentConfig,
    (error) => new PgConfigError({ message: `could not read the PG* environment variables: ${error.message}` })
  ),
  (values) =>
    fromAttempt(() => {
      const entries: Array<internal.RawEntry> = []
      for (const [name, key] of environment) {
        const value = values[name]
        if (value !== undefined && Option.isSome(value)) entries.push({ key, value: value.value, label: name })
      }
      return inputFromEntries(entries)
    })
)

const osUser = (): string | undefined => {
  try {
    const name = Os.userInfo().username
    return name === "" ? undefined : name
  } catch {
    return undefined
  }
}

// ---------------------------------------------------------------------------
// Resolution
// ---------------------------------------------------------------------------

const resolve = (layers: ReadonlyArray<Settings>): PgConfig => {
  const pick = <K extends keyof Settings>(key: K): Settings[K] => {
    for (const layer of layers) {
      if (layer[key] !== undefined) return layer[key]
    }
    return undefined
  }
  const hostList = pick("host")
  const hostaddrList = pick("hostaddr")
  const portList = pick("port")
  if (hostList !== undefined && hostaddrList !== undefined && hostList.length !== hostaddrList.length) {
    internal.fail(`could not match ${hostList.length} host names to ${hostaddrList.length} hostaddr values`, "hostaddr")
  }
  const count = hostList?.length ?? hostaddrList?.length ?? 1
  if (portList !== undefined && portList.length !== 1 && portList.length !== count) {
    internal.fail(`could not match ${portList.length} port numbers to ${count} hosts`, "port")
  }
  const hosts: Array<HostSpec> = []
  for (let i = 0; i < count; i++) {
    const name = hostList?.[i] ?? ""
    const addr = hostaddrList?.[i] || undefined
    const port = (portList === undefined ? undefined : portList.length === 1 ? portList[0] : portList[i]) ?? defaultPort
    const host = name !== "" ? name : addr ?? defaultHost
    hosts.push(addr === undefined ? { host, port } : { host, port, hostaddr: addr })
  }
  const user = pick("user") ?? osUser()
  if (user === undefined) {
    internal.fail(`could not determine the user name to connect as: set "user" or PGUSER`, "user")
  }
  const timeout = pick("connectTimeout")
  return {
    hosts,
    database: pick("database") ?? user,
    user,
    password: pick("password"),
    passfile: pick("passfile"),
    applicationName: pick("applicationName") ?? pick("fallbackApplicationName"),
    options: pick("options"),
    connectTimeout: timeout === undefined || timeout <= 0 ? undefined : Math.max(timeout, 2),
    sslmode: pick("sslmode") ?? "prefer",
    sslrootcert: pick("sslrootcert"),
    sslcert: pick("sslcert"),
    sslkey: pick("sslkey"),
    sslpassword: pick("sslpassword"),
    targetSessionAttrs: pick("targetSessionAttrs") ?? "any",
    loadBalanceHosts: pick("loadBalanceHosts") ?? "disable",
    keepalives: pick("keepalives") ?? true,
    keepalivesIdle: pick("keepalivesIdle"),
    channelBinding: pick("channelBinding") ?? "prefer"
  }
}

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

// ---------------------------------------------------------------------------
// Password file
// ---------------------------------------------------------------------------

/**
 * The password file libpq would read when `passfile` is not set:
 * `~/.pgpass`, or `%APPDATA%\postgresql\pgpass.conf` on Windows.
 *
 * @example
 * ```ts
 * PgConfig.defaultPassfile() // "/home/me/.pgpass"
 * ```
 *
 * @since 0.1.0
 * @category password
 */
export const defaultPassfile = (): string =>
  process.platform === "win32"
    ? Path.join(process.env.APPDATA ?? Os.homedir(), "postgresql", "pgpass.conf")
    : Path.join(Os.homedir(), ".pgpass")

type PassfileRead =
  | { readonly _tag: "Content"; readonly content: string }
  | { readonly _tag: "Missing" }
  | { readonly _tag: "Ignored"; readonly reason: string }

const readPassfile = (file: string): Effect.Effect<PassfileRead> =>
  Effect.promise(async (): Promise<PassfileRead> => {
    try {
      const stat = await Fs.stat(file)
      if (!stat.isFile()) return { _tag: "Ignored", reason: `password file "${file}" is not a plain file` }
      if (process.platform !== "win32" && (stat.mode & 0o077) !== 0) {
        return {
          _tag: "Ignored",
          reason: `password file "${file}" has group or world access; permissions should be u=rw (0600) or less`
        }
      }
      return { _tag: "Content", content: await Fs.readFile(file, "utf8") }
    } catch (error) {
      const code = (error as { readonly code?: unknown } | null)?.code
      if (code === "ENOENT" || code === "ENOTDIR") return { _tag: "Missing" }
      return { _tag: "Ignored", reason: `could not read password file "${file}": ${String(code ?? error)}` }
    }
  })

/**
 * The password to send to `host`: the config's explicit password, else the
 * first matching line of the password file (`config.passfile`, else
 * {@link defaultPassfile}).
 *
 * The file has libpq's format, one `hostname:port:database:username:password`
 * per line; `*` matches anything; `\:` and `\\` escape; lines starting with
 * `#` are comments. The hostname matched is the host name, else the
 * `hostaddr`; for a Unix-socket host both `localhost` and the socket
 * directory match. On POSIX systems a file with any group or world
 * permission is ignored with a logged warning, as libpq does. A missing or
 * unreadable file gives `undefined`, never an error.
 *
 * @example
 * ```ts
 * const config = yield* PgConfig.make("host=db dbname=app user=me")
 * const password = yield* PgConfig.passwordFor(config, config.hosts[0]) // from ~/.pgpass, or undefined
 * ```
 *
 * @since 0.1.0
 * @category password
 */
export const passwordFor: (
  config: PgConfig,
  host: HostSpec
) => Effect.Effect<Redacted.Redacted<string> | undefined> = Effect.fnUntraced(function*(
  config: PgConfig,
  host: HostSpec
) {
  if (config.password !== undefined) return config.password
  const file = config.passfile ?? defaultPassfile()
  const read = yield* readPassfile(file)
  if (read._tag === "Missing") return undefined
  if (read._tag === "Ignored") {
    yield* Effect.logWarning(read.reason)
    return undefined
  }
  const hostname = host.host !== "" ? host.host : host.hostaddr ?? defaultHost
  const hostnames = internal.isUnixSocketPath(hostname) ? [defaultHost, hostname] : [hostname]
  const password = internal.lookupPgpass(
    internal.parsePgpass(read.content),
    hostnames,
    String(host.port),
    config.database,
    config.user
  )
  return password === undefined || password === "" ? undefined : Redacted.make(password)
})

// ---------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------

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
    if (value !== undefined) parts.push(`${key}=${internal.quoteValue(String(value))}`)
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
  host.hostaddr === undefined && internal.isUnixSocketPath(host.host)
