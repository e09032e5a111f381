// Identity reads on the token path (users, domains, projects, effective roles)
// remembered until any identity table is written, so rescoping and password
// logins skip their queries. Only for a database no other process writes (the
// embedded SQLite): with PostgreSQL other replicas write too, and every read
// goes to the database.
import type { Db } from '../db/database.ts';
import type { WriteWatch } from '../db/write-watch.ts';
import { effectiveRoles, type ScopeTarget } from './assignments.ts';
import { getDomain, getDomainByName, getProject, getProjectByName, getUser, getUserByName } from './lookup.ts';
import type { Named } from './tokens/token.ts';

const MAX_ENTRIES = 10_000;

/** Values handed out are shared between callers: never change them. */
export class IdentityReadCache {
  private readonly writes: WriteWatch | null;
  /** Every entry was read at this write generation; any identity write empties the map. */
  private generation = -1;
  private readonly entries = new Map<string, unknown>();
  constructor(writes: WriteWatch | null) {
    this.writes = writes;
  }

  private async read<T>(key: string, load: () => Promise<T>): Promise<T> {
    if (!this.writes) return load();
    const generation = this.writes.generation('identity_');
    if (generation !== this.generation) {
      this.entries.clear();
      this.generation = generation;
    }
    if (this.entries.has(key)) return this.entries.get(key) as T;
    const value = await load();
    // Kept only when nothing was written while it loaded.
    if (this.writes.generation('identity_') === generation) {
      if (this.entries.size >= MAX_ENTRIES) this.entries.clear();
      this.entries.set(key, value);
    }
    return value;
  }

  /** The roles a token for this user and target carries. */
  roles(db: Db, userId: string, target: ScopeTarget): Promise<Named[]> {
    const t = 'projectId' in target ? `p:${target.projectId}` : 'domainId' in target ? `d:${target.domainId}` : 's';
    return this.read(`roles ${userId} ${t}`, () => effectiveRoles(db, userId, target));
  }

  user(db: Db, id: string) {
    return this.read(`user ${id}`, () => getUser(db, id));
  }

  domain(db: Db, id: string) {
    return this.read(`domain ${id}`, () => getDomain(db, id));
  }

  project(db: Db, id: string) {
    return this.read(`project ${id}`, () => getProject(db, id));
  }

  // Names may hold any character: JSON keeps the parts of a key apart.
  userByName(db: Db, domainId: string, name: string) {
    return this.read(`user-name ${JSON.stringify([domainId, name])}`, () => getUserByName(db, domainId, name));
  }

  domainByName(db: Db, name: string) {
    return this.read(`domain-name ${JSON.stringify(name)}`, () => getDomainByName(db, name));
  }

  projectByName(db: Db, domainId: string, name: string) {
    return this.read(`project-name ${JSON.stringify([domainId, name])}`, () => getProjectByName(db, domainId, name));
  }
}
