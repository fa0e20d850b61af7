/**
 * Connecting: the host list in order (or shuffled), each host name resolved
 * when its turn comes, one attempt per address with its own
 * `connect_timeout`, TLS negotiation, the startup handshake, and the
 * `target_session_attrs` check. `connect` (Connection.ts) runs `open`.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Result from "effect/Result"
import type * as Scope from "effect/Scope"
import * as net from "node:net"
import type * as tls from "node:tls"
import * as HostResolver from "../HostResolver.ts"
import * as PgConfig from "../PgConfig.ts"
import { ConnectionError, type PgError, type ProtocolError } from "../PgError.ts"
import * as RowFactory from "../RowFactory.ts"
import { ConnectionImpl, type ResolvedOptions } from "./connection.ts"
import { startupParameters } from "./pgbouncer.ts"
import type { ConnectOptions } from "./results.ts"
import { describeEndpoint, type Endpoint, negotiateTls, openSocket } from "./socket.ts"
import { makeStartup } from "./startup.ts"
import { Wire } from "./wire.ts"

/**
 * Opens a connection that lives as long as the scope (closing it sends
 * Terminate, after COMMIT / ROLLBACK with autocommit off).
 */
export const open = (
  config: PgConfig.PgConfig,
  options: ConnectOptions<unknown> | undefined
): Effect.Effect<ConnectionImpl<unknown>, PgError | PgConfig.PgConfigError, Scope.Scope> =>
  Effect.gen(function*() {
    const pgbouncer = options?.pgbouncer === true
    const resolved: ResolvedOptions = {
      rowFactory: options?.rowFactory ?? RowFactory.tuple,
      autocommit: options?.autocommit ?? true,
      // Behind PgBouncer a named statement may be missing on (or already exist on) the next server connection.
      prepareThreshold: pgbouncer ? null : options?.prepareThreshold === undefined ? 5 : options.prepareThreshold,
      preparedMax: options?.preparedMax ?? 100,
      cancelTimeout: Duration.fromInputUnsafe(options?.cancelTimeout ?? "5 seconds"),
      drainTimeout: Duration.fromInputUnsafe(options?.drainTimeout ?? "5 seconds"),
      pgbouncer,
      startupParameters: yield* Effect.fromResult(startupParameters(config, pgbouncer))
    }
    const timeout = config.connectTimeout !== undefined && config.connectTimeout > 0
      ? Duration.seconds(config.connectTimeout)
      : Duration.fromInputUnsafe(options?.defaultConnectTimeout ?? "30 seconds")
    // Interruptible: every step of an attempt cleans up its own socket.
    return yield* Effect.acquireRelease(
      openFirst(config, resolved, timeout),
      (connection, exit) => connection.closeAfter(exit),
      { interruptible: true }
    )
  })

interface Attempt {
  readonly endpoint: Endpoint
  readonly hostaddr: string | undefined
}

type AttemptOrFailure = Attempt | { readonly failed: ConnectionError; readonly host: PgConfig.HostSpec }

/**
 * The host list, in order (shuffled with `load_balance_hosts=random`), each
 * entry an effect giving that host's attempts. Like libpq, a host name is
 * resolved only when its turn comes — by the `HostResolver` in force, at
 * every connect (no cache beyond this connect: prefer-standby's second pass
 * reuses the answer); each lookup is bounded by `timeout` (connect_timeout),
 * and a failed, empty or non-IP answer fails that host only.
 */
const resolveAttempts = (config: PgConfig.PgConfig, timeout: Duration.Duration) =>
  Effect.flatMap(HostResolver.HostResolver, (resolver) => {
    const hosts = config.loadBalanceHosts === "random" ? shuffle(config.hosts) : config.hosts
    return Effect.forEach(hosts, (host) => Effect.cached(attemptsOf(host, config, resolver, timeout)))
  })

