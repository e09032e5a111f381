// Routers (Neutron's router, ext-gw-mode, extraroute and extraroute-atomic
// extensions). A router's gateway is a `network:router_gateway` port on an
// external network and each interface a `network:router_interface` port on a
// tenant subnet (taking the subnet's gateway_ip, or the address of a port the
// caller hands over); both carry the router's id as device_id and its host as
// binding:host_id, so IPAM never gives their addresses twice and the network
// and subnet in-use rules hold for them as for any port. One transaction per
// change: nothing is half-applied.
import { Type } from 'typebox';
import type { Kysely } from 'kysely';
import { uuid } from '../common/ids.ts';
import type { Credentials } from '../http/auth.ts';
import { isAdmin } from '../http/policy.ts';
import { route, type Route, type RouteContext } from '../http/service.ts';
import type { NetworkContext } from './context.ts';
import { badResource, conflict, ipExhausted, NeutronError, notFound, policyDenied } from './errors.ts';
import { allocate, fixedIpsOf, type FixedIp, type FixedIpRequest } from './ipam.ts';
import { cidrRange, formatCidr, inCidr, parseCidr, parseIp, rangesOverlap } from './ipnet.ts';
import type { View } from './list.ts';
import { ROUTER_GATEWAY, ROUTER_INTERFACE, type NetworkRow } from './networks.ts';
import { adminOnly } from './policy.ts';
import { newMac, removePort, type PortRow } from './ports.ts';
import { checkQuota } from './quotas.ts';
import { bool, bumpRevision, createRoute, ifMatchRevision, int, newStandard, projectFor, Resources, standardView, type ResourceDef } from './resource.ts';
import { retryOnCollision } from './retry.ts';
import type { NetworkTables } from './schema.ts';
import type { SubnetRow } from './subnets.ts';

export type RouterRow = NetworkTables['network_routers'];
/** Neutron's max_routes. */
const MAX_ROUTES = 30;

const RouteT = Type.Object({ destination: Type.String(), nexthop: Type.String() }, { additionalProperties: false });
// `{}` clears the gateway like null (what clients send to unset it)
const GatewayT = Type.Union([Type.Null(), Type.Object({
  network_id: Type.Optional(Type.String()), enable_snat: Type.Optional(Type.Boolean()),
  external_fixed_ips: Type.Optional(Type.Array(Type.Object({ subnet_id: Type.Optional(Type.String()), ip_address: Type.Optional(Type.String()) }, { additionalProperties: false }))),
}, { additionalProperties: false })]);
const Mutable = {
  name: Type.Optional(Type.String({ maxLength: 255 })), description: Type.Optional(Type.String({ maxLength: 255 })),
  admin_state_up: Type.Optional(Type.Boolean()), external_gateway_info: Type.Optional(GatewayT),
  distributed: Type.Optional(Type.Boolean()), ha: Type.Optional(Type.Boolean()),
};
const CreateItem = Type.Object({
  ...Mutable, project_id: Type.Optional(Type.String({ maxLength: 255 })), tenant_id: Type.Optional(Type.String({ maxLength: 255 })),
  availability_zone_hints: Type.Optional(Type.Array(Type.String())),
}, { additionalProperties: false });
const UpdateBody = Type.Object({
  router: Type.Object({ ...Mutable, routes: Type.Optional(Type.Union([Type.Array(RouteT), Type.Null()])) }, { additionalProperties: false }),
}, { additionalProperties: false });
const RoutesBody = Type.Object({ router: Type.Object({ routes: Type.Array(RouteT) }, { additionalProperties: false }) }, { additionalProperties: false });
const InterfaceBody = Type.Object({ subnet_id: Type.Optional(Type.String()), port_id: Type.Optional(Type.String()) }, { additionalProperties: false });

interface HostRoute { destination: string; nexthop: string }

export function routerDef(ctx: NetworkContext): ResourceDef<RouterRow> {
  const db = ctx.db as unknown as Kysely<any>;
  return {
    kind: 'router', table: 'network_routers', resource: 'router', collection: 'routers',
    attrs: { name: 'string', admin_state_up: 'bool', status: 'string', external_gateway_info: 'none', routes: 'none', distributed: 'bool', ha: 'bool' },
    visible: (q, c) => q.where('network_routers.project_id', '=', c.projectId),
    async views(rows, cred) {
      const tags = await new Resources(ctx, this).tags(rows.map((r) => r.id));
      const gws = rows.map((r) => r.gw_port_id).filter((p): p is string => !!p);
      const ips = await fixedIpsOf(db, gws);
      return rows.map((r) => routerView(r, tags.get(r.id) ?? [], r.gw_port_id ? ips.get(r.gw_port_id) ?? [] : [], cred));
    },
  };
}

