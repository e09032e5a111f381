// The network service's resource kinds on the fleet (src/network/protocol.ts
// is the wire contract): what each host's agent must make real, built per
// host from the Neutron tables.
//
//   port            on the host in its binding:host_id (ports a device owns:
//                   not the network's own `network:*` ports)
//   network         on every host with such a port on it; its VXLAN peers are
//                   the other such hosts (their registered host_ip is the
//                   VXLAN endpoint); DHCP runs on the first of them by name,
//                   with the network's `network:dhcp` port when it has one
//   security_group  on every host with a port in it (port security on), with
//                   the member addresses of the groups its rules name
//   router          on the host that serves it (network_routers.host: the
//                   first agent serving routers to watch claims a router
//                   without one, or whose host is down); its interface and gateway ports are bound
//                   there (the router reconciler plugs them, they are not
//                   `port` resources), so their networks go to that host too
//                   and it is a VXLAN peer (with the router ports' MACs) of
//                   the other hosts of those networks
//
// A spec depends on the host (peers, DHCP), so a version is a hash of the spec
// built for that host: it changes exactly when what the host must do changes.
// Specs are built afresh at every watch round; writes reach the agents at the
// fleet's next recheck. Reports set a port's status (ACTIVE/DOWN), and a
// router's and its floating IPs' status.
import { createHash } from 'node:crypto';
import { Type } from 'typebox';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Db } from '../db/database.ts';
import type { ResourceKind } from '../fleet/kinds.ts';
import type { Resource, ResourceReport } from '../fleet/protocol.ts';
import { interfaceIndexes } from './interface-index.ts';
import { parseCidr } from './ipnet.ts';
import {
  defaultHostname, dnsmasqServes, MIGRATING_TO, NETWORK_KIND, NetworkObservedState, PORT_KIND, ROUTER_KIND, SECURITY_GROUP_KIND, VifType,
  type DhcpHost, type DhcpOption, type FixedIp, type Ipv6Mode, type NetworkSpec, type PortIpConfig, type PortSpec, type PortVif, type RouterSpec, type SecurityGroupSpec, type SubnetSpec, type VxlanPeer,
} from './protocol.ts';

/** Where a host's VXLAN endpoint is (its registered host_ip); null when it did not say. */
export type HostAddresses = (hostnames: string[]) => Promise<Map<string, string>>;
/** The registered hosts that are up (heard from within the service down time, not forced down). */
export type UpHosts = () => Promise<string[]>;

const DHCP_OWNER = 'network:dhcp';
const LEASE_SECONDS = 86400;

const State = Type.Union(NetworkObservedState.map((s) => Type.Literal(s)));
const NetworkObservedBody = Type.Object({ state: State }, { additionalProperties: false });
const PortObservedBody = Type.Object({ state: State, device: Type.Union([Type.String({ maxLength: 64 }), Type.Null()]) }, { additionalProperties: false });

interface PortRow {
  id: string; project_id: string; network_id: string; mac_address: string; admin_state_up: number; device_id: string; device_owner: string;
  port_security_enabled: number; allowed_address_pairs: string; binding_host_id: string; binding_vif_type: string; dns_name: string; created_at: string;
  status: string; interface_index: number | null; binding_vnic_type: string; extra_dhcp_opts: string; binding_profile?: string;
}
interface RouterRow {
  id: string; project_id: string; name: string; admin_state_up: number; gw_network_id: string | null; gw_port_id: string | null;
  enable_snat: number; routes: string; host: string;
}
interface SubnetRow {
  id: string; network_id: string; name: string; cidr: string; ip_version: number; gateway_ip: string | null; enable_dhcp: number;
  dns_nameservers: string; host_routes: string; allocation_pools: string; ipv6_ra_mode: string | null; ipv6_address_mode: string | null;
}

/** A port bound to a host and owned by a device, not one of the network's own. */
const isBoundDevicePort = (p: PortRow) => p.binding_host_id !== '' && p.device_id !== '' && !p.device_owner.startsWith('network:');
/**
 * A bare-metal node's NIC (vnic_type baremetal, Ironic's ports): bound to the
 * host of the node's conductor, whose provisioning network's bridge reaches
 * the node; that host holds the network (and its DHCP) but plugs nothing.
 */
