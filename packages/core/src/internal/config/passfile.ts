/**
 * The password file (`~/.pgpass`): where it is, and the password it gives
 * a host, port, database and user.
 */
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Fs from "node:fs/promises"
import * as Os from "node:os"
import * as Path from "node:path"
import * as conninfo from "../conninfo.ts"
import { defaultHost, type HostSpec, type PgConfig } from "./model.ts"

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
  const hostnames = conninfo.isUnixSocketPath(hostname) ? [defaultHost, hostname] : [hostname]
  const password = conninfo.lookupPgpass(
    conninfo.parsePgpass(read.content),
    hostnames,
    String(host.port),
    config.database,
    config.user
  )
  return password === undefined || password === "" ? undefined : Redacted.make(password)
})
