/**
 * psycopg's prepared-statement bookkeeping: how often each statement ran
 * (to prepare it past `prepare_threshold`), and an LRU of the statements
 * prepared on the server, whose evicted names are closed with the next
 * request.
 */
import type * as PgProtocol from "@effect/sql-pg/PgProtocol"

export interface PreparedStatement {
  readonly name: string
  /** The row description, with the result format asked for per column. */
  readonly fields: ReadonlyArray<PgProtocol.FieldDescription>
  readonly formats: ReadonlyArray<0 | 1>
}

/** Commands after which server-side statements may be stale or gone. */
const invalidating = /^(DROP|ALTER|DISCARD|DEALLOCATE)\b/

export class StatementCache {
  private readonly prepared = new Map<string, PreparedStatement>()
  private readonly uses = new Map<string, number>()
  private evicted: Array<string> = []
  private counter = 0

  constructor(private readonly max: number) {}

  get size(): number {
    return this.prepared.size
  }

  /** The prepared statement for `key`, marked most recently used. */
  get(key: string): PreparedStatement | undefined {
    const statement = this.prepared.get(key)
    // re-inserting moves the key to the end (most recent); the key used last is there already
    if (statement !== undefined && key !== this.recent) {
      this.prepared.delete(key)
      this.prepared.set(key, statement)
      this.recent = key
    }
    return statement
  }

  /** The key `get` or `set` moved to the end of `prepared` last. */
  private recent: string | undefined

  /** Counts one more execution of an unprepared statement; returns how many there were before it. */
  countUse(key: string): number {
    const before = this.uses.get(key) ?? 0
    this.uses.delete(key)
    this.uses.set(key, before + 1)
    if (this.uses.size > this.max * 5) {
      this.uses.delete(this.uses.keys().next().value as string)
    }
    return before
  }

  /** Statements whose Parse is on the wire, by key: concurrent callers must not prepare them twice. */
  private readonly preparing = new Map<string, string>()

  /** A name for `key`'s statement, or `undefined` while one is being prepared already. */
  startPreparing(key: string): string | undefined {
    if (this.preparing.has(key)) return undefined
    const name = `_pgfx_${this.counter++}`
    this.preparing.set(key, name)
    return name
  }

  /** Ends `startPreparing`; `true` the first time for that name (its outcome is to be recorded). */
  finishPreparing(key: string, name: string): boolean {
    if (this.preparing.get(key) !== name) return false
    this.preparing.delete(key)
    return true
  }

  set(key: string, statement: PreparedStatement): void {
    const replaced = this.prepared.get(key)
    if (replaced !== undefined && replaced.name !== statement.name) this.evicted.push(replaced.name)
    if (replaced !== undefined) this.prepared.delete(key)
    this.prepared.set(key, statement)
    this.recent = key
    this.uses.delete(key)
    while (this.prepared.size > this.max) {
      const [oldest, entry] = this.prepared.entries().next().value as [string, PreparedStatement]
      this.prepared.delete(oldest)
      if (oldest === this.recent) this.recent = undefined
      this.evicted.push(entry.name)
    }
  }

  /** Names to Close on the server, handed out once. */
  takeEvicted(): ReadonlyArray<string> {
    if (this.evicted.length === 0) return this.evicted
    const names = this.evicted
    this.evicted = []
    return names
  }

  /** Forgets every statement after a command that may invalidate them (psycopg clears on DROP/ALTER/DISCARD). */
  observe(commandTag: string): void {
    if (!invalidating.test(commandTag)) return
    const discarded = commandTag.startsWith("DISCARD") || commandTag.startsWith("DEALLOCATE")
    for (const statement of this.prepared.values()) {
      if (!discarded) this.evicted.push(statement.name)
    }
    this.prepared.clear()
    this.recent = undefined
  }
}