const isBaremetalPort = (p: PortRow) => isBoundDevicePort(p) && p.binding_vnic_type === 'baremetal';
/** A port the agent plugs: bound to a host, owned by a device, not one of the network's own, not a bare-metal NIC. */
const isDevicePort = (p: PortRow) => isBoundDevicePort(p) && !isBaremetalPort(p);
const ROUTER_INTERFACE = 'network:router_interface';
const ROUTER_GATEWAY = 'network:router_gateway';
/** A router's port on the router's host (the router reconciler plugs it). */
const isRouterPort = (p: PortRow) => p.binding_host_id !== '' && (p.device_owner === ROUTER_INTERFACE || p.device_owner === ROUTER_GATEWAY);
/** A port that makes its host hold the port's network. */
const isPlugged = (p: PortRow) => isDevicePort(p) || isRouterPort(p) || isBaremetalPort(p);
/** The host a device port's server is being live-migrated to (binding:profile migrating_to): the port is plugged there too. */
function migratingTo(p: PortRow): string | null {
  if (!p.binding_profile?.includes(MIGRATING_TO) || !isDevicePort(p)) return null;
  try {
    const to = (JSON.parse(p.binding_profile) as Record<string, unknown>)[MIGRATING_TO];
    return typeof to === 'string' && to !== p.binding_host_id ? to : null;
  } catch {
    return null;
  }
}
/** The hosts a port is plugged on: its binding's, and the one its server is live-migrating to. */
const hostsOfPort = (p: PortRow): string[] => {
  const to = migratingTo(p);
  return to ? [p.binding_host_id, to] : [p.binding_host_id];
};
/** Whether the port is plugged on `hostname`. */
const isOn = (p: PortRow, hostname: string) => p.binding_host_id === hostname || migratingTo(p) === hostname;

const versionOf = (spec: unknown) => Number.parseInt(createHash('sha256').update(JSON.stringify(spec)).digest('hex').slice(0, 12), 16);

/** Everything of the network tables one host's specs are built from. */
class Snapshot {
  readonly ports: PortRow[];
  readonly subnets: Map<string, SubnetRow[]>;
  readonly ips: Map<string, FixedIp[]>;
  readonly groupsOf: Map<string, string[]>;

  constructor(ports: PortRow[], subnets: Map<string, SubnetRow[]>, ips: Map<string, FixedIp[]>, groupsOf: Map<string, string[]>) {
    this.ports = ports;
    this.subnets = subnets;
    this.ips = ips;
    this.groupsOf = groupsOf;
  }

  static async load(db: Kysely<any>, networkIds: string[] | null): Promise<Snapshot> {
    let pq = db.selectFrom('network_ports').selectAll();
    if (networkIds) pq = pq.where('network_id', 'in', networkIds.length ? networkIds : ['']);
    const ports = await pq.orderBy('created_at').orderBy('id').execute() as PortRow[];
    const nets = [...new Set(ports.map((p) => p.network_id))];
    const subnetRows = nets.length
      ? await db.selectFrom('network_subnets').selectAll().where('network_id', 'in', nets).orderBy('created_at').orderBy('id').execute() as SubnetRow[]
      : [];
    const subnets = new Map<string, SubnetRow[]>();
    for (const s of subnetRows) subnets.set(s.network_id, [...(subnets.get(s.network_id) ?? []), s]);
    const ids = ports.map((p) => p.id);
    const ips = new Map<string, FixedIp[]>();
    const groupsOf = new Map<string, string[]>();
    if (ids.length) {
      for (const a of await db.selectFrom('network_ip_allocations').select(['port_id', 'subnet_id', 'ip_address']).where('port_id', 'in', ids).orderBy('ip_address').execute()) {
        ips.set(a.port_id, [...(ips.get(a.port_id) ?? []), { subnet_id: a.subnet_id, ip_address: a.ip_address }]);
      }
      for (const g of await db.selectFrom('network_port_security_groups').selectAll().where('port_id', 'in', ids).orderBy('security_group_id').execute()) {
        groupsOf.set(g.port_id, [...(groupsOf.get(g.port_id) ?? []), g.security_group_id]);
      }
    }
    return new Snapshot(ports, subnets, ips, groupsOf);
  }

  /** The hosts with device or router ports on the network, by name. */
  hostsOf(networkId: string): string[] {
    return [...new Set(this.ports.filter((p) => p.network_id === networkId && isPlugged(p)).flatMap(hostsOfPort))].sort();
  }

