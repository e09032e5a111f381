// Token revocation events, kept in memory for validation without a database
// read. Events are written to the database and every replica polls for new ones.
import type { Db } from '../../db/database.ts';
import { nowIso } from '../../common/ids.ts';
import type { TokenData } from './token.ts';

export interface RevocationEvent {
  userId?: string | null;
  projectId?: string | null;
  domainId?: string | null;
  auditId?: string | null;
  auditChainId?: string | null;
  trustId?: string | null;
  roleId?: string | null;
  appCredId?: string | null;
}

interface Stored extends RevocationEvent { issuedBefore: number }

const FIELDS = ['auditId', 'auditChainId', 'userId', 'projectId', 'domainId', 'trustId', 'appCredId', 'roleId'] as const;
type Field = (typeof FIELDS)[number];

export class Revocations {
  /** Each event is filed under its most selective field and value. */
  private readonly index = new Map<string, Stored[]>();
  private lastId = 0;
  private readonly retainMs: number;
  constructor(retainMs: number) {
    this.retainMs = retainMs;
  }

  private file(e: Stored): void {
    const field = FIELDS.find((f) => e[f]);
    const key = field ? `${field}:${e[field]}` : '*';
    const list = this.index.get(key);
    if (list) list.push(e);
    else this.index.set(key, [e]);
  }

  /** Reads events written since the last call (by this or another replica). */
  async sync(db: Db): Promise<void> {
    const rows = await db.selectFrom('identity_revocations').selectAll().where('id', '>', this.lastId).orderBy('id').execute();
    for (const r of rows) {
      this.lastId = Math.max(this.lastId, r.id);
      this.file({
        userId: r.user_id, projectId: r.project_id, domainId: r.domain_id, auditId: r.audit_id,
        auditChainId: r.audit_chain_id, trustId: r.trust_id, roleId: r.role_id, appCredId: r.app_cred_id,
        issuedBefore: Date.parse(r.issued_before),
      });
    }
  }

  /** Records an event: tokens matching every given field and issued until now are revoked. */
  async revoke(db: Db, e: RevocationEvent): Promise<void> {
    const now = nowIso();
    await db.insertInto('identity_revocations').values({
      user_id: e.userId ?? null, project_id: e.projectId ?? null, domain_id: e.domainId ?? null,
      audit_id: e.auditId ?? null, audit_chain_id: e.auditChainId ?? null, trust_id: e.trustId ?? null,
      role_id: e.roleId ?? null, app_cred_id: e.appCredId ?? null, issued_before: now, revoked_at: now,
    }).execute();
    await this.sync(db);
  }

  /** Drops events older than any token they could still match, in memory and in the database. */
  async prune(db: Db): Promise<void> {
    const cutoff = Date.now() - this.retainMs;
    for (const [k, list] of this.index) {
      const kept = list.filter((e) => e.issuedBefore >= cutoff);
      if (kept.length === 0) this.index.delete(k);
      else this.index.set(k, kept);
    }
    await db.deleteFrom('identity_revocations').where('issued_before', '<', new Date(cutoff).toISOString()).execute();
  }

  isRevoked(t: TokenData): boolean {
    const values: Record<Field, string[]> = {
      auditId: t.auditIds.slice(0, 1),
      auditChainId: t.auditIds.slice(-1),
      userId: [t.user.id, ...(t.trust ? [t.trust.trustorId, t.trust.trusteeId] : [])],
      projectId: t.project ? [t.project.id] : [],
      domainId: [t.user.domain.id, ...(t.project ? [t.project.domain.id] : []), ...(t.domain ? [t.domain.id] : [])],
      trustId: t.trust ? [t.trust.id] : [],
      appCredId: t.appCred ? [t.appCred.id] : [],
      roleId: t.roles.map((r) => r.id),
    };
    const matches = (e: Stored) =>
      t.issuedAt <= e.issuedBefore && FIELDS.every((f) => !e[f] || values[f].includes(e[f]!));
    for (const f of FIELDS) {
      for (const v of values[f]) {
        const list = this.index.get(`${f}:${v}`);
        if (list && list.some(matches)) return true;
      }
    }
    return this.index.get('*')?.some(matches) ?? false;
  }
}
