// Security groups through the compute API: a server's groups
// (/servers/{id}/os-security-groups, the addSecurityGroup and
// removeSecurityGroup actions, which change every port of the server), and
// Nova's deprecated proxies to the network service below microversion 2.36
// (/os-security-groups, /os-security-group-rules), which read and write the
// network service's groups and rules in Nova's shapes and with Nova's errors
// (its neutron driver's: ingress rules only, -1 for "any" ports, 400 where
// Neutron says 409 about a group's name or use).
import { sql } from 'kysely';
import { ApiError, badRequest, conflict, forbidden, notFound } from '../../common/errors.ts';
import { nowIso } from '../../common/ids.ts';
import { route, type Route, type RouteContext } from '../../http/service.ts';
import type { ServerNetworking } from '../../network/service.ts';
import type { ComputeContext } from './context.ts';
import { boolFrom, isUuid, objectOf, versioned } from './http.ts';
import { isComputeAdmin } from './policy.ts';
import { forgetServer, loadServer, serverTarget, type ServerRow } from './servers-store.ts';

type ProxyGroup = Awaited<ReturnType<ServerNetworking['groups']>>[number];
type GroupRow = Omit<ProxyGroup, 'rules'>;
type RuleRow = ProxyGroup['rules'][number];

/** Groups in Nova's shape, with their ingress rules (a remote group named by its name and project). */
async function renderGroups(net: ServerNetworking, groups: ProxyGroup[]): Promise<Array<Record<string, unknown>>> {
  const remoteIds = [...new Set(groups.flatMap((g) => g.rules).map((r) => r.remote_group_id).filter((x): x is string => !!x))];
  const remotes = new Map<string, GroupRow>((remoteIds.length ? await net.groups(null, remoteIds) : []).map((g) => [g.id, g]));
  return groups.map((g) => ({
    id: g.id, name: g.name, description: g.description, tenant_id: g.project_id,
    rules: g.rules.filter((r) => r.direction === 'ingress').map((r) => ruleView(r, remotes)),
  }));
}

/** A rule as Nova's neutron driver shows it. */
function ruleView(r: RuleRow, remotes: Map<string, GroupRow>): Record<string, unknown> {
  let from: number | null = r.port_range_min;
  let to: number | null = r.port_range_max;
  if (r.protocol && from === null && to === null) {
    [from, to] = ['tcp', 'udp'].includes(r.protocol.toLowerCase()) ? [1, 65535] : [-1, -1];
  }
  const remote = r.remote_group_id ? remotes.get(r.remote_group_id) : undefined;
  return {
    id: r.id, parent_group_id: r.security_group_id, ip_protocol: r.protocol, from_port: from, to_port: to,
    group: r.remote_group_id ? { name: remote?.name ?? '', tenant_id: remote?.project_id ?? '' } : {},
    ip_range: r.remote_group_id ? {} : { cidr: r.remote_ip_prefix ?? (r.ethertype === 'IPv6' ? '::/0' : '0.0.0.0/0') },
  };
}

/** Nova's validate_property: a string not blank and of at most 255 characters once stripped; kept as given. */
function property(value: unknown, what: string): string {
  if (typeof value !== 'string') throw badRequest(`Security group ${what} is not a string or unicode`);
  const v = value.trim();
  if (!v) throw badRequest(`Security group ${what} cannot be empty.`);
  if (v.length > 255) throw badRequest(`Security group ${what} should not be greater than 255 characters.`);
  return value;
}

function bodyOf(rc: RouteContext, key: string): Record<string, unknown> {
  if (!rc.body || typeof rc.body !== 'object') throw badRequest("The request body can't be empty");
  const v = objectOf((rc.body as Record<string, unknown>)[key]);
  if (!v) throw badRequest(`Missing parameter ${key}`);
  return v;
}

function groupId(id: string): string {
  if (!isUuid(id)) throw badRequest('Security group id should be uuid');
  return id;
}

async function loadGroup(net: ServerNetworking, rc: RouteContext, id: string): Promise<ProxyGroup> {
  const g = (await net.groups(null, [groupId(id)]))[0];
  if (!g || (!isComputeAdmin(rc.cred) && g.project_id !== rc.cred?.projectId)) throw notFound(`Security group ${id} not found.`);
  return g;
}

