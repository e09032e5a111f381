// /v3/users/{user_id}/application_credentials and /v3/users/{user_id}/access_rules.
// An application credential is a secret bound to one user and the project of
// the token it was created with, carrying a subset of that token's roles.
// Authentication with it is in tokens/issue.ts (authAppCred), which reads the
// rows written here: secret_hash (hashSecret), roles as [{id}], expires_at.
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { badRequest, forbidden } from '../../common/errors.ts';
import { hexId, nowIso } from '../../common/ids.ts';
import { type Route, type RouteContext, route } from '../../http/service.ts';
import { assignedRoleIds, namedGlobalRoles, withImplied } from '../assignments.ts';
import type { IdentityContext } from '../context.ts';
import { tokenOf } from '../credentials.ts';
import { duplicate, listLinks, selfLink, withQueryFilters } from '../http.ts';
import { conflictOnDuplicate } from '../../db/unique.ts';
import { missing } from '../lookup.ts';
import { parseJson } from '../../common/json.ts';
import { newSecret } from '../passwords.ts';
import { hashSecret } from '../tokens/issue.ts';
import { parseExpiresAt, renderRoleRef, resolveRoleRefs, RoleRef } from './trusts.ts';

type Db = IdentityContext['db'];
type AppCredRow = NonNullable<Awaited<ReturnType<typeof getAppCred>>>;
type AccessRuleRow = NonNullable<Awaited<ReturnType<typeof getAccessRule>>>;

const getAppCred = (db: Db, id: string) =>
  db.selectFrom('identity_app_credentials').selectAll().where('id', '=', id).executeTakeFirst();
const getAccessRule = (db: Db, id: string) =>
  db.selectFrom('identity_access_rules').selectAll().where('id', '=', id).executeTakeFirst();

const IdString = Type.String({ minLength: 1, maxLength: 64, pattern: '^[a-zA-Z0-9-]+$' });
const AccessRuleBody = Type.Object({
  id: Type.Optional(IdString),
  path: Type.String({ minLength: 0, maxLength: 225, pattern: '^/' }),
  service: IdString,
  method: Type.Union(['DELETE', 'GET', 'HEAD', 'PATCH', 'POST', 'PUT'].map((m) => Type.Literal(m))),
}, { additionalProperties: false });
const AppCredBody = Type.Object({
  application_credential: Type.Object({
    id: Type.Optional(Type.String()),
    name: Type.String({ minLength: 1, maxLength: 255, pattern: '[\\S]+' }),
    description: Type.Optional(Type.Union([Type.String({ maxLength: 255 }), Type.Null()])),
    secret: Type.Optional(Type.Union([Type.String(), Type.Null()])),
    expires_at: Type.Optional(Type.Union([Type.String(), Type.Null()])),
    project_id: Type.Optional(Type.String()),
    roles: Type.Optional(Type.Union([Type.Array(RoleRef), Type.Null()])),
    unrestricted: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
    access_rules: Type.Optional(Type.Union([Type.Array(AccessRuleBody), Type.Null()])),
    system: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  }, { additionalProperties: false }),
}, { additionalProperties: false });

const renderRule = (r: AccessRuleRow) => ({ id: r.id, service: r.service, path: r.path, method: r.method });

async function renderAppCred(db: Db, req: FastifyRequest, a: AppCredRow, secret?: string) {
  const roleIds = parseJson<Array<{ id: string }>>(a.roles, []).map((r) => r.id);
  const roles = roleIds.length ? await db.selectFrom('identity_roles').selectAll().where('id', 'in', roleIds).execute() : [];
  const ruleIds = parseJson<string[]>(a.access_rules, []);
  const rules = ruleIds.length ? await db.selectFrom('identity_access_rules').selectAll().where('id', 'in', ruleIds).execute() : [];
  return {
    id: a.id,
    name: a.name,
    description: a.description || null,
    // Keystone echoes application credential expiries without a zone designator.
    expires_at: a.expires_at ? a.expires_at.replace(/Z$/, '') : null,
    project_id: a.project_id,
    roles: roleIds.map((id) => roles.find((r) => r.id === id)).filter((r) => !!r).map((r) => renderRoleRef(req, r, false)),
    unrestricted: a.unrestricted === 1,
    access_rules: ruleIds.map((id) => rules.find((r) => r.id === id)).filter((r) => !!r).map(renderRule),
    ...(secret !== undefined ? { secret } : {}),
    links: selfLink(req, `/users/${a.user_id}/application_credentials/${a.id}`),
  };
}

