// RBAC policies (rbac-policies): a network's owner shares it with one project
// (access_as_shared) or, as an admin, with every project ('*') or as an
// external network (access_as_external). The target project then sees the
// network and its subnets and may put ports on it; a policy its ports depend
// on cannot be removed (RbacPolicyInUse).
import { Type } from 'typebox';
import type { Kysely } from 'kysely';
import { nowIso, uuid } from '../common/ids.ts';
import type { Credentials } from '../http/auth.ts';
import { isAdmin } from '../http/policy.ts';
import { route, type Route, type RouteContext } from '../http/service.ts';
import type { NetworkContext } from './context.ts';
import { conflict, invalidAttr, notFound, policyDenied } from './errors.ts';
import { listAnswer, selectFields, type View } from './list.ts';
import type { NetworkRow } from './networks.ts';
import { checkQuota } from './quotas.ts';
import { projectFor, type Resources } from './resource.ts';
import type { NetworkTables } from './schema.ts';

type PolicyRow = NetworkTables['network_rbac_policies'];
const ACTIONS = ['access_as_shared', 'access_as_external'] as const;

const CreateBody = Type.Object({
  rbac_policy: Type.Object({
    object_type: Type.String(), object_id: Type.String(), action: Type.String(), target_tenant: Type.String({ minLength: 1, maxLength: 255 }),
    project_id: Type.Optional(Type.String({ maxLength: 255 })), tenant_id: Type.Optional(Type.String({ maxLength: 255 })),
  }, { additionalProperties: false }),
}, { additionalProperties: false });
const UpdateBody = Type.Object({
  rbac_policy: Type.Object({ target_tenant: Type.String({ minLength: 1, maxLength: 255 }) }, { additionalProperties: false }),
}, { additionalProperties: false });

const view = (r: PolicyRow): View => ({
  id: r.id, object_type: r.object_type, object_id: r.object_id, action: r.action, target_tenant: r.target_project,
  project_id: r.project_id, tenant_id: r.project_id,
});

