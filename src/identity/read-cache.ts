// Identity reads on the token path (users, domains, projects, effective roles)
// remembered until an identity table is written, so rescoping and password
// logins skip their queries. This process's writes are counted per table by
// the write watch; another process's (`stratus bootstrap --admin-password`
// beside a running server) by SQLite's data_version, read before every answer
// from memory: a commit elsewhere is seen by the next read, with no window in
// which an old password still works. Only for the embedded SQLite: with
// PostgreSQL every read goes to the database.
import type { Db } from '../db/database.ts';
import { commitsByOthers, type WriteWatch } from '../db/write-watch.ts';
import { effectiveRoles, type ScopeTarget } from './assignments.ts';
import { getDomain, getDomainByName, getProject, getProjectByName, getUser, getUserByName } from './lookup.ts';
import type { Named } from './tokens/token.ts';

const MAX_ENTRIES = 10_000;

/** Values handed out are shared between callers: never change them. */
export class IdentityReadCache {
  private readonly watch: { writes: WriteWatch; db: Db } | null;
  /**
   * Every entry was read at this stamp (other processes' commit count, this
   * process's identity write generation); a newer stamp empties the map.
   */
  private stamp = '';
  private readonly entries = new Map<string, unknown>();
  /** `watch`: the SQLite database and its write watch; null: no cache. */
  constructor(watch: { writes: WriteWatch; db: Db } | null) {
    this.watch = watch;
  }

  private async read<T>(key: string, load: () => Promise<T>): Promise<T> {
    if (!this.watch) return load();
    const { writes, db } = this.watch;
    const elsewhere = await commitsByOthers(db);
    const generation = writes.generation('identity_');
    const stamp = `${elsewhere} ${generation}`;
    if (stamp !== this.stamp) {
      this.entries.clear();
      this.stamp = stamp;
    }
    if (this.entries.has(key)) return this.entries.get(key) as T;
    const value = await load();
    // Kept only when nothing was written here while it loaded and no read has
    // since seen a newer stamp. A commit elsewhere during the load moves the
    // stamp the next read sees, which then drops this entry.
    if (writes.generation('identity_') === generation && this.stamp === stamp) {
      if (this.entries.size >= MAX_ENTRIES) this.entries.clear();
      this.entries.set(key, value);
    }
    return value;
  }

  /**
   * Any value derived from identity tables only, remembered like the reads
   * below (`key` names it): the EC2 key lookups of S3 signatures (ec2.ts).
   */
  remember<T>(key: string, load: () => Promise<T>): Promise<T> {
    return this.read(key, load);
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
