// Ports: a MAC unique per network (generated under the configured prefix),
// addresses from IPAM (ipam.ts), security groups (the project's default group
// unless said), port security and allowed address pairs, the port binding
// attributes (admin only), and dns_name. One transaction per create or
// update; a collision on a unique MAC or address re-runs it.
import { randomBytes } from 'node:crypto';
import { Type } from 'typebox';
import type { Kysely } from 'kysely';
import { uuid } from '../common/ids.ts';
import { parseJsonObject } from '../common/json.ts';
import type { Credentials } from '../http/auth.ts';
import { isAdmin } from '../http/policy.ts';
import { route, type Route } from '../http/service.ts';
import type { NetworkContext } from './context.ts';
import { conflict, invalidAttr, ipExhausted, macInUse, NeutronError, notFound, policyDenied } from './errors.ts';
import { allocate, fixedIpsOf, type FixedIp, type FixedIpRequest } from './ipam.ts';
import { formatCidr, isMac, parseCidr } from './ipnet.ts';
import type { View } from './list.ts';
import { DHCP_OWNER, L3_OWNERS, type NetworkRow } from './networks.ts';
import { checkDnsName } from './dns.ts';
import { defaultHostname, dnsmasqServes, type DhcpOption } from './protocol.ts';
import { adminOnly } from './policy.ts';
import { checkQuota } from './quotas.ts';
import { bool, bumpRevision, createRoute, ifMatchRevision, int, newStandard, projectFor, Resources, standardView, type ResourceDef } from './resource.ts';
import { retryOnCollision } from './retry.ts';
import type { NetworkTables } from './schema.ts';
import { ensureDefaultGroup, type GroupRow } from './security-groups.ts';
import type { SubnetRow } from './subnets.ts';

export type PortRow = NetworkTables['network_ports'];
interface AddressPair { ip_address: string; mac_address: string }

const VNIC_TYPES = ['normal', 'direct', 'macvtap', 'baremetal', 'direct-physical', 'virtio-forwarder', 'smart-nic', 'remote-managed'] as const;
const FixedIpT = Type.Object({ subnet_id: Type.Optional(Type.String()), ip_address: Type.Optional(Type.String()) }, { additionalProperties: false });
const PairT = Type.Object({ ip_address: Type.String(), mac_address: Type.Optional(Type.String()) }, { additionalProperties: false });
// no schema length: checkDnsName gives Neutron's message for a name too long
const DnsName = Type.String();
const Mutable = {
  name: Type.Optional(Type.String({ maxLength: 255 })), description: Type.Optional(Type.String({ maxLength: 255 })),
  admin_state_up: Type.Optional(Type.Boolean()), device_id: Type.Optional(Type.String({ maxLength: 255 })),
  device_owner: Type.Optional(Type.String({ maxLength: 255 })), fixed_ips: Type.Optional(Type.Array(FixedIpT)),
  security_groups: Type.Optional(Type.Union([Type.Array(Type.String()), Type.Null()])),
  port_security_enabled: Type.Optional(Type.Boolean()), allowed_address_pairs: Type.Optional(Type.Union([Type.Array(PairT), Type.Null()])),
  'binding:host_id': Type.Optional(Type.String({ maxLength: 255 })), 'binding:profile': Type.Optional(Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()])),
  'binding:vnic_type': Type.Optional(Type.Union(VNIC_TYPES.map((t) => Type.Literal(t)))), dns_name: Type.Optional(DnsName),
  mac_address: Type.Optional(Type.String()),
  // checked by checkDhcpOpts, worded as Neutron's validator
  extra_dhcp_opts: Type.Optional(Type.Union([Type.Array(Type.Unknown()), Type.Null()])),
};
const CreateItem = Type.Object({
  ...Mutable, network_id: Type.String(),
  project_id: Type.Optional(Type.String({ maxLength: 255 })), tenant_id: Type.Optional(Type.String({ maxLength: 255 })),
}, { additionalProperties: false });
const UpdateBody = Type.Object({ port: Type.Object(Mutable, { additionalProperties: false }) }, { additionalProperties: false });

const ADMIN_ATTRS = ['binding:host_id', 'binding:profile'] as const;

