/**
 * Removal of embedded servers when the process ends without closing their scopes: every live
 * server is killed (SIGQUIT) and its directory deleted, synchronously, on `exit`, on
 * SIGINT/SIGTERM/SIGHUP when nobody else handles the signal, and when a forked worker loses its
 * parent; a small detached watchdog shell removes it when the process is killed outright.
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"

/** A server to remove if the process ends first. */
export interface LiveServer {
  readonly baseDir: string
  readonly dataDir: string
}

const live = new Set<LiveServer>()
let exitHooksInstalled = false

/** The postmaster's pid from `postmaster.pid`, when there is one. */
export const readPostmasterPid = (dataDir: string): number | undefined => {
  try {
    const pid = Number.parseInt(fs.readFileSync(path.join(dataDir, "postmaster.pid"), "utf8").split("\n")[0] ?? "", 10)
    return Number.isFinite(pid) && pid > 0 ? pid : undefined
  } catch {
    return undefined
  }
}

export const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM"
  }
  // an exited child we have not reaped yet (the event loop is blocked) is a zombie: dead
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z"
  } catch {
    return true
  }
}

const sleepSync = (ms: number): void => {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
}

const reapSync = (server: LiveServer): void => {
  live.delete(server)
  const pid = readPostmasterPid(server.dataDir)
  if (pid !== undefined) {
    try {
      process.kill(pid, "SIGQUIT")
      for (let i = 0; i < 100 && isAlive(pid); i++) sleepSync(20)
    } catch {
      // already gone
    }
  }
  try {
    fs.rmSync(server.baseDir, { recursive: true, force: true, maxRetries: 3 })
  } catch {
    // the watchdog retries
  }
}

const reapAllSync = (): void => {
  for (const server of [...live]) reapSync(server)
}

const installExitHooks = (): void => {
  if (exitHooksInstalled) return
  exitHooksInstalled = true
  process.on("exit", reapAllSync)
  // a forked worker (vitest's `forks` pool) whose parent died keeps running its current test;
  // its servers go as soon as the IPC channel drops
  if (process.connected) process.once("disconnect", reapAllSync)
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    const onSignal = (): void => {
      // Someone else (vitest, NodeRuntime) handles the signal: let them shut down gracefully;
      // our scopes or the `exit` hook clean up. Otherwise: clean up and die by the signal.
      if (process.listenerCount(signal) > 1) return
      reapAllSync()
      process.removeListener(signal, onSignal)
      process.kill(process.pid, signal)
    }
    process.on(signal, onSignal)
  }
}

/** A detached shell that removes the server if this process dies without cleaning up (SIGKILL). */
const spawnWatchdog = (server: LiveServer): void => {
  const script = [
    // alive: exists and is not a zombie (an orphan waits to be reaped by init, sometimes seconds)
    'alive() {',
    '  kill -0 "$1" 2>/dev/null || return 1',
    '  read -r st < "/proc/$1/stat" 2>/dev/null || return 0',
    '  st=${st##*")"}; st=${st# }',
    '  case $st in Z*) return 1 ;; esac',
    '}',
    'while alive "$1" && [ -d "$2" ]; do sleep 0.5; done',
    '[ -d "$2" ] || exit 0',
    'pid=$(head -n 1 "$3/postmaster.pid" 2>/dev/null)',
    'if [ -n "$pid" ] && kill -QUIT "$pid" 2>/dev/null; then',
    '  n=0; while alive "$pid" && [ $n -lt 50 ]; do sleep 0.1; n=$((n+1)); done',
    'fi',
    'rm -rf "$2"'
  ].join("\n")
  try {
    const child = spawn("sh", ["-c", script, "pgfx-pg-watchdog", String(process.pid), server.baseDir, server.dataDir], {
      detached: true,
      stdio: "ignore"
    })
    child.on("error", () => {})
    child.unref()
  } catch {
    // no sh: the exit hooks still apply
  }
}

/** Track a server for removal at process end (hooks installed on first use, a watchdog each). */
export const track = (server: LiveServer): void => {
  installExitHooks()
  live.add(server)
  spawnWatchdog(server)
}

/** The server was removed the ordinary way. */
export const untrack = (server: LiveServer): void => {
  live.delete(server)
}
