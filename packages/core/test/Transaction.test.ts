/**
 * Transaction blocks and psycopg's connection-level transactions, asserted on
 * the server: row counts seen from a second session, pg_stat_activity.
 */
import { expect, layer } from "@effect/vitest"
import { Cause, Effect, Exit, Fiber } from "effect"
import { Connection, Transaction } from "../src/index.ts"
import { TestDatabase } from "../../../test/harness.ts"

const connect = Effect.flatMap(TestDatabase.url, (url) => Connection.connect(url))

/** Rows of `table`, counted from another session. */
const countFromOutside = (table: string) =>
  Effect.scoped(Effect.flatMap(connect, (other) =>
    Effect.map(other.execute(`SELECT count(*)::int FROM ${table}`), (result) => result.rows[0][0] as number)))

const sessionState = (pid: number) =>
  Effect.scoped(Effect.flatMap(connect, (other) =>
    Effect.map(
      other.execute("SELECT state FROM pg_stat_activity WHERE pid = $1", [pid]),
      (result) => result.rows[0]?.[0] as string | undefined
    )))

class Boom {
  readonly _tag = "Boom"
}

layer(TestDatabase.layer, { excludeTestServices: true })("Transaction", (it) => {
  it.effect("commits when the block succeeds", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      yield* conn.execute("CREATE TABLE tx_commit (x int)")
      const value = yield* conn.transaction(Effect.gen(function*() {
        yield* conn.execute("INSERT INTO tx_commit VALUES ($1)", [1])
        yield* conn.execute("INSERT INTO tx_commit VALUES ($1)", [2])
        expect(conn.info.transactionStatus).toBe("INTRANS")
        return "done"
      }))
      expect(value).toBe("done")
      expect(conn.info.transactionStatus).toBe("IDLE")
      expect(yield* countFromOutside("tx_commit")).toBe(2)
    }))

  it.effect("rolls back when the block fails, and keeps the user's error", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      yield* conn.execute("CREATE TABLE tx_fail (x int)")
      const error = yield* Effect.flip(conn.transaction(Effect.gen(function*() {
        yield* conn.execute("INSERT INTO tx_fail VALUES (1)")
        return yield* Effect.fail(new Boom())
      })))
      expect(error).toBeInstanceOf(Boom)
      expect(conn.info.transactionStatus).toBe("IDLE")
      expect(yield* countFromOutside("tx_fail")).toBe(0)
    }))

  it.effect("rolls back when the block dies", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      yield* conn.execute("CREATE TABLE tx_die (x int)")
      const exit = yield* Effect.exit(conn.transaction(
        Effect.andThen(conn.execute("INSERT INTO tx_die VALUES (1)"), Effect.die("defect"))
      ))
      expect(Exit.isFailure(exit) && Cause.hasDies(exit.cause)).toBe(true)
      expect(yield* countFromOutside("tx_die")).toBe(0)
    }))

  it.effect("rolls back when interrupted during a running statement, leaving nothing idle in transaction", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      yield* conn.execute("CREATE TABLE tx_interrupt (x int)")
      const fiber = yield* Effect.forkChild(conn.transaction(Effect.gen(function*() {
        yield* conn.execute("INSERT INTO tx_interrupt VALUES (1)")
        yield* conn.execute("SELECT pg_sleep(10)")
      })))
      yield* Effect.sleep("300 millis")
      yield* Fiber.interrupt(fiber)
      expect(conn.info.transactionStatus).toBe("IDLE")
      expect(yield* sessionState(conn.info.backendPid)).toBe("idle")
      expect(yield* countFromOutside("tx_interrupt")).toBe(0)
      expect((yield* conn.execute("SELECT 1")).rows).toEqual([[1]])
    }))

  it.effect("nested blocks are savepoints: an inner failure keeps the outer work", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      yield* conn.execute("CREATE TABLE tx_nested (x int)")
      yield* conn.transaction(Effect.gen(function*() {
        yield* conn.execute("INSERT INTO tx_nested VALUES (1)")
        const inner = yield* Effect.flip(conn.transaction(Effect.gen(function*() {
          yield* conn.execute("INSERT INTO tx_nested VALUES (2)")
          return yield* Effect.fail(new Boom())
        })))
        expect(inner).toBeInstanceOf(Boom)
        // A failing statement inside a savepoint is rolled back to it too.
        yield* Effect.ignore(conn.transaction(conn.execute("INSERT INTO tx_nested VALUES ('x')")))
        yield* conn.transaction(conn.execute("INSERT INTO tx_nested VALUES (3)"))
      }))
      const rows = yield* conn.execute("SELECT x FROM tx_nested ORDER BY x")
      expect(rows.rows).toEqual([[1], [3]])
    }))

  it.effect("Transaction.rollback ends the block without an error", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      yield* conn.execute("CREATE TABLE tx_signal (x int)")
      const result = yield* conn.transaction(Effect.gen(function*() {
        yield* conn.execute("INSERT INTO tx_signal VALUES (1)")
        if (Math.random() >= 0) return yield* Transaction.rollback
        return 1
      }))
      expect(result).toBeUndefined()
      expect(yield* countFromOutside("tx_signal")).toBe(0)
    }))

  it.effect("uses the isolation level, read only and deferrable options", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      const settings = yield* conn.transaction(
        conn.execute(
          "SELECT current_setting('transaction_isolation'), current_setting('transaction_read_only'), current_setting('transaction_deferrable')"
        ),
        { isolationLevel: "serializable", readOnly: true, deferrable: true }
      )
      expect(settings.rows).toEqual([["serializable", "on", "on"]])
      const readOnly = yield* Effect.flip(conn.transaction(conn.execute("CREATE TABLE nope (x int)"), { readOnly: true }))
      expect(readOnly._tag).toBe("ServerError")
      expect(Transaction.beginStatement({ isolationLevel: "read committed", readOnly: false, deferrable: false }))
        .toBe("BEGIN ISOLATION LEVEL READ COMMITTED READ WRITE NOT DEFERRABLE")
    }))

  it.effect("a failing COMMIT surfaces as its typed error", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      yield* conn.execute(
        "CREATE TABLE selfref (x int PRIMARY KEY, y int REFERENCES selfref (x) DEFERRABLE INITIALLY DEFERRED)"
      )
      const error = yield* Effect.flip(conn.transaction(conn.execute("INSERT INTO selfref VALUES (1, -1)")))
      expect(error._tag).toBe("ForeignKeyViolation")
      expect(conn.info.transactionStatus).toBe("IDLE")
    }))

  it.effect("a swallowed statement error makes COMMIT fail instead of silently rolling back", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      const error = yield* Effect.flip(conn.transaction(Effect.ignore(conn.execute("SELECT 1/0"))))
      expect(error._tag).toBe("InFailedSqlTransaction")
    }))

  it.effect("holds the connection: other fibers wait for the block to end", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      yield* conn.execute("CREATE TABLE tx_hold (x int)")
      const outside = yield* Effect.forkChild(
        Effect.andThen(Effect.sleep("20 millis"), conn.execute("SELECT count(*)::int FROM tx_hold"))
      )
      yield* conn.transaction(Effect.gen(function*() {
        yield* conn.execute("INSERT INTO tx_hold VALUES (1)")
        yield* Effect.sleep("100 millis")
        yield* Transaction.rollback
      }))
      const seen = yield* Fiber.join(outside)
      // The other fiber's statement ran after the rollback, not inside the transaction.
      expect(seen.rows).toEqual([[0]])
    }))

  it.effect("retries serialization failures with a bounded schedule", () =>
    Effect.gen(function*() {
      const conn = yield* connect
      let attempts = 0
      const result = yield* Transaction.retry(
        conn.transaction(Effect.gen(function*() {
          attempts++
          if (attempts < 3) {
            yield* conn.execute("DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '40001'; END $$")
          }
          return attempts
        })),
        { times: 5 }
      )
      expect(result).toBe(3)
      const gaveUp = yield* Effect.flip(Transaction.retry(
        conn.execute("DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '40P01'; END $$"),
        { times: 2 }
      ))
      expect(gaveUp._tag).toBe("DeadlockDetected")
    }))
})

