// Neutron quotas (the quotas and quota_details extensions): a limit per
// project and resource, the default where none is set, -1 for unlimited.
// Creates check them in their own transaction, counted under a per-project
// lock on PostgreSQL (SQLite runs one writer at a time), so parallel creates
// cannot overshoot.
import { Type } from 'typebox';
import { sql, type Kysely } from 'kysely';
import { isPostgres } from '../db/migration-helpers.ts';
import { route, type Route } from '../http/service.ts';
import type { NetworkContext } from './context.ts';
import { badRequest, overQuota } from './errors.ts';
import type { TableName } from './resource.ts';

/** Neutron's defaults (neutron/conf/quota.py). */
export const DEFAULT_QUOTAS = {
  network: 100, subnet: 100, port: 500, router: 10, floatingip: 50,
  security_group: 10, security_group_rule: 100, subnetpool: -1, rbac_policy: 10,
} as const;
export type QuotaResource = keyof typeof DEFAULT_QUOTAS;

/** Where each counted resource lives. */
const TABLES: Record<QuotaResource, TableName> = {
  network: 'network_networks', subnet: 'network_subnets', port: 'network_ports',
  security_group: 'network_security_groups', security_group_rule: 'network_security_group_rules', rbac_policy: 'network_rbac_policies',
  subnetpool: 'network_subnetpools', router: 'network_routers', floatingip: 'network_floatingips',
};

const isResource = (r: string): r is QuotaResource => Object.hasOwn(DEFAULT_QUOTAS, r);

export async function limitsOf(db: Kysely<any>, projectId: string): Promise<Record<QuotaResource, number>> {
  const rows = await db.selectFrom('network_quotas').select(['resource', 'limit']).where('project_id', '=', projectId).execute();
  const out: Record<string, number> = { ...DEFAULT_QUOTAS };
  for (const r of rows) if (isResource(r.resource)) out[r.resource] = r.limit;
  return out as Record<QuotaResource, number>;
}

async function usedOf(db: Kysely<any>, projectId: string, resource: QuotaResource): Promise<number> {
  const table = TABLES[resource];
  const r = await db.selectFrom(table).select((eb) => eb.fn.countAll<number>().as('n')).where('project_id', '=', projectId).executeTakeFirstOrThrow();
  return Number(r.n);
}

/** Refuses (409 OverQuota) `count` more of a resource for a project; call inside the creating transaction. */
export async function checkQuota(tx: Kysely<any>, projectId: string, resource: QuotaResource, count = 1): Promise<void> {
  if (isPostgres(tx)) await sql`select pg_advisory_xact_lock(hashtext(${`network-quota:${projectId}:${resource}`}))`.execute(tx);
  const limit = (await limitsOf(tx, projectId))[resource];
  if (limit < 0) return;
  if ((await usedOf(tx, projectId, resource)) + count > limit) throw overQuota([resource]);
}

const QuotaBody = Type.Object({
  quota: Type.Record(Type.String(), Type.Union([Type.Integer({ minimum: -1, maximum: 2147483647 }), Type.String()])),
}, { additionalProperties: false });

export function quotaRoutes(ctx: NetworkContext): Route[] {
  const db = ctx.db as unknown as Kysely<any>;
  const target = (rc: { params: Record<string, string>; cred: { projectId: string | null } | null }) =>
    ({ project_id: rc.params.project_id === 'tenant' ? rc.cred?.projectId : rc.params.project_id });
  return [
    route({
      method: 'GET', path: '/v2.0/quotas', rule: 'update_quota',
      async handler() {
        const projects = await db.selectFrom('network_quotas').select('project_id').distinct().orderBy('project_id').execute();
        return { quotas: await Promise.all(projects.map(async (p) => ({ ...await limitsOf(db, p.project_id), project_id: p.project_id, tenant_id: p.project_id }))) };
      },
    }),
    // the caller's own project (python-neutronclient's quota-show without a project)
    route({
      method: 'GET', path: '/v2.0/quotas/tenant', rule: 'get_quota', target,
      handler: (rc) => ({ tenant: { tenant_id: rc.cred!.projectId, project_id: rc.cred!.projectId } }),
    }),
    route({
      method: 'GET', path: '/v2.0/quotas/:project_id', rule: 'get_quota', target,
      handler: async (rc) => ({ quota: await limitsOf(db, rc.params.project_id!) }),
    }),
    route({
      method: 'GET', path: '/v2.0/quotas/:project_id/default', rule: 'get_quota', target,
      handler: () => ({ quota: { ...DEFAULT_QUOTAS } }),
    }),
    ...['/v2.0/quotas/:project_id/details', '/v2.0/quotas/:project_id/details.json'].map((path) => route({
      method: 'GET', path, rule: 'get_quota', target,
      async handler(rc) {
        const p = rc.params.project_id!;
        const limits = await limitsOf(db, p);
        const out: Record<string, { limit: number; used: number; reserved: number }> = {};
        for (const r of Object.keys(DEFAULT_QUOTAS) as QuotaResource[]) out[r] = { limit: limits[r], used: await usedOf(db, p, r), reserved: 0 };
        return { quota: out };
      },
    })),
    route({
      method: 'PUT', path: '/v2.0/quotas/:project_id', rule: 'update_quota', schema: { body: QuotaBody },
      async handler(rc) {
        const p = rc.params.project_id!;
        const wanted: Array<[QuotaResource, number]> = [];
        for (const [k, v] of Object.entries(rc.body.quota)) {
          if (k === 'force' || k === 'check_limit') continue;
          if (!isResource(k)) throw badRequest(`Unrecognized attribute(s) '${k}'`);
          const n = typeof v === 'number' ? v : Number(v);
          if (!Number.isInteger(n) || n < -1) throw badRequest(`Invalid input for ${k}. Reason: '${v}' is not an integer greater than or equal to -1.`);
          wanted.push([k, n]);
        }
        await db.transaction().execute(async (tx) => {
          for (const [resource, limit] of wanted) {
            await tx.deleteFrom('network_quotas').where('project_id', '=', p).where('resource', '=', resource).execute();
            await tx.insertInto('network_quotas').values({ project_id: p, resource, limit }).execute();
          }
        });
        return { quota: await limitsOf(db, p) };
      },
    }),
    route({
      method: 'DELETE', path: '/v2.0/quotas/:project_id', rule: 'delete_quota', status: 204,
      async handler(rc) {
        await db.deleteFrom('network_quotas').where('project_id', '=', rc.params.project_id!).execute();
      },
    }),
  ];
}
