// The ports of compute's servers (Nova's side of Neutron, in-process): at
// server create, the ports it asks for are made (device_owner compute:<az>,
// device_id the server) or the ports it names are taken; once the scheduler
// picks a host they are bound there (binding:host_id, which places them on
// that host's agent: kinds.ts); the server view shows their addresses; a
// deleted server's made ports go, the named ones are detached. Errors are
// NeutronErrors (status and message); compute turns them into its own.
import type { Kysely } from 'kysely';
import type { Db } from '../db/database.ts';
import { uuid } from '../common/ids.ts';
import { parseJsonObject } from '../common/json.ts';
import type { NetworkContext } from './context.ts';
import { badRequest, conflict, ipExhausted, macInUse, NeutronError, notFound } from './errors.ts';
import { associationWith, insertFloatingIp, removeFloatingIp, type FloatingIpRow } from './floating-ips.ts';
import { claimInterfaceIndex, interfaceIndexes } from './interface-index.ts';
import { MIGRATING_TO, tapName } from './protocol.ts';
import { allocate, fixedIpsOf } from './ipam.ts';
import { buildNetworkData, type NetworkData, type NetworkDataPort, type NetworkDataSubnet } from './metadata-network-data.ts';
import { ensureDhcpPort, keepMark, newMac, removePort, unbindPort, type PortRow } from './ports.ts';
import { checkQuota } from './quotas.ts';
import { parseCidr } from './ipnet.ts';
import { bumpRevision, newStandard } from './resource.ts';
import { retryOnCollision } from './retry.ts';
import { ensureDefaultGroup } from './security-groups.ts';
import type { SubnetRow } from './subnets.ts';
import type { AutoTopology } from './auto-topology.ts';

/** The binding:vif_type of a bound server port (kinds.ts hands a `tap` port to its agent as a tap, a `bridge` one as a veth). */
export type BoundVifType = 'bridge' | 'tap' | 'other';

/** A bare-metal node's NIC a server's port is bound to (Ironic's flat network interface). */
export interface BaremetalBinding {
  /** The node's uuid (the port's device when the node's conductor is not known). */
  node: string;
  /** The host of the node's conductor: binding:host_id (that host's bridge reaches the node; it holds the network and serves its DHCP). */
  host: string | null;
  /** The NIC's MAC: the port's mac_address. */
  mac: string;
  /** The node port's local_link_connection: binding:profile local_link_information. */
  localLinkInformation: Array<Record<string, unknown>>;
  /** The node port's physical network, when it names one. */
  physicalNetwork?: string | null;
}

/** Nova's `networks` of a server create (from 2.37 required; `auto`/`none` from 2.37). */
export type RequestedNetworks = 'auto' | 'none' | Array<{ uuid?: string; port?: string; fixed_ip?: string }>;

export interface ServerAddress { version: 4 | 6; addr: string; 'OS-EXT-IPS:type': 'fixed' | 'floating'; 'OS-EXT-IPS-MAC:mac_addr': string }

export interface ServerNetworking {
  /** Makes or takes the server's ports (unbound); the ids, in the order asked. Made ports get `securityGroups` (ids; default: the project's default group). */
  allocate(o: { serverId: string; projectId: string; availabilityZone: string; requested: RequestedNetworks; securityGroups?: string[] }): Promise<string[]>;
  /**
   * Binds the server's ports to the host the scheduler chose (null: unbinds
   * them), with the binding:vif_type of the server's kind: `bridge` (the
   * agent plugs a veth into the server's namespace) or `tap` (a tap a VM opens).
   */
  bind(serverId: string, host: string | null, vifType?: BoundVifType): Promise<void>;
  /**
   * A live migration's pre-plug (Neutron's `migrating_to` in binding:profile,
   * as Nova sets it): the server's bound ports are also plugged on `host`
   * (its network, taps and security groups made there) while they stay bound
   * where they are; null ends it. `bind` ends it too.
   */
  migrating(serverId: string, host: string | null): Promise<void>;
  /**
   * Binds one of the server's ports to a bare-metal node's NIC, as Ironic's
   * flat network interface binds a tenant VIF: binding:host_id the host of
   * the node's conductor (Ironic's is the node's uuid; here the host that
   * reaches the node holds the network and serves its DHCP), the node when
   * it has none,
   * binding:vnic_type baremetal, binding:vif_type other, binding:profile
   * local_link_information (and physical_network) from the node's port, and
   * the NIC's MAC as the port's mac_address (Neutron's 409 MacAddressInUse
   * when another port of the network has it). No agent plugs it.
   */
  bindBaremetal(serverId: string, portId: string, b: BaremetalBinding): Promise<void>;
  /** Nova's `addresses` of each server: network name -> addresses. */
  addresses(serverIds: string[]): Promise<Map<string, Record<string, ServerAddress[]>>>;
  /** Deletes the server's ports except `preserve` (the ports it was given), which are detached. */
  release(serverId: string, preserve: string[]): Promise<void>;
  /** The server's ports as Nova's interface attachments, in the order they were made. */
  interfaces(serverId: string): Promise<ServerInterface[]>;
  /**
   * Attaches a port to a server (Nova's os-interface): makes one on
   * `networkId` (with `fixedIp`) or takes `portId`; bound to `host` when the
   * server has one, so its agent plugs it into the running server.
   */
  attach(o: { serverId: string; projectId: string; availabilityZone: string; host: string | null; vifType?: BoundVifType; portId?: string; networkId?: string; fixedIp?: string; securityGroups?: string[] }): Promise<string>;
  /** Detaches a server's port: deleted when compute made it, unbound and kept when `keep`. */
  detach(serverId: string, portId: string, keep: boolean): Promise<void>;
  /** A project's security group by id or name (404 unknown; 409 a name several groups have). */
  findSecurityGroup(projectId: string, nameOrId: string): Promise<ServerSecurityGroup>;
  /** The security groups on each server's ports (port security on), by name then id. */
  securityGroupsOf(serverIds: string[]): Promise<Map<string, ServerSecurityGroup[]>>;
  /** Puts a group on (or takes it off) every port of the server; the number of ports changed. */
  setSecurityGroup(serverId: string, groupId: string, on: boolean): Promise<number>;

