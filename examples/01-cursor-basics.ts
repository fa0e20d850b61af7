/**
 * Example 1 — the seed's first psycopg snippet, in Effect.
 *
 * ```python
 * with psycopg.connect("dbname=test user=postgres") as conn:
 *     with conn.cursor() as cur:
 *         cur.execute("CREATE TABLE test (id serial PRIMARY KEY, num integer, data text)")
 *         cur.execute("INSERT INTO test (num, data) VALUES (%s, %s)", (100, "abc'def"))
 *         cur.execute("SELECT * FROM test")
 *         cur.fetchone()            # (1, 100, "abc'def")
 *         cur.fetchmany(2); cur.fetchall()
 *         for record in cur: print(record)
 *         conn.commit()
 * ```
 *
 * `autocommit: false` gives psycopg's implicit transaction: the first
 * statement opens it, `commit` ends it (and the connection's scope would
 * commit on success / roll back on failure, like `with conn:`).
 *
 * Run: `npx tsx examples/01-cursor-basics.ts` (DATABASE_URL, or an embedded server).
 */
import { Console, Effect } from "effect"
import { Connection } from "@pgfx/core"
import { isMain, runMain } from "./run.ts"

export const program = (url: string) =>
  Effect.gen(function*() {
    const conn = yield* Connection.connect(url, { autocommit: false })
    const cur = conn.cursor()

    yield* cur.execute(`
      CREATE TABLE test (
        id serial PRIMARY KEY,
        num integer,
        data text)
    `)
    // Values travel as bind parameters ($1, $2): no SQL injection.
    yield* cur.execute("INSERT INTO test (num, data) VALUES ($1, $2)", [100, "abc'def"])

    yield* cur.execute("SELECT * FROM test")
    const first = yield* cur.fetchOne
    yield* Console.log("fetchOne:", first) // [1, 100, "abc'def"]

    // fetchMany / fetchAll return several rows, or iterate the cursor.
    yield* cur.execute("SELECT * FROM test")
    yield* Console.log("fetchMany(2):", yield* cur.fetchMany(2))
    yield* cur.execute("SELECT * FROM test")
    yield* Console.log("fetchAll:", yield* cur.fetchAll)
    yield* cur.execute("SELECT * FROM test")
    for (const record of cur) yield* Console.log("iterate:", record)

    // Make the changes persistent.
    yield* conn.commit
    return first
  }).pipe(Effect.scoped)

if (isMain(import.meta.url)) runMain(program)
