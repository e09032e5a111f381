// /v3/users: users, their password (admin reset and self-service change) and
// the projects they hold roles on. A password or its hash never leaves here.
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { badRequest, forbidden, unauthorized } from '../../common/errors.ts';
import { hexId, keystoneTime, nowIso } from '../../common/ids.ts';
import { route, type Route, type RouteContext } from '../../http/service.ts';
import { PUBLIC } from '../../http/policy.ts';
import { projectIdsForUser } from '../assignments.ts';
import { resourceRoutes } from '../resource.ts';
import type { IdentityContext } from '../context.ts';
import { assertSameIdAndDomain, duplicate, extraOf, listLinks, mergeExtra, patchFlag, queryString, renderList, selfLink, splitExtra, withListFilters } from '../http.ts';
import { conflictOnDuplicate } from '../../db/unique.ts';
import { getDomain, getUser, missing, mustGet } from '../lookup.ts';
import { parseJson } from '../../common/json.ts';
import { decoyHash, hashPassword, verifyPassword } from '../passwords.ts';
import { renderProject, tagsOf } from './projects.ts';

export type UserRow = NonNullable<Awaited<ReturnType<typeof getUser>>>;

const Nullable = <T extends Parameters<typeof Type.Optional>[0]>(t: T) => Type.Optional(Type.Union([t, Type.Null()]));
const Name = Type.String({ minLength: 1, maxLength: 255, pattern: '\\S' });
const Bool = Nullable(Type.Boolean());
/** Keystone's user resource options; null removes an option. */
const UserOptions = Type.Object({
  ignore_change_password_upon_first_use: Bool,
  ignore_password_expiry: Bool,
  ignore_lockout_failure_attempts: Bool,
  ignore_user_inactivity: Bool,
  lock_password: Bool,
  multi_factor_auth_enabled: Bool,
  multi_factor_auth_rules: Nullable(Type.Array(Type.Array(Type.String(), { minItems: 1, uniqueItems: true }), { uniqueItems: true })),
}, { additionalProperties: false });
const userFields = {
  default_project_id: Nullable(Type.String()),
  enabled: Type.Optional(Type.Boolean()),
  password: Nullable(Type.String()),
  options: Type.Optional(UserOptions),
};
const UserBody = Type.Object({
  user: Type.Object({ name: Name, domain_id: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })), ...userFields }, { additionalProperties: true }),
});
const UserPatch = Type.Object({
  user: Type.Object({ name: Type.Optional(Name), domain_id: Type.Optional(Type.String()), ...userFields }, { additionalProperties: true, minProperties: 1 }),
});
const PasswordChange = Type.Object({
  user: Type.Object({ password: Type.String(), original_password: Type.String() }, { additionalProperties: false }),
});

const KNOWN = ['id', 'name', 'domain_id', 'enabled', 'default_project_id', 'password', 'options', 'links', 'password_expires_at', 'federated'];

type UserOptions = Record<string, unknown>;

export function renderUser(req: FastifyRequest, u: UserRow) {
  const extra = extraOf(u.extra);
  return {
    ...extra, id: u.id, name: u.name, domain_id: u.domain_id, enabled: u.enabled === 1,
    ...(u.default_project_id ? { default_project_id: u.default_project_id } : {}),
    password_expires_at: u.password_expires_at ? keystoneTime(u.password_expires_at) : null,
    options: parseJson<UserOptions>(u.options, {}), links: selfLink(req, `/users/${u.id}`),
  };
}

/** Merges resource options; a null value removes the option. */
function mergeOptions(current: UserOptions, given: UserOptions | undefined): UserOptions {
  const out = { ...current };
  for (const [k, v] of Object.entries(given ?? {})) {
    if (v === null) delete out[k];
    else out[k] = v;
  }
  return out;
}