  dhcpPort(networkId: string): PortRow | null {
    return this.ports.find((p) => p.network_id === networkId && p.device_owner === DHCP_OWNER) ?? null;
  }
}

export function networkKinds(o: { db: Db; log: Logger; hostAddresses: HostAddresses; upHosts: UpHosts }): ResourceKind[] {
  const db = o.db as unknown as Kysely<any>;

  /** The networks a host holds: those of its device ports and of the ports of the routers it serves. */
  async function hostNetworks(hostname: string): Promise<string[]> {
    const rows = await db.selectFrom('network_ports').select(['network_id', 'device_id', 'device_owner', 'binding_host_id', 'binding_vnic_type', 'binding_profile'])
      .where((eb) => eb.or([eb('binding_host_id', '=', hostname), eb('binding_profile', 'like', `%${MIGRATING_TO}%`)])).execute() as PortRow[];
    return [...new Set(rows.filter((r) => isPlugged(r) && isOn(r, hostname)).map((r) => r.network_id))].sort();
  }

  async function networkSpecs(hostname: string, ids: string[]): Promise<Map<string, NetworkSpec>> {
    const out = new Map<string, NetworkSpec>();
    if (!ids.length) return out;
    const nets = await db.selectFrom('network_networks').selectAll().where('id', 'in', ids).execute();
    const snap = await Snapshot.load(db, ids);
    const peers = new Set<string>();
    for (const n of nets) for (const h of snap.hostsOf(n.id)) if (h !== hostname) peers.add(h);
    const addresses = peers.size ? await o.hostAddresses([...peers]) : new Map<string, string>();
    for (const n of nets) {
      const hosts = snap.hostsOf(n.id);
      if (!hosts.includes(hostname)) continue;
      const subnets = snap.subnets.get(n.id) ?? [];
      const dhcpPort = snap.dhcpPort(n.id);
      const dhcpHost = hosts[0];
      const vxlan_peers: VxlanPeer[] = [];
      if (n.network_type === 'vxlan') {
        for (const h of hosts) {
          const ip = addresses.get(h);
          if (h === hostname || !ip) continue;
          const macs = snap.ports.filter((p) => p.network_id === n.id && isPlugged(p) && isOn(p, h)).map((p) => p.mac_address);
          if (dhcpPort && h === dhcpHost) macs.push(dhcpPort.mac_address);
          vxlan_peers.push({ underlay_ip: ip, macs: macs.sort() });
        }
      }
      // dnsmasq serves IPv4 and DHCPv6 (stateful: addresses; stateless: options); SLAAC is the routers' RAs alone
      const dhcpSubnets = new Set(subnets.filter(dnsmasqServes).map((s) => s.id));
      let dhcp: NetworkSpec['dhcp'] = null;
      if (dhcpPort && dhcpHost === hostname && dhcpSubnets.size) {
        const hostsOut: DhcpHost[] = [];
        for (const p of snap.ports) {
          if (p.network_id !== n.id || p.id === dhcpPort.id) continue;
          for (const ip of snap.ips.get(p.id) ?? []) {
            if (!dhcpSubnets.has(ip.subnet_id)) continue;
            const opts = JSON.parse(p.extra_dhcp_opts || '[]') as DhcpOption[];
            hostsOut.push({
              port_id: p.id, mac_address: p.mac_address, ip_address: ip.ip_address, subnet_id: ip.subnet_id, hostname: p.dns_name || defaultHostname(ip.ip_address),
              ...(opts.length ? { extra_dhcp_opts: opts } : {}),
            });
          }
        }
        dhcp = {
          port_id: dhcpPort.id, mac_address: dhcpPort.mac_address, fixed_ips: (snap.ips.get(dhcpPort.id) ?? []).filter((i) => dhcpSubnets.has(i.subnet_id)),
          hosts: hostsOut, dns_domain: n.dns_domain || 'openstacklocal.', lease_seconds: LEASE_SECONDS,
        };
      }
      out.set(n.id, {
        project_id: n.project_id, name: n.name, admin_state_up: !!n.admin_state_up,
        segmentation: n.network_type === 'flat'
          ? { type: 'flat', vni: null, physical_network: n.physical_network }
          : { type: 'vxlan', vni: n.segmentation_id, physical_network: null },
        mtu: n.mtu, subnets: subnets.map(subnetSpec), vxlan_peers, dhcp, deleted: false,
      });
    }
    return out;
  }

  async function portSpecs(hostname: string, ids: string[] | null): Promise<Map<string, PortSpec>> {
    const out = new Map<string, PortSpec>();
    const nets = await hostNetworks(hostname);
    const snap = await Snapshot.load(db, nets);
    const mtus = new Map((nets.length ? await db.selectFrom('network_networks').select(['id', 'mtu']).where('id', 'in', nets).execute() : []).map((n) => [n.id as string, n.mtu as number]));
    const mine = snap.ports.filter((p) => isDevicePort(p) && isOn(p, hostname));
    const indexes = new Map<string, Map<string, number>>();
    for (const p of mine) {
      if (ids && !ids.includes(p.id)) continue;
      const subnets = snap.subnets.get(p.network_id) ?? [];
      const fixed = snap.ips.get(p.id) ?? [];
      // the index the port got when bound to its device (rows from before: by the order the device's ports were made)
      if (!indexes.has(p.device_id)) indexes.set(p.device_id, interfaceIndexes(mine.filter((q) => q.device_id === p.device_id)));
      const index = indexes.get(p.device_id)!.get(p.id)!;
      const dhcpPort = snap.dhcpPort(p.network_id);
      out.set(p.id, {
        project_id: p.project_id, network_id: p.network_id, mac_address: p.mac_address, fixed_ips: fixed, mtu: mtus.get(p.network_id) ?? 1450,
        admin_state_up: !!p.admin_state_up, device_id: p.device_id, device_owner: p.device_owner, vif: vifOf(p.binding_vif_type, index),
        port_security_enabled: !!p.port_security_enabled, security_group_ids: p.port_security_enabled ? snap.groupsOf.get(p.id) ?? [] : [],
        allowed_address_pairs: JSON.parse(p.allowed_address_pairs), ip_config: ipConfig(fixed, subnets, dhcpPort ? snap.ips.get(dhcpPort.id) ?? [] : []),
        deleted: false,
      });
    }
    return out;
  }

  async function groupSpecs(hostname: string, ids: string[] | null): Promise<Map<string, SecurityGroupSpec>> {
    const out = new Map<string, SecurityGroupSpec>();
    const ports = await portSpecs(hostname, null);
    const held = [...new Set([...ports.values()].flatMap((p) => p.security_group_ids))].filter((g) => !ids || ids.includes(g)).sort();
    if (!held.length) return out;
    const groups = await db.selectFrom('network_security_groups').selectAll().where('id', 'in', held).execute();
    const rules = await db.selectFrom('network_security_group_rules').selectAll().where('security_group_id', 'in', held).orderBy('id').execute();
    const remoteIds = [...new Set(rules.map((r) => r.remote_group_id).filter((g): g is string => !!g))];
    const addressIds = [...new Set(rules.map((r) => r.remote_address_group_id).filter((g): g is string => !!g))];
    const members = new Map<string, string[]>();
    if (remoteIds.length) {
      const rows = await db.selectFrom('network_port_security_groups as g').innerJoin('network_ports as p', 'p.id', 'g.port_id')
        .select(['g.security_group_id', 'p.id', 'p.allowed_address_pairs']).where('g.security_group_id', 'in', remoteIds).execute();
      const ips = rows.length
        ? await db.selectFrom('network_ip_allocations').select(['port_id', 'ip_address']).where('port_id', 'in', rows.map((r) => r.id)).execute()
        : [];
      for (const r of rows) {
        const list = members.get(r.security_group_id) ?? [];
        list.push(...ips.filter((i) => i.port_id === r.id).map((i) => i.ip_address));
        list.push(...(JSON.parse(r.allowed_address_pairs) as Array<{ ip_address: string }>).map((a) => a.ip_address));
        members.set(r.security_group_id, list);
      }
    }
    const addressGroups = addressIds.length ? await db.selectFrom('network_address_groups').select(['id', 'addresses']).where('id', 'in', addressIds).execute() : [];
    for (const g of groups) {
      const mine = rules.filter((r) => r.security_group_id === g.id);
      const remote_groups: Record<string, string[]> = {};
      const address_groups: Record<string, string[]> = {};
      for (const r of mine) {
        if (r.remote_group_id) remote_groups[r.remote_group_id] = [...new Set(members.get(r.remote_group_id) ?? [])].sort();
        if (r.remote_address_group_id) address_groups[r.remote_address_group_id] = [...(JSON.parse(addressGroups.find((a) => a.id === r.remote_address_group_id)?.addresses ?? '[]') as string[])].sort();
      }
      out.set(g.id, {
        project_id: g.project_id, name: g.name, stateful: !!g.stateful,
        rules: mine.map((r) => ({
          id: r.id, direction: r.direction, ethertype: r.ethertype, protocol: r.protocol, port_range_min: r.port_range_min, port_range_max: r.port_range_max,
          remote_ip_prefix: r.remote_ip_prefix, remote_group_id: r.remote_group_id, remote_address_group_id: r.remote_address_group_id,
        })),
        remote_groups, address_groups, deleted: false,
      });
    }
    return out;
  }

  /**
   * Gives this host (an agent serving routers that watches is alive) the
   * routers no host serves yet, and those of a host that is down or gone
   * (Neutron's automatic L3 agent failover): their ports are bound here, so their
   * networks follow; the old host, back, finds them gone and removes them.
   * Then the routers it serves.
   */
  async function hostRouters(hostname: string): Promise<RouterRow[]> {
    const up = [...new Set([hostname, ...await o.upHosts()])];
    const orphans = await db.selectFrom('network_routers').select(['id', 'host']).where('host', 'not in', up).execute();
    if (orphans.length) {
      await db.transaction().execute(async (tx) => {
        const ids = orphans.map((r) => r.id);
        await tx.updateTable('network_routers').set({ host: hostname }).where('id', 'in', ids).where('host', 'not in', up).execute();
        const mine = (await tx.selectFrom('network_routers').select('id').where('id', 'in', ids).where('host', '=', hostname).execute()).map((r) => r.id);
        if (mine.length) {
          await tx.updateTable('network_ports').set({ binding_host_id: hostname, binding_vif_type: 'bridge' })
            .where('device_id', 'in', mine).where('device_owner', 'in', [ROUTER_INTERFACE, ROUTER_GATEWAY]).execute();
        }
        for (const r of orphans) if (r.host && mine.includes(r.id)) o.log.warn({ router: r.id, from: r.host, to: hostname }, 'router moved off a host that is down');
      });
    }
    return await db.selectFrom('network_routers').selectAll().where('host', '=', hostname).orderBy('created_at').orderBy('id').execute() as RouterRow[];
  }

  async function routerSpecs(hostname: string, ids: string[] | null): Promise<Map<string, RouterSpec>> {
    const out = new Map<string, RouterSpec>();
    const routers = (await hostRouters(hostname)).filter((r) => !ids || ids.includes(r.id));
    if (!routers.length) return out;
    const rids = routers.map((r) => r.id);
    const ports = await db.selectFrom('network_ports').selectAll().where('device_id', 'in', rids).where('device_owner', 'in', [ROUTER_INTERFACE, ROUTER_GATEWAY])
      .orderBy('created_at').orderBy('id').execute() as PortRow[];
    const allocs = ports.length ? await db.selectFrom('network_ip_allocations').select(['port_id', 'subnet_id', 'ip_address']).where('port_id', 'in', ports.map((p) => p.id)).orderBy('ip_address').execute() : [];
    const subnetIds = [...new Set(allocs.map((a) => a.subnet_id))];
    const subnets = new Map((subnetIds.length ? await db.selectFrom('network_subnets').select(['id', 'cidr', 'gateway_ip', 'ip_version', 'ipv6_ra_mode', 'dns_nameservers']).where('id', 'in', subnetIds).execute() : []).map((s) => [s.id as string, s]));
    const prefixOf = (subnetId: string) => parseCidr(subnets.get(subnetId)?.cidr ?? '', false)?.prefix ?? 32;
    const fips = await db.selectFrom('network_floatingips').selectAll().where('router_id', 'in', rids).orderBy('floating_ip_address').execute();
    const fixedSubnets = new Map<string, string>();
    const fixedPorts = [...new Set(fips.map((f) => f.port_id).filter((p): p is string => !!p))];
    if (fixedPorts.length) {
      for (const a of await db.selectFrom('network_ip_allocations').select(['port_id', 'subnet_id', 'ip_address']).where('port_id', 'in', fixedPorts).execute()) fixedSubnets.set(`${a.port_id}|${a.ip_address}`, a.subnet_id);
    }
    const pfs = fips.length ? await db.selectFrom('network_port_forwardings').selectAll().where('floatingip_id', 'in', fips.map((f) => f.id))
      .orderBy('protocol').orderBy('external_port').execute() : [];
    for (const r of routers) {
      const mine = ports.filter((p) => p.device_id === r.id);
      const interfaces = mine.filter((p) => p.device_owner === ROUTER_INTERFACE).flatMap((p) => allocs.filter((a) => a.port_id === p.id).map((a) => ({
        port_id: p.id, network_id: p.network_id, subnet_id: a.subnet_id, mac_address: p.mac_address, ip_address: a.ip_address, prefixlen: prefixOf(a.subnet_id),
        // IPv6: what the router advertises on the subnet (radvd)
        ...(subnets.get(a.subnet_id)?.ip_version === 6 ? {
          cidr: subnets.get(a.subnet_id)!.cidr as string, ipv6_ra_mode: (subnets.get(a.subnet_id)!.ipv6_ra_mode ?? null) as Ipv6Mode | null,
          dns_nameservers: JSON.parse(subnets.get(a.subnet_id)!.dns_nameservers ?? '[]') as string[],
        } : {}),
      })));
      const attached = new Set(interfaces.map((i) => i.subnet_id));
      const gw = mine.find((p) => p.device_owner === ROUTER_GATEWAY && p.id === r.gw_port_id);
      const gwIps = gw ? allocs.filter((a) => a.port_id === gw.id) : [];
      const gwSubnet = gwIps.map((a) => subnets.get(a.subnet_id)).find((s) => s?.ip_version === 4 && s.gateway_ip);
      const myFips = fips.filter((f) => f.router_id === r.id);
      out.set(r.id, {
        project_id: r.project_id, name: r.name, admin_state_up: !!r.admin_state_up, interfaces,
        external_gateway: gw && r.gw_network_id ? {
          network_id: r.gw_network_id, port_id: gw.id, mac_address: gw.mac_address,
          ip_addresses: gwIps.map((a) => ({ ip_address: a.ip_address, prefixlen: prefixOf(a.subnet_id) })),
          gateway_ip: gwSubnet?.gateway_ip ?? null, enable_snat: !!r.enable_snat,
        } : null,
        routes: JSON.parse(r.routes),
        // a floating IP is served once its fixed address is on one of the router's subnets
        floating_ips: myFips.filter((f) => f.port_id && f.fixed_ip_address && attached.has(fixedSubnets.get(`${f.port_id}|${f.fixed_ip_address}`) ?? ''))
          .map((f) => ({ floating_ip: f.floating_ip_address, fixed_ip: f.fixed_ip_address!, port_id: f.port_id! })),
        port_forwardings: pfs.filter((pf) => myFips.some((f) => f.id === pf.floatingip_id)).map((pf) => ({
          floating_ip: myFips.find((f) => f.id === pf.floatingip_id)!.floating_ip_address, external_port: pf.external_port,
          internal_ip: pf.internal_ip_address, internal_port: pf.internal_port, protocol: pf.protocol as 'tcp' | 'udp',
        })),
        deleted: false,
      });
    }
    return out;
  }

  const kind = <S>(name: string, observed: ResourceKind['observed'], specs: (hostname: string, ids: string[] | null) => Promise<Map<string, S>>,
    report: (hostname: string, reports: ResourceReport[]) => Promise<void>): ResourceKind => ({
    kind: name,
    observed,
    async placed(hostname) {
      return new Map([...(await specs(hostname, null))].map(([id, s]) => [id, versionOf(s)]));
    },
    async desired(ids, hostname) {
      if (!hostname) return [];
      return [...(await specs(hostname, ids))].map(([id, spec]): Resource => ({ kind: name, id, version: versionOf(spec), spec }));
    },
    report,
  });

  return [
    kind(NETWORK_KIND, NetworkObservedBody, async (h, ids) => networkSpecs(h, ids ?? await hostNetworks(h)), async () => undefined),
    kind(PORT_KIND, PortObservedBody, portSpecs, async (hostname, reports) => {
      for (const r of reports) {
        const state = (r.observed as { state: string }).state;
        if (state === 'deleted') continue;
        const status = state === 'active' && !r.error ? 'ACTIVE' : 'DOWN';
        await db.updateTable('network_ports').set({ status }).where('id', '=', r.id).where('binding_host_id', '=', hostname).where('status', '!=', status).execute();
      }
    }),
    kind(SECURITY_GROUP_KIND, NetworkObservedBody, groupSpecs, async () => undefined),
    kind(ROUTER_KIND, NetworkObservedBody, routerSpecs, async (hostname, reports) => {
      for (const r of reports) {
        const state = (r.observed as { state: string }).state;
        if (state === 'deleted') continue;
        const status = state === 'active' && !r.error ? 'ACTIVE' : 'DOWN';
        const u = await db.updateTable('network_routers').set({ status }).where('id', '=', r.id).where('host', '=', hostname).executeTakeFirst();
        // the router's floating IPs work once its host made it real
        if (Number(u.numUpdatedRows)) await db.updateTable('network_floatingips').set({ status }).where('router_id', '=', r.id).where('status', '!=', status).execute();
      }
    }),
  ];
}

