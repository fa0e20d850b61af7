/**
 * Which PostgreSQL servers the suite runs against (one vitest project per target).
 *
 * - `pg18`: `DATABASE_URL` when set, otherwise an embedded PostgreSQL 18 started by
 *   `test/global-setup.ts` for the whole run.
 * - `pg15`: the machine's PostgreSQL at `postgresql://postgres@127.0.0.1:5432/test`, only when
 *   `DATABASE_URL` is unset and 127.0.0.1:5432 accepts a TCP connection within 300 ms.
 *
 * `PGFX_TEST_TARGETS=pg18` (a comma list) restricts the targets; naming a target that is not
 * available is an error.
 */
import * as net from "node:net"

/** A test target: its project name and its server URL (`undefined`: start an embedded server). */
export interface Target {
  readonly name: string
  readonly url: string | undefined
}

/** The machine's PostgreSQL 15 (trust auth). */
export const localPg15Url = "postgresql://postgres@127.0.0.1:5432/test"

/** Whether host:port accepts a TCP connection within `timeoutMs`. */
export const tcpAnswers = (host: string, port: number, timeoutMs = 300): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = net.connect({ host, port })
    const done = (ok: boolean): void => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(timeoutMs, () => done(false))
    socket.once("connect", () => done(true))
    socket.once("error", () => done(false))
  })

/** Resolve the targets from the environment (`DATABASE_URL`, `PGFX_TEST_TARGETS`). */
export const resolveTargets = async (env: NodeJS.ProcessEnv = process.env): Promise<ReadonlyArray<Target>> => {
  const databaseUrl = env.DATABASE_URL !== undefined && env.DATABASE_URL !== "" ? env.DATABASE_URL : undefined
  const available: Array<Target> = [{ name: "pg18", url: databaseUrl }]
  if (databaseUrl === undefined && (await tcpAnswers("127.0.0.1", 5432))) {
    available.push({ name: "pg15", url: localPg15Url })
  }
  const wanted = (env.PGFX_TEST_TARGETS ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "")
  if (wanted.length === 0) return available
  const missing = wanted.filter((name) => !available.some((t) => t.name === name))
  if (missing.length > 0) {
    throw new Error(
      `PGFX_TEST_TARGETS names unavailable target(s): ${missing.join(", ")} (available: ${available.map((t) => t.name).join(", ")}` +
        `${databaseUrl !== undefined ? "; pg15 is not used when DATABASE_URL is set" : ""})`
    )
  }
  return available.filter((t) => wanted.includes(t.name))
}