export function rbacRoutes(ctx: NetworkContext, networks: Resources<NetworkRow>): Route[] {
  const db = ctx.db as unknown as Kysely<any>;
  const spec = {
    collection: 'rbac_policies', notFound: (id: string) => notFound.rbac_policy(id),
    attrs: { object_type: 'string', object_id: 'string', action: 'string', target_tenant: 'string' } as const,
  };
  const find = async (cred: Credentials, id: string, tx: Kysely<any> = db): Promise<PolicyRow> => {
    let q = tx.selectFrom('network_rbac_policies').selectAll().where('id', '=', id);
    if (!isAdmin(cred)) q = q.where('project_id', '=', cred.projectId);
    const row = await q.executeTakeFirst() as PolicyRow | undefined;
    if (!row) throw notFound.rbac_policy(id);
    return row;
  };
  /** Refuses to take access away from a project whose ports depend on it (unless another grant still covers them). */
  const checkUnused = async (tx: Kysely<any>, p: PolicyRow) => {
    if (p.action !== 'access_as_shared') return;
    const net = await tx.selectFrom('network_networks').select(['project_id', 'shared']).where('id', '=', p.object_id).executeTakeFirst();
    if (!net || net.shared) return;
    const others = await tx.selectFrom('network_rbac_policies').select('target_project').where('object_type', '=', 'network')
      .where('object_id', '=', p.object_id).where('action', '=', 'access_as_shared').where('id', '!=', p.id).execute();
    const covered = new Set(others.map((o) => o.target_project));
    if (covered.has('*')) return;
    let q = tx.selectFrom('network_ports').select('project_id').where('network_id', '=', p.object_id).where('project_id', '!=', net.project_id);
    if (p.target_project !== '*') q = q.where('project_id', '=', p.target_project);
    const users = await q.execute();
    if (users.some((u) => !covered.has(u.project_id))) {
      throw conflict('RbacPolicyInUse', `RBAC policy on object ${p.object_id} cannot be removed because other objects depend on it.`);
    }
  };
  const checkTarget = (cred: Credentials, action: string, target: string) => {
    if (!isAdmin(cred) && (target === '*' || action === 'access_as_external')) throw policyDenied('create_rbac_policy:target_tenant');
  };
  return [
    route({
      method: 'GET', path: '/v2.0/rbac-policies', rule: 'get_rbac_policy',
      async handler(rc: RouteContext) {
        let q = db.selectFrom('network_rbac_policies').selectAll();
        if (!isAdmin(rc.cred!)) q = q.where('project_id', '=', rc.cred!.projectId);
        return listAnswer(rc, spec, (await q.orderBy('created_at').orderBy('id').execute() as PolicyRow[]).map(view));
      },
    }),
    route({
      method: 'GET', path: '/v2.0/rbac-policies/:id', rule: 'get_rbac_policy',
      handler: async (rc) => ({ rbac_policy: selectFields(rc.query, view(await find(rc.cred!, rc.params.id!))) }),
    }),
    route({
      method: 'POST', path: '/v2.0/rbac-policies', rule: 'create_rbac_policy', schema: { body: CreateBody }, status: 201,
      async handler(rc) {
        const cred = rc.cred!;
        const b = rc.body.rbac_policy;
        if (b.object_type !== 'network') throw invalidAttr('object_type', `'${b.object_type}' is not in ['network']`);
        if (!(ACTIONS as readonly string[]).includes(b.action)) throw invalidAttr('action', `'${b.action}' is not in ${JSON.stringify(ACTIONS)}`);
        checkTarget(cred, b.action, b.target_tenant);
        const projectId = projectFor(cred, b, 'create_rbac_policy');
        const id = uuid();
        await db.transaction().execute(async (tx) => {
          const net = await networks.find(cred, b.object_id, tx);
          if (!isAdmin(cred) && net.project_id !== cred.projectId) throw notFound.network(b.object_id);
          await checkQuota(tx, projectId, 'rbac_policy');
          const dup = await tx.selectFrom('network_rbac_policies').select('id').where('object_type', '=', 'network').where('object_id', '=', b.object_id)
            .where('action', '=', b.action).where('target_project', '=', b.target_tenant).executeTakeFirst();
          if (dup) throw conflict('DuplicateRbacPolicy', 'An RBAC policy already exists with those values.');
          const now = nowIso();
          await tx.insertInto('network_rbac_policies').values({
            id, project_id: projectId, object_type: 'network', object_id: b.object_id, action: b.action, target_project: b.target_tenant, created_at: now, updated_at: now,
          }).execute();
        });
        return { rbac_policy: view(await find(cred, id)) };
      },
    }),
    route({
      method: 'PUT', path: '/v2.0/rbac-policies/:id', rule: 'update_rbac_policy', schema: { body: UpdateBody },
      async handler(rc) {
        const cred = rc.cred!;
        const id = rc.params.id!;
        await db.transaction().execute(async (tx) => {
          const p = await find(cred, id, tx);
          checkTarget(cred, p.action, rc.body.rbac_policy.target_tenant);
          if (rc.body.rbac_policy.target_tenant !== p.target_project) await checkUnused(tx, p);
          await tx.updateTable('network_rbac_policies').set({ target_project: rc.body.rbac_policy.target_tenant, updated_at: nowIso() }).where('id', '=', id).execute();
        });
        return { rbac_policy: view(await find(cred, id)) };
      },
    }),
    route({
      method: 'DELETE', path: '/v2.0/rbac-policies/:id', rule: 'delete_rbac_policy', status: 204,
      async handler(rc) {
        await db.transaction().execute(async (tx) => {
          const p = await find(rc.cred!, rc.params.id!, tx);
          await checkUnused(tx, p);
          await tx.deleteFrom('network_rbac_policies').where('id', '=', p.id).execute();
        });
      },
    }),
  ];
}
