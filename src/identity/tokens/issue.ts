// Authentication (POST /v3/auth/tokens) and validation of tokens.
import { createHash, timingSafeEqual } from 'node:crypto';
import { pooledRandomBytes } from '../../common/random.ts';
import { type Static, Type } from 'typebox';
import { type ApiError, badRequest, forbidden, notFound, unauthorized } from '../../common/errors.ts';
import { keystoneTime } from '../../common/ids.ts';
import { assignedRoleIds, namedGlobalRoles, withImplied, type ScopeTarget } from '../assignments.ts';
import type { IdentityContext } from '../context.ts';
import type { getUser } from '../lookup.ts';
import { parseJson } from '../../common/json.ts';
import { withBodyErrors } from '../http.ts';
import { decoyHash, verifyPassword } from '../passwords.ts';
import { decodeTokenCached, encodeToken } from './codec.ts';
import type { Named, NamedInDomain, TokenData } from './token.ts';

const NameRef = Type.Object({ id: Type.Optional(Type.String()), name: Type.Optional(Type.String()) });
const Ref = Type.Object({ id: Type.Optional(Type.String()), name: Type.Optional(Type.String()), domain: Type.Optional(NameRef) });
type Ref = Static<typeof Ref>;

/**
 * POST /v3/auth/tokens, as Keystone's token_issue schema has it. Violations
 * read as Keystone words them for the auth request (withBodyErrors).
 */
export const AuthBody = withBodyErrors(Type.Object({
  auth: Type.Object({
    identity: Type.Object({
      methods: Type.Array(Type.String(), { minItems: 1 }),
      password: Type.Optional(Type.Object({ user: Type.Object({ ...Ref.properties, password: Type.String() }) })),
      token: Type.Optional(Type.Object({ id: Type.String() })),
      application_credential: Type.Optional(Type.Object({
        id: Type.Optional(Type.String()), name: Type.Optional(Type.String()), secret: Type.String(), user: Type.Optional(Ref),
      })),
    }),
    scope: Type.Optional(Type.Union([
      Type.Literal('unscoped'),
      Type.Object({
        project: Type.Optional(Ref), domain: Type.Optional(NameRef), system: Type.Optional(Type.Object({ all: Type.Optional(Type.Unknown()) })),
        'OS-TRUST:trust': Type.Optional(Type.Object({ id: Type.String() })),
      }),
    ])),
  }),
}), authBodyError);
export type AuthRequest = Static<typeof AuthBody>['auth'];

/** Keystone's words for a malformed auth request, by where it is malformed. */
function authBodyError(field: string, e: { message?: string }): ApiError {
  const at = field.replace(/^auth\/?/, '');
  if (at === '' && !field.startsWith('auth/')) return badRequest("Invalid input for field 'auth': 'auth' is a required property.");
  if (at === 'identity') return badRequest("Invalid input for field 'identity': 'identity' is a required property.");
  if (at.startsWith('identity/methods')) return badRequest("Invalid input for field 'identity/methods': a non-empty list of method names is required.");
  if (['identity/password', 'identity/password/user', 'identity/password/user/password'].includes(at)) {
    return badRequest("Invalid input for field 'identity/password/user/password': a password is required.");
  }
  if (at === 'identity/token' || at === 'identity/token/id') return badRequest("Invalid input for field 'identity/token/id'.");
  if (at === 'identity/application_credential' || at === 'identity/application_credential/secret') {
    return badRequest("Invalid input for field 'identity/application_credential/secret'.");
  }
  if (at === 'scope') return badRequest("Invalid input for field 'scope'.");
  return badRequest(`Invalid input for field '${at}': ${e.message ?? 'invalid'}.`);
}

const newAuditId = () => pooledRandomBytes(16).toString('base64url');
const AUTH_FAILED = 'The request you have made requires authentication.';

type UserRow = NonNullable<Awaited<ReturnType<typeof getUser>>>;

/** The user a token is for, before scoping. */
interface Authenticated {
  user: UserRow;
  userDomain: Named;
  methods: string[];
  /** Set when re-scoping an existing token. */
  parent?: TokenData;
  appCred?: { id: string; name: string; restricted: boolean; projectId: string; roleIds: string[]; expiresAt: string | null };
}

