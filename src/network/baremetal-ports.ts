// The bare-metal service's way to the provisioning network's ports (Ironic's
// neutron network interface): a port per PXE NIC of a node, with the node's
// MAC, an address from the network's subnets, `binding:vnic_type`
// `baremetal`, `device_owner` `baremetal:none`, the node as `device_id`, no
// security groups, and the PXE `extra_dhcp_opts`; bound (`binding:host_id`)
// to the host of the node's conductor, which then holds the network and its
// DHCP (kinds.ts: a bare-metal port is held, never plugged). In-process,
// as the admin.
import type { Kysely } from 'kysely';
import { uuid } from '../common/ids.ts';
import type { NetworkContext } from './context.ts';
import { invalidAttr, ipExhausted, macInUse, notFound } from './errors.ts';
import { allocate } from './ipam.ts';
import { isMac } from './ipnet.ts';
import { ensureDhcpPort, mergeDhcpOpts, removePort } from './ports.ts';
import { int, newStandard } from './resource.ts';
import { retryOnCollision } from './retry.ts';
import type { SubnetRow } from './subnets.ts';

export interface BaremetalPorts {
  /**
   * A port on `network` (its id, or a name only one network has) with `mac`
   * and these DHCP options, bound to `host` (the conductor's host name; none:
   * unbound, no DHCP for it yet); its id and the network's.
   */
  create(o: { network: string; mac: string; nodeUuid: string; dhcpOptions: Array<{ opt_name: string; opt_value: string; ip_version?: number }>; host?: string }): Promise<{ portId: string; networkId: string }>;
  /** Removes the port (gone already: nothing). */
  remove(portId: string): Promise<void>;
}

export function baremetalPorts(ctx: NetworkContext): BaremetalPorts {
  const db = ctx.db as unknown as Kysely<any>;
  return {
    async create(o) {
      const mac = o.mac.toLowerCase();
      if (!isMac(mac)) throw invalidAttr('mac_address', `'${o.mac}' is not a valid MAC address`);
      const opts = mergeDhcpOpts([], o.dhcpOptions);
      let net = await db.selectFrom('network_networks').select(['id', 'project_id']).where('id', '=', o.network).executeTakeFirst();
      if (!net) {
        const named = await db.selectFrom('network_networks').select(['id', 'project_id']).where('name', '=', o.network).execute();
        if (named.length !== 1) throw notFound.network(o.network);
        net = named[0]!;
      }
      const networkId = net.id as string;
      const id = uuid();
      await retryOnCollision(() => db.transaction().execute(async (tx) => {
        if (await tx.selectFrom('network_ports').select('id').where('network_id', '=', networkId).where('mac_address', '=', mac).executeTakeFirst()) throw macInUse(mac, networkId);
        await tx.insertInto('network_ports').values({
          ...newStandard(id, net!.project_id as string, undefined), network_id: networkId, name: `baremetal-${o.nodeUuid}`.slice(0, 255), mac_address: mac,
          admin_state_up: int(true), status: 'DOWN', device_id: o.nodeUuid, device_owner: 'baremetal:none', port_security_enabled: 0, allowed_address_pairs: '[]',
          binding_host_id: o.host ?? '', binding_vnic_type: 'baremetal', binding_vif_type: o.host ? 'other' : 'unbound', binding_profile: '{}', binding_vif_details: '{}',
          dns_name: '', extra_dhcp_opts: JSON.stringify(opts),
        }).execute();
        const subnets = await tx.selectFrom('network_subnets').selectAll().where('network_id', '=', networkId).orderBy('created_at').orderBy('id').execute() as SubnetRow[];
        await allocate(tx, { networkId, subnets, portId: id, mac, deviceOwner: 'baremetal:none' });
        if (o.host) await ensureDhcpPort(tx, networkId, ctx.config.macPrefix);
      }), () => ipExhausted(networkId));
      return { portId: id, networkId };
    },
    async remove(portId) {
      await db.transaction().execute((tx) => removePort(tx, portId));
    },
  };
}
