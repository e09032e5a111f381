// Counts writes per table, so in-process caches of derived data know when to
// forget. A Kysely plugin sees every insert, update and delete this process
// runs (raw SQL counts as a write to every table); the count is bumped before
// the statement runs and again once it has, so a cache entry computed across a
// write never carries the generation that follows it. It sees only this
// process's writes; commitsByOthers() adds SQLite's own count of commits made
// by other connections (another process: `stratus bootstrap`, `keys rotate`,
// `db migrate` run beside a live server). Caches built on the two are for the
// embedded SQLite; with PostgreSQL other replicas write and nothing counts them.
import { sql, type Kysely, type KyselyPlugin, type PluginTransformQueryArgs, type PluginTransformResultArgs, type QueryResult, type RootOperationNode, type UnknownRow } from 'kysely';

type Named = { kind: string; table?: { identifier?: { name?: string } } };

function tableName(node: unknown): string | undefined {
  const n = node as Named | undefined;
  if (n?.kind === 'TableNode') return n.table?.identifier?.name;
  if (n?.kind === 'AliasNode') return tableName((node as { node: unknown }).node);
  return undefined;
}

/** The tables a root node writes; null for "possibly any" (raw SQL). Empty for a read. */
function writtenTables(node: RootOperationNode): string[] | null {
  switch (node.kind) {
    case 'InsertQueryNode':
      return [tableName(node.into)].filter((t): t is string => !!t);
    case 'UpdateQueryNode':
      return [tableName(node.table)].filter((t): t is string => !!t);
    case 'DeleteQueryNode':
      return node.from.froms.map(tableName).filter((t): t is string => !!t);
    case 'SelectQueryNode':
      return [];
    default:
      return null;
  }
}

export class WriteWatch implements KyselyPlugin {
  private readonly counts = new Map<string, number>();
  private all = 0;
  private readonly pending = new WeakMap<object, string[] | null>();

  private bump(tables: string[] | null): void {
    if (tables === null) this.all++;
    else for (const t of tables) this.counts.set(t, (this.counts.get(t) ?? 0) + 1);
  }

  /** A number that changes whenever a table whose name starts with `prefix` is written. */
  generation(prefix: string): number {
    let sum = this.all;
    for (const [t, n] of this.counts) if (t.startsWith(prefix)) sum += n;
    return sum;
  }

  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    const tables = writtenTables(args.node);
    if (tables === null || tables.length > 0) {
      this.bump(tables);
      this.pending.set(args.queryId, tables);
    }
    return args.node;
  }

  async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    if (this.pending.has(args.queryId)) {
      this.bump(this.pending.get(args.queryId)!);
      this.pending.delete(args.queryId);
    }
    return args.result;
  }
}

// The pragma runs on a copy of the Kysely instance without plugins: to the
// write watch, raw SQL is a write to every table.
const unwatched = new WeakMap<object, Kysely<any>>();

/**
 * SQLite's `PRAGMA data_version`: a number that changes whenever another
 * connection (another process) commits to the database file, and never for
 * this connection's own commits. One statement on the open connection, no
 * table read (about 13 µs, half a one-row select).
 */
export async function commitsByOthers(db: Kysely<any>): Promise<number> {
  let plain = unwatched.get(db);
  if (!plain) unwatched.set(db, (plain = db.withoutPlugins()));
  const { rows } = await sql<{ data_version: number | bigint }>`PRAGMA data_version`.execute(plain);
  return Number(rows[0]!.data_version);
}
