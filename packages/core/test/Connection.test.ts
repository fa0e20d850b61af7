/**
 * The connection engine against a real server: every behaviour asserted on
 * the server's own state where it has one.
 */
import { describe, expect, it, layer } from "@effect/vitest"
import * as PgTypes from "@effect/sql-pg/PgTypes"
import { Cause, Effect, Exit, Fiber, Logger } from "effect"
import * as net from "node:net"
import { Connection, PgConfig, PgError } from "../src/index.ts"
import { TestDatabase } from "../../../test/harness.ts"

/** A second session on the test database, for looking at the first from outside. */
const observer = Effect.flatMap(TestDatabase.url, (url) => Connection.connect(url))

const activity = (observerConn: Connection.Connection, pid: number) =>
  Effect.map(
    observerConn.execute("SELECT state, wait_event FROM pg_stat_activity WHERE pid = $1", [pid]),
    (result) => result.rows[0] as ReadonlyArray<string> | undefined
  )

layer(TestDatabase.layer, { excludeTestServices: true })("Connection", (it) => {
  it.effect("connects, reports its session and runs a simple query", () =>
    Effect.gen(function*() {
      const conn = yield* Connection.connect(yield* TestDatabase.url)
      expect(conn.info.backendPid).toBeGreaterThan(0)
      expect(conn.info.serverVersion).toBeGreaterThanOrEqual(150000)
      expect(conn.info.transactionStatus).toBe("IDLE")
      expect(conn.info.parameterStatus("client_encoding")).toBe("UTF8")
      const result = yield* conn.execute("SELECT pg_backend_pid(), 1 + 1 AS two")
      expect(result.rows).toEqual([[conn.info.backendPid, 2]])
      expect(result.fields.map((field) => field.name)).toEqual(["pg_backend_pid", "two"])
      expect(result.command).toBe("SELECT")
      expect(result.rowCount).toBe(1)
    }))

  it.effect("runs the seed's first snippet with bind parameters", () =>
    Effect.gen(function*() {
      const conn = yield* Connection.connect(yield* TestDatabase.url)
      yield* conn.execute("CREATE TABLE seed_test (id serial PRIMARY KEY, num integer, data text)")
      const inserted = yield* conn.execute("INSERT INTO seed_test (num, data) VALUES ($1, $2)", [100, "abc'def"])
      expect(inserted.command).toBe("INSERT")
      expect(inserted.rowCount).toBe(1)
      const selected = yield* conn.execute("SELECT * FROM seed_test", [])
      expect(selected.rows).toEqual([[1, 100, "abc'def"]])
      // The text was sent as a value, never spliced: the quote survived intact.
      const spliced = yield* conn.execute("SELECT count(*) FROM seed_test WHERE data = $1", ["abc'def"])
      expect(spliced.rows).toEqual([[1n]])
    }))

  it.effect("runs multi-statement scripts through the simple protocol", () =>
    Effect.gen(function*() {
      const conn = yield* Connection.connect(yield* TestDatabase.url)
      const result = yield* conn.execute(
        "CREATE TEMP TABLE script (x int); INSERT INTO script VALUES (1), (2); SELECT x FROM script ORDER BY x"
      )
      expect(result.results.map((r) => r.command)).toEqual(["CREATE", "INSERT", "SELECT"])
      expect(result.results[1].rowCount).toBe(2)
      expect(result.results[2].rows).toEqual([[1], [2]])
    }))

  it.effect("decodes the built-in types identically through text and binary results", () =>
    Effect.gen(function*() {
      const conn = yield* Connection.connect(yield* TestDatabase.url, { prepareThreshold: 0 })
      yield* conn.execute("SET TimeZone = 'UTC'")
      const select = `SELECT
        true, 32767::int2, 2147483647::int4, 9007199254740993::int8, 1.5::float4, 0.1::float8,
        '12345678901234567890.000000000001'::numeric, 'héllo'::text, 'v'::varchar, 'n'::name,
        '\\x00ff'::bytea, '2024-02-29'::date, '13:14:15.123456'::time,
        '2024-01-02 03:04:05.678'::timestamp, '2024-01-02 03:04:05.678+00'::timestamptz,
        '1 year 2 mons 3 days 04:05:06.789'::interval, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid,
        '{"a":[1,2]}'::json, '{"b":null}'::jsonb, '192.168.0.1/24'::inet, 42::oid,
        ARRAY[1,2,NULL]::int4[], ARRAY['a','b c','d"e']::text[], ARRAY[]::int8[]`
      const text = yield* conn.execute(select)
      const binary = yield* conn.execute(select, [])
      expect(binary.rows).toEqual(text.rows)
      const row = binary.rows[0]
      expect(row[0]).toBe(true)
      expect(row[3]).toBe(9007199254740993n)
      expect(row[6]).toBe("12345678901234567890.000000000001")
      expect(row[7]).toBe("héllo")
      expect(row[10]).toEqual(Uint8Array.of(0, 255))
      expect(row[17]).toEqual({ a: [1, 2] })
      expect(row[21]).toEqual([1, 2, null])
      expect(row[22]).toEqual(["a", "b c", "d\"e"])
    }))

  it.effect("returns values of types it has no codec for as text, in both protocols", () =>
    Effect.gen(function*() {
      const conn = yield* Connection.connect(yield* TestDatabase.url)
      yield* conn.execute("CREATE TYPE mood AS ENUM ('happy', 'sad')")
      const sql = "SELECT 'happy'::mood, point(1,2), ROW(1,'x'), '[1,3)'::int4range"
      const text = yield* conn.execute(sql)
      expect(text.rows[0]).toEqual(["happy", "(1,2)", "(1,x)", "[1,3)"])
      for (let run = 0; run < 7; run++) {
        const extended = yield* conn.execute(sql, [])
        expect(extended.rows[0]).toEqual(["happy", "(1,2)", "(1,x)", "[1,3)"])
      }
    }))

  it.effect("encodes parameters from JS values with the right types", () =>
    Effect.gen(function*() {
      const conn = yield* Connection.connect(yield* TestDatabase.url)
      const result = yield* conn.execute(
        "SELECT pg_typeof($1)::text, pg_typeof($2)::text, pg_typeof($3)::text, pg_typeof($4)::text, pg_typeof($5)::text, pg_typeof($6)::text, pg_typeof($7)::text, $3, $4",
        [42, 2 ** 40, 1.5, 2n ** 70n, true, new Uint8Array([1]), [1, 2]]
      )
      expect(result.rows[0]).toEqual([
        "integer",
        "bigint",
        "double precision",
        "numeric",
        "boolean",
        "bytea",
        "integer[]",
        1.5,
        (2n ** 70n).toString()
      ])
      const typed = yield* conn.execute("SELECT $1::int2 + 1", [PgTypes.int2(5)])
      expect(typed.rows).toEqual([[6]])
    }))

  it.effect("prepares a statement at its sixth execution (prepare_threshold 5)", () =>
    Effect.gen(function*() {
      const conn = yield* Connection.connect(yield* TestDatabase.url)
      const counts: Array<unknown> = []
      for (let run = 0; run < 10; run++) {
        yield* conn.execute("SELECT $1::int", [run])
        const prepared = yield* conn.execute("SELECT count(*)::int FROM pg_prepared_statements WHERE name <> ''")
        counts.push(prepared.rows[0][0])
      }
      expect(counts).toEqual([0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    }))

  it.effect("never prepares with prepareThreshold null, and evicts the least recently used past preparedMax", () =>
    Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const never = yield* Connection.connect(url, { prepareThreshold: null })
      for (let run = 0; run < 8; run++) yield* never.execute("SELECT $1::int", [run])
      const none = yield* never.execute("SELECT count(*)::int FROM pg_prepared_statements")
      expect(none.rows).toEqual([[0]])

      const lru = yield* Connection.connect(url, { prepareThreshold: 0, preparedMax: 2 })
      for (const n of [1, 2, 3]) yield* lru.execute(`SELECT ${n} + $1::int`, [0])
      yield* lru.execute("SELECT 0", [])
      // Evicted statements are closed with the next extended-protocol request.
      const names = yield* lru.execute(
        "SELECT statement FROM pg_prepared_statements ORDER BY prepare_time",
        [],
        { prepare: false }
      )
      expect(names.rows.map((row) => row[0])).toEqual(["SELECT 3 + $1::int", "SELECT 0"])
    }))

  it.effect("forgets prepared statements after DISCARD ALL and keeps working", () =>
    Effect.gen(function*() {
      const conn = yield* Connection.connect(yield* TestDatabase.url, { prepareThreshold: 0 })
      yield* conn.execute("SELECT $1::int", [1])
      yield* conn.execute("DISCARD ALL")
      const again = yield* conn.execute("SELECT $1::int", [2])
      expect(again.rows).toEqual([[2]])
    }))

  it.effect("an execute effect runs afresh each time it is run", () =>
    Effect.gen(function*() {
      const conn = yield* Connection.connect(yield* TestDatabase.url)
      yield* conn.execute("CREATE TEMP SEQUENCE again")
      const next = conn.execute("SELECT nextval('again')::int")
      const nextExtended = conn.execute("SELECT nextval('again')::int", [])
      const values: Array<unknown> = []
      for (let run = 0; run < 3; run++) {
        values.push((yield* next).rows[0][0], (yield* nextExtended).rows[0][0])
      }
      expect(values).toEqual([1, 2, 3, 4, 5, 6])
    }))

  it.effect("queues concurrent callers instead of interleaving them", () =>
    Effect.gen(function*() {
      const conn = yield* Connection.connect(yield* TestDatabase.url)
      const results = yield* Effect.forEach(
        Array.from({ length: 50 }, (_, index) => index),
        (n) => conn.execute("SELECT $1::int * 2, pg_sleep(0.001)", [n]),
        { concurrency: "unbounded" }
      )
      expect(results.map((result) => result.rows[0][0])).toEqual(
        Array.from({ length: 50 }, (_, index) => index * 2)
      )
    }))

  it.effect("keeps ParameterStatus values current", () =>
    Effect.gen(function*() {
      const conn = yield* Connection.connect(yield* TestDatabase.url)
      yield* conn.execute("SET application_name = 'pgfx-status'")
      expect(conn.info.parameterStatus("application_name")).toBe("pgfx-status")
    }))

  it.effect("sends notices to the Effect logger", () =>
    Effect.gen(function*() {
      const conn = yield* Connection.connect(yield* TestDatabase.url)
      const lines: Array<string> = []
      const capture = Logger.make(({ message }) => {
        lines.push(String(Array.isArray(message) ? message.join(" ") : message))
      })
      yield* conn.execute("DO $$ BEGIN RAISE NOTICE 'hello from plpgsql'; END $$").pipe(
        Effect.provide(Logger.layer([capture]))
      )
      expect(lines.some((line) => line.includes("hello from plpgsql"))).toBe(true)
    }))
})

