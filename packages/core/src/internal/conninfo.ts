/**
 * Pure parsers behind `PgConfig`: libpq keyword/value strings, `postgresql://`
 * URLs, `.pgpass` files and conninfo quoting. No I/O, no Effect: every
 * function either returns a value or throws a `ConninfoFailure`, which the
 * public module turns into a `PgConfigError` (see `attempt`).
 *
 * @internal
 */
import * as Result from "effect/Result"

/** @internal */
export interface Failure {
  readonly message: string
  readonly key?: string | undefined
  readonly position?: number | undefined
}

/** @internal */
export class ConninfoFailure {
  readonly _tag = "ConninfoFailure"
  constructor(readonly failure: Failure) {}
}

/** @internal */
export function fail(message: string, key?: string, position?: number): never {
  throw new ConninfoFailure({
    message: position === undefined ? message : `${message} at position ${position}`,
    key,
    position
  })
}

/**
 * Runs a parser that may throw `ConninfoFailure` and returns a `Result`.
 * Any other exception is a defect and is rethrown.
 *
 * @internal
 */
export const attempt = <A>(f: () => A): Result.Result<A, Failure> => {
  try {
    return Result.succeed(f())
  } catch (error) {
    if (error instanceof ConninfoFailure) return Result.fail(error.failure)
    throw error
  }
}

/**
 * One `key=value` setting as written, before validation. `list` holds the
 * elements of a host/port list already split (URLs split them before
 * percent-decoding, so a decoded comma is not a separator).
 *
 * @internal
 */
export interface RawEntry {
  readonly key: string
  readonly value: string
  readonly list?: ReadonlyArray<string> | undefined
  /** 0-based offset of the key in the source text */
  readonly keyPosition?: number | undefined
  /** 0-based offset of the value in the source text */
  readonly valuePosition?: number | undefined
  /** where the entry came from when not a string (e.g. "PGSSLMODE") */
  readonly label?: string | undefined
  /**
   * Set to the secret's keyword when this entry directly follows an unquoted
   * `password`/`sslpassword` value: its keyword may then be the rest of a
   * password written with a blank in it, and must not be echoed.
   */
  readonly afterSecret?: string | undefined
}

/** @internal */
export const isSecretKey = (key: string): boolean => key === "password" || key === "sslpassword"

// libpq uses isspace(): space, \t, \n, \v, \f, \r
const isSpace = (c: string): boolean =>
  c === " " || c === "\t" || c === "\n" || c === "\r" || c === "\f" || c === "\v"

/**
 * `true` when the text is a `postgresql://` or `postgres://` URL rather than
 * a keyword/value string.
 *
 * @internal
 */
export const isUrl = (text: string): boolean => /^postgres(?:ql)?:\/\//i.test(text)

/**
 * Parses a libpq keyword/value connection string, libpq's rules exactly:
 * whitespace separates settings and may surround `=`; a value is either a run
 * of non-blank characters or a single-quoted string; in both a backslash makes
 * the next character literal (`\'`, `\\`, `\ `). An empty or blank string gives
 * no entries.
 *
 * @internal
 */