/**
 * Keystone keeps trust (and OAuth) delegated tokens away from application
 * credentials altogether: a credential made from one would outlive the delegation.
 */
function refuseTrust(rc: RouteContext): void {
  if (tokenOf(rc.cred!).trust) throw forbidden('Cannot manage application credentials with a token issued via delegation.');
}

/** A restricted application credential may not make or remove others. */
function refuseRestricted(rc: RouteContext): void {
  if (tokenOf(rc.cred!).appCred?.restricted) {
    throw forbidden("Using method 'application_credential' is not allowed for managing additional application credentials.");
  }
}

/** The access rules of a new credential: an existing rule by id or by identical content, else a new rule. */
async function accessRuleIds(tx: Db, userId: string, rules: Array<{ id?: string; service: string; path: string; method: string }>): Promise<string[]> {
  const ids: string[] = [];
  for (const r of rules) {
    let found: AccessRuleRow | undefined;
    if (r.id) found = await getAccessRule(tx, r.id);
    if (found && found.user_id !== userId) throw badRequest(`Invalid application credential: access rule ${r.id} belongs to another user.`);
    found ??= await tx.selectFrom('identity_access_rules').selectAll().where('user_id', '=', userId)
      .where('service', '=', r.service).where('path', '=', r.path).where('method', '=', r.method).executeTakeFirst();
    if (!found) {
      found = { id: r.id ?? hexId(), user_id: userId, service: r.service, path: r.path, method: r.method };
      await tx.insertInto('identity_access_rules').values(found).execute();
    }
    if (!ids.includes(found.id)) ids.push(found.id);
  }
  return ids;
}