layer(TestDatabase.layer, { excludeTestServices: true })("errors", (it) => {
  it.effect("maps SQLSTATEs to tagged errors with every diagnostic field", () =>
    Effect.gen(function*() {
      const conn = yield* Connection.connect(yield* TestDatabase.url)
      yield* conn.execute("CREATE TEMP TABLE test_exc (data int constraint chk_eq1 check (data = 1))")
      const error = yield* Effect.flip(conn.execute("INSERT INTO test_exc VALUES ($1)", [2]))
      expect(error._tag).toBe("CheckViolation")
      if (error._tag !== "CheckViolation") return
      expect(error.sqlState).toBe("23514")
      expect(error.constraint).toBe("chk_eq1")
      expect(error.table).toBe("test_exc")
      expect(error.schema?.startsWith("pg_temp")).toBe(true)
      expect(error.severityNonLocalized).toBe("ERROR")
      expect(error.errorClass).toBe("IntegrityError")
      const sqlError = PgError.toSqlError(error)
      expect(sqlError.reason._tag).toBe("ConstraintError")

      const missing = yield* Effect.flip(conn.execute("SELECT * FROM wat"))
      expect(missing._tag).toBe("UndefinedTable")
      expect(missing.message).toContain("wat")
      expect(missing.message).not.toContain("ERROR")
      if (missing._tag === "UndefinedTable") expect(missing.position).toBe(15)

      const custom = yield* Effect.flip(
        conn.execute("DO $$ BEGIN RAISE EXCEPTION 'custom' USING ERRCODE = 'PXX99'; END $$")
      )
      expect(custom._tag).toBe("ServerError")
      if (custom._tag === "ServerError") {
        expect(custom.sqlState).toBe("PXX99")
        expect(custom.errorClass).toBe("ProgrammingError")
      }
      // Still usable after every error.
      expect((yield* conn.execute("SELECT 1", [])).rows).toEqual([[1]])
    }))

  it.effect("reports unique violations with the constraint, through both protocols", () =>
    Effect.gen(function*() {
      const conn = yield* Connection.connect(yield* TestDatabase.url)
      yield* conn.execute("CREATE TEMP TABLE uniq (id int PRIMARY KEY)")
      yield* conn.execute("INSERT INTO uniq VALUES (1)")
      const simple = yield* Effect.flip(conn.execute("INSERT INTO uniq VALUES (1)"))
      const extended = yield* Effect.flip(conn.execute("INSERT INTO uniq VALUES ($1)", [1]))
      for (const error of [simple, extended]) {
        expect(error._tag).toBe("UniqueViolation")
        if (error._tag === "UniqueViolation") expect(error.constraint).toBe("uniq_pkey")
      }
      expect(PgError.toSqlError(extended).reason._tag).toBe("UniqueViolation")
    }))

  it.effect("refuses bad parameters before sending anything, and stays usable", () =>
    Effect.gen(function*() {
      const conn = yield* Connection.connect(yield* TestDatabase.url)
      const nul = yield* Effect.flip(conn.execute("SELECT $1::text", ["a\u0000b"]))
      expect(nul._tag).toBe("ParameterError")
      expect(nul.message).toContain("$1")
      const surrogate = yield* Effect.flip(conn.execute("SELECT $1::text", ["\ud800"]))
      expect(surrogate._tag).toBe("ParameterError")
      const tooBig = yield* Effect.flip(conn.execute("SELECT $1", [PgTypes.int2(70000)]))
      expect(tooBig._tag).toBe("ParameterError")
      const count = yield* Effect.flip(conn.execute("SELECT $1::int, $2::int", [1]))
      expect(count._tag).toBe("ParameterError")
      expect(count.message).toContain("2")
      const nulSql = yield* Effect.flip(conn.execute("SELECT 1\u0000"))
      expect(nulSql._tag).toBe("ParameterError")
      expect(conn.info.transactionStatus).toBe("IDLE")
      expect((yield* conn.execute("SELECT $1::int", [7])).rows).toEqual([[7]])
    }))

  it.effect("refuses COPY through execute without breaking the session", () =>
    Effect.gen(function*() {
      const conn = yield* Connection.connect(yield* TestDatabase.url)
      yield* conn.execute("CREATE TEMP TABLE c (x int)")
      const copyIn = yield* Effect.flip(conn.execute("COPY c FROM STDIN"))
      expect(copyIn._tag).toBe("InterfaceError")
      const copyOut = yield* Effect.flip(conn.execute("COPY (SELECT 1) TO STDOUT"))
      expect(copyOut._tag).toBe("InterfaceError")
      expect((yield* conn.execute("SELECT count(*)::int FROM c")).rows).toEqual([[0]])
    }))
})

