// The provisioning network of an operation that boots the ramdisk (inspect
// in band, clean, deploy, rescue): a Neutron port per PXE-enabled NIC of the
// node (a NIC whose port has pxe_enabled false, such as one in-band
// inspection found beside the one it booted from, gets none: Ironic's
// provisioning ports are the PXE-enabled ones) on
// the provisioning network (config provisioningNetwork), with the node's MAC
// and the PXE extra_dhcp_opts Ironic sets, pointing at the node's conductor
// (its HostInfo.baremetal endpoint): iPXE clients get the conductor's boot
// script, others (when the conductor has TFTP) Debian ipxe's undionly.kpxe
// from the TFTP server. The ports are bound to the conductor's host, whose
// network data plane serves their DHCP, and go when the operation ends
// (each is the operation's: what it adopted is given back as it was, and
// what another operation holds now is not touched).
// Without a ProvisioningPorts (the network service's side, see context.ts)
// nothing is made and operations carry `provisioning: null`. A node booting
// the ramdisk from virtual media gets its ports too (the ramdisk leases its
// address on them, and the network's DHCP answers only the ports it knows),
// without the PXE options: Ironic's network interface is the boot
// interface's business only in those options.
import { parseJsonObject } from '../common/json.ts';
import type { BmContext, NodeRow } from './context.ts';
import type { NodeOperation, ProvisioningNetwork } from './protocol.ts';


export async function dhcpOptionsFor(ctx: BmContext, conductor: string | null): Promise<Array<{ opt_name: string; opt_value: string; ip_version?: number }>> {
  if (!conductor) return [];
  const c = await ctx.db.selectFrom('baremetal_conductors').selectAll().where('hostname', '=', conductor).executeTakeFirst();
  if (!c?.address) return [];
  const opts = [];
  if (c.http_port) opts.push({ opt_name: 'tag:ipxe,67', opt_value: `http://${c.address}:${c.http_port}/boot.ipxe`, ip_version: 4 });
  if (c.tftp) {
    opts.push({ opt_name: 'tag:!ipxe,67', opt_value: 'undionly.kpxe', ip_version: 4 });
    opts.push({ opt_name: '66', opt_value: c.address, ip_version: 4 });
    opts.push({ opt_name: '150', opt_value: c.address, ip_version: 4 });
  }
  return opts;
}

/**
 * The provisioning ports of `op` on `node` (null when the operation boots no
 * ramdisk, the node's network interface is `noop`, or no network side is
 * wired; a virtual-media boot gets them without the PXE options, as the
 * network's DHCP answers only the ports it knows). Ports made before a
 * failure are removed again.
 */
export async function openProvisioning(ctx: BmContext, node: NodeRow, conductor: string | null, op: NodeOperation | null): Promise<ProvisioningNetwork | null> {
  if (!ctx.ports || !op || !needsProvisioning(ctx, node, op) || !('boot_interface' in op)) return null;
  const nics = await ctx.db.selectFrom('baremetal_ports').select(['address']).where('node_uuid', '=', node.uuid).where('pxe_enabled', '=', 1).orderBy('created_at').execute();
  const vmedia = op.boot_interface === 'redfish-virtual-media';
  const dhcpOptions = vmedia ? [] : await dhcpOptionsFor(ctx, conductor);
  const made: string[] = [];
  let networkId = '';
  try {
    for (const nic of nics) {
      const p = await ctx.ports.create({ network: ctx.config.provisioningNetwork, mac: nic.address, nodeUuid: node.uuid, operation: op.id, dhcpOptions, host: conductor ?? undefined });
      made.push(p.portId);
      networkId = p.networkId;
    }
  } catch (err) {
    for (const id of made) await ctx.ports.remove(id, op.id).catch(() => undefined);
    throw err;
  }
  return made.length ? { network_id: networkId, port_ids: made } : null;
}

/** Whether `op` on `node` boots the ramdisk over the provisioning network (and a network side is wired to give it ports). */
export function needsProvisioning(ctx: BmContext, node: NodeRow, op: NodeOperation | null): boolean {
  // only the operations that boot the ramdisk (out-of-band inspection boots nothing)
  if (!ctx.ports || !op || !('boot_interface' in op)) return false;
  // Ironic's noop network interface: the operator wired the node's network; nothing is switched
  return parseJsonObject(node.interfaces).network_interface !== 'noop';
}

/**
 * Removes an operation's provisioning ports (the node row's `provisioning`
 * JSON, opened for `operation`: the node row's `operation` JSON or the operation).
 */
export async function closeProvisioning(ctx: BmContext, provisioning: string | null, operation: string | NodeOperation | null): Promise<void> {
  if (!ctx.ports || !provisioning) return;
  const p = parseJsonObject(provisioning) as Partial<ProvisioningNetwork>;
  const op = typeof operation === 'string' ? parseJsonObject(operation).id : operation?.id;
  for (const id of p.port_ids ?? []) {
    await ctx.ports.remove(id, typeof op === 'string' ? op : '').catch((err: Error) => ctx.log.warn({ err: err.message, port: id }, 'removing a provisioning port failed'));
  }
}
