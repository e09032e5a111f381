// Older admin APIs Nova still serves: os-hosts (below 2.43) and the instance
// usage audit log.
import { hostname as osHostname } from 'node:os';
import { ApiError, badRequest, notFound } from '../../common/errors.ts';
import { route, type Route } from '../../http/service.ts';
import type { ComputeContext } from './context.ts';
import { q, versioned, objectOf } from './http.ts';

function pyDate(d: Date): string {
  return d.toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, '');
}

/** Nova's last_completed_audit_period (monthly): the month before `before`. */
function auditPeriod(before: Date): { begin: Date; end: Date } {
  const end = new Date(Date.UTC(before.getUTCFullYear(), before.getUTCMonth(), 1));
  const begin = new Date(Date.UTC(end.getUTCFullYear(), end.getUTCMonth() - 1, 1));
  return { begin, end };
}

export function adminExtraRoutes(ctx: ComputeContext): Route[] {
  const rule = 'os_compute_api:os-hosts';
  const hostsList = async () => {
    const hosts = await ctx.db.selectFrom('compute_hosts').select(['hostname', 'availability_zone']).orderBy('hostname').execute();
    const me = osHostname();
    return [
      { host_name: me, service: 'scheduler', zone: 'internal' },
      { host_name: me, service: 'conductor', zone: 'internal' },
      ...hosts.map((h) => ({ host_name: h.hostname, service: 'compute', zone: h.availability_zone })),
    ];
  };
  const computeHost = async (name: string) => {
    const h = await ctx.db.selectFrom('compute_hosts').selectAll().where('hostname', '=', name).executeTakeFirst();
    if (!h) throw notFound(`Compute host ${name} could not be found.`);
    return h;
  };
  const auditLog = async (before: Date) => {
    const { begin, end } = auditPeriod(before);
    const hosts = (await ctx.db.selectFrom('compute_hosts').select('hostname').execute()).map((h) => h.hostname);
    return {
      period_beginning: pyDate(begin), period_ending: pyDate(end), num_hosts: hosts.length, num_hosts_done: 0, num_hosts_running: 0,
      num_hosts_not_run: hosts.length, hosts_not_run: hosts, total_instances: 0, total_errors: 0,
      overall_status: `${hosts.length === 0 ? 'ALL' : `0 of ${hosts.length}`} hosts done. 0 errors.`, log: {},
    };
  };
  const hostRoutes: Route[] = [
      route({
        method: 'GET', path: '/v2.1/os-hosts', rule,
        async handler(rc) {
          const zone = q(rc, 'zone');
          const all = await hostsList();
          return { hosts: zone ? all.filter((h) => h.zone === zone) : all };
        },
      }),
      route({
        method: 'GET', path: '/v2.1/os-hosts/:host', rule,
        async handler(rc) {
          const h = await computeHost(rc.params.host!);
          const servers = await ctx.db.selectFrom('compute_servers').select(['project_id', 'vcpus', 'memory_mb', 'flavor'])
            .where('host', '=', h.hostname).where('deleted_at', 'is', null).execute();
          const disk = (f: string) => { try { const x = JSON.parse(f) as { disk?: number; ephemeral?: number }; return Number(x.disk ?? 0) + Number(x.ephemeral ?? 0); } catch { return 0; } };
          const used = servers.reduce((a, s) => ({ cpu: a.cpu + s.vcpus, memory_mb: a.memory_mb + s.memory_mb, disk_gb: a.disk_gb + disk(s.flavor) }), { cpu: 0, memory_mb: 0, disk_gb: 0 });
          const byProject = new Map<string, { cpu: number; memory_mb: number; disk_gb: number }>();
          for (const s of servers) {
            const p = byProject.get(s.project_id) ?? { cpu: 0, memory_mb: 0, disk_gb: 0 };
            p.cpu += s.vcpus;
            p.memory_mb += s.memory_mb;
            p.disk_gb += disk(s.flavor);
            byProject.set(s.project_id, p);
          }
          return {
            host: [
              { resource: { host: h.hostname, project: '(total)', cpu: h.vcpus, memory_mb: h.memory_mb, disk_gb: h.disk_gb } },
              { resource: { host: h.hostname, project: '(used_now)', ...used } },
              { resource: { host: h.hostname, project: '(used_max)', ...used } },
              ...[...byProject].map(([project, r]) => ({ resource: { host: h.hostname, project, ...r } })),
            ],
          };
        },
      }),
      route({
        method: 'PUT', path: '/v2.1/os-hosts/:host', rule,
        async handler(rc) {
          const body = objectOf(rc.body) ?? {};
          const keys = Object.keys(body);
          if (!keys.length || keys.some((k) => k !== 'status' && k !== 'maintenance_mode')) throw badRequest('Invalid input: expected status and/or maintenance_mode.');
          for (const k of keys) if (body[k] !== 'enable' && body[k] !== 'disable') throw badRequest(`Invalid input for field/attribute ${k}. Value: ${String(body[k])}. It must be 'enable' or 'disable'`);
          const h = await computeHost(rc.params.host!);
          if (body.maintenance_mode !== undefined) throw badRequest('Virt driver does not implement host maintenance mode.');
          await ctx.db.updateTable('compute_hosts').set({ status: body.status === 'enable' ? 'enabled' : 'disabled', disabled_reason: null }).where('id', '=', h.id).execute();
          ctx.engine.kick();
          return { host: h.hostname, status: body.status === 'enable' ? 'enabled' : 'disabled' };
        },
      }),
      ...(['startup', 'shutdown', 'reboot'] as const).map((action): Route => (route({
        method: 'GET', path: `/v2.1/os-hosts/:host/${action}`, rule,
        async handler(rc) {
          await computeHost(rc.params.host!);
          throw new ApiError('NotImplemented', 'Virt driver does not implement host power management.');
        },
      }))),
  ];
  return [
    ...hostRoutes.map((r) => versioned(r, undefined, '2.42')),
    route({
      method: 'GET', path: '/v2.1/os-instance_usage_audit_log', rule,
      handler: async () => ({ instance_usage_audit_logs: await auditLog(new Date()) }),
    }),
    route({
      method: 'GET', path: '/v2.1/os-instance_usage_audit_log/:before', rule,
      async handler(rc) {
        const raw = rc.params.before!;
        const m = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(\.\d{1,6})?$/.exec(raw);
        const t = m ? Date.parse(`${m[1]}T${m[2]}${m[3] ? m[3].slice(0, 4) : ''}Z`) : NaN;
        if (Number.isNaN(t)) throw badRequest(`Invalid timestamp for date ${raw}`);
        return { instance_usage_audit_log: await auditLog(new Date(t)) };
      },
    }),
  ];
}
