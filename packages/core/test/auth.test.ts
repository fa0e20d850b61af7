/**
 * Authentication methods and TLS, each on a throwaway server configured for
 * it (the shared test server is never reconfigured).
 */
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFileSync } from "node:child_process"
import { createHash, X509Certificate } from "node:crypto"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import * as tls from "node:tls"
import { Connection } from "../src/index.ts"
import { serverEndPoint } from "../src/internal/scram.ts"
import { embeddedServer } from "../../../test/embedded.ts"

const users = [
  { name: "md5_user", password: "md5 pass'word", passwordEncryption: "md5" as const },
  { name: "scram_user", password: "scr@m:pass", passwordEncryption: "scram-sha-256" as const },
  { name: "clear_user", password: "clear-text", passwordEncryption: "scram-sha-256" as const },
  { name: "trusted", password: "unused", passwordEncryption: "scram-sha-256" as const }
]

describe("authentication", () => {
  it.live("logs in with trust, cleartext, MD5 and SCRAM-SHA-256, and refuses wrong passwords", () =>
    Effect.gen(function*() {
      const server = yield* embeddedServer({
        users,
        hba: [
          { user: "md5_user", method: "md5" },
          { user: "scram_user", method: "scram-sha-256" },
          { user: "clear_user", method: "password" },
          { user: "trusted", method: "trust" }
        ]
      })
      for (const user of users) {
        const conn = yield* Connection.connect({
          host: "127.0.0.1",
          port: server.port,
          user: user.name,
          database: "postgres",
          password: user.name === "trusted" ? undefined : user.password,
          sslmode: "disable"
        })
        const result = yield* conn.execute("SELECT current_user")
        expect(result.rows).toEqual([[user.name]])
        yield* conn.close
      }
      for (const user of users.filter((u) => u.name !== "trusted")) {
        const error = yield* Effect.flip(Effect.scoped(Connection.connect({
          host: "127.0.0.1",
          port: server.port,
          user: user.name,
          database: "postgres",
          password: "wrong-secret-xyz",
          sslmode: "disable"
        })))
        expect(error._tag).toBe("ConnectionError")
        if (error._tag === "ConnectionError") {
          expect(error.reason).toBe("Authentication")
          expect(error.sqlState).toBe("28P01")
        }
        expect(error.message).not.toContain("wrong-secret-xyz")
        expect(JSON.stringify(error)).not.toContain("wrong-secret-xyz")
      }
    }), { timeout: 60_000 })
})

