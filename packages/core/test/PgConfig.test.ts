import { afterAll, assert, describe, expect, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Formatter from "effect/Formatter"
import * as Inspectable from "effect/Inspectable"
import * as Logger from "effect/Logger"
import * as Redacted from "effect/Redacted"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Util from "node:util"
import * as PgConfig from "../src/PgConfig.ts"

/** Runs with exactly these environment variables (never the real ones). */
const withEnv = (env: Record<string, string> = {}) =>
  Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env }))

const parseError = (text: string) => Effect.flip(PgConfig.parse(text))
const makeError = (input?: string | PgConfig.PgConfigInput, overrides?: PgConfig.PgConfigInput) =>
  Effect.flip(PgConfig.make(input, overrides)).pipe(withEnv({ PGUSER: "tester" }))
const makeIn = (input?: string | PgConfig.PgConfigInput, overrides?: PgConfig.PgConfigInput, env?: Record<string, string>) =>
  PgConfig.make(input, overrides).pipe(withEnv(env ?? { PGUSER: "tester" }))

const secretOf = (r: Redacted.Redacted<string> | undefined) => (r === undefined ? undefined : Redacted.value(r))

describe("PgConfig.parse — keyword/value", () => {
  it.effect("parses plain keyword/value pairs", () =>
    Effect.gen(function*() {
      const input = yield* PgConfig.parse("dbname=test user=postgres host=127.0.0.1 port=5433")
      expect(input).toEqual({ database: "test", user: "postgres", host: "127.0.0.1", port: 5433 })
    }))

  it.effect("the empty and the blank string set nothing", () =>
    Effect.gen(function*() {
      expect(yield* PgConfig.parse("")).toEqual({})
      expect(yield* PgConfig.parse("  \t\n ")).toEqual({})
    }))

  it.effect("allows blanks around = and between pairs", () =>
    Effect.gen(function*() {
      const input = yield* PgConfig.parse("  dbname = test \t user=\n postgres  ")
      expect(input).toEqual({ database: "test", user: "postgres" })
    }))

  it.effect("takes the next word as the value when one is missing after = (as libpq)", () =>
    Effect.gen(function*() {
      expect(yield* PgConfig.parse("application_name= user=x")).toEqual({ applicationName: "user=x" })
    }))

  it.effect("single-quoted values keep blanks and =", () =>
    Effect.gen(function*() {
      const input = yield* PgConfig.parse("options='-c search_path=a,b -c work_mem=64MB' dbname='my db'")
      expect(input).toEqual({ options: "-c search_path=a,b -c work_mem=64MB", database: "my db" })
    }))

  it.effect("quoted values unescape \\' and \\\\", () =>
    Effect.gen(function*() {
      const input = yield* PgConfig.parse(String.raw`application_name='it\'s a \\ test' user='\a'`)
      expect(input).toEqual({ applicationName: "it's a \\ test", user: "a" })
    }))

  it.effect("unquoted values unescape backslashes, including an escaped blank", () =>
    Effect.gen(function*() {
      const input = yield* PgConfig.parse("application_name=a\\ b\\\\c\\'d user=x\\")
      expect(input).toEqual({ applicationName: "a b\\c'd", user: "x" })
    }))

  it.effect("an empty quoted value sets nothing", () =>
    Effect.gen(function*() {
      expect(yield* PgConfig.parse("dbname='' user=u")).toEqual({ user: "u" })
    }))

  it.effect("a quoted value needs no blank after it", () =>
    Effect.gen(function*() {
      expect(yield* PgConfig.parse("dbname='a'user=b")).toEqual({ database: "a", user: "b" })
    }))

  it.effect("the last occurrence of a keyword wins", () =>
    Effect.gen(function*() {
      expect(yield* PgConfig.parse("dbname=a dbname=b")).toEqual({ database: "b" })
    }))

  it.effect("passwords become Redacted", () =>
    Effect.gen(function*() {
      const input = yield* PgConfig.parse("password='s3 cret' sslpassword=k")
      assert.isTrue(Redacted.isRedacted(input.password))
      expect(secretOf(input.password as Redacted.Redacted<string>)).toBe("s3 cret")
      expect(secretOf(input.sslpassword as Redacted.Redacted<string>)).toBe("k")
    }))

  it.effect("parses every supported keyword", () =>
    Effect.gen(function*() {
      const input = yield* PgConfig.parse(
        "host=h hostaddr=10.0.0.1 port=6000 dbname=d user=u passfile=/tmp/pgpass connect_timeout=10 " +
          "application_name=app fallback_application_name=fb options='-c x=y' sslmode=verify-full " +
          "sslrootcert=/ca sslcert=/cert sslkey=/key target_session_attrs=read-write " +
          "load_balance_hosts=random keepalives=0 keepalives_idle=30 channel_binding=require"
      )
      expect(input).toEqual({
        host: "h",
        hostaddr: "10.0.0.1",
        port: 6000,
        database: "d",
        user: "u",
        passfile: "/tmp/pgpass",
        connectTimeout: 10,
        applicationName: "app",
        fallbackApplicationName: "fb",
        options: "-c x=y",
        sslmode: "verify-full",
        sslrootcert: "/ca",
        sslcert: "/cert",
        sslkey: "/key",
        targetSessionAttrs: "read-write",
        loadBalanceHosts: "random",
        keepalives: false,
        keepalivesIdle: 30,
        channelBinding: "require"
      })
    }))

  it.effect("accepts every sslmode and target_session_attrs", () =>
    Effect.gen(function*() {
      for (const mode of ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]) {
        expect((yield* PgConfig.parse(`sslmode=${mode}`)).sslmode).toBe(mode)
      }
      for (const t of ["any", "read-write", "read-only", "primary", "standby", "prefer-standby"]) {
        expect((yield* PgConfig.parse(`target_session_attrs=${t}`)).targetSessionAttrs).toBe(t)
      }
    }))

  it.effect("accepts harmless libpq keywords and ignores them", () =>
    Effect.gen(function*() {
      const input = yield* PgConfig.parse(
        "client_encoding=UTF8 gssencmode=disable sslnegotiation=postgres dbname=x"
      )
      expect(input).toEqual({ database: "x" })
      expect(yield* PgConfig.parse("client_encoding=utf8")).toEqual({})
      expect(yield* PgConfig.parse("client_encoding=UTF-8")).toEqual({})
      expect(yield* PgConfig.parse("gssencmode=prefer")).toEqual({})
    }))

  it.effect("splits host and port lists", () =>
    Effect.gen(function*() {
      const input = yield* PgConfig.parse("host=a,b,c port=5432,5433,")
      expect(input).toEqual({ host: ["a", "b", "c"], port: [5432, 5433, ""] })
    }))

  it.effect("a Unix socket directory is a host", () =>
    Effect.gen(function*() {
      expect(yield* PgConfig.parse("host=/var/run/postgresql")).toEqual({ host: "/var/run/postgresql" })
    }))

  it.effect("a URL given as a keyword/value value is not special", () =>
    Effect.gen(function*() {
      expect(yield* PgConfig.parse("application_name=postgresql://x")).toEqual({
        applicationName: "postgresql://x"
      })
    }))
})

