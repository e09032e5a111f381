// /os-simple-tenant-usage: hours, vCPU-hours, RAM-hours and disk-hours of the
// servers that ran in a period, per project (pagination from 2.40).
import { badRequest } from '../../common/errors.ts';
import { route, type Route, type RouteContext } from '../../http/service.ts';
import type { ComputeContext } from './context.ts';
import { mv, nextLinks, pageParams, q } from './http.ts';
import type { ServerRow } from './servers-store.ts';
import { parseFlavor } from './servers-view.ts';

/** Nova's accepted forms: %Y-%m-%dT%H:%M:%S, with .%f, or with a space; naive times are UTC. */
function parseWhen(s: string | undefined): number {
  if (!s) return Date.now();
  const m = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:?\d{2})?$/.exec(s.trim());
  const t = m ? Date.parse(`${m[1]}T${m[2]}${m[3] ? m[3].slice(0, 4) : ''}${m[4] ?? 'Z'}`) : NaN;
  if (Number.isNaN(t)) throw badRequest('Invalid start time. Datetime is in invalid format');
  return t;
}

const naive = (t: number) => new Date(t).toISOString().replace(/\.(\d{3})Z$/, '.$1000');

function hoursFor(s: ServerRow, start: number, stop: number): number {
  const launched = s.launched_at ? Date.parse(s.launched_at) : null;
  const terminated = s.terminated_at ? Date.parse(s.terminated_at) : null;
  if (terminated !== null && terminated < start) return 0;
  if (launched === null || launched > stop) return 0;
  const from = Math.max(launched, start);
  const to = terminated !== null ? Math.min(stop, terminated) : stop;
  return Math.max(0, to - from) / 3_600_000;
}

async function usages(ctx: ComputeContext, rc: RouteContext, projectId: string | undefined, detailed: boolean) {
  const start = parseWhen(q(rc, 'start'));
  let stop = parseWhen(q(rc, 'end'));
  if (!(start < stop)) throw badRequest('Invalid start time. The start time cannot occur after the end time.');
  stop = Math.min(stop, Date.now());
  let qb = ctx.db.selectFrom('compute_servers').selectAll()
    .where((eb) => eb.or([eb('terminated_at', 'is', null), eb('terminated_at', '>', new Date(start).toISOString())]))
    .where((eb) => eb.or([eb('launched_at', 'is', null), eb('launched_at', '<', new Date(stop).toISOString())]))
    .orderBy('created_at').orderBy('id');
  if (projectId !== undefined) qb = qb.where('project_id', '=', projectId);
  let rows = await qb.execute();
  let limit = 0;
  if (mv(rc).ge('2.40')) {
    const p = pageParams(rc);
    limit = p.limit;
    if (p.marker !== undefined) {
      const i = rows.findIndex((r) => r.id === p.marker);
      if (i < 0) throw badRequest(`Marker ${p.marker} could not be found.`);
      rows = rows.slice(i + 1);
    }
    rows = rows.slice(0, limit);
  }
  const byProject = new Map<string, Record<string, any>>();
  const now = Date.now();
  for (const s of rows) {
    const f = parseFlavor(s);
    const hours = hoursFor(s, start, stop);
    const startedAt = s.launched_at ? Date.parse(s.launched_at) : Date.parse(s.created_at);
    const endedAt = s.terminated_at ? Date.parse(s.terminated_at) : null;
    const info = {
      instance_id: s.id, name: s.name, hours, memory_mb: f.ram, local_gb: f.disk + f.ephemeral, vcpus: f.vcpus, tenant_id: s.project_id,
      flavor: f.name, started_at: naive(startedAt), ended_at: endedAt === null ? null : naive(endedAt),
      state: endedAt !== null ? 'terminated' : s.vm_state, uptime: Math.floor(((endedAt ?? now) - startedAt) / 1000),
    };
    let summary = byProject.get(s.project_id);
    if (!summary) {
      summary = {
        tenant_id: s.project_id, ...(detailed ? { server_usages: [] } : {}), total_local_gb_usage: 0, total_vcpus_usage: 0,
        total_memory_mb_usage: 0, total_hours: 0, start: naive(start), stop: naive(stop),
      };
      byProject.set(s.project_id, summary);
    }
    summary.total_local_gb_usage += info.local_gb * hours;
    summary.total_vcpus_usage += info.vcpus * hours;
    summary.total_memory_mb_usage += info.memory_mb * hours;
    summary.total_hours += hours;
    if (detailed) summary.server_usages.push(info);
  }
  const next = limit ? nextLinks(rc.req, 'os-simple-tenant-usage' + (projectId ? `/${projectId}` : ''), rows, rows.at(-1)?.id, limit) : undefined;
  return { usages: [...byProject.values()], next };
}

export function usageRoutes(ctx: ComputeContext): Route[] {
  return [
    route({
      method: 'GET', path: '/v2.1/os-simple-tenant-usage', rule: 'os_compute_api:os-simple-tenant-usage:list',
      async handler(rc) {
        const { usages: list, next } = await usages(ctx, rc, undefined, q(rc, 'detailed') === '1');
        return { tenant_usages: list, ...(next ? { tenant_usages_links: next } : {}) };
      },
    }),
    route({
      method: 'GET', path: '/v2.1/os-simple-tenant-usage/:project_id', rule: 'os_compute_api:os-simple-tenant-usage:show',
      target: (rc) => ({ project_id: rc.params.project_id }),
      async handler(rc) {
        const { usages: list, next } = await usages(ctx, rc, rc.params.project_id!, true);
        return { tenant_usage: list[0] ?? {}, ...(next ? { tenant_usage_links: next } : {}) };
      },
    }),
  ];
}