layer(TestDatabase.layer, { excludeTestServices: true })("autocommit off (psycopg's implicit transactions)", (it) => {
  it.effect("the first statement opens a transaction; commit makes it durable", () =>
    Effect.gen(function*() {
      const url = yield* TestDatabase.url
      const conn = yield* Connection.connect(url, { autocommit: false })
      yield* conn.execute("CREATE TABLE implicit (x int)")
      expect(conn.info.transactionStatus).toBe("INTRANS")
      yield* conn.commit
      yield* conn.execute("INSERT INTO implicit VALUES (1)")
      expect(conn.info.transactionStatus).toBe("INTRANS")
      const error = yield* Effect.flip(conn.execute("SELECT meh"))
      expect(error._tag).toBe("UndefinedColumn")
      expect(conn.info.transactionStatus).toBe("INERROR")
      const failed = yield* Effect.flip(conn.execute("SELECT 1"))
      expect(failed._tag).toBe("InFailedSqlTransaction")
      const setting = yield* Effect.flip(conn.setAutocommit(true))
      expect(setting._tag).toBe("InterfaceError")
      yield* conn.commit
      expect(conn.info.transactionStatus).toBe("IDLE")
      expect(yield* countFromOutside("implicit")).toBe(0)
    }))

  it.effect("the connection's scope commits on success and rolls back on failure", () =>
    Effect.gen(function*() {
      const url = yield* TestDatabase.url
      yield* Effect.scoped(Effect.flatMap(Connection.connect(url), (c) => c.execute("CREATE TABLE scoped_tx (x int)")))
      yield* Effect.scoped(Effect.flatMap(
        Connection.connect(url, { autocommit: false }),
        (conn) => conn.execute("INSERT INTO scoped_tx VALUES (1)")
      ))
      expect(yield* countFromOutside("scoped_tx")).toBe(1)
      yield* Effect.ignore(Effect.scoped(Effect.flatMap(
        Connection.connect(url, { autocommit: false }),
        (conn) => Effect.andThen(conn.execute("INSERT INTO scoped_tx VALUES (2)"), Effect.fail(new Boom()))
      )))
      expect(yield* countFromOutside("scoped_tx")).toBe(1)
    }))

  it.effect("a transaction block inside an implicit transaction is a savepoint", () =>
    Effect.gen(function*() {
      const conn = yield* Connection.connect(yield* TestDatabase.url, { autocommit: false })
      yield* conn.execute("CREATE TEMP TABLE sp (x int)")
      yield* Effect.ignore(conn.transaction(Effect.andThen(conn.execute("INSERT INTO sp VALUES (1)"), Effect.fail(new Boom()))))
      expect(conn.info.transactionStatus).toBe("INTRANS")
      yield* conn.execute("INSERT INTO sp VALUES (2)")
      expect((yield* conn.execute("SELECT x FROM sp")).rows).toEqual([[2]])
      yield* conn.rollback
    }))
})