/** The addSecurityGroup / removeSecurityGroup actions: the group on (off) every port of the server. */
export async function serverGroupAction(ctx: ComputeContext, rc: RouteContext, s: ServerRow, action: 'addSecurityGroup' | 'removeSecurityGroup', arg: unknown): Promise<void> {
  const name = arg && typeof arg === 'object' ? (arg as { name?: unknown }).name : undefined;
  if (typeof name !== 'string' || !name.trim()) throw badRequest('Security group name cannot be empty');
  const adding = action === 'addSecurityGroup';
  if (!ctx.network) {
    // no network service: the server's recorded names, of which only default exists
    if (name !== 'default') throw notFound(`Security group ${name} not found for project ${s.project_id}.`);
    const groups = JSON.parse(s.security_groups || '[]') as string[];
    const has = groups.includes(name);
    if (adding && has) throw badRequest(`Security group ${name} is already associated with the instance ${s.id}`);
    if (!adding && !has) throw badRequest(`Security group ${name} not associated with the instance ${s.id}`);
    await setNames(ctx, s, adding ? [...groups, name] : groups.filter((g) => g !== name));
    return;
  }
  let group: { id: string; name: string };
  try {
    group = await ctx.network.findSecurityGroup(s.project_id, name);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) throw notFound(`Security group ${name} not found for project ${s.project_id}.`);
    if (err instanceof ApiError && err.status === 409) throw conflict(err.message);
    throw err;
  }
  const ports = await ctx.network.interfaces(s.id);
  if (!ports.length) {
    // no port to put it on (Nova would say 404): the server's recorded groups, as without a network service
    const groups = JSON.parse(s.security_groups || '[]') as string[];
    const has = groups.includes(group.name);
    if (adding && has) throw badRequest(`Security group ${name} is already associated with the instance ${s.id}`);
    if (!adding && !has) throw badRequest(`Security group ${name} not associated with the instance ${s.id}`);
    await setNames(ctx, s, adding ? [...groups, group.name] : groups.filter((g) => g !== group.name));
    forgetServer(rc);
    return;
  }
  const on = (await ctx.network.securityGroupsOf([s.id])).get(s.id) ?? [];
  const has = on.some((g) => g.id === group.id);
  if (!adding && !has) throw badRequest(`Security group ${name} not associated with the instance ${s.id}`);
  await ctx.network.setSecurityGroup(s.id, group.id, adding);
  const now = (await ctx.network.securityGroupsOf([s.id])).get(s.id) ?? [];
  await setNames(ctx, s, now.map((g) => g.name));
  forgetServer(rc);
}

async function setNames(ctx: ComputeContext, s: ServerRow, names: string[]): Promise<void> {
  await ctx.db.updateTable('compute_servers').set({ security_groups: JSON.stringify([...new Set(names)]), updated_at: nowIso(), version: sql`version + 1` }).where('id', '=', s.id).execute();
  if (s.host) ctx.engine.notify(s.host);
}

/** Nova's _new_ingress_rule checks: protocol tcp/udp/icmp with integer ports in range; a CIDR rule needs a protocol. */
function ruleArgs(b: Record<string, unknown>, byGroup: boolean): { protocol: string | null; from: number | null; to: number | null } | null {
  const proto = b.ip_protocol;
  if (proto === undefined || proto === null || proto === '') {
    return byGroup ? { protocol: null, from: null, to: null } : null;
  }
  const p = String(proto);
  const from = Number(b.from_port);
  const to = Number(b.to_port);
  if (b.from_port === null || b.to_port === null || b.from_port === undefined || b.to_port === undefined || !Number.isInteger(from) || !Number.isInteger(to)) {
    throw badRequest(p.toUpperCase() === 'ICMP' ? 'Invalid input received: Type and Code must be integers for ICMP protocol type' : 'Invalid input received: To and From ports must be integers');
  }
  const P = p.toUpperCase();
  if (!['TCP', 'UDP', 'ICMP'].includes(P)) throw badRequest(`Invalid IP protocol ${p}.`);
  if ((P === 'TCP' || P === 'UDP') && from > to) throw badRequest(`Invalid port range ${from}:${to}. Former value cannot be greater than the later`);
  if ((P === 'TCP' || P === 'UDP') && (from < 1 || to > 65535)) throw badRequest(`Invalid port range ${from}:${to}. Valid ${P} ports should be between 1-65535`);
  if (P === 'ICMP' && (from < -1 || from > 255 || to < -1 || to > 255)) throw badRequest(`Invalid port range ${from}:${to}. For ICMP, the type:code must be valid`);
  return { protocol: p.toLowerCase(), from: from === -1 ? null : from, to: to === -1 ? null : to };
}