/** When a password set now expires: never unless expiry is configured and the user is not exempt. */
export function passwordExpiry(ctx: IdentityContext, options: UserOptions, now: Date): string | null {
  const days = ctx.config.passwordExpiresDays;
  if (!(days > 0) || options.ignore_password_expiry === true) return null;
  const at = new Date(now.getTime() + days * 86400_000);
  at.setUTCMilliseconds(0);
  return at.toISOString();
}

/** The columns to write when a password is set (by an admin or by the user). */
async function passwordColumns(ctx: IdentityContext, password: string | null, options: UserOptions) {
  const now = new Date();
  if (password === null) {
    return { password_hash: null, password_created_at: null, password_expires_at: null, failed_auth_count: 0, failed_auth_at: null };
  }
  return {
    password_hash: await hashPassword(password), password_created_at: now.toISOString(),
    password_expires_at: passwordExpiry(ctx, options, now), failed_auth_count: 0, failed_auth_at: null,
  };
}

/** Keystone's password_expires_at filter: `{lt,lte,gt,gte,eq,neq}:timestamp` or a bare timestamp (eq). */
export function passwordExpiresFilter(rc: RouteContext): ((u: UserRow) => boolean) | undefined {
  const raw = queryString(rc, 'password_expires_at');
  if (raw === undefined) return undefined;
  const m = /^(lt|lte|gt|gte|eq|neq):(.*)$/.exec(raw);
  let op = 'eq';
  let ts = raw;
  if (m) {
    op = m[1]!;
    ts = m[2]!;
  } else if (/^[a-z]+:/i.test(raw) && !/^\d/.test(raw)) {
    throw badRequest(`The given operator ${raw.split(':')[0]} is not valid. It must be one of the following: 'eq', 'neq', 'lt', 'lte', 'gt', or 'gte'.`);
  }
  const at = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$/.test(ts) ? Date.parse(/Z|[+-]\d{2}:?\d{2}$/.test(ts) ? ts : `${ts}Z`) : NaN;
  if (Number.isNaN(at)) throw badRequest('Timestamp not in expected format. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.');
  const cmp: Record<string, (a: number) => boolean> = {
    lt: (a) => a < at, lte: (a) => a <= at, gt: (a) => a > at, gte: (a) => a >= at, eq: (a) => a === at, neq: (a) => a !== at,
  };
  return (u) => u.password_expires_at !== null && cmp[op]!(Date.parse(u.password_expires_at));
}

/** Removes a user and everything that is theirs; their tokens are revoked. */
export async function deleteUserCascade(ctx: IdentityContext, userId: string): Promise<void> {
  const now = nowIso();
  await ctx.db.transaction().execute(async (tx) => {
    await tx.deleteFrom('identity_group_members').where('user_id', '=', userId).execute();
    await tx.deleteFrom('identity_assignments').where('actor_id', '=', userId)
      .where('type', 'in', ['UserProject', 'UserDomain', 'UserSystem']).execute();
    await tx.deleteFrom('identity_credentials').where('user_id', '=', userId).execute();
    await tx.deleteFrom('identity_app_credentials').where('user_id', '=', userId).execute();
    await tx.deleteFrom('identity_access_rules').where('user_id', '=', userId).execute();
    await tx.deleteFrom('identity_password_history').where('user_id', '=', userId).execute();
    await tx.updateTable('identity_trusts').set({ deleted_at: now })
      .where((eb) => eb.or([eb('trustor_user_id', '=', userId), eb('trustee_user_id', '=', userId)]))
      .where('deleted_at', 'is', null).execute();
    await tx.deleteFrom('identity_users').where('id', '=', userId).execute();
  });
  await ctx.revocations.revoke(ctx.db, { userId });
}