/**
 * How the agent plugs a bound port, by its binding:vif_type (the server's
 * kind chose it: server-ports.ts bind): `tap` a tap on the network's bridge
 * that the VM's hypervisor opens; anything else (`bridge`) a veth whose
 * inner end is eth<index> in the server's namespace.
 */
export function vifOf(bindingVifType: string, index: number): PortVif {
  return { type: bindingVifType === 'tap' ? VifType.tap : VifType.veth, ifname: `eth${index}` };
}

function subnetSpec(s: SubnetRow): SubnetSpec {
  return {
    id: s.id, name: s.name, cidr: s.cidr, ip_version: s.ip_version as 4 | 6, gateway_ip: s.gateway_ip, enable_dhcp: !!s.enable_dhcp,
    dns_nameservers: JSON.parse(s.dns_nameservers), host_routes: JSON.parse(s.host_routes), allocation_pools: JSON.parse(s.allocation_pools),
    ipv6_ra_mode: s.ipv6_ra_mode as SubnetSpec['ipv6_ra_mode'], ipv6_address_mode: s.ipv6_address_mode as SubnetSpec['ipv6_address_mode'],
  };
}

const METADATA_ROUTE = '169.254.169.254/32';

/** What the server's side of a port is set to: its addresses, the subnets' gateways, routes (and the metadata route) and name servers. */
function ipConfig(fixed: FixedIp[], subnets: SubnetRow[], dhcpIps: FixedIp[]): PortIpConfig {
  const c: PortIpConfig = { addresses: [], gateway4: null, gateway6: null, routes: [], dns_nameservers: [], dns_search: [] };
  for (const ip of fixed) {
    const s = subnets.find((x) => x.id === ip.subnet_id);
    const cidr = s && parseCidr(s.cidr, false);
    if (!s || !cidr) continue;
    c.addresses.push({ subnet_id: s.id, ip_address: ip.ip_address, prefixlen: cidr.prefix, ip_version: cidr.version });
    if (s.gateway_ip && cidr.version === 4) c.gateway4 ??= s.gateway_ip;
    if (s.gateway_ip && cidr.version === 6) c.gateway6 ??= s.gateway_ip;
    c.routes.push(...JSON.parse(s.host_routes));
    // the metadata service (169.254.169.254) is in the DHCP namespace: a host route to it via the DHCP port, as Neutron's isolated metadata gives
    const viaDhcp = cidr.version === 4 && s.enable_dhcp ? dhcpIps.find((d) => d.subnet_id === s.id)?.ip_address : undefined;
    if (viaDhcp && !c.routes.some((r) => r.destination === METADATA_ROUTE)) c.routes.push({ destination: METADATA_ROUTE, nexthop: viaDhcp });
    const ns = JSON.parse(s.dns_nameservers) as string[];
    c.dns_nameservers.push(...(ns.length ? ns : dhcpIps.filter((d) => d.subnet_id === s.id && s.enable_dhcp).map((d) => d.ip_address)));
  }
  c.dns_nameservers = [...new Set(c.dns_nameservers)];
  return c;
}
