// A small adapter that lets Kysely's SqliteDialect drive node:sqlite (no native addon).
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { SqliteDialect, type SqliteDatabase, type SqliteStatement } from 'kysely';

type SqlValue = null | number | bigint | string | Uint8Array;

// node:sqlite binds neither booleans nor undefined.
function bindable(params: ReadonlyArray<unknown>): SqlValue[] {
  return params.map((p) => {
    if (p === undefined) return null;
    if (typeof p === 'boolean') return p ? 1 : 0;
    if (p instanceof Date) return p.toISOString();
    return p as SqlValue;
  });
}

class Statement implements SqliteStatement {
  readonly reader: boolean;
  private readonly stmt: StatementSync;
  constructor(stmt: StatementSync) {
    this.stmt = stmt;
    this.reader = stmt.columns().length > 0;
  }
  all(parameters: ReadonlyArray<unknown>): unknown[] {
    return this.stmt.all(...bindable(parameters));
  }
  run(parameters: ReadonlyArray<unknown>) {
    const r = this.stmt.run(...bindable(parameters));
    return { changes: r.changes, lastInsertRowid: r.lastInsertRowid };
  }
  iterate(parameters: ReadonlyArray<unknown>): IterableIterator<unknown> {
    return this.stmt.iterate(...bindable(parameters)) as IterableIterator<unknown>;
  }
}

export function sqliteDialect(path: string): SqliteDialect {
  const db = new DatabaseSync(path);
  db.exec('PRAGMA journal_mode = WAL');
  db.exec('PRAGMA synchronous = NORMAL');
  db.exec('PRAGMA foreign_keys = ON');
  db.exec('PRAGMA busy_timeout = 5000');
  const cache = new Map<string, Statement>();
  const adapter: SqliteDatabase = {
    close: () => db.close(),
    prepare(sql: string) {
      let s = cache.get(sql);
      if (!s) {
        s = new Statement(db.prepare(sql));
        if (cache.size > 2000) cache.clear();
        cache.set(sql, s);
      }
      return s;
    },
  };
  return new SqliteDialect({ database: adapter });
}