export function portDef(ctx: NetworkContext): ResourceDef<PortRow> {
  const db = ctx.db as unknown as Kysely<any>;
  return {
    kind: 'port', table: 'network_ports', resource: 'port', collection: 'ports',
    attrs: {
      name: 'string', network_id: 'string', mac_address: 'string', admin_state_up: 'bool', status: 'string', device_id: 'string',
      device_owner: 'string', fixed_ips: 'fixed_ips', security_groups: 'list', port_security_enabled: 'bool', allowed_address_pairs: 'none',
      'binding:host_id': 'string', 'binding:vnic_type': 'string', 'binding:vif_type': 'string', 'binding:profile': 'none', 'binding:vif_details': 'none',
      dns_name: 'string', dns_assignment: 'none', extra_dhcp_opts: 'none',
    },
    // a project sees its ports and the ports on its networks
    visible: (q, c) => q.where((eb) => eb.or([
      eb('network_ports.project_id', '=', c.projectId),
      eb('network_ports.network_id', 'in', eb.selectFrom('network_networks').select('id').where('project_id', '=', c.projectId)),
    ])),
    async views(rows, cred) {
      const ids = rows.map((r) => r.id);
      const tags = await new Resources(ctx, this).tags(ids);
      const ips = await fixedIpsOf(db, ids);
      const groups = new Map<string, string[]>(ids.map((id) => [id, []]));
      for (let i = 0; i < ids.length; i += 500) {
        for (const g of await db.selectFrom('network_port_security_groups').selectAll().where('port_id', 'in', ids.slice(i, i + 500)).orderBy('security_group_id').execute()) {
          groups.get(g.port_id)!.push(g.security_group_id);
        }
      }
      return rows.map((r) => portView(r, tags.get(r.id) ?? [], ips.get(r.id) ?? [], groups.get(r.id) ?? [], cred));
    },
  };
}

function portView(r: PortRow, tags: string[], fixedIps: FixedIp[], groups: string[], cred: Credentials): View {
  const v: View = {
    ...standardView(r, tags), name: r.name, network_id: r.network_id, mac_address: r.mac_address, admin_state_up: bool(r.admin_state_up),
    status: r.status, device_id: r.device_id, device_owner: r.device_owner, fixed_ips: fixedIps, security_groups: groups,
    port_security_enabled: bool(r.port_security_enabled), allowed_address_pairs: JSON.parse(r.allowed_address_pairs),
    'binding:vnic_type': r.binding_vnic_type, dns_name: r.dns_name, extra_dhcp_opts: JSON.parse(r.extra_dhcp_opts || '[]') as DhcpOpt[],
    dns_assignment: fixedIps.map((f) => {
      const hostname = r.dns_name || defaultHostname(f.ip_address);
      return { ip_address: f.ip_address, hostname, fqdn: `${hostname}.openstacklocal.` };
    }),
  };
  if (isAdmin(cred)) {
    Object.assign(v, {
      'binding:host_id': r.binding_host_id, 'binding:profile': publicProfile(r.binding_profile),
      'binding:vif_type': r.binding_vif_type, 'binding:vif_details': JSON.parse(r.binding_vif_details),
    });
  }
  return v;
}

/** A port the agents plug: bound to a host and owned by a device (not one of the network's own `network:*` ports). */
const isDevicePort = (p: { binding_host_id: string; device_id: string; device_owner: string }) =>
  p.binding_host_id !== '' && p.device_id !== '' && !p.device_owner.startsWith('network:');

/**
 * Gives the network its DHCP port (Neutron's `network:dhcp`: an address on
 * its first DHCP-enabled IPv4 subnet and one on each IPv6 subnet dnsmasq
 * serves: DHCPv6 stateful or stateless, or no IPv6 mode) when it has none, once a device port is
 * bound on it: the agents' DHCP server answers there (src/network/kinds.ts).
 * A port that exists gets the DHCPv6 subnets added since. No IPv4 address
 * left: no DHCP port, the bind goes on (a full DHCPv6 subnet is skipped).
 */