export function appcredsRoutes(ctx: IdentityContext): Route[] {
  const db = ctx.db;
  /** The policy target of one credential is its real owner, whatever user the path names. */
  const appCredTarget = async (rc: RouteContext) => {
    const a = await getAppCred(db, rc.params.application_credential_id!);
    return { user_id: a?.user_id ?? rc.params.user_id };
  };
  const loadAppCred = async (rc: RouteContext): Promise<AppCredRow> => {
    const id = rc.params.application_credential_id!;
    const a = await getAppCred(db, id);
    if (!a || a.user_id !== rc.params.user_id) throw missing('Application Credential', id);
    return a;
  };
  const loadRule = async (rc: RouteContext): Promise<AccessRuleRow> => {
    const id = rc.params.access_rule_id!;
    const r = await getAccessRule(db, id);
    if (!r || r.user_id !== rc.params.user_id) throw missing('Access Rule', id);
    return r;
  };

  return [
    route({
      method: 'POST', path: '/v3/users/:user_id/application_credentials', rule: 'identity:create_application_credential',
      status: 201, schema: { body: AppCredBody },
      async handler(rc) {
        refuseTrust(rc);
        refuseRestricted(rc);
        const cred = rc.cred!;
        const userId = rc.params.user_id!;
        if (cred.userId !== userId) throw forbidden('Cannot create an application credential for another user.');
        const projectId = cred.projectId;
        if (!projectId) throw badRequest('Invalid application credential: an application credential must be created with a project-scoped token.');
        const body = rc.body.application_credential;

        // Keystone computes a token's roles when it validates it, so "the token's roles" are the
        // user's current roles on the project (for an application credential token, those of its
        // roles the user still holds). Roles asked for, with what they imply, must be among them.
        const held = await withImplied(db, await assignedRoleIds(db, userId, { projectId }));
        const tokenRoles = tokenOf(cred).appCred
          ? cred.roleIds.filter((id) => held.has(id))
          : (await namedGlobalRoles(db, held)).map((r) => r.id);
        let roleIds: string[];
        if (body.roles && body.roles.length > 0) {
          const asked = await resolveRoleRefs(db, body.roles);
          roleIds = [...(await withImplied(db, asked.map((r) => r.id)))];
          if (roleIds.some((id) => !tokenRoles.includes(id))) {
            throw badRequest('Invalid application credential: Cannot create an application credential with unassigned role');
          }
        } else {
          roleIds = tokenRoles;
        }
        if (roleIds.length === 0) throw badRequest(`Invalid application credential: user ${userId} holds no role on project ${projectId}.`);
        const expiresAt = parseExpiresAt(body.expires_at);
        const secret = body.secret || newSecret();
        const clash = await db.selectFrom('identity_app_credentials').select('id').where('user_id', '=', userId).where('name', '=', body.name).executeTakeFirst();
        if (clash) throw duplicate('application_credential', 'name', body.name);

        const row = await conflictOnDuplicate(db.transaction().execute(async (tx) => {
          const ruleIds = await accessRuleIds(tx as unknown as Db, userId, body.access_rules ?? []);
          const r: AppCredRow = {
            id: hexId(), name: body.name, user_id: userId, project_id: projectId, description: body.description ?? '',
            secret_hash: hashSecret(secret), expires_at: expiresAt, unrestricted: body.unrestricted ? 1 : 0,
            roles: JSON.stringify(roleIds.map((id) => ({ id }))), access_rules: JSON.stringify(ruleIds), created_at: nowIso(),
          };
          await tx.insertInto('identity_app_credentials').values(r).execute();
          return r;
        }), () => duplicate('application_credential', 'name', body.name));
        return { application_credential: await renderAppCred(db, rc.req, row, secret) };
      },
    }),
    {
      method: 'GET', path: '/v3/users/:user_id/application_credentials', rule: 'identity:list_application_credentials',
      async handler(rc) {
        refuseTrust(rc);
        const q = db.selectFrom('identity_app_credentials').selectAll().where('user_id', '=', rc.params.user_id!).orderBy('created_at').orderBy('id');
        const rows = await withQueryFilters(q, rc, ['name']).execute();
        const out = [];
        for (const a of rows) out.push(await renderAppCred(db, rc.req, a));
        return { application_credentials: out, links: listLinks(rc.req) };
      },
    },
    {
      method: 'GET', path: '/v3/users/:user_id/application_credentials/:application_credential_id',
      rule: 'identity:get_application_credential', target: appCredTarget,
      async handler(rc) {
        refuseTrust(rc);
        return { application_credential: await renderAppCred(db, rc.req, await loadAppCred(rc)) };
      },
    },
    {
      method: 'DELETE', path: '/v3/users/:user_id/application_credentials/:application_credential_id',
      rule: 'identity:delete_application_credential', status: 204, target: appCredTarget,
      async handler(rc) {
        refuseTrust(rc);
        refuseRestricted(rc);
        const a = await loadAppCred(rc);
        await db.deleteFrom('identity_app_credentials').where('id', '=', a.id).execute();
        await ctx.revocations.revoke(db, { appCredId: a.id });
      },
    },
    {
      method: 'GET', path: '/v3/users/:user_id/access_rules', rule: 'identity:list_access_rules',
      async handler(rc) {
        refuseTrust(rc);
        const q = db.selectFrom('identity_access_rules').selectAll().where('user_id', '=', rc.params.user_id!).orderBy('service').orderBy('path').orderBy('method');
        const rows = await withQueryFilters(q, rc, ['service', 'path', 'method']).execute();
        return {
          access_rules: rows.map((r) => ({ ...renderRule(r), links: selfLink(rc.req, `/users/${r.user_id}/access_rules/${r.id}`) })),
          links: listLinks(rc.req),
        };
      },
    },
    {
      method: 'GET', path: '/v3/users/:user_id/access_rules/:access_rule_id', rule: 'identity:get_access_rule',
      async handler(rc) {
        refuseTrust(rc);
        const r = await loadRule(rc);
        return { access_rule: { ...renderRule(r), links: selfLink(rc.req, `/users/${r.user_id}/access_rules/${r.id}`) } };
      },
    },
    {
      method: 'DELETE', path: '/v3/users/:user_id/access_rules/:access_rule_id', rule: 'identity:delete_access_rule', status: 204,
      async handler(rc) {
        refuseTrust(rc);
        const r = await loadRule(rc);
        const owners = await db.selectFrom('identity_app_credentials').select('access_rules').where('user_id', '=', r.user_id).execute();
        if (owners.some((a) => parseJson<string[]>(a.access_rules, []).includes(r.id))) throw forbidden('May not delete access rule in use.');
        await db.deleteFrom('identity_access_rules').where('id', '=', r.id).execute();
      },
    },
  ];
}
