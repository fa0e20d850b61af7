/**
 * SCRAM-SHA-256 and SCRAM-SHA-256-PLUS (RFC 5802, RFC 7677, RFC 5929's
 * `tls-server-end-point`) as pure functions over the SASL messages.
 *
 * `@effect/sql-pg`'s PgAuth implements SCRAM-SHA-256 without channel binding
 * only (its GS2 header is fixed to `n,,`), so the exchange lives here: with
 * channel binding the client proof covers the server certificate's hash, which
 * makes a man in the middle that terminates TLS fail authentication.
 */
import { createHash, createHmac, pbkdf2Sync } from "node:crypto"

/** The mechanisms pgfx speaks. */
export const SCRAM_SHA_256 = "SCRAM-SHA-256"
export const SCRAM_SHA_256_PLUS = "SCRAM-SHA-256-PLUS"

/** PBKDF2 rounds above this are refused: a hostile server could ask for hours of CPU. */
const maxIterations = 1_000_000

/**
 * The GS2 channel-binding flag (RFC 5802 §6): `n` the client cannot bind,
 * `y` it could but the server offered no PLUS mechanism (a downgrade the server
 * can detect), `p` it binds to the TLS server certificate.
 */
export type Binding =
  | { readonly _tag: "n" }
  | { readonly _tag: "y" }
  | { readonly _tag: "p"; readonly serverEndPoint: Uint8Array }

export class ScramError extends Error {}

export interface ScramFirst {
  readonly password: string
  readonly clientNonce: string
  readonly clientFirstBare: string
  readonly binding: Binding
}

export interface ScramFinal {
  readonly serverSignature: Uint8Array
}

const encoder = new TextEncoder()
const decoder = new TextDecoder("utf-8", { fatal: true })

const hmac = (key: Uint8Array, data: Uint8Array | string) => createHmac("sha256", key).update(data).digest()

const gs2HeaderOf = (binding: Binding) => binding._tag === "p" ? "p=tls-server-end-point,," : `${binding._tag},,`

/** The client-first-message and the state to answer the server's challenge with. */
export const start = (password: string, nonce: string, binding: Binding) => {
  if (!/^[\x21-\x2b\x2d-\x7e]+$/.test(nonce)) {
    throw new ScramError("SCRAM nonce must contain only printable ASCII characters other than comma")
  }
  const clientFirstBare = `n=,r=${nonce}`
  const state: ScramFirst = { password, clientNonce: nonce, clientFirstBare, binding }
  return { state, response: encoder.encode(gs2HeaderOf(binding) + clientFirstBare) }
}

const attributesOf = (message: string) => {
  const attributes = new Map<string, string>()
  for (const part of message.split(",")) {
    const separator = part.indexOf("=")
    if (separator < 1) throw new ScramError(`malformed SCRAM attribute "${part.slice(0, 40)}"`)
    const key = part.slice(0, separator)
    if (attributes.has(key)) throw new ScramError(`duplicate SCRAM attribute "${key}"`)
    attributes.set(key, part.slice(separator + 1))
  }
  return attributes
}

const required = (attributes: Map<string, string>, key: string) => {
  const value = attributes.get(key)
  if (value === undefined) throw new ScramError(`missing SCRAM attribute "${key}"`)
  return value
}

const base64 = (text: string, field: string): Uint8Array => {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) {
    throw new ScramError(`invalid base64 in SCRAM attribute "${field}"`)
  }
  return Buffer.from(text, "base64")
}

const text = (bytes: Uint8Array, what: string) => {
  try {
    return decoder.decode(bytes)
  } catch {
    throw new ScramError(`invalid UTF-8 in ${what}`)
  }
}

/** Answers the server-first-message with the client-final-message (the proof). */
export const answer = (state: ScramFirst, challenge: Uint8Array) => {
  const serverFirst = text(challenge, "the SCRAM server-first-message")
  const attributes = attributesOf(serverFirst)
  const nonce = required(attributes, "r")
  if (!nonce.startsWith(state.clientNonce) || nonce.length === state.clientNonce.length) {
    throw new ScramError("SCRAM server nonce does not extend the client nonce")
  }
  const salt = base64(required(attributes, "s"), "s")
  if (salt.length === 0) throw new ScramError("SCRAM salt must not be empty")
  const iterationText = required(attributes, "i")
  const iterations = Number(iterationText)
  if (!/^[1-9]\d{0,9}$/.test(iterationText) || iterations > maxIterations) {
    throw new ScramError(`invalid SCRAM iteration count: ${iterationText.slice(0, 20)}`)
  }
  const salted = pbkdf2Sync(encoder.encode(state.password), salt, iterations, 32, "sha256")
  const clientKey = hmac(salted, "Client Key")
  const storedKey = createHash("sha256").update(clientKey).digest()
  // c= is the GS2 header, followed by the certificate hash when binding
  const gs2Header = encoder.encode(gs2HeaderOf(state.binding))
  const bindingInput = state.binding._tag === "p" ? Buffer.concat([gs2Header, state.binding.serverEndPoint]) : gs2Header
  const withoutProof = `c=${Buffer.from(bindingInput).toString("base64")},r=${nonce}`
  const authMessage = `${state.clientFirstBare},${serverFirst},${withoutProof}`
  const signature = hmac(storedKey, authMessage)
  const proof = Buffer.alloc(clientKey.length)
  for (let index = 0; index < proof.length; index++) proof[index] = clientKey[index] ^ signature[index]
  const final: ScramFinal = { serverSignature: hmac(hmac(salted, "Server Key"), authMessage) }
  return { state: final, response: encoder.encode(`${withoutProof},p=${proof.toString("base64")}`) }
}

