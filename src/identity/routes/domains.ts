// /v3/domains
import { Type } from 'typebox';
import { badRequest, forbidden } from '../../common/errors.ts';
import { hexId, nowIso } from '../../common/ids.ts';
import { type Route, route } from '../../http/service.ts';
import type { IdentityContext } from '../context.ts';
import { duplicate, extraOf, mergeExtra, patchFlag, patchText, selfLink, splitExtra } from '../http.ts';
import { resourceRoutes } from '../resource.ts';
import { conflictOnDuplicate } from '../../db/unique.ts';
import { getDomain, mustGet } from '../lookup.ts';
import type { FastifyRequest } from 'fastify';

type DomainRow = NonNullable<Awaited<ReturnType<typeof getDomain>>>;

const Name = Type.String({ minLength: 1, maxLength: 64, pattern: '\\S' });
const DomainBody = Type.Object({
  domain: Type.Object({
    name: Name,
    description: Type.Optional(Type.Union([Type.String(), Type.Null()])),
    enabled: Type.Optional(Type.Boolean()),
    explicit_domain_id: Type.Optional(Type.String({ pattern: '^[a-zA-Z0-9-]{1,64}$' })),
    tags: Type.Optional(Type.Array(Type.String())),
    options: Type.Optional(Type.Object({})),
  }, { additionalProperties: true }),
});
const DomainPatch = Type.Object({
  domain: Type.Object({
    // Only to refuse a change of it.
    id: Type.Optional(Type.Unknown()),
    name: Type.Optional(Name),
    description: Type.Optional(Type.Union([Type.String(), Type.Null()])),
    enabled: Type.Optional(Type.Boolean()),
    tags: Type.Optional(Type.Array(Type.String())),
    options: Type.Optional(Type.Object({})),
  }, { additionalProperties: true }),
});
const KNOWN = ['id', 'name', 'description', 'enabled', 'explicit_domain_id', 'links', 'options'];

export function renderDomain(req: FastifyRequest, d: DomainRow) {
  const extra = extraOf(d.extra);
  return { ...extra, id: d.id, name: d.name, description: d.description, enabled: d.enabled === 1, tags: extra.tags ?? [], options: {}, links: selfLink(req, `/domains/${d.id}`) };
}

/** Deletes a (disabled) domain with everything that lives in it. */
export async function deleteDomainCascade(ctx: IdentityContext, id: string): Promise<void> {
  await ctx.db.transaction().execute(async (tx) => {
    const projectIds = (await tx.selectFrom('identity_projects').select('id').where('domain_id', '=', id).execute()).map((r) => r.id);
    const userIds = (await tx.selectFrom('identity_users').select('id').where('domain_id', '=', id).execute()).map((r) => r.id);
    const groupIds = (await tx.selectFrom('identity_groups').select('id').where('domain_id', '=', id).execute()).map((r) => r.id);
    const roleIds = (await tx.selectFrom('identity_roles').select('id').where('domain_id', '=', id).execute()).map((r) => r.id);
    const targets = [id, ...projectIds];
    const actors = [...userIds, ...groupIds];
    await tx.deleteFrom('identity_assignments').where((eb) => eb.or([
      eb('target_id', 'in', targets),
      ...(actors.length ? [eb('actor_id', 'in', actors)] : []),
      ...(roleIds.length ? [eb('role_id', 'in', roleIds)] : []),
    ])).execute();
    if (projectIds.length) await tx.deleteFrom('identity_project_tags').where('project_id', 'in', projectIds).execute();
    if (userIds.length) {
      await tx.deleteFrom('identity_group_members').where('user_id', 'in', userIds).execute();
      await tx.deleteFrom('identity_credentials').where('user_id', 'in', userIds).execute();
      await tx.deleteFrom('identity_app_credentials').where('user_id', 'in', userIds).execute();
      await tx.deleteFrom('identity_password_history').where('user_id', 'in', userIds).execute();
    }
    if (groupIds.length) await tx.deleteFrom('identity_group_members').where('group_id', 'in', groupIds).execute();
    if (roleIds.length) {
      await tx.deleteFrom('identity_implied_roles').where((eb) => eb.or([eb('prior_role_id', 'in', roleIds), eb('implied_role_id', 'in', roleIds)])).execute();
    }
    await tx.deleteFrom('identity_limits').where((eb) => eb.or([eb('domain_id', '=', id), ...(projectIds.length ? [eb('project_id', 'in', projectIds)] : [])])).execute();
    await tx.deleteFrom('identity_projects').where('domain_id', '=', id).execute();
    await tx.deleteFrom('identity_users').where('domain_id', '=', id).execute();
    await tx.deleteFrom('identity_groups').where('domain_id', '=', id).execute();
    await tx.deleteFrom('identity_roles').where('domain_id', '=', id).execute();
    await tx.deleteFrom('identity_domain_configs').where('domain_id', '=', id).execute();
    await tx.deleteFrom('identity_domains').where('id', '=', id).execute();
  });
}

export function domainRoutes(ctx: IdentityContext): Route[] {
  const load = (id: string) => mustGet(getDomain(ctx.db, id), 'domain', id);
  return [
    route({
      method: 'POST', path: '/v3/domains', rule: 'identity:create_domain', status: 201, schema: { body: DomainBody },
      async handler(rc) {
        const d = rc.body.domain;
        const row: DomainRow = {
          id: d.explicit_domain_id ?? hexId(), name: d.name, description: d.description ?? '',
          enabled: d.enabled === false ? 0 : 1, extra: JSON.stringify(splitExtra(d, KNOWN)), created_at: nowIso(),
        };
        await conflictOnDuplicate(ctx.db.insertInto('identity_domains').values(row).execute(), () => duplicate('domain', 'name', d.name));
        return { domain: renderDomain(rc.req, row) };
      },
    }),
    ...resourceRoutes({
      collection: '/v3/domains', param: 'domain_id', key: 'domain', rules: { get: 'identity:get_domain', delete: 'identity:delete_domain' },
      load, render: renderDomain,
      async remove(id, d) {
        if (d.enabled) throw forbidden('Cannot delete a domain that is enabled, please disable it first.');
        await deleteDomainCascade(ctx, id);
        await ctx.revocations.revoke(ctx.db, { domainId: id });
      },
      list: {
        rule: 'identity:list_domains', key: 'domains', filters: ['name', 'enabled'],
        query(rc) {
          const q = ctx.db.selectFrom('identity_domains').selectAll().orderBy('name');
          const c = rc.cred!;
          // A domain reader who is not a cloud reader sees their own domain only (an id is never empty).
          return c.roles.has('admin') || (c.system && c.roles.has('reader')) ? q : q.where('id', '=', c.domainId ?? '');
        },
      },
      update: {
        rule: 'identity:update_domain', schema: DomainPatch,
        async apply(rc, current) {
          const id = current.id;
          const d = rc.body.domain;
          if (d.id !== undefined && d.id !== id) throw badRequest('The domain id cannot be changed.');
          const next: DomainRow = {
            ...current, name: d.name ?? current.name, description: patchText(d.description, current.description),
            enabled: patchFlag(d.enabled, current.enabled), extra: mergeExtra(current.extra, d, KNOWN),
          };
          await conflictOnDuplicate(ctx.db.updateTable('identity_domains').set(next).where('id', '=', id).execute(), () => duplicate('domain', 'name', next.name));
          if (current.enabled && !next.enabled) await ctx.revocations.revoke(ctx.db, { domainId: id });
          return next;
        },
      },
    }),
  ];
}
