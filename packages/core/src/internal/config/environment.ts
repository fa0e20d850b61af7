/**
 * The `PG*` environment variables, read through effect `Config` (so a
 * `ConfigProvider` can supply them), as a `PgConfigInput`.
 */
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as conninfo from "../conninfo.ts"
import { type PgConfigInput, PgConfigError } from "./model.ts"
import { fromAttempt, inputFromEntries } from "./parse.ts"

/** `PG*` environment variables and the libpq keyword each one sets. */
const environment: ReadonlyArray<readonly [string, string]> = [
  ["PGHOST", "host"],
  ["PGHOSTADDR", "hostaddr"],
  ["PGPORT", "port"],
  ["PGDATABASE", "dbname"],
  ["PGUSER", "user"],
  ["PGPASSWORD", "password"],
  ["PGPASSFILE", "passfile"],
  ["PGSSLMODE", "sslmode"],
  ["PGSSLROOTCERT", "sslrootcert"],
  ["PGSSLCERT", "sslcert"],
  ["PGSSLKEY", "sslkey"],
  ["PGAPPNAME", "application_name"],
  ["PGCONNECT_TIMEOUT", "connect_timeout"],
  ["PGOPTIONS", "options"],
  ["PGTARGETSESSIONATTRS", "target_session_attrs"],
  ["PGLOADBALANCEHOSTS", "load_balance_hosts"],
  ["PGCHANNELBINDING", "channel_binding"]
]

const environmentConfig = Config.all(
  Object.fromEntries(environment.map(([name]) => [name, Config.option(Config.String(name))]))
)

/** Reads the `PG*` variables through the current `ConfigProvider`. */
export const readEnvironment: Effect.Effect<PgConfigInput, PgConfigError> = Effect.flatMap(
  Effect.mapError(
    environmentConfig,
    (error) => new PgConfigError({ message: `could not read the PG* environment variables: ${error.message}` })
  ),
  (values) =>
    fromAttempt(() => {
      const entries: Array<conninfo.RawEntry> = []
      for (const [name, key] of environment) {
        const value = values[name]
        if (value !== undefined && Option.isSome(value)) entries.push({ key, value: value.value, label: name })
      }
      return inputFromEntries(entries)
    })
)
