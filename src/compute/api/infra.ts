// The infrastructure as Nova shows it, backed by the registered host agents
// (compute_hosts) and what is placed on them (placement's usage of each host's provider):
// os-availability-zone, os-hypervisors and os-services. The control plane
// itself appears as nova-scheduler and nova-conductor in the internal zone.
// Bare-metal nodes are hypervisors too, as Nova's ironic driver shows them:
// hypervisor_hostname and (2.53) id the node's uuid, hypervisor_type
// `ironic`, the service its conductor's nova-compute, its size the node's
// properties (cpus, memory_mb, local_gb), all used while it holds an instance.
import { createHash } from 'node:crypto';
import { hostname as osHostname, uptime as osUptime } from 'node:os';
import { badRequest, conflict, notFound } from '../../common/errors.ts';
import { nowIso } from '../../common/ids.ts';
import { route, type Route, type RouteContext } from '../../http/service.ts';
import type { ComputeContext } from './context.ts';
import { boolFrom, mv, naiveTime, nextLinks, pageParams, q, strictQuery, versioned, objectOf } from './http.ts';
import { hostIsUp, type HostRow } from './servers-store.ts';
import { removeProvider, usageOf } from '../../placement/service.ts';

const INTERNAL_ZONE = 'internal';
const CONTROL_BINARIES = ['nova-scheduler', 'nova-conductor'] as const;