export async function ensureDhcpPort(tx: Kysely<any>, networkId: string, macPrefix: string): Promise<void> {
  const subnets = (await tx.selectFrom('network_subnets').selectAll().where('network_id', '=', networkId).where('enable_dhcp', '=', 1)
    .orderBy('created_at').orderBy('id').execute()) as SubnetRow[];
  const v4 = subnets.find((s) => s.ip_version === 4);
  const v6 = subnets.filter((s) => s.ip_version === 6 && dnsmasqServes(s));
  /**
   * One subnet's address for the port; false when the subnet is full. Its
   * EUI-64 address already taken (stateless: only the port's own MAC makes
   * it) means a concurrent bind gave it to the port first.
   */
  const add = async (s: SubnetRow, portId: string, mac: string) => {
    try {
      await allocate(tx, { networkId, subnets: [s], portId, mac, deviceOwner: DHCP_OWNER, requested: [{ subnet_id: s.id }] });
      return true;
    } catch (err) {
      if (err instanceof NeutronError && err.type === 'IpAddressGenerationFailure') return false;
      if (err instanceof NeutronError && err.type === 'IpAddressAlreadyAllocated') return true;
      throw err;
    }
  };
  const existing = await tx.selectFrom('network_ports').select(['id', 'mac_address']).where('network_id', '=', networkId).where('device_owner', '=', DHCP_OWNER).executeTakeFirst();
  if (existing) {
    if (!v6.length) return;
    const have = new Set((await tx.selectFrom('network_ip_allocations').select('subnet_id').where('port_id', '=', existing.id).execute()).map((a) => a.subnet_id));
    for (const s of v6) if (!have.has(s.id)) await add(s, existing.id, existing.mac_address);
    return;
  }
  if (!v4 && !v6.length) return;
  const net = await tx.selectFrom('network_networks').select('project_id').where('id', '=', networkId).executeTakeFirstOrThrow();
  const id = uuid();
  const mac = newMac(macPrefix);
  if (v4 && !(await add(v4, id, mac))) return;
  let any = !!v4;
  for (const s of v6) any = (await add(s, id, mac)) || any;
  if (!any) return;
  await tx.insertInto('network_ports').values({
    ...newStandard(id, net.project_id, undefined), network_id: networkId, name: '', mac_address: mac, admin_state_up: 1, status: 'ACTIVE',
    device_id: `dhcp${networkId}`, device_owner: DHCP_OWNER, port_security_enabled: 0, allowed_address_pairs: '[]',
    binding_host_id: '', binding_vnic_type: 'normal', binding_vif_type: 'unbound', binding_profile: '{}', binding_vif_details: '{}', dns_name: '',
  }).execute();
}

export function newMac(prefix: string): string {
  const b = randomBytes(3);
  return `${prefix}:${[...b].map((x) => x.toString(16).padStart(2, '0')).join(':')}`;
}

/** One extra DHCP option of a port (extra_dhcp_opt), as stored and shown. */
type DhcpOpt = DhcpOption;

/** The options that may be given with no value (neutron-lib's VALID_BLANK_EXTRA_DHCP_OPTS). */
const BLANK_OPTS = ['router', 'classless-static-route'];
const ONE_LINE = /^[^\r\n]*$/;

/**
 * extra_dhcp_opts as given (neutron-lib extra_dhcp_opt's key specs): each an
 * object of opt_name (one line, 1..64), opt_value (one line, up to 255, or
 * null: on create, no option; on update, remove it; blank allowed only for
 * `router` and `classless-static-route`) and ip_version (4 or 6, default 4).
 */
export function parseDhcpOpts(given: unknown[]): Array<{ opt_name: string; opt_value: string | null; ip_version: 4 | 6 }> {
  const bad = (why: string) => invalidAttr('extra_dhcp_opts', why);
  return given.map((o) => {
    if (typeof o !== 'object' || o === null || Array.isArray(o)) throw bad(`'${JSON.stringify(o)}' is not a dictionary`);
    const d = o as Record<string, unknown>;
    for (const k of Object.keys(d)) if (!['opt_name', 'opt_value', 'ip_version'].includes(k)) throw bad(`Unexpected keys supplied: ${k}`);
    if (!('opt_name' in d) || !('opt_value' in d)) throw bad(`Validation of dictionary's keys failed. Expected keys: {'opt_name', 'opt_value'} Provided keys: {${Object.keys(d).map((k) => `'${k}'`).join(', ')}}`);
    const name = d.opt_name;
    if (typeof name !== 'string' || name.trim() === '' || !ONE_LINE.test(name)) throw bad(`'${String(name)}' Blank strings are not permitted`);
    if (name.length > 64) throw bad(`'${name}' exceeds maximum length of 64`);
    const value = d.opt_value;
    if (value !== null && typeof value !== 'string') throw bad(`'${JSON.stringify(value)}' is not a valid string`);
    if (typeof value === 'string') {
      if (value.length > 255) throw bad(`'${value}' exceeds maximum length of 255`);
      if (!ONE_LINE.test(value)) throw bad(`'${value}' contains a line break`);
      if (value.trim() === '' && !BLANK_OPTS.includes(name)) throw bad(`'${value}' Blank strings are not permitted`);
    }
    const v = d.ip_version === undefined || d.ip_version === null ? 4 : Number(d.ip_version);
    if (v !== 4 && v !== 6) throw bad(`${JSON.stringify(d.ip_version)} is not in [4, 6]`);
    return { opt_name: name, opt_value: value as string | null, ip_version: v as 4 | 6 };
  });
}

