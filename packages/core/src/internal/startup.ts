/**
 * The startup conversation as an I/O-free state machine: it is fed backend
 * messages and answers with the bytes to send, until the server is ready or
 * refuses. Authentication: trust, cleartext, MD5, SCRAM-SHA-256 and, over
 * TLS, SCRAM-SHA-256-PLUS (channel binding, libpq's `channel_binding`).
 */
import * as PgAuth from "@effect/sql-pg/PgAuth"
import * as PgProtocol from "@effect/sql-pg/PgProtocol"
import * as Result from "effect/Result"
import { randomBytes } from "node:crypto"
import type { ChannelBinding } from "../PgConfig.ts"
import { ConnectionError, ProtocolError } from "../PgError.ts"
import { toDiagnostic } from "./diagnostic.ts"
import * as Scram from "./scram.ts"

/** What the server told us during startup. */
export interface StartupResult {
  readonly pid: number
  readonly secret: number
  readonly parameters: Map<string, string>
  readonly transactionStatus: PgProtocol.TransactionStatus
}

/** One step of the conversation. */
export type StartupStep =
  | { readonly _tag: "Send"; readonly bytes: Uint8Array }
  | { readonly _tag: "Continue" }
  | { readonly _tag: "Ready"; readonly result: StartupResult }
  | { readonly _tag: "Failed"; readonly error: ConnectionError | ProtocolError }

const continue_: StartupStep = { _tag: "Continue" }

export interface StartupOptions {
  readonly user: string
  readonly database: string
  /** Resolved lazily: only asked for when the server wants a password. */
  readonly password: () => string | undefined
  readonly parameters: Readonly<Record<string, string | undefined>>
  readonly address: string
  /** libpq's `channel_binding`; default `prefer`. */
  readonly channelBinding?: ChannelBinding | undefined
  /** The server's TLS certificate (DER) when the connection is encrypted. */
  readonly serverCertificate?: (() => Uint8Array | undefined) | undefined
  /** Fixed SCRAM client nonce, for byte-vector tests only. */
  readonly nonce?: string | undefined
}

export interface StartupMachine {
  /** The StartupMessage to send first. */
  readonly start: () => Uint8Array
  readonly onMessage: (message: PgProtocol.BackendMessage<unknown>) => StartupStep
}