export const parseKeywordValue = (text: string): Array<RawEntry> => {
  const entries: Array<RawEntry> = []
  const n = text.length
  let i = 0
  const skipSpaces = () => {
    while (i < n && isSpace(text[i])) i++
  }
  // the keyword of the previous entry when it was an unquoted secret
  let afterSecret: string | undefined
  while (true) {
    skipSpaces()
    if (i >= n) break
    const keyPosition = i
    while (i < n && !isSpace(text[i]) && text[i] !== "=") i++
    const key = text.slice(keyPosition, i)
    skipSpaces()
    if (key === "") {
      fail(`missing keyword before "=" in connection info string`, undefined, keyPosition)
    }
    if (i >= n || text[i] !== "=") {
      if (afterSecret !== undefined) {
        fail(
          `missing "=" after the word following the value of "${afterSecret}" in connection info string ` +
            `(quote a value that contains blanks)`,
          afterSecret,
          i
        )
      }
      fail(`missing "=" after "${key}" in connection info string`, key, i)
    }
    i++ // "="
    skipSpaces()
    const valuePosition = i
    const previousSecret = afterSecret
    afterSecret = undefined
    let value = ""
    if (i < n && text[i] === "'") {
      i++
      while (true) {
        if (i >= n) fail(`unterminated quoted string in connection info string`, key, valuePosition)
        const c = text[i]
        if (c === "\\") {
          i++
          if (i >= n) fail(`unterminated quoted string in connection info string`, key, valuePosition)
          value += text[i++]
        } else if (c === "'") {
          i++
          // A quoted value that swallowed "password=" most likely lost its
          // closing quote: what follows may be the password, so it is not echoed.
          if (/(?:^|\s)(?:ssl)?password\s*=/.test(value)) afterSecret = key
          break
        } else {
          value += c
          i++
        }
      }
    } else {
      while (i < n && !isSpace(text[i])) {
        if (text[i] === "\\") {
          i++
          if (i < n) value += text[i++]
        } else {
          value += text[i++]
        }
      }
      if (isSecretKey(key)) afterSecret = key
    }
    entries.push({ key, value, keyPosition, valuePosition, afterSecret: previousSecret })
  }
  return entries
}

const utf8 = new TextDecoder("utf-8", { fatal: true })

/**
 * Percent-decodes `text.slice(start, end)`; `what` names the part for
 * messages. The offending token is shown unless `secret` is set.
 */
const percentDecode = (text: string, start: number, end: number, what: string, secret = false): string => {
  const part = text.slice(start, end)
  if (!part.includes("%")) return part
  const bytes: Array<number> = []
  const encoder = new TextEncoder()
  for (let i = 0; i < part.length;) {
    const c = part[i]
    if (c === "%") {
      const hex = part.slice(i + 1, i + 3)
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) {
        fail(
          secret
            ? `invalid percent-encoded token in the ${what} of the URI`
            : `invalid percent-encoded token "${part.slice(i, i + 3)}" in the ${what} of the URI`,
          undefined,
          start + i
        )
      }
      const byte = parseInt(hex, 16)
      if (byte === 0) fail(`forbidden value %00 in the ${what} of the URI`, undefined, start + i)
      bytes.push(byte)
      i += 3
    } else {
      const cp = part.codePointAt(i)!
      const s = String.fromCodePoint(cp)
      for (const b of encoder.encode(s)) bytes.push(b)
      i += s.length
    }
  }
  try {
    return utf8.decode(new Uint8Array(bytes))
  } catch {
    return fail(`invalid UTF-8 after percent-decoding the ${what} of the URI`, undefined, start)
  }
}

/**
 * Parses a `postgresql://` / `postgres://` URL into entries, following
 * libpq's `conninfo_uri_parse_options`:
 *
 * `postgresql://[user[:password]@][host][:port][,host[:port]...][/dbname][?key=value&...]`
 *
 * - the authority ends at the first `/` or `?`; the user info is what stands
 *   before its last `@` (so an unencoded `@` in a password works);
 * - hosts are percent-decoded (a socket directory can be written
 *   `%2Fvar%2Frun%2Fpostgresql`); IPv6 literals go in brackets;
 * - query parameters take any conninfo key and override the parts before
 *   them; `ssl=true` means `sslmode=require` as in libpq.
 *
 * @internal
 */