  // Nova's deprecated proxies (os-security-groups, os-security-group-rules, os-networks, os-tenant-networks)
  /** Groups with their rules: a project's (its default group made first), or every project's (null); `ids` narrows. */
  groups(projectId: string | null, ids?: string[]): Promise<ProxyGroup[]>;
  /** A new group with Neutron's egress rules; 409 OverQuota. */
  createGroup(projectId: string, name: string, description: string): Promise<string>;
  updateGroup(id: string, name: string, description: string): Promise<void>;
  /** 409 for the default group or one a port uses; rules of other groups naming it as their remote go with it. */
  deleteGroup(id: string): Promise<void>;
  /** An ingress rule (a CIDR as given, its ethertype from it; or a remote group); 400 bad CIDR, 409 a duplicate or OverQuota. */
  createRule(r: { groupId: string; protocol: string | null; from: number | null; to: number | null; cidr: string | null; remoteGroupId: string | null }): Promise<ProxyRule>;
  /** A rule and its group's project, or undefined. */
  findRule(id: string): Promise<{ id: string; security_group_id: string; project_id: string } | undefined>;
  deleteRule(id: string): Promise<void>;
  /** The networks a project may use (its own and shared; null: all). */
  networks(projectId: string | null): Promise<Array<{ id: string; name: string }>>;

  // Nova's os-floating-ips, os-floating-ip-pools and addFloatingIp/removeFloatingIp (floating-ip proxies below)
  /** A project's floating IPs (null: all), by creation; `id` / `address` narrow. */
  floatingIps(projectId: string | null, by?: { id?: string; address?: string }): Promise<ProxyFloatingIp[]>;
  /** The external networks' names (their ids when unnamed): Nova's floating IP pools. */
  floatingIpPools(): Promise<string[]>;
  /**
   * A new floating IP of the project on the external network named (or
   * with the id) `pool`, the default external network when null; its id.
   * 404 FloatingIpPoolNotFound, 409 OverQuota, 409 IpAddressGenerationFailure.
   */
  allocateFloatingIp(projectId: string, pool: string | null): Promise<string>;
  /** Deletes a floating IP (and its association). */
  releaseFloatingIp(id: string): Promise<void>;
  /** Associates a floating IP with the server's port holding `fixedIp`: Neutron's checks (404 no such port, 404 no router, 409). */
  associateFloatingIp(id: string, serverId: string, fixedIp: string): Promise<void>;
  disassociateFloatingIp(id: string): Promise<void>;
}

/** A floating IP as Nova's proxy shows it; `pool` is its network's name (or id), `instance_id` its port's device. */
export interface ProxyFloatingIp { id: string; ip: string; pool: string; fixed_ip: string | null; instance_id: string | null; port_id: string | null }

export interface ProxyRule {
  id: string; security_group_id: string; direction: string; ethertype: string; protocol: string | null; port_range_min: number | null;
  port_range_max: number | null; remote_ip_prefix: string | null; remote_group_id: string | null;
}
export interface ProxyGroup extends ServerSecurityGroup { rules: ProxyRule[] }

export interface ServerInterface {
  port_id: string; net_id: string; mac_addr: string; port_state: string; fixed_ips: Array<{ subnet_id: string; ip_address: string }>;
  /** The port's network's provider:physical_network (a bare-metal VIF takes a node's port on it: Ironic's physnets). */
  physical_network: string | null;
}
export interface ServerSecurityGroup { id: string; name: string; description: string; project_id: string }