/** The attempts of one host of the list: one per address of a host name. */
const attemptsOf = (
  host: PgConfig.HostSpec,
  config: PgConfig.PgConfig,
  resolver: HostResolver.HostResolver,
  timeout: Duration.Duration
): Effect.Effect<ReadonlyArray<AttemptOrFailure>> => {
  if (host.host.startsWith("/")) {
    return Effect.succeed([{
      endpoint: { host: host.host, address: `${host.host}/.s.PGSQL.${host.port}`, port: host.port, unix: true },
      hostaddr: undefined
    }])
  }
  if (host.hostaddr !== undefined) {
    return Effect.succeed([{
      endpoint: { host: host.host || host.hostaddr, address: host.hostaddr, port: host.port, unix: false },
      hostaddr: host.hostaddr
    }])
  }
  if (net.isIP(host.host) !== 0) {
    return Effect.succeed([
      { endpoint: { host: host.host, address: host.host, port: host.port, unix: false }, hostaddr: host.host }
    ])
  }
  const unknown = (detail: string, cause?: unknown) =>
    new ConnectionError({
      reason: "UnknownHost",
      message: `could not translate host name "${host.host}" to an address${detail}`,
      address: `${host.host}:${host.port}`,
      cause
    })
  return Effect.suspend(() => resolver.lookup(host.host)).pipe(
    Effect.mapError((cause) => unknown("", cause)),
    Effect.timeoutOrElse({
      duration: timeout,
      orElse: () => Effect.fail(unknown(`: no answer within ${Duration.format(timeout)} (connect_timeout)`))
    }),
    Effect.flatMap((list) => {
      const bad = list.find((address) => net.isIP(address) === 0)
      if (bad !== undefined) return Effect.fail(unknown(`: the resolver answered "${bad}", not an IP address`))
      return list.length === 0 ? Effect.fail(unknown(": no address")) : Effect.succeed(list)
    }),
    Effect.match({
      onFailure: (failed): ReadonlyArray<AttemptOrFailure> => [{ failed, host }],
      onSuccess: (addresses) =>
        (config.loadBalanceHosts === "random" ? shuffle(addresses) : addresses).map((address) => ({
          endpoint: { host: host.host, address, port: host.port, unix: false },
          hostaddr: address
        }))
    })
  )
}

const shuffle = <A>(items: ReadonlyArray<A>): Array<A> => {
  const out = items.slice()
  for (let index = out.length - 1; index > 0; index--) {
    const other = Math.floor(Math.random() * (index + 1))
    ;[out[index], out[other]] = [out[other], out[index]]
  }
  return out
}

/** Whether a fresh session satisfies `target_session_attrs`. */
const checkSessionAttrs = (
  connection: ConnectionImpl<unknown>,
  wanted: PgConfig.TargetSessionAttrs
): Effect.Effect<boolean, PgError> =>
  Effect.gen(function*() {
    if (wanted === "any") return true
    const readOnly = isReadOnly(connection)
    const standby = isStandby(connection)
    switch (wanted) {
      case "read-write":
        return !(yield* readOnly)
      case "read-only":
        return yield* readOnly
      case "primary":
        return !(yield* standby)
      case "standby":
      case "prefer-standby":
        return yield* standby
    }
    return true
  })

// Servers 14+ report both settings at startup; older ones are asked.
const isReadOnly = (connection: ConnectionImpl<unknown>) => {
  const reported = connection.info.parameterStatus("default_transaction_read_only")
  const standby = connection.info.parameterStatus("in_hot_standby")
  if (reported !== undefined && standby !== undefined) return Effect.succeed(reported === "on" || standby === "on")
  return Effect.map(
    connection.execute("SHOW transaction_read_only", undefined, { rowFactory: RowFactory.tuple }),
    (result) => result.rows[0]?.[0] === "on"
  )
}

const isStandby = (connection: ConnectionImpl<unknown>) => {
  const reported = connection.info.parameterStatus("in_hot_standby")
  if (reported !== undefined) return Effect.succeed(reported === "on")
  return Effect.map(
    connection.execute("SELECT pg_catalog.pg_is_in_recovery()", undefined, { rowFactory: RowFactory.tuple }),
    (result) => result.rows[0]?.[0] === true
  )
}

/** Startup on an open socket: returns a ready connection. */
const handshake = (
  transport: { readonly socket: net.Socket; readonly encrypted: boolean },
  endpoint: Endpoint,
  config: PgConfig.PgConfig,
  password: Redacted.Redacted<string> | undefined,
  options: ResolvedOptions
) =>
  Effect.callback<ConnectionImpl<unknown>, ConnectionError | ProtocolError>((resume) => {
    const where = describeEndpoint(endpoint)
    const wire = new Wire(transport.socket, where)
    const machine = makeStartup({
      user: config.user,
      database: config.database,
      password: () => password === undefined ? undefined : Redacted.value(password),
      // With `pgbouncer`, only the parameters PgBouncer tracks (internal/pgbouncer.ts).
      parameters: options.startupParameters,
      address: where,
      channelBinding: config.channelBinding,
      serverCertificate: () => transport.encrypted ? (transport.socket as tls.TLSSocket).getPeerCertificate(true)?.raw : undefined
    })
    let ready: ConnectionImpl<unknown> | undefined
    wire.enqueue({
      onMessage: (message) => {
        const step = machine.onMessage(message)
        switch (step._tag) {
          case "Send":
            wire.write(step.bytes)
            return false
          case "Continue":
            return false
          case "Failed":
            resume(Effect.fail(step.error))
            wire.destroy(step.error)
            return true
          case "Ready":
            ready = new ConnectionImpl(wire, endpoint, step.result, config, options, transport.encrypted, options.rowFactory)
            return true
        }
      },
      onDone: () => {
        if (ready !== undefined) resume(Effect.succeed(ready))
      },
      onClose: (error) => resume(Effect.fail(error))
    })
    wire.write(machine.start())
    return Effect.sync(() => wire.destroy(new ConnectionError({ reason: "NotOpen", message: "connect interrupted" })))
  })

