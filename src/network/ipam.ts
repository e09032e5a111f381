// IP address management: the addresses a port gets on its network's subnets.
// Every allocation runs inside the port's transaction and first bumps the
// subnet's ipam_generation, which locks the subnet row (PostgreSQL) or takes
// the write lock (SQLite): allocators of one subnet take turns, so the first
// free address one of them reads is still free when it inserts it. The
// primary key (subnet, address) of network_ip_allocations refuses anything
// given twice regardless; a collision there re-runs the transaction
// (retry.ts). Router and floating IP ports allocate through here too.
import type { Kysely } from 'kysely';
import { badRequest, invalidInput, ipExhausted, ipTaken, NeutronError } from './errors.ts';
import { eui64, formatIp, inCidr, parseCidr, parseIp, type Cidr, type Range } from './ipnet.ts';
import type { NetworkTables } from './schema.ts';

type SubnetRow = NetworkTables['network_subnets'];
export interface Pool { start: string; end: string }

/** Subnets whose addresses ports derive from their MAC (EUI-64) rather than take from the pools. */
export const isAutoAddress = (s: Pick<SubnetRow, 'ipv6_address_mode'>): boolean =>
  s.ipv6_address_mode === 'slaac' || s.ipv6_address_mode === 'dhcpv6-stateless';

/** A subnet's allocation pools as ranges (those inside its CIDR). */
export const poolRanges = (cidr: Cidr, pools: Pool[]): Range[] =>
  pools.map((p) => ({ first: parseIp(p.start)!.value, last: parseIp(p.end)!.value })).filter((r) => inCidr(cidr, r.first));

export interface FixedIp { subnet_id: string; ip_address: string }
export interface FixedIpRequest { subnet_id?: string; ip_address?: string }

const cidrOf = (s: SubnetRow): Cidr => parseCidr(s.cidr)!;

async function lockSubnet(tx: Kysely<any>, subnetId: string): Promise<void> {
  await tx.updateTable('network_subnets').set((eb: any) => ({ ipam_generation: eb('ipam_generation', '+', 1) })).where('id', '=', subnetId).execute();
}

async function taken(tx: Kysely<any>, subnetId: string): Promise<Set<string>> {
  return new Set((await tx.selectFrom('network_ip_allocations').select('ip_address').where('subnet_id', '=', subnetId).execute()).map((r) => r.ip_address));
}

/** The first free address of a subnet's pools, or null. Walks at most (taken + 1) addresses per pool. */
async function firstFree(tx: Kysely<any>, s: SubnetRow): Promise<string | null> {
  await lockSubnet(tx, s.id);
  const used = await taken(tx, s.id);
  const cidr = cidrOf(s);
  for (const r of poolRanges(cidr, JSON.parse(s.allocation_pools) as Pool[])) {
    for (let v = r.first, n = 0; v <= r.last && n <= used.size + 1; v++, n++) {
      const text = formatIp(cidr.version, v);
      if (!used.has(text) && text !== s.gateway_ip) return text;
    }
  }
  return null;
}

async function claim(tx: Kysely<any>, s: SubnetRow, ip: string, portId: string): Promise<FixedIp> {
  await tx.insertInto('network_ip_allocations').values({ subnet_id: s.id, ip_address: ip, network_id: s.network_id, port_id: portId }).execute();
  return { subnet_id: s.id, ip_address: ip };
}

/** A specific address on a subnet, checked (Neutron's InvalidIpForSubnet, IpAddressAlreadyAllocated). */
async function claimSpecific(tx: Kysely<any>, s: SubnetRow, ip: bigint, portId: string, deviceOwner: string): Promise<FixedIp> {
  const cidr = cidrOf(s);
  const text = formatIp(cidr.version, ip);
  const network = cidr.network;
  const broadcast = cidr.network | ((1n << BigInt((cidr.version === 4 ? 32 : 128) - cidr.prefix)) - 1n);
  const edge = (cidr.version === 4 && cidr.prefix < 31 && (ip === network || ip === broadcast)) || (cidr.version === 6 && cidr.prefix < 127 && ip === network);
  if (!inCidr(cidr, ip) || edge) {
    throw new NeutronError('BadRequest', 'InvalidIpForSubnet', `IP address ${text} is not a valid IP for the specified subnet.`);
  }
  if (text === s.gateway_ip && !deviceOwner.startsWith('network:router')) {
    throw ipTaken(text, s.id);
  }
  if (isAutoAddress(s) && !deviceOwner.startsWith('network:router')) {
    throw invalidInput(`IPv6 address ${text} cannot be directly assigned to a port on subnet ${s.id} since the subnet is configured for automatic addresses`);
  }
  await lockSubnet(tx, s.id);
  if ((await taken(tx, s.id)).has(text)) throw ipTaken(text, s.id);
  return claim(tx, s, text, portId);
}