/** A uuid derived from a name, for the control-plane services that have no row. */
function nameUuid(name: string): string {
  const h = createHash('sha1').update(`stratus:${name}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${((parseInt(h.slice(16, 18), 16) & 0x3f) | 0x80).toString(16)}${h.slice(18, 20)}-${h.slice(20, 32)}`;
}

/** Integer ids of hosts (hypervisor ids, and compute service ids + 2), as Nova shows them before 2.53. */
async function hostNumbers(ctx: ComputeContext, hosts: HostRow[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  if (!hosts.length) return out;
  const ids = hosts.map((h) => h.id);
  const known = await ctx.db.selectFrom('compute_host_numbers').selectAll().where('host_id', 'in', ids).execute();
  for (const k of known) out.set(k.host_id, Number(k.id));
  for (const h of hosts) {
    if (out.has(h.id)) continue;
    try {
      const r = await ctx.db.insertInto('compute_host_numbers').values({ host_id: h.id }).returning('id').executeTakeFirstOrThrow();
      out.set(h.id, Number(r.id));
    } catch {
      const r = await ctx.db.selectFrom('compute_host_numbers').select('id').where('host_id', '=', h.id).executeTakeFirstOrThrow();
      out.set(h.id, Number(r.id));
    }
  }
  return out;
}

async function allHosts(ctx: ComputeContext): Promise<HostRow[]> {
  return ctx.db.selectFrom('compute_hosts').selectAll().orderBy('created_at').orderBy('hostname').execute();
}

/** The hosts whose hostname contains `pattern` (Nova's hypervisor search); none is a 404. */
function hostsMatching(hosts: HostRow[], pattern: string): HostRow[] {
  const found = hosts.filter((h) => h.hostname.includes(pattern));
  if (!found.length) throw notFound(`No hypervisor matching '${pattern}' could be found.`);
  return found;
}

// ---- services

interface ServiceView {
  uuid: string; number: number; binary: string; host: string; zone: string; disabled: boolean; disabledReason: string | null;
  up: boolean; updatedAt: string; forcedDown: boolean; hostRow?: HostRow;
}

async function services(ctx: ComputeContext): Promise<ServiceView[]> {
  const hosts = await allHosts(ctx);
  const numbers = await hostNumbers(ctx, hosts);
  const me = osHostname();
  const now = nowIso();
  const out: ServiceView[] = CONTROL_BINARIES.map((binary, i) => ({
    uuid: nameUuid(`${me}/${binary}`), number: i + 1, binary, host: me, zone: INTERNAL_ZONE, disabled: false, disabledReason: null,
    up: true, updatedAt: now, forcedDown: false,
  }));
  for (const h of hosts) {
    out.push({
      uuid: h.service_id, number: numbers.get(h.id)! + CONTROL_BINARIES.length, binary: 'nova-compute', host: h.hostname, zone: h.availability_zone,
      disabled: h.status === 'disabled', disabledReason: h.disabled_reason, up: hostIsUp(h, ctx.config.serviceDownTime),
      updatedAt: h.last_seen_at, forcedDown: h.forced_down === 1, hostRow: h,
    });
  }
  return out;
}

function viewService(rc: RouteContext, s: ServiceView) {
  const v = mv(rc);
  const out: Record<string, unknown> = {
    binary: s.binary, host: s.host, id: v.ge('2.53') ? s.uuid : s.number, zone: s.zone, status: s.disabled ? 'disabled' : 'enabled',
    state: s.up ? 'up' : 'down', updated_at: naiveTime(s.updatedAt), disabled_reason: s.disabledReason,
  };
  if (v.ge('2.11')) out.forced_down = s.forcedDown;
  return out;
}

async function setService(ctx: ComputeContext, s: ServiceView, change: { status?: 'enabled' | 'disabled'; reason?: string | null; forcedDown?: boolean }) {
  if (!s.hostRow) throw badRequest(`Service ${s.binary} on ${s.host} cannot be changed: it is part of the control plane.`);
  const set: Record<string, unknown> = {};
  if (change.status) {
    set.status = change.status;
    set.disabled_reason = change.status === 'enabled' ? null : change.reason ?? null;
  }
  if (change.forcedDown !== undefined) set.forced_down = change.forcedDown ? 1 : 0;
  if (Object.keys(set).length) await ctx.db.updateTable('compute_hosts').set(set as any).where('id', '=', s.hostRow.id).execute();
  ctx.engine.kick();
  return (await services(ctx)).find((x) => x.uuid === s.uuid)!;
}

// ---- hypervisors

interface Usage { vcpus: number; memory: number; disk: number; servers: Array<{ id: string; name: string }>; busy: number }

/**
 * Each bare-metal node with a live conductor host as a hypervisor row of its
 * own (hostname and id the node's uuid, type `ironic`, the conductor's
 * service), and the conductor's host id of each.
 */
async function nodeHypervisors(ctx: ComputeContext, hosts: HostRow[]): Promise<{ rows: HostRow[]; conductorOf: Map<string, HostRow>; held: Set<string> }> {
  const conductorOf = new Map<string, HostRow>();
  const held = new Set<string>();
  if (!ctx.baremetal) return { rows: [], conductorOf, held };
  const rows: HostRow[] = [];
  for (const n of await ctx.baremetal.list()) {
    const c = hosts.find((h) => h.hostname === n.conductor);
    if (!c) continue;
    const num = (k: string) => {
      const x = Number(n.properties[k] ?? 0);
      return Number.isFinite(x) && x > 0 ? Math.floor(x) : 0;
    };
    rows.push({
      ...c, id: n.uuid, hostname: n.uuid, kinds: JSON.stringify(['baremetal']), vcpus: num('cpus'), memory_mb: num('memory_mb'), disk_gb: num('local_gb'),
      cpu_allocation_ratio: 1, ram_allocation_ratio: 1, disk_allocation_ratio: 1, hypervisor_type: 'ironic', hypervisor_accel: null, hypervisor_version: null,
    });
    conductorOf.set(n.uuid, c);
    if (n.instance_uuid) held.add(n.uuid);
  }
  return { rows, conductorOf, held };
}

async function usageByHost(ctx: ComputeContext, hosts: HostRow[], nodes: HostRow[] = [], held = new Set<string>()): Promise<Map<string, Usage>> {
  const out = new Map<string, Usage>([...hosts, ...nodes].map((h) => [h.hostname, { vcpus: 0, memory: 0, disk: 0, servers: [], busy: 0 }]));
  // a node holding an instance is used whole (the ironic driver's resources while it has one)
  for (const n of nodes) if (held.has(n.id)) Object.assign(out.get(n.hostname)!, { vcpus: n.vcpus, memory: n.memory_mb, disk: n.disk_gb });
  if (!hosts.length) return out;
  const used = await usageOf(ctx.db, hosts.map((h) => h.id));
  for (const h of hosts) {
    const u = out.get(h.hostname)!;
    const p = used.get(h.id)!;
    Object.assign(u, { vcpus: p.get('VCPU') ?? 0, memory: p.get('MEMORY_MB') ?? 0, disk: p.get('DISK_GB') ?? 0 });
  }
  // a bare-metal server is its node's (a hypervisor of its own), not its conductor host's
  const servers = await ctx.db.selectFrom('compute_servers').select(['id', 'name', 'host', 'task_state', 'node'])
    .where('host', 'in', hosts.map((h) => h.hostname)).where('deleted_at', 'is', null).orderBy('created_at').execute();
  for (const s of servers) {
    const u = out.get(s.node ?? s.host!);
    if (!u) continue;
    u.servers.push({ id: s.id, name: s.name });
    if (s.task_state) u.busy++;
  }
  return out;
}

/** A VM host's registered hypervisor (QEMU under TCG, KVM); else what the host's kinds run. */
function hypervisorType(h: HostRow): string {
  if (h.hypervisor_type) return h.hypervisor_type;
  const kinds = (() => { try { return JSON.parse(h.kinds) as string[]; } catch { return [h.kinds]; } })();
  if (kinds.includes('vm')) return 'QEMU';
  if (kinds.includes('baremetal')) return 'ironic';
  return 'runc';
}

/** Nova's convert_version_to_int: '7.2.15' is 7002015 (missing parts count 0); null when not a version. */
export function versionNumber(s: string): number | null {
  const m = /^(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(s.trim());
  return m ? Number(m[1]) * 1_000_000 + Number(m[2] ?? 0) * 1000 + Number(m[3] ?? 0) : null;
}

/** The hypervisor's version (a VM host's QEMU), else the agent's. */
function hypervisorVersion(h: HostRow): number {
  const qemu = h.hypervisor_version ? versionNumber(h.hypervisor_version) : null;
  if (qemu !== null) return qemu;
  const m = /(\d+)\.(\d+)\.(\d+)/.exec(h.agent_version);
  return m ? Number(m[1]) * 1_000_000 + Number(m[2]) * 1000 + Number(m[3]) : 1;
}

/**
 * Nova's cpu_info (libvirt's shape). A VM host's guests are x86_64 (QEMU's
 * qemu-system-x86_64); its CPU model and vendor are not registered, so they
 * stay empty, as on a container host, whose arch is the control plane's.
 */
function cpuInfo(h: HostRow): { arch: string; model: string; vendor: string; topology: { cores: number; threads: number; sockets: number }; features: string[] } {
  const arch = h.hypervisor_type ? 'x86_64' : process.arch === 'x64' ? 'x86_64' : process.arch;
  return { arch, model: '', vendor: '', topology: { cores: h.vcpus, threads: 1, sockets: 1 }, features: [] };
}

export function infraRoutes(ctx: ComputeContext): Route[] {
  const hypervisorView = (rc: RouteContext, h: HostRow, n: number, svc: ServiceView, u: Usage, detail: boolean, withServers: boolean) => {
    const v = mv(rc);
    const out: Record<string, unknown> = {
      id: v.ge('2.53') ? h.id : n, hypervisor_hostname: h.hostname, state: svc.up ? 'up' : 'down', status: svc.disabled ? 'disabled' : 'enabled',
    };
    if (detail) {
      out.hypervisor_type = hypervisorType(h);
      out.hypervisor_version = hypervisorVersion(h);
      out.host_ip = h.host_ip || null;
      out.service = { id: v.ge('2.53') ? svc.uuid : svc.number, host: svc.host, disabled_reason: h.disabled_reason };
      if (v.lt('2.88')) {
        Object.assign(out, {
          vcpus: h.vcpus, memory_mb: h.memory_mb, local_gb: h.disk_gb, vcpus_used: u.vcpus, memory_mb_used: u.memory, local_gb_used: u.disk,
          free_ram_mb: h.memory_mb - u.memory, free_disk_gb: h.disk_gb - u.disk, current_workload: u.busy, running_vms: u.servers.length,
          disk_available_least: h.disk_gb - u.disk,
        });
        const cpu = cpuInfo(h);
        out.cpu_info = v.ge('2.28') ? cpu : JSON.stringify(cpu);
      } else {
        out.uptime = svc.up ? uptimeText(h) : null;
      }
    }
    if (u.servers.length && withServers) out.servers = u.servers.map((s) => ({ name: s.name, uuid: s.id }));
    else if (withServers && v.ge('2.75')) out.servers = [];
    return out;
  };
  const load = async () => {
    const computeHosts = await allHosts(ctx);
    const nodes = await nodeHypervisors(ctx, computeHosts);
    const hosts = [...computeHosts, ...nodes.rows];
    const numbers = await hostNumbers(ctx, hosts);
    const svcs = new Map((await services(ctx)).filter((s) => s.hostRow).map((s) => [s.hostRow!.id, s]));
    // a node's service is its conductor's nova-compute
    for (const [node, c] of nodes.conductorOf) svcs.set(node, svcs.get(c.id)!);
    const usage = await usageByHost(ctx, computeHosts, nodes.rows, nodes.held);
    return { hosts, numbers, svcs, usage };
  };
  const findHypervisor = async (rc: RouteContext, id: string) => {
    const all = await load();
    const h = all.hosts.find((x) => (mv(rc).ge('2.53') ? x.id === id : String(all.numbers.get(x.id)) === id || x.id === id));
    if (!h) throw notFound(`Hypervisor with ID ${id} could not be found.`);
    return { h, all };
  };
  const list = async (rc: RouteContext, detail: boolean) => {
    const v = mv(rc);
    const allowed = ['limit', 'marker', ...(v.ge('2.53') ? ['hypervisor_hostname_pattern', 'with_servers'] : [])];
    if (v.ge('2.75')) strictQuery(rc, allowed);
    const all = await load();
    let hosts = all.hosts;
    let withServers = false;
    const pattern = v.ge('2.53') ? q(rc, 'hypervisor_hostname_pattern') : undefined;
    if (v.ge('2.53') && q(rc, 'with_servers') !== undefined) {
      try {
        withServers = boolFrom(q(rc, 'with_servers'), true);
      } catch {
        throw badRequest(`Invalid input for query parameters with_servers. Value: ${q(rc, 'with_servers')}.`);
      }
    }
    let limit = 0;
    if (pattern !== undefined) {
      if (q(rc, 'limit') !== undefined || q(rc, 'marker') !== undefined) throw badRequest('Paging over hypervisors with the hypervisor_hostname_pattern query parameter is not supported.');
      hosts = hostsMatching(hosts, pattern);
    } else if (v.ge('2.33')) {
      const p = pageParams(rc);
      limit = p.limit;
      if (p.marker !== undefined) {
        const i = hosts.findIndex((h) => (v.ge('2.53') ? h.id : String(all.numbers.get(h.id))) === p.marker);
        if (i < 0) throw badRequest(`marker [${p.marker}] not found`);
        hosts = hosts.slice(i + 1);
      }
      hosts = hosts.slice(0, limit);
    }
    const body: Record<string, unknown> = {
      hypervisors: hosts.map((h) => hypervisorView(rc, h, all.numbers.get(h.id)!, all.svcs.get(h.id)!, all.usage.get(h.hostname)!, detail, withServers)),
    };
    const last = hosts.at(-1);
    const next = limit ? nextLinks(rc.req, detail ? 'os-hypervisors/detail' : 'os-hypervisors', hosts, last ? (v.ge('2.53') ? last.id : String(all.numbers.get(last.id))) : undefined, limit) : undefined;
    if (next) body.hypervisors_links = next;
    return body;
  };
  const rule = 'os_compute_api:os-hypervisors';
  return [
    // availability zones
    route({
      method: 'GET', path: '/v2.1/os-availability-zone', rule: 'os_compute_api:os-availability-zone:list',
      async handler() {
        const svcs = (await services(ctx)).filter((s) => s.zone !== INTERNAL_ZONE);
        const available = [...new Set(svcs.filter((s) => !s.disabled).map((s) => s.zone))].sort();
        const unavailable = [...new Set(svcs.filter((s) => s.disabled).map((s) => s.zone))].filter((z) => !available.includes(z)).sort();
        return {
          availabilityZoneInfo: [
            ...available.map((zoneName) => ({ zoneName, zoneState: { available: true }, hosts: null })),
            ...unavailable.map((zoneName) => ({ zoneName, zoneState: { available: false }, hosts: null })),
          ],
        };
      },
    }),
    route({
      method: 'GET', path: '/v2.1/os-availability-zone/detail', rule: 'os_compute_api:os-availability-zone:detail',
      async handler() {
        const svcs = await services(ctx);
        const available = [...new Set(svcs.filter((s) => !s.disabled).map((s) => s.zone))].sort();
        const unavailable = [...new Set(svcs.filter((s) => s.disabled).map((s) => s.zone))].filter((z) => !available.includes(z)).sort();
        return {
          availabilityZoneInfo: [
            ...available.map((zoneName) => {
              const hosts: Record<string, Record<string, unknown>> = {};
              for (const s of svcs.filter((x) => x.zone === zoneName && !x.disabled)) {
                (hosts[s.host] ??= {})[s.binary] = { available: s.up, active: !s.disabled, updated_at: naiveTime(s.updatedAt) };
              }
              return { zoneName, zoneState: { available: true }, hosts };
            }),
            ...unavailable.map((zoneName) => ({ zoneName, zoneState: { available: false }, hosts: null })),
          ],
        };
      },
    }),
    // hypervisors
    route({ method: 'GET', path: '/v2.1/os-hypervisors', rule, handler: (rc) => list(rc, false) }),
    route({ method: 'GET', path: '/v2.1/os-hypervisors/detail', rule, handler: (rc) => list(rc, true) }),
    versioned(route({
      method: 'GET', path: '/v2.1/os-hypervisors/statistics', rule,
      async handler() {
        const all = await load();
        const sum = (f: (h: HostRow, u: Usage) => number) => all.hosts.reduce((n, h) => n + f(h, all.usage.get(h.hostname)!), 0);
        return {
          hypervisor_statistics: {
            count: all.hosts.length, vcpus: sum((h) => h.vcpus), memory_mb: sum((h) => h.memory_mb), local_gb: sum((h) => h.disk_gb),
            vcpus_used: sum((_, u) => u.vcpus), memory_mb_used: sum((_, u) => u.memory), local_gb_used: sum((_, u) => u.disk),
            free_ram_mb: sum((h, u) => h.memory_mb - u.memory), free_disk_gb: sum((h, u) => h.disk_gb - u.disk),
            current_workload: sum((_, u) => u.busy), running_vms: sum((_, u) => u.servers.length), disk_available_least: sum((h, u) => h.disk_gb - u.disk),
          },
        };
      },
    }), undefined, '2.87'),
    route({
      method: 'GET', path: '/v2.1/os-hypervisors/:id', rule,
      async handler(rc) {
        const v = mv(rc);
        if (v.ge('2.75')) strictQuery(rc, v.ge('2.53') ? ['with_servers'] : []);
        let withServers = false;
        if (v.ge('2.53') && q(rc, 'with_servers') !== undefined) withServers = boolFrom(q(rc, 'with_servers'), true);
        const { h, all } = await findHypervisor(rc, rc.params.id!);
        return { hypervisor: hypervisorView(rc, h, all.numbers.get(h.id)!, all.svcs.get(h.id)!, all.usage.get(h.hostname)!, true, withServers) };
      },
    }),
    versioned(route({
      method: 'GET', path: '/v2.1/os-hypervisors/:id/uptime', rule,
      async handler(rc) {
        const { h, all } = await findHypervisor(rc, rc.params.id!);
        const svc = all.svcs.get(h.id)!;
        const view = hypervisorView(rc, h, all.numbers.get(h.id)!, svc, all.usage.get(h.hostname)!, false, false);
        if (!svc.up) throw conflict(`Compute service of ${h.hostname} is unavailable at this time.`);
        return { hypervisor: { ...view, uptime: uptimeText(h) } };
      },
    }), undefined, '2.87'),
    versioned(route({
      method: 'GET', path: '/v2.1/os-hypervisors/:pattern/search', rule,
      async handler(rc) {
        const all = await load();
        const hosts = hostsMatching(all.hosts, rc.params.pattern!);
        return { hypervisors: hosts.map((h) => hypervisorView(rc, h, all.numbers.get(h.id)!, all.svcs.get(h.id)!, all.usage.get(h.hostname)!, false, false)) };
      },
    }), undefined, '2.52'),
    versioned(route({
      method: 'GET', path: '/v2.1/os-hypervisors/:pattern/servers', rule,
      async handler(rc) {
        const all = await load();
        const hosts = hostsMatching(all.hosts, rc.params.pattern!);
        return {
          hypervisors: hosts.map((h) => {
            const u = all.usage.get(h.hostname)!;
            const base = hypervisorView(rc, h, all.numbers.get(h.id)!, all.svcs.get(h.id)!, u, false, false);
            return u.servers.length ? { ...base, servers: u.servers.map((s) => ({ name: s.name, uuid: s.id })) } : base;
          }),
        };
      },
    }), undefined, '2.52'),
    // services
    route({
      method: 'GET', path: '/v2.1/os-services', rule: 'os_compute_api:os-services',
      async handler(rc) {
        if (mv(rc).ge('2.75')) strictQuery(rc, ['host', 'binary']);
        const host = q(rc, 'host');
        const binary = q(rc, 'binary');
        const all = (await services(ctx)).filter((s) => (host === undefined || s.host === host) && (binary === undefined || s.binary === binary));
        return { services: all.map((s) => viewService(rc, s)) };
      },
    }),
    route({
      method: 'PUT', path: '/v2.1/os-services/:id', rule: 'os_compute_api:os-services',
      async handler(rc) {
        const v = mv(rc);
        const id = rc.params.id!;
        const body = objectOf(rc.body) ?? {};
        if (v.lt('2.53')) {
          // PUT /os-services/{enable|disable|disable-log-reason|force-down} {host, binary}
          const actions = ['enable', 'disable', 'disable-log-reason', ...(v.ge('2.11') ? ['force-down'] : [])];
          if (!actions.includes(id)) throw notFound(`Unknown action`);
          if (typeof body.host !== 'string' || typeof body.binary !== 'string') throw badRequest(`Invalid input for field/attribute ${id}. 'host' and 'binary' are required properties`);
          const svc = (await services(ctx)).find((s) => s.host === body.host && s.binary === body.binary);
          if (!svc) throw notFound(`Service ${body.binary} on host ${body.host} could not be found.`);
          if (id === 'force-down') {
            if (typeof body.forced_down !== 'boolean') throw badRequest(`Invalid input for field/attribute forced_down.`);
            await setService(ctx, svc, { forcedDown: body.forced_down });
            return { service: { host: svc.host, binary: svc.binary, forced_down: body.forced_down } };
          }
          if (id === 'disable-log-reason') {
            if (typeof body.disabled_reason !== 'string' || !body.disabled_reason || body.disabled_reason.length > 255) throw badRequest('Invalid input for field/attribute disabled_reason.');
            await setService(ctx, svc, { status: 'disabled', reason: body.disabled_reason });
            return { service: { host: svc.host, binary: svc.binary, status: 'disabled', disabled_reason: body.disabled_reason } };
          }
          await setService(ctx, svc, { status: id === 'enable' ? 'enabled' : 'disabled' });
          return { service: { host: svc.host, binary: svc.binary, status: id === 'enable' ? 'enabled' : 'disabled' } };
        }
        const known = ['status', 'disabled_reason', 'forced_down'];
        for (const k of Object.keys(body)) if (!known.includes(k)) throw badRequest(`Invalid input for field/attribute service. Additional properties are not allowed ('${k}' was unexpected)`);
        const status = body.status;
        if (status !== undefined && status !== 'enabled' && status !== 'disabled') throw badRequest(`Invalid input for field/attribute status. Value: ${String(status)}. '${String(status)}' is not one of ['enabled', 'disabled']`);
        if (body.forced_down !== undefined && typeof body.forced_down !== 'boolean') throw badRequest(`Invalid input for field/attribute forced_down.`);
        if (body.disabled_reason !== undefined && (typeof body.disabled_reason !== 'string' || body.disabled_reason.length > 255)) throw badRequest('Invalid input for field/attribute disabled_reason.');
        if (status === undefined && body.forced_down === undefined) throw badRequest('At least one of status or forced_down must be specified in the request body.');
        if (body.disabled_reason !== undefined && status !== 'disabled') throw badRequest("Specifying 'disabled_reason' with status 'enabled' is invalid.");
        const svc = (await services(ctx)).find((s) => s.uuid === id);
        if (!svc) throw notFound(`Service ${id} could not be found.`);
        if (svc.binary !== 'nova-compute' && body.forced_down !== undefined) throw badRequest('Updating a nova-compute service is the only kind that supports forced_down.');
        const updated = await setService(ctx, svc, {
          status: status as 'enabled' | 'disabled' | undefined, reason: (body.disabled_reason as string | undefined) ?? null,
          forcedDown: body.forced_down as boolean | undefined,
        });
        return { service: viewService(rc, updated) };
      },
    }),
    route({
      method: 'DELETE', path: '/v2.1/os-services/:id', rule: 'os_compute_api:os-services', status: 204,
      async handler(rc) {
        const v = mv(rc);
        const id = rc.params.id!;
        const svc = (await services(ctx)).find((s) => (v.ge('2.53') ? s.uuid === id : String(s.number) === id));
        if (!svc) throw v.ge('2.53') || /^\d+$/.test(id) ? notFound(`Service ${id} could not be found.`) : badRequest(`Invalid uuid ${id}`);
        if (!svc.hostRow) throw badRequest(`Service ${svc.binary} is part of the control plane and cannot be deleted.`);
        const h = svc.hostRow;
        const busy = await ctx.db.selectFrom('compute_servers').select('id').where('host', '=', h.hostname).where('deleted_at', 'is', null).executeTakeFirst();
        if (busy) throw conflict('Unable to delete compute service that is hosting instances. Migrate or delete the instances first.');
        await ctx.db.transaction().execute(async (tx) => {
          await removeProvider(tx, h.id);
          await tx.deleteFrom('compute_host_numbers').where('host_id', '=', h.id).execute();
          await tx.deleteFrom('compute_hosts').where('id', '=', h.id).execute();
        });
      },
    }),
  ];
}

/** What `uptime` prints, for a host (this process's host when the agent runs here). */
function uptimeText(h: HostRow): string {
  const now = new Date();
  const seconds = h.hostname === osHostname() ? osUptime() : Math.max(0, (Date.now() - Date.parse(h.created_at)) / 1000);
  const days = Math.floor(seconds / 86400);
  const hh = Math.floor((seconds % 86400) / 3600);
  const mm = Math.floor((seconds % 3600) / 60);
  const clock = now.toISOString().slice(11, 19);
  return ` ${clock} up ${days ? `${days} days, ` : ''}${hh}:${String(mm).padStart(2, '0')},  0 users,  load average: 0.00, 0.00, 0.00`;
}

