// Nova's deprecated network proxies below microversion 2.36 (404 from 2.36,
// as Nova): /os-networks and /os-tenant-networks list and show the networks
// the project may use (its own and shared ones) in Nova's shapes for a
// Neutron-backed cloud: os-networks' fields other than id and label are null
// (admins see the admin fields, null too), os-tenant-networks' cidr is the
// string "None". Their changing actions went with nova-network: 410 Gone.
// os-floating-ips and os-floating-ip-pools are in floating-ips.ts.
import { ApiError, notFound } from '../../common/errors.ts';
import { route, type Route, type RouteContext } from '../../http/service.ts';
import type { ComputeContext } from './context.ts';
import { versioned } from './http.ts';
import { isComputeAdmin } from './policy.ts';

const FIELDS = ['id', 'cidr', 'netmask', 'gateway', 'broadcast', 'dns1', 'dns2', 'cidr_v6', 'gateway_v6', 'label', 'netmask_v6'];
const ADMIN_FIELDS = ['created_at', 'updated_at', 'deleted_at', 'deleted', 'injected', 'bridge', 'vlan', 'vpn_public_address', 'vpn_public_port',
  'vpn_private_address', 'dhcp_start', 'project_id', 'host', 'bridge_interface', 'multi_host', 'priority', 'rxtx_base', 'mtu', 'dhcp_server',
  'enable_dhcp', 'share_address'];

interface NetRow { id: string; name: string }

const gone = () => new ApiError('Gone', 'Gone');

export function networkProxyRoutes(ctx: ComputeContext): Route[] {
  const own = (rc: RouteContext) => ({ project_id: rc.cred?.projectId ?? undefined });
  const proxy = (r: Route) => versioned(r, undefined, '2.35');
  /** The networks the caller may use: its project's and shared ones (an admin: all). */
  const usable = async (rc: RouteContext): Promise<NetRow[]> => {
    if (!ctx.network) return [];
    return await ctx.network.networks(isComputeAdmin(rc.cred) ? null : rc.cred?.projectId ?? '');
  };
  const one = async (rc: RouteContext): Promise<NetRow> => {
    const n = (await usable(rc)).find((x) => x.id === rc.params.id);
    if (!n) throw notFound('Network not found');
    return n;
  };
  const novaNetwork = (rc: RouteContext, n: NetRow) => {
    const fields = isComputeAdmin(rc.cred) ? [...FIELDS, ...ADMIN_FIELDS] : FIELDS;
    return Object.fromEntries(fields.map((f) => [f, f === 'id' ? n.id : f === 'label' ? n.name : null]));
  };
  const tenantNetwork = (n: NetRow) => ({ id: n.id, cidr: 'None', label: n.name });
  const goneRoute = (method: string, path: string, rule: string, status?: number) =>
    proxy(route({ method: method as 'POST', path, rule, target: own, ...(status ? { status } : {}), handler: () => { throw gone(); } }));

  return [
    proxy(route({ method: 'GET', path: '/v2.1/os-networks', rule: 'os_compute_api:os-networks:list', target: own,
      handler: async (rc) => ({ networks: (await usable(rc)).map((n) => novaNetwork(rc, n)) }) })),
    proxy(route({ method: 'GET', path: '/v2.1/os-networks/:id', rule: 'os_compute_api:os-networks:show', target: own,
      handler: async (rc) => ({ network: novaNetwork(rc, await one(rc)) }) })),
    goneRoute('POST', '/v2.1/os-networks', 'os_compute_api:os-networks:manage'),
    goneRoute('POST', '/v2.1/os-networks/add', 'os_compute_api:os-networks:manage'),
    goneRoute('DELETE', '/v2.1/os-networks/:id', 'os_compute_api:os-networks:manage'),
    goneRoute('POST', '/v2.1/os-networks/:id/action', 'os_compute_api:os-networks:manage'),
    proxy(route({ method: 'GET', path: '/v2.1/os-tenant-networks', rule: 'os_compute_api:os-tenant-networks:list', target: own,
      handler: async (rc) => ({ networks: (await usable(rc)).map(tenantNetwork) }) })),
    proxy(route({ method: 'GET', path: '/v2.1/os-tenant-networks/:id', rule: 'os_compute_api:os-tenant-networks:show', target: own,
      handler: async (rc) => ({ network: tenantNetwork(await one(rc)) }) })),
    goneRoute('POST', '/v2.1/os-tenant-networks', 'os_compute_api:os-tenant-networks:manage'),
    goneRoute('DELETE', '/v2.1/os-tenant-networks/:id', 'os_compute_api:os-tenant-networks:manage'),
  ];
}