describe("TLS", () => {
  it.live("verify-full succeeds with the right CA and host, and fails with a wrong host or CA", () =>
    Effect.gen(function*() {
      const server = yield* embeddedServer({ ssl: true })
      const caFile = server.caFile!
      const base = {
        port: server.port,
        user: server.user,
        password: server.password,
        database: "postgres"
      }
      const good = yield* Connection.connect({ ...base, host: "localhost", sslmode: "verify-full", sslrootcert: caFile })
      expect(good.info.encrypted).toBe(true)
      const ssl = yield* good.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
      expect(ssl.rows).toEqual([[true]])

      const wrongHost = yield* Effect.flip(Effect.scoped(Connection.connect({
        ...base,
        host: "wrong.example",
        hostaddr: "127.0.0.1",
        sslmode: "verify-full",
        sslrootcert: caFile
      })))
      expect(wrongHost._tag).toBe("ConnectionError")
      if (wrongHost._tag === "ConnectionError") expect(wrongHost.reason).toBe("Tls")

      // verify-ca checks the chain only, so the wrong host name is accepted there.
      const caOnly = yield* Connection.connect({
        ...base,
        host: "wrong.example",
        hostaddr: "127.0.0.1",
        sslmode: "verify-ca",
        sslrootcert: caFile
      })
      expect(caOnly.info.encrypted).toBe(true)

      const otherCa = otherCertificateAuthority()
      const wrongCa = yield* Effect.flip(Effect.scoped(Connection.connect({
        ...base,
        host: "localhost",
        sslmode: "verify-full",
        sslrootcert: otherCa
      })))
      expect(wrongCa._tag).toBe("ConnectionError")
      if (wrongCa._tag === "ConnectionError") expect(wrongCa.reason).toBe("Tls")

      const required = yield* Connection.connect({ ...base, host: "127.0.0.1", sslmode: "require" })
      expect(required.info.encrypted).toBe(true)
      const plain = yield* Connection.connect({ ...base, host: "127.0.0.1", sslmode: "disable" })
      expect(plain.info.encrypted).toBe(false)
    }), { timeout: 60_000 })

  it.live("SCRAM-SHA-256-PLUS binds the TLS channel: a TLS-terminating man in the middle is refused", () =>
    Effect.gen(function*() {
      const server = yield* embeddedServer({ ssl: true, hba: [{ user: "trusted", method: "trust" }], users: [users[3]] })
      const base = { user: server.user, password: server.password, database: "postgres" }
      // the binding data is the server certificate's hash (RFC 5929), as the server computes it
      const certificate = new X509Certificate(fs.readFileSync(path.join(server.dataDir, "server.crt")))
      expect(Buffer.from(serverEndPoint(certificate.raw)!)).toEqual(createHash("sha256").update(certificate.raw).digest())

      for (const channelBinding of ["prefer", "require", "disable"] as const) {
        const direct = yield* Connection.connect({ ...base, host: "127.0.0.1", port: server.port, sslmode: "require", channelBinding })
        const rows = yield* direct.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        expect(rows.rows).toEqual([[true]])
        yield* direct.close
      }

      const proxy = yield* tlsTerminatingProxy(server.port)
      const through = { ...base, host: "127.0.0.1", port: proxy.port, sslmode: "require" as const }
      // without binding the relay is invisible: the attack works
      const fooled = yield* Connection.connect({ ...through, channelBinding: "disable" })
      expect((yield* fooled.execute("SELECT 1")).rows).toEqual([[1]])
      yield* fooled.close
      // with it, the proof covers the proxy's certificate and the server refuses
      for (const channelBinding of ["prefer", "require"] as const) {
        const refused = yield* Effect.flip(Effect.scoped(Connection.connect({ ...through, channelBinding })))
        expect(refused._tag).toBe("ConnectionError")
        if (refused._tag === "ConnectionError") expect(refused.reason).toBe("Authentication")
      }

      // require never settles for less: no TLS, or a server that does not ask for SCRAM
      const plain = yield* Effect.flip(Effect.scoped(Connection.connect({
        ...base,
        host: "127.0.0.1",
        port: server.port,
        sslmode: "disable",
        channelBinding: "require"
      })))
      expect(plain.message).toContain("not encrypted")
      const trusted = yield* Effect.flip(Effect.scoped(Connection.connect({
        host: "127.0.0.1",
        port: server.port,
        user: "trusted",
        database: "postgres",
        sslmode: "require",
        channelBinding: "require"
      })))
      expect(trusted.message).toContain("without it")
    }), { timeout: 60_000 })

  it.live("sslmode=require fails with a typed error when the server has no TLS; Unix sockets work", () =>
    Effect.gen(function*() {
      const server = yield* embeddedServer({})
      const error = yield* Effect.flip(Effect.scoped(Connection.connect({
        host: "127.0.0.1",
        port: server.port,
        user: server.user,
        password: server.password,
        database: "postgres",
        sslmode: "require"
      })))
      expect(error._tag).toBe("ConnectionError")
      if (error._tag === "ConnectionError") expect(error.reason).toBe("Tls")
      // Unix-domain sockets: libpq's host=/dir form, never TLS.
      const local = yield* Connection.connect(
        `host=${server.socketDir} port=${server.port} user=${server.user} password=${server.password} dbname=postgres`
      )
      expect(local.info.encrypted).toBe(false)
      const over = yield* local.execute("SELECT client_addr IS NULL FROM pg_stat_activity WHERE pid = pg_backend_pid()")
      expect(over.rows).toEqual([[true]])
      const preferred = yield* Connection.connect({
        host: "127.0.0.1",
        port: server.port,
        user: server.user,
        password: server.password,
        database: "postgres",
        sslmode: "prefer"
      })
      expect(preferred.info.encrypted).toBe(false)
    }), { timeout: 60_000 })
})

/** A CA that signed nothing the server presents. */
const otherCertificateAuthority = (): string => otherKeyPair().cert

/** The folders of `otherKeyPair`, removed when the file's tests are over. */
const madeFolders: Array<string> = []
afterAll(() => {
  for (const dir of madeFolders.splice(0)) fs.rmSync(dir, { recursive: true, force: true })
})

/** A self-signed certificate and its key, unrelated to the server's. */
const otherKeyPair = () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pgfx-other-ca-"))
  madeFolders.push(dir)
  const key = path.join(dir, "ca.key")
  const cert = path.join(dir, "ca.crt")
  execFileSync("openssl", [
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    key,
    "-out",
    cert,
    "-days",
    "1",
    "-subj",
    "/CN=pgfx other CA"
  ], { stdio: "ignore" })
  return { cert, key }
}

/**
 * A man in the middle that terminates TLS: it answers the client's SSLRequest
 * itself, presents its own certificate, and relays the plaintext over its own
 * TLS connection to the server — what channel binding exists to detect.
 */
const tlsTerminatingProxy = (serverPort: number) =>
  Effect.acquireRelease(
    Effect.promise(() => {
      const { cert, key } = otherKeyPair()
      const sockets = new Set<net.Socket>()
      const server = net.createServer((client) => {
        sockets.add(client)
        client.once("data", () => {
          // the client's SSLRequest: accept, then speak TLS with our certificate
          client.write("S")
          const front = new tls.TLSSocket(client, { isServer: true, cert: fs.readFileSync(cert), key: fs.readFileSync(key) })
          const upstream = net.connect(serverPort, "127.0.0.1", () => upstream.write(sslRequest))
          sockets.add(upstream)
          upstream.once("data", () => {
            const back = tls.connect({ socket: upstream, rejectUnauthorized: false })
            front.pipe(back).pipe(front)
            front.on("error", () => back.destroy())
            back.on("error", () => front.destroy())
          })
          upstream.on("error", () => front.destroy())
        })
        client.on("error", () => {})
      })
      return new Promise<{ readonly port: number; readonly close: () => void }>((resolve) =>
        server.listen(0, "127.0.0.1", () =>
          resolve({
            port: (server.address() as net.AddressInfo).port,
            close: () => {
              for (const socket of sockets) socket.destroy()
              server.close()
            }
          }))
      )
    }),
    (proxy) => Effect.sync(proxy.close)
  )

const sslRequest = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])