export const parseUrl = (text: string): Array<RawEntry> => {
  const prefix = /^postgres(?:ql)?:\/\//i.exec(text)
  if (prefix === null) return fail(`invalid URI: expected "postgresql://" or "postgres://"`, undefined, 0)
  const entries: Array<RawEntry> = []
  const start = prefix[0].length
  const n = text.length
  let authorityEnd = start
  while (authorityEnd < n && text[authorityEnd] !== "/" && text[authorityEnd] !== "?") authorityEnd++

  // user info
  let hostStart = start
  const at = text.lastIndexOf("@", authorityEnd - 1)
  if (at >= start) {
    const colon = text.indexOf(":", start)
    const userEnd = colon >= 0 && colon < at ? colon : at
    const user = percentDecode(text, start, userEnd, "user name")
    if (user !== "") entries.push({ key: "user", value: user, keyPosition: start, valuePosition: start })
    if (userEnd < at) {
      const password = percentDecode(text, userEnd + 1, at, "password", true)
      if (password !== "") {
        entries.push({ key: "password", value: password, keyPosition: userEnd + 1, valuePosition: userEnd + 1 })
      }
    }
    hostStart = at + 1
  }

  // hosts and ports
  const hosts: Array<string> = []
  const ports: Array<string> = []
  let p = hostStart
  if (p < authorityEnd) {
    while (true) {
      let host: string
      if (text[p] === "[") {
        const close = text.indexOf("]", p + 1)
        if (close < 0 || close >= authorityEnd) {
          fail(`end of string reached when looking for matching "]" in IPv6 host address in URI`, "host", p)
        }
        if (close === p + 1) fail(`IPv6 host address may not be empty in URI`, "host", p)
        host = percentDecode(text, p + 1, close, "host")
        p = close + 1
        if (p < authorityEnd && text[p] !== ":" && text[p] !== ",") {
          fail(`unexpected character "${text[p]}" in URI (expected ":", "," or "/")`, "host", p)
        }
      } else {
        const hs = p
        while (p < authorityEnd && text[p] !== ":" && text[p] !== ",") p++
        host = percentDecode(text, hs, p, "host")
      }
      let port = ""
      if (p < authorityEnd && text[p] === ":") {
        const ps = ++p
        while (p < authorityEnd && text[p] !== ",") p++
        port = percentDecode(text, ps, p, "port")
        if (port === "") fail(`missing port number after ":" in URI`, "port", ps)
        // not echoed: with an unencoded "/" or "?" in a password, this "port" is part of it
        if (parsePort(port) === undefined) fail(`invalid port number in URI`, "port", ps)
      }
      hosts.push(host)
      ports.push(port)
      if (p < authorityEnd && text[p] === ",") {
        p++
        continue
      }
      break
    }
  }
  if (hosts.some((h) => h !== "")) {
    entries.push({ key: "host", value: hosts.join(","), list: hosts, keyPosition: hostStart, valuePosition: hostStart })
  }
  if (ports.some((s) => s !== "")) {
    entries.push({ key: "port", value: ports.join(","), list: ports, keyPosition: hostStart, valuePosition: hostStart })
  }

  // database
  p = authorityEnd
  if (p < n && text[p] === "/") {
    const ds = ++p
    while (p < n && text[p] !== "?") p++
    const dbname = percentDecode(text, ds, p, "database name")
    if (dbname !== "") entries.push({ key: "dbname", value: dbname, keyPosition: ds, valuePosition: ds })
  }

  // query parameters
  if (p < n && text[p] === "?") {
    p++
    while (p <= n) {
      let end = text.indexOf("&", p)
      if (end < 0) end = n
      if (end > p) {
        const eq = text.indexOf("=", p)
        if (eq < 0 || eq >= end) {
          fail(
            `missing key/value separator "=" in URI query parameter "${text.slice(p, end)}"`,
            percentDecode(text, p, end, "query"),
            end
          )
        }
        const key = percentDecode(text, p, eq, "query")
        const secret = key === "password" || key === "sslpassword"
        const value = percentDecode(text, eq + 1, end, `"${key}" parameter`, secret)
        if (key === "ssl") {
          if (value !== "true") fail(`invalid value for URI query parameter "ssl" (only "true" is allowed)`, "ssl", eq + 1)
          entries.push({ key: "sslmode", value: "require", keyPosition: p, valuePosition: eq + 1 })
        } else {
          entries.push({ key, value, keyPosition: p, valuePosition: eq + 1 })
        }
      }
      p = end + 1
    }
  }
  return entries
}

/**
 * Parses either form: a URL when the text starts with `postgresql://` or
 * `postgres://`, a keyword/value string otherwise.
 *
 * @internal
 */
export const parseConninfo = (text: string): Array<RawEntry> =>
  isUrl(text) ? parseUrl(text) : parseKeywordValue(text)

// ---------------------------------------------------------------------------
// Value parsers
// ---------------------------------------------------------------------------

