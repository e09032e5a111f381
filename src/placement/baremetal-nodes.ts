// Bare-metal nodes as resource providers, as Nova's ironic driver reports
// them: uuid = name = the node's uuid, one unit of the node's custom
// resource class (CUSTOM_ + its resource_class upper-cased, every character
// outside A-Z0-9 an underscore), reserved while the node cannot take a new
// instance (not `available`, in maintenance, or holding an instance), and the
// node's traits (CUSTOM_* ones made as they appear). Writes only what
// differs; a node without a resource class has no inventory.
import type { Db } from '../db/database.ts';
import { nowIso } from '../common/ids.ts';
import { isStandardTrait } from './classes.ts';
import { bumpGeneration, removeProvider } from './store.ts';

export interface BaremetalNodeProvider {
  uuid: string;
  /** Ironic's resource_class, as the node has it (null: no inventory). */
  resourceClass: string | null;
  /** Whether the node's unit is reserved (not free for a new instance). */
  reserved: boolean;
  traits: string[];
}

/** Nova's ironic driver's name for a node's class: CUSTOM_<RESOURCE_CLASS normalised>. */
export function customClassOf(resourceClass: string): string {
  return `CUSTOM_${resourceClass.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
}

/** Makes the node's provider, inventory and traits match `n`. */
export async function syncBaremetalProvider(db: Db, n: BaremetalNodeProvider): Promise<void> {
  const now = nowIso();
  let changed = false;
  const inserted = await db.insertInto('placement_providers').values({
    uuid: n.uuid, name: n.uuid, generation: 0, parent_provider_uuid: null, root_provider_uuid: n.uuid, created_at: now, updated_at: now,
  }).onConflict((oc) => oc.doNothing()).executeTakeFirst();
  changed ||= Number(inserted.numInsertedOrUpdatedRows ?? 0) > 0;
  const rc = n.resourceClass ? customClassOf(n.resourceClass) : null;
  const inv = await db.selectFrom('placement_inventories').selectAll().where('provider_uuid', '=', n.uuid).execute();
  for (const i of inv) {
    if (i.resource_class === rc) continue;
    const used = await db.selectFrom('placement_allocations').select('consumer_uuid').where('provider_uuid', '=', n.uuid).where('resource_class', '=', i.resource_class).executeTakeFirst();
    if (used) continue;
    await db.deleteFrom('placement_inventories').where('provider_uuid', '=', n.uuid).where('resource_class', '=', i.resource_class).execute();
    changed = true;
  }
  if (rc) {
    await db.insertInto('placement_resource_classes').values({ name: rc, created_at: now }).onConflict((oc) => oc.doNothing()).execute();
    const have = inv.find((i) => i.resource_class === rc);
    const reserved = n.reserved ? 1 : 0;
    if (!have || have.total !== 1 || have.reserved !== reserved || have.max_unit !== 1) {
      const row = { total: 1, reserved, min_unit: 1, max_unit: 1, step_size: 1, allocation_ratio: 1 };
      await db.insertInto('placement_inventories').values({ provider_uuid: n.uuid, resource_class: rc, ...row })
        .onConflict((oc) => oc.columns(['provider_uuid', 'resource_class']).doUpdateSet(row)).execute();
      changed = true;
    }
  }
  const haveTraits = new Set((await db.selectFrom('placement_provider_traits').select('trait').where('provider_uuid', '=', n.uuid).execute()).map((t) => t.trait));
  const want = new Set(n.traits);
  for (const t of want) {
    if (haveTraits.has(t)) continue;
    if (!isStandardTrait(t)) await db.insertInto('placement_traits').values({ name: t, created_at: now }).onConflict((oc) => oc.doNothing()).execute();
    await db.insertInto('placement_provider_traits').values({ provider_uuid: n.uuid, trait: t }).onConflict((oc) => oc.doNothing()).execute();
    changed = true;
  }
  for (const t of haveTraits) {
    if (want.has(t)) continue;
    await db.deleteFrom('placement_provider_traits').where('provider_uuid', '=', n.uuid).where('trait', '=', t).execute();
    changed = true;
  }
  if (changed) await bumpGeneration(db, n.uuid);
}

/** The node's provider goes (the node was deleted). */
export async function removeBaremetalProvider(db: Db, uuid: string): Promise<void> {
  await removeProvider(db, uuid);
}