/**
 * Allocates a new port's addresses. Without a request: one address from the
 * first IPv4 subnet with room, one from the first stateful IPv6 subnet with
 * room, and the EUI-64 address on every SLAAC/stateless subnet (Neutron's
 * choice). With a request, exactly what it names.
 */
export async function allocate(tx: Kysely<any>, o: {
  networkId: string; subnets: SubnetRow[]; portId: string; mac: string; deviceOwner: string; requested?: FixedIpRequest[];
}): Promise<FixedIp[]> {
  const out: FixedIp[] = [];
  const auto = o.subnets.filter(isAutoAddress);
  if (o.requested === undefined) {
    for (const version of [4, 6]) {
      const candidates = o.subnets.filter((s) => s.ip_version === version && !isAutoAddress(s));
      if (!candidates.length) continue;
      let got = false;
      for (const s of candidates) {
        const ip = await firstFree(tx, s);
        if (ip) { out.push(await claim(tx, s, ip, o.portId)); got = true; break; }
      }
      if (!got) throw ipExhausted(o.networkId);
    }
    for (const s of auto) out.push(await claimEui64(tx, s, o.mac, o.portId));
    return out;
  }
  const named = new Set<string>();
  for (const r of o.requested) {
    if (r.subnet_id === undefined && r.ip_address === undefined) throw badRequest('Invalid input for fixed_ips. Reason: Exactly one of subnet_id or ip_address must be given, or both.');
    let subnet: SubnetRow | undefined;
    let ip: { version: number; value: bigint } | null = null;
    if (r.ip_address !== undefined) {
      ip = parseIp(r.ip_address);
      if (!ip) throw badRequest(`Invalid input for fixed_ips. Reason: '${r.ip_address}' is not a valid IP address.`);
    }
    if (r.subnet_id !== undefined) {
      subnet = o.subnets.find((s) => s.id === r.subnet_id);
      if (!subnet) throw invalidInput(`Failed to create port on network ${o.networkId}, because fixed_ips included invalid subnet ${r.subnet_id}`);
    } else {
      subnet = o.subnets.find((s) => s.ip_version === ip!.version && inCidr(cidrOf(s), ip!.value));
      if (!subnet) throw new NeutronError('BadRequest', 'InvalidIpForNetwork', `IP address ${r.ip_address} is not a valid IP for any of the subnets on the specified network.`);
    }
    named.add(subnet.id);
    if (ip) out.push(await claimSpecific(tx, subnet, ip.value, o.portId, o.deviceOwner));
    else if (isAutoAddress(subnet)) out.push(await claimEui64(tx, subnet, o.mac, o.portId));
    else {
      const free = await firstFree(tx, subnet);
      if (!free) throw ipExhausted(o.networkId);
      out.push(await claim(tx, subnet, free, o.portId));
    }
  }
  // SLAAC addresses come with every port on the network, asked for or not; not with a router
  // interface, which has exactly the subnets attached to it (Neutron's ROUTER_INTERFACE_OWNERS)
  if (o.deviceOwner !== 'network:router_interface') for (const s of auto) if (!named.has(s.id)) out.push(await claimEui64(tx, s, o.mac, o.portId));
  return out;
}

async function claimEui64(tx: Kysely<any>, s: SubnetRow, mac: string, portId: string): Promise<FixedIp> {
  const cidr = cidrOf(s);
  const ip = formatIp(6, eui64(cidr, mac));
  await lockSubnet(tx, s.id);
  if ((await taken(tx, s.id)).has(ip)) throw ipTaken(ip, s.id);
  return claim(tx, s, ip, portId);
}

/** The port's addresses, in allocation order per subnet. */
export async function fixedIpsOf(db: Kysely<any>, portIds: string[]): Promise<Map<string, FixedIp[]>> {
  const out = new Map<string, FixedIp[]>(portIds.map((id) => [id, []]));
  for (let i = 0; i < portIds.length; i += 500) {
    const rows = await db.selectFrom('network_ip_allocations').select(['port_id', 'subnet_id', 'ip_address'])
      .where('port_id', 'in', portIds.slice(i, i + 500)).execute();
    for (const r of rows) out.get(r.port_id)?.push({ subnet_id: r.subnet_id, ip_address: r.ip_address });
  }
  return out;
}