export function serverNetworking(ctx: NetworkContext, topology?: AutoTopology): ServerNetworking {
  const db = ctx.db as unknown as Kysely<any>;

  /** The networks a project may put a port on: its own and shared ones. */
  const usable = async (projectId: string) =>
    await db.selectFrom('network_networks').select(['id', 'project_id', 'shared', 'external']).where((e) => e.or([e('project_id', '=', projectId), e('shared', '=', 1)]))
      .orderBy('created_at').orderBy('id').execute();

  async function makePort(serverId: string, projectId: string, az: string, networkId: string, fixedIp?: string, securityGroups?: string[]): Promise<string> {
    const groups = securityGroups?.length ? securityGroups : [await ensureDefaultGroup(db, projectId)];
    const id = uuid();
    await retryOnCollision(() => db.transaction().execute(async (tx) => {
      await checkQuota(tx, projectId, 'port');
      const mac = newMac(ctx.config.macPrefix);
      await tx.insertInto('network_ports').values({
        ...newStandard(id, projectId, undefined), network_id: networkId, name: '', mac_address: mac, admin_state_up: 1, status: 'DOWN',
        device_id: serverId, device_owner: `compute:${az}`, port_security_enabled: 1, allowed_address_pairs: '[]',
        binding_host_id: '', binding_vnic_type: 'normal', binding_vif_type: 'unbound', binding_profile: '{}', binding_vif_details: '{}', dns_name: '',
      }).execute();
      const subnets = await tx.selectFrom('network_subnets').selectAll().where('network_id', '=', networkId).orderBy('created_at').orderBy('id').execute() as SubnetRow[];
      await allocate(tx, { networkId, subnets, portId: id, mac, deviceOwner: `compute:${az}`, requested: fixedIp ? [{ ip_address: fixedIp }] : undefined });
      await tx.insertInto('network_port_security_groups').values(groups.map((g) => ({ port_id: id, security_group_id: g }))).execute();
      await claimInterfaceIndex(tx, serverId, id);
    }), () => ipExhausted(networkId));
    return id;
  }

  /** Takes a port the project holds for the server (404 unknown or another project's; 409 in use). */
  async function takePort(serverId: string, projectId: string, az: string, portId: string): Promise<void> {
    const p = await db.selectFrom('network_ports').select(['id', 'project_id', 'device_id']).where('id', '=', portId).executeTakeFirst();
    if (!p || p.project_id !== projectId) throw notFound.port(portId);
    if (p.device_id) throw conflict('PortInUse', `Port ${portId} is still in use.`);
    await retryOnCollision(() => db.transaction().execute(async (tx) => {
      const u = await tx.updateTable('network_ports').set({ device_id: serverId, device_owner: `compute:${az}` })
        .where('id', '=', portId).where('device_id', '=', '').executeTakeFirst();
      if (!Number(u.numUpdatedRows)) throw conflict('PortInUse', `Port ${portId} is still in use.`);
      await claimInterfaceIndex(tx, serverId, portId);
    }), () => conflict('PortInUse', `Port ${portId} could not be given an interface on server ${serverId}; try again.`));
  }

  const serverPorts = (serverId: string) => db.selectFrom('network_ports').selectAll().where('device_id', '=', serverId).where('device_owner', 'like', 'compute:%');

  /** Sets or clears the ports' `migrating_to` (ServerNetworking.migrating). */
const migrating = async (serverId: string, host: string | null): Promise<void> => {
    const ports = await db.selectFrom('network_ports').select(['id', 'binding_profile']).where('device_id', '=', serverId).where('device_owner', 'like', 'compute:%').execute();
    for (const p of ports) {
      const profile = parseJsonObject(p.binding_profile);
      if ((profile[MIGRATING_TO] ?? null) === host) continue;
      if (host) profile[MIGRATING_TO] = host;
      else delete profile[MIGRATING_TO];
      await db.updateTable('network_ports').set({ binding_profile: JSON.stringify(profile) }).where('id', '=', p.id).execute();
    }
  };

  return {
    ...attachments(),
    ...proxies(),
    ...floatingIpProxies(),
    async allocate(o) {
      if (o.requested === 'none') return [];
      const nets = await usable(o.projectId);
      let asked = o.requested;
      if (asked === 'auto') {
        // Nova's auto: the project's one usable network; none: its auto-allocated topology's network
        // (no default external network to make one with: no port)
        const candidates = nets.filter((n) => !n.external);
        if (!candidates.length) {
          const auto = await topology?.ensure(o.projectId);
          if (!auto) return [];
          const made = { id: auto, project_id: o.projectId, shared: 0, external: 0 };
          candidates.push(made);
          nets.push(made);
        }
        if (candidates.length > 1) throw conflict('NetworkAmbiguous', 'Multiple possible networks found, use a Network ID to be more specific.');
        asked = [{ uuid: candidates[0]!.id }];
      }
      const made: string[] = [];
      const taken: string[] = [];
      try {
        for (const a of asked) {
          if (a.port) {
            await takePort(o.serverId, o.projectId, o.availabilityZone, a.port);
            taken.push(a.port);
            made.push(a.port);
            continue;
          }
          if (!a.uuid || !nets.some((n) => n.id === a.uuid)) throw notFound.network(a.uuid ?? '');
          made.push(await makePort(o.serverId, o.projectId, o.availabilityZone, a.uuid, a.fixed_ip, o.securityGroups));
        }
      } catch (err) {
        // all or nothing: what this call made goes, what it took is given back
        for (const id of made) {
          if (taken.includes(id)) await db.updateTable('network_ports').set({ device_id: '', device_owner: '', interface_index: null }).where('id', '=', id).execute();
          else await db.transaction().execute((tx) => removePort(tx, id));
        }
        throw err;
      }
      return made;
    },

    async bind(serverId, host, vifType = 'bridge') {
      await db.updateTable('network_ports').set({ binding_host_id: host ?? '', binding_vif_type: host ? vifType : 'unbound', ...(host ? {} : { status: 'DOWN' }) })
        .where('device_id', '=', serverId).where('device_owner', 'like', 'compute:%').execute();
      await migrating(serverId, null);
      if (host) {
        const nets = await db.selectFrom('network_ports').select('network_id').distinct().where('device_id', '=', serverId).execute();
        // the network's DHCP port, as a port bound through the API gets it
        for (const n of nets) await retryOnCollision(() => db.transaction().execute((tx) => ensureDhcpPort(tx, n.network_id, ctx.config.macPrefix)), () => ipExhausted(n.network_id));
      }
    },

    migrating,

    async bindBaremetal(serverId, portId, b) {
      await db.transaction().execute(async (tx) => {
        const p = await tx.selectFrom('network_ports').selectAll().where('id', '=', portId).where('device_id', '=', serverId).executeTakeFirst();
        if (!p) throw notFound.port(portId);
        const mac = b.mac.toLowerCase();
        if (mac !== p.mac_address) {
          const other = await tx.selectFrom('network_ports').select('id').where('network_id', '=', p.network_id).where('mac_address', '=', mac).where('id', '!=', portId).executeTakeFirst();
          if (other) throw macInUse(mac, p.network_id);
        }
        const profile = { local_link_information: b.localLinkInformation, ...(b.physicalNetwork ? { physical_network: b.physicalNetwork } : {}) };
        await tx.updateTable('network_ports').set({
          mac_address: mac, binding_host_id: b.host ?? b.node, binding_vnic_type: 'baremetal', binding_vif_type: 'other', binding_profile: keepMark(p.binding_profile, profile),
        }).where('id', '=', portId).execute();
        await bumpRevision(tx as unknown as Kysely<any>, 'network_ports', portId, null, 'port');
        // the network's DHCP port, as a port bound through the API gets it
        await ensureDhcpPort(tx, p.network_id, ctx.config.macPrefix);
      });
    },

    async addresses(serverIds) {
      const out = new Map<string, Record<string, ServerAddress[]>>();
      if (!serverIds.length) return out;
      const ports = await db.selectFrom('network_ports as p').innerJoin('network_networks as n', 'n.id', 'p.network_id')
        .select(['p.id', 'p.device_id', 'p.mac_address', 'n.name as network_name', 'n.id as network_id'])
        .where('p.device_id', 'in', serverIds).where('p.device_owner', 'like', 'compute:%').orderBy('p.created_at').orderBy('p.id').execute();
      const ips = await fixedIpsOf(db, ports.map((p) => p.id));
      // Nova lists a fixed address's floating IPs under the same network, after the fixed addresses
      const fips = ports.length ? await db.selectFrom('network_floatingips').select(['port_id', 'fixed_ip_address', 'floating_ip_address'])
        .where('port_id', 'in', ports.map((p) => p.id)).orderBy('created_at').orderBy('id').execute() : [];
      for (const p of ports) {
        const view = out.get(p.device_id) ?? {};
        const key = p.network_name || p.network_id;
        const mine = ips.get(p.id) ?? [];
        view[key] = [...(view[key] ?? []), ...mine.map((ip): ServerAddress => ({
          version: ip.ip_address.includes(':') ? 6 : 4, addr: ip.ip_address, 'OS-EXT-IPS:type': 'fixed', 'OS-EXT-IPS-MAC:mac_addr': p.mac_address,
        })), ...fips.filter((f) => f.port_id === p.id && mine.some((ip) => ip.ip_address === f.fixed_ip_address)).map((f): ServerAddress => ({
          version: 4, addr: f.floating_ip_address, 'OS-EXT-IPS:type': 'floating', 'OS-EXT-IPS-MAC:mac_addr': p.mac_address,
        }))];
        out.set(p.device_id, view);
      }
      return out;
    },

    async release(serverId, preserve) {
      const ports = await db.selectFrom('network_ports').select('id').where('device_id', '=', serverId).where('device_owner', 'like', 'compute:%').execute();
      // (a port a bare-metal operation still boots from, the node's cleaning after its server, is handed over to it or
      // stays bound: ports.ts removePort and unbindPort)
      for (const p of ports) await db.transaction().execute((tx) => preserve.includes(p.id) ? unbindPort(tx, p.id) : removePort(tx, p.id));
    },
  };

  // ---- os-interface and the servers' security groups (Nova's side of them)
  function attachments(): Pick<ServerNetworking, 'interfaces' | 'attach' | 'detach' | 'findSecurityGroup' | 'securityGroupsOf' | 'setSecurityGroup'> {
    return {
      async interfaces(serverId) {
        const ports = await serverPorts(serverId).orderBy('created_at').orderBy('id').execute();
        const ips = await fixedIpsOf(db, ports.map((p) => p.id));
        const netIds = [...new Set(ports.map((p) => p.network_id as string))];
        const nets = netIds.length ? await db.selectFrom('network_networks').select(['id', 'physical_network']).where('id', 'in', netIds).execute() : [];
        const physnet = new Map(nets.map((n) => [n.id as string, (n.physical_network as string | null) ?? null]));
        return ports.map((p) => ({
          port_id: p.id, net_id: p.network_id, mac_addr: p.mac_address, port_state: p.status, fixed_ips: ips.get(p.id) ?? [], physical_network: physnet.get(p.network_id) ?? null,
        }));
      },

      async attach(o) {
        let id: string;
        if (o.portId) {
          await takePort(o.serverId, o.projectId, o.availabilityZone, o.portId);
          id = o.portId;
        } else {
          const nets = await usable(o.projectId);
          // neither port nor network: the project's one network, as Nova picks
          const candidates = nets.filter((n) => !n.external);
          if (o.networkId === undefined && !candidates.length) throw badRequest('No specific network was requested and none are available for this project.');
          if (o.networkId === undefined && candidates.length > 1) throw badRequest('Multiple possible networks found, use a Network ID to be more specific.');
          const networkId: string = o.networkId ?? candidates[0]!.id;
          if (!nets.some((n) => n.id === networkId)) throw notFound.network(networkId);
          id = await makePort(o.serverId, o.projectId, o.availabilityZone, networkId, o.fixedIp, o.securityGroups);
        }
        if (o.host) {
          await db.updateTable('network_ports').set({ binding_host_id: o.host, binding_vif_type: o.vifType ?? 'bridge' }).where('id', '=', id).execute();
          const p = await db.selectFrom('network_ports').select('network_id').where('id', '=', id).executeTakeFirstOrThrow();
          await retryOnCollision(() => db.transaction().execute((tx) => ensureDhcpPort(tx, p.network_id, ctx.config.macPrefix)), () => ipExhausted(p.network_id));
        }
        return id;
      },

      async detach(serverId, portId, keep) {
        const p = await serverPorts(serverId).where('id', '=', portId).executeTakeFirst();
        if (!p) throw notFound.port(portId);
        await db.transaction().execute((tx) => keep ? unbindPort(tx, portId) : removePort(tx, portId));
      },

      async findSecurityGroup(projectId, nameOrId) {
        await ensureDefaultGroup(db, projectId);
        const cols = ['id', 'name', 'description', 'project_id'] as const;
        const byId = await db.selectFrom('network_security_groups').select([...cols]).where('id', '=', nameOrId).where('project_id', '=', projectId).executeTakeFirst();
        if (byId) return byId as ServerSecurityGroup;
        const byName = await db.selectFrom('network_security_groups').select([...cols]).where('name', '=', nameOrId).where('project_id', '=', projectId).execute();
        if (byName.length > 1) throw conflict('NoUniqueMatch', `Multiple security groups found matching '${nameOrId}'. Use an ID to be more specific.`);
        if (!byName.length) throw notFound.security_group(nameOrId);
        return byName[0] as ServerSecurityGroup;
      },

      async securityGroupsOf(serverIds) {
        const out = new Map<string, ServerSecurityGroup[]>();
        if (!serverIds.length) return out;
        const rows = await db.selectFrom('network_ports as p').innerJoin('network_port_security_groups as b', 'b.port_id', 'p.id')
          .innerJoin('network_security_groups as g', 'g.id', 'b.security_group_id')
          .select(['p.device_id', 'g.id', 'g.name', 'g.description', 'g.project_id'])
          .where('p.device_id', 'in', serverIds).where('p.device_owner', 'like', 'compute:%').where('p.port_security_enabled', '=', 1)
          .orderBy('g.name').orderBy('g.id').execute();
        for (const r of rows) {
          const list = out.get(r.device_id) ?? [];
          if (!list.some((g) => g.id === r.id)) list.push({ id: r.id, name: r.name, description: r.description, project_id: r.project_id });
          out.set(r.device_id, list);
        }
        return out;
      },

      async setSecurityGroup(serverId, groupId, on) {
        const ports = await serverPorts(serverId).select('id').execute();
        let changed = 0;
        for (const p of ports) {
          await db.transaction().execute(async (tx) => {
            const has = await tx.selectFrom('network_port_security_groups').select('port_id').where('port_id', '=', p.id).where('security_group_id', '=', groupId).executeTakeFirst();
            if (on && !has) await tx.insertInto('network_port_security_groups').values({ port_id: p.id, security_group_id: groupId }).execute();
            else if (!on && has) await tx.deleteFrom('network_port_security_groups').where('port_id', '=', p.id).where('security_group_id', '=', groupId).execute();
            else return;
            await bumpRevision(tx, 'network_ports', p.id, null, 'port');
            changed++;
          });
        }
        return changed;
      },
    };
  }

  // ---- the tables behind Nova's deprecated proxies
  function proxies(): Pick<ServerNetworking, 'groups' | 'createGroup' | 'updateGroup' | 'deleteGroup' | 'createRule' | 'findRule' | 'deleteRule' | 'networks'> {
    const ruleCols = ['id', 'security_group_id', 'direction', 'ethertype', 'protocol', 'port_range_min', 'port_range_max', 'remote_ip_prefix', 'remote_group_id'] as const;
    return {
      async groups(projectId, ids) {
        if (projectId) await ensureDefaultGroup(db, projectId);
        let q = db.selectFrom('network_security_groups').select(['id', 'name', 'description', 'project_id']);
        if (projectId) q = q.where('project_id', '=', projectId);
        if (ids) q = q.where('id', 'in', ids.length ? ids : ['']);
        const rows = await q.orderBy('created_at').orderBy('id').execute() as ServerSecurityGroup[];
        const rules = rows.length ? await db.selectFrom('network_security_group_rules').select([...ruleCols]).where('security_group_id', 'in', rows.map((g) => g.id))
          .orderBy('created_at').orderBy('id').execute() as ProxyRule[] : [];
        return rows.map((g) => ({ ...g, rules: rules.filter((r) => r.security_group_id === g.id) }));
      },

      async createGroup(projectId, name, description) {
        await ensureDefaultGroup(db, projectId);
        const id = uuid();
        await db.transaction().execute(async (tx) => {
          await checkQuota(tx, projectId, 'security_group');
          await tx.insertInto('network_security_groups').values({ ...newStandard(id, projectId, description), name, stateful: 1 }).execute();
          // a new group lets everything out, as Neutron's does
          await tx.insertInto('network_security_group_rules').values((['IPv4', 'IPv6'] as const).map((ethertype) => ({
            ...newStandard(uuid(), projectId, ''), security_group_id: id, direction: 'egress', ethertype, protocol: null,
            port_range_min: null, port_range_max: null, remote_ip_prefix: null, remote_group_id: null, remote_address_group_id: null,
          }))).execute();
        });
        return id;
      },

      async updateGroup(id, name, description) {
        await db.transaction().execute(async (tx) => {
          await tx.updateTable('network_security_groups').set({ name, description }).where('id', '=', id).execute();
          await bumpRevision(tx, 'network_security_groups', id, null, 'security_group');
        });
      },

      async deleteGroup(id) {
        if (await db.selectFrom('network_default_security_groups').select('project_id').where('security_group_id', '=', id).executeTakeFirst()) {
          throw conflict('SecurityGroupCannotRemoveDefault', 'Insufficient rights for removing default security group.');
        }
        if (await db.selectFrom('network_port_security_groups').select('port_id').where('security_group_id', '=', id).executeTakeFirst()) {
          throw conflict('SecurityGroupInUse', `Security Group ${id} in use.`);
        }
        await db.transaction().execute(async (tx) => {
          await tx.deleteFrom('network_security_group_rules').where((e) => e.or([e('security_group_id', '=', id), e('remote_group_id', '=', id)])).execute();
          await tx.deleteFrom('network_security_groups').where('id', '=', id).execute();
        });
      },

      async createRule(r) {
        let ethertype: 'IPv4' | 'IPv6' = 'IPv4';
        if (r.cidr !== null) {
          const c = parseCidr(r.cidr.includes('/') ? r.cidr : `${r.cidr}/${r.cidr.includes(':') ? 128 : 32}`, false);
          if (!c) throw badRequest(`Invalid cidr ${r.cidr}.`);
          ethertype = c.version === 6 ? 'IPv6' : 'IPv4';
        }
        const eq = (col: string, v: string | number | null) => (q: any) => v === null ? q.where(col, 'is', null) : q.where(col, '=', v);
        let dup = db.selectFrom('network_security_group_rules').select('id').where('security_group_id', '=', r.groupId).where('direction', '=', 'ingress').where('ethertype', '=', ethertype);
        for (const [col, v] of [['protocol', r.protocol], ['port_range_min', r.from], ['port_range_max', r.to], ['remote_ip_prefix', r.cidr], ['remote_group_id', r.remoteGroupId]] as const) dup = eq(col, v)(dup);
        if (await dup.executeTakeFirst()) throw conflict('SecurityGroupRuleExists', 'Security group rule already exists.');
        const group = await db.selectFrom('network_security_groups').select('project_id').where('id', '=', r.groupId).executeTakeFirst();
        if (!group) throw notFound.security_group(r.groupId);
        const id = uuid();
        await db.transaction().execute(async (tx) => {
          await checkQuota(tx, group.project_id, 'security_group_rule');
          await tx.insertInto('network_security_group_rules').values({
            ...newStandard(id, group.project_id, ''), security_group_id: r.groupId, direction: 'ingress', ethertype, protocol: r.protocol,
            port_range_min: r.from, port_range_max: r.to, remote_ip_prefix: r.cidr, remote_group_id: r.remoteGroupId, remote_address_group_id: null,
          }).execute();
          await bumpRevision(tx, 'network_security_groups', r.groupId, null, 'security_group');
        });
        return await db.selectFrom('network_security_group_rules').select([...ruleCols]).where('id', '=', id).executeTakeFirstOrThrow() as ProxyRule;
      },

      async findRule(id) {
        return await db.selectFrom('network_security_group_rules as r').innerJoin('network_security_groups as g', 'g.id', 'r.security_group_id')
          .select(['r.id', 'r.security_group_id', 'g.project_id']).where('r.id', '=', id).executeTakeFirst();
      },

      async deleteRule(id) {
        const r = await db.selectFrom('network_security_group_rules').select('security_group_id').where('id', '=', id).executeTakeFirst();
        if (!r) throw notFound.security_group_rule(id);
        await db.transaction().execute(async (tx) => {
          await tx.deleteFrom('network_security_group_rules').where('id', '=', id).execute();
          await bumpRevision(tx, 'network_security_groups', r.security_group_id, null, 'security_group');
        });
      },

      async networks(projectId) {
        let q = db.selectFrom('network_networks').select(['id', 'name']);
        if (projectId !== null) q = q.where((e) => e.or([e('project_id', '=', projectId), e('shared', '=', 1)]));
        return await q.orderBy('created_at').orderBy('id').execute();
      },
    };
  }

  // ---- the tables behind Nova's floating IP proxies (the floating IP module's rules)
  function floatingIpProxies(): Pick<ServerNetworking, 'floatingIps' | 'floatingIpPools' | 'allocateFloatingIp' | 'releaseFloatingIp' | 'associateFloatingIp' | 'disassociateFloatingIp'> {
    const fipRow = async (tx: Kysely<any>, id: string) => {
      const row = await tx.selectFrom('network_floatingips').selectAll().where('id', '=', id).executeTakeFirst() as FloatingIpRow | undefined;
      if (!row) throw notFound.floatingip(id);
      return row;
    };
    return {
      async floatingIps(projectId, by = {}) {
        let q = db.selectFrom('network_floatingips as f').innerJoin('network_networks as n', 'n.id', 'f.floating_network_id')
          .leftJoin('network_ports as p', 'p.id', 'f.port_id')
          .select(['f.id', 'f.floating_ip_address', 'f.fixed_ip_address', 'f.port_id', 'n.id as network_id', 'n.name as network_name', 'p.device_id']);
        if (projectId !== null) q = q.where('f.project_id', '=', projectId);
        if (by.id !== undefined) q = q.where('f.id', '=', by.id);
        if (by.address !== undefined) q = q.where('f.floating_ip_address', '=', by.address);
        const rows = await q.orderBy('f.created_at').orderBy('f.id').execute();
        return rows.map((r) => ({
          id: r.id, ip: r.floating_ip_address, pool: r.network_name || r.network_id, fixed_ip: r.fixed_ip_address ?? null,
          instance_id: r.port_id ? r.device_id ?? null : null, port_id: r.port_id ?? null,
        }));
      },

      async floatingIpPools() {
        const nets = await db.selectFrom('network_networks').select(['id', 'name']).where('external', '=', 1).orderBy('created_at').orderBy('id').execute();
        return nets.map((n) => n.name || n.id);
      },

      async allocateFloatingIp(projectId, pool) {
        let q = db.selectFrom('network_networks').select('id').where('external', '=', 1);
        q = pool === null ? q.where('is_default', '=', 1) : q.where((e) => e.or([e('name', '=', pool), e('id', '=', pool)]));
        const nets = await q.execute();
        if (!nets.length) throw new NeutronError('NotFound', 'FloatingIpPoolNotFound', 'Floating IP pool not found.');
        if (nets.length > 1) throw badRequest(`Multiple floating IP pools matches found for name '${pool}'`);
        const networkId = nets[0]!.id as string;
        const id = uuid();
        await retryOnCollision(() => db.transaction().execute((tx) => insertFloatingIp(tx, ctx.config.macPrefix, { id, projectId, networkId })),
          () => ipExhausted(networkId));
        return id;
      },

      async releaseFloatingIp(id) {
        await db.transaction().execute(async (tx) => removeFloatingIp(tx, await fipRow(tx, id)));
      },

      async associateFloatingIp(id, serverId, fixedIp) {
        await retryOnCollision(() => db.transaction().execute(async (tx) => {
          const row = await fipRow(tx, id);
          const port = await tx.selectFrom('network_ports as p').innerJoin('network_ip_allocations as a', 'a.port_id', 'p.id').selectAll('p')
            .where('p.device_id', '=', serverId).where('p.device_owner', 'like', 'compute:%').where('a.ip_address', '=', fixedIp).executeTakeFirst() as PortRow | undefined;
          if (!port) throw new NeutronError('NotFound', 'FixedIpNotFoundForAddress', `Fixed IP not found for address ${fixedIp}.`);
          const assoc = await associationWith(tx, row, port, fixedIp);
          await tx.updateTable('network_floatingips').set({ ...assoc, status: 'DOWN' }).where('id', '=', id).execute();
          await bumpRevision(tx, 'network_floatingips', id, null, 'floatingip');
        }), () => conflict('FloatingIPPortAlreadyAssociated', `Floating IP ${id} could not be associated.`));
      },

      async disassociateFloatingIp(id) {
        await db.transaction().execute(async (tx) => {
          await fipRow(tx, id);
          await tx.updateTable('network_floatingips').set({ port_id: null, fixed_ip_address: null, router_id: null, status: 'DOWN' }).where('id', '=', id).execute();
          await bumpRevision(tx, 'network_floatingips', id, null, 'floatingip');
        });
      },
    };
  }
}