describe("PgConfig.parse — URL", () => {
  it.effect("parses user, password, host, port and database", () =>
    Effect.gen(function*() {
      const input = yield* PgConfig.parse("postgresql://alice:secret@db.example.com:6543/orders")
      expect(input.user).toBe("alice")
      expect(secretOf(input.password as Redacted.Redacted<string>)).toBe("secret")
      expect(input.host).toBe("db.example.com")
      expect(input.port).toBe(6543)
      expect(input.database).toBe("orders")
    }))

  it.effect("accepts the postgres:// scheme and bare URLs", () =>
    Effect.gen(function*() {
      expect(yield* PgConfig.parse("postgres://h/d")).toEqual({ host: "h", database: "d" })
      expect(yield* PgConfig.parse("postgresql://")).toEqual({})
      expect(yield* PgConfig.parse("postgresql:///d")).toEqual({ database: "d" })
      expect(yield* PgConfig.parse("postgresql://h")).toEqual({ host: "h" })
      expect(yield* PgConfig.parse("postgresql://h/")).toEqual({ host: "h" })
      expect(yield* PgConfig.parse("postgresql://:5433/d")).toEqual({ port: 5433, database: "d" })
      expect(yield* PgConfig.parse("postgresql://u@")).toEqual({ user: "u" })
    }))

  it.effect("percent-decodes user, password, host and database", () =>
    Effect.gen(function*() {
      const input = yield* PgConfig.parse("postgresql://us%40er:p%3Aa%2Fss%20w%C3%B6rd@h%2Dx/my%20db%2Fx")
      expect(input.user).toBe("us@er")
      expect(secretOf(input.password as Redacted.Redacted<string>)).toBe("p:a/ss wörd")
      expect(input.host).toBe("h-x")
      expect(input.database).toBe("my db/x")
    }))

  it.effect("an unencoded @ in the password: the last @ ends the user info", () =>
    Effect.gen(function*() {
      const input = yield* PgConfig.parse("postgresql://u:p@ss@h/d")
      expect(input.user).toBe("u")
      expect(secretOf(input.password as Redacted.Redacted<string>)).toBe("p@ss")
      expect(input.host).toBe("h")
    }))

  it.effect("user without password, and an empty password", () =>
    Effect.gen(function*() {
      expect(yield* PgConfig.parse("postgresql://u@h")).toEqual({ user: "u", host: "h" })
      expect(yield* PgConfig.parse("postgresql://u:@h")).toEqual({ user: "u", host: "h" })
    }))

  it.effect("several hosts with their ports", () =>
    Effect.gen(function*() {
      expect(yield* PgConfig.parse("postgresql://h1:5432,h2:5433/db")).toEqual({
        host: ["h1", "h2"],
        port: [5432, 5433],
        database: "db"
      })
      expect(yield* PgConfig.parse("postgresql://h1,h2:5433,h3/db")).toEqual({
        host: ["h1", "h2", "h3"],
        port: ["", 5433, ""],
        database: "db"
      })
      expect(yield* PgConfig.parse("postgresql://h1,h2/db")).toEqual({ host: ["h1", "h2"], database: "db" })
    }))

  it.effect("IPv6 addresses in brackets", () =>
    Effect.gen(function*() {
      expect(yield* PgConfig.parse("postgresql://[::1]:5433/db")).toEqual({ host: "::1", port: 5433, database: "db" })
      expect(yield* PgConfig.parse("postgresql://[2001:db8::7]/db")).toEqual({ host: "2001:db8::7", database: "db" })
      expect(yield* PgConfig.parse("postgresql://u@[::1],[fe80::1%25eth0]:6000")).toEqual({
        user: "u",
        host: ["::1", "fe80::1%eth0"],
        port: ["", 6000]
      })
    }))

  it.effect("query parameters take any keyword", () =>
    Effect.gen(function*() {
      const input = yield* PgConfig.parse(
        "postgresql://h/db?sslmode=require&application_name=my%20app&connect_timeout=5&target_session_attrs=primary"
      )
      expect(input).toEqual({
        host: "h",
        database: "db",
        sslmode: "require",
        applicationName: "my app",
        connectTimeout: 5,
        targetSessionAttrs: "primary"
      })
    }))

  it.effect("query parameters override the parts before them", () =>
    Effect.gen(function*() {
      const input = yield* PgConfig.parse("postgresql://u@h:1/db?user=other&port=2&dbname=x&host=a,b")
      expect(input).toEqual({ user: "other", host: ["a", "b"], port: 2, database: "x" })
    }))

  it.effect("a value may contain = and percent-encoded &", () =>
    Effect.gen(function*() {
      const input = yield* PgConfig.parse("postgresql://h?options=-c%20search_path=x%26y&&dbname=d")
      expect(input).toEqual({ host: "h", options: "-c search_path=x&y", database: "d" })
    }))

  it.effect("ssl=true means sslmode=require", () =>
    Effect.gen(function*() {
      expect(yield* PgConfig.parse("postgresql://h?ssl=true")).toEqual({ host: "h", sslmode: "require" })
    }))

  it.effect("password in the query is Redacted", () =>
    Effect.gen(function*() {
      const input = yield* PgConfig.parse("postgresql://h?password=p%26w")
      expect(secretOf(input.password as Redacted.Redacted<string>)).toBe("p&w")
    }))

  it.effect("socket directories: in the query or percent-encoded in the host part", () =>
    Effect.gen(function*() {
      expect(yield* PgConfig.parse("postgresql:///db?host=/var/run/postgresql")).toEqual({
        host: "/var/run/postgresql",
        database: "db"
      })
      expect(yield* PgConfig.parse("postgresql://%2Fvar%2Frun%2Fpostgresql/db")).toEqual({
        host: "/var/run/postgresql",
        database: "db"
      })
      expect(yield* PgConfig.parse("postgresql://%2ftmp:5433/db")).toEqual({ host: "/tmp", port: 5433, database: "db" })
    }))
})

