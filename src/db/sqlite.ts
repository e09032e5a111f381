// A small adapter that lets Kysely's SqliteDialect drive node:sqlite (no native addon).
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { chmodSync, closeSync, existsSync, openSync } from 'node:fs';
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

/** The database file and SQLite's companions to it, which hold the same rows. */
const OWNER_ONLY_SUFFIXES = ['', '-wal', '-shm', '-journal'] as const;

/**
 * Makes the database and its companion files readable by their owner only: they
 * hold password hashes, token keys and credentials. SQLite would create the file
 * with the umask's mode (usually 0644) and gives -wal and -shm the main file's
 * mode, so the main file is created 0600 before SQLite opens it; a file left by
 * an older version with a wider mode is narrowed on the next open.
 */
function ownerOnly(path: string): void {
  if (path === '' || path === ':memory:' || path.startsWith('file:')) return;
  if (!existsSync(path)) closeSync(openSync(path, 'a', 0o600));
  for (const suffix of OWNER_ONLY_SUFFIXES) {
    if (existsSync(path + suffix)) chmodSync(path + suffix, 0o600);
  }
}

export function sqliteDialect(path: string): SqliteDialect {
  ownerOnly(path);
  const db = new DatabaseSync(path);
  db.exec('PRAGMA journal_mode = WAL');
  // -wal and -shm exist from here on (WAL mode creates them); narrow any an older version left wider.
  ownerOnly(path);
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
