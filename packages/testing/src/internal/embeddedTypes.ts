/**
 * The embedded server's options and handle (re-exported by `EmbeddedServer`).
 */
import type { Effect } from "effect"

/** A pg_hba.conf authentication method. */
export type AuthMethod = "trust" | "reject" | "password" | "md5" | "scram-sha-256" | "cert"

/** A structured pg_hba.conf rule; rendered as `type database user [address] method [options]`. */
export interface HbaRule {
  /** `host` (default), `hostssl`, `hostnossl` or `local` (Unix socket). */
  readonly type?: "host" | "hostssl" | "hostnossl" | "local"
  /** Default `all`. */
  readonly database?: string
  /** A role name, `all`, or `+group`. */
  readonly user: string
  /** Default `all` (any address; the server only listens on loopback). Ignored for `local`. */
  readonly address?: string
  /** How matching connections authenticate. */
  readonly method: AuthMethod
  /** Extra `name=value` options, e.g. `clientcert=verify-full`. */
  readonly options?: string
}

/** A login role created after start. */
export interface ServerUser {
  /** The role's name. */
  readonly name: string
  /** Its password. */
  readonly password: string
  /** How the password is stored (`password_encryption`). Default `scram-sha-256`. */
  readonly passwordEncryption?: "md5" | "scram-sha-256"
  /** Default false. */
  readonly superuser?: boolean
}

/** How to set up an embedded server. Every field is optional. */
export interface EmbeddedServerOptions {
  /**
   * pg_hba.conf lines (raw strings or {@link HbaRule}s), placed BEFORE the default rules; the
   * first matching line wins. The default rules are `local all all M`, `host all all
   * 127.0.0.1/32 M` and `host all all ::1/128 M` with M = {@link defaultAuthMethod}.
   */
  readonly hba?: ReadonlyArray<string | HbaRule>
  /** Method of the default pg_hba rules. Default `scram-sha-256`. */
  readonly defaultAuthMethod?: AuthMethod
  /** Extra postgresql.conf settings (appended, so they override the test defaults). */
  readonly postgresqlConf?: Readonly<Record<string, string | number | boolean>>
  /** Roles to create once the server is up (as the superuser, over TCP). */
  readonly users?: ReadonlyArray<ServerUser>
  /**
   * Generate (with the `openssl` CLI) a self-signed CA and a server certificate for
   * `localhost`, 127.0.0.1 and ::1, and turn `ssl` on. The CA is at {@link EmbeddedServer.caFile}.
   */
  readonly ssl?: boolean
  /** Superuser (`postgres`) password. Default: random. */
  readonly password?: string
  /** Prefix of the temp directory name (for humans). Default `pgfx-pg`. */
  readonly label?: string
  /**
   * The loopback address to listen on and connect to, e.g. `127.0.0.2` for a second server on the
   * same port as another one (a DNS switch between two addresses). Default `127.0.0.1` (and the
   * server also listens on ::1).
   */
  readonly host?: string
  /** The TCP port. Default: a free one. */
  readonly port?: number
}

/** A running (or stopped) embedded server. */
export interface EmbeddedServer {
  /** Superuser URL: `postgresql://postgres:<password>@127.0.0.1:<port>/postgres`. */
  readonly url: string
  /** `127.0.0.1`. */
  readonly host: string
  /** The TCP port it listens on. */
  readonly port: number
  /** Always `postgres`. */
  readonly user: string
  /** The superuser's password. */
  readonly password: string
  /** Always `postgres`. */
  readonly database: string
  /** The temp directory holding everything; deleted by `remove`. */
  readonly baseDir: string
  /** PGDATA. */
  readonly dataDir: string
  /** Directory of the Unix socket (`host=<socketDir>`). */
  readonly socketDir: string
  /** The CA certificate (PEM) when started with `ssl: true`. */
  readonly caFile: string | undefined
  /** A URL for another user and/or database on this server (values are percent-encoded). */
  readonly urlFor: (options: {
    readonly user?: string
    readonly password?: string
    readonly database?: string
    readonly host?: string
    readonly params?: Readonly<Record<string, string>>
  }) => string
  /** Whether the server process is running. */
  readonly running: () => boolean
  /** The postmaster's pid while running. */
  readonly pid: () => number | undefined
  /** The last ~500 lines the server (and initdb) logged. */
  readonly logs: () => string
  /** Run SQL as the superuser on database `postgres` (a fresh connection per call). */
  readonly query: (
    sql: string,
    params?: ReadonlyArray<unknown>
  ) => Effect.Effect<ReadonlyArray<Record<string, unknown>>, Error>
  /** Start again after `stop`/`kill` (same port, same data). */
  readonly start: Effect.Effect<void, Error>
  /** Fast shutdown (SIGINT); waits for the process to exit. No-op when not running. */
  readonly stop: Effect.Effect<void, Error>
  /** `stop` then `start`. */
  readonly restart: Effect.Effect<void, Error>
  /** Re-read postgresql.conf / pg_hba.conf (SIGHUP); waits briefly for the reload to apply. */
  readonly reload: Effect.Effect<void, Error>
  /**
   * Signal the postmaster and wait for it to exit. Default `SIGQUIT` (immediate shutdown: every
   * session is cut, crash recovery on next start); `SIGKILL` leaves orphaned backends behind
   * until they notice.
   */
  readonly kill: (signal?: NodeJS.Signals) => Effect.Effect<void, Error>
  /** Overwrite pg_hba.conf with these rules followed by the defaults (then call `reload`). */
  readonly writeHba: (rules: ReadonlyArray<string | HbaRule>) => Effect.Effect<void, Error>
  /**
   * Promote a standby to primary (`pg_promote`, waiting until it accepts writes). Fails on a
   * server that is not a standby.
   */
  readonly promote: Effect.Effect<void, Error>
  /**
   * Restart this server as a hot standby of `primary` (`standby.signal` + `primary_conninfo`,
   * timeline `latest`) — e.g. to demote a former primary after a failover. It serves read-only
   * sessions once it has started; it streams from `primary` only if its WAL did not go past the
   * promotion point (stop it before promoting the other one for a clean follow).
   */
  readonly follow: (primary: EmbeddedServer) => Effect.Effect<void, Error>
  /** Stop and delete everything. Idempotent; never fails. */
  readonly remove: Effect.Effect<void>
}