/**
 * The port's options after a create (`held` empty) or an update (Neutron's
 * extradhcpopt_db): a given option replaces the held one of the same name
 * and IP version, a null value removes it, the others are kept.
 */
export function mergeDhcpOpts(held: DhcpOpt[], given: unknown[] | null): DhcpOpt[] {
  const out = [...held];
  for (const o of parseDhcpOpts(given ?? [])) {
    const i = out.findIndex((h) => h.opt_name === o.opt_name && h.ip_version === o.ip_version);
    if (o.opt_value === null) {
      if (i >= 0) out.splice(i, 1);
    } else if (i >= 0) out[i] = { ...out[i]!, opt_value: o.opt_value };
    else out.push({ opt_name: o.opt_name, opt_value: o.opt_value, ip_version: o.ip_version });
  }
  return out;
}

function checkPairs(pairs: Array<{ ip_address: string; mac_address?: string }>, mac: string): AddressPair[] {
  const out = pairs.map((p) => {
    const c = parseCidr(p.ip_address.includes('/') ? p.ip_address : `${p.ip_address}/${p.ip_address.includes(':') ? 128 : 32}`, false);
    if (!c) throw invalidAttr('allowed_address_pairs', `'${p.ip_address}' is not a valid IP address`);
    if (p.mac_address !== undefined && !isMac(p.mac_address)) throw invalidAttr('allowed_address_pairs', `'${p.mac_address}' is not a valid MAC address`);
    const prefix = c.prefix === (c.version === 4 ? 32 : 128) && !p.ip_address.includes('/') ? formatCidr(c).split('/')[0]! : formatCidr(c);
    return { ip_address: prefix, mac_address: (p.mac_address ?? mac).toLowerCase() };
  });
  const keys = out.map((p) => `${p.ip_address}|${p.mac_address}`);
  if (new Set(keys).size !== keys.length) {
    throw new NeutronError('BadRequest', 'DuplicateAddressPairInRequest', 'Request contains duplicate address pair.');
  }
  return out;
}

/**
 * binding:profile's private mark of a server's VIF that a bare-metal
 * operation boots from (baremetal-ports.ts): an AdoptionMark. Not shown.
 */
export const PROVISIONING_MARK = 'stratus_provisioning_node';
/** The device_owner of the bare-metal service's provisioning ports (and of an adopted VIF handed over to its operation). */
export const BAREMETAL_OWNER = 'baremetal:none';

/**
 * What a bare-metal operation did to a port it adopted: the node and the
 * operation (only that operation's end undoes it), the DHCP options it
 * added (removed again) and the port's own options it replaced (put back).
 */
export interface AdoptionMark {
  node: string;
  /** The operation's id; null for a mark of an older Stratus (only the node's uuid): its end removes nothing but the mark. */
  operation: string | null;
  added: Array<{ opt_name: string; ip_version: 4 | 6 }>;
  replaced: DhcpOpt[];
}

/** The adoption mark of a port's binding:profile (null: not adopted). */
export function adoptionOf(profile: string): AdoptionMark | null {
  const m = parseJsonObject(profile)[PROVISIONING_MARK];
  if (typeof m === 'string') return { node: m, operation: null, added: [], replaced: [] };
  if (!m || typeof m !== 'object' || Array.isArray(m)) return null;
  const o = m as Partial<AdoptionMark>;
  if (typeof o.node !== 'string') return null;
  return { node: o.node, operation: typeof o.operation === 'string' ? o.operation : null, added: Array.isArray(o.added) ? o.added : [], replaced: Array.isArray(o.replaced) ? o.replaced : [] };
}

