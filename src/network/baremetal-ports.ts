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
// PXE options and the binding, and loses again exactly what the operation
// gave it when the operation ends (the options it added go, the port's own
// options it replaced come back). An adopted VIF is marked (binding:profile
// `stratus_provisioning_node`, ports.ts AdoptionMark: the node, the
// operation, what it added and replaced) while the operation holds it; only
// that operation's end undoes it. When its server or its user lets it go
// (a server deleted while its node is being cleaned, the cleaning having
// adopted the VIF; Neutron's DELETE of it), the shared removal hands it over
// to the operation (ports.ts removePort: the admin's provisioning port of the
// node, same MAC, address and DHCP entry) instead, and a kept port stays
// bound (ports.ts unbindPort) until the operation ends. In-process, as the
// admin.
import type { Kysely } from 'kysely';
import { isPostgres } from '../db/migration-helpers.ts';
import { parseJson, parseJsonObject } from '../common/json.ts';
import { uuid } from '../common/ids.ts';
import type { NetworkContext } from './context.ts';
import { invalidAttr, ipExhausted, macInUse, notFound } from './errors.ts';
import { allocate } from './ipam.ts';
import { isMac } from './ipnet.ts';
import type { DhcpOption } from './protocol.ts';
import { adoptionOf, BAREMETAL_OWNER, ensureDhcpPort, mergeDhcpOpts, PROVISIONING_MARK, removePort, type AdoptionMark } from './ports.ts';
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
  create(o: { network: string; mac: string; nodeUuid: string; operation: string; dhcpOptions: Array<{ opt_name: string; opt_value: string; ip_version?: number }>; host?: string }): Promise<{ portId: string; networkId: string }>;
  /**
   * Removes the port `operation` opened (gone already: nothing); a port it
   * adopted only loses what the adoption gave it. A port another operation
   * holds now is left alone.
   */
  remove(portId: string, operation: string): Promise<void>;
}

const OWNER = BAREMETAL_OWNER;
const optKey = (d: { opt_name: string; ip_version?: number }) => `${d.opt_name}\u0000${d.ip_version ?? 4}`;

/**
 * The mark of `operation` adopting a port whose options are `held`, giving
 * it `given`: what it adds and what of the port's own it replaces. A mark
 * of another operation still on the port (its end not seen yet) is carried
 * on: the port's own options are what that one recorded.
 */