layer(TestDatabase.layer, { excludeTestServices: true })("interruption and closing", (it) => {
  it.effect("interrupting a running statement cancels it on the server and keeps the connection", () =>
    Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const conn = yield* Connection.connect(url)
      const watcher = yield* observer
      const started = Date.now()
      const outcome = yield* conn.execute("SELECT pg_sleep(10)").pipe(Effect.timeout("300 millis"), Effect.exit)
      expect(Exit.isFailure(outcome)).toBe(true)
      // the cancel and the drain go on after the deadline; the session waits for them
      yield* conn.session.settled
      expect(Date.now() - started).toBeLessThan(3000)
      const state = yield* activity(watcher, conn.info.backendPid)
      expect(state?.[0]).toBe("idle")
      expect(conn.closed).toBe(false)
      expect((yield* conn.execute("SELECT 42", [])).rows).toEqual([[42]])
    }))

  it.effect("an interrupted fiber sees an interruption, not a QueryCanceled error", () =>
    Effect.gen(function*() {
      const conn = yield* Connection.connect(yield* TestDatabase.url)
      const fiber = yield* Effect.forkChild(conn.execute("SELECT pg_sleep(10)"))
      yield* Effect.sleep("200 millis")
      yield* Fiber.interrupt(fiber)
      const exit = yield* Fiber.await(fiber)
      expect(Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause)).toBe(true)
      yield* conn.session.settled
      expect(conn.info.transactionStatus).toBe("IDLE")
    }))

  it.effect("a server-side termination fails with a typed error and marks the connection broken", () =>
    Effect.gen(function*() {
      const conn = yield* Connection.connect(yield* TestDatabase.url)
      const error = yield* Effect.flip(conn.execute("SELECT pg_terminate_backend(pg_backend_pid())"))
      expect(error._tag).toBe("ConnectionError")
      if (error._tag === "ConnectionError") {
        expect(error.reason).toBe("Terminated")
        expect(error.sqlState).toBe("57P01")
      }
      expect(conn.closed).toBe(true)
      expect(conn.broken).toBe(true)
      const after = yield* Effect.flip(conn.execute("SELECT 1"))
      expect(after._tag).toBe("ConnectionError")
    }))

  it.effect("closing the scope sends Terminate and the session disappears", () =>
    Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const watcher = yield* observer
      const pid = yield* Effect.scoped(
        Effect.map(Connection.connect(url), (conn) => conn.info.backendPid)
      )
      let state = yield* activity(watcher, pid)
      for (let tries = 0; state !== undefined && tries < 50; tries++) {
        yield* Effect.sleep("20 millis")
        state = yield* activity(watcher, pid)
      }
      expect(state).toBeUndefined()
    }))

  it.effect("close is idempotent and a closed connection fails with a typed error", () =>
    Effect.gen(function*() {
      const conn = yield* Connection.connect(yield* TestDatabase.url)
      yield* conn.close
      yield* conn.close
      expect(conn.closed).toBe(true)
      expect(conn.broken).toBe(false)
      const error = yield* Effect.flip(conn.execute("SELECT 1"))
      expect(error._tag).toBe("ConnectionError")
    }))
})

