// /v3/roles, implied roles (/v3/roles/{prior}/implies/{implied}) and /v3/role_inferences.
// A global role has domain_id '' in the table and null on the wire; a
// domain-specific role only ever implies other roles and is never put in a token.
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { badRequest, conflict, forbidden, notFound } from '../../common/errors.ts';
import { hexId } from '../../common/ids.ts';
import { compareText } from '../../common/text.ts';
import { type Route, type RouteContext, route } from '../../http/service.ts';
import type { IdentityContext } from '../context.ts';
import { duplicate, mergeExtra, patchText, queryString, renderList, selfLink, splitExtra, v3Url, withQueryFilters } from '../http.ts';
import { conflictOnDuplicate } from '../../db/unique.ts';
import { getDomain, getRole, mustGet } from '../lookup.ts';
import { parseJson } from '../../common/json.ts';
import { revokeHoldersOf } from './assignments.ts';
import { renderRole, roleDomain, type RoleRow } from './role-view.ts';


/** Role names Keystone never lets be implied ([assignment] prohibited_implied_role). */
const PROHIBITED_IMPLIED = ['admin'];

const Name = Type.String({ minLength: 1, maxLength: 255, pattern: '[\\S]+' });
const Description = Type.Union([Type.String(), Type.Null()]);
const DomainId = Type.Union([Type.String({ minLength: 1, maxLength: 64, pattern: '^[a-zA-Z0-9-]+$' }), Type.Null()]);
const Options = Type.Object({ immutable: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])) }, { additionalProperties: false });
const RoleBody = Type.Object({
  role: Type.Object({
    name: Name, description: Type.Optional(Description), domain_id: Type.Optional(DomainId), options: Type.Optional(Options),
  }, { additionalProperties: true }),
}, { additionalProperties: false });
const RolePatch = Type.Object({
  role: Type.Object({
    id: Type.Optional(Type.Unknown()), // only to refuse a change of it
    name: Type.Optional(Name), description: Type.Optional(Description), domain_id: Type.Optional(DomainId), options: Type.Optional(Options),
  }, { additionalProperties: true, minProperties: 1 }),
}, { additionalProperties: false });
const RoleQuery = Type.Object({
  name: Type.Optional(Type.String()), domain_id: Type.Optional(Type.String()),
}, { additionalProperties: true });
const KNOWN = ['id', 'name', 'description', 'domain_id', 'options', 'links'];

const isImmutable = (r: RoleRow) => parseJson<Record<string, unknown>>(r.options, {}).immutable === true;

/** Merges option changes: null removes an option. */
function mergeOptions(current: string, change: Record<string, unknown> | undefined): string {
  const options = parseJson<Record<string, unknown>>(current, {});
  for (const [k, v] of Object.entries(change ?? {})) {
    if (v === null) delete options[k];
    else options[k] = v;
  }
  return JSON.stringify(options);
}

const inferenceRole = (req: FastifyRequest, r: { id: string; name: string }) => ({ id: r.id, name: r.name, links: selfLink(req, `/roles/${r.id}`) });
const noRule = (prior: string, implied: string) => notFound(`${prior} does not imply ${implied}.`);

