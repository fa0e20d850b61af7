/**
 * Opening the transport for one connection attempt: TCP or a Unix-domain
 * socket, then the SSLRequest negotiation and TLS upgrade. Every step is
 * interruptible and destroys its socket when interrupted.
 */
import * as PgProtocol from "@effect/sql-pg/PgProtocol"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import { readFileSync } from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import * as tls from "node:tls"
import type { SslMode } from "../PgConfig.ts"
import { ConnectionError, ProtocolError } from "../PgError.ts"

/** One concrete address to try. */
export interface Endpoint {
  /** Host name as configured (for TLS verification and messages). */
  readonly host: string
  /** What to connect to: an IP address, a name, or a socket file path. */
  readonly address: string
  readonly port: number
  readonly unix: boolean
}

export const describeEndpoint = (endpoint: Endpoint): string =>
  endpoint.unix ? endpoint.address : `${endpoint.address.includes(":") ? `[${endpoint.address}]` : endpoint.address}:${endpoint.port}`

const connectError = (endpoint: Endpoint, cause: NodeJS.ErrnoException): ConnectionError => {
  const where = describeEndpoint(endpoint)
  switch (cause.code) {
    case "ECONNREFUSED":
    case "ENOENT":
      return new ConnectionError({
        reason: "Refused",
        message: `connection to ${where} refused: is the server running and accepting connections?`,
        address: where,
        cause
      })
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return new ConnectionError({
        reason: "UnknownHost",
        message: `could not translate host name "${endpoint.host}" to an address`,
        address: where,
        cause
      })
    default:
      return new ConnectionError({
        reason: "Closed",
        message: `connection to ${where} failed: ${cause.message}`,
        address: where,
        cause
      })
  }
}

/** Connects a socket, failing with a typed error; destroys it on interruption. */
export const openSocket = (endpoint: Endpoint, keepAlive: { enable: boolean; idleSeconds?: number | undefined }) =>
  Effect.callback<net.Socket, ConnectionError>((resume) => {
    const socket = endpoint.unix
      ? net.connect({ path: endpoint.address })
      : net.connect({ host: endpoint.address, port: endpoint.port })
    const onError = (cause: NodeJS.ErrnoException) => resume(Effect.fail(connectError(endpoint, cause)))
    socket.once("error", onError)
    socket.once("connect", () => {
      socket.off("error", onError)
      socket.setNoDelay(true)
      if (keepAlive.enable && !endpoint.unix) {
        socket.setKeepAlive(true, (keepAlive.idleSeconds ?? 60) * 1000)
      }
      resume(Effect.succeed(socket))
    })
    return Effect.sync(() => socket.destroy())
  })

/** Reads the single-byte answer to SSLRequest; more bytes than one is an attack (CVE-2021-23222). */
const sslResponse = (socket: net.Socket, where: string) =>
  Effect.callback<"S" | "N", ConnectionError | ProtocolError>((resume) => {
    const cleanup = () => {
      socket.off("data", onData)
      socket.off("error", onError)
      socket.off("close", onClose)
    }
    const onData = (chunk: Buffer) => {
      cleanup()
      socket.pause()
      if (chunk.length !== 1) {
        return resume(Effect.fail(new ProtocolError({
          message: `unexpected data after the SSLRequest answer from ${where} (is it a PostgreSQL server?)`
        })))
      }
      const decoded = PgProtocol.decodeSslResponse(chunk[0])
      resume(
        Result.isSuccess(decoded)
          ? Effect.succeed(decoded.success)
          : Effect.fail(new ProtocolError({
            message: `invalid answer to SSLRequest from ${where} (is it a PostgreSQL server?)`,
            cause: decoded.failure
          }))
      )
    }
    const onError = (cause: Error) => {
      cleanup()
      resume(Effect.fail(new ConnectionError({ reason: "Closed", message: cause.message, address: where, cause })))
    }
    const onClose = () => {
      cleanup()
      resume(Effect.fail(
        new ConnectionError({ reason: "Closed", message: `${where} closed the connection during SSL negotiation`, address: where })
      ))
    }
    socket.on("data", onData)
    socket.on("error", onError)
    socket.on("close", onClose)
    socket.write(PgProtocol.encodeSslRequest())
    return Effect.sync(cleanup)
  })

export interface TlsOptions {
  readonly sslmode: SslMode
  readonly sslrootcert: string | undefined
  readonly sslcert: string | undefined
  readonly sslkey: string | undefined
  readonly sslpassword: string | undefined
}

const readFile = (file: string, what: string, where: string) =>
  Effect.try({
    try: () => readFileSync(file.startsWith("~") ? path.join(os.homedir(), file.slice(1)) : file),
    catch: (cause) =>
      new ConnectionError({ reason: "Tls", message: `could not read ${what} file "${file}"`, address: where, cause })
  })

const upgrade = (socket: net.Socket, endpoint: Endpoint, options: TlsOptions) =>
  Effect.gen(function*() {
    const where = describeEndpoint(endpoint)
    const verify = options.sslmode === "verify-ca" || options.sslmode === "verify-full" ||
      (options.sslmode === "require" && options.sslrootcert !== undefined)
    const rootcert = options.sslrootcert ?? "~/.postgresql/root.crt"
    const ca = verify ? yield* readFile(rootcert, "root certificate", where) : undefined
    const cert = options.sslcert === undefined ? undefined : yield* readFile(options.sslcert, "certificate", where)
    const key = options.sslkey === undefined ? undefined : yield* readFile(options.sslkey, "key", where)
    return yield* Effect.callback<net.Socket, ConnectionError>((resume) => {
      const secure = tls.connect({
        socket,
        ca,
        cert,
        key,
        passphrase: options.sslpassword,
        rejectUnauthorized: verify,
        servername: net.isIP(endpoint.host) ? undefined : endpoint.host,
        // verify-ca checks the chain only; verify-full also the host name.
        checkServerIdentity: options.sslmode === "verify-full"
          ? (_host, certificate) => tls.checkServerIdentity(endpoint.host, certificate)
          : () => undefined
      })
      const onError = (cause: Error) =>
        resume(Effect.fail(
          new ConnectionError({
            reason: "Tls",
            message: `TLS negotiation with ${where} failed: ${cause.message}`,
            address: where,
            cause
          })
        ))
      secure.once("error", onError)
      secure.once("secureConnect", () => {
        secure.off("error", onError)
        resume(Effect.succeed(secure))
      })
      return Effect.sync(() => secure.destroy())
    })
  })

/**
 * Negotiates TLS as `sslmode` asks. Returns the socket to speak the protocol
 * on, and whether it is encrypted.
 */
export const negotiateTls = (socket: net.Socket, endpoint: Endpoint, options: TlsOptions) =>
  Effect.gen(function*() {
    const where = describeEndpoint(endpoint)
    // libpq never uses TLS on Unix-domain sockets; "allow" starts in clear.
    if (endpoint.unix || options.sslmode === "disable" || options.sslmode === "allow") {
      return { socket, encrypted: false }
    }
    const answer = yield* sslResponse(socket, where)
    socket.resume()
    if (answer === "N") {
      if (options.sslmode === "prefer") return { socket, encrypted: false }
      return yield* Effect.fail(
        new ConnectionError({
          reason: "Tls",
          message: `server ${where} does not support SSL, but sslmode=${options.sslmode} requires it`,
          address: where
        })
      )
    }
    const secure = yield* upgrade(socket, endpoint, options)
    return { socket: secure, encrypted: true }
  })
