// The in-process interface to EC2 credentials for services that verify
// request signatures made with them (the object store's S3 API): for an access
// key, its secret and the caller a token of its user on its project would
// name, as Keystone's ec2tokens/s3tokens exchange does for Swift's s3api.
// The secret never leaves the process and is never logged.
import type { Credentials } from '../http/auth.ts';
import { parseJson } from '../common/json.ts';
import { namedGlobalRoles, withImplied, assignedRoleIds } from './assignments.ts';
import type { IdentityContext } from './context.ts';
import { credentialsOf } from './credentials.ts';
import { findEc2Credential } from './routes/credentials.ts';
import { liveTrustChain } from './tokens/issue.ts';
import type { Named, NamedInDomain, TokenData } from './tokens/token.ts';

export interface Ec2Key {
  access: string;
  /** The secret the request was signed with. */
  secret: string;
  /**
   * The caller, as a project-scoped token of the credential's user would
   * carry it; null when that user could not get such a token now (disabled
   * user, domain or project; no role left on the project; a dead trust or
   * application credential).
   */
  credentials: Credentials | null;
}

export interface Ec2Keys {
  /** The key of an access key id; undefined when no EC2 credential has it. */
  lookup(access: string): Promise<Ec2Key | undefined>;
}

export function ec2Keys(ctx: IdentityContext): Ec2Keys {
  return {
    async lookup(access) {
      // Remembered until an identity table is written (read-cache.ts: the embedded SQLite only), as
      // tokens' reads are: the credential (a read and a decryption) and, for a plain one, its caller.
      // A trust's or an application credential's caller is made anew each time, so its expiry is seen at once.
      const known = await ctx.cache.remember(`ec2 ${access}`, async () => {
        const c = await findEc2Credential(ctx.credentials, access);
        if (!c) return undefined;
        const plain = !c.trustId && !c.appCredId;
        return { c, caller: plain ? await callerOf(ctx, c.userId, c.projectId, null, null) : undefined };
      });
      if (!known) return undefined;
      const { c, caller } = known;
      return { access, secret: c.secret, credentials: caller !== undefined ? caller : await callerOf(ctx, c.userId, c.projectId, c.trustId ?? null, c.appCredId ?? null) };
    },
  };
}

async function enabledUser(ctx: IdentityContext, id: string): Promise<NamedInDomain | null> {
  const user = await ctx.cache.user(ctx.db, id);
  if (!user || !user.enabled) return null;
  const domain = await ctx.cache.domain(ctx.db, user.domain_id);
  if (!domain || !domain.enabled) return null;
  return { id: user.id, name: user.name, domain: { id: domain.id, name: domain.name } };
}

async function enabledProject(ctx: IdentityContext, id: string): Promise<NamedInDomain | null> {
  const project = await ctx.cache.project(ctx.db, id);
  if (!project || !project.enabled) return null;
  const domain = await ctx.cache.domain(ctx.db, project.domain_id);
  if (!domain || !domain.enabled) return null;
  return { id: project.id, name: project.name, domain: { id: domain.id, name: domain.name } };
}

async function callerOf(ctx: IdentityContext, userId: string, projectId: string, trustId: string | null, appCredId: string | null): Promise<Credentials | null> {
  const owner = await enabledUser(ctx, userId);
  if (!owner) return null;
  let user = owner;
  let project = await enabledProject(ctx, projectId);
  let roles: Named[];
  let trust: TokenData['trust'];
  let appCred: TokenData['appCred'];
  if (trustId) {
    const chain = await liveTrustChain(ctx, trustId);
    const t = chain?.[0];
    if (!chain || !t || t.trustee_user_id !== userId || !t.project_id) return null;
    project = await enabledProject(ctx, t.project_id);
    if (!project) return null;
    const held = await withImplied(ctx.db, await assignedRoleIds(ctx.db, chain[chain.length - 1]!.trustor_user_id, { projectId: project.id }));
    const delegated = await withImplied(ctx.db, parseJson<Array<{ id: string }>>(t.roles, []).map((r) => r.id));
    if ([...delegated].some((id) => !held.has(id))) return null;
    roles = await namedGlobalRoles(ctx.db, delegated);
    trust = { id: t.id, trustorId: t.trustor_user_id, trusteeId: t.trustee_user_id, impersonation: !!t.impersonation };
    if (t.impersonation) {
      const trustor = await enabledUser(ctx, t.trustor_user_id);
      if (!trustor) return null;
      user = trustor;
    }
  } else {
    if (!project) return null;
    roles = await ctx.cache.roles(ctx.db, userId, { projectId: project.id });
    if (appCredId) {
      const row = await ctx.db.selectFrom('identity_app_credentials').selectAll().where('id', '=', appCredId).executeTakeFirst();
      if (!row || row.user_id !== userId || row.project_id !== project.id) return null;
      if (row.expires_at && Date.parse(row.expires_at) <= Date.now()) return null;
      const granted = await withImplied(ctx.db, parseJson<Array<{ id: string }>>(row.roles, []).map((r) => r.id));
      roles = roles.filter((r) => granted.has(r.id));
      appCred = { id: row.id, name: row.name, restricted: !row.unrestricted };
    }
  }
  if (roles.length === 0) return null;
  const now = Date.now();
  const data: TokenData = {
    user, methods: ['ec2credential'], issuedAt: now, expiresAt: now + 3600_000, auditIds: [], project, roles,
    ...(trust ? { trust } : {}), ...(appCred ? { appCred } : {}),
  };
  return credentialsOf(data);
}
