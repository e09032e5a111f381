// Subnets: IPv4 and IPv6 (SLAAC and DHCPv6 modes), allocation pools defaulted
// from the CIDR less the gateway, DNS servers and host routes, validated as
// Neutron validates them (the same error types).
import { Type } from 'typebox';
import type { Kysely } from 'kysely';
import { uuid } from '../common/ids.ts';
import { route, type Route } from '../http/service.ts';
import type { NetworkContext } from './context.ts';
import { badRequest, conflict, invalidAttr, invalidInput, NeutronError, subnetInUse } from './errors.ts';
import {
  cidrRange, formatCidr, formatIp, hostRange, parseCidr, parseIp, rangesOverlap, subtract, type Cidr, type Range,
} from './ipnet.ts';
import type { View } from './list.ts';
import { DHCP_OWNER, ROUTER_INTERFACE, type NetworkRow } from './networks.ts';
import { allocate, isAutoAddress, poolRanges, type Pool } from './ipam.ts';
import { ownerOnly } from './policy.ts';
import { checkQuota } from './quotas.ts';
import { bool, bumpRevision, createRoute, ifMatchRevision, int, newStandard, projectFor, Resources, standardView, type ResourceDef } from './resource.ts';
import type { NetworkTables } from './schema.ts';
import { rbacGranted } from './rbac-query.ts';
import type { SubnetPools } from './subnetpools.ts';

export type SubnetRow = NetworkTables['network_subnets'];
interface HostRoute { destination: string; nexthop: string }
// what IPAM reads of a subnet lives with IPAM (ipam.ts imports nothing of this file)
export { isAutoAddress, poolRanges, type Pool };

const PoolT = Type.Object({ start: Type.String(), end: Type.String() }, { additionalProperties: false });
const RouteT = Type.Object({ destination: Type.String(), nexthop: Type.String() }, { additionalProperties: false });
const Mode = Type.Union([Type.Literal('slaac'), Type.Literal('dhcpv6-stateful'), Type.Literal('dhcpv6-stateless'), Type.Null()]);
const Mutable = {
  name: Type.Optional(Type.String({ maxLength: 255 })), description: Type.Optional(Type.String({ maxLength: 255 })),
  gateway_ip: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  allocation_pools: Type.Optional(Type.Array(PoolT)),
  dns_nameservers: Type.Optional(Type.Array(Type.String(), { maxItems: 5 })),
  host_routes: Type.Optional(Type.Array(RouteT, { maxItems: 20 })),
  enable_dhcp: Type.Optional(Type.Boolean()),
  service_types: Type.Optional(Type.Array(Type.String({ maxLength: 255 }))),
};
const CreateItem = Type.Object({
  ...Mutable,
  network_id: Type.String(), ip_version: Type.Union([Type.Literal(4), Type.Literal(6)]), cidr: Type.Optional(Type.String()),
  prefixlen: Type.Optional(Type.Integer({ minimum: 0, maximum: 128 })), use_default_subnetpool: Type.Optional(Type.Boolean()),
  ipv6_ra_mode: Type.Optional(Mode), ipv6_address_mode: Type.Optional(Mode),
  project_id: Type.Optional(Type.String({ maxLength: 255 })), tenant_id: Type.Optional(Type.String({ maxLength: 255 })),
  subnetpool_id: Type.Optional(Type.Union([Type.String(), Type.Null()])),
}, { additionalProperties: false });
const UpdateBody = Type.Object({ subnet: Type.Object(Mutable, { additionalProperties: false }) }, { additionalProperties: false });

