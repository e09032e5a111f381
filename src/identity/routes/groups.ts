// /v3/groups: groups and their members; GET /v3/users/{id}/groups.
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { notFound } from '../../common/errors.ts';
import { hexId, nowIso } from '../../common/ids.ts';
import { route, type Route, type RouteContext } from '../../http/service.ts';
import { resourceRoutes } from '../resource.ts';
import type { IdentityContext } from '../context.ts';
import { assertSameIdAndDomain, duplicate, extraOf, listLinks, mergeExtra, patchText, renderList, selfLink, splitExtra, withListFilters } from '../http.ts';
import { conflictOnDuplicate, ignoreDuplicate } from '../../db/unique.ts';
import { getDomain, getGroup, getUser, missing, mustGet } from '../lookup.ts';
import { passwordExpiresFilter, renderUser } from './users.ts';

type GroupRow = NonNullable<Awaited<ReturnType<typeof getGroup>>>;

const Name = Type.String({ minLength: 1, maxLength: 255, pattern: '\\S' });
const Description = Type.Optional(Type.Union([Type.String(), Type.Null()]));
const GroupBody = Type.Object({
  group: Type.Object({ name: Name, domain_id: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })), description: Description }, { additionalProperties: true }),
});
const GroupPatch = Type.Object({
  group: Type.Object({ name: Type.Optional(Name), domain_id: Type.Optional(Type.String()), description: Description }, { additionalProperties: true, minProperties: 1 }),
});
const KNOWN = ['id', 'name', 'domain_id', 'description', 'links'];

export function renderGroup(req: FastifyRequest, g: GroupRow) {
  const extra = extraOf(g.extra);
  return { ...extra, id: g.id, name: g.name, domain_id: g.domain_id, description: g.description, links: selfLink(req, `/groups/${g.id}`) };
}

