// The interface index of a server's port (eth<index> inside the server). A
// port keeps the index it got when it was bound to the server, so detaching
// one interface or attaching another never renames the rest under a running
// guest. The index is stored with the port (network_ports.interface_index),
// unique per device, and cleared when the port leaves the device. Rows bound
// before the column existed have none: they are named by the order rule they
// were plugged under, in the gaps the stored indexes leave.
import type { Kysely } from 'kysely';

interface Indexed { id: string; interface_index: number | null }

/**
 * Each port's index, for the ports of one device in the order they were made:
 * stored indexes as they are; ports without one take the lowest indexes no
 * sibling has stored, in order (with none stored: eth0, eth1... by order).
 */
export function interfaceIndexes(ports: Indexed[]): Map<string, number> {
  const out = new Map<string, number>();
  const taken = new Set<number>();
  for (const p of ports) if (p.interface_index !== null) { out.set(p.id, p.interface_index); taken.add(p.interface_index); }
  let next = 0;
  for (const p of ports) {
    if (p.interface_index !== null) continue;
    while (taken.has(next)) next++;
    out.set(p.id, next++);
  }
  return out;
}

/**
 * Gives `portId`, just bound to `serverId` in `tx`, the lowest index free on
 * the server. Siblings (the device's ports, as kinds.ts plugs them) without a
 * stored index get the one they are named by now first, so the new one cannot
 * take a name in use. A concurrent attach
 * that chose the same index makes the unique (device_id, interface_index)
 * refuse one of them: run the transaction under retryOnCollision.
 */
export async function claimInterfaceIndex(tx: Kysely<any>, serverId: string, portId: string): Promise<number> {
  const siblings = await tx.selectFrom('network_ports').select(['id', 'interface_index']).where('device_id', '=', serverId)
    .where('device_owner', 'not like', 'network:%').where('id', '!=', portId).orderBy('created_at').orderBy('id').execute() as Indexed[];
  const named = interfaceIndexes(siblings);
  for (const p of siblings) {
    if (p.interface_index === null) await tx.updateTable('network_ports').set({ interface_index: named.get(p.id)! }).where('id', '=', p.id).execute();
  }
  const used = new Set(named.values());
  let index = 0;
  while (used.has(index)) index++;
  await tx.updateTable('network_ports').set({ interface_index: index }).where('id', '=', portId).execute();
  return index;
}
