// Nova's floating IP proxies for a Neutron-backed cloud, below microversion
// 2.36 (404 from 2.36, as Nova): /os-floating-ips lists, allocates, shows and
// releases the project's floating IPs (a pool is an external network, by
// name or id; none: the default external network), /os-floating-ip-pools
// names the external networks; the addFloatingIp and removeFloatingIp server
// actions (below 2.44) associate a floating IP with the server's port holding
// a fixed address and take it off again. The network service keeps the
// floating IP rules (src/network/floating-ips.ts); the statuses and messages
// here are Nova's mapping of Neutron's answers.
import { Type } from 'typebox';
import { ApiError, badRequest, conflict, forbidden, notFound } from '../../common/errors.ts';
import { route, type Route, type RouteContext } from '../../http/service.ts';
import type { ServerNetworking } from '../../network/service.ts';
import type { ComputeContext } from './context.ts';
import { isUuid, mv, validate, versioned } from './http.ts';
import { isComputeAdmin } from './policy.ts';
import { forgetServer, type ServerRow } from './servers-store.ts';

type ProxyFloatingIp = Awaited<ReturnType<ServerNetworking['floatingIps']>>[number];

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const isIp = (s: string) => IPV4.test(s) || (s.includes(':') && /^[0-9a-fA-F:.]+$/.test(s));

const CreateBody = Type.Union([Type.Null(), Type.Object({ pool: Type.Optional(Type.Union([Type.String(), Type.Null()])) }, { additionalProperties: false })]);
const AddBody = Type.Object({ address: Type.String(), fixed_address: Type.Optional(Type.String()) }, { additionalProperties: false });
const RemoveBody = Type.Object({ address: Type.String() }, { additionalProperties: false });

const view = (f: ProxyFloatingIp) => ({ id: f.id, ip: f.ip, pool: f.pool, fixed_ip: f.fixed_ip, instance_id: f.instance_id });

function network(ctx: ComputeContext): ServerNetworking {
  if (!ctx.network) throw notFound('Floating IPs need the network service: this cloud runs compute without networking.');
  return ctx.network;
}

/** The floating IPs the caller may name: its project's (an admin: any, as Neutron shows them); the list is always the project's own, as Nova asks Neutron for it. */
const scope = (rc: RouteContext): string | null => isComputeAdmin(rc.cred) ? null : rc.cred?.projectId ?? '';

const ipField = (field: string, value: string) =>
  badRequest(`Invalid input for field/attribute ${field}. Value: ${value}. '${value}' is not a 'ip-address'`);

export function floatingIpRoutes(ctx: ComputeContext): Route[] {
  const own = (rc: RouteContext) => ({ project_id: rc.cred?.projectId ?? undefined });
  const proxy = (r: Route) => versioned(r, undefined, '2.35');
  const one = async (rc: RouteContext): Promise<ProxyFloatingIp> => {
    const id = rc.params.id!;
    const found = isUuid(id) ? (await network(ctx).floatingIps(scope(rc), { id }))[0] : undefined;
    if (!found) throw notFound(`Floating IP not found for ID ${id}`);
    return found;
  };

  return [
    proxy(route({ method: 'GET', path: '/v2.1/os-floating-ips', rule: 'os_compute_api:os-floating-ips:list', target: own,
      handler: async (rc) => ({ floating_ips: ctx.network ? (await ctx.network.floatingIps(rc.cred?.projectId ?? '')).map(view) : [] }) })),
    proxy(route({ method: 'GET', path: '/v2.1/os-floating-ips/:id', rule: 'os_compute_api:os-floating-ips:show', target: own,
      handler: async (rc) => ({ floating_ip: view(await one(rc)) }) })),
    proxy(route({
      method: 'POST', path: '/v2.1/os-floating-ips', rule: 'os_compute_api:os-floating-ips:create', target: own,
      async handler(rc) {
        const pool = validate(CreateBody, rc.body ?? null)?.pool ?? null;
        const net = network(ctx);
        let id: string;
        try {
          id = await net.allocateFloatingIp(rc.cred!.projectId ?? '', pool);
        } catch (err) {
          const type = err instanceof ApiError ? (err as { type?: string }).type : undefined;
          if (type === 'IpAddressGenerationFailure') throw notFound(pool ? `No more floating IPs in pool ${pool}.` : 'No more floating IPs available.');
          if (type === 'OverQuota') throw forbidden(pool ? `IP allocation over quota in pool ${pool}.` : 'IP allocation over quota.');
          if (type === 'FloatingIpPoolNotFound') throw notFound((err as Error).message);
          if (err instanceof ApiError && err.status === 400) throw badRequest(err.message);
          throw err;
        }
        return { floating_ip: view((await net.floatingIps(null, { id }))[0]!) };
      },
    })),
    proxy(route({
      method: 'DELETE', path: '/v2.1/os-floating-ips/:id', rule: 'os_compute_api:os-floating-ips:delete', target: own, status: 202,
      async handler(rc) {
        const f = await one(rc);
        await network(ctx).releaseFloatingIp(f.id);
        if (f.instance_id) forgetServer(rc);
      },
    })),
    proxy(route({ method: 'GET', path: '/v2.1/os-floating-ip-pools', rule: 'os_compute_api:os-floating-ip-pools:list', target: own,
      handler: async () => ({ floating_ip_pools: (ctx.network ? await ctx.network.floatingIpPools() : []).map((name) => ({ name })) }) })),
  ];
}

