/**
 * Layers of settings merged with libpq's precedence, setting by setting,
 * into the resolved `PgConfig`: host lists paired with hostaddr and port
 * lists, defaults filled in.
 */
import * as Os from "node:os"
import * as conninfo from "../conninfo.ts"
import { defaultHost, defaultPort, type HostSpec, type PgConfig } from "./model.ts"
import type { Settings } from "./normalize.ts"

const osUser = (): string | undefined => {
  try {
    const name = Os.userInfo().username
    return name === "" ? undefined : name
  } catch {
    return undefined
  }
}

export const resolve = (layers: ReadonlyArray<Settings>): PgConfig => {
  const pick = <K extends keyof Settings>(key: K): Settings[K] => {
    for (const layer of layers) {
      if (layer[key] !== undefined) return layer[key]
    }
    return undefined
  }
  const hostList = pick("host")
  const hostaddrList = pick("hostaddr")
  const portList = pick("port")
  if (hostList !== undefined && hostaddrList !== undefined && hostList.length !== hostaddrList.length) {
    conninfo.fail(`could not match ${hostList.length} host names to ${hostaddrList.length} hostaddr values`, "hostaddr")
  }
  const count = hostList?.length ?? hostaddrList?.length ?? 1
  if (portList !== undefined && portList.length !== 1 && portList.length !== count) {
    conninfo.fail(`could not match ${portList.length} port numbers to ${count} hosts`, "port")
  }
  const hosts: Array<HostSpec> = []
  for (let i = 0; i < count; i++) {
    const name = hostList?.[i] ?? ""
    const addr = hostaddrList?.[i] || undefined
    const port = (portList === undefined ? undefined : portList.length === 1 ? portList[0] : portList[i]) ?? defaultPort
    const host = name !== "" ? name : addr ?? defaultHost
    hosts.push(addr === undefined ? { host, port } : { host, port, hostaddr: addr })
  }
  const user = pick("user") ?? osUser()
  if (user === undefined) {
    conninfo.fail(`could not determine the user name to connect as: set "user" or PGUSER`, "user")
  }
  const timeout = pick("connectTimeout")
  return {
    hosts,
    database: pick("database") ?? user,
    user,
    password: pick("password"),
    passfile: pick("passfile"),
    applicationName: pick("applicationName") ?? pick("fallbackApplicationName"),
    options: pick("options"),
    connectTimeout: timeout === undefined || timeout <= 0 ? undefined : Math.max(timeout, 2),
    sslmode: pick("sslmode") ?? "prefer",
    sslrootcert: pick("sslrootcert"),
    sslcert: pick("sslcert"),
    sslkey: pick("sslkey"),
    sslpassword: pick("sslpassword"),
    targetSessionAttrs: pick("targetSessionAttrs") ?? "any",
    loadBalanceHosts: pick("loadBalanceHosts") ?? "disable",
    keepalives: pick("keepalives") ?? true,
    keepalivesIdle: pick("keepalivesIdle"),
    channelBinding: pick("channelBinding") ?? "prefer"
  }
}
