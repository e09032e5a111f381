// The in-process interface to EC2 credentials for services that verify
// request signatures made with them (the object store's S3 API): for an access
// key, its secret and the caller a token of its user on its project would
// name, as Keystone's ec2tokens/s3tokens exchange does for Swift's s3api.
// The secret never leaves the process and is never logged.
import type { Credentials } from '../http/auth.ts';
import { ApiError } from '../common/errors.ts';
import type { IdentityContext } from './context.ts';
import { credentialsOf } from './credentials.ts';
import { findEc2Credential } from './routes/credentials.ts';
import { findAppCredGrant, scopeAppCred, scopeProject, scopeTrust, userDomainOrFail, type Scoped } from './tokens/issue.ts';
import type { TokenData } from './tokens/token.ts';

export interface Ec2Key {
  access: string;
  /** The secret the request was signed with. */
  secret: string;
  /**
   * The caller, as a project-scoped token of the credential's user would
   * carry it; null when that user could not get such a token now (disabled
   * user, domain or project; no role left on the project; a dead trust or
   * application credential). Asked for once the request's signature is
   * checked: for a credential made under a trust it consumes one of the
   * trust's uses, as issuing a token for the trust does.
   */
  caller(): Promise<Credentials | null>;
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
      return { access, secret: c.secret, caller: async () => caller !== undefined ? caller : callerOf(ctx, c.userId, c.projectId, c.trustId ?? null, c.appCredId ?? null) };
    },
  };
}

/** Refusals of a scope (dead, expired, used up, no role, disabled) are null: the key names no caller now. */
async function orNull<T>(p: Promise<T>): Promise<T | null> {
  try {
    return await p;
  } catch (e) {
    if (e instanceof ApiError && e.status >= 400 && e.status < 500) return null;
    throw e;
  }
}

/** How long the caller of one signed request is taken to last (a trust's or application credential's expiry caps it). */
const CALLER_LIFETIME = 3600_000;

/**
 * The caller of a request signed with an EC2 credential: scoped by the same
 * resolvers a token is (tokens/issue.ts: scopeProject, scopeTrust,
 * scopeAppCred), so a credential made under a trust or an application
 * credential is exactly as strong as a token of it (a trust's use is
 * consumed per resolution, as per token); null when no such token could be
 * had now.
 */
async function callerOf(ctx: IdentityContext, userId: string, projectId: string, trustId: string | null, appCredId: string | null): Promise<Credentials | null> {
  const owner = await ctx.cache.user(ctx.db, userId);
  if (!owner) return null;
  const ownerDomain = await orNull(userDomainOrFail(ctx, owner));
  if (!ownerDomain) return null;
  let scoped: Scoped | null;
  let appCred: TokenData['appCred'];
  if (trustId) {
    scoped = await orNull(scopeTrust(ctx, userId, trustId));
  } else if (appCredId) {
    const grant = await findAppCredGrant(ctx, appCredId);
    if (!grant || grant.userId !== userId || grant.projectId !== projectId) return null;
    scoped = await orNull(scopeAppCred(ctx, userId, grant));
    appCred = { id: grant.id, name: grant.name, restricted: grant.restricted };
  } else {
    scoped = await orNull(scopeProject(ctx, userId, { id: projectId }));
  }
  if (!scoped?.project || scoped.project.id !== projectId || scoped.roles.length === 0) return null;
  const now = Date.now();
  let expiresAt = now + CALLER_LIFETIME;
  if (scoped.expiresCap) expiresAt = Math.min(expiresAt, Date.parse(scoped.expiresCap));
  const user = scoped.tokenUser ?? { user: owner, domain: ownerDomain };
  const data: TokenData = {
    user: { id: user.user.id, name: user.user.name, domain: user.domain },
    methods: ['ec2credential'], issuedAt: now, expiresAt, auditIds: [], project: scoped.project, roles: scoped.roles,
    ...(scoped.trust ? { trust: scoped.trust } : {}),
    ...(appCred ? { appCred } : {}),
  };
  return credentialsOf(data);
}