/** The floating IP at `address` the caller sees: 404 none, 409 several (Nova's FloatingIpMultipleFoundForAddress). */
async function byAddress(net: ServerNetworking, rc: RouteContext, address: string): Promise<ProxyFloatingIp> {
  const found = await net.floatingIps(scope(rc), { address });
  if (!found.length) throw notFound(`Floating IP not found for address ${address}.`);
  if (found.length > 1) throw conflict(`Multiple floating IPs are found for address ${address}.`);
  return found[0]!;
}

/** The addFloatingIp / removeFloatingIp server actions (below 2.44: no such action from 2.44, Nova's 404). */
export async function serverFloatingIpAction(ctx: ComputeContext, rc: RouteContext, s: ServerRow, action: 'addFloatingIp' | 'removeFloatingIp', arg: unknown): Promise<void> {
  if (mv(rc).ge('2.44')) throw notFound('The resource could not be found.');
  if (action === 'removeFloatingIp') {
    const { address } = validate(RemoveBody, arg);
    if (!isIp(address)) throw ipField('address', address);
    const net = network(ctx);
    const f = await byAddress(net, rc, address);
    if (!f.port_id || f.instance_id !== s.id) throw conflict(`Floating IP ${address} is not associated with instance ${s.id}.`);
    await net.disassociateFloatingIp(f.id);
    forgetServer(rc);
    return;
  }
  const body = validate(AddBody, arg);
  if (!isIp(body.address)) throw ipField('address', body.address);
  if (body.fixed_address !== undefined && !isIp(body.fixed_address)) throw ipField('fixed_address', body.fixed_address);
  const net = network(ctx);
  // Nova reads the server's network info cache: its ports' fixed addresses
  const fixedIps = (await net.interfaces(s.id)).flatMap((i) => i.fixed_ips.map((ip) => ip.ip_address));
  if (!fixedIps.length) throw badRequest('Instance network is not ready yet');
  let fixed = body.fixed_address;
  if (fixed !== undefined) {
    if (!fixedIps.includes(fixed)) throw badRequest('Specified fixed address not assigned to instance');
  } else {
    fixed = fixedIps.find((ip) => IPV4.test(ip));
    if (!fixed) {
      throw badRequest(`Unable to associate floating IP ${body.address} to any fixed IPs for instance ${s.id}. Instance has no fixed IPv4 addresses to associate.`);
    }
  }
  let f: ProxyFloatingIp;
  try {
    f = await byAddress(net, rc, body.address);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) throw notFound('floating IP not found');
    throw err;
  }
  try {
    await net.associateFloatingIp(f.id, s.id, fixed);
  } catch (err) {
    // Neutron's refusals (no router from the port's subnet, a fixed IP with a floating IP already, port forwardings): Nova's 400
    if (err instanceof ApiError && err.status !== 500) {
      throw badRequest(`Unable to associate floating IP ${body.address} to fixed IP ${fixed} for instance ${s.id}. Error: ${err.message}`);
    }
    throw err;
  }
  forgetServer(rc);
}
