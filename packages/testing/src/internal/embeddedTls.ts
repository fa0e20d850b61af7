/**
 * TLS files of an embedded server started with `ssl: true`: a self-signed CA and a server
 * certificate made with the `openssl` CLI.
 */
import { execFile } from "node:child_process"
import * as fsp from "node:fs/promises"
import * as path from "node:path"

export const execFileAsync = (file: string, args: ReadonlyArray<string>, cwd: string): Promise<string> =>
  new Promise((resolve, reject) => {
    execFile(file, [...args], { cwd }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${file} ${args.join(" ")} failed: ${error.message}\n${stderr}`))
      else resolve(stdout)
    })
  })


/** Self-signed CA + server certificate (ECDSA P-256) for localhost / 127.0.0.1 / ::1. */
export const makeCertificates = async (dir: string): Promise<void> => {
  const days = "30"
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
  await execFileAsync("openssl", [
    "req", "-x509", ...ec, "-days", days, "-subj", "/CN=pgfx test CA",
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    "-keyout", "ca.key", "-out", "ca.crt"
  ], dir)
  await execFileAsync("openssl", ["req", ...ec, "-subj", "/CN=localhost", "-keyout", "server.key", "-out", "server.csr"], dir)
  await fsp.writeFile(
    path.join(dir, "server.ext"),
    [
      "basicConstraints=CA:FALSE",
      "keyUsage=critical,digitalSignature,keyEncipherment",
      "extendedKeyUsage=serverAuth",
      "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1",
      ""
    ].join("\n")
  )
  await execFileAsync("openssl", [
    "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
    "-days", days, "-extfile", "server.ext", "-out", "server.crt"
  ], dir)
  await fsp.chmod(path.join(dir, "server.key"), 0o600)
  await fsp.chmod(path.join(dir, "ca.key"), 0o600)
}