/** A stored hash of a random, high-entropy secret: sha256 is enough there, and fast. */
export const hashSecret = (secret: string) => `sha256$${createHash('sha256').update(secret).digest('hex')}`;
export function secretMatches(secret: string, stored: string): boolean {
  const a = Buffer.from(hashSecret(secret));
  const b = Buffer.from(stored);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The domain id a {id} or {name} reference names (an id is taken as given; a name must exist). */
async function domainIdOf(ctx: IdentityContext, ref: { id?: string; name?: string }): Promise<string | undefined> {
  if (ref.id) return ref.id;
  return ref.name ? (await ctx.cache.domainByName(ctx.db, ref.name))?.id : undefined;
}

async function findUser(ctx: IdentityContext, ref: Ref | undefined): Promise<UserRow | undefined> {
  if (!ref) return undefined;
  if (ref.id) return ctx.cache.user(ctx.db, ref.id);
  if (!ref.name || !ref.domain) return undefined;
  const domainId = await domainIdOf(ctx, ref.domain);
  return domainId ? ctx.cache.userByName(ctx.db, domainId, ref.name) : undefined;
}

export async function userDomainOrFail(ctx: IdentityContext, user: UserRow): Promise<Named> {
  const domain = await ctx.cache.domain(ctx.db, user.domain_id);
  if (!domain || !domain.enabled || !user.enabled) throw unauthorized(AUTH_FAILED);
  return { id: domain.id, name: domain.name };
}

async function authPassword(ctx: IdentityContext, req: NonNullable<AuthRequest['identity']['password']>): Promise<Authenticated> {
  const ref = req.user;
  if (!ref || typeof ref.password !== 'string') throw badRequest("Invalid input for field 'identity/password/user/password': a password is required.");
  if (!ref.id && !(ref.name && ref.domain)) throw badRequest('Expecting to find domain in user. The server could not comply with the request since it is either malformed or otherwise incorrect.');
  const user = await findUser(ctx, ref);
  const { lockoutFailureAttempts, lockoutDuration } = ctx.config;
  if (!user || !user.password_hash) {
    await verifyPassword(ref.password, await decoyHash());
    throw unauthorized(AUTH_FAILED);
  }
  if (lockoutFailureAttempts > 0 && user.failed_auth_count >= lockoutFailureAttempts && user.failed_auth_at &&
      Date.now() - Date.parse(user.failed_auth_at) < lockoutDuration * 1000) {
    throw unauthorized(`The account is locked for user: ${user.id}.`);
  }
  if (!(await verifyPassword(ref.password, user.password_hash))) {
    if (lockoutFailureAttempts > 0) {
      await ctx.db.updateTable('identity_users')
        .set({ failed_auth_count: user.failed_auth_count + 1, failed_auth_at: new Date().toISOString() })
        .where('id', '=', user.id).execute();
    }
    throw unauthorized(AUTH_FAILED);
  }
  const userDomain = await userDomainOrFail(ctx, user);
  const options = parseJson<Record<string, unknown>>(user.options, {});
  if (user.password_expires_at && Date.parse(user.password_expires_at) <= Date.now() && !options.ignore_password_expiry) {
    throw unauthorized(`The password is expired and needs to be changed for user: ${user.id}.`);
  }
  if (user.failed_auth_count > 0) {
    await ctx.db.updateTable('identity_users').set({ failed_auth_count: 0, failed_auth_at: null }).where('id', '=', user.id).execute();
  }
  return { user, userDomain, methods: ['password'] };
}

async function authToken(ctx: IdentityContext, req: NonNullable<AuthRequest['identity']['token']>): Promise<Authenticated> {
  if (!req || typeof req.id !== 'string') throw badRequest("Invalid input for field 'identity/token/id'.");
  const parent = validateToken(ctx, req.id, false);
  // Keystone answers an invalid or revoked token in the token method with 404.
  if (!parent) throw notFound('Could not find token.');
  if (parent.appCred) throw forbidden('Re-scoping an application credential token is not allowed.');
  if (parent.trust) throw forbidden('Re-scoping a trust token is not allowed.');
  const user = await ctx.cache.user(ctx.db, parent.user.id);
  if (!user) throw unauthorized(AUTH_FAILED);
  const userDomain = await userDomainOrFail(ctx, user);
  return { user, userDomain, methods: [...new Set([...parent.methods, 'token'])], parent };
}

async function authAppCred(ctx: IdentityContext, req: NonNullable<AuthRequest['identity']['application_credential']>): Promise<Authenticated> {
  if (!req || typeof req.secret !== 'string') throw badRequest("Invalid input for field 'identity/application_credential/secret'.");
  let row;
  if (req.id) {
    row = await getAppCredRow(ctx, req.id);
  } else if (req.name && req.user) {
    const user = await findUser(ctx, req.user);
    if (user) row = await ctx.db.selectFrom('identity_app_credentials').selectAll().where('user_id', '=', user.id).where('name', '=', req.name).executeTakeFirst();
  } else {
    throw badRequest('Could not find application credential: an id, or a name and a user, is required.');
  }
  if (!row || !secretMatches(req.secret, row.secret_hash)) throw unauthorized(AUTH_FAILED);
  const user = await ctx.cache.user(ctx.db, row.user_id);
  if (!user) throw unauthorized(AUTH_FAILED);
  const userDomain = await userDomainOrFail(ctx, user);
  return { user, userDomain, methods: ['application_credential'], appCred: appCredGrant(row) };
}

type AppCredRow = NonNullable<Awaited<ReturnType<typeof getAppCredRow>>>;
const getAppCredRow = (ctx: IdentityContext, id: string) =>
  ctx.db.selectFrom('identity_app_credentials').selectAll().where('id', '=', id).executeTakeFirst();

/** What an application credential grants (its project, roles and expiry), as scoping checks it. */
export type AppCredGrant = NonNullable<Authenticated['appCred']>;
export function appCredGrant(row: AppCredRow): AppCredGrant {
  const roles = parseJson<Array<{ id: string }>>(row.roles, []);
  return { id: row.id, name: row.name, restricted: !row.unrestricted, projectId: row.project_id, roleIds: roles.map((r) => r.id), expiresAt: row.expires_at };
}
/** An application credential by id (undefined when there is none): for EC2 credentials made with one (ec2.ts). */
export const findAppCredGrant = async (ctx: IdentityContext, id: string): Promise<(AppCredGrant & { userId: string }) | undefined> => {
  const row = await getAppCredRow(ctx, id);
  return row ? { ...appCredGrant(row), userId: row.user_id } : undefined;
};

export async function projectOrFail(ctx: IdentityContext, ref: Ref): Promise<NamedInDomain> {
  let project;
  if (ref.id) project = await ctx.cache.project(ctx.db, ref.id);
  else if (ref.name && ref.domain) {
    const domainId = await domainIdOf(ctx, ref.domain);
    if (domainId) project = await ctx.cache.projectByName(ctx.db, domainId, ref.name);
  } else {
    throw badRequest('Expecting to find domain in project. The server could not comply with the request since it is either malformed or otherwise incorrect.');
  }
  if (!project) throw unauthorized(AUTH_FAILED);
  const domain = await ctx.cache.domain(ctx.db, project.domain_id);
  if (!project.enabled || !domain?.enabled) throw unauthorized(AUTH_FAILED);
  return { id: project.id, name: project.name, domain: { id: domain.id, name: domain.name } };
}

/** A scope checked now: what a token (or an EC2 credential's caller, ec2.ts) carries. */
export interface Scoped {
  project?: NamedInDomain;
  domain?: Named;
  system?: boolean;
  roles: Named[];
  trust?: TokenData['trust'];
  expiresCap?: string | null;
  /** The user the token is issued for (the trustor when a trust impersonates). */
  tokenUser?: { user: UserRow; domain: Named };
}

export async function rolesOrFail(ctx: IdentityContext, userId: string, target: ScopeTarget, what: string): Promise<Named[]> {
  const roles = await ctx.cache.roles(ctx.db, userId, target);
  if (roles.length === 0) throw unauthorized(`User ${userId} has no access to ${what}.`);
  return roles;
}

type TrustRow = NonNullable<Awaited<ReturnType<typeof getTrustRow>>>;
const getTrustRow = (ctx: IdentityContext, id: string) =>
  ctx.db.selectFrom('identity_trusts').selectAll().where('id', '=', id).executeTakeFirst();

/** Keystone's trust redelegation depth limit ([trust] max_redelegation_count). */
export const MAX_REDELEGATION_COUNT = 3;

/** A trust that can still be used: not deleted, not expired, uses left. */
export function trustIsLive(t: TrustRow, now = Date.now()): boolean {
  if (t.deleted_at) return false;
  if (t.expires_at && Date.parse(t.expires_at) <= now) return false;
  return t.remaining_uses === null || t.remaining_uses > 0;
}

/**
 * The trust and the trusts it was redelegated from, nearest first, when the
 * trust and its whole chain are still live; undefined otherwise (Keystone
 * answers such a trust as not found).
 */
export async function liveTrustChain(ctx: IdentityContext, id: string): Promise<TrustRow[] | undefined> {
  const chain: TrustRow[] = [];
  const seen = new Set<string>();
  let next: string | null = id;
  while (next && !seen.has(next)) {
    seen.add(next);
    const t = await getTrustRow(ctx, next);
    if (!t || !trustIsLive(t)) return undefined;
    chain.push(t);
    next = t.redelegated_trust_id;
  }
  return chain;
}

/**
 * The scope a trust gives its trustee now, and one use of it consumed: the
 * one resolver of trust scoping, for a trust-scoped token and for each
 * request signed with an EC2 credential made under a trust (ec2.ts), so the
 * credential is exactly as strong as a token for that trust. Throws as
 * Keystone answers: 401 for a dead trust, 403 for a refused one.
 */
export async function scopeTrust(ctx: IdentityContext, trusteeId: string, trustId: string): Promise<Scoped> {
  // An unknown, deleted, expired or used-up trust (or one redelegated from such) is a 401, as in Keystone.
  const chain = await liveTrustChain(ctx, trustId);
  if (!chain) throw unauthorized(AUTH_FAILED);
  const trust = chain[0]!;
  if (trust.trustee_user_id !== trusteeId) throw forbidden('User is not a trustee.');
  const trustor = await ctx.cache.user(ctx.db, trust.trustor_user_id);
  if (!trustor) throw unauthorized(AUTH_FAILED);
  const trustorDomain = await userDomainOrFail(ctx, trustor);
  let project: NamedInDomain | undefined;
  let roles: Named[] = [];
  if (trust.project_id) {
    project = await projectOrFail(ctx, { id: trust.project_id });
    // Every delegated role (and what it implies) must still be held by the
    // original trustor, else the trust is void (Keystone: "Trustee has no delegated roles.").
    const originalTrustor = chain[chain.length - 1]!.trustor_user_id;
    const held = await withImplied(ctx.db, await assignedRoleIds(ctx.db, originalTrustor, { projectId: project.id }));
    const delegated = await withImplied(ctx.db, parseJson<Array<{ id: string }>>(trust.roles, []).map((r) => r.id));
    if ([...delegated].some((id) => !held.has(id))) throw forbidden('Trustee has no delegated roles.');
    roles = await namedGlobalRoles(ctx.db, delegated);
    if (roles.length === 0) throw forbidden('Trustee has no delegated roles.');
  }
  // A use is consumed only once every check passed; optimistic, so concurrent uses never overdraw.
  if (trust.remaining_uses !== null) {
    const updated = await ctx.db.updateTable('identity_trusts').set({ remaining_uses: trust.remaining_uses - 1 })
      .where('id', '=', trust.id).where('remaining_uses', '=', trust.remaining_uses).where('deleted_at', 'is', null).executeTakeFirst();
    if (Number(updated.numUpdatedRows) !== 1) throw forbidden(`No remaining uses for trust: ${trust.id}.`);
  }
  return {
    project, roles, expiresCap: trust.expires_at,
    trust: { id: trust.id, trustorId: trust.trustor_user_id, trusteeId: trust.trustee_user_id, impersonation: !!trust.impersonation },
    tokenUser: trust.impersonation ? { user: trustor, domain: trustorDomain } : undefined,
  };
}

/**
 * The scope an application credential gives its user now (its project, the
 * roles it grants that the user still holds there); 401 when it expired or
 * grants nothing. Shared by tokens and EC2 credentials made with one (ec2.ts).
 */
export async function scopeAppCred(ctx: IdentityContext, userId: string, appCred: AppCredGrant): Promise<Scoped> {
  if (appCred.expiresAt && Date.parse(appCred.expiresAt) <= Date.now()) throw unauthorized(AUTH_FAILED);
  const project = await projectOrFail(ctx, { id: appCred.projectId });
  const held = await ctx.cache.roles(ctx.db, userId, { projectId: project.id });
  const granted = await withImplied(ctx.db, appCred.roleIds);
  const roles = held.filter((r) => granted.has(r.id));
  if (roles.length === 0) throw unauthorized(`User ${userId} has no access to project ${project.id}.`);
  return { project, roles, expiresCap: appCred.expiresAt };
}

/** A project scope of a user: the enabled project (and domain) and the user's roles there; 401 otherwise. */
export async function scopeProject(ctx: IdentityContext, userId: string, ref: Ref): Promise<Scoped> {
  const project = await projectOrFail(ctx, ref);
  return { project, roles: await rolesOrFail(ctx, userId, { projectId: project.id }, `project ${project.id}`) };
}

async function scope(ctx: IdentityContext, auth: Authenticated, req: AuthRequest['scope']): Promise<Scoped> {
  const userId = auth.user.id;
  if (auth.appCred) {
    if (req && req !== 'unscoped' && (req.domain || req.system || req['OS-TRUST:trust'])) {
      throw unauthorized('Application credentials cannot request a scope.');
    }
    return scopeAppCred(ctx, userId, auth.appCred);
  }
  if (req === 'unscoped') return { roles: [] };
  if (req && typeof req === 'object') {
    const kinds = ['project', 'domain', 'system', 'OS-TRUST:trust'].filter((k) => (req as Record<string, unknown>)[k] !== undefined);
    if (kinds.length > 1) throw badRequest('Only one of project, domain, system or trust may be given in a scope.');
    if (req.project) return scopeProject(ctx, userId, req.project);
    if (req.domain) {
      const d = req.domain.id ? await ctx.cache.domain(ctx.db, req.domain.id) : req.domain.name ? await ctx.cache.domainByName(ctx.db, req.domain.name) : undefined;
      if (!req.domain.id && !req.domain.name) throw badRequest('A domain scope needs an id or a name.');
      if (!d || !d.enabled) throw unauthorized(AUTH_FAILED);
      return { domain: { id: d.id, name: d.name }, roles: await rolesOrFail(ctx, userId, { domainId: d.id }, `domain ${d.id}`) };
    }
    if (req.system) {
      if (req.system.all !== true) throw badRequest('The only system scope is {"all": true}.');
      return { system: true, roles: await rolesOrFail(ctx, userId, { system: true }, 'the system') };
    }
    if (req['OS-TRUST:trust']) {
      if (typeof req['OS-TRUST:trust'].id !== 'string') throw badRequest('A trust scope needs an id.');
      return scopeTrust(ctx, userId, req['OS-TRUST:trust'].id);
    }
    if (kinds.length === 0 && Object.keys(req).length > 0) throw badRequest('Unknown scope.');
  }
  // No scope asked: the user's default project when they have a role there, as Keystone does.
  if (auth.parent) return { roles: [] };
  if (auth.user.default_project_id) {
    const project = await ctx.cache.project(ctx.db, auth.user.default_project_id);
    const domain = project ? await ctx.cache.domain(ctx.db, project.domain_id) : undefined;
    if (project?.enabled && domain?.enabled) {
      const roles = await ctx.cache.roles(ctx.db, userId, { projectId: project.id });
      if (roles.length > 0) return { project: { id: project.id, name: project.name, domain: { id: domain.id, name: domain.name } }, roles };
    }
  }
  return { roles: [] };
}

/** Runs the whole POST /v3/auth/tokens exchange and returns the new token and its payload. */
export async function issueToken(ctx: IdentityContext, body: Static<typeof AuthBody>): Promise<{ token: string; data: TokenData }> {
  const auth = body.auth;
  const identity = auth.identity;
  const methods = [...new Set(identity.methods)];
  let authenticated: Authenticated | undefined;
  for (const method of methods) {
    let next: Authenticated;
    if (method === 'password' && identity.password) next = await authPassword(ctx, identity.password);
    else if (method === 'token' && identity.token) next = await authToken(ctx, identity.token);
    else if (method === 'application_credential' && identity.application_credential) next = await authAppCred(ctx, identity.application_credential);
    else if (!Object.hasOwn(identity, method)) throw badRequest(`Expecting to find ${method} in identity.`);
    else throw unauthorized(`Attempted to authenticate with an unsupported method: ${method}.`);
    if (authenticated && authenticated.user.id !== next.user.id) throw unauthorized(AUTH_FAILED);
    authenticated = authenticated ? { ...authenticated, ...next, methods: [...new Set([...authenticated.methods, ...next.methods])] } : next;
  }
  const a = authenticated!;
  const s = await scope(ctx, a, auth.scope);
  const now = Date.now();
  let expiresAt = a.parent ? a.parent.expiresAt : now + ctx.config.tokenExpiration * 1000;
  if (s.expiresCap) expiresAt = Math.min(expiresAt, Date.parse(s.expiresCap));
  const tokenUser = s.tokenUser ?? { user: a.user, domain: a.userDomain };
  const data: TokenData = {
    user: { id: tokenUser.user.id, name: tokenUser.user.name, domain: tokenUser.domain },
    methods: a.methods,
    issuedAt: now,
    expiresAt,
    auditIds: a.parent ? [newAuditId(), a.parent.auditIds[a.parent.auditIds.length - 1]!] : [newAuditId()],
    roles: s.roles,
    passwordExpiresAt: tokenUser.user.password_expires_at,
  };
  if (s.project) data.project = s.project;
  if (s.domain) data.domain = s.domain;
  if (s.system) data.system = true;
  if (s.trust) data.trust = s.trust;
  if (a.appCred) data.appCred = { id: a.appCred.id, name: a.appCred.name, restricted: a.appCred.restricted };
  return { token: encodeToken(data, ctx.keys), data };
}

/**
 * Decodes and checks a token without touching the database. Returns null when
 * it is malformed, forged, revoked, or expired (unless allowExpired and within the window).
 */
export function validateToken(ctx: IdentityContext, token: string, allowExpired: boolean): TokenData | null {
  const data = decodeTokenCached(token, ctx.keys);
  if (!data) return null;
  const now = Date.now();
  if (data.expiresAt <= now && !(allowExpired && data.expiresAt + ctx.config.allowExpiredWindow * 1000 > now)) return null;
  if (ctx.revocations.isRevoked(data)) return null;
  return data;
}

/** The token body Keystone returns from POST and GET /v3/auth/tokens. */
export function renderToken(ctx: IdentityContext, t: TokenData, withCatalog: boolean): Record<string, unknown> {
  const token: Record<string, unknown> = {
    methods: t.methods,
    user: { domain: t.user.domain, id: t.user.id, name: t.user.name, password_expires_at: t.passwordExpiresAt ? keystoneTime(t.passwordExpiresAt) : null },
    audit_ids: t.auditIds,
    expires_at: keystoneTime(t.expiresAt),
    issued_at: keystoneTime(t.issuedAt),
  };
  const scoped = !!(t.project || t.domain || t.system);
  if (t.project) {
    token.project = { domain: t.project.domain, id: t.project.id, name: t.project.name };
    token.is_domain = false;
  }
  if (t.domain) token.domain = t.domain;
  if (t.system) token.system = { all: true };
  if (scoped) token.roles = t.roles;
  if (t.appCred) token.application_credential = t.appCred;
  if (t.trust) {
    token['OS-TRUST:trust'] = {
      id: t.trust.id, impersonation: t.trust.impersonation,
      trustee_user: { id: t.trust.trusteeId }, trustor_user: { id: t.trust.trustorId },
    };
  }
  if (scoped && withCatalog) token.catalog = ctx.catalog.forProject(t.project?.id ?? null);
  return { token };
}