export function subnetDef(ctx: NetworkContext): ResourceDef<SubnetRow> {
  return {
    kind: 'subnet', table: 'network_subnets', resource: 'subnet', collection: 'subnets',
    attrs: {
      name: 'string', network_id: 'string', ip_version: 'int', cidr: 'string', gateway_ip: 'string', enable_dhcp: 'bool',
      ipv6_ra_mode: 'string', ipv6_address_mode: 'string', subnetpool_id: 'string', dns_nameservers: 'list',
      allocation_pools: 'none', host_routes: 'none', service_types: 'list',
    },
    // a project sees its subnets and those of shared networks
    visible: (q, c) => q.where((eb) => eb.or([
      eb('network_subnets.project_id', '=', c.projectId),
      eb('network_subnets.network_id', 'in', eb.selectFrom('network_networks').select('id').where('shared', '=', 1)),
      eb('network_subnets.network_id', 'in', rbacGranted(eb, c, ['access_as_shared'])),
    ])),
    async views(rows) {
      const tags = await new Resources(ctx, this).tags(rows.map((r) => r.id));
      return rows.map((r) => subnetView(r, tags.get(r.id) ?? []));
    },
  };
}

function subnetView(r: SubnetRow, tags: string[]): View {
  return {
    ...standardView(r, tags), name: r.name, network_id: r.network_id, ip_version: r.ip_version, cidr: r.cidr,
    gateway_ip: r.gateway_ip, enable_dhcp: bool(r.enable_dhcp), ipv6_ra_mode: r.ipv6_ra_mode, ipv6_address_mode: r.ipv6_address_mode,
    allocation_pools: JSON.parse(r.allocation_pools), dns_nameservers: JSON.parse(r.dns_nameservers), host_routes: JSON.parse(r.host_routes),
    service_types: JSON.parse(r.service_types), subnetpool_id: r.subnetpool_id,
  };
}

/** An address of the subnet's version, as text in canonical form; 400 naming the attribute otherwise. */
function address(attr: string, s: string, cidr: Cidr): bigint {
  const p = parseIp(s);
  if (!p) throw invalidAttr(attr, `'${s}' is not a valid IP address`);
  if (p.version !== cidr.version) throw invalidInput(`${attr} ${s} does not match the ip_version ${cidr.version}`);
  return p.value;
}

/** Checks pools against the CIDR, each other and the gateway (Neutron's errors); returns them canonical. */
function checkPools(cidr: Cidr, pools: Pool[], gateway: bigint | null): Pool[] {
  const ranges: Range[] = [];
  const full = cidrRange(cidr);
  const text = (p: Pool) => `{'start': '${p.start}', 'end': '${p.end}'}`;
  for (const p of pools) {
    const first = address('allocation_pools', p.start, cidr);
    const last = address('allocation_pools', p.end, cidr);
    if (first > last) throw new NeutronError('BadRequest', 'InvalidAllocationPool', `The allocation pool ${p.start}-${p.end} is not valid.`);
    const hosts = hostRange(cidr)!;
    if (first < full.first || last > full.last || first < hosts.first || last > hosts.last) {
      throw new NeutronError('BadRequest', 'OutOfBoundsAllocationPool', `The allocation pool ${p.start}-${p.end} spans beyond the subnet cidr ${formatCidr(cidr)}.`);
    }
    const clash = ranges.find((r) => rangesOverlap(r, { first, last }));
    if (clash) {
      throw conflict('OverlappingAllocationPools', `Found overlapping allocation pools: ${formatIp(cidr.version, clash.first)}-${formatIp(cidr.version, clash.last)} and ${p.start}-${p.end} for subnet ${formatCidr(cidr)}.`);
    }
    if (gateway !== null && gateway >= first && gateway <= last) {
      throw conflict('GatewayConflictWithAllocationPools', `Gateway ip ${formatIp(cidr.version, gateway)} conflicts with allocation pool ${text(p)}`);
    }
    ranges.push({ first, last });
  }
  return ranges.map((r) => ({ start: formatIp(cidr.version, r.first), end: formatIp(cidr.version, r.last) }));
}

function checkGateway(cidr: Cidr, gw: string | null): bigint | null {
  if (gw === null) return null;
  const v = address('gateway_ip', gw, cidr);
  const r = cidrRange(cidr);
  if (cidr.version === 4 && cidr.prefix < 31 && (v === r.first || v === r.last)) throw invalidInput(`Gateway is not valid on subnet`);
  return v;
}

