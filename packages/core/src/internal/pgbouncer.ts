/**
 * PgBouncer transaction-mode support (`ConnectOptions.pgbouncer`): the
 * startup parameters pgfx may send through it, and the message of the
 * features it refuses.
 *
 * PgBouncer (1.18; later versions too unless `ignore_startup_parameters` says
 * otherwise) accepts only the startup parameters it tracks —
 * `client_encoding`, `DateStyle`, `TimeZone`, `standard_conforming_strings`,
 * `application_name` — and re-applies them whenever it links the client to a
 * server connection. Any other parameter closes the client connection
 * ("unsupported startup parameter"), and a session setting would not follow
 * the client to the next server connection anyway.
 */
import * as Result from "effect/Result"
import { PgConfigError } from "../PgConfig.ts"

/** The startup parameters of a session (beyond `user`, `database`, `client_encoding`). */
export type StartupParameters = Readonly<Record<string, string | undefined>>

/** Why a feature is refused in PgBouncer mode. */
export const refusal = (what: string): string =>
  `${what} is not available with pgbouncer: true: in transaction pooling each transaction may run on a ` +
  "different server connection, so session state does not last (use a direct connection to PostgreSQL for it)"

/**
 * Settings of `options` that can go through PgBouncer as a tracked startup
 * parameter, by lower-case name. `DateStyle` and `client_encoding` are not
 * among them: pgfx's decoders need its own values.
 */
const tracked: Readonly<Record<string, string>> = { timezone: "TimeZone" }

/** Splits `options` like the server does (`pg_split_opts`): whitespace separates, a backslash escapes. */
const splitOptions = (text: string): Array<string> => {
  const words: Array<string> = []
  let current = ""
  let inWord = false
  for (let index = 0; index < text.length; index++) {
    const char = text[index]
    if (char === "\\" && index + 1 < text.length) {
      current += text[++index]
      inWord = true
    } else if (/\s/.test(char)) {
      if (inWord) words.push(current)
      current = ""
      inWord = false
    } else {
      current += char
      inWord = true
    }
  }
  if (inWord) words.push(current)
  return words
}

/**
 * `options` as `name=value` settings (`-c name=value`, `-cname=value`,
 * `--name=value`); `undefined` when it holds any other switch.
 */
const settingsOf = (text: string): Array<readonly [string, string]> | undefined => {
  const words = splitOptions(text)
  const settings: Array<readonly [string, string]> = []
  for (let index = 0; index < words.length; index++) {
    const word = words[index]
    let setting: string | undefined
    if (word === "-c") setting = words[++index]
    else if (word.startsWith("--")) setting = word.slice(2)
    else if (word.startsWith("-c")) setting = word.slice(2)
    const equals = setting?.indexOf("=") ?? -1
    if (setting === undefined || equals <= 0) return undefined
    settings.push([setting.slice(0, equals).replaceAll("-", "_"), setting.slice(equals + 1)])
  }
  return settings
}

/**
 * The startup parameters to send. Directly to PostgreSQL: `options` as given,
 * ISO dates for the text decoders and `extra_float_digits=3` (exact floats
 * on servers before 12 too). Through PgBouncer: only tracked parameters,
 * `options` translated when it sets nothing but `TimeZone`, refused otherwise.
 */
export const startupParameters = (
  config: { readonly applicationName: string | undefined; readonly options: string | undefined },
  pgbouncer: boolean
): Result.Result<StartupParameters, PgConfigError> => {
  if (!pgbouncer) {
    return Result.succeed({
      application_name: config.applicationName,
      options: config.options,
      // The text decoders read ISO dates; floats must round-trip exactly.
      DateStyle: "ISO, MDY",
      extra_float_digits: "3"
    })
  }
  const parameters: Record<string, string | undefined> = {
    application_name: config.applicationName,
    DateStyle: "ISO, MDY"
  }
  const text = config.options?.trim() ?? ""
  if (text === "") return Result.succeed(parameters)
  const settings = settingsOf(text)
  const refused = settings === undefined
    ? [text]
    : settings.filter(([name]) => tracked[name.toLowerCase()] === undefined).map(([name]) => name)
  if (settings === undefined || refused.length > 0) {
    return Result.fail(
      new PgConfigError({
        key: "options",
        message: `options cannot be sent through PgBouncer (pgbouncer: true): ${refused.join(", ")}. PgBouncer ` +
          "refuses startup parameters it does not track, and a session setting would not follow the client to " +
          "another server connection. Only -c TimeZone=… is supported (sent as the tracked TimeZone parameter); " +
          "set the others per role or database (ALTER ROLE … SET), with SET LOCAL inside a transaction, or with " +
          "PgBouncer's connect_query"
      })
    )
  }
  for (const [name, value] of settings) parameters[tracked[name.toLowerCase()]] = value
  return Result.succeed(parameters)
}
