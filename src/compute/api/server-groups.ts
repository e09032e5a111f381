// /os-server-groups: affinity, anti-affinity and their soft variants (2.15),
// `policy`/`rules` from 2.64; members join at server create (scheduler hint
// `group`) and the scheduler honours the policy.
import { Type } from 'typebox';
import { badRequest, forbidden, notFound } from '../../common/errors.ts';
import { nowIso, uuid } from '../../common/ids.ts';
import { route, type Route, type RouteContext } from '../../http/service.ts';
import type { ComputeContext } from './context.ts';
import { checkName, has, MAX_LIMIT, mv, q, strictQuery, validate } from './http.ts';
import { isComputeAdmin } from './policy.ts';
import { claimTransaction, countOf, projectLimits } from './quota.ts';

type GroupRow = { id: string; name: string; project_id: string; user_id: string; policy: string; rules: string; created_at: string };

const POLICIES = ['affinity', 'anti-affinity'];
const SOFT = ['soft-affinity', 'soft-anti-affinity'];

const CreateOld = Type.Object({
  server_group: Type.Object({
    name: Type.String(),
    policies: Type.Array(Type.String(), { minItems: 1, maxItems: 1, uniqueItems: true }),
  }, { additionalProperties: false }),
}, { additionalProperties: false });
const Create264 = Type.Object({
  server_group: Type.Object({
    name: Type.String(),
    policy: Type.String(),
    rules: Type.Optional(Type.Object({
      max_server_per_host: Type.Optional(Type.Union([Type.Integer({ minimum: 1 }), Type.String({ pattern: '^[0-9]*[1-9][0-9]*$' })])),
    }, { additionalProperties: false })),
  }, { additionalProperties: false }),
}, { additionalProperties: false });

async function members(ctx: ComputeContext, groupIds: string[]): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>(groupIds.map((id) => [id, []]));
  if (!groupIds.length) return out;
  const rows = await ctx.db.selectFrom('compute_server_group_members as m').innerJoin('compute_servers as s', 's.id', 'm.server_id')
    .select(['m.group_id', 'm.server_id']).where('m.group_id', 'in', groupIds).where('s.deleted_at', 'is', null).orderBy('s.created_at').execute();
  for (const r of rows) out.get(r.group_id)!.push(r.server_id);
  return out;
}

function view(rc: RouteContext, g: GroupRow, memberIds: string[]) {
  const v = mv(rc);
  const out: Record<string, unknown> = { id: g.id, name: g.name };
  if (v.ge('2.64')) {
    out.policy = g.policy;
    out.rules = JSON.parse(g.rules || '{}');
  } else {
    out.policies = [g.policy];
    out.metadata = {};
  }
  out.members = memberIds;
  if (v.ge('2.13')) {
    out.project_id = g.project_id;
    out.user_id = g.user_id;
  }
  return out;
}

export function serverGroupRoutes(ctx: ComputeContext): Route[] {
  const db = ctx.db;
  const load = async (rc: RouteContext) => {
    const g = await db.selectFrom('compute_server_groups').selectAll().where('id', '=', rc.params.group_id!).executeTakeFirst();
    if (!g || (!isComputeAdmin(rc.cred) && g.project_id !== rc.cred!.projectId)) throw notFound(`Instance group ${rc.params.group_id} could not be found.`);
    return g;
  };
  const target = async (rc: RouteContext) => ({ project_id: (await load(rc)).project_id });
  return [
    route({
      method: 'GET', path: '/v2.1/os-server-groups', rule: 'os_compute_api:os-server-groups:index',
      async handler(rc) {
        if (mv(rc).ge('2.75')) strictQuery(rc, ['all_projects', 'limit', 'offset']);
        let qb = db.selectFrom('compute_server_groups').selectAll().orderBy('created_at').orderBy('id');
        if (!(has(rc, 'all_projects') && isComputeAdmin(rc.cred))) qb = qb.where('project_id', '=', rc.cred!.projectId ?? '');
        let rows = await qb.execute();
        const num = (name: string, dflt: number) => {
          const raw = q(rc, name);
          if (raw === undefined) return dflt;
          if (!/^\d+$/.test(raw)) throw badRequest(`Invalid input for query parameters ${name}. Value: ${raw}. '${raw}' does not match '^[0-9]*$'`);
          return Number(raw);
        };
        const offset = num('offset', 0);
        const limit = Math.min(num('limit', MAX_LIMIT) || MAX_LIMIT, MAX_LIMIT);
        rows = rows.slice(offset, offset + limit);
        const m = await members(ctx, rows.map((r) => r.id));
        return { server_groups: rows.map((g) => view(rc, g, m.get(g.id)!)) };
      },
    }),
    route({
      method: 'POST', path: '/v2.1/os-server-groups', rule: 'os_compute_api:os-server-groups:create',
      target: (rc) => ({ project_id: rc.cred?.projectId }),
      async handler(rc) {
        const v = mv(rc);
        const cred = rc.cred!;
        let policy: string;
        let rules: Record<string, number> = {};
        let name: string;
        if (v.ge('2.64')) {
          const body = validate(Create264, rc.body).server_group;
          name = body.name;
          policy = body.policy;
          if (![...POLICIES, ...SOFT].includes(policy)) throw badRequest(`Invalid input for field/attribute policy. Value: ${policy}. '${policy}' is not one of ${JSON.stringify([...POLICIES, ...SOFT])}`);
          if (body.rules && Object.keys(body.rules).length) {
            if (policy !== 'anti-affinity') throw badRequest('Only anti-affinity policy supports rules.');
            if (body.rules.max_server_per_host !== undefined) rules = { max_server_per_host: Number(body.rules.max_server_per_host) };
          }
        } else {
          const body = validate(CreateOld, rc.body).server_group;
          name = body.name;
          policy = body.policies[0];
          const allowed = v.ge('2.15') ? [...POLICIES, ...SOFT] : POLICIES;
          if (!allowed.includes(policy)) throw badRequest(`Invalid input for field/attribute policies. Value: ${JSON.stringify(body.policies)}. '${policy}' is not one of ${JSON.stringify(allowed)}`);
        }
        checkName('name', name);
        const row: GroupRow = { id: uuid(), name, project_id: cred.projectId ?? '', user_id: cred.userId, policy, rules: JSON.stringify(rules), created_at: nowIso() };
        await claimTransaction(db, async (tx) => {
          const limit = (await projectLimits(tx, row.project_id, cred.userId)).server_groups;
          if (limit >= 0 && (await countOf(tx, 'server_groups', row.project_id)) + 1 > limit) throw forbidden('Quota exceeded, too many server groups.');
          await tx.insertInto('compute_server_groups').values(row).execute();
        });
        return { server_group: view(rc, row, []) };
      },
    }),
    route({
      method: 'GET', path: '/v2.1/os-server-groups/:group_id', rule: 'os_compute_api:os-server-groups:show', target,
      async handler(rc) {
        const g = await load(rc);
        return { server_group: view(rc, g, (await members(ctx, [g.id])).get(g.id)!) };
      },
    }),
    route({
      method: 'DELETE', path: '/v2.1/os-server-groups/:group_id', rule: 'os_compute_api:os-server-groups:delete', target, status: 204,
      async handler(rc) {
        const g = await load(rc);
        await db.transaction().execute(async (tx) => {
          await tx.deleteFrom('compute_server_group_members').where('group_id', '=', g.id).execute();
          await tx.deleteFrom('compute_server_groups').where('id', '=', g.id).execute();
        });
      },
    }),
  ];
}