describe("PgConfig.parse — errors", () => {
  it.effect("missing = names the keyword and the position", () =>
    Effect.gen(function*() {
      const e = yield* parseError("dbname")
      expect(e._tag).toBe("PgConfigError")
      expect(e.message).toBe(`missing "=" after "dbname" in connection info string at position 6`)
      expect(e.key).toBe("dbname")
      expect(e.position).toBe(6)
      const e2 = yield* parseError("user=x dbname test")
      expect(e2.message).toBe(`missing "=" after "dbname" in connection info string at position 14`)
      expect(e2.position).toBe(14)
    }))

  it.effect("missing keyword before =", () =>
    Effect.gen(function*() {
      const e = yield* parseError("user=x =y")
      expect(e.message).toBe(`missing keyword before "=" in connection info string at position 7`)
      expect(e.position).toBe(7)
    }))

  it.effect("unterminated quoted string gives the position of the quote", () =>
    Effect.gen(function*() {
      const e = yield* parseError("dbname='abc")
      expect(e.message).toBe("unterminated quoted string in connection info string at position 7")
      expect(e.key).toBe("dbname")
      expect(e.position).toBe(7)
      const e2 = yield* parseError(String.raw`dbname='abc\'`)
      expect(e2.position).toBe(7)
      const e3 = yield* parseError("dbname='abc\\")
      expect(e3.position).toBe(7)
    }))

  it.effect("an unterminated quoted password does not show the password", () =>
    Effect.gen(function*() {
      const e = yield* parseError("user=u password='hunter2")
      expect(e.key).toBe("password")
      expect(e.message).not.toContain("hunter2")
    }))

  it.effect("unknown keywords are named", () =>
    Effect.gen(function*() {
      const e = yield* parseError("dbname=x bogus=1")
      expect(e.message).toBe(`invalid connection option "bogus" at position 9`)
      expect(e.key).toBe("bogus")
      expect(e.position).toBe(9)
      const e2 = yield* parseError("postgresql://h/d?frobnicate=1")
      expect(e2.key).toBe("frobnicate")
      expect(e2.message).toContain(`invalid connection option "frobnicate"`)
    }))

  it.effect("libpq keywords pgfx does not implement are named as such", () =>
    Effect.gen(function*() {
      const e = yield* parseError("service=foo")
      expect(e.key).toBe("service")
      expect(e.message).toContain(`"service" is not supported`)
    }))

  it.effect("invalid enum values name the keyword", () =>
    Effect.gen(function*() {
      const cases: Array<[string, string]> = [
        ["sslmode=bogus", "sslmode"],
        ["target_session_attrs=master", "target_session_attrs"],
        ["load_balance_hosts=yes", "load_balance_hosts"],
        ["channel_binding=maybe", "channel_binding"],
        ["gssencmode=bogus", "gssencmode"],
        ["sslnegotiation=bogus", "sslnegotiation"]
      ]
      for (const [text, key] of cases) {
        const e = yield* parseError(text)
        expect(e.key).toBe(key)
        expect(e.message).toContain(`invalid ${key} value`)
      }
      const e = yield* parseError("dbname=x sslmode=bogus")
      expect(e.message).toBe(`invalid sslmode value: "bogus" at position 17`)
    }))

  it.effect("non-UTF8 client_encoding, gssencmode=require and direct SSL are refused", () =>
    Effect.gen(function*() {
      const e = yield* parseError("client_encoding=LATIN1")
      expect(e.key).toBe("client_encoding")
      expect(e.message).toContain("UTF8 only")
      expect((yield* parseError("client_encoding=auto")).key).toBe("client_encoding")
      expect((yield* parseError("gssencmode=require")).message).toContain("not supported")
      expect((yield* parseError("sslnegotiation=direct")).message).toContain("not supported")
    }))

  it.effect("non-numeric or out-of-range ports name the key", () =>
    Effect.gen(function*() {
      for (const text of ["port=abc", "port=0", "port=65536", "port=5432,x", "port=5432.5", "postgresql://h:abc/d"]) {
        const e = yield* parseError(text)
        expect(e.key).toBe("port")
        expect(e.message).toContain("invalid port number")
      }
    }))

  it.effect("non-integer timeouts and keepalives name the key", () =>
    Effect.gen(function*() {
      for (const key of ["connect_timeout", "keepalives", "keepalives_idle"]) {
        const e = yield* parseError(`${key}=soon`)
        expect(e.key).toBe(key)
        expect(e.message).toBe(`invalid integer value "soon" for connection option "${key}" at position ${key.length + 1}`)
      }
      expect((yield* parseError("connect_timeout=1.5")).key).toBe("connect_timeout")
      expect((yield* parseError("keepalives_idle=-1")).key).toBe("keepalives_idle")
    }))

  it.effect("invalid hostaddr", () =>
    Effect.gen(function*() {
      const e = yield* parseError("hostaddr=db.example.com")
      expect(e.key).toBe("hostaddr")
      expect(e.message).toContain("not a numeric IP address")
    }))

  it.effect("URL syntax errors name the position", () =>
    Effect.gen(function*() {
      const e1 = yield* parseError("postgresql://[::1/db")
      expect(e1.message).toContain(`matching "]"`)
      expect(e1.position).toBe(13)
      const e2 = yield* parseError("postgresql://[]/db")
      expect(e2.message).toContain("may not be empty")
      const e3 = yield* parseError("postgresql://[::1]x/db")
      expect(e3.message).toContain(`unexpected character "x"`)
      expect(e3.position).toBe(18)
      const e4 = yield* parseError("postgresql://h/d%zz")
      expect(e4.message).toBe(`invalid percent-encoded token "%zz" in the database name of the URI at position 16`)
      expect(e4.position).toBe(16)
      const e5 = yield* parseError("postgresql://h/d%00")
      expect(e5.message).toContain("%00")
      const e6 = yield* parseError("postgresql://h/d?sslmode")
      expect(e6.message).toContain(`missing key/value separator "="`)
      const e7 = yield* parseError("postgresql://h:/d")
      expect(e7.message).toContain("missing port number")
      const e8 = yield* parseError("postgresql://h/%C3%28")
      expect(e8.message).toContain("invalid UTF-8")
      const e9 = yield* parseError("postgresql://h?ssl=false")
      expect(e9.key).toBe("ssl")
    }))

  it.effect("a bad percent-encoding in the password does not show it", () =>
    Effect.gen(function*() {
      const e = yield* parseError("postgresql://u:hunter2%zzsecret@h/d")
      expect(e.message).not.toContain("hunter2")
      expect(e.message).not.toContain("%zz")
      expect(e.message).not.toContain("secret")
      expect(e.position).toBe(22)
      const e2 = yield* parseError("postgresql://h/d?password=hunter2%zz")
      expect(e2.message).not.toContain("hunter2")
    }))

  it.effect("an unquoted password with a blank: the rest is not echoed", () =>
    Effect.gen(function*() {
      const e = yield* parseError("user=u password=hunter two")
      expect(e.key).toBe("password")
      expect(e.position).toBe(26)
      expect(e.message).toContain("quote a value that contains blanks")
      expect(e.message).not.toContain("two")
      const e2 = yield* parseError("password=hunter two=2")
      expect(e2.key).toBe("password")
      expect(e2.position).toBe(16)
      expect(e2.message).not.toContain("two")
      // a quoted password is complete: the next keyword is named as usual
      const e3 = yield* parseError("password='hunter' bogus=1")
      expect(e3.key).toBe("bogus")
      // a known keyword after an unquoted password is fine
      expect((yield* PgConfig.parse("password=x dbname=d")).database).toBe("d")
    }))

  it.effect("an unencoded / or ? in a URL password is not echoed as a port", () =>
    Effect.gen(function*() {
      for (const url of ["postgresql://u:hun/ter2@h/d", "postgresql://u:hun?ter2@h/d"]) {
        const e = yield* parseError(url)
        expect(e.key).toBe("port")
        expect(e.message).toBe("invalid port number in URI at position 15")
        expect(e.message).not.toContain("hun")
      }
    }))

  it.effect("no error message ever contains a password", () =>
    Effect.gen(function*() {
      const texts = [
        "password=hunter2 bogus",
        "password=hunter2 sslmode=bogus",
        "password=hunter2 port=x",
        "password='hunter2",
        "postgresql://u:hunter2@h/d?bogus=1",
        "postgresql://u:hunter2@[::1/d",
        "postgresql://u:hunter2@h:x/d",
        "postgresql://u:hunter2/x@h/d",
        "password=hunter 2",
        "password=hunter 2=3",
        "sslpassword=hunter 2=3",
        "sslpassword='hunter2 x"
      ]
      for (const text of texts) {
        const e = yield* parseError(text)
        expect(e.message).not.toContain("hunter2")
        expect(String(e)).not.toContain("hunter2")
        expect(Formatter.format(e)).not.toContain("hunter2")
        expect(Util.inspect(e)).not.toContain("hunter2")
      }
    }))
})