/**
 * libpq's `parse_int_param`: an optional sign and decimal digits, surrounded
 * by optional blanks.
 *
 * @internal
 */
export const parseIntStrict = (value: string): number | undefined => {
  if (!/^\s*[+-]?\d+\s*$/.test(value)) return undefined
  const n = Number(value.trim())
  return Number.isSafeInteger(n) ? n : undefined
}

/**
 * Parses one port: an integer in 1..65535, or `undefined` when invalid.
 *
 * @internal
 */
export const parsePort = (value: string | number): number | undefined => {
  const n = typeof value === "number" ? value : parseIntStrict(value)
  return n !== undefined && Number.isInteger(n) && n >= 1 && n <= 65535 ? n : undefined
}

/**
 * `true` for a host that names a Unix-domain socket directory (an absolute
 * path), the way libpq's `is_unixsock_path` decides.
 *
 * @internal
 */
export const isUnixSocketPath = (host: string): boolean => host.startsWith("/") || host.startsWith("@")

// ---------------------------------------------------------------------------
// Quoting
// ---------------------------------------------------------------------------

/**
 * Quotes a value for a keyword/value connection string when it needs it
 * (empty, or containing blanks, quotes or backslashes).
 *
 * @internal
 */
export const quoteValue = (value: string): string =>
  value !== "" && !/[\s'\\]/.test(value) ? value : `'${value.replace(/[\\']/g, (c) => `\\${c}`)}'`

// ---------------------------------------------------------------------------
// .pgpass
// ---------------------------------------------------------------------------

/**
 * One non-comment line of a password file, split into its five fields. The
 * first four keep their escapes (`\:`, `\\`) so `*` can be told apart from
 * `\*`; the password is already de-escaped.
 *
 * @internal
 */
export interface PgpassLine {
  readonly fields: readonly [string, string, string, string]
  readonly password: string
}

/**
 * Splits a `.pgpass` file into entries: `hostname:port:database:username:password`,
 * lines starting with `#` and blank lines skipped, lines with fewer than five
 * fields ignored (as libpq does).
 *
 * @internal
 */
export const parsePgpass = (content: string): Array<PgpassLine> => {
  const out: Array<PgpassLine> = []
  for (const rawLine of content.split("\n")) {
    const line = rawLine.endsWith("\r") ? rawLine.slice(0, -1) : rawLine
    if (line === "" || line.startsWith("#")) continue
    const fields: Array<string> = []
    let i = 0
    let ok = true
    for (let f = 0; f < 4; f++) {
      const s = i
      while (i < line.length && line[i] !== ":") {
        if (line[i] === "\\" && i + 1 < line.length) i++
        i++
      }
      if (i >= line.length) {
        ok = false
        break
      }
      fields.push(line.slice(s, i))
      i++ // ":"
    }
    if (!ok) continue
    let password = ""
    for (; i < line.length && line[i] !== ":"; i++) {
      if (line[i] === "\\" && i + 1 < line.length) i++
      password += line[i]
    }
    out.push({ fields: [fields[0], fields[1], fields[2], fields[3]], password })
  }
  return out
}

/** libpq's `pwdfMatchesString`: `*` alone matches anything, `\x` matches `x`. */
const fieldMatches = (field: string, value: string): boolean => {
  if (field === "*") return true
  let unescaped = ""
  for (let i = 0; i < field.length; i++) {
    if (field[i] === "\\" && i + 1 < field.length) i++
    unescaped += field[i]
  }
  return unescaped === value
}

/**
 * The password of the first line matching every field, or `undefined`.
 * `hostnames` lists the names the host may go by (for a socket: `localhost`
 * and the directory).
 *
 * @internal
 */
export const lookupPgpass = (
  lines: ReadonlyArray<PgpassLine>,
  hostnames: ReadonlyArray<string>,
  port: string,
  database: string,
  user: string
): string | undefined => {
  for (const { fields, password } of lines) {
    if (
      hostnames.some((h) => fieldMatches(fields[0], h)) &&
      fieldMatches(fields[1], port) &&
      fieldMatches(fields[2], database) &&
      fieldMatches(fields[3], user)
    ) {
      return password
    }
  }
  return undefined
}