/** Checks the server-final-message: the server proves it knows the password too. */
export const verify = (state: ScramFinal, message: Uint8Array): void => {
  const attributes = attributesOf(text(message, "the SCRAM server-final-message"))
  const error = attributes.get("e")
  if (error !== undefined) throw new ScramError(`SCRAM authentication failed: ${error.slice(0, 200)}`)
  const signature = base64(required(attributes, "v"), "v")
  if (!Buffer.from(signature).equals(Buffer.from(state.serverSignature))) {
    throw new ScramError("SCRAM server signature mismatch")
  }
}

// -----------------------------------------------------------------------------
// tls-server-end-point: the hash of the server certificate (RFC 5929 §4.1)
// -----------------------------------------------------------------------------

/** Signature algorithm OIDs → the hash they use; MD5 and SHA-1 are replaced by SHA-256. */
const hashOfSignature: Readonly<Record<string, string>> = {
  "1.2.840.113549.1.1.4": "sha256", // md5WithRSAEncryption
  "1.2.840.113549.1.1.5": "sha256", // sha1WithRSAEncryption
  "1.2.840.113549.1.1.11": "sha256",
  "1.2.840.113549.1.1.12": "sha384",
  "1.2.840.113549.1.1.13": "sha512",
  "1.2.840.113549.1.1.14": "sha224",
  "1.2.840.10045.4.1": "sha256", // ecdsa-with-SHA1
  "1.2.840.10045.4.3.1": "sha224",
  "1.2.840.10045.4.3.2": "sha256",
  "1.2.840.10045.4.3.3": "sha384",
  "1.2.840.10045.4.3.4": "sha512",
  "1.2.840.10040.4.3": "sha256", // dsa-with-sha1
  "2.16.840.1.101.3.4.3.2": "sha256" // dsa-with-sha256
}

/** Reads one DER element at `offset`: its tag, where its contents start and end. */
const element = (der: Uint8Array, offset: number) => {
  if (offset + 2 > der.length) throw new ScramError("truncated certificate")
  const tag = der[offset]
  let length = der[offset + 1]
  let start = offset + 2
  if (length & 0x80) {
    const bytes = length & 0x7f
    if (bytes === 0 || bytes > 4 || start + bytes > der.length) throw new ScramError("bad certificate length")
    length = 0
    for (let index = 0; index < bytes; index++) length = length * 256 + der[start + index]
    start += bytes
  }
  if (start + length > der.length) throw new ScramError("truncated certificate")
  return { tag, start, end: start + length }
}

const oidText = (bytes: Uint8Array) => {
  const parts = [Math.floor(bytes[0] / 40), bytes[0] % 40]
  let value = 0
  for (let index = 1; index < bytes.length; index++) {
    value = value * 128 + (bytes[index] & 0x7f)
    if ((bytes[index] & 0x80) === 0) {
      parts.push(value)
      value = 0
    }
  }
  return parts.join(".")
}

/**
 * The `tls-server-end-point` channel-binding data of a DER certificate, or
 * `undefined` when its signature algorithm has no defined hash (e.g. Ed25519,
 * RSASSA-PSS): PostgreSQL then offers no binding either.
 */
export const serverEndPoint = (der: Uint8Array): Uint8Array | undefined => {
  const certificate = element(der, 0)
  const tbs = element(der, certificate.start)
  const algorithm = element(der, tbs.end)
  const oid = element(der, algorithm.start)
  if (certificate.tag !== 0x30 || algorithm.tag !== 0x30 || oid.tag !== 0x06) {
    throw new ScramError("not an X.509 certificate")
  }
  const hash = hashOfSignature[oidText(der.subarray(oid.start, oid.end))]
  return hash === undefined ? undefined : createHash(hash).update(der).digest()
}