describe("PgConfig.make", () => {
  it.effect("applies the defaults", () =>
    Effect.gen(function*() {
      const config = yield* makeIn(undefined, undefined, {})
      const osUser = Os.userInfo().username
      expect(config).toEqual({
        hosts: [{ host: "localhost", port: 5432 }],
        database: osUser,
        user: osUser,
        password: undefined,
        passfile: undefined,
        applicationName: undefined,
        options: undefined,
        connectTimeout: undefined,
        sslmode: "prefer",
        sslrootcert: undefined,
        sslcert: undefined,
        sslkey: undefined,
        sslpassword: undefined,
        targetSessionAttrs: "any",
        loadBalanceHosts: "disable",
        keepalives: true,
        keepalivesIdle: undefined,
        channelBinding: "prefer"
      })
    }))

  it.effect("database defaults to the user", () =>
    Effect.gen(function*() {
      expect((yield* makeIn("user=alice")).database).toBe("alice")
      expect((yield* makeIn(undefined, undefined, { PGUSER: "bob" })).database).toBe("bob")
      expect((yield* makeIn("user=alice", undefined, { PGDATABASE: "envdb" })).database).toBe("envdb")
    }))

  it.effect("reads every PG* variable through the ConfigProvider", () =>
    Effect.gen(function*() {
      const config = yield* makeIn(undefined, undefined, {
        PGHOST: "e1,e2",
        PGHOSTADDR: "10.0.0.1,10.0.0.2",
        PGPORT: "6001,6002",
        PGDATABASE: "envdb",
        PGUSER: "envuser",
        PGPASSWORD: "envpass",
        PGPASSFILE: "/tmp/envpass",
        PGSSLMODE: "verify-ca",
        PGSSLROOTCERT: "/ca",
        PGSSLCERT: "/cert",
        PGSSLKEY: "/key",
        PGAPPNAME: "envapp",
        PGCONNECT_TIMEOUT: "7",
        PGOPTIONS: "-c geqo=off",
        PGTARGETSESSIONATTRS: "standby",
        PGLOADBALANCEHOSTS: "random",
        PGCHANNELBINDING: "disable"
      })
      expect(config.hosts).toEqual([
        { host: "e1", port: 6001, hostaddr: "10.0.0.1" },
        { host: "e2", port: 6002, hostaddr: "10.0.0.2" }
      ])
      expect(config.database).toBe("envdb")
      expect(config.user).toBe("envuser")
      expect(secretOf(config.password)).toBe("envpass")
      expect(config.passfile).toBe("/tmp/envpass")
      expect(config.sslmode).toBe("verify-ca")
      expect([config.sslrootcert, config.sslcert, config.sslkey]).toEqual(["/ca", "/cert", "/key"])
      expect(config.applicationName).toBe("envapp")
      expect(config.connectTimeout).toBe(7)
      expect(config.options).toBe("-c geqo=off")
      expect(config.targetSessionAttrs).toBe("standby")
      expect(config.loadBalanceHosts).toBe("random")
      expect(config.channelBinding).toBe("disable")
    }))

  it.effect("also works with ConfigProvider.fromUnknown", () =>
    Effect.gen(function*() {
      const config = yield* PgConfig.make().pipe(
        Effect.provideService(
          ConfigProvider.ConfigProvider,
          ConfigProvider.fromUnknown({ PGHOST: "fromunknown", PGPORT: 7777, PGUSER: "x" })
        )
      )
      expect(config.hosts).toEqual([{ host: "fromunknown", port: 7777 }])
    }))

  it.effect("precedence: overrides > string > environment > defaults, key by key", () =>
    Effect.gen(function*() {
      const env = { PGHOST: "envhost", PGPORT: "1111", PGDATABASE: "envdb", PGUSER: "envuser", PGAPPNAME: "envapp" }
      const config = yield* makeIn("host=strhost dbname=strdb user=struser", { user: "overuser" }, env)
      expect(config.hosts).toEqual([{ host: "strhost", port: 1111 }])
      expect(config.database).toBe("strdb")
      expect(config.user).toBe("overuser")
      expect(config.applicationName).toBe("envapp")
      expect(config.sslmode).toBe("prefer")
    }))

  it.effect("precedence with an object input and a URL", () =>
    Effect.gen(function*() {
      const env = { PGSSLMODE: "disable", PGUSER: "envuser" }
      const a = yield* makeIn({ sslmode: "require", port: 9 }, { port: 10 }, env)
      expect(a.sslmode).toBe("require")
      expect(a.hosts[0].port).toBe(10)
      const b = yield* makeIn("postgresql://urlhost/urldb", { database: "over" }, env)
      expect(b.hosts[0].host).toBe("urlhost")
      expect(b.database).toBe("over")
      expect(b.user).toBe("envuser")
      expect(b.sslmode).toBe("disable")
    }))

  it.effect("empty values count as not set", () =>
    Effect.gen(function*() {
      const config = yield* makeIn({ host: "", database: "", password: "" }, { user: "" }, {
        PGHOST: "envhost",
        PGUSER: "envuser"
      })
      expect(config.hosts[0].host).toBe("envhost")
      expect(config.user).toBe("envuser")
      expect(config.database).toBe("envuser")
      expect(config.password).toBeUndefined()
    }))

  it.effect("application_name falls back to fallback_application_name", () =>
    Effect.gen(function*() {
      expect((yield* makeIn("fallback_application_name=fb")).applicationName).toBe("fb")
      expect((yield* makeIn("fallback_application_name=fb application_name=app")).applicationName).toBe("app")
      expect((yield* makeIn("fallback_application_name=fb", undefined, { PGAPPNAME: "env", PGUSER: "u" }))
        .applicationName).toBe("env")
    }))

  it.effect("pairs host and port lists", () =>
    Effect.gen(function*() {
      const config = yield* makeIn("host=a,b port=5432,5433")
      expect(config.hosts).toEqual([{ host: "a", port: 5432 }, { host: "b", port: 5433 }])
    }))

  it.effect("one port applies to every host", () =>
    Effect.gen(function*() {
      const config = yield* makeIn("host=a,b,c port=6000")
      expect(config.hosts.map((h) => h.port)).toEqual([6000, 6000, 6000])
    }))

  it.effect("empty list elements mean the default host and port", () =>
    Effect.gen(function*() {
      const config = yield* makeIn("host=a,,c port=1,,3")
      expect(config.hosts).toEqual([{ host: "a", port: 1 }, { host: "localhost", port: 5432 }, { host: "c", port: 3 }])
    }))

  it.effect("a port list applies to the default host when no host is given", () =>
    Effect.gen(function*() {
      expect((yield* makeIn("port=6000")).hosts).toEqual([{ host: "localhost", port: 6000 }])
    }))

  it.effect("mismatched host/port counts fail", () =>
    Effect.gen(function*() {
      const e = yield* makeError("host=a,b,c port=1,2")
      expect(e.key).toBe("port")
      expect(e.message).toBe("could not match 2 port numbers to 3 hosts")
      const e2 = yield* makeError("port=1,2")
      expect(e2.message).toBe("could not match 2 port numbers to 1 hosts")
    }))

  it.effect("hostaddr pairs with host; alone it names the host", () =>
    Effect.gen(function*() {
      const a = yield* makeIn("host=db.example.com hostaddr=192.0.2.1")
      expect(a.hosts).toEqual([{ host: "db.example.com", port: 5432, hostaddr: "192.0.2.1" }])
      const b = yield* makeIn("hostaddr=192.0.2.1,::1")
      expect(b.hosts).toEqual([
        { host: "192.0.2.1", port: 5432, hostaddr: "192.0.2.1" },
        { host: "::1", port: 5432, hostaddr: "::1" }
      ])
      const c = yield* makeIn("host=a,b hostaddr=,192.0.2.2")
      expect(c.hosts).toEqual([{ host: "a", port: 5432 }, { host: "b", port: 5432, hostaddr: "192.0.2.2" }])
      const e = yield* makeError("host=a,b hostaddr=192.0.2.1")
      expect(e.key).toBe("hostaddr")
      expect(e.message).toBe("could not match 2 host names to 1 hostaddr values")
    }))

  it.effect("host lists from a URL and from arrays", () =>
    Effect.gen(function*() {
      const a = yield* makeIn("postgresql://h1:5432,h2:5433/db")
      expect(a.hosts).toEqual([{ host: "h1", port: 5432 }, { host: "h2", port: 5433 }])
      expect(a.database).toBe("db")
      const b = yield* makeIn({ host: ["x", "y"], port: [1, "2"] })
      expect(b.hosts).toEqual([{ host: "x", port: 1 }, { host: "y", port: 2 }])
      const c = yield* makeIn({ host: "x,y", port: "7" })
      expect(c.hosts).toEqual([{ host: "x", port: 7 }, { host: "y", port: 7 }])
      const d = yield* makeIn("postgresql://[::1]:5433,%2Ftmp/db")
      expect(d.hosts).toEqual([{ host: "::1", port: 5433 }, { host: "/tmp", port: 5432 }])
    }))

  it.effect("Unix socket hosts", () =>
    Effect.gen(function*() {
      const config = yield* makeIn("postgresql://%2Fvar%2Frun%2Fpostgresql/db")
      expect(config.hosts).toEqual([{ host: "/var/run/postgresql", port: 5432 }])
      assert.isTrue(PgConfig.isUnixSocket(config.hosts[0]))
      assert.isFalse(PgConfig.isUnixSocket({ host: "localhost", port: 5432 }))
    }))

  it.effect("connect_timeout: unset or 0 means none, 1 becomes 2, others kept", () =>
    Effect.gen(function*() {
      expect((yield* makeIn("")).connectTimeout).toBeUndefined()
      expect((yield* makeIn("connect_timeout=0")).connectTimeout).toBeUndefined()
      expect((yield* makeIn("connect_timeout=-5")).connectTimeout).toBeUndefined()
      expect((yield* makeIn("connect_timeout=1")).connectTimeout).toBe(2)
      expect((yield* makeIn("connect_timeout=2")).connectTimeout).toBe(2)
      expect((yield* makeIn("connect_timeout=' 10 '")).connectTimeout).toBe(10)
      expect((yield* makeIn({ connectTimeout: 30 })).connectTimeout).toBe(30)
      expect((yield* makeIn({ connectTimeout: Duration.seconds(1) })).connectTimeout).toBe(2)
      expect((yield* makeIn({ connectTimeout: Duration.millis(2500) })).connectTimeout).toBe(3)
      expect((yield* makeIn({ connectTimeout: Duration.infinity })).connectTimeout).toBeUndefined()
      expect((yield* makeIn(undefined, undefined, { PGCONNECT_TIMEOUT: "1", PGUSER: "u" })).connectTimeout).toBe(2)
      // an override of 0 beats the environment: explicitly no timeout
      expect((yield* makeIn(undefined, { connectTimeout: 0 }, { PGCONNECT_TIMEOUT: "9", PGUSER: "u" })).connectTimeout)
        .toBeUndefined()
    }))

  it.effect("keepalives and keepalives_idle", () =>
    Effect.gen(function*() {
      expect((yield* makeIn("keepalives=0")).keepalives).toBe(false)
      expect((yield* makeIn("keepalives=1 keepalives_idle=60")).keepalivesIdle).toBe(60)
      expect((yield* makeIn({ keepalivesIdle: Duration.minutes(2) })).keepalivesIdle).toBe(120)
      expect((yield* makeIn({ keepalives: false })).keepalives).toBe(false)
    }))

  it.effect("password from a string, a Redacted, or PGPASSWORD", () =>
    Effect.gen(function*() {
      expect(secretOf((yield* makeIn({ password: "a" })).password)).toBe("a")
      expect(secretOf((yield* makeIn({ password: Redacted.make("b") })).password)).toBe("b")
      expect(secretOf((yield* makeIn("", undefined, { PGPASSWORD: "c", PGUSER: "u" })).password)).toBe("c")
      expect(secretOf((yield* makeIn("password=d", undefined, { PGPASSWORD: "c", PGUSER: "u" })).password)).toBe("d")
    }))

  it.effect("invalid environment variables are named", () =>
    Effect.gen(function*() {
      const e = yield* Effect.flip(makeIn(undefined, undefined, { PGSSLMODE: "bogus", PGUSER: "u" }))
      expect(e.key).toBe("PGSSLMODE")
      expect(e.message).toBe(`invalid sslmode value: "bogus" (environment variable PGSSLMODE)`)
      const e2 = yield* Effect.flip(makeIn(undefined, undefined, { PGPORT: "x", PGUSER: "u" }))
      expect(e2.key).toBe("PGPORT")
      const e3 = yield* Effect.flip(makeIn(undefined, undefined, { PGCONNECT_TIMEOUT: "soon", PGUSER: "u" }))
      expect(e3.key).toBe("PGCONNECT_TIMEOUT")
    }))

  it.effect("an invalid environment variable does not matter when it is not needed... but is still reported", () =>
    Effect.gen(function*() {
      // libpq validates what it resolves; pgfx validates every PG* variable it reads
      const e = yield* Effect.flip(makeIn("sslmode=disable", undefined, { PGSSLMODE: "bogus", PGUSER: "u" }))
      expect(e.key).toBe("PGSSLMODE")
    }))

  it.effect("invalid object inputs are named", () =>
    Effect.gen(function*() {
      const bad = (input: unknown) => makeError(input as PgConfig.PgConfigInput)
      expect((yield* bad({ sslmode: "bogus" })).key).toBe("sslmode")
      expect((yield* bad({ port: 70000 })).key).toBe("port")
      expect((yield* bad({ port: "abc" })).key).toBe("port")
      expect((yield* bad({ connectTimeout: 1.5 })).key).toBe("connectTimeout")
      expect((yield* bad({ connectTimeout: "5" })).key).toBe("connectTimeout")
      expect((yield* bad({ keepalivesIdle: -1 })).key).toBe("keepalivesIdle")
      expect((yield* bad({ keepalives: 1 })).key).toBe("keepalives")
      expect((yield* bad({ database: 5 })).key).toBe("database")
      expect((yield* bad({ host: [1] })).key).toBe("host")
      expect((yield* bad({ hostaddr: "name" })).key).toBe("hostaddr")
      expect((yield* bad({ targetSessionAttrs: "master" })).key).toBe("targetSessionAttrs")
      expect((yield* bad({ loadBalanceHosts: "on" })).key).toBe("loadBalanceHosts")
      expect((yield* bad({ dbname: "x" })).message).toBe(`input: unknown setting "dbname"`)
      const o = yield* makeError(undefined, { sslmode: "bogus" as PgConfig.SslMode })
      expect(o.message).toBe(`overrides: invalid sslmode value: "bogus"`)
      const p = yield* bad({ password: 42 })
      expect(p.key).toBe("password")
      expect(p.message).not.toContain("42")
    }))

  it.effect("string inputs fail with parse errors", () =>
    Effect.gen(function*() {
      const e = yield* makeError("dbname")
      expect(e.position).toBe(6)
    }))

  it.effect("never shows the password when printed", () =>
    Effect.gen(function*() {
      const config = yield* makeIn("password=hunter2 sslpassword=keypass host=h")
      for (const text of [
        JSON.stringify(config),
        String(config),
        `${config.password}`,
        Formatter.format(config),
        Inspectable.toStringUnknown(config),
        Util.inspect(config, { depth: 10 }),
        PgConfig.describe(config)
      ]) {
        expect(text).not.toContain("hunter2")
        expect(text).not.toContain("keypass")
      }
      expect(JSON.stringify(config)).toContain("<redacted>")
      expect(secretOf(config.password)).toBe("hunter2")
    }))
})