export function rolesRoutes(ctx: IdentityContext): Route[] {
  const db = ctx.db;
  const load = (id: string) => mustGet(getRole(db, id), 'role', id);
  /** Policy target of a role: its domain for a domain-specific role; nothing when missing, so only a cloud reader learns it is missing. */
  const roleTarget = async (rc: RouteContext) => {
    const r = await getRole(db, rc.params.role_id!);
    return { domain_id: r ? roleDomain(r) : null };
  };
  /** Enforces the domain_role variant of a rule on a domain-specific role. */
  const enforceDomainRole = (rc: RouteContext, r: RoleRow, action: string) => {
    if (r.domain_id !== '') rc.enforce(`identity:${action}_domain_role`, { ...rc.params, domain_id: r.domain_id });
  };
  const ruleTarget = async (rc: RouteContext) => {
    await load(rc.params.prior_role_id!);
    if (rc.params.implied_role_id) await load(rc.params.implied_role_id);
    return {};
  };
  const getRule = async (prior: string, implied: string) => {
    const found = await db.selectFrom('identity_implied_roles').select('prior_role_id')
      .where('prior_role_id', '=', prior).where('implied_role_id', '=', implied).executeTakeFirst();
    if (!found) throw noRule(prior, implied);
  };
  const inference = async (rc: RouteContext) => {
    const prior = await load(rc.params.prior_role_id!);
    const implied = await load(rc.params.implied_role_id!);
    return {
      role_inference: { prior_role: inferenceRole(rc.req, prior), implies: inferenceRole(rc.req, implied) },
      links: selfLink(rc.req, `/roles/${prior.id}/implies/${implied.id}`),
    };
  };

  return [
    route({
      method: 'POST', path: '/v3/roles', rule: 'identity:create_role', status: 201, schema: { body: RoleBody },
      // A domain-specific role is checked against its domain.
      target: (rc) => ({ domain_id: rc.body.role.domain_id ?? null }),
      async handler(rc) {
        const r = rc.body.role;
        const domainId = r.domain_id ?? '';
        if (domainId !== '') {
          rc.enforce('identity:create_domain_role', { domain_id: domainId });
          await mustGet(getDomain(db, domainId), 'domain', domainId);
        }
        const row: RoleRow = {
          id: hexId(), name: r.name, domain_id: domainId, description: r.description ?? '',
          options: mergeOptions('{}', r.options), extra: JSON.stringify(splitExtra(r, KNOWN)),
        };
        await conflictOnDuplicate(db.insertInto('identity_roles').values(row).execute(), () => duplicate('role', 'name', r.name));
        return { role: renderRole(rc.req, row) };
      },
    }),
    route({
      method: 'GET', path: '/v3/roles', rule: 'identity:list_roles', schema: { querystring: RoleQuery },
      target: (rc) => ({ domain_id: queryString(rc, 'domain_id') ?? null }),
      async handler(rc) {
        const domainId = queryString(rc, 'domain_id');
        if (domainId) rc.enforce('identity:list_domain_roles', { domain_id: domainId });
        const q = withQueryFilters(db.selectFrom('identity_roles').selectAll().where('domain_id', '=', domainId ?? '').orderBy('name'), rc, ['name']);
        return renderList(rc.req, 'roles', await q.execute(), renderRole);
      },
    }),
    {
      method: 'GET', path: '/v3/roles/:role_id', rule: 'identity:get_role', target: roleTarget,
      async handler(rc) {
        const r = await load(rc.params.role_id!);
        enforceDomainRole(rc, r, 'get');
        return { role: renderRole(rc.req, r) };
      },
    },
    route({
      method: 'PATCH', path: '/v3/roles/:role_id', rule: 'identity:update_role', schema: { body: RolePatch }, target: roleTarget,
      async handler(rc) {
        const current = await load(rc.params.role_id!);
        enforceDomainRole(rc, current, 'update');
        const r = rc.body.role;
        if (isImmutable(current)) {
          // Only turning immutability off, alone, is allowed on an immutable role.
          const keys = Object.keys(r);
          const opts = (r.options ?? {}) as Record<string, unknown>;
          if (keys.length !== 1 || keys[0] !== 'options' || !('immutable' in opts) || (opts.immutable !== false && opts.immutable !== null)) {
            throw forbidden(`Unable to update immutable role resource: ${current.id}. Set resource option "immutable" to false first.`);
          }
        }
        if (r.id !== undefined && r.id !== current.id) throw badRequest('Cannot change ID');
        if (r.domain_id !== undefined && (r.domain_id ?? '') !== current.domain_id) throw badRequest('Update of `domain_id` is not allowed.');
        const next: RoleRow = {
          ...current, name: r.name ?? current.name, description: patchText(r.description, current.description),
          options: mergeOptions(current.options, r.options), extra: mergeExtra(current.extra, r, KNOWN),
        };
        await conflictOnDuplicate(db.updateTable('identity_roles').set(next).where('id', '=', current.id).execute(), () => duplicate('role', 'name', next.name));
        return { role: renderRole(rc.req, next) };
      },
    }),
    {
      method: 'DELETE', path: '/v3/roles/:role_id', rule: 'identity:delete_role', status: 204, target: roleTarget,
      async handler(rc) {
        const r = await load(rc.params.role_id!);
        enforceDomainRole(rc, r, 'delete');
        if (isImmutable(r)) throw forbidden(`Unable to delete immutable role resource: ${r.id}. Set resource option "immutable" to false first.`);
        // Whoever holds the role (or gets roles through it) loses those tokens.
        const revokeHolders = await revokeHoldersOf(ctx, r.id);
        await db.transaction().execute(async (tx) => {
          await tx.deleteFrom('identity_assignments').where('role_id', '=', r.id).execute();
          await tx.deleteFrom('identity_implied_roles')
            .where((eb) => eb.or([eb('prior_role_id', '=', r.id), eb('implied_role_id', '=', r.id)])).execute();
          await tx.deleteFrom('identity_roles').where('id', '=', r.id).execute();
        });
        await revokeHolders();
      },
    },

    // Implied roles. HEAD comes before GET so that it answers 204, as Keystone does.
    {
      method: 'HEAD', path: '/v3/roles/:prior_role_id/implies/:implied_role_id', rule: 'identity:check_implied_role', status: 204,
      target: ruleTarget,
      async handler(rc) {
        rc.enforce('identity:get_implied_role', rc.params);
        await getRule(rc.params.prior_role_id!, rc.params.implied_role_id!);
      },
    },
    {
      method: 'GET', path: '/v3/roles/:prior_role_id/implies/:implied_role_id', rule: 'identity:get_implied_role', target: ruleTarget,
      async handler(rc) {
        await getRule(rc.params.prior_role_id!, rc.params.implied_role_id!);
        return inference(rc);
      },
    },
    {
      method: 'PUT', path: '/v3/roles/:prior_role_id/implies/:implied_role_id', rule: 'identity:create_implied_role', status: 201,
      target: ruleTarget,
      async handler(rc) {
        const prior = await load(rc.params.prior_role_id!);
        const implied = await load(rc.params.implied_role_id!);
        if (PROHIBITED_IMPLIED.includes(implied.name)) throw forbidden(`${implied.id} cannot be an implied roles.`);
        if (prior.domain_id === '' && implied.domain_id !== '') throw forbidden('Global role cannot imply a domain-specific role');
        if (await reaches(ctx, implied.id, prior.id)) {
          throw forbidden(`${implied.id} cannot be an implied role of ${prior.id}: the inference would form a cycle.`);
        }
        await conflictOnDuplicate(
          db.insertInto('identity_implied_roles').values({ prior_role_id: prior.id, implied_role_id: implied.id }).execute(),
          () => conflict(`Conflict occurred attempting to store implied_role - Duplicate entry found with prior_role_id ${prior.id} and implied_role_id ${implied.id}.`),
        );
        return inference(rc);
      },
    },
    {
      method: 'DELETE', path: '/v3/roles/:prior_role_id/implies/:implied_role_id', rule: 'identity:delete_implied_role', status: 204,
      target: ruleTarget,
      async handler(rc) {
        const prior = rc.params.prior_role_id!;
        const implied = rc.params.implied_role_id!;
        await getRule(prior, implied);
        const revokeHolders = await revokeHoldersOf(ctx, prior);
        await db.deleteFrom('identity_implied_roles').where('prior_role_id', '=', prior).where('implied_role_id', '=', implied).execute();
        await revokeHolders();
      },
    },
    {
      method: 'GET', path: '/v3/roles/:prior_role_id/implies', rule: 'identity:list_implied_roles', target: ruleTarget,
      async handler(rc) {
        const prior = await load(rc.params.prior_role_id!);
        const implied = await db.selectFrom('identity_implied_roles')
          .innerJoin('identity_roles', 'identity_roles.id', 'identity_implied_roles.implied_role_id')
          .select(['identity_roles.id', 'identity_roles.name'])
          .where('identity_implied_roles.prior_role_id', '=', prior.id).orderBy('identity_roles.name').execute();
        return {
          role_inference: { prior_role: inferenceRole(rc.req, prior), implies: implied.map((r) => inferenceRole(rc.req, r)) },
          links: selfLink(rc.req, `/roles/${prior.id}/implies`),
        };
      },
    },
    {
      method: 'GET', path: '/v3/role_inferences', rule: 'identity:list_role_inference_rules',
      async handler(rc) {
        const rules = await db.selectFrom('identity_implied_roles').selectAll().execute();
        const roles = new Map((await db.selectFrom('identity_roles').select(['id', 'name']).execute()).map((r) => [r.id, r]));
        const byPrior = new Map<string, Array<{ id: string; name: string }>>();
        for (const rule of rules) {
          const implied = roles.get(rule.implied_role_id);
          if (!implied || !roles.has(rule.prior_role_id)) continue;
          const list = byPrior.get(rule.prior_role_id) ?? [];
          list.push(implied);
          byPrior.set(rule.prior_role_id, list);
        }
        const role_inferences = [...byPrior].map(([prior, implied]) => ({
          prior_role: inferenceRole(rc.req, roles.get(prior)!),
          implies: implied.sort((a, b) => compareText(a.name, b.name)).map((r) => inferenceRole(rc.req, r)),
        }));
        return { role_inferences, links: { self: v3Url(rc.req, '/role_inferences'), previous: null, next: null } };
      },
    },
  ];
}

/** True when `to` is `from` or is implied (transitively) by it. */
async function reaches(ctx: IdentityContext, from: string, to: string): Promise<boolean> {
  const seen = new Set([from]);
  let frontier = [from];
  while (frontier.length > 0) {
    if (frontier.includes(to)) return true;
    const rows = await ctx.db.selectFrom('identity_implied_roles').select('implied_role_id').where('prior_role_id', 'in', frontier).execute();
    frontier = rows.map((r) => r.implied_role_id).filter((id) => !seen.has(id));
    for (const id of frontier) seen.add(id);
  }
  return false;
}