export function groupsRoutes(ctx: IdentityContext): Route[] {
  const db = ctx.db;
  const load = (id: string) => mustGet(getGroup(db, id), 'group', id);
  const loadUser = (id: string) => mustGet(getUser(db, id), 'user', id);
  const groupTarget = async (rc: RouteContext) => {
    const g = await getGroup(db, rc.params.group_id!);
    return g ? { domain_id: g.domain_id } : {};
  };
  const domainForCreate = (rc: RouteContext<{ group?: { domain_id?: string | null } } | undefined>): string => rc.body?.group?.domain_id ?? rc.cred?.domainId ?? 'default';
  /** Membership routes name both a group and a user: a domain manager must manage both domains. */
  const loadPair = async (rc: RouteContext, rule: string) => {
    const group = await load(rc.params.group_id!);
    const user = await loadUser(rc.params.user_id!);
    rc.enforce(rule, { ...rc.params, domain_id: user.domain_id });
    return { group, user };
  };
  const isMember = async (groupId: string, userId: string) =>
    !!(await db.selectFrom('identity_group_members').select('user_id').where('group_id', '=', groupId).where('user_id', '=', userId).executeTakeFirst());

  return [
    route({
      method: 'POST', path: '/v3/groups', rule: 'identity:create_group', status: 201, schema: { body: GroupBody },
      target: (rc) => ({ domain_id: domainForCreate(rc) }),
      async handler(rc) {
        const g = rc.body.group;
        const domainId = domainForCreate(rc);
        if (!(await getDomain(db, domainId))) throw missing('domain', domainId);
        const row: GroupRow = {
          id: hexId(), name: g.name.trim(), domain_id: domainId, description: g.description ?? '',
          extra: JSON.stringify(splitExtra(g, KNOWN)), created_at: nowIso(),
        };
        await conflictOnDuplicate(db.insertInto('identity_groups').values(row).execute(), () => duplicate('group', 'name', row.name));
        return { group: renderGroup(rc.req, row) };
      },
    }),
    ...resourceRoutes({
      collection: '/v3/groups', param: 'group_id', key: 'group', rules: { get: 'identity:get_group', delete: 'identity:delete_group' }, target: groupTarget,
      load, render: renderGroup,
      async remove(_id, g) {
        const members = (await db.selectFrom('identity_group_members').select('user_id').where('group_id', '=', g.id).execute()).map((m) => m.user_id);
        const hadRoles = !!(await db.selectFrom('identity_assignments').select('role_id').where('actor_id', '=', g.id).executeTakeFirst());
        await db.transaction().execute(async (tx) => {
          await tx.deleteFrom('identity_group_members').where('group_id', '=', g.id).execute();
          await tx.deleteFrom('identity_assignments').where('actor_id', '=', g.id)
            .where('type', 'in', ['GroupProject', 'GroupDomain', 'GroupSystem']).execute();
          await tx.deleteFrom('identity_groups').where('id', '=', g.id).execute();
        });
        // Members lose the group's roles: their tokens carrying them stop working.
        if (hadRoles) for (const userId of members) await ctx.revocations.revoke(db, { userId });
      },
      list: {
        rule: 'identity:list_groups', key: 'groups', filters: ['name', 'domain_id'],
        target: (rc) => (rc.cred?.domainId ? { domain_id: rc.cred.domainId } : {}),
        query(rc) {
          const q = db.selectFrom('identity_groups').selectAll().orderBy('name');
          // A domain-scoped caller sees the groups of that domain only.
          return rc.cred!.domainId ? q.where('domain_id', '=', rc.cred!.domainId) : q;
        },
      },
      update: {
        rule: 'identity:update_group', schema: GroupPatch,
        async apply(rc, current) {
          const g = rc.body.group;
          assertSameIdAndDomain('group', g, current);
          const next: GroupRow = {
            ...current, name: g.name === undefined ? current.name : g.name.trim(),
            description: patchText(g.description, current.description), extra: mergeExtra(current.extra, g, KNOWN),
          };
          await conflictOnDuplicate(db.updateTable('identity_groups').set(next).where('id', '=', current.id).execute(), () => duplicate('group', 'name', next.name));
          return next;
        },
      },
    }),
    {
      method: 'GET', path: '/v3/groups/:group_id/users', rule: 'identity:list_users_in_group', target: groupTarget,
      async handler(rc) {
        const g = await load(rc.params.group_id!);
        let q = db.selectFrom('identity_users').selectAll()
          .where('id', 'in', db.selectFrom('identity_group_members').select('user_id').where('group_id', '=', g.id))
          .orderBy('name');
        q = withListFilters(q, rc, ['name', 'domain_id', 'enabled']);
        const expires = passwordExpiresFilter(rc);
        let rows = await q.execute();
        if (expires) rows = rows.filter(expires);
        return renderList(rc.req, 'users', rows, renderUser);
      },
    },
    {
      method: 'PUT', path: '/v3/groups/:group_id/users/:user_id', rule: 'identity:add_user_to_group', target: groupTarget, status: 204,
      async handler(rc) {
        const { group, user } = await loadPair(rc, 'identity:add_user_to_group');
        if (await isMember(group.id, user.id)) return;
        await ignoreDuplicate(db.insertInto('identity_group_members').values({ group_id: group.id, user_id: user.id }).execute());
      },
    },
    {
      // GET, and HEAD: every GET route answers HEAD too (src/http/server.ts).
      method: 'GET', path: '/v3/groups/:group_id/users/:user_id', rule: 'identity:check_user_in_group', target: groupTarget, status: 204,
      async handler(rc) {
        const { group, user } = await loadPair(rc, 'identity:check_user_in_group');
        if (!(await isMember(group.id, user.id))) throw notFound(`User '${user.id}' not found in group ${group.id}.`);
      },
    },
    {
      method: 'DELETE', path: '/v3/groups/:group_id/users/:user_id', rule: 'identity:remove_user_from_group', target: groupTarget, status: 204,
      async handler(rc) {
        const { group, user } = await loadPair(rc, 'identity:remove_user_from_group');
        const r = await db.deleteFrom('identity_group_members').where('group_id', '=', group.id).where('user_id', '=', user.id).executeTakeFirst();
        if (Number(r.numDeletedRows) === 0) throw notFound(`User '${user.id}' not found in group ${group.id}.`);
        // The user's tokens may carry roles held through the group.
        await ctx.revocations.revoke(db, { userId: user.id });
      },
    },
    {
      method: 'GET', path: '/v3/users/:user_id/groups', rule: 'identity:list_groups_for_user',
      target: async (rc) => {
        const u = await getUser(db, rc.params.user_id!);
        return u ? { domain_id: u.domain_id } : {};
      },
      async handler(rc) {
        const user = await loadUser(rc.params.user_id!);
        let q = db.selectFrom('identity_groups').selectAll()
          .where('id', 'in', db.selectFrom('identity_group_members').select('group_id').where('user_id', '=', user.id))
          .orderBy('name');
        q = withListFilters(q, rc, ['name', 'domain_id']);
        const groups = (await q.execute()).map((g) => ({ ...renderGroup(rc.req, g), membership_expires_at: null }));
        return { groups, links: listLinks(rc.req) };
      },
    },
  ];
}
