/**
 * Child processes of the harness (the latency proxy, the W5 RSS runs): the
 * same Node, with the Node 20 polyfills and tsx loaded.
 */
import { spawn, type ChildProcess } from "node:child_process"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

export const benchDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
export const rootDir = path.resolve(benchDir, "..")

/** Node arguments that run a TypeScript file of the bench. */
export const tsNodeArgs = (file: string, args: ReadonlyArray<string>): Array<string> => [
  "--import",
  path.join(rootDir, "scripts/node20-polyfills.mjs"),
  "--import",
  "tsx",
  path.join(benchDir, file),
  ...args
]

export const spawnTs = (file: string, args: ReadonlyArray<string>): ChildProcess =>
  spawn(process.execPath, tsNodeArgs(file, args), { cwd: rootDir, stdio: ["pipe", "pipe", "pipe"] })

/** Runs a child to completion; resolves with its stdout, rejects on a non-zero exit. */
export const runTs = (file: string, args: ReadonlyArray<string>, timeoutMs: number): Promise<string> =>
  runChild(spawnTs(file, args), file, timeoutMs)

/** Runs an esbuild bundle (lib/bundle.ts) with plain node and the Node 20 polyfills. */
export const runBundle = (bundleFile: string, args: ReadonlyArray<string>, timeoutMs: number): Promise<string> =>
  runChild(
    spawn(process.execPath, ["--import", path.join(rootDir, "scripts/node20-polyfills.mjs"), bundleFile, ...args], {
      cwd: rootDir,
      stdio: ["pipe", "pipe", "pipe"]
    }),
    path.basename(bundleFile),
    timeoutMs
  )

const runChild = (child: ChildProcess, file: string, timeoutMs: number): Promise<string> =>
  new Promise((resolve, reject) => {
    let out = ""
    let err = ""
    child.stdout!.on("data", (chunk) => (out += chunk))
    child.stderr!.on("data", (chunk) => (err += chunk))
    child.stdin!.end()
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs)
    child.on("close", (code, signal) => {
      clearTimeout(timer)
      if (code === 0) resolve(out)
      else reject(new Error(`${file} exited with ${signal ?? code}: ${err.trim().split("\n").slice(-3).join(" | ")}`))
    })
  })

/** Starts the latency proxy; `stop` ends it. */
export const startProxyProcess = (
  host: string,
  port: number,
  delayMs: number
): Promise<{ readonly port: number; readonly stop: () => void }> =>
  new Promise((resolve, reject) => {
    const child = spawnTs("proxy.ts", [host, String(port), String(delayMs)])
    let out = ""
    let err = ""
    child.stderr!.on("data", (chunk) => (err += chunk))
    child.stdout!.on("data", (chunk) => {
      out += chunk
      const line = out.split("\n")[0]
      if (out.includes("\n")) {
        try {
          const { port: proxyPort } = JSON.parse(line) as { port: number }
          resolve({
            port: proxyPort,
            stop: () => {
              child.stdin!.end()
              child.kill("SIGTERM")
            }
          })
        } catch (error) {
          reject(error)
        }
      }
    })
    child.on("exit", (code) => reject(new Error(`proxy exited (${code}): ${err.trim()}`)))
  })