function routerView(r: RouterRow, tags: string[], gwIps: FixedIp[], cred: Credentials): View {
  const v: View = {
    ...standardView(r, tags), name: r.name, admin_state_up: bool(r.admin_state_up), status: r.status,
    external_gateway_info: r.gw_network_id ? { network_id: r.gw_network_id, enable_snat: bool(r.enable_snat), external_fixed_ips: gwIps } : null,
    routes: JSON.parse(r.routes),
  };
  if (isAdmin(cred)) Object.assign(v, { distributed: false, ha: false });
  return v;
}

/** A port of the router (interface or gateway) with its addresses; in the caller's transaction. */
async function makeRouterPort(tx: Kysely<any>, o: {
  macPrefix: string; router: RouterRow; projectId: string; networkId: string; owner: string; requested?: FixedIpRequest[];
}): Promise<string> {
  const id = uuid();
  const mac = newMac(o.macPrefix);
  await tx.insertInto('network_ports').values({
    ...newStandard(id, o.projectId, undefined), network_id: o.networkId, name: '', mac_address: mac, admin_state_up: 1, status: 'ACTIVE',
    device_id: o.router.id, device_owner: o.owner, port_security_enabled: 0, allowed_address_pairs: '[]',
    binding_host_id: o.router.host, binding_vnic_type: 'normal', binding_vif_type: o.router.host ? 'bridge' : 'unbound', binding_profile: '{}', binding_vif_details: '{}', dns_name: '',
  }).execute();
  const subnets = await tx.selectFrom('network_subnets').selectAll().where('network_id', '=', o.networkId).orderBy('created_at').orderBy('id').execute() as SubnetRow[];
  await allocate(tx, { networkId: o.networkId, subnets, portId: id, mac, deviceOwner: o.owner, requested: o.requested });
  return id;
}

/** The router's interface ports with their addresses. */
export async function interfacesOf(tx: Kysely<any>, routerId: string): Promise<Array<PortRow & { ips: FixedIp[] }>> {
  const ports = await tx.selectFrom('network_ports').selectAll().where('device_id', '=', routerId).where('device_owner', '=', ROUTER_INTERFACE)
    .orderBy('created_at').orderBy('id').execute() as PortRow[];
  const ips = await fixedIpsOf(tx, ports.map((p) => p.id));
  return ports.map((p) => ({ ...p, ips: ips.get(p.id) ?? [] }));
}

/** Checks extraroute routes against the router's connected subnets (Neutron's InvalidRoutes). */
async function checkRoutes(tx: Kysely<any>, router: RouterRow, routes: HostRoute[]): Promise<HostRoute[]> {
  const invalid = (reason: string) => new NeutronError('BadRequest', 'InvalidRoutes', `Invalid format for routes: ${JSON.stringify(routes)}, ${reason}`);
  if (routes.length > MAX_ROUTES) {
    throw new NeutronError('BadRequest', 'RoutesExhausted', `Unable to complete operation for ${router.id}. The number of routes exceeds the maximum ${MAX_ROUTES}.`);
  }
  const ports = await interfacesOf(tx, router.id);
  const gwIps = router.gw_port_id ? (await fixedIpsOf(tx, [router.gw_port_id])).get(router.gw_port_id) ?? [] : [];
  const own = [...ports.flatMap((p) => p.ips), ...gwIps];
  const subnets = own.length ? await tx.selectFrom('network_subnets').select(['id', 'cidr']).where('id', 'in', own.map((i) => i.subnet_id)).execute() : [];
  const out: HostRoute[] = [];
  for (const r of routes) {
    const dest = parseCidr(r.destination, false);
    const hop = parseIp(r.nexthop);
    if (!dest) throw invalid(`'${r.destination}' is not a valid IP subnet`);
    if (!hop) throw invalid(`'${r.nexthop}' is not a valid IP address`);
    if (dest.version !== hop.version) throw invalid('the nexthop and the destination are of different IP versions');
    if (own.some((i) => parseIp(i.ip_address)?.value === hop.value)) throw invalid('the nexthop is used by router');
    if (!subnets.some((s) => { const c = parseCidr(s.cidr, false); return c && c.version === hop.version && inCidr(c, hop.value); })) {
      throw invalid('the nexthop is not connected with router');
    }
    const route = { destination: formatCidr(dest), nexthop: r.nexthop };
    if (!out.some((o) => o.destination === route.destination && o.nexthop === route.nexthop)) out.push(route);
  }
  return out;
}