function markFor(node: string, operation: string, held: DhcpOption[], given: DhcpOption[], prior: AdoptionMark | null): AdoptionMark {
  const added = new Map((prior?.added ?? []).map((d) => [optKey(d), { opt_name: d.opt_name, ip_version: d.ip_version }]));
  const replaced = new Map((prior?.replaced ?? []).map((d) => [optKey(d), d]));
  for (const g of given) {
    const k = optKey(g);
    if (added.has(k) || replaced.has(k)) continue;
    const own = held.find((h) => optKey(h) === k);
    if (own) replaced.set(k, own);
    else added.set(k, { opt_name: g.opt_name, ip_version: g.ip_version });
  }
  return { node, operation, added: [...added.values()], replaced: [...replaced.values()] };
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
      // the NIC's tenant VIF on this network: booted from as it is (read and changed in one transaction, the row locked on PostgreSQL)
      const adopted = await db.transaction().execute(async (tx) => {
        let q = tx.selectFrom('network_ports').selectAll().where('network_id', '=', networkId).where('mac_address', '=', mac);
        if (isPostgres(db)) q = q.forUpdate();
        const held = await q.executeTakeFirst();
        if (!held) return null;
        if (held.binding_vnic_type !== 'baremetal' || held.device_owner === OWNER) throw macInUse(mac, networkId);
        const own = parseJson<DhcpOption[]>(held.extra_dhcp_opts, []);
        const mark = markFor(o.nodeUuid, o.operation, own, opts, adoptionOf(held.binding_profile));
        const profile = { ...parseJsonObject(held.binding_profile), [PROVISIONING_MARK]: mark };
        await tx.updateTable('network_ports').set({
          extra_dhcp_opts: JSON.stringify(mergeDhcpOpts(own, o.dhcpOptions)), binding_profile: JSON.stringify(profile),
          ...(o.host ? { binding_host_id: o.host, binding_vif_type: 'other' } : {}),
        }).where('id', '=', held.id).execute();
        await bumpRevision(tx, 'network_ports', held.id, null, 'port');
        if (o.host) await ensureDhcpPort(tx, networkId, ctx.config.macPrefix);
        return held.id as string;
      });
      if (adopted) return { portId: adopted, networkId };
      const id = uuid();
      await retryOnCollision(() => db.transaction().execute(async (tx) => {
        if (await tx.selectFrom('network_ports').select('id').where('network_id', '=', networkId).where('mac_address', '=', mac).executeTakeFirst()) throw macInUse(mac, networkId);
        await tx.insertInto('network_ports').values({
          ...newStandard(id, net!.project_id as string, undefined), network_id: networkId, name: `baremetal-${o.nodeUuid}`.slice(0, 255), mac_address: mac,
          admin_state_up: int(true), status: 'DOWN', device_id: o.nodeUuid, device_owner: OWNER, port_security_enabled: 0, allowed_address_pairs: '[]',
          binding_host_id: o.host ?? '', binding_vnic_type: 'baremetal', binding_vif_type: o.host ? 'other' : 'unbound',
          binding_profile: JSON.stringify({ [PROVISIONING_MARK]: { node: o.nodeUuid, operation: o.operation, added: [], replaced: [] } satisfies AdoptionMark }), binding_vif_details: '{}',
          dns_name: '', extra_dhcp_opts: JSON.stringify(opts),
        }).execute();
        const subnets = await tx.selectFrom('network_subnets').selectAll().where('network_id', '=', networkId).orderBy('created_at').orderBy('id').execute() as SubnetRow[];
        await allocate(tx, { networkId, subnets, portId: id, mac, deviceOwner: OWNER });
        if (o.host) await ensureDhcpPort(tx, networkId, ctx.config.macPrefix);
      }), () => ipExhausted(networkId));
      return { portId: id, networkId };
    },
    async remove(portId, operation) {
      await db.transaction().execute(async (tx) => {
        let q = tx.selectFrom('network_ports').select(['device_id', 'device_owner', 'extra_dhcp_opts', 'binding_profile']).where('id', '=', portId);
        if (isPostgres(db)) q = q.forUpdate();
        const p = await q.executeTakeFirst();
        if (!p) return;
        const mark = adoptionOf(p.binding_profile);
        // another operation's now (it adopted the port after this one): not this one's to undo
        if (mark && mark.operation !== null && mark.operation !== operation) return;
        if (p.device_owner === OWNER) return removePort(tx, portId);
        if (!mark) return;
        // an adopted port: the options the operation added go and the port's own it replaced come back (as Ironic's
        // clean_dhcp), the mark goes; a port nobody holds any more (its server let it go meanwhile) is unbound
        const gone = new Set([...mark.added, ...mark.replaced].map(optKey));
        const opts = [...parseJson<DhcpOption[]>(p.extra_dhcp_opts, []).filter((d) => !gone.has(optKey(d))), ...mark.replaced];
        const { [PROVISIONING_MARK]: _mark, ...profile } = parseJsonObject(p.binding_profile);
        await tx.updateTable('network_ports').set({
          extra_dhcp_opts: JSON.stringify(opts), binding_profile: JSON.stringify(profile),
          ...(p.device_id ? {} : { binding_host_id: '', binding_vif_type: 'unbound', status: 'DOWN' }),
        }).where('id', '=', portId).execute();
        await bumpRevision(tx, 'network_ports', portId, null, 'port');
      });
    },
  };
}