/** binding:profile as the API shows it (without Stratus's mark). */
function publicProfile(raw: string): Record<string, unknown> {
  const { [PROVISIONING_MARK]: _mark, ...rest } = parseJsonObject(raw);
  return rest;
}

/** A new binding:profile that keeps the adoption mark of the old one (the mark is not the API's to drop). */
export function keepMark(oldProfile: string, profile: Record<string, unknown>): string {
  const mark = parseJsonObject(oldProfile)[PROVISIONING_MARK];
  const { [PROVISIONING_MARK]: _given, ...rest } = profile;
  return JSON.stringify(mark === undefined ? rest : { ...rest, [PROVISIONING_MARK]: mark });
}

/**
 * A port of a server or a user that a bare-metal operation boots from
 * (adopted, baremetal-ports.ts) being removed: made the operation's own
 * provisioning port instead (the network's project's, `baremetal:none`,
 * the node its device), in the caller's transaction, so the node keeps its
 * address and DHCP entry until the operation ends; true when it was, and
 * must not be removed.
 */
async function handOverAdopted(tx: Kysely<any>, portId: string): Promise<boolean> {
  const p = await tx.selectFrom('network_ports').select(['binding_profile', 'network_id', 'device_owner']).where('id', '=', portId).executeTakeFirst();
  const mark = p ? adoptionOf(p.binding_profile) : null;
  if (!p || !mark || p.device_owner === BAREMETAL_OWNER) return false;
  const net = await tx.selectFrom('network_networks').select('project_id').where('id', '=', p.network_id).executeTakeFirst();
  await tx.deleteFrom('network_port_security_groups').where('port_id', '=', portId).execute();
  await tx.deleteFrom('network_tags').where('resource_type', '=', 'ports').where('resource_id', '=', portId).execute();
  await tx.updateTable('network_floatingips').set({ port_id: null, fixed_ip_address: null, router_id: null, status: 'DOWN' }).where('port_id', '=', portId).execute();
  await tx.deleteFrom('network_port_forwardings').where('internal_port_id', '=', portId).execute();
  await tx.updateTable('network_ports').set({
    project_id: net?.project_id ?? '', name: `baremetal-${mark.node}`.slice(0, 255), device_id: mark.node, device_owner: BAREMETAL_OWNER, interface_index: null,
    port_security_enabled: 0, allowed_address_pairs: '[]',
  }).where('id', '=', portId).execute();
  await bumpRevision(tx, 'network_ports', portId, null, 'port');
  return true;
}

/**
 * A port with its addresses, group bindings and tags; in the caller's
 * transaction. The floating IPs mapped to it are disassociated and the port
 * forwardings to it go (Neutron's disassociate_floatingips). A port a
 * bare-metal operation boots from is handed over to the operation instead
 * (handOverAdopted) and goes when the operation ends: every way a port goes
 * (Neutron's DELETE, a server's delete, an interface detach) keeps a node's
 * cleaning on its network.
 */
export async function removePort(tx: Kysely<any>, id: string): Promise<void> {
  if (await handOverAdopted(tx, id)) return;
  await tx.updateTable('network_floatingips').set({ port_id: null, fixed_ip_address: null, router_id: null, status: 'DOWN' }).where('port_id', '=', id).execute();
  await tx.deleteFrom('network_port_forwardings').where('internal_port_id', '=', id).execute();
  await tx.deleteFrom('network_ip_allocations').where('port_id', '=', id).execute();
  await tx.deleteFrom('network_port_security_groups').where('port_id', '=', id).execute();
  await tx.deleteFrom('network_tags').where('resource_type', '=', 'ports').where('resource_id', '=', id).execute();
  await tx.deleteFrom('network_ports').where('id', '=', id).execute();
}

/**
 * A port its server lets go of and that stays (a port the user gave, an
 * interface detached and kept): no device, unbound, DOWN. A port a
 * bare-metal operation boots from stays bound to the conductor's host (its
 * DHCP is the node's boot) until the operation ends, which unbinds it then
 * (baremetal-ports.ts remove); in the caller's transaction.
 */
