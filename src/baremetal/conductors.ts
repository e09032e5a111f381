// Ironic's conductors: the agents that registered the `baremetal_node` kind
// (HostInfo.kinds.baremetal_node lists the hardware types they drive),
// recorded at every registration and heartbeat; alive while heard of within
// conductorTimeout. A node is placed on the least loaded live conductor of
// its conductor group that drives its hardware type, and kept there until
// that conductor has been gone for takeoverAfter seconds.
import { nowIso } from '../common/ids.ts';
import { parseJsonList } from '../common/json.ts';
import type { HostInfo } from '../fleet/protocol.ts';
import type { BmContext } from './context.ts';
import { BAREMETAL_NODE_KIND } from './protocol.ts';

export async function heard(ctx: BmContext, hostname: string, info: HostInfo): Promise<void> {
  const drivers = info.kinds[BAREMETAL_NODE_KIND];
  if (!drivers) return;
  // HostInfo.baremetal (protocol 2.5): the conductor's endpoint on the provisioning network and its group
  const b: Partial<NonNullable<HostInfo['baremetal']>> = info.baremetal ?? {};
  const now = nowIso();
  const row = {
    drivers: JSON.stringify([...drivers].sort()), conductor_group: b.conductor_group ?? '', address: b.address ?? info.host_ip ?? null,
    http_port: typeof b.http_port === 'number' ? b.http_port : null, tftp: b.tftp ? 1 : 0, last_seen_at: now,
  };
  await ctx.db.insertInto('baremetal_conductors').values({ hostname, created_at: now, ...row })
    .onConflict((oc) => oc.column('hostname').doUpdateSet(row)).execute();
}

export interface Conductor {
  hostname: string; drivers: string[]; conductor_group: string; alive: boolean; address: string | null; http_port: number | null;
  tftp: boolean; created_at: string; last_seen_at: string;
}

export async function conductors(ctx: BmContext): Promise<Conductor[]> {
  const rows = await ctx.db.selectFrom('baremetal_conductors').selectAll().orderBy('hostname').execute();
  const cutoff = Date.now() - ctx.config.conductorTimeout * 1000;
  return rows.map((r) => ({
    hostname: r.hostname, drivers: parseJsonList(r.drivers), conductor_group: r.conductor_group, alive: Date.parse(r.last_seen_at) >= cutoff,
    address: r.address, http_port: r.http_port, tftp: !!r.tftp, created_at: r.created_at, last_seen_at: r.last_seen_at,
  }));
}

/** Whether some conductor (alive or not) was ever heard driving `driver`. */
export async function anyConductorFor(ctx: BmContext, driver: string): Promise<boolean> {
  return (await conductors(ctx)).some((c) => c.drivers.includes(driver));
}

/**
 * The conductor for a node: its own while alive (or gone for less than
 * takeoverAfter), else the least loaded live one of its group driving its
 * hardware type; null when none.
 */
export async function chooseConductor(ctx: BmContext, node: { uuid: string; driver: string; conductor_group: string; conductor: string | null }): Promise<string | null> {
  const all = await conductors(ctx);
  if (node.conductor) {
    const c = all.find((x) => x.hostname === node.conductor);
    if (c && c.drivers.includes(node.driver) && Date.parse(c.last_seen_at) >= Date.now() - ctx.config.takeoverAfter * 1000) return c.hostname;
  }
  const fit = all.filter((c) => c.alive && c.drivers.includes(node.driver) && c.conductor_group === node.conductor_group);
  if (!fit.length) return null;
  const load = new Map<string, number>();
  for (const r of await ctx.db.selectFrom('baremetal_nodes').select(['conductor']).where('conductor', 'in', fit.map((c) => c.hostname)).execute()) {
    load.set(r.conductor!, (load.get(r.conductor!) ?? 0) + 1);
  }
  fit.sort((a, b) => (load.get(a.hostname) ?? 0) - (load.get(b.hostname) ?? 0) || a.hostname.localeCompare(b.hostname));
  return fit[0]!.hostname;
}

/** Places the node on its conductor (a conditional write: another replica may have placed it); the conductor now holding it. */
export async function placeNode(ctx: BmContext, uuid: string): Promise<string | null> {
  const n = await ctx.db.selectFrom('baremetal_nodes').select(['uuid', 'driver', 'conductor_group', 'conductor']).where('uuid', '=', uuid).executeTakeFirst();
  if (!n) return null;
  const want = await chooseConductor(ctx, n);
  if (want === n.conductor) return want;
  const r = await ctx.db.updateTable('baremetal_nodes').set((eb) => ({ conductor: want, version: eb('version', '+', 1) }))
    .where('uuid', '=', uuid).where('conductor', n.conductor === null ? 'is' : '=', n.conductor).executeTakeFirst();
  if (Number(r.numUpdatedRows) > 0) {
    ctx.notify(n.conductor);
    ctx.notify(want);
    return want;
  }
  return (await ctx.db.selectFrom('baremetal_nodes').select('conductor').where('uuid', '=', uuid).executeTakeFirst())?.conductor ?? null;
}
