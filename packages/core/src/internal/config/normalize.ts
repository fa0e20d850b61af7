/**
 * An object input (overrides, input or environment) checked and normalized
 * into one layer of settings, for `resolve` to merge.
 */
import * as Duration from "effect/Duration"
import * as Redacted from "effect/Redacted"
import { isIP } from "node:net"
import * as conninfo from "../conninfo.ts"
import {
  type ChannelBinding,
  channelBindingValues,
  type LoadBalanceHosts,
  loadBalanceValues,
  type PgConfigInput,
  type SslMode,
  sslModes,
  type TargetSessionAttrs,
  targetSessionAttrsValues
} from "./model.ts"

export interface Settings {
  host?: ReadonlyArray<string>
  hostaddr?: ReadonlyArray<string>
  port?: ReadonlyArray<number | undefined>
  database?: string
  user?: string
  password?: Redacted.Redacted<string>
  passfile?: string
  applicationName?: string
  fallbackApplicationName?: string
  options?: string
  connectTimeout?: number
  sslmode?: SslMode
  sslrootcert?: string
  sslcert?: string
  sslkey?: string
  sslpassword?: Redacted.Redacted<string>
  targetSessionAttrs?: TargetSessionAttrs
  loadBalanceHosts?: LoadBalanceHosts
  keepalives?: boolean
  keepalivesIdle?: number
  channelBinding?: ChannelBinding
}

const inputKeys: ReadonlySet<string> = new Set<keyof PgConfigInput>([
  "host",
  "hostaddr",
  "port",
  "database",
  "user",
  "password",
  "passfile",
  "applicationName",
  "fallbackApplicationName",
  "options",
  "connectTimeout",
  "sslmode",
  "sslrootcert",
  "sslcert",
  "sslkey",
  "sslpassword",
  "targetSessionAttrs",
  "loadBalanceHosts",
  "keepalives",
  "keepalivesIdle",
  "channelBinding"
])

const describeValue = (u: unknown): string => {
  if (typeof u === "string") return JSON.stringify(u)
  if (typeof u === "number" || typeof u === "boolean" || u === null || u === undefined) return String(u)
  return typeof u
}

/** Normalizes an object input; `from` prefixes messages ("overrides", "input"). */
export const normalize = (input: PgConfigInput, from: string): Settings => {
  const bad = (key: string, message: string): never => conninfo.fail(`${from}: ${message}`, key)
  const str = (key: keyof PgConfigInput): string | undefined => {
    const v: unknown = input[key]
    if (v === undefined || v === "") return undefined
    if (typeof v !== "string") return bad(key, `"${key}" must be a string, got ${describeValue(v)}`)
    return v
  }
  const list = (key: "host" | "hostaddr"): ReadonlyArray<string> | undefined => {
    const v: unknown = input[key]
    if (v === undefined) return undefined
    const items: ReadonlyArray<unknown> = typeof v === "string" ? v.split(",") : Array.isArray(v) ? v : [v]
    if (items.length === 0) return undefined
    const out = items.map((item) =>
      typeof item === "string" ? item : bad(key, `"${key}" must be a string or an array of strings`)
    )
    if (out.every((h) => h === "")) return undefined
    if (key === "hostaddr") {
      for (const a of out) {
        if (a !== "" && isIP(a) === 0) bad(key, `invalid hostaddr "${a}": not a numeric IP address`)
      }
    }
    return out
  }
  const ports = (): ReadonlyArray<number | undefined> | undefined => {
    const v: unknown = input.port
    if (v === undefined) return undefined
    const items: ReadonlyArray<unknown> = typeof v === "string" ? v.split(",") : Array.isArray(v) ? v : [v]
    if (items.length === 0 || items.every((p) => p === "")) return undefined
    return items.map((p) => {
      if (p === "") return undefined
      const n = typeof p === "number" || typeof p === "string" ? conninfo.parsePort(p) : undefined
      return n !== undefined ? n : bad("port", `invalid port number: ${describeValue(p)}`)
    })
  }
  const secret = (key: "password" | "sslpassword"): Redacted.Redacted<string> | undefined => {
    const v: unknown = input[key]
    if (v === undefined) return undefined
    if (typeof v === "string") return v === "" ? undefined : Redacted.make(v)
    if (Redacted.isRedacted(v)) {
      const inner: unknown = Redacted.value(v)
      if (typeof inner !== "string") return bad(key, `"${key}" must be a string or a Redacted string`)
      return inner === "" ? undefined : (v as Redacted.Redacted<string>)
    }
    return bad(key, `"${key}" must be a string or a Redacted string`)
  }
  const seconds = (key: "connectTimeout" | "keepalivesIdle"): number | undefined => {
    const v: unknown = input[key]
    if (v === undefined) return undefined
    if (Duration.isDuration(v)) {
      if (!Duration.isFinite(v)) return key === "connectTimeout" ? 0 : undefined
      return Math.ceil(Duration.toSeconds(v))
    }
    if (typeof v === "number" && Number.isInteger(v)) {
      if (key === "keepalivesIdle" && v < 0) return bad(key, `"${key}" must not be negative`)
      return v
    }
    return bad(key, `"${key}" must be a whole number of seconds or a Duration, got ${describeValue(v)}`)
  }
  const enumOf = <A extends string>(key: keyof PgConfigInput, values: ReadonlyArray<A>): A | undefined => {
    const v: unknown = input[key]
    if (v === undefined) return undefined
    return values.includes(v as A) ? (v as A) : bad(key, `invalid ${key} value: ${describeValue(v)}`)
  }
  for (const key of Object.keys(input)) {
    if (!inputKeys.has(key)) bad(key, `unknown setting "${key}"`)
  }
  if (input.keepalives !== undefined && typeof input.keepalives !== "boolean") {
    bad("keepalives", `"keepalives" must be a boolean`)
  }
  const settings: Settings = {
    host: list("host"),
    hostaddr: list("hostaddr"),
    port: ports(),
    database: str("database"),
    user: str("user"),
    password: secret("password"),
    passfile: str("passfile"),
    applicationName: str("applicationName"),
    fallbackApplicationName: str("fallbackApplicationName"),
    options: str("options"),
    connectTimeout: seconds("connectTimeout"),
    sslmode: enumOf("sslmode", sslModes),
    sslrootcert: str("sslrootcert"),
    sslcert: str("sslcert"),
    sslkey: str("sslkey"),
    sslpassword: secret("sslpassword"),
    targetSessionAttrs: enumOf("targetSessionAttrs", targetSessionAttrsValues),
    loadBalanceHosts: enumOf("loadBalanceHosts", loadBalanceValues),
    keepalives: input.keepalives,
    keepalivesIdle: seconds("keepalivesIdle"),
    channelBinding: enumOf("channelBinding", channelBindingValues)
  }
  return settings
}
