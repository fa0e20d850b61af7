/**
 * The server broker: how the test workers of one vitest run share one embedded server that is
 * started only when the first of them needs it.
 *
 * The global setup (vitest's main process) runs a tiny HTTP endpoint on 127.0.0.1 with a random
 * token in its path; the first request starts the server (in the main process, so it outlives
 * any worker and is removed by the global teardown), later requests get the same URL.
 *
 * @internal
 */
import { execFileSync } from "node:child_process"
import { randomBytes } from "node:crypto"
import * as http from "node:http"

/** A running broker. */
export interface Broker {
  /** `http://127.0.0.1:<port>/<token>`: what workers ask (see {@link askBroker}). */
  readonly endpoint: string
  /** Whether the server was asked for (and so started, or tried to). */
  readonly started: () => boolean
  /** Stops answering. */
  readonly close: () => Promise<void>
}

/** Serves the URL `provide` resolves to, calling it once (again after a failure). */
export const startBroker = async (provide: () => Promise<string>): Promise<Broker> => {
  const token = randomBytes(16).toString("hex")
  let pending: Promise<string> | undefined
  const url = (): Promise<string> => {
    if (pending === undefined) {
      pending = provide()
      pending.catch(() => {
        pending = undefined
      })
    }
    return pending
  }
  const server = http.createServer((request, response) => {
    if (request.url !== `/${token}`) {
      response.writeHead(404).end()
      return
    }
    url().then(
      (value) => response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ url: value })),
      (error: unknown) =>
        response
          .writeHead(500, { "content-type": "application/json" })
          .end(JSON.stringify({ error: error instanceof Error ? error.message : String(error) }))
    )
  })
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => resolve())
  })
  server.unref()
  const address = server.address()
  const port = typeof address === "object" && address !== null ? address.port : 0
  return {
    endpoint: `http://127.0.0.1:${port}/${token}`,
    started: () => pending !== undefined,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      })
  }
}

const parseAnswer = (status: number | undefined, body: string): string => {
  let parsed: { readonly url?: unknown; readonly error?: unknown }
  try {
    parsed = JSON.parse(body) as typeof parsed
  } catch {
    throw new Error(`the pgfx test server broker answered ${status}: ${body.slice(0, 200)}`)
  }
  if (status === 200 && typeof parsed.url === "string") return parsed.url
  throw new Error(`the test server could not be started: ${String(parsed.error ?? body)}`)
}

/** Asks the broker for the server URL (starting the server if nobody has yet). */
export const askBroker = (endpoint: string): Promise<string> =>
  new Promise((resolve, reject) => {
    const request = http.get(endpoint, (response) => {
      let body = ""
      response.setEncoding("utf8")
      response.on("data", (chunk: string) => (body += chunk))
      response.on("end", () => {
        try {
          resolve(parseAnswer(response.statusCode, body))
        } catch (error) {
          reject(error)
        }
      })
      response.on("error", reject)
    })
    request.on("error", (error) => reject(new Error(`the pgfx test server broker is unreachable: ${error.message}`)))
  })

const syncScript = `
const http = require("node:http")
http.get(process.argv[1], (response) => {
  let body = ""
  response.setEncoding("utf8")
  response.on("data", (chunk) => (body += chunk))
  response.on("end", () => { process.stdout.write(JSON.stringify({ status: response.statusCode, body })) })
}).on("error", (error) => { process.stdout.write(JSON.stringify({ status: 0, body: JSON.stringify({ error: error.message }) })) })
`

/** {@link askBroker} for synchronous callers: runs the request in a child process. */
export const askBrokerSync = (endpoint: string): string => {
  const output = execFileSync(process.execPath, ["-e", syncScript, endpoint], { encoding: "utf8", timeout: 180_000 })
  const { body, status } = JSON.parse(output) as { readonly status: number; readonly body: string }
  return parseAnswer(status, body)
}