export function securityGroupRoutes(ctx: ComputeContext): Route[] {
  const target = (rc: RouteContext) => serverTarget(ctx, rc);
  const own = (rc: RouteContext) => ({ project_id: rc.cred?.projectId ?? undefined });
  const proxy = (r: Route) => versioned(r, undefined, '2.35');
  const network = (): ServerNetworking => {
    if (!ctx.network) throw notFound('The resource could not be found.');
    return ctx.network;
  };
  const view = async (net: ServerNetworking, id: string) => (await renderGroups(net, await net.groups(null, [id])))[0];

  return [
    route({
      method: 'GET', path: '/v2.1/servers/:server_id/os-security-groups', rule: 'os_compute_api:os-security-groups:list', target,
      async handler(rc) {
        const s = await loadServer(ctx, rc);
        if (!ctx.network) return { security_groups: [] };
        const ids = ((await ctx.network.securityGroupsOf([s.id])).get(s.id) ?? []).map((g) => g.id);
        return { security_groups: await renderGroups(ctx.network, ids.length ? await ctx.network.groups(null, ids) : []) };
      },
    }),
    proxy(route({
      method: 'GET', path: '/v2.1/os-security-groups', rule: 'os_compute_api:os-security-groups:get', target: own,
      async handler(rc) {
        const net = network();
        const cred = rc.cred!;
        const all = rc.query.all_tenants !== undefined && isComputeAdmin(cred) && (rc.query.all_tenants === '' || boolFrom(String(rc.query.all_tenants), true));
        const rows = await net.groups(all ? null : cred.projectId ?? '');
        const offset = Math.max(0, Number(rc.query.offset ?? 0) || 0);
        const limit = rc.query.limit === undefined ? rows.length : Math.max(0, Number(rc.query.limit) || 0);
        return { security_groups: await renderGroups(net, rows.slice(offset, offset + limit)) };
      },
    })),
    proxy(route({
      method: 'GET', path: '/v2.1/os-security-groups/:id', rule: 'os_compute_api:os-security-groups:get', target: own,
      async handler(rc) {
        const net = network();
        return { security_group: (await renderGroups(net, [await loadGroup(net, rc, rc.params.id!)]))[0] };
      },
    })),
    proxy(route({
      method: 'POST', path: '/v2.1/os-security-groups', rule: 'os_compute_api:os-security-groups:create', target: own,
      async handler(rc) {
        const net = network();
        const b = bodyOf(rc, 'security_group');
        const name = property(b.name, 'name');
        const description = property(b.description, 'description');
        if (name.trim() === 'default') throw badRequest('Default security group already exists.');
        let id: string;
        try {
          id = await net.createGroup(rc.cred!.projectId ?? '', name, description);
        } catch (err) {
          if (err instanceof ApiError && err.status === 409) throw forbidden('Quota exceeded, too many security groups.');
          throw err;
        }
        return { security_group: await view(net, id) };
      },
    })),
    proxy(route({
      method: 'PUT', path: '/v2.1/os-security-groups/:id', rule: 'os_compute_api:os-security-groups:update', target: own,
      async handler(rc) {
        const net = network();
        const g = await loadGroup(net, rc, rc.params.id!);
        const b = bodyOf(rc, 'security_group');
        const name = property(b.name, 'name');
        const description = property(b.description, 'description');
        if (g.name === 'default' && name !== 'default') throw badRequest('Updating the name of a default security group is not allowed.');
        await net.updateGroup(g.id, name, description);
        return { security_group: await view(net, g.id) };
      },
    })),
    proxy(route({
      method: 'DELETE', path: '/v2.1/os-security-groups/:id', rule: 'os_compute_api:os-security-groups:delete', target: own, status: 202,
      async handler(rc) {
        const net = network();
        const g = await loadGroup(net, rc, rc.params.id!);
        try {
          await net.deleteGroup(g.id);
        } catch (err) {
          // Nova's neutron driver: the network service's 409 (the default group, a group in use) is a 400
          if (err instanceof ApiError && err.status === 409) throw badRequest(err.message);
          throw err;
        }
      },
    })),
    proxy(route({
      method: 'POST', path: '/v2.1/os-security-group-rules', rule: 'os_compute_api:os-security-groups:rule:create', target: own,
      async handler(rc) {
        const net = network();
        const b = bodyOf(rc, 'security_group_rule');
        if (typeof b.parent_group_id !== 'string' || !isUuid(b.parent_group_id)) throw badRequest('Security group id should be uuid');
        const parent = await loadGroup(net, rc, b.parent_group_id);
        let remote: GroupRow | null = null;
        if (b.group_id !== undefined && b.group_id !== null) {
          if (typeof b.group_id !== 'string' || !isUuid(b.group_id)) throw badRequest('Security group id should be uuid');
          remote = await loadGroup(net, rc, b.group_id);
        }
        // a CIDR rule's CIDR is kept as given (host bits and all), as Nova shows it back; the agent masks it
        const cidr = remote ? null : b.cidr === undefined || b.cidr === null || b.cidr === '' ? '0.0.0.0/0' : String(b.cidr);
        const args = ruleArgs(b, remote !== null);
        if (!args) throw badRequest('Not enough parameters to build a valid rule.');
        let rule: RuleRow;
        try {
          rule = await net.createRule({ groupId: parent.id, protocol: args.protocol, from: args.from, to: args.to, cidr, remoteGroupId: remote?.id ?? null });
        } catch (err) {
          if (err instanceof ApiError && err.status === 409 && (err as { type?: string }).type === 'OverQuota') throw forbidden('Quota exceeded, too many security group rules.');
          if (err instanceof ApiError && err.status === 409) throw badRequest(err.message);
          throw err;
        }
        return { security_group_rule: ruleView(rule, new Map(remote ? [[remote.id, remote]] : [])) };
      },
    })),
    proxy(route({
      method: 'DELETE', path: '/v2.1/os-security-group-rules/:id', rule: 'os_compute_api:os-security-groups:rule:delete', target: own, status: 202,
      async handler(rc) {
        const net = network();
        const id = rc.params.id!;
        if (!isUuid(id)) throw badRequest('Security group id should be uuid');
        const r = await net.findRule(id);
        if (!r || (!isComputeAdmin(rc.cred) && r.project_id !== rc.cred?.projectId)) throw notFound(`Rule (${id}) not found.`);
        await net.deleteRule(id);
      },
    })),
  ];
}