// ---- what the metadata service and the config drive read of a server's ports

/** The port holding a fixed IP on a network, and the server it belongs to (device_id). */
export interface PortAtAddress { port_id: string; device_id: string; device_owner: string; project_id: string }

export interface ServerPortFacts {
  /** The server's ports in the order they were made (guests match interfaces by MAC), with their addresses. */
  ports: Array<{ id: string; network_id: string; mac_address: string; fixed_ips: Array<{ subnet_id: string; ip_address: string }> }>;
  /** The names of the security groups of its ports, once each. */
  security_groups: string[];
  /** The floating IPs associated with its ports' fixed IPs, in the ports' order (EC2's public-ipv4 is the first). */
  floating_ips: Array<{ port_id: string; fixed_ip_address: string; floating_ip_address: string }>;
}

export interface ServerMetadataNetworking {
  /** Nova's network_data.json of each server (servers without ports get empty lists). */
  networkData(serverIds: string[]): Promise<Map<string, NetworkData>>;
  /** The compute port on `networkId` holding `ip` as a fixed IP (not an allowed address pair); null when none. */
  portAt(networkId: string, ip: string): Promise<PortAtAddress | null>;
  /** The server's ports and security group names (EC2 mac, local-ipv4, security-groups). */
  facts(serverId: string): Promise<ServerPortFacts>;
  /** Each server's ports in interface order (eth<index>), as a VM driver gives them NICs; servers without ports get []. */
  interfacesOf(serverIds: string[]): Promise<Map<string, ServerPortInterface[]>>;
}

