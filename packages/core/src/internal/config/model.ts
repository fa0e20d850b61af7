/**
 * The settings vocabulary of `PgConfig`: the resolved config, the input it
 * is made from, the libpq enumerations and the error.
 */
import * as Data from "effect/Data"
import type * as Duration from "effect/Duration"
import type * as Redacted from "effect/Redacted"

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

/** The values each enumerated keyword accepts. */
export const sslModes: ReadonlyArray<SslMode> = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]
export const targetSessionAttrsValues: ReadonlyArray<TargetSessionAttrs> = [
  "any",
  "read-write",
  "read-only",
  "primary",
  "standby",
  "prefer-standby"
]
export const loadBalanceValues: ReadonlyArray<LoadBalanceHosts> = ["disable", "random"]
export const channelBindingValues: ReadonlyArray<ChannelBinding> = ["disable", "prefer", "require"]
