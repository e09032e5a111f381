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
import type { NetworkContext } from './context.ts';
import { conflict, ipExhausted, notFound } from './errors.ts';
import { allocate, fixedIpsOf } from './ipam.ts';
import { buildNetworkData, type NetworkData, type NetworkDataPort, type NetworkDataSubnet } from './metadata-network-data.ts';
import { ensureDhcpPort, newMac, removePort } from './ports.ts';
import { checkQuota } from './quotas.ts';
import { newStandard } from './resource.ts';
import { retryOnCollision } from './retry.ts';
import { ensureDefaultGroup } from './security-groups.ts';
import type { SubnetRow } from './subnets.ts';
import type { AutoTopology } from './auto-topology.ts';

/** Nova's `networks` of a server create (from 2.37 required; `auto`/`none` from 2.37). */
export type RequestedNetworks = 'auto' | 'none' | Array<{ uuid?: string; port?: string; fixed_ip?: string }>;

export interface ServerAddress { version: 4 | 6; addr: string; 'OS-EXT-IPS:type': 'fixed' | 'floating'; 'OS-EXT-IPS-MAC:mac_addr': string }

export interface ServerNetworking {
  /** Makes or takes the server's ports (unbound); the ids, in the order asked. */
  allocate(o: { serverId: string; projectId: string; availabilityZone: string; requested: RequestedNetworks }): Promise<string[]>;
  /** Binds the server's ports to the host the scheduler chose (null: unbinds them). */
  bind(serverId: string, host: string | null): Promise<void>;
  /** Nova's `addresses` of each server: network name -> addresses. */
  addresses(serverIds: string[]): Promise<Map<string, Record<string, ServerAddress[]>>>;
  /** Deletes the server's ports except `preserve` (the ports it was given), which are detached. */
  release(serverId: string, preserve: string[]): Promise<void>;
}

export function serverNetworking(ctx: NetworkContext, topology?: AutoTopology): ServerNetworking {
  const db = ctx.db as unknown as Kysely<any>;

  /** The networks a project may put a port on: its own and shared ones. */
  const usable = async (projectId: string) =>
    await db.selectFrom('network_networks').select(['id', 'project_id', 'shared', 'external']).where((e) => e.or([e('project_id', '=', projectId), e('shared', '=', 1)]))
      .orderBy('created_at').orderBy('id').execute();

  async function makePort(serverId: string, projectId: string, az: string, networkId: string, fixedIp?: string): Promise<string> {
    const group = await ensureDefaultGroup(db, projectId);
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
      await tx.insertInto('network_port_security_groups').values({ port_id: id, security_group_id: group }).execute();
    }), () => ipExhausted(networkId));
    return id;
  }

  return {
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
            const p = await db.selectFrom('network_ports').select(['id', 'project_id', 'device_id']).where('id', '=', a.port).executeTakeFirst();
            if (!p || p.project_id !== o.projectId) throw notFound.port(a.port);
            if (p.device_id) throw conflict('PortInUse', `Port ${a.port} is still in use.`);
            const u = await db.updateTable('network_ports').set({ device_id: o.serverId, device_owner: `compute:${o.availabilityZone}` })
              .where('id', '=', a.port).where('device_id', '=', '').executeTakeFirst();
            if (!Number(u.numUpdatedRows)) throw conflict('PortInUse', `Port ${a.port} is still in use.`);
            taken.push(a.port);
            made.push(a.port);
            continue;
          }
          if (!a.uuid || !nets.some((n) => n.id === a.uuid)) throw notFound.network(a.uuid ?? '');
          made.push(await makePort(o.serverId, o.projectId, o.availabilityZone, a.uuid, a.fixed_ip));
        }
      } catch (err) {
        // all or nothing: what this call made goes, what it took is given back
        for (const id of made) {
          if (taken.includes(id)) await db.updateTable('network_ports').set({ device_id: '', device_owner: '' }).where('id', '=', id).execute();
          else await db.transaction().execute((tx) => removePort(tx, id));
        }
        throw err;
      }
      return made;
    },

    async bind(serverId, host) {
      await db.updateTable('network_ports').set({ binding_host_id: host ?? '', binding_vif_type: host ? 'bridge' : 'unbound', ...(host ? {} : { status: 'DOWN' }) })
        .where('device_id', '=', serverId).where('device_owner', 'like', 'compute:%').execute();
      if (host) {
        const nets = await db.selectFrom('network_ports').select('network_id').distinct().where('device_id', '=', serverId).execute();
        // the network's DHCP port, as a port bound through the API gets it
        for (const n of nets) await retryOnCollision(() => db.transaction().execute((tx) => ensureDhcpPort(tx, n.network_id, ctx.config.macPrefix)), () => ipExhausted(n.network_id));
      }
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
      for (const p of ports) {
        if (preserve.includes(p.id)) {
          await db.updateTable('network_ports').set({ device_id: '', device_owner: '', binding_host_id: '', binding_vif_type: 'unbound', status: 'DOWN' }).where('id', '=', p.id).execute();
        } else {
          await db.transaction().execute((tx) => removePort(tx, p.id));
        }
      }
    },
  };
}

// ---- what the metadata service and the config drive read of a server's ports

/** The port holding a fixed IP on a network, and the server it belongs to (device_id). */
export interface PortAtAddress { port_id: string; device_id: string; device_owner: string; project_id: string }

export interface ServerPortFacts {
  /** The server's ports in the order its interfaces are (eth0, eth1...), with their addresses. */
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
}

/** Read-only, on the database alone: compute's desired state and the metadata service both use it. */
export function serverMetadataNetworking(database: Db): ServerMetadataNetworking {
  const db = database as unknown as Kysely<any>;
  const computePorts = (serverIds: string[]) => db.selectFrom('network_ports as p').innerJoin('network_networks as n', 'n.id', 'p.network_id')
    .select(['p.id', 'p.device_id', 'p.network_id', 'p.mac_address', 'p.binding_vif_type', 'n.mtu'])
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