export function routerRoutes(ctx: NetworkContext, routers: Resources<RouterRow>, networks: Resources<NetworkRow>, ports: Resources<PortRow>, subnets: Resources<SubnetRow>): Route[] {
  const db = ctx.db as unknown as Kysely<any>;
  const macPrefix = ctx.config.macPrefix;

  /** Sets, replaces or clears the router's gateway; in the caller's transaction (the router row bumped). */
  async function setGateway(tx: Kysely<any>, cred: Credentials, router: RouterRow, gw: { network_id: string; enable_snat?: boolean; external_fixed_ips?: FixedIpRequest[] } | null): Promise<void> {
    if (gw && router.gw_network_id === gw.network_id && gw.external_fixed_ips === undefined) {
      if (gw.enable_snat !== undefined) await tx.updateTable('network_routers').set({ enable_snat: int(gw.enable_snat) }).where('id', '=', router.id).execute();
      return;
    }
    if (router.gw_network_id && (!gw || gw.network_id !== router.gw_network_id)) {
      const fip = await tx.selectFrom('network_floatingips').select('id').where('router_id', '=', router.id).where('floating_network_id', '=', router.gw_network_id).executeTakeFirst();
      if (fip) {
        throw conflict('RouterExternalGatewayInUseByFloatingIp',
          `Gateway cannot be updated for router ${router.id}, since a gateway to external network ${router.gw_network_id} is required by one or more floating IPs.`);
      }
    }
    let keepIps: FixedIp[] = [];
    if (router.gw_port_id) {
      keepIps = (await fixedIpsOf(tx, [router.gw_port_id])).get(router.gw_port_id) ?? [];
      await removePort(tx, router.gw_port_id);
    }
    if (!gw) {
      await tx.updateTable('network_routers').set({ gw_network_id: null, gw_port_id: null, enable_snat: 1 }).where('id', '=', router.id).execute();
      return;
    }
    const net = await networks.find(cred, gw.network_id, tx);
    if (!bool(net.external)) throw badResource('router', `Network ${gw.network_id} is not an external network`);
    const subnetsOfNet = await tx.selectFrom('network_subnets').select('id').where('network_id', '=', net.id).execute();
    if (!subnetsOfNet.length) throw badResource('router', `Network ${gw.network_id} has no subnets`);
    // the same network again with other fixed IPs: the addresses named and kept stay the router's
    const requested = gw.external_fixed_ips?.length ? gw.external_fixed_ips.map((f) => ({ ...f }))
      : router.gw_network_id === gw.network_id && keepIps.length ? keepIps.map((k) => ({ subnet_id: k.subnet_id, ip_address: k.ip_address })) : undefined;
    const portId = await makeRouterPort(tx, { macPrefix, router, projectId: '', networkId: net.id, owner: ROUTER_GATEWAY, requested });
    await tx.updateTable('network_routers').set({ gw_network_id: net.id, gw_port_id: portId, enable_snat: int(gw.enable_snat ?? true) }).where('id', '=', router.id).execute();
  }

  /** The gateway a body asks for: null for null or `{}`, else it must name its network. */
  const gatewayOf = (g: { network_id?: string; enable_snat?: boolean; external_fixed_ips?: FixedIpRequest[] } | null): { network_id: string; enable_snat?: boolean; external_fixed_ips?: FixedIpRequest[] } | null => {
    if (g === null || Object.keys(g).length === 0) return null;
    if (g.network_id === undefined) throw badResource('router', 'external_gateway_info needs a network_id');
    return { ...g, network_id: g.network_id };
  };

  const checkGatewayPolicy = (cred: Credentials, action: string, gw: { enable_snat?: boolean; external_fixed_ips?: FixedIpRequest[] } | null | undefined) => {
    if (!gw || isAdmin(cred)) return;
    if (gw.enable_snat !== undefined) throw policyDenied(`${action}:external_gateway_info:enable_snat`);
    if (gw.external_fixed_ips?.some((f) => f.ip_address !== undefined)) throw policyDenied(`${action}:external_gateway_info:external_fixed_ips`);
  };
  const checkFlags = (cred: Credentials, action: string, b: { distributed?: boolean; ha?: boolean }) => {
    adminOnly(cred, action, b, ['distributed', 'ha']);
    if (b.distributed || b.ha) throw badResource('router', 'distributed and HA routers are not supported');
  };

  const hasV6 = (p: { ips: FixedIp[] }) => p.ips.some((i) => parseIp(i.ip_address)?.version === 6);
  const interfaceInfo = (router: RouterRow, port: PortRow, ips: FixedIp[]) => ({
    id: router.id, tenant_id: router.project_id, project_id: router.project_id, port_id: port.id, network_id: port.network_id,
    subnet_id: ips[0]?.subnet_id, subnet_ids: ips.map((i) => i.subnet_id),
  });

  /** The router the caller may change, its row locked by the revision bump. */
  const lockRouter = async (tx: Kysely<any>, rc: RouteContext, action: string, expected: number | null = null): Promise<RouterRow> => {
    const id = rc.params.id!;
    await routers.findOwn(rc.cred!, id, action, tx);
    await bumpRevision(tx, 'network_routers', id, expected, 'router');
    return await tx.selectFrom('network_routers').selectAll().where('id', '=', id).executeTakeFirstOrThrow() as RouterRow;
  };

  const changeRoutes = (action: 'add_extraroutes' | 'remove_extraroutes') => route({
    method: 'PUT', path: `/v2.0/routers/:id/${action}`, rule: action, schema: { body: RoutesBody },
    async handler(rc) {
      await db.transaction().execute(async (tx) => {
        const router = await lockRouter(tx, rc, action);
        const now = JSON.parse(router.routes) as HostRoute[];
        const asked = rc.body.router.routes as HostRoute[];
        const key = (r: HostRoute) => `${formatCidr(parseCidr(r.destination, false) ?? { version: 4, network: 0n, prefix: 0 })}|${r.nexthop}`;
        let next: HostRoute[];
        if (action === 'add_extraroutes') next = await checkRoutes(tx, router, [...now, ...asked]);
        else {
          const gone = new Set(asked.map(key));
          next = now.filter((r) => !gone.has(key(r)));
        }
        await tx.updateTable('network_routers').set({ routes: JSON.stringify(next) }).where('id', '=', router.id).execute();
      });
      return { router: await routers.view(rc.cred!, rc.params.id!) };
    },
  });

  return [
    ...routers.routes(),
    createRoute({
      def: routers.def, rule: 'create_router', item: CreateItem, view: (cred, id) => routers.view(cred, id),
      undo: (id) => db.transaction().execute(async (tx) => {
        const r = await tx.selectFrom('network_routers').select('gw_port_id').where('id', '=', id).executeTakeFirst();
        if (r?.gw_port_id) await removePort(tx, r.gw_port_id);
        await tx.deleteFrom('network_routers').where('id', '=', id).execute();
      }),
      async create(rc, b) {
        const cred = rc.cred!;
        checkFlags(cred, 'create_router', b);
        checkGatewayPolicy(cred, 'create_router', b.external_gateway_info);
        const projectId = projectFor(cred, b, 'create_router');
        const id = uuid();
        await retryOnCollision(() => db.transaction().execute(async (tx) => {
          await checkQuota(tx, projectId, 'router');
          const row: RouterRow = {
            ...newStandard(id, projectId, b.description), name: b.name ?? '', admin_state_up: int(b.admin_state_up ?? true), status: 'ACTIVE',
            gw_network_id: null, gw_port_id: null, enable_snat: 1, routes: '[]', host: '',
          };
          await tx.insertInto('network_routers').values(row).execute();
          const gw = gatewayOf(b.external_gateway_info ?? null);
          if (gw) await setGateway(tx, cred, row, gw);
        }), () => ipExhausted(b.external_gateway_info?.network_id ?? ''));
        return id;
      },
    }),
    route({
      method: 'PUT', path: '/v2.0/routers/:id', rule: 'update_router', schema: { body: UpdateBody },
      async handler(rc) {
        const cred = rc.cred!;
        const b = rc.body.router;
        checkFlags(cred, 'update_router', b);
        checkGatewayPolicy(cred, 'update_router', b.external_gateway_info);
        const expected = ifMatchRevision(rc);
        await retryOnCollision(() => db.transaction().execute(async (tx) => {
          const router = await lockRouter(tx, rc, 'update_router', expected);
          const set: Partial<RouterRow> = {};
          if (b.name !== undefined) set.name = b.name;
          if (b.description !== undefined) set.description = b.description;
          if (b.admin_state_up !== undefined) set.admin_state_up = int(b.admin_state_up);
          if (Object.keys(set).length) await tx.updateTable('network_routers').set(set).where('id', '=', router.id).execute();
          if (b.external_gateway_info !== undefined) {
            await setGateway(tx, cred, router, gatewayOf(b.external_gateway_info));
            // routes through the old gateway's subnet must still be reachable
            const now = await tx.selectFrom('network_routers').selectAll().where('id', '=', router.id).executeTakeFirstOrThrow() as RouterRow;
            if (b.routes === undefined) await checkRoutes(tx, now, JSON.parse(now.routes));
          }
          if (b.routes !== undefined) {
            const now = await tx.selectFrom('network_routers').selectAll().where('id', '=', router.id).executeTakeFirstOrThrow() as RouterRow;
            await tx.updateTable('network_routers').set({ routes: JSON.stringify(await checkRoutes(tx, now, b.routes ?? [])) }).where('id', '=', router.id).execute();
          }
        }), () => ipExhausted(b.external_gateway_info?.network_id ?? ''));
        return { router: await routers.view(cred, rc.params.id!) };
      },
    }),
    route({
      method: 'DELETE', path: '/v2.0/routers/:id', rule: 'delete_router', status: 204,
      async handler(rc) {
        const expected = ifMatchRevision(rc);
        await db.transaction().execute(async (tx) => {
          const router = await lockRouter(tx, rc, 'delete_router', expected);
          if ((await interfacesOf(tx, router.id)).length) throw conflict('RouterInUse', `Router ${router.id} still has ports`);
          const fip = await tx.selectFrom('network_floatingips').select('id').where('router_id', '=', router.id).executeTakeFirst();
          if (fip) throw conflict('RouterInUse', `Router ${router.id} still has floating IPs`);
          if (router.gw_port_id) await removePort(tx, router.gw_port_id);
          await tx.deleteFrom('network_tags').where('resource_type', '=', 'routers').where('resource_id', '=', router.id).execute();
          await tx.deleteFrom('network_routers').where('id', '=', router.id).execute();
        });
      },
    }),
    route({
      method: 'PUT', path: '/v2.0/routers/:id/add_router_interface', rule: 'add_router_interface', schema: { body: InterfaceBody },
      async handler(rc) {
        const cred = rc.cred!;
        const b = rc.body;
        if (b.subnet_id !== undefined && b.port_id !== undefined) throw badResource('router', 'Cannot specify both subnet-id and port-id');
        if (b.subnet_id === undefined && b.port_id === undefined) throw badResource('router', 'Either subnet_id or port_id must be specified');
        return await retryOnCollision(() => db.transaction().execute(async (tx) => {
          const router = await lockRouter(tx, rc, 'add_router_interface');
          const attached = await interfacesOf(tx, router.id);
          const attachedSubnets = attached.flatMap((p) => p.ips.map((i) => i.subnet_id));
          const attachedRows = attachedSubnets.length ? await tx.selectFrom('network_subnets').selectAll().where('id', 'in', attachedSubnets).execute() as SubnetRow[] : [];
          const checkSubnet = (s: SubnetRow) => {
            if (attachedSubnets.includes(s.id)) throw badResource('router', `Router already has a port on subnet ${s.id}`);
            const mine = cidrRange(parseCidr(s.cidr, false)!);
            for (const o of attachedRows) {
              const c = parseCidr(o.cidr, false)!;
              if (c.version === parseCidr(s.cidr, false)!.version && rangesOverlap(cidrRange(c), mine)) {
                throw badResource('router', `Cidr ${s.cidr} of subnet ${s.id} overlaps with cidr ${o.cidr} of subnet ${o.id}`);
              }
            }
          };
          if (b.port_id !== undefined) {
            const port = await ports.find(cred, b.port_id, tx);
            if (!isAdmin(cred) && port.project_id !== router.project_id) throw notFound.port(port.id);
            if (port.device_id !== '' || port.device_owner !== '') {
              throw conflict('PortInUse', `Unable to complete operation on port ${port.id} for network ${port.network_id}. Port already has an attached device ${port.device_id}.`);
            }
            const ips = (await fixedIpsOf(tx, [port.id])).get(port.id) ?? [];
            if (!ips.length) throw badResource('router', 'Router port must have at least one fixed IP');
            const subs = await tx.selectFrom('network_subnets').selectAll().where('id', 'in', [...new Set(ips.map((i) => i.subnet_id))]).execute() as SubnetRow[];
            if (subs.filter((s) => s.ip_version === 4).length > 1) throw badResource('router', 'Cannot have multiple IPv4 subnets on router port');
            // one router port per network carries its IPv6 subnets (Neutron's rule)
            const v6Port = ips.some((i) => parseIp(i.ip_address)?.version === 6) ? attached.find((p) => p.network_id === port.network_id && hasV6(p)) : undefined;
            if (v6Port) {
              throw badResource('router', `Cannot have multiple router ports with the same network id if both contain IPv6 subnets. Existing port ${v6Port.id} has IPv6 subnet(s) and network id ${port.network_id}`);
            }
            subs.forEach(checkSubnet);
            await tx.updateTable('network_ports').set({ device_id: router.id, device_owner: ROUTER_INTERFACE, binding_host_id: router.host, binding_vif_type: router.host ? 'bridge' : 'unbound', status: 'ACTIVE' })
              .where('id', '=', port.id).execute();
            await tx.deleteFrom('network_port_security_groups').where('port_id', '=', port.id).execute();
            return interfaceInfo(router, port, ips);
          }
          const subnet = await subnets.find(cred, b.subnet_id!, tx);
          const net = await networks.find(cred, subnet.network_id, tx);
          if (!isAdmin(cred) && net.project_id !== router.project_id && !bool(net.shared)) throw notFound.subnet(subnet.id);
          if (!subnet.gateway_ip) throw badResource('router', 'Subnet for router interface must have a gateway IP');
          // addresses from RAs of a router outside the cloud: this router must not advertise too (Neutron's rule)
          if (subnet.ip_version === 6 && subnet.ipv6_ra_mode === null && subnet.ipv6_address_mode !== null) {
            throw badResource('router', `IPv6 subnet ${subnet.id} configured to receive RAs from an external router cannot be added to Neutron Router.`);
          }
          checkSubnet(subnet);
          // an IPv6 subnet joins the router's port on its network that already has IPv6 subnets (Neutron's multi-prefix port)
          const v6Port = subnet.ip_version === 6 ? attached.find((p) => p.network_id === subnet.network_id && hasV6(p)) : undefined;
          if (v6Port) {
            const [ip] = await allocate(tx, {
              networkId: subnet.network_id, subnets: [subnet], portId: v6Port.id, mac: v6Port.mac_address, deviceOwner: ROUTER_INTERFACE,
              requested: [{ subnet_id: subnet.id, ip_address: subnet.gateway_ip }],
            });
            await bumpRevision(tx, 'network_ports', v6Port.id, null, 'port');
            return interfaceInfo(router, v6Port, [ip!]);
          }
          const portId = await makeRouterPort(tx, {
            macPrefix, router, projectId: router.project_id, networkId: subnet.network_id, owner: ROUTER_INTERFACE,
            requested: [{ subnet_id: subnet.id, ip_address: subnet.gateway_ip }],
          });
          const port = await tx.selectFrom('network_ports').selectAll().where('id', '=', portId).executeTakeFirstOrThrow() as PortRow;
          return interfaceInfo(router, port, (await fixedIpsOf(tx, [portId])).get(portId) ?? []);
        }), () => ipExhausted(b.subnet_id ?? ''));
      },
    }),
    route({
      method: 'PUT', path: '/v2.0/routers/:id/remove_router_interface', rule: 'remove_router_interface', schema: { body: InterfaceBody },
      async handler(rc) {
        const b = rc.body;
        if (b.subnet_id === undefined && b.port_id === undefined) throw badResource('router', 'Either subnet_id or port_id must be specified');
        return await db.transaction().execute(async (tx) => {
          const router = await lockRouter(tx, rc, 'remove_router_interface');
          const attached = await interfacesOf(tx, router.id);
          const port = b.port_id !== undefined ? attached.find((p) => p.id === b.port_id) : attached.find((p) => p.ips.some((i) => i.subnet_id === b.subnet_id));
          if (!port && b.port_id !== undefined) throw new NeutronError('NotFound', 'RouterInterfaceNotFound', `Router ${router.id} does not have an interface with id ${b.port_id}`);
          if (!port) throw new NeutronError('NotFound', 'RouterInterfaceNotFoundForSubnet', `Router ${router.id} has no interface on subnet ${b.subnet_id}`);
          if (b.port_id !== undefined && b.subnet_id !== undefined && !port.ips.some((i) => i.subnet_id === b.subnet_id)) {
            throw new NeutronError('Conflict', 'SubnetMismatchForPort', `Subnet on port ${port.id} does not match the requested subnet ${b.subnet_id}.`);
          }
          // by subnet from a port with other subnets (an IPv6 multi-prefix port): only that subnet's address goes
          const partial = b.port_id === undefined && port.ips.some((i) => i.subnet_id !== b.subnet_id);
          const subnetIds = partial ? [b.subnet_id!] : port.ips.map((i) => i.subnet_id);
          // a floating IP whose fixed address is on the subnet reaches it through this interface
          const fixed = subnetIds.length ? await tx.selectFrom('network_ip_allocations').select(['port_id', 'ip_address', 'subnet_id']).where('subnet_id', 'in', subnetIds).execute() : [];
          const fips = await tx.selectFrom('network_floatingips').select(['port_id', 'fixed_ip_address']).where('router_id', '=', router.id).execute();
          const pfs = await tx.selectFrom('network_port_forwardings as pf').innerJoin('network_floatingips as f', 'f.id', 'pf.floatingip_id')
            .select(['pf.internal_port_id as port_id', 'pf.internal_ip_address as fixed_ip_address']).where('f.router_id', '=', router.id).execute();
          const needing = [...fips, ...pfs].find((f) => fixed.some((a) => a.port_id === f.port_id && a.ip_address === f.fixed_ip_address));
          if (needing) {
            const s = fixed.find((a) => a.port_id === needing.port_id && a.ip_address === needing.fixed_ip_address)!.subnet_id;
            throw conflict('RouterInterfaceInUseByFloatingIP', `Router interface for subnet ${s} on router ${router.id} cannot be deleted, as it is required by one or more floating IPs.`);
          }
          // routes whose nexthop only this interface reaches
          const rest = { ...router };
          const remaining = attached.filter((p) => p.id !== port.id);
          const reachable = remaining.flatMap((p) => p.ips.map((i) => i.subnet_id));
          if (partial) reachable.push(...port.ips.map((i) => i.subnet_id).filter((id) => id !== b.subnet_id));
          if (router.gw_port_id) reachable.push(...((await fixedIpsOf(tx, [router.gw_port_id])).get(router.gw_port_id) ?? []).map((i) => i.subnet_id));
          const reachRows = reachable.length ? await tx.selectFrom('network_subnets').select(['id', 'cidr']).where('id', 'in', reachable).execute() : [];
          for (const r of JSON.parse(rest.routes) as HostRoute[]) {
            const hop = parseIp(r.nexthop)!;
            if (!reachRows.some((s) => { const c = parseCidr(s.cidr, false); return c && c.version === hop.version && inCidr(c, hop.value); })) {
              throw conflict('RouterInterfaceInUseByRoute', `Router interface for subnet ${subnetIds[0]} on router ${router.id} cannot be deleted, as it is required by one or more routes.`);
            }
          }
          if (partial) {
            await tx.deleteFrom('network_ip_allocations').where('port_id', '=', port.id).where('subnet_id', '=', b.subnet_id!).execute();
            await bumpRevision(tx, 'network_ports', port.id, null, 'port');
            return interfaceInfo(router, port, port.ips.filter((i) => i.subnet_id === b.subnet_id));
          }
          const info = interfaceInfo(router, port, port.ips);
          await removePort(tx, port.id);
          return info;
        });
      },
    }),
    changeRoutes('add_extraroutes'),
    changeRoutes('remove_extraroutes'),
  ];
}
