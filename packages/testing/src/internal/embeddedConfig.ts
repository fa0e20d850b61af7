/**
 * The embedded server's configuration files: pg_hba.conf rules, postgresql.conf settings, a
 * standby's `primary_conninfo`, and SQL quoting for the roles created at start.
 */
import * as net from "node:net"
import type { AuthMethod, EmbeddedServer, HbaRule } from "./embeddedTypes.ts"

export const quoteIdentifier = (name: string): string => `"${name.replace(/"/g, '""')}"`

/** A string literal (standard_conforming_strings: backslashes are plain characters). */
export const quoteLiteral = (value: string): string => `'${value.replace(/'/g, "''")}'`

const renderHba = (rule: string | HbaRule): string => {
  if (typeof rule === "string") return rule
  const type = rule.type ?? "host"
  const fields = [type, rule.database ?? "all", rule.user]
  if (type !== "local") fields.push(rule.address ?? "all")
  fields.push(rule.method)
  if (rule.options) fields.push(rule.options)
  return fields.join("\t")
}

export const hbaFile = (rules: ReadonlyArray<string | HbaRule>, defaultMethod: AuthMethod, host: string): string => {
  const loopback = ["127.0.0.1/32", "::1/128"]
  if (host !== "127.0.0.1" && host !== "::1") loopback.push(`${host}/${net.isIPv6(host) ? 128 : 32}`)
  return [
    "# written by pgfx test/embedded.ts — first matching line wins",
    ...rules.map(renderHba),
    "# defaults",
    `local\tall\tall\t${defaultMethod}`,
    ...loopback.map((address) => `host\tall\tall\t${address}\t${defaultMethod}`),
    // streaming replication to a standby (`standbyOf`, `follow`)
    ...loopback.map((address) => `host\treplication\tall\t${address}\t${defaultMethod}`),
    ""
  ].join("\n")
}

/** libpq conninfo value quoting (inside postgresql.conf's own quoting). */
const conninfoValue = (value: string): string => `'${value.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`

/** `primary_conninfo` of a standby of `primary`. */
export const replicationConninfo = (primary: EmbeddedServer, name: string): string =>
  [
    `host=${conninfoValue(primary.host)}`,
    `port=${primary.port}`,
    `user=${conninfoValue(primary.user)}`,
    `password=${conninfoValue(primary.password)}`,
    `application_name=${conninfoValue(name)}`,
    "sslmode=disable"
  ].join(" ")

const confValue = (value: string | number | boolean): string =>
  typeof value === "string" ? `'${value.replace(/\\/g, "\\\\").replace(/'/g, "''")}'` : String(value)

export const confLines = (settings: Readonly<Record<string, string | number | boolean>>): string =>
  Object.entries(settings)
    .map(([key, value]) => {
      if (!/^[A-Za-z_][A-Za-z0-9_.]*$/.test(key)) throw new Error(`invalid postgresql.conf key: ${key}`)
      return `${key} = ${confValue(value)}`
    })
    .join("\n")