describe("PgConfig.describe", () => {
  it.effect("renders a conninfo-like line", () =>
    Effect.gen(function*() {
      const config = yield* makeIn("host=127.0.0.1 port=5432 dbname=test user=postgres password=x")
      expect(PgConfig.describe(config)).toBe("host=127.0.0.1 port=5432 dbname=test user=postgres sslmode=prefer")
    }))

  it.effect("lists hosts and ports, quotes values and shows non-defaults", () =>
    Effect.gen(function*() {
      const config = yield* makeIn(
        "host=a,b port=1,2 dbname='my db' user=u application_name='it\\'s' connect_timeout=5 " +
          "target_session_attrs=primary load_balance_hosts=random sslmode=require"
      )
      expect(PgConfig.describe(config)).toBe(
        "host=a,b port=1,2 dbname='my db' user=u sslmode=require application_name='it\\'s' connect_timeout=5 " +
          "target_session_attrs=primary load_balance_hosts=random"
      )
    }))

  it.effect("round-trips through parse", () =>
    Effect.gen(function*() {
      const config = yield* makeIn("host=a,b hostaddr=10.0.0.1,10.0.0.2 port=7 dbname='x \\\\ y' user=u")
      const again = yield* makeIn(PgConfig.describe(config))
      expect(again).toEqual(config)
    }))
})