/** A server's port as its hypervisor sees it: the NIC's MAC, the tap (network/protocol.ts tapName) and its place among the NICs. */
export interface ServerPortInterface { id: string; network_id: string; mac_address: string; mtu: number; index: number; device: string }

/** Read-only, on the database alone: compute's desired state and the metadata service both use it. */
export function serverMetadataNetworking(database: Db): ServerMetadataNetworking {
  const db = database as unknown as Kysely<any>;
  const computePorts = (serverIds: string[]) => db.selectFrom('network_ports as p').innerJoin('network_networks as n', 'n.id', 'p.network_id')
    .select(['p.id', 'p.device_id', 'p.network_id', 'p.mac_address', 'p.binding_vif_type', 'p.interface_index', 'n.mtu'])
    .where('p.device_id', 'in', serverIds).where('p.device_owner', 'like', 'compute:%').orderBy('p.created_at').orderBy('p.id').execute();
  return {
    async networkData(serverIds) {
      const out = new Map<string, NetworkData>(serverIds.map((id) => [id, { links: [], networks: [], services: [] }]));
      if (!serverIds.length) return out;
      const ports = await computePorts(serverIds);
      if (!ports.length) return out;
      const ips = await fixedIpsOf(db, ports.map((p) => p.id));
      const subnetRows = await db.selectFrom('network_subnets').selectAll().where('network_id', 'in', [...new Set(ports.map((p) => p.network_id))]).execute() as SubnetRow[];
      const subnets = new Map<string, NetworkDataSubnet>(subnetRows.map((s) => [s.id, {
        id: s.id, cidr: s.cidr, ip_version: s.ip_version, gateway_ip: s.gateway_ip, enable_dhcp: !!s.enable_dhcp,
        dns_nameservers: JSON.parse(s.dns_nameservers), host_routes: JSON.parse(s.host_routes), ipv6_address_mode: s.ipv6_address_mode,
      }]));
      for (const id of serverIds) {
        const mine: NetworkDataPort[] = ports.filter((p) => p.device_id === id).map((p) => ({
          id: p.id, network_id: p.network_id, mac_address: p.mac_address, mtu: p.mtu, vif_type: p.binding_vif_type, fixed_ips: ips.get(p.id) ?? [],
        }));
        out.set(id, buildNetworkData(mine, subnets));
      }
      return out;
    },

    async interfacesOf(serverIds) {
      const out = new Map<string, ServerPortInterface[]>(serverIds.map((id) => [id, []]));
      if (!serverIds.length) return out;
      const ports = await computePorts(serverIds);
      for (const id of serverIds) {
        const mine = ports.filter((p) => p.device_id === id);
        const indexes = interfaceIndexes(mine);
        out.set(id, mine.map((p) => ({ id: p.id, network_id: p.network_id, mac_address: p.mac_address, mtu: p.mtu, index: indexes.get(p.id)!, device: tapName(p.id) }))
          .sort((a, b) => a.index - b.index));
      }
      return out;
    },

    async portAt(networkId, ip) {
      const row = await db.selectFrom('network_ip_allocations as a').innerJoin('network_ports as p', 'p.id', 'a.port_id')
        .select(['p.id', 'p.device_id', 'p.device_owner', 'p.project_id'])
        .where('p.network_id', '=', networkId).where('a.ip_address', '=', ip).where('p.device_owner', 'like', 'compute:%').where('p.device_id', '!=', '')
        .executeTakeFirst();
      return row ? { port_id: row.id, device_id: row.device_id, device_owner: row.device_owner, project_id: row.project_id } : null;
    },

    async facts(serverId) {
      const ports = await computePorts([serverId]);
      const ips = await fixedIpsOf(db, ports.map((p) => p.id));
      const groups = ports.length
        ? await db.selectFrom('network_port_security_groups as g').innerJoin('network_security_groups as s', 's.id', 'g.security_group_id')
          .select(['s.name']).distinct().where('g.port_id', 'in', ports.map((p) => p.id)).orderBy('s.name').execute()
        : [];
      const fips = ports.length
        ? await db.selectFrom('network_floatingips').select(['port_id', 'fixed_ip_address', 'floating_ip_address'])
          .where('port_id', 'in', ports.map((p) => p.id)).orderBy('created_at').orderBy('id').execute()
        : [];
      const order = new Map(ports.map((p, i) => [p.id, i]));
      return {
        ports: ports.map((p) => ({ id: p.id, network_id: p.network_id, mac_address: p.mac_address, fixed_ips: ips.get(p.id) ?? [] })),
        security_groups: groups.map((g) => g.name as string),
        floating_ips: fips.map((f) => ({ port_id: f.port_id as string, fixed_ip_address: f.fixed_ip_address as string, floating_ip_address: f.floating_ip_address as string }))
          .sort((a, b) => order.get(a.port_id)! - order.get(b.port_id)!),
      };
    },
  };
}
