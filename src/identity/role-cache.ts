// Effective roles (see assignments.ts) remembered per user and scope until any
// identity table is written, so rescoping and password logins skip the dozen
// queries of role resolution. Only for a database no other process writes (the
// embedded SQLite): with PostgreSQL other replicas write too, and every
// resolution goes to the database.
import type { Db } from '../db/database.ts';
import type { WriteWatch } from '../db/write-watch.ts';
import { effectiveRoles, type ScopeTarget } from './assignments.ts';
import type { Named } from './tokens/token.ts';

const MAX_ENTRIES = 10_000;

export class RoleCache {
  private readonly writes: WriteWatch | null;
  private readonly entries = new Map<string, { generation: number; roles: Named[] }>();
  constructor(writes: WriteWatch | null) {
    this.writes = writes;
  }

  /** The roles a token for this user and target carries; the array is shared: do not change it. */
  async effective(db: Db, userId: string, target: ScopeTarget): Promise<Named[]> {
    if (!this.writes) return effectiveRoles(db, userId, target);
    const key = `${userId} ${'projectId' in target ? `p:${target.projectId}` : 'domainId' in target ? `d:${target.domainId}` : 's'}`;
    // Read before resolving: a write during the resolution makes this entry stale at once.
    const generation = this.writes.generation('identity_');
    const hit = this.entries.get(key);
    if (hit && hit.generation === generation) return hit.roles;
    const roles = await effectiveRoles(db, userId, target);
    if (this.entries.size >= MAX_ENTRIES) this.entries.clear();
    this.entries.set(key, { generation, roles });
    return roles;
  }
}