export const makeStartup = (options: StartupOptions): StartupMachine => {
  const parameters = new Map<string, string>()
  let pid = 0
  let secret = 0
  const channelBinding = options.channelBinding ?? "prefer"
  let scram: { readonly _tag: "First"; readonly state: Scram.ScramFirst } | {
    readonly _tag: "Final"
    readonly state: Scram.ScramFinal
  } | { readonly _tag: "Done" } | undefined
  /** Whether the SCRAM exchange bound the TLS channel (SCRAM-SHA-256-PLUS). */
  let bound = false
  let authenticated = false

  const failed = (
    reason: ConnectionError["reason"],
    message: string,
    extra?: Partial<ConstructorParameters<typeof ConnectionError>[0]>
  ): StartupStep => ({
    _tag: "Failed",
    error: new ConnectionError({ reason, message, address: options.address, ...extra })
  })

  const needPassword = (method: string): string | StartupStep => {
    const password = options.password()
    if (password === undefined) {
      return failed(
        "Authentication",
        `the server requested ${method} authentication for user "${options.user}" but no password was supplied`
      )
    }
    return password
  }

  const onMessage = (message: PgProtocol.BackendMessage<unknown>): StartupStep => {
    switch (message._tag) {
      case "AuthenticationOk":
        // A server that skips the SASL final message never proved it knows the password.
        if (scram !== undefined && scram._tag !== "Done") return protocol("AuthenticationOk before the SASL exchange completed")
        if (channelBinding === "require" && !bound) {
          return failed(
            "Authentication",
            "channel binding required, but the server authenticated the client without it (channel_binding=require)"
          )
        }
        authenticated = true
        return continue_
      case "AuthenticationCleartextPassword": {
        // never hand a password to a server that would not bind the channel
        if (channelBinding === "require") return bindingRequired("cleartext password")
        const password = needPassword("cleartext password")
        if (typeof password !== "string") return password
        return { _tag: "Send", bytes: PgProtocol.encodePasswordMessage({ password }) }
      }
      case "AuthenticationMD5Password": {
        // never hand a password to a server that would not bind the channel
        if (channelBinding === "require") return bindingRequired("MD5")
        const password = needPassword("MD5")
        if (typeof password !== "string") return password
        const hashed = PgAuth.md5Password({ user: options.user, password, salt: message.salt })
        if (Result.isFailure(hashed)) return failed("Authentication", hashed.failure.message)
        return { _tag: "Send", bytes: PgProtocol.encodePasswordMessage({ password: hashed.success }) }
      }
      case "AuthenticationSASL": {
        if (scram !== undefined) return protocol("a second SASL authentication request")
        const certificate = channelBinding === "disable" ? undefined : options.serverCertificate?.()
        const hashed = scramGuard(() => certificate === undefined ? undefined : Scram.serverEndPoint(certificate))
        if (!("value" in hashed)) return hashed
        const endPoint = hashed.value
        const plus = endPoint !== undefined && message.mechanisms.includes(Scram.SCRAM_SHA_256_PLUS)
        if (!plus && channelBinding === "require") {
          return failed(
            "Authentication",
            certificate === undefined
              ? "channel binding required (channel_binding=require) but the connection is not encrypted (use sslmode=require or stronger)"
              : `channel binding required (channel_binding=require) but the server offers only ${message.mechanisms.join(", ") || "no mechanism"}`
          )
        }
        if (!plus && !message.mechanisms.includes(Scram.SCRAM_SHA_256)) {
          return failed(
            "Authentication",
            `the server offers SASL mechanisms ${message.mechanisms.join(", ")}, none of which pgfx supports`
          )
        }
        const password = needPassword("SCRAM-SHA-256")
        if (typeof password !== "string") return password
        const binding: Scram.Binding = plus
          ? { _tag: "p", serverEndPoint: endPoint }
          // "y": we could bind but the server did not offer it over TLS (it detects a downgrade)
          : certificate !== undefined ? { _tag: "y" } : { _tag: "n" }
        const first = scramGuard(() => Scram.start(password, options.nonce ?? randomBytes(18).toString("base64"), binding))
        if (!("value" in first)) return first
        scram = { _tag: "First", state: first.value.state }
        bound = plus
        return {
          _tag: "Send",
          bytes: PgProtocol.encodeSASLInitialResponse({
            mechanism: plus ? Scram.SCRAM_SHA_256_PLUS : Scram.SCRAM_SHA_256,
            initialResponse: first.value.response
          })
        }
      }
      case "AuthenticationSASLContinue": {
        if (scram?._tag !== "First") return protocol("unexpected SASL continue message")
        const state = scram.state
        const next = scramGuard(() => Scram.answer(state, message.data))
        if (!("value" in next)) return next
        scram = { _tag: "Final", state: next.value.state }
        return { _tag: "Send", bytes: PgProtocol.encodeSASLResponse({ data: next.value.response }) }
      }
      case "AuthenticationSASLFinal": {
        if (scram?._tag !== "Final") return protocol("unexpected SASL final message")
        const state = scram.state
        const verified = scramGuard(() => Scram.verify(state, message.data))
        if (!("value" in verified)) return verified
        scram = { _tag: "Done" }
        return continue_
      }
      case "AuthenticationUnsupported":
        return failed(
          "Authentication",
          `the server requested an authentication method pgfx does not support (code ${message.method})`
        )
      case "ParameterStatus":
        parameters.set(message.name, message.value)
        return continue_
      case "BackendKeyData":
        pid = message.pid
        secret = message.secret
        return continue_
      case "NegotiateProtocolVersion":
      case "NoticeResponse":
        return continue_
      case "ReadyForQuery":
        if (!authenticated) return protocol("ReadyForQuery before authentication completed")
        return { _tag: "Ready", result: { pid, secret, parameters, transactionStatus: message.status } }
      case "ErrorResponse": {
        const diagnostic = toDiagnostic(message.fields)
        const code = diagnostic.sqlState
        const reason = code.startsWith("28") || code === "3D000"
          ? "Authentication"
          : "Rejected"
        return failed(reason, diagnostic.message, { sqlState: code, diagnostic })
      }
      default:
        return protocol(`unexpected ${message._tag} during startup`)
    }
  }

  const bindingRequired = (method: string) =>
    failed(
      "Authentication",
      `channel binding required (channel_binding=require), but the server asked for ${method} authentication`
    )

  /** Runs a SCRAM step; its refusals become typed authentication failures. */
  const scramGuard = <A>(step: () => A): { readonly value: A } | StartupStep => {
    try {
      return { value: step() }
    } catch (error) {
      if (error instanceof Scram.ScramError) return failed("Authentication", error.message)
      throw error
    }
  }

  const protocol = (text: string): StartupStep => ({
    _tag: "Failed",
    error: new ProtocolError({ message: `${text} (is ${options.address} a PostgreSQL server?)` })
  })

  return {
    start: () => {
      const startup: Record<string, string | undefined> = {
        user: options.user,
        database: options.database,
        client_encoding: "UTF8",
        ...options.parameters
      }
      return PgProtocol.encodeStartupMessage(startup as PgProtocol.StartupParameters)
    },
    onMessage
  }
}