export function usersRoutes(ctx: IdentityContext): Route[] {
  const db = ctx.db;
  const load = (id: string) => mustGet(getUser(db, id), 'user', id);
  /** Policy target of a user route: the user and their domain. */
  const userTarget = async (rc: RouteContext) => {
    const u = await getUser(db, rc.params.user_id!);
    return u ? { domain_id: u.domain_id } : {};
  };
  /** A user's default project may not be a domain. */
  const checkDefaultProject = async (id: string | null | undefined) => {
    if (id && (await getDomain(db, id))) throw badRequest("User's default project ID cannot be a domain ID.");
  };
  const domainForCreate = (rc: RouteContext<{ user?: { domain_id?: string | null } } | undefined>): string => rc.body?.user?.domain_id ?? rc.cred?.domainId ?? 'default';
  const recordHistory = async (userId: string, hash: string | null, at: string | null) => {
    if (hash && at) await db.insertInto('identity_password_history').values({ user_id: userId, password_hash: hash, created_at: at }).execute();
  };
  /** Keystone's unique_last_password_count: the new password may not be any of the last N (the current one included). */
  const checkPasswordHistory = async (userId: string, password: string) => {
    const n = ctx.config.uniqueLastPasswordCount;
    if (n <= 0) return;
    const recent = await db.selectFrom('identity_password_history').select('password_hash').where('user_id', '=', userId)
      .orderBy('id', 'desc').limit(n).execute();
    for (const r of recent) {
      if (await verifyPassword(password, r.password_hash)) {
        throw badRequest(`The new password cannot be identical to a previous password. The total number which includes the new password must be unique is ${n}.`);
      }
    }
  };

  return [
    route({
      method: 'POST', path: '/v3/users', rule: 'identity:create_user', status: 201, schema: { body: UserBody },
      target: (rc) => ({ domain_id: domainForCreate(rc) }),
      async handler(rc) {
        const u = rc.body.user;
        const domainId = domainForCreate(rc);
        if (!(await getDomain(db, domainId))) throw missing('domain', domainId);
        await checkDefaultProject(u.default_project_id);
        const options = mergeOptions({}, u.options);
        const pw = u.password === undefined ? await passwordColumns(ctx, null, options) : await passwordColumns(ctx, u.password, options);
        const row: UserRow = {
          id: hexId(), name: u.name.trim(), domain_id: domainId, enabled: u.enabled === false ? 0 : 1,
          default_project_id: u.default_project_id ?? null, ...pw, options: JSON.stringify(options),
          extra: JSON.stringify(splitExtra(u, KNOWN)), last_active_at: null, created_at: nowIso(),
        };
        await conflictOnDuplicate(db.insertInto('identity_users').values(row).execute(), () => duplicate('user', 'name', row.name));
        await recordHistory(row.id, row.password_hash, row.password_created_at);
        return { user: renderUser(rc.req, row) };
      },
    }),
    {
      method: 'GET', path: '/v3/users', rule: 'identity:list_users',
      target: (rc) => (rc.cred?.domainId ? { domain_id: rc.cred.domainId } : {}),
      async handler(rc) {
        let q = db.selectFrom('identity_users').selectAll().orderBy('name');
        q = withListFilters(q, rc, ['name', 'domain_id', 'enabled']);
        // A domain-scoped caller sees the users of that domain only.
        if (rc.cred!.domainId) q = q.where('domain_id', '=', rc.cred!.domainId);
        const expires = passwordExpiresFilter(rc);
        let rows = await q.execute();
        if (expires) rows = rows.filter(expires);
        return renderList(rc.req, 'users', rows, renderUser);
      },
    },
    ...resourceRoutes({
      collection: '/v3/users', param: 'user_id', key: 'user', rules: { get: 'identity:get_user', delete: 'identity:delete_user' }, target: userTarget,
      load, render: renderUser, remove: (id) => deleteUserCascade(ctx, id),
      update: {
        rule: 'identity:update_user', schema: UserPatch,
        async apply(rc, current) {
          const id = current.id;
          const u = rc.body.user;
          assertSameIdAndDomain('user', u, current);
          await checkDefaultProject(u.default_project_id);
          const options = mergeOptions(parseJson<UserOptions>(current.options, {}), u.options);
          const enabled = patchFlag(u.enabled, current.enabled);
          let next: UserRow = {
            ...current, name: u.name === undefined ? current.name : u.name.trim(), enabled,
            default_project_id: u.default_project_id === undefined ? current.default_project_id : u.default_project_id,
            options: JSON.stringify(options), extra: mergeExtra(current.extra, u, KNOWN),
          };
          if (u.password !== undefined) next = { ...next, ...(await passwordColumns(ctx, u.password, options)) };
          // Re-enabling a user clears a lockout, as Keystone does.
          if (enabled === 1 && current.enabled === 0) next = { ...next, failed_auth_count: 0, failed_auth_at: null };
          // Exempting a user from expiry takes effect on the current password too.
          if (u.password === undefined && u.options && 'ignore_password_expiry' in u.options && current.password_created_at) {
            next.password_expires_at = passwordExpiry(ctx, options, new Date(current.password_created_at));
          }
          await conflictOnDuplicate(db.updateTable('identity_users').set(next).where('id', '=', id).execute(), () => duplicate('user', 'name', next.name));
          if (typeof u.password === 'string') await recordHistory(id, next.password_hash, next.password_created_at);
          if ((current.enabled === 1 && enabled === 0) || (u.password !== undefined && u.password !== null)) {
            await ctx.revocations.revoke(db, { userId: id });
          }
          return next;
        },
      },
    }),
    route({
      // Self-service: the original password is the credential, as in Keystone
      // (whose route is unenforced), so a user whose password expired can still
      // change it. A token, when sent, must be valid but may be anyone's.
      method: 'POST', path: '/v3/users/:user_id/password', rule: PUBLIC, status: 204, schema: { body: PasswordChange },
      async handler(rc) {
        const id = rc.params.user_id!;
        const { password, original_password: original } = rc.body.user;
        const fail = () => unauthorized('Error when changing user password: Invalid user / password');
        const user = await getUser(db, id);
        if (!user || !user.password_hash) {
          await verifyPassword(original, await decoyHash());
          throw fail();
        }
        const options = parseJson<UserOptions>(user.options, {});
        const { lockoutFailureAttempts, lockoutDuration } = ctx.config;
        const lockout = lockoutFailureAttempts > 0 && options.ignore_lockout_failure_attempts !== true;
        if (lockout && user.failed_auth_count >= lockoutFailureAttempts && user.failed_auth_at &&
            Date.now() - Date.parse(user.failed_auth_at) < lockoutDuration * 1000) {
          throw unauthorized(`The account is locked for user: ${id}.`);
        }
        if (!(await verifyPassword(original, user.password_hash))) {
          if (lockout) {
            await db.updateTable('identity_users')
              .set({ failed_auth_count: user.failed_auth_count + 1, failed_auth_at: nowIso() }).where('id', '=', id).execute();
          }
          throw fail();
        }
        if (user.enabled !== 1) throw unauthorized(`The account is disabled for user: ${id}.`);
        if (options.lock_password === true) {
          throw forbidden('You cannot change your password at this time due to password policy disallowing password changes. Please contact your administrator to reset your password.');
        }
        await checkPasswordHistory(id, password);
        const cols = await passwordColumns(ctx, password, options);
        await db.updateTable('identity_users').set(cols).where('id', '=', id).execute();
        await recordHistory(id, cols.password_hash, cols.password_created_at);
        await ctx.revocations.revoke(db, { userId: id });
      },
    }),
    {
      method: 'GET', path: '/v3/users/:user_id/projects', rule: 'identity:list_user_projects', target: userTarget,
      async handler(rc) {
        const user = await load(rc.params.user_id!);
        const ids = [...(await projectIdsForUser(db, user.id))];
        if (ids.length === 0) return { projects: [], links: listLinks(rc.req) };
        let q = db.selectFrom('identity_projects').selectAll().where('id', 'in', ids).orderBy('name');
        q = withListFilters(q, rc, ['name', 'domain_id', 'enabled']);
        const rows = await q.execute();
        const tags = await tagsOf(ctx, rows.map((r) => r.id));
        return { projects: rows.map((r) => renderProject(rc.req, r, tags.get(r.id)!)), links: listLinks(rc.req) };
      },
    },
  ];
}
