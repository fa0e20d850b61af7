/**
 * The startup conversation as an I/O-free state machine: it is fed backend
 * messages and answers with the bytes to send, until the server is ready or
 * refuses. Authentication: trust, cleartext, MD5, SCRAM-SHA-256.
 */
import * as PgAuth from "@effect/sql-pg/PgAuth"
import * as PgProtocol from "@effect/sql-pg/PgProtocol"
import * as Result from "effect/Result"
import { randomBytes } from "node:crypto"
import { ConnectionError, ProtocolError } from "../PgError.ts"
import { toDiagnostic } from "./diagnostic.ts"

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
  let scram: PgAuth.ScramState | undefined
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
        authenticated = true
        return continue_
      case "AuthenticationCleartextPassword": {
        const password = needPassword("cleartext password")
        if (typeof password !== "string") return password
        return { _tag: "Send", bytes: PgProtocol.encodePasswordMessage({ password }) }
      }
      case "AuthenticationMD5Password": {
        const password = needPassword("MD5")
        if (typeof password !== "string") return password
        const hashed = PgAuth.md5Password({ user: options.user, password, salt: message.salt })
        if (Result.isFailure(hashed)) return failed("Authentication", hashed.failure.message)
        return { _tag: "Send", bytes: PgProtocol.encodePasswordMessage({ password: hashed.success }) }
      }
      case "AuthenticationSASL": {
        if (!message.mechanisms.includes(PgAuth.SCRAM_SHA_256)) {
          return failed(
            "Authentication",
            `the server offers SASL mechanisms ${message.mechanisms.join(", ")}, none of which pgfx supports`
          )
        }
        const password = needPassword("SCRAM-SHA-256")
        if (typeof password !== "string") return password
        const nonce = options.nonce ?? randomBytes(18).toString("base64")
        const first = PgAuth.scramInit({ password, nonce })
        if (Result.isFailure(first)) return failed("Authentication", first.failure.message)
        scram = first.success.state
        return {
          _tag: "Send",
          bytes: PgProtocol.encodeSASLInitialResponse({
            mechanism: PgAuth.SCRAM_SHA_256,
            initialResponse: first.success.response
          })
        }
      }
      case "AuthenticationSASLContinue": {
        if (scram?._tag !== "ScramFirst") return protocol("unexpected SASL continue message")
        const next = PgAuth.scramContinue(scram, message.data)
        if (Result.isFailure(next)) return failed("Authentication", next.failure.message)
        scram = next.success.state
        return { _tag: "Send", bytes: PgProtocol.encodeSASLResponse({ data: next.success.response }) }
      }
      case "AuthenticationSASLFinal": {
        if (scram?._tag !== "ScramFinal") return protocol("unexpected SASL final message")
        const done = PgAuth.scramFinish(scram, message.data)
        if (Result.isFailure(done)) return failed("Authentication", done.failure.message)
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
