/**
 * A TCP proxy that adds a fixed delay to every chunk in each direction: the
 * network between client and database that the seed's 10× came from.
 *
 * Run as its own process so its work does not share the client's event loop:
 *   tsx bench/proxy.ts <targetHost> <targetPort> <delayMs>
 * It listens on a free port of 127.0.0.1 and prints `{"port": N}` on stdout.
 * Order is kept per direction; a chunk leaves `delayMs` after it arrived
 * (timer granularity makes it ~1.0–1.3 ms for 1 ms). Backpressure is
 * honoured. It exits when its stdin closes (the parent died or closed it).
 */
import * as net from "node:net"

const relay = (from: net.Socket, to: net.Socket, delayMs: number): void => {
  const queue: Array<{ readonly due: number; readonly chunk: Buffer }> = []
  let head = 0
  let timer: NodeJS.Timeout | undefined
  let ended = false
  const flush = (): void => {
    timer = undefined
    const now = performance.now()
    while (head < queue.length && queue[head].due <= now + 0.05) {
      const { chunk } = queue[head++]
      if (!to.write(chunk) && !from.isPaused()) {
        from.pause()
        to.once("drain", () => from.resume())
      }
    }
    if (head === queue.length) {
      queue.length = 0
      head = 0
      if (ended) to.end()
    } else {
      timer = setTimeout(flush, Math.max(0, queue[head].due - now))
    }
  }
  from.on("data", (chunk: Buffer) => {
    queue.push({ due: performance.now() + delayMs, chunk })
    if (timer === undefined) timer = setTimeout(flush, delayMs)
  })
  from.on("end", () => {
    ended = true
    if (timer === undefined && head === queue.length) to.end()
  })
}

export const startProxy = (targetHost: string, targetPort: number, delayMs: number): Promise<net.Server> =>
  new Promise((resolve, reject) => {
    const server = net.createServer((client) => {
      client.setNoDelay(true)
      const upstream = net.connect({ host: targetHost, port: targetPort })
      upstream.setNoDelay(true)
      const destroy = () => {
        client.destroy()
        upstream.destroy()
      }
      client.on("error", destroy)
      upstream.on("error", destroy)
      client.on("close", () => upstream.destroy())
      upstream.on("close", () => client.destroy())
      relay(client, upstream, delayMs)
      relay(upstream, client, delayMs)
    })
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => resolve(server))
  })

const isMain = process.argv[1] !== undefined && /proxy\.ts$/.test(process.argv[1])
if (isMain) {
  const [host = "127.0.0.1", port = "5432", delay = "1"] = process.argv.slice(2)
  const server = await startProxy(host, Number(port), Number(delay))
  const address = server.address() as net.AddressInfo
  process.stdout.write(`${JSON.stringify({ port: address.port })}\n`)
  process.stdin.resume()
  process.stdin.on("end", () => process.exit(0))
  process.stdin.on("close", () => process.exit(0))
}