const attemptOne = (
  attempt: Attempt,
  config: PgConfig.PgConfig,
  options: ResolvedOptions,
  timeout: Duration.Duration
): Effect.Effect<ConnectionImpl<unknown>, PgError> => {
  const where = describeEndpoint(attempt.endpoint)
  return Effect.gen(function*() {
    const password = yield* PgConfig.passwordFor(config, {
      host: attempt.endpoint.host,
      port: attempt.endpoint.port,
      hostaddr: attempt.hostaddr
    })
    const socket = yield* openSocket(attempt.endpoint, {
      enable: config.keepalives,
      idleSeconds: config.keepalivesIdle
    })
    const transport = yield* negotiateTls(socket, attempt.endpoint, {
      sslmode: config.sslmode,
      sslrootcert: config.sslrootcert,
      sslcert: config.sslcert,
      sslkey: config.sslkey,
      sslpassword: config.sslpassword === undefined ? undefined : Redacted.value(config.sslpassword)
    }).pipe(Effect.onError(() => Effect.sync(() => socket.destroy())))
    return yield* handshake(transport, attempt.endpoint, config, password, options)
  }).pipe(
    Effect.timeoutOrElse({
      duration: timeout,
      orElse: () =>
        Effect.fail(
          new ConnectionError({
            reason: "Timeout",
            message: `connection to ${where} timed out after ${Duration.format(timeout)} (connect_timeout)`,
            address: where
          })
        )
    })
  )
}

const describeAttempt = (endpoint: Endpoint, hostaddr: string | undefined) =>
  `host: '${endpoint.host}', port: '${endpoint.port}', hostaddr: '${hostaddr ?? ""}'`

const openFirst = (config: PgConfig.PgConfig, options: ResolvedOptions, timeout: Duration.Duration) =>
  Effect.gen(function*() {
    const hosts = yield* resolveAttempts(config, timeout)
    const failures: Array<{ readonly label: string; readonly error: PgError }> = []
    const passes: ReadonlyArray<PgConfig.TargetSessionAttrs> = config.targetSessionAttrs === "prefer-standby"
      ? ["standby", "any"]
      : [config.targetSessionAttrs]
    for (const wanted of passes) {
      for (const host of hosts) {
        // resolved when its turn comes, once per connect
        for (const attempt of yield* host) {
          if ("failed" in attempt) {
            if (wanted === passes[0]) {
              failures.push({ label: describeAttempt({ host: attempt.host.host, port: attempt.host.port, address: "", unix: false }, undefined), error: attempt.failed })
            }
            continue
          }
          const label = describeAttempt(attempt.endpoint, attempt.hostaddr)
          const opened = yield* Effect.result(attemptOne(attempt, config, options, timeout))
          if (Result.isFailure(opened)) {
            failures.push({ label, error: opened.failure })
            continue
          }
          const connection = opened.success
          const accepted = yield* Effect.result(checkSessionAttrs(connection, wanted)).pipe(
            Effect.onInterrupt(() => connection.close)
          )
          if (Result.isSuccess(accepted) && accepted.success) return connection
          yield* connection.close
          failures.push({
            label,
            error: Result.isFailure(accepted) ? accepted.failure : new ConnectionError({
              reason: "TargetSessionAttrs",
              message: `server does not satisfy target_session_attrs=${wanted}`,
              address: describeEndpoint(attempt.endpoint)
            })
          })
        }
      }
    }
    return yield* Effect.fail(aggregate(failures))
  })

/** One failure is returned as it is; several are summarised like psycopg does. */
const aggregate = (failures: ReadonlyArray<{ readonly label: string; readonly error: PgError }>): PgError => {
  if (failures.length === 0) {
    return new ConnectionError({ reason: "UnknownHost", message: "no host to connect to" })
  }
  const last = failures[failures.length - 1].error
  if (failures.length === 1) return last
  const message = `${last.message}\nMultiple connection attempts failed. All failures were:\n` +
    failures.map((failure) => `- ${failure.label}: ${failure.error.message}`).join("\n")
  return new ConnectionError({
    reason: last._tag === "ConnectionError" ? last.reason : "Rejected",
    message,
    address: last._tag === "ConnectionError" ? last.address : undefined,
    sqlState: last._tag === "ConnectionError" ? last.sqlState : undefined,
    cause: failures.map((failure) => failure.error)
  })
}
