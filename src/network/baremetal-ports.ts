// The bare-metal service's way to the provisioning network's ports (Ironic's
// network interface): a port per PXE NIC of a node, with the node's MAC, an
// address from the network's subnets, `binding:vnic_type` `baremetal`,
// `device_owner` `baremetal:none`, the node as `device_id`, no security
// groups, and the PXE `extra_dhcp_opts`; bound (`binding:host_id`) to the
// host of the node's conductor, which then holds the network and its DHCP
// (kinds.ts: a bare-metal port is held, never plugged). When the network
// already has a port with the NIC's MAC (the tenant VIF of a server being
// deployed on a flat network that is also the provisioning network), that
// port is the one booted from, as Ironic's flat interface does: it gets the
// PXE options and the binding, and loses only the options again when the
// operation ends. An adopted VIF is marked (binding:profile
// `stratus_provisioning_node`, the node's uuid) while the operation holds it:
// when its server lets it go (a server deleted while its node is being
// cleaned, the cleaning having adopted the VIF) the port is handed over to
// the operation (`handOverAdopted`: the admin's provisioning port of the
// node, same MAC, address and DHCP entry) instead of going, and goes when
// the operation ends. In-process, as the admin.
import type { Kysely } from 'kysely';
import { parseJson, parseJsonObject } from '../common/json.ts';
import { uuid } from '../common/ids.ts';
import type { NetworkContext } from './context.ts';
import { invalidAttr, ipExhausted, macInUse, notFound } from './errors.ts';
import { allocate } from './ipam.ts';
import { isMac } from './ipnet.ts';
import type { DhcpOption } from './protocol.ts';
import { ensureDhcpPort, mergeDhcpOpts, PROVISIONING_MARK, removePort } from './ports.ts';
import { bumpRevision } from './resource.ts';
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
  /** Removes the port (gone already: nothing); a port it adopted only loses the DHCP options named (those create gave it). */
  remove(portId: string, dhcpOptionNames: string[]): Promise<void>;
}

const OWNER = 'baremetal:none';
/**
 * A server's port being removed (its server deleted, the interface
 * detached) that a bare-metal operation booted from (adopted, see above):
 * made the operation's own provisioning port instead (the network's
 * project's, `baremetal:none`, the node its device), in the caller's
 * transaction; true when it was, and must not be removed.
 */
export async function handOverAdopted(tx: Kysely<any>, portId: string): Promise<boolean> {
  const p = await tx.selectFrom('network_ports').select(['binding_profile', 'network_id']).where('id', '=', portId).executeTakeFirst();
  const node = p ? parseJsonObject(p.binding_profile)[PROVISIONING_MARK] : undefined;
  if (!p || typeof node !== 'string') return false;
  const net = await tx.selectFrom('network_networks').select('project_id').where('id', '=', p.network_id).executeTakeFirst();
  await tx.deleteFrom('network_port_security_groups').where('port_id', '=', portId).execute();
  await tx.updateTable('network_ports').set({
    project_id: net?.project_id ?? '', name: `baremetal-${node}`.slice(0, 255), device_id: node, device_owner: OWNER, interface_index: null,
    port_security_enabled: 0, allowed_address_pairs: '[]',
  }).where('id', '=', portId).execute();
  await bumpRevision(tx, 'network_ports', portId, null, 'port');
  return true;
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
      // the NIC's tenant VIF on this network: booted from as it is
      const held = await db.selectFrom('network_ports').selectAll().where('network_id', '=', networkId).where('mac_address', '=', mac).executeTakeFirst();
      if (held) {
        if (held.binding_vnic_type !== 'baremetal' || held.device_owner === OWNER) throw macInUse(mac, networkId);
        await db.transaction().execute(async (tx) => {
          const opts = mergeDhcpOpts(parseJson<DhcpOption[]>(held.extra_dhcp_opts, []), o.dhcpOptions);
          const profile = { ...parseJsonObject(held.binding_profile), [PROVISIONING_MARK]: o.nodeUuid };
          await tx.updateTable('network_ports').set({ extra_dhcp_opts: JSON.stringify(opts), binding_profile: JSON.stringify(profile), ...(o.host ? { binding_host_id: o.host } : {}) })
            .where('id', '=', held.id).execute();
          await bumpRevision(tx, 'network_ports', held.id, null, 'port');
          if (o.host) await ensureDhcpPort(tx, networkId, ctx.config.macPrefix);
        });
        return { portId: held.id as string, networkId };
      }
      const id = uuid();
      await retryOnCollision(() => db.transaction().execute(async (tx) => {
        if (await tx.selectFrom('network_ports').select('id').where('network_id', '=', networkId).where('mac_address', '=', mac).executeTakeFirst()) throw macInUse(mac, networkId);
        await tx.insertInto('network_ports').values({
          ...newStandard(id, net!.project_id as string, undefined), network_id: networkId, name: `baremetal-${o.nodeUuid}`.slice(0, 255), mac_address: mac,
          admin_state_up: int(true), status: 'DOWN', device_id: o.nodeUuid, device_owner: OWNER, port_security_enabled: 0, allowed_address_pairs: '[]',
          binding_host_id: o.host ?? '', binding_vnic_type: 'baremetal', binding_vif_type: o.host ? 'other' : 'unbound', binding_profile: '{}', binding_vif_details: '{}',
          dns_name: '', extra_dhcp_opts: JSON.stringify(opts),
        }).execute();
        const subnets = await tx.selectFrom('network_subnets').selectAll().where('network_id', '=', networkId).orderBy('created_at').orderBy('id').execute() as SubnetRow[];
        await allocate(tx, { networkId, subnets, portId: id, mac, deviceOwner: OWNER });
        if (o.host) await ensureDhcpPort(tx, networkId, ctx.config.macPrefix);
      }), () => ipExhausted(networkId));
      return { portId: id, networkId };
    },
    async remove(portId, dhcpOptionNames) {
      await db.transaction().execute(async (tx) => {
        const p = await tx.selectFrom('network_ports').select(['device_owner', 'extra_dhcp_opts', 'binding_profile']).where('id', '=', portId).executeTakeFirst();
        if (!p) return;
        if (p.device_owner === OWNER) return removePort(tx, portId);
        // an adopted VIF: the PXE boot's options (as Ironic's clean_dhcp) and the mark go, the port stays
        const opts = parseJson<DhcpOption[]>(p.extra_dhcp_opts, []).filter((d) => !dhcpOptionNames.includes(d.opt_name));
        const { [PROVISIONING_MARK]: _node, ...profile } = parseJsonObject(p.binding_profile);
        await tx.updateTable('network_ports').set({ extra_dhcp_opts: JSON.stringify(opts), binding_profile: JSON.stringify(profile) }).where('id', '=', portId).execute();
        await bumpRevision(tx, 'network_ports', portId, null, 'port');
      });
    },
  };
}
