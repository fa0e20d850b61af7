/**
 * COPY FROM STDIN against a real server: psycopg's COPY cases T03, T04,
 * T07, T08, T12 (COPY FROM side) and T13, the seed's `write_row` snippet,
 * bad input, and transactions.
 */
import { expect, layer } from "@effect/vitest"
import { PgError, PgValue } from "@pgfx/core"
import { Cause, Deferred, Effect, Exit, Fiber, Stream } from "effect"
import { Copy } from "../src/index.ts"
import { TestDatabase } from "../../../test/harness.ts"
import {
  backendState,
  Boom,
  connect,
  copyInRows,
  createCopyIn,
  expectNoIdleInTransaction,
  sampleBinary,
  sampleRecords,
  sampleText,
  scenario,
  utf8
} from "./helpers.ts"

layer(TestDatabase.layer, { excludeTestServices: true })("Copy.from", (it) => {
  it.effect("copies the seed's records with writeRow (text, NULL as None)", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      yield* conn.execute("CREATE TABLE out_table_name (col1 int, col2 int, col3 text)")
      const records = [[10, 20, "hello"], [40, null, "world"]]
      const rows = yield* Effect.scoped(Effect.gen(function*() {
        const copy = yield* Copy.from(conn, "COPY out_table_name (col1, col2, col3) FROM STDIN")
        for (const record of records) yield* copy.writeRow(record)
        return yield* copy.finish
      }))
      expect(rows).toBe(2)
      expect((yield* conn.execute("SELECT * FROM out_table_name ORDER BY 1")).rows).toEqual(records)
      expect(conn.info.transactionStatus).toBe("IDLE")
    }))

  it.effect("T03 writes whole buffers: text bytes, a text string, binary bytes", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      for (const [format, data] of [["text", utf8(sampleText)], ["text", sampleText], ["binary", sampleBinary]] as const) {
        yield* createCopyIn(conn)
        const rows = yield* Effect.scoped(Effect.gen(function*() {
          const copy = yield* Copy.from(conn, "COPY copy_in FROM STDIN", { format })
          yield* copy.write(data)
          return yield* copy.finish
        }))
        expect(rows).toBe(2)
        expect(yield* copyInRows(conn)).toEqual(sampleRecords)
      }
    }))

  it.effect("T04 writeRow: text infers, binary needs int4 values or types", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      const variants = [
        { format: "text", rows: sampleRecords, types: undefined },
        {
          format: "binary",
          rows: sampleRecords.map(([a, b, c]) => [PgValue.int4(a), b === null ? null : PgValue.int4(b), c]),
          types: undefined
        },
        { format: "binary", rows: sampleRecords, types: ["int4", "int4", "text"] }
      ] as const
      for (const variant of variants) {
        yield* createCopyIn(conn)
        yield* Effect.scoped(Effect.gen(function*() {
          const copy = yield* Copy.from(conn, "COPY copy_in FROM STDIN", {
            format: variant.format,
            types: variant.types
          })
          for (const row of variant.rows) yield* copy.writeRow(row as ReadonlyArray<unknown> as never)
          expect(yield* copy.finish).toBe(2)
        }))
        expect(yield* copyInRows(conn)).toEqual(sampleRecords)
      }
    }))

  it.effect("T04 types pin the dumpers: jsonb and bigint in both formats", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      for (const format of ["text", "binary", "csv"] as const) {
        yield* conn.execute("DROP TABLE IF EXISTS st; CREATE TABLE st (data jsonb, data2 bigint)")
        yield* Effect.scoped(Effect.gen(function*() {
          const copy = yield* Copy.from(conn, "COPY st (data, data2) FROM STDIN", { format, types: ["jsonb", "bigint"] })
          yield* copy.writeRow([{ foo: "bar" }, 123])
          yield* copy.finish
        }))
        expect((yield* conn.execute("SELECT data, data2 FROM st")).rows).toEqual([[{ foo: "bar" }, BigInt(123)]])
      }
    }))

  it.effect("T04 binary without types sends small integers as int4: a bigint column refuses them", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      yield* conn.execute("CREATE TABLE big (a bigint)")
      const error = yield* Effect.flip(Effect.scoped(Effect.gen(function*() {
        const copy = yield* Copy.from(conn, "COPY big FROM STDIN", { format: "binary" })
        yield* copy.writeRow([1])
        return yield* copy.finish
      })))
      // "incorrect binary data format" (22P03) or "insufficient data left in message" (08P01)
      expect(error._tag).toBe("ServerError")
      if (error._tag === "ServerError") expect(["22P03", "08P01"]).toContain(error.sqlState)
      expect((yield* conn.execute("SELECT count(*)::int FROM big")).rows).toEqual([[0]])
    }))

  it.effect("T07 a failure inside the block sends CopyFail: the same error propagates, nothing is inserted", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      yield* createCopyIn(conn)
      for (const format of ["text", "binary"] as const) {
        for (const writeFirst of [false, true]) {
          yield* conn.execute("BEGIN")
          const exit = yield* Effect.exit(Effect.scoped(Effect.gen(function*() {
            const copy = yield* Copy.from(conn, "COPY copy_in FROM STDIN", { format })
            if (writeFirst) yield* copy.write(format === "text" ? sampleText : sampleBinary)
            return yield* Effect.fail(new Boom(writeFirst ? "nuttengoggenio" : "mannaggiamiseria"))
          })))
          expect(Exit.isFailure(exit)).toBe(true)
          if (Exit.isFailure(exit)) {
            const error = Cause.squash(exit.cause)
            expect(error).toBeInstanceOf(Boom)
            expect((error as Boom).message).toBe(writeFirst ? "nuttengoggenio" : "mannaggiamiseria")
          }
          expect(conn.info.transactionStatus).toBe("INERROR")
          yield* conn.execute("ROLLBACK")
        }
      }
      expect(yield* copyInRows(conn)).toEqual([])
    }))

  it.effect("T07 the CopyFail reason names the error like psycopg's", () =>
    Effect.sync(() => {
      expect(Copy.failReason(Exit.fail(new Boom("mannaggiamiseria")))).toBe("error from pgfx: Boom - mannaggiamiseria")
      expect(Copy.failReason(Exit.die(new RangeError("too far")))).toBe("error from pgfx: RangeError - too far")
      expect(Copy.failReason(Exit.interrupt(1))).toBe("error from pgfx: interrupted")
    }))

  it.effect("T08 a server error surfaces at finish with its type; the transaction is INERROR", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      yield* createCopyIn(conn)
      yield* conn.execute("BEGIN")
      const error = yield* Effect.flip(Effect.scoped(Effect.gen(function*() {
        const copy = yield* Copy.from(conn, "COPY copy_in FROM STDIN (FORMAT text)")
        yield* copy.write(sampleText)
        yield* copy.write(sampleText)
        return yield* copy.finish
      })))
      expect(error._tag).toBe("UniqueViolation")
      expect(conn.info.transactionStatus).toBe("INERROR")
      yield* conn.execute("ROLLBACK")
      expect((yield* conn.execute("SELECT 1")).rows).toEqual([[1]])
    }))

  it.effect("T08 row counts: written blocks, written rows, a COPY TO, and a bad COPY", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      yield* createCopyIn(conn)
      const blocks = yield* Effect.scoped(Effect.gen(function*() {
        const copy = yield* Copy.from(conn, "COPY copy_in (col2) FROM STDIN")
        for (const block of ["1\n", "2\n", "3\n"]) yield* copy.write(block)
        return yield* copy.finish
      }))
      expect(blocks).toBe(3)
      const rows = yield* Effect.scoped(Effect.gen(function*() {
        const copy = yield* Copy.from(conn, "COPY copy_in (col2) FROM STDIN")
        yield* copy.writeRow([4])
        yield* copy.writeRow([5])
        return yield* copy.finish
      }))
      expect(rows).toBe(2)
      const out = yield* Stream.runCollect(Copy.to(conn, "COPY copy_in TO STDOUT"))
      expect(out.length).toBe(5)
      const bad = yield* Effect.flip(Effect.scoped(Effect.gen(function*() {
        const copy = yield* Copy.from(conn, "COPY copy_in (col2) FROM STDIN")
        yield* copy.write("10\t20\n")
        return yield* copy.finish
      })))
      expect(bad._tag).toBe("BadCopyFileFormat")
    }))

  it.effect("T08 a row of the wrong width is a CopyDataError, with or without types", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      yield* conn.execute("CREATE TABLE two (a text, b text)")
      for (const types of [undefined, ["text", "text"] as const]) {
        const error = yield* Effect.flip(Effect.scoped(Effect.gen(function*() {
          const copy = yield* Copy.from(conn, "COPY two FROM STDIN", { types })
          yield* copy.writeRow(["foo", "bar"])
          yield* copy.writeRow(["foo", "bar", "baz"] as unknown as readonly [string, string])
          return yield* copy.finish
        })))
        expect(error._tag).toBe("CopyDataError")
        if (error._tag === "CopyDataError") {
          expect(error.row).toBe(2)
          expect(error.message).toContain("3 values but the COPY has 2 columns")
        }
      }
      expect((yield* conn.execute("SELECT count(*)::int FROM two")).rows).toEqual([[0]])
    }))

  it.effect("T12 an empty COPY FROM loads 0 rows in both formats and leaves the transaction open", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      yield* createCopyIn(conn)
      for (const format of ["text", "binary"] as const) {
        yield* conn.execute("BEGIN")
        const rows = yield* Effect.scoped(Effect.gen(function*() {
          const copy = yield* Copy.from(conn, "COPY copy_in FROM STDIN", { format })
          return yield* copy.finish
        }))
        expect(rows).toBe(0)
        expect(conn.info.transactionStatus).toBe("INTRANS")
        yield* conn.execute("ROLLBACK")
      }
    }))

  it.effect("T12 a finished writer refuses more work; a string in binary mode is refused and fails the COPY", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      yield* createCopyIn(conn)
      const reused = yield* Effect.scoped(Effect.gen(function*() {
        const copy = yield* Copy.from(conn, "COPY copy_in (col2) FROM STDIN")
        yield* copy.finish
        return yield* Effect.flip(copy.writeRow([1]))
      }))
      expect(reused._tag).toBe("InterfaceError")
      yield* conn.execute("BEGIN")
      const binary = yield* Effect.flip(Effect.scoped(Effect.gen(function*() {
        const copy = yield* Copy.from(conn, "COPY copy_in FROM STDIN", { format: "binary" })
        yield* copy.write("40010\t40020\thello\n")
        return yield* copy.finish
      })))
      expect(binary._tag).toBe("InterfaceError")
      expect(binary.message).toBe("cannot copy str data in binary mode")
      expect(conn.info.transactionStatus).toBe("INERROR")
      yield* conn.execute("ROLLBACK")
    }))

  it.effect("T12 statements that are not one COPY FROM STDIN are refused; nothing of them is committed", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      yield* createCopyIn(conn)
      const attempt = (sql: string) =>
        Effect.flip(Effect.scoped(Effect.gen(function*() {
          const copy = yield* Copy.from(conn, sql)
          return yield* copy.finish
        })))
      const syntax = yield* attempt("wat")
      expect(syntax._tag).toBe("SqlSyntaxError")
      for (const sql of ["select 1", "reset timezone", "COPY (select 1) TO STDOUT"]) {
        const error = yield* attempt(sql)
        expect(error._tag).toBe("InterfaceError")
        if (error._tag === "InterfaceError") expect(error.message).toContain("COPY … FROM STDIN")
      }
      const mixed = yield* attempt("insert into copy_in (col2) values (1); COPY copy_in (col2) FROM STDIN")
      expect(mixed._tag).toBe("InterfaceError")
      expect(mixed.message).toBe("COPY cannot be mixed with other operations")
      expect(yield* copyInRows(conn)).toEqual([])
      expect(conn.info.transactionStatus).toBe("IDLE")
      expect((yield* conn.execute("SELECT 2")).rows).toEqual([[2]])
    }))

  it.effect("T12 execute() of a COPY FROM STDIN is refused and leaves the connection usable", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      yield* createCopyIn(conn)
      const error = yield* Effect.flip(conn.execute("COPY copy_in FROM STDIN"))
      expect(["InterfaceError", "QueryCanceled"]).toContain(error._tag)
      expect((yield* conn.execute("SELECT 3")).rows).toEqual([[3]])
    }))

  it.effect("T13 the COPY holds the connection: other fibers' statements wait until it ends", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      yield* conn.execute("CREATE TABLE locked (id int, data text)")
      const log: Array<string> = []
      const entered = yield* Deferred.make<void>()
      const copier = Effect.scoped(Effect.gen(function*() {
        const copy = yield* Copy.from(conn, "COPY locked FROM STDIN")
        log.push("entered_copy")
        yield* Deferred.succeed(entered, undefined)
        yield* Effect.sleep("40 millis")
        yield* copy.writeRow([1, "first"])
        log.push("wrote_row_1")
        yield* Effect.sleep("40 millis")
        yield* copy.writeRow([2, "second"])
        log.push("wrote_row_2")
        yield* Effect.sleep("40 millis")
      })).pipe(Effect.tap(() => Effect.sync(() => log.push("exited_copy"))))
      const worker = Effect.gen(function*() {
        yield* Deferred.await(entered)
        yield* conn.execute("SELECT 1")
        log.push("worker_completed")
      })
      yield* Effect.all([copier, worker, worker, worker], { concurrency: "unbounded" })
      expect(log).toEqual([
        "entered_copy",
        "wrote_row_1",
        "wrote_row_2",
        "exited_copy",
        "worker_completed",
        "worker_completed",
        "worker_completed"
      ])
      expect((yield* conn.execute("SELECT * FROM locked ORDER BY id")).rows).toEqual([[1, "first"], [2, "second"]])
    }))

  it.effect("a scope that succeeds without finish finishes the COPY (psycopg's with block)", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      yield* createCopyIn(conn)
      yield* Effect.scoped(Effect.gen(function*() {
        const copy = yield* Copy.from(conn, "COPY copy_in FROM STDIN")
        for (const record of sampleRecords) yield* copy.writeRow(record)
      }))
      expect(yield* copyInRows(conn)).toEqual(sampleRecords)
    }))

  it.effect("the connection is given back as soon as the COPY is over, before its scope closes", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      yield* createCopyIn(conn)
      yield* Effect.scoped(Effect.gen(function*() {
        const error = yield* Effect.flip(Copy.from(conn, "wat"))
        expect(error._tag).toBe("SqlSyntaxError")
        expect((yield* conn.execute("SELECT 8")).rows).toEqual([[8]])
        const copy = yield* Copy.from(conn, "COPY copy_in (col2) FROM STDIN")
        yield* copy.writeRow([1])
        expect(yield* copy.finish).toBe(1)
        expect((yield* conn.execute("SELECT count(*)::int FROM copy_in")).rows).toEqual([[1]])
        const rows = yield* Stream.runCollect(Copy.to(conn, "COPY copy_in (col2) TO STDOUT"))
        expect(rows).toEqual([["1"]])
        expect((yield* conn.execute("SELECT 9")).rows).toEqual([[9]])
      }))
    }))

  it.effect("a scope that succeeds without finish while the server refuses the data dies with the server's error", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      yield* createCopyIn(conn)
      const exit = yield* Effect.exit(Effect.scoped(Effect.gen(function*() {
        const copy = yield* Copy.from(conn, "COPY copy_in FROM STDIN")
        yield* copy.write(sampleText)
        yield* copy.write(sampleText)
      })))
      expect(Exit.isFailure(exit)).toBe(true)
      if (Exit.isFailure(exit)) {
        expect(Cause.hasDies(exit.cause)).toBe(true)
        expect((Cause.squash(exit.cause) as PgError.PgError)._tag).toBe("UniqueViolation")
      }
      expect(yield* copyInRows(conn)).toEqual([])
      expect(conn.info.transactionStatus).toBe("IDLE")
    }))

  it.effect("bad values are typed errors before sending: the row is dropped and the COPY can go on", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      yield* conn.execute("CREATE TABLE bad (n int4, t text)")
      for (const format of ["text", "csv", "binary"] as const) {
        yield* conn.execute("TRUNCATE bad")
        const errors: Array<Copy.CopyDataError> = []
        const rows = yield* Effect.scoped(Effect.gen(function*() {
          const copy = yield* Copy.from(conn, "COPY bad FROM STDIN", { format, types: ["int4", "text"] })
          yield* copy.writeRow([1, "ok"])
          for (const row of [[2, "nul \u0000 byte"], [3, "lone \ud800 surrogate"], [2 ** 31, "too big"], [1.5, "fraction"], ["4", "a string"]]) {
            const error = yield* Effect.flip(copy.writeRow(row as unknown as readonly [number, string]))
            expect(error._tag).toBe("CopyDataError")
            if (error._tag === "CopyDataError") errors.push(error)
          }
          yield* copy.writeRow([5, "ok too"])
          return yield* copy.finish
        }))
        expect(rows).toBe(2)
        expect(errors.map((error) => error.column)).toEqual([1, 1, 0, 0, 0])
        expect(errors[0].message).toContain("NUL")
        expect(errors[1].message).toContain("surrogate")
        expect(errors[2].message).toMatch(/out of range for int4|\[-2147483648, 2147483647\] for int4/)
        expect((yield* conn.execute("SELECT * FROM bad ORDER BY n")).rows).toEqual([[1, "ok"], [5, "ok too"]])
      }
    }))

  it.effect("an unhandled bad value fails the COPY: nothing of it is committed and the connection is usable", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      yield* conn.execute("CREATE TABLE bad2 (n int2)")
      const error = yield* Effect.flip(Effect.scoped(Effect.gen(function*() {
        const copy = yield* Copy.from(conn, "COPY bad2 FROM STDIN", { types: ["int2"] })
        yield* copy.writeRow([1])
        yield* copy.writeRow([40000])
        return yield* copy.finish
      })))
      expect(error._tag).toBe("CopyDataError")
      expect((yield* conn.execute("SELECT count(*)::int FROM bad2")).rows).toEqual([[0]])
      expect(conn.info.transactionStatus).toBe("IDLE")
    }))

  it.effect("a server error names the line: bad data on line 2 is InvalidTextRepresentation with its context", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      yield* conn.execute("CREATE TABLE lines (n int, t text)")
      const error = yield* Effect.flip(Effect.scoped(Effect.gen(function*() {
        const copy = yield* Copy.from(conn, "COPY lines FROM STDIN")
        yield* copy.write("1\tone\nnot a number\ttwo\n3\tthree\n")
        return yield* copy.finish
      })))
      expect(error._tag).toBe("InvalidTextRepresentation")
      if (error._tag === "InvalidTextRepresentation") {
        expect(error.where).toContain("line 2")
        expect(error.sqlState).toBe("22P02")
      }
      expect((yield* conn.execute("SELECT count(*)::int FROM lines")).rows).toEqual([[0]])
    }))

  it.effect("inside a transaction: a failed COPY aborts it and the rollback leaves nothing behind", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      const observer = yield* connect
      yield* conn.execute("CREATE TABLE tx (n int primary key)")
      const transaction = <A, E>(body: Effect.Effect<A, E>) =>
        conn.session.exclusive(
          Effect.gen(function*() {
            yield* conn.execute("BEGIN")
            const exit = yield* Effect.exit(body)
            yield* conn.execute(Exit.isSuccess(exit) ? "COMMIT" : "ROLLBACK")
            return yield* exit
          })
        )
      const ok = yield* transaction(Effect.gen(function*() {
        yield* conn.execute("INSERT INTO tx VALUES (0)")
        return yield* Copy.fromStream(conn, "COPY tx FROM STDIN", Stream.make([1], [2], [3]))
      }))
      expect(ok).toBe(3)
      const failed = yield* Effect.flip(transaction(Effect.gen(function*() {
        yield* conn.execute("INSERT INTO tx VALUES (10)")
        return yield* Copy.fromStream(conn, "COPY tx FROM STDIN (FORMAT csv)", Stream.make([11], [12], [1]), {
          format: "csv"
        })
      })))
      expect(failed._tag).toBe("UniqueViolation")
      expect((yield* conn.execute("SELECT n FROM tx ORDER BY n")).rows).toEqual([[0], [1], [2], [3]])
      expect(conn.info.transactionStatus).toBe("IDLE")
      yield* expectNoIdleInTransaction(observer)
    }))

  it.effect("fromStream copies 100k rows with backpressure in every format", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      yield* conn.execute("CREATE UNLOGGED TABLE many (n int4, t text, f float8)")
      for (const format of ["text", "csv", "binary"] as const) {
        yield* conn.execute("TRUNCATE many")
        const rows = Stream.range(1, 100_000).pipe(Stream.map((n) => [n, `row ${n}`, n / 4] as const))
        const loaded = yield* Copy.fromStream(conn, "COPY many FROM STDIN", rows, {
          format,
          types: ["int4", "text", "float8"],
          chunkSize: 16 * 1024
        })
        expect(loaded).toBe(100_000)
        expect((yield* conn.execute("SELECT count(*)::int, sum(n)::int8, max(t) FROM many")).rows).toEqual([
          [100_000, BigInt(5_000_050_000), "row 99999"]
        ])
      }
    }))

  it.effect("F18 a producer failing after 1 MB fails the COPY with its own error; no row is visible", () =>
    scenario("f18_producer", (connect) => Effect.gen(function*() {
      const conn = yield* connect
      const observer = yield* connect
      yield* conn.execute("CREATE TABLE aborted (n int4, t text)")
      const rows = Stream.range(1, 1_000_000).pipe(
        Stream.map((n) => [n, "x".repeat(100)] as const),
        Stream.tap((row) => row[0] === 12_000 ? Effect.fail(new Boom("producer gave up")) : Effect.void)
      )
      const error = yield* Effect.flip(Copy.fromStream(conn, "COPY aborted FROM STDIN", rows))
      expect(error).toBeInstanceOf(Boom)
      expect((yield* conn.execute("SELECT count(*)::int FROM aborted")).rows).toEqual([[0]])
      expect(conn.info.transactionStatus).toBe("IDLE")
      yield* expectNoIdleInTransaction(observer)
    })))

  it.effect("F18 interrupting the COPY fiber fails the COPY; no row is visible and the connection is usable", () =>
    scenario("f18_interrupt", (connect) => Effect.gen(function*() {
      const conn = yield* connect
      yield* conn.execute("CREATE TABLE interrupted (n int4)")
      const progress = yield* Deferred.make<void>()
      const rows = Stream.range(1, 10_000_000).pipe(
        Stream.map((n) => [n] as const),
        Stream.tap((row) => row[0] === 50_000 ? Deferred.succeed(progress, undefined) : Effect.void)
      )
      const fiber = yield* Effect.forkChild(Copy.fromStream(conn, "COPY interrupted FROM STDIN", rows))
      yield* Deferred.await(progress)
      yield* Fiber.interrupt(fiber)
      expect((yield* conn.execute("SELECT count(*)::int FROM interrupted")).rows).toEqual([[0]])
      expect(conn.info.transactionStatus).toBe("IDLE")
    })))

  it.effect("F18 a huge error message is cut below the server's CopyFail limit", () =>
    scenario("f18_copyfail_limit", (connect) => Effect.gen(function*() {
      const conn = yield* connect
      yield* createCopyIn(conn)
      const error = yield* Effect.flip(Effect.scoped(Effect.gen(function*() {
        const copy = yield* Copy.from(conn, "COPY copy_in FROM STDIN")
        yield* copy.write(sampleText)
        return yield* Effect.fail(new Boom("é".repeat(50_000)))
      })))
      expect(error).toBeInstanceOf(Boom)
      expect((yield* conn.execute("SELECT count(*)::int FROM copy_in")).rows).toEqual([[0]])
    })))

  it.effect("F19 a CSV with a bad row in the middle, in a transaction: typed error, rolled back, nothing left idle", () =>
    scenario("f19", (connect) => Effect.gen(function*() {
      const conn = yield* connect
      const observer = yield* connect
      yield* conn.execute("CREATE TABLE csv_in (n int, t text)")
      const lines = Array.from({ length: 20_000 }, (_, i) => i === 10_000 ? "oops,\"bad\"\n" : `${i},"line ${i}"\n`)
      const error = yield* Effect.flip(conn.session.exclusive(Effect.gen(function*() {
        yield* conn.execute("BEGIN")
        const exit = yield* Effect.exit(
          Copy.fromBytes(conn, "COPY csv_in FROM STDIN", Stream.fromIterable(lines), { format: "csv" })
        )
        yield* conn.execute("ROLLBACK")
        return yield* exit
      })))
      expect(error._tag).toBe("InvalidTextRepresentation")
      expect((yield* conn.execute("SELECT count(*)::int FROM csv_in")).rows).toEqual([[0]])
      expect(conn.info.transactionStatus).toBe("IDLE")
      yield* expectNoIdleInTransaction(observer)
    })))

  it.effect("writeRows stops at a bad row: the rows before it stay, the error names the row", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      yield* conn.execute("CREATE TABLE batch (n int4)")
      const loaded = yield* Effect.scoped(Effect.gen(function*() {
        const copy = yield* Copy.from(conn, "COPY batch FROM STDIN", { types: ["int4"] })
        const error = yield* Effect.flip(copy.writeRows([[1], [2], ["x" as unknown as number], [4]]))
        expect(error._tag).toBe("CopyDataError")
        if (error._tag === "CopyDataError") expect(error.row).toBe(3)
        expect(copy.rowsWritten).toBe(2)
        return yield* copy.finish
      }))
      expect(loaded).toBe(2)
    }))

  it.effect("formats and options are checked before anything is sent", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      yield* createCopyIn(conn)
      const attempt = (sql: string, options: Copy.FromOptions<ReadonlyArray<Copy.TypeSpec> | undefined>) =>
        Effect.flip(Effect.scoped(Effect.flatMap(Copy.from(conn, sql, options), (copy) => copy.finish)))
      const mismatch = yield* attempt("COPY copy_in FROM STDIN (FORMAT csv)", { format: "binary" })
      expect(mismatch._tag).toBe("InterfaceError")
      const delimiter = yield* attempt("COPY copy_in FROM STDIN", { format: "csv", delimiter: "ab" })
      expect(delimiter._tag).toBe("InterfaceError")
      const quote = yield* attempt("COPY copy_in FROM STDIN", { format: "text", quote: "'" })
      expect(quote._tag).toBe("InterfaceError")
      const nul = yield* attempt("COPY copy_in FROM STDIN\u0000", {})
      expect(nul._tag).toBe("ParameterError")
      const types = yield* attempt("COPY copy_in FROM STDIN", { types: ["int4"] })
      expect(types._tag).toBe("InterfaceError")
      expect(types.message).toContain("1 types were given for a COPY of 3 columns")
      expect((yield* conn.execute("SELECT 4")).rows).toEqual([[4]])
    }))

  it.effect("interrupting a COPY that waits for a lock cancels it at once; the connection stays usable", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      const locker = yield* connect
      const observer = yield* connect
      yield* conn.execute("CREATE TABLE waited (n int4)")
      yield* locker.execute("BEGIN; LOCK TABLE waited IN ACCESS EXCLUSIVE MODE")
      const fiber = yield* Effect.forkChild(Copy.fromStream(conn, "COPY waited FROM STDIN", Stream.make([1])))
      for (let i = 0; i < 100; i++) {
        const state = yield* backendState(observer, conn.info.backendPid)
        if (state?.[1] === "relation") break
        yield* Effect.sleep("20 millis")
      }
      const started = Date.now()
      yield* Fiber.interrupt(fiber)
      expect(Date.now() - started).toBeLessThan(2000)
      yield* locker.execute("ROLLBACK")
      expect((yield* conn.execute("SELECT count(*)::int FROM waited")).rows).toEqual([[0]])
      expect(conn.info.transactionStatus).toBe("IDLE")
    }))

  it.effect("a server that ends the session mid-COPY gives a typed connection error, never a success", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      const admin = yield* connect
      yield* conn.execute("CREATE TABLE cut (n int4)")
      const exit = yield* Effect.exit(Effect.scoped(Effect.gen(function*() {
        const copy = yield* Copy.from(conn, "COPY cut FROM STDIN")
        yield* copy.writeRow([1])
        yield* copy.flush
        yield* admin.execute("SELECT pg_terminate_backend($1)", [conn.info.backendPid])
        yield* Effect.sleep("100 millis")
        for (let i = 0; i < 1000; i++) yield* copy.writeRows(Array.from({ length: 100 }, () => [i]))
        return yield* copy.finish
      })))
      expect(Exit.isFailure(exit)).toBe(true)
      if (Exit.isFailure(exit)) {
        const error = Cause.squash(exit.cause)
        expect(PgError.isPgError(error)).toBe(true)
        expect((error as PgError.PgError)._tag).toBe("ConnectionError")
      }
      expect(conn.closed).toBe(true)
      expect((yield* admin.execute("SELECT count(*)::int FROM cut")).rows).toEqual([[0]])
    }))
})