describe("PgConfig.passwordFor", () => {
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "pgfx-pgpass-"))
  afterAll(() => Fs.rmSync(dir, { recursive: true, force: true }))
  let n = 0
  const passfile = (content: string, mode = 0o600): string => {
    const file = Path.join(dir, `pgpass-${n++}`)
    Fs.writeFileSync(file, content)
    Fs.chmodSync(file, mode)
    return file
  }
  const lookup = (
    file: string,
    host: PgConfig.HostSpec,
    settings: PgConfig.PgConfigInput = {}
  ) =>
    Effect.gen(function*() {
      const config = yield* makeIn({ database: "db", user: "alice", ...settings, passfile: file })
      return secretOf(yield* PgConfig.passwordFor(config, host))
    })
  const h = (host: string, port = 5432): PgConfig.HostSpec => ({ host, port })

  it.effect("an explicit password wins over the file", () =>
    Effect.gen(function*() {
      const file = passfile("*:*:*:*:fromfile\n")
      expect(yield* lookup(file, h("x"), { password: "explicit" })).toBe("explicit")
      expect(yield* lookup(file, h("x"))).toBe("fromfile")
    }))

  it.effect("matches host, port, database and user; the first match wins", () =>
    Effect.gen(function*() {
      const file = passfile(
        [
          "# comment:line:with:colons:nope",
          "",
          "other:5432:db:alice:wronghost",
          "db1:5433:db:alice:wrongport",
          "db1:5432:otherdb:alice:wrongdb",
          "db1:5432:db:bob:wronguser",
          "db1:5432:db:alice:right",
          "db1:5432:db:alice:second"
        ].join("\n")
      )
      expect(yield* lookup(file, h("db1"))).toBe("right")
      expect(yield* lookup(file, h("db1", 5433))).toBe("wrongport")
      expect(yield* lookup(file, h("nowhere"))).toBeUndefined()
    }))

  it.effect("* is a wildcard only alone; \\* matches a literal *", () =>
    Effect.gen(function*() {
      const file = passfile("\\*:*:*:*:literal\ndb*:*:*:*:prefix\n*:5432:*:alice:wild\n")
      expect(yield* lookup(file, h("*"))).toBe("literal")
      expect(yield* lookup(file, h("db1"))).toBe("wild")
      expect(yield* lookup(file, h("db*"))).toBe("prefix")
    }))

  it.effect("\\: and \\\\ escapes in fields and the password", () =>
    Effect.gen(function*() {
      const file = passfile(String.raw`h:5432:we\:ird\\db:alice:pa\:ss\\word` + "\n")
      expect(yield* lookup(file, h("h"), { database: "we:ird\\db" })).toBe("pa:ss\\word")
    }))

  it.effect("the password ends at an unescaped colon; CRLF line ends are fine", () =>
    Effect.gen(function*() {
      const file = passfile("h:5432:db:alice:pw:extra\r\nh2:5432:db:alice:crlf\r\n")
      expect(yield* lookup(file, h("h"))).toBe("pw")
      expect(yield* lookup(file, h("h2"))).toBe("crlf")
    }))

  it.effect("lines with too few fields are skipped; an empty password is no password", () =>
    Effect.gen(function*() {
      const file = passfile("h:5432:db\nh:5432:db:alice:\n*:*:*:*:fallback\n")
      expect(yield* lookup(file, h("h"))).toBeUndefined()
      expect(yield* lookup(file, h("other"))).toBe("fallback")
    }))

  it.effect("a Unix-socket host matches localhost (and its directory)", () =>
    Effect.gen(function*() {
      const file = passfile("localhost:5432:db:alice:socketpw\n")
      expect(yield* lookup(file, h("/var/run/postgresql"))).toBe("socketpw")
      const file2 = passfile("/tmp:5432:db:alice:dirpw\n")
      expect(yield* lookup(file2, h("/tmp"))).toBe("dirpw")
    }))

  it.effect("a host given only by hostaddr matches the address", () =>
    Effect.gen(function*() {
      const file = passfile("10.0.0.5:5432:db:alice:addrpw\n")
      const config = yield* makeIn({ hostaddr: "10.0.0.5", database: "db", user: "alice", passfile: file })
      expect(secretOf(yield* PgConfig.passwordFor(config, config.hosts[0]))).toBe("addrpw")
    }))

  it.effect("uses the resolved database and user (database defaults to user)", () =>
    Effect.gen(function*() {
      const file = passfile("h:5432:alice:alice:samename\n")
      const config = yield* makeIn({ user: "alice", passfile: file })
      expect(secretOf(yield* PgConfig.passwordFor(config, config.hosts[0]))).toBeUndefined()
      const config2 = yield* makeIn({ user: "alice", host: "h", passfile: file })
      expect(secretOf(yield* PgConfig.passwordFor(config2, config2.hosts[0]))).toBe("samename")
    }))

  it.effect("reads the file named by PGPASSFILE", () =>
    Effect.gen(function*() {
      const file = passfile("*:*:*:*:envfile\n")
      const config = yield* makeIn("host=h", undefined, { PGPASSFILE: file, PGUSER: "u" })
      expect(secretOf(yield* PgConfig.passwordFor(config, config.hosts[0]))).toBe("envfile")
    }))

  it.effect("a missing file is no password, not an error", () =>
    Effect.gen(function*() {
      expect(yield* lookup(Path.join(dir, "does-not-exist"), h("h"))).toBeUndefined()
      expect(yield* lookup(Path.join(dir, "no-dir", "file"), h("h"))).toBeUndefined()
    }))

  it.effect.skipIf(process.platform === "win32")("a group- or world-accessible file is ignored with a warning", () =>
    Effect.gen(function*() {
      const logs: Array<string> = []
      const capture = Logger.make((options) => {
        logs.push(`${options.logLevel}: ${Formatter.format(options.message)}`)
      })
      const withCapture = Effect.provideService(Logger.CurrentLoggers, new Set([capture]))
      const world = passfile("*:*:*:*:leaked\n", 0o644)
      expect(yield* lookup(world, h("h")).pipe(withCapture)).toBeUndefined()
      const group = passfile("*:*:*:*:leaked\n", 0o640)
      expect(yield* lookup(group, h("h")).pipe(withCapture)).toBeUndefined()
      const groupWrite = passfile("*:*:*:*:leaked\n", 0o620)
      expect(yield* lookup(groupWrite, h("h")).pipe(withCapture)).toBeUndefined()
      expect(logs.length).toBe(3)
      expect(logs[0]).toContain("Warn")
      expect(logs[0]).toContain("group or world access")
      expect(logs.join("\n")).not.toContain("leaked")
      const ok = passfile("*:*:*:*:private\n", 0o400)
      expect(yield* lookup(ok, h("h")).pipe(withCapture)).toBe("private")
      expect(logs.length).toBe(3)
    }))

  it.effect("a directory is not a password file", () =>
    Effect.gen(function*() {
      expect(yield* lookup(dir, h("h"))).toBeUndefined()
    }))

  it("defaultPassfile is ~/.pgpass on POSIX", () => {
    if (process.platform !== "win32") expect(PgConfig.defaultPassfile()).toBe(Path.join(Os.homedir(), ".pgpass"))
  })
})