describe("connect failures", () => {
  it.effect("fails fast on a refused port", () =>
    Effect.gen(function*() {
      const port = yield* freePort
      const error = yield* Effect.flip(Effect.scoped(Connection.connect(`host=127.0.0.1 port=${port} user=x`)))
      expect(error._tag).toBe("ConnectionError")
      if (error._tag === "ConnectionError") expect(error.reason).toBe("Refused")
    }))

  it.effect("reports an unknown host", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(
        Effect.scoped(Connection.connect("host=no-such-host.invalid port=5432 user=x connect_timeout=5"))
      )
      expect(error._tag).toBe("ConnectionError")
      if (error._tag === "ConnectionError") expect(error.reason).toBe("UnknownHost")
    }))

  it.live("channel_binding=require refuses a server that lets the client in without channel binding", () =>
    Effect.gen(function*() {
      // a server that lets anyone in (trust): binding never happened, so the client refuses it
      const port = yield* fakeServer((socket) => {
        socket.once("data", () => socket.write(Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 0]))) // AuthenticationOk
      })
      const error = yield* Effect.flip(Effect.scoped(Connection.connect(
        `host=127.0.0.1 port=${port} user=x sslmode=disable channel_binding=require connect_timeout=5`
      )))
      expect(error._tag).toBe("ConnectionError")
      if (error._tag === "ConnectionError") expect(error.reason).toBe("Authentication")
      expect(error.message).toContain("channel_binding=require")
    }))

  it.effect("names the key and position of malformed conninfo", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Effect.scoped(Connection.connect("dbname test")))
      expect(error._tag).toBe("PgConfigError")
      expect(error.message).toContain("dbname")
    }))

  it.live("recognises a server that is not PostgreSQL", () =>
    Effect.gen(function*() {
      const server = yield* fakeServer((socket) => {
        socket.on("data", () => socket.end("HTTP/1.1 400 Bad Request\r\n\r\n"))
      })
      const error = yield* Effect.flip(
        Effect.scoped(Connection.connect(`host=127.0.0.1 port=${server} user=x sslmode=disable connect_timeout=3`))
      )
      expect(error._tag).toBe("ProtocolError")
    }))

  it.live("honours connect_timeout against a silent listener and moves on to the next host", () =>
    Effect.gen(function*() {
      const silent = yield* fakeServer(() => {})
      const url = yield* TestDatabase.url
      const real = yield* PgConfig.make(url)
      const { host, port } = real.hosts[0]
      const started = Date.now()
      const conn = yield* Connection.connect({
        ...real,
        hosts: [{ host: "127.0.0.1", port: silent }, { host, port }],
        connectTimeout: 2
      })
      const elapsed = Date.now() - started
      expect(elapsed).toBeGreaterThanOrEqual(1900)
      expect(elapsed).toBeLessThan(4000)
      expect(conn.info.port).toBe(port)
    }).pipe(Effect.scoped, TestDatabase.provide))

  it.live("an interrupt stops connection attempts at once", () =>
    Effect.gen(function*() {
      const silent = yield* fakeServer(() => {})
      const started = Date.now()
      const exit = yield* Effect.exit(
        Effect.scoped(Connection.connect(`host=127.0.0.1 port=${silent} user=x connect_timeout=10`)).pipe(
          Effect.timeout("200 millis")
        )
      )
      expect(Exit.isFailure(exit)).toBe(true)
      expect(Date.now() - started).toBeLessThan(1500)
    }))

  it.live("reports every failed attempt when all hosts fail", () =>
    Effect.gen(function*() {
      const a = yield* freePort
      const b = yield* freePort
      const error = yield* Effect.flip(
        Effect.scoped(Connection.connect(`host=127.0.0.1,127.0.0.1 port=${a},${b} user=x`))
      )
      expect(error.message).toContain("Multiple connection attempts failed. All failures were:")
      expect(error.message).toContain(`host: '127.0.0.1', port: '${a}', hostaddr: '127.0.0.1'`)
      expect(error.message).toContain(`port: '${b}'`)
    }))

  it.live("target_session_attrs skips servers that do not match", () =>
    Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const config = yield* PgConfig.make(url)
      const readWrite = yield* Connection.connect({ ...config, targetSessionAttrs: "read-write" })
      expect(readWrite.info.backendPid).toBeGreaterThan(0)
      const standby = yield* Effect.flip(Connection.connect({ ...config, targetSessionAttrs: "standby" }))
      expect(standby._tag).toBe("ConnectionError")
      if (standby._tag === "ConnectionError") expect(standby.reason).toBe("TargetSessionAttrs")
      const preferStandby = yield* Connection.connect({ ...config, targetSessionAttrs: "prefer-standby" })
      expect(preferStandby.info.backendPid).toBeGreaterThan(0)
    }).pipe(Effect.scoped, TestDatabase.provide))
})

/** A TCP listener on a free loopback port that hands each socket to `onSocket`. */
const fakeServer = (onSocket: (socket: net.Socket) => void) =>
  Effect.acquireRelease(
    Effect.callback<{ server: net.Server; port: number }>((resume) => {
      const sockets = new Set<net.Socket>()
      const server = net.createServer((socket) => {
        sockets.add(socket)
        socket.on("error", () => {})
        onSocket(socket)
      })
      server.on("close", () => sockets.forEach((socket) => socket.destroy()))
      ;(server as net.Server & { sockets?: Set<net.Socket> }).sockets = sockets
      server.listen(0, "127.0.0.1", () => {
        resume(Effect.succeed({ server, port: (server.address() as net.AddressInfo).port }))
      })
    }),
    ({ server }) =>
      Effect.sync(() => {
        ;(server as net.Server & { sockets?: Set<net.Socket> }).sockets?.forEach((socket) => socket.destroy())
        server.close()
      })
  ).pipe(Effect.map(({ port }) => port))

const freePort = Effect.callback<number>((resume) => {
  const server = net.createServer()
  server.listen(0, "127.0.0.1", () => {
    const port = (server.address() as net.AddressInfo).port
    server.close(() => resume(Effect.succeed(port)))
  })
})
