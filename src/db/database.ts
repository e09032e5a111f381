// Opens the state database (SQLite by default, PostgreSQL for many replicas)
// and runs every service's migrations.
import { Kysely, PostgresDialect } from 'kysely';
import { Migrator, type Migration, type MigrationProvider } from 'kysely/migration';
import { sqliteDialect } from './sqlite.ts';
import type { Tables } from './tables.ts';
import { migrations } from './migrations.ts';
import { WriteWatch } from './write-watch.ts';

export type Db = Kysely<Tables>;
export type DbKind = 'sqlite' | 'postgres';

export interface Database {
  db: Db;
  kind: DbKind;
  /** Counts this process's writes per table (for in-process caches; see write-watch.ts). */
  writes: WriteWatch;
  close(): Promise<void>;
}

export function databaseKind(url: string): DbKind {
  return /^postgres(ql)?:\/\//.test(url) ? 'postgres' : 'sqlite';
}

export async function openDatabase(url: string): Promise<Database> {
  const kind = databaseKind(url);
  let db: Db;
  const writes = new WriteWatch();
  if (kind === 'postgres') {
    // The driver loads only when a PostgreSQL URL is given: the embedded SQLite
    // server does not carry it in memory.
    const { default: pg } = await import('pg');
    // int8 (bigint) stays a string in pg by default; our counters fit a JS number.
    pg.types.setTypeParser(20, (v) => Number(v));
    const pool = new pg.Pool({ connectionString: url, max: 10 });
    // An idle pooled connection that the server ends (a restart, pg_terminate_backend, a
    // DROP DATABASE ... FORCE) is an 'error' event of the pool: without a listener it
    // would be an uncaught exception that takes the whole process down. The pool has
    // already dropped that client and opens a new one on demand.
    pool.on('error', () => undefined);
    db = new Kysely<Tables>({ dialect: new PostgresDialect({ pool }), plugins: [writes] });
  } else {
    db = new Kysely<Tables>({ dialect: sqliteDialect(url.replace(/^sqlite:(\/\/)?/, '')), plugins: [writes] });
  }
  return { db, kind, writes, close: () => db.destroy() };
}

class StaticProvider implements MigrationProvider {
  async getMigrations(): Promise<Record<string, Migration>> {
    return migrations;
  }
}

export async function migrate(db: Db): Promise<string[]> {
  // Each service numbers its migrations in its own range (migrations.ts), so a
  // service's new migration sorts before another's already applied ones.
  const migrator = new Migrator({ db, provider: new StaticProvider(), allowUnorderedMigrations: true });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error;
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