export async function unbindPort(tx: Kysely<any>, id: string): Promise<void> {
  const p = await tx.selectFrom('network_ports').select('binding_profile').where('id', '=', id).executeTakeFirst();
  if (!p) return;
  const adopted = adoptionOf(p.binding_profile) !== null;
  await tx.updateTable('network_ports').set({
    device_id: '', device_owner: '', interface_index: null, ...(adopted ? {} : { binding_host_id: '', binding_vif_type: 'unbound', status: 'DOWN' }),
  }).where('id', '=', id).execute();
  await bumpRevision(tx, 'network_ports', id, null, 'port');
}

export function portRoutes(ctx: NetworkContext, ports: Resources<PortRow>, networks: Resources<NetworkRow>, groups: Resources<GroupRow>): Route[] {
  const db = ctx.db as unknown as Kysely<any>;
  const subnetsOf = async (tx: Kysely<any>, networkId: string) =>
    await tx.selectFrom('network_subnets').selectAll().where('network_id', '=', networkId).orderBy('created_at').orderBy('id').execute() as SubnetRow[];
  /** The groups a port may carry: visible to the caller and of the port's project (404 otherwise). */
  const checkGroups = async (tx: Kysely<any>, cred: Credentials, projectId: string, ids: string[]) => {
    for (const id of new Set(ids)) {
      const g = await groups.find(cred, id, tx);
      if (g.project_id !== projectId && !isAdmin(cred)) throw notFound.security_group(id);
    }
    return [...new Set(ids)];
  };
  const setGroups = async (tx: Kysely<any>, portId: string, ids: string[]) => {
    await tx.deleteFrom('network_port_security_groups').where('port_id', '=', portId).execute();
    if (ids.length) await tx.insertInto('network_port_security_groups').values(ids.map((g) => ({ port_id: portId, security_group_id: g }))).execute();
  };
  /** Network-owner-only attributes (Neutron: create_port:mac_address, fixed_ips:ip_address, device_owner network:*). */
  const networkOwnerOnly = (cred: Credentials, net: NetworkRow, action: string, b: { mac_address?: string; fixed_ips?: FixedIpRequest[]; device_owner?: string }) => {
    if (isAdmin(cred) || cred.projectId === net.project_id) return;
    if (b.mac_address !== undefined) throw policyDenied(`${action}:mac_address`);
    if (b.fixed_ips?.some((f) => f.ip_address !== undefined)) throw policyDenied(`${action}:fixed_ips:ip_address`);
    if (b.device_owner?.startsWith('network:')) throw policyDenied(`${action}:device_owner`);
  };
  return [
    ...ports.routes(),
    createRoute({
      def: ports.def, rule: 'create_port', item: CreateItem, view: (cred, id) => ports.view(cred, id), undo: (id) => removePort(db, id),
      async create(rc, b) {
        const cred = rc.cred!;
        adminOnly(cred, 'create_port', b, ADMIN_ATTRS);
        const net = await networks.find(cred, b.network_id);
        networkOwnerOnly(cred, net, 'create_port', b);
        const projectId = projectFor(cred, b, 'create_port');
        if (b.mac_address !== undefined && !isMac(b.mac_address)) throw invalidAttr('mac_address', `'${b.mac_address}' is not a valid MAC address`);
        const security = b.port_security_enabled ?? bool(net.port_security_enabled);
        const askedGroups = b.security_groups ?? undefined;
        if (!security && askedGroups?.length) {
          throw new NeutronError('BadRequest', 'PortSecurityAndIPRequiredForSecurityGroups', 'Port security must be enabled and port must have an IP address in order to use security groups.');
        }
        if (!security && b.allowed_address_pairs?.length) {
          throw conflict('AddressPairAndPortSecurityRequired', 'Port Security must be enabled in order to have allowed address pairs on a port.');
        }
        const defaultGroup = security && askedGroups === undefined ? await ensureDefaultGroup(db, projectId) : null;
        const dnsName = checkDnsName(b.dns_name ?? '');
        const dhcpOpts = mergeDhcpOpts([], b.extra_dhcp_opts ?? null);
        const id = uuid();
        await retryOnCollision(() => db.transaction().execute(async (tx) => {
          await checkQuota(tx, projectId, 'port');
          await networks.find(cred, b.network_id, tx);
          const mac = (b.mac_address ?? newMac(ctx.config.macPrefix)).toLowerCase();
          if (b.mac_address !== undefined && await tx.selectFrom('network_ports').select('id').where('network_id', '=', net.id).where('mac_address', '=', mac).executeTakeFirst()) {
            throw macInUse(mac, net.id);
          }
          const groupIds = security ? (defaultGroup ? [defaultGroup] : await checkGroups(tx, cred, projectId, askedGroups ?? [])) : [];
          await tx.insertInto('network_ports').values({
            ...newStandard(id, projectId, b.description), network_id: net.id, name: b.name ?? '', mac_address: mac,
            admin_state_up: int(b.admin_state_up ?? true), status: 'DOWN', device_id: b.device_id ?? '', device_owner: b.device_owner ?? '',
            port_security_enabled: int(security), allowed_address_pairs: JSON.stringify(checkPairs(b.allowed_address_pairs ?? [], mac)),
            binding_host_id: b['binding:host_id'] ?? '', binding_vnic_type: b['binding:vnic_type'] ?? 'normal', binding_vif_type: 'unbound',
            binding_profile: JSON.stringify(b['binding:profile'] ?? {}), binding_vif_details: '{}', dns_name: dnsName,
            extra_dhcp_opts: JSON.stringify(dhcpOpts),
          }).execute();
          await allocate(tx, { networkId: net.id, subnets: await subnetsOf(tx, net.id), portId: id, mac, deviceOwner: b.device_owner ?? '', requested: b.fixed_ips });
          await setGroups(tx, id, groupIds);
          if (isDevicePort({ binding_host_id: b['binding:host_id'] ?? '', device_id: b.device_id ?? '', device_owner: b.device_owner ?? '' })) {
            await ensureDhcpPort(tx, net.id, ctx.config.macPrefix);
          }
        }), () => ipExhausted(net.id));
        return id;
      },
    }),
    route({
      method: 'PUT', path: '/v2.0/ports/:id', rule: 'update_port', schema: { body: UpdateBody },
      async handler(rc) {
        const cred = rc.cred!;
        const b = rc.body.port;
        const id = rc.params.id!;
        adminOnly(cred, 'update_port', b, [...ADMIN_ATTRS, 'mac_address']);
        const expected = ifMatchRevision(rc);
        const dnsName = b.dns_name === undefined ? undefined : checkDnsName(b.dns_name);
        if (b.extra_dhcp_opts) parseDhcpOpts(b.extra_dhcp_opts);
        await retryOnCollision(() => db.transaction().execute(async (tx) => {
          const row = await ports.find(cred, id, tx);
          const net = await tx.selectFrom('network_networks').selectAll().where('id', '=', row.network_id).executeTakeFirstOrThrow() as NetworkRow;
          if (!isAdmin(cred) && cred.projectId !== row.project_id && cred.projectId !== net.project_id) throw policyDenied('update_port');
          networkOwnerOnly(cred, net, 'update_port', b);
          await bumpRevision(tx, 'network_ports', id, expected, 'port');
          const security = b.port_security_enabled ?? bool(row.port_security_enabled);
          const currentGroups = (await tx.selectFrom('network_port_security_groups').select('security_group_id').where('port_id', '=', id).execute()).map((g) => g.security_group_id);
          const groupIds = b.security_groups === undefined ? currentGroups : await checkGroups(tx, cred, row.project_id, b.security_groups ?? []);
          if (!security && groupIds.length) {
            throw new NeutronError('Conflict', 'PortSecurityPortHasSecurityGroup', 'Port has security group associated. Cannot disable port security or IP address until security group is removed.');
          }
          const pairs = b.allowed_address_pairs === undefined ? JSON.parse(row.allowed_address_pairs) as AddressPair[] : checkPairs(b.allowed_address_pairs ?? [], b.mac_address ?? row.mac_address);
          if (!security && pairs.length) throw conflict('AddressPairAndPortSecurityRequired', 'Port Security must be enabled in order to have allowed address pairs on a port.');
          const set: Partial<PortRow> = { port_security_enabled: int(security), allowed_address_pairs: JSON.stringify(pairs) };
          if (b.mac_address !== undefined) {
            if (!isMac(b.mac_address)) throw invalidAttr('mac_address', `'${b.mac_address}' is not a valid MAC address`);
            if (row.binding_vif_type !== 'unbound') throw conflict('PortBound', `Unable to complete operation on port ${id}, port is already bound.`);
            const mac = b.mac_address.toLowerCase();
            if (mac !== row.mac_address && await tx.selectFrom('network_ports').select('id').where('network_id', '=', row.network_id).where('mac_address', '=', mac).executeTakeFirst()) {
              throw macInUse(mac, row.network_id);
            }
            set.mac_address = mac;
          }
          if (b.name !== undefined) set.name = b.name;
          if (b.description !== undefined) set.description = b.description;
          if (b.admin_state_up !== undefined) set.admin_state_up = int(b.admin_state_up);
          if (b.device_id !== undefined) set.device_id = b.device_id;
          // an interface index belongs to the device it was given on (interface-index.ts)
          if (b.device_id !== undefined && b.device_id !== row.device_id) set.interface_index = null;
          if (b.device_owner !== undefined) set.device_owner = b.device_owner;
          if (b['binding:host_id'] !== undefined) set.binding_host_id = b['binding:host_id'];
          if (b['binding:profile'] !== undefined) set.binding_profile = keepMark(row.binding_profile, b['binding:profile'] ?? {});
          if (b['binding:vnic_type'] !== undefined) set.binding_vnic_type = b['binding:vnic_type'];
          if (dnsName !== undefined) set.dns_name = dnsName;
          if (b.extra_dhcp_opts !== undefined) set.extra_dhcp_opts = JSON.stringify(mergeDhcpOpts(JSON.parse(row.extra_dhcp_opts || '[]') as DhcpOpt[], b.extra_dhcp_opts));
          await tx.updateTable('network_ports').set(set).where('id', '=', id).execute();
          await setGroups(tx, id, groupIds);
          if (isDevicePort({ ...row, ...set })) await ensureDhcpPort(tx, row.network_id, ctx.config.macPrefix);
          if (b.fixed_ips !== undefined) {
            // keep what the request names and the port holds; release the rest; allocate what is new
            const held = (await fixedIpsOf(tx, [id])).get(id)!;
            const keep = held.filter((h) => b.fixed_ips!.some((f) => f.ip_address !== undefined && f.ip_address === h.ip_address && (f.subnet_id === undefined || f.subnet_id === h.subnet_id)));
            const wanted = b.fixed_ips.filter((f) => !(f.ip_address !== undefined && keep.some((k) => k.ip_address === f.ip_address)));
            const subnets = await subnetsOf(tx, row.network_id);
            const auto = new Set(subnets.filter((s) => s.ipv6_address_mode === 'slaac' || s.ipv6_address_mode === 'dhcpv6-stateless').map((s) => s.id));
            const release = held.filter((h) => !keep.includes(h) && !auto.has(h.subnet_id));
            for (const r of release) await tx.deleteFrom('network_ip_allocations').where('subnet_id', '=', r.subnet_id).where('ip_address', '=', r.ip_address).execute();
            const stillHeld = new Set(held.filter((h) => !release.includes(h)).map((h) => h.subnet_id));
            await allocate(tx, {
              networkId: row.network_id, subnets: subnets.filter((s) => !auto.has(s.id) || !stillHeld.has(s.id)), portId: id,
              mac: set.mac_address ?? row.mac_address, deviceOwner: set.device_owner ?? row.device_owner, requested: wanted,
            });
          }
        }), () => ipExhausted(id));
        return { port: await ports.view(cred, id) };
      },
    }),
    route({
      method: 'DELETE', path: '/v2.0/ports/:id', rule: 'delete_port', status: 204,
      async handler(rc) {
        const cred = rc.cred!;
        const id = rc.params.id!;
        const expected = ifMatchRevision(rc);
        await db.transaction().execute(async (tx) => {
          const row = await ports.find(cred, id, tx);
          const net = await tx.selectFrom('network_networks').select('project_id').where('id', '=', row.network_id).executeTakeFirst();
          if (!isAdmin(cred) && cred.projectId !== row.project_id && cred.projectId !== net?.project_id) throw policyDenied('delete_port');
          if (L3_OWNERS.includes(row.device_owner)) {
            throw conflict('L3PortInUse', `Port ${id} has owner ${row.device_owner} and therefore cannot be deleted directly via the port API.`);
          }
          await bumpRevision(tx, 'network_ports', id, expected, 'port');
          await removePort(tx, id);
        });
      },
    }),
  ];
}