function checkDns(cidr: Cidr, servers: string[]): string[] {
  const out = servers.map((s) => {
    const p = parseIp(s);
    if (!p) throw invalidAttr('dns_nameservers', `'${s}' is not a valid nameserver`);
    return formatIp(p.version, p.value);
  });
  const dup = out.find((s, i) => out.indexOf(s) !== i);
  if (dup) throw invalidAttr('dns_nameservers', `Duplicate nameserver '${dup}'`);
  void cidr;
  return out;
}

function checkRoutes(cidr: Cidr, routes: HostRoute[]): HostRoute[] {
  return routes.map((r) => {
    const d = parseCidr(r.destination, false);
    if (!d) throw invalidAttr('host_routes', `'${r.destination}' is not a valid IP subnet`);
    const n = parseIp(r.nexthop);
    if (!n) throw invalidAttr('host_routes', `'${r.nexthop}' is not a valid IP address`);
    if (d.version !== cidr.version || n.version !== cidr.version) throw invalidInput(`Host route ${r.destination} via ${r.nexthop} does not match the ip_version ${cidr.version}`);
    return { destination: formatCidr(d), nexthop: formatIp(n.version, n.value) };
  });
}

export function subnetRoutes(ctx: NetworkContext, subnets: Resources<SubnetRow>, networks: Resources<NetworkRow>, pools: SubnetPools): Route[] {
  const db = ctx.db as unknown as Kysely<any>;
  return [
    ...subnets.routes(),
    createRoute({
      def: subnets.def, rule: 'create_subnet', item: CreateItem, view: (cred, id) => subnets.view(cred, id), undo: async (id) => {
        // the EUI-64 addresses it gave the network's ports go with it
        await db.deleteFrom('network_ip_allocations').where('subnet_id', '=', id).execute();
        await db.deleteFrom('network_subnets').where('id', '=', id).execute();
      },
      async create(rc, b) {
        const cred = rc.cred!;
        const net = await networks.find(cred, b.network_id);
        // subnets go on one's own networks (a shared network takes ports, not subnets)
        ownerOnly(cred, 'create_subnet', net.project_id);
        const projectId = projectFor(cred, b, 'create_subnet');
        /** What follows from the CIDR and the body: modes, gateway, pools, DNS, routes, checked. */
        const shape = (cidr: Cidr) => {
          if (cidr.prefix === 0) throw invalidInput('0.0.0.0/0 and ::/0 are not valid subnet CIDRs');
          if ((cidr.version === 4 && cidr.prefix > 30) || (cidr.version === 6 && cidr.prefix > 126)) {
            // too small to hold a gateway and an address, as Neutron counts it
            throw invalidInput(`The prefix length of ${formatCidr(cidr)} is too long: no room for a gateway and addresses`);
          }
          const ra = b.ipv6_ra_mode ?? null;
          const am = b.ipv6_address_mode ?? null;
          if (cidr.version === 4 && (ra !== null || am !== null)) throw invalidInput('ipv6_ra_mode or ipv6_address_mode cannot be set when enable_dhcp is set to False or ip_version is 4');
          if ((ra !== null || am !== null) && b.enable_dhcp === false) throw invalidInput('ipv6_ra_mode or ipv6_address_mode cannot be set when enable_dhcp is set to False');
          if (ra !== null && am !== null && ra !== am) {
            throw invalidInput(`ipv6_ra_mode set to '${ra}' with ipv6_address_mode set to '${am}' is not valid. If both attributes are set, they must be the same value`);
          }
          if ((am === 'slaac' || am === 'dhcpv6-stateless' || ra === 'slaac' || ra === 'dhcpv6-stateless') && cidr.prefix !== 64) {
            throw invalidInput(`Invalid CIDR ${formatCidr(cidr)} for IPv6 address mode. OpenStack uses the EUI-64 address format, which requires the prefix to be /64`);
          }
          const gwText = b.gateway_ip === undefined ? formatIp(cidr.version, cidr.network + 1n) : b.gateway_ip;
          const gateway = checkGateway(cidr, gwText);
          const hosts = hostRange(cidr)!;
          const pools = b.allocation_pools !== undefined
            ? checkPools(cidr, b.allocation_pools, gateway)
            : (gateway === null ? [hosts] : subtract([hosts], gateway)).map((r) => ({ start: formatIp(cidr.version, r.first), end: formatIp(cidr.version, r.last) }));
          return { ra, am, gateway, pools, dns: checkDns(cidr, b.dns_nameservers ?? []), routes: checkRoutes(cidr, b.host_routes ?? []) };
        };
        if (b.cidr === undefined && b.subnetpool_id == null && !b.use_default_subnetpool) {
          throw badRequest('A cidr must be specified in the absence of a subnet pool');
        }
        if (b.prefixlen !== undefined && b.cidr !== undefined) throw badRequest('cidr and prefixlen must not be supplied together');
        let given: Cidr | null = null;
        if (b.cidr !== undefined) {
          given = parseCidr(b.cidr, false);
          if (!given) throw invalidAttr('cidr', `'${b.cidr}' is not a valid IP subnet`);
          if (!parseCidr(b.cidr)) throw invalidAttr('cidr', `'${b.cidr}' isn't a recognized IP subnet cidr, '${formatCidr(given)}' is recommended`);
          if (given.version !== b.ip_version) throw invalidInput(`Cidr ${b.cidr} does not match the ip_version ${b.ip_version}`);
          shape(given);
        }
        const id = uuid();
        await db.transaction().execute(async (tx) => {
          await checkQuota(tx, projectId, 'subnet');
          await networks.find(cred, b.network_id, tx);
          // a pool's subnet takes its CIDR under the pool's lock, so two never overlap
          const pool = b.subnetpool_id != null || b.use_default_subnetpool ? await pools.forSubnet(tx, cred, b.subnetpool_id ?? null, b.ip_version) : null;
          const cidr = pool ? await pools.allocate(tx, pool, given, b.prefixlen) : given!;
          const v = shape(cidr);
          for (const other of await tx.selectFrom('network_subnets').select(['cidr']).where('network_id', '=', b.network_id).execute()) {
            const o = parseCidr(other.cidr)!;
            if (o.version === cidr.version && rangesOverlap(cidrRange(o), cidrRange(cidr))) {
              throw invalidInput(`Requested subnet with cidr: ${formatCidr(cidr)} for network: ${b.network_id} overlaps with another subnet`);
            }
          }
          await tx.insertInto('network_subnets').values({
            ...newStandard(id, projectId, b.description), network_id: b.network_id, name: b.name ?? '', ip_version: cidr.version,
            cidr: formatCidr(cidr), gateway_ip: v.gateway === null ? null : formatIp(cidr.version, v.gateway), enable_dhcp: int(b.enable_dhcp ?? true),
            ipv6_ra_mode: v.ra, ipv6_address_mode: v.am, allocation_pools: JSON.stringify(v.pools), dns_nameservers: JSON.stringify(v.dns),
            host_routes: JSON.stringify(v.routes), service_types: JSON.stringify(b.service_types ?? []), subnetpool_id: pool?.id ?? null, ipam_generation: 0,
          }).execute();
          // a SLAAC or DHCPv6-stateless subnet gives every port already on the network its EUI-64 address
          // (the hosts make it from the router's RAs anyway), router interfaces excepted (Neutron's)
          if (isAutoAddress({ ipv6_address_mode: v.am })) {
            const row = await tx.selectFrom('network_subnets').selectAll().where('id', '=', id).executeTakeFirstOrThrow() as SubnetRow;
            const ports = await tx.selectFrom('network_ports').select(['id', 'mac_address', 'device_owner']).where('network_id', '=', b.network_id)
              .where('device_owner', '!=', ROUTER_INTERFACE).orderBy('id').execute();
            for (const port of ports) {
              await allocate(tx, { networkId: b.network_id, subnets: [row], portId: port.id, mac: port.mac_address, deviceOwner: port.device_owner, requested: [{ subnet_id: id }] });
              await bumpRevision(tx, 'network_ports', port.id, null, 'port');
            }
          }
        });
        return id;
      },
    }),
    route({
      method: 'PUT', path: '/v2.0/subnets/:id', rule: 'update_subnet', schema: { body: UpdateBody },
      async handler(rc) {
        const cred = rc.cred!;
        const b = rc.body.subnet;
        const id = rc.params.id!;
        const expected = ifMatchRevision(rc);
        await db.transaction().execute(async (tx) => {
          const row = await subnets.findOwn(cred, id, 'update_subnet', tx);
          const cidr = parseCidr(row.cidr)!;
          const gwText = b.gateway_ip !== undefined ? b.gateway_ip : row.gateway_ip;
          const gateway = checkGateway(cidr, gwText);
          const pools = checkPools(cidr, b.allocation_pools ?? JSON.parse(row.allocation_pools), gateway);
          await bumpRevision(tx, 'network_subnets', id, expected, 'subnet');
          const set: Partial<SubnetRow> = { allocation_pools: JSON.stringify(pools), gateway_ip: gateway === null ? null : formatIp(cidr.version, gateway) };
          if (b.name !== undefined) set.name = b.name;
          if (b.description !== undefined) set.description = b.description;
          if (b.enable_dhcp === false && (row.ipv6_ra_mode !== null || row.ipv6_address_mode !== null)) throw invalidInput('Cannot disable enable_dhcp with ipv6 attributes set');
          if (b.enable_dhcp !== undefined) set.enable_dhcp = int(b.enable_dhcp);
          if (b.dns_nameservers !== undefined) set.dns_nameservers = JSON.stringify(checkDns(cidr, b.dns_nameservers));
          if (b.host_routes !== undefined) set.host_routes = JSON.stringify(checkRoutes(cidr, b.host_routes));
          if (b.service_types !== undefined) set.service_types = JSON.stringify(b.service_types);
          await tx.updateTable('network_subnets').set(set).where('id', '=', id).execute();
        });
        return { subnet: await subnets.view(cred, id) };
      },
    }),
    route({
      method: 'DELETE', path: '/v2.0/subnets/:id', rule: 'delete_subnet', status: 204,
      async handler(rc) {
        const cred = rc.cred!;
        const id = rc.params.id!;
        const expected = ifMatchRevision(rc);
        await db.transaction().execute(async (tx) => {
          const row = await subnets.findOwn(cred, id, 'delete_subnet', tx);
          // the bump locks the subnet against allocations racing the delete
          await bumpRevision(tx, 'network_subnets', id, expected ?? row.revision_number, 'subnet');
          // addresses a port derived itself (SLAAC, DHCPv6 stateless) go with the subnet; any other keeps it
          if (isAutoAddress(row)) await tx.deleteFrom('network_ip_allocations').where('subnet_id', '=', id).execute();
          // so do the network's DHCP ports' addresses (a DHCP port left with none goes too)
          const dhcp = (await tx.selectFrom('network_ports').select('id').where('network_id', '=', row.network_id).where('device_owner', '=', DHCP_OWNER).execute()).map((r) => r.id);
          if (dhcp.length) {
            await tx.deleteFrom('network_ip_allocations').where('subnet_id', '=', id).where('port_id', 'in', dhcp).execute();
            for (const portId of dhcp) {
              if (await tx.selectFrom('network_ip_allocations').select('port_id').where('port_id', '=', portId).executeTakeFirst()) continue;
              await tx.deleteFrom('network_port_security_groups').where('port_id', '=', portId).execute();
              await tx.deleteFrom('network_tags').where('resource_type', '=', 'ports').where('resource_id', '=', portId).execute();
              await tx.deleteFrom('network_ports').where('id', '=', portId).execute();
            }
          }
          if (await tx.selectFrom('network_ip_allocations').select('port_id').where('subnet_id', '=', id).executeTakeFirst()) throw subnetInUse(id);
          await tx.deleteFrom('network_tags').where('resource_type', '=', 'subnets').where('resource_id', '=', id).execute();
          await tx.deleteFrom('network_subnets').where('id', '=', id).execute();
        });
      },
    }),
  ];
}

