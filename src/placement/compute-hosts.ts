// Compute hosts as resource providers, as Nova's resource tracker reports
// compute nodes: uuid = the host's id, name = its hostname, VCPU / MEMORY_MB /
// DISK_GB inventories from its totals and allocation ratios (reserved 0 when
// first made; an operator's reserved is kept), the COMPUTE_NODE trait, and
// COMPUTE_STATUS_DISABLED while the service is disabled. Other inventories and
// traits an operator puts on the provider (CUSTOM_* classes for bare metal, a
// GPU's VGPU) are left as they are. Writes happen only when something differs,
// so syncing every scheduler round costs reads. Syncs of one host may run at
// once (several schedulers): each write is an upsert or an insert-if-absent,
// and each sync writes or finds every piece itself, so when it returns the
// provider its caller reads is whole, whoever made it.
import type { Db } from '../db/database.ts';
import { nowIso } from '../common/ids.ts';
import { bumpGeneration, getProvider, type Inventory } from './store.ts';

export interface ComputeHost {
  id: string; hostname: string; status: string;
  vcpus: number; memory_mb: number; disk_gb: number;
  cpu_allocation_ratio: number; ram_allocation_ratio: number; disk_allocation_ratio: number;
}

const HOST_CLASSES = ['VCPU', 'MEMORY_MB', 'DISK_GB'] as const;

function hostInventory(h: ComputeHost): Record<(typeof HOST_CLASSES)[number], { total: number; ratio: number }> {
  return {
    VCPU: { total: h.vcpus, ratio: Number(h.cpu_allocation_ratio) },
    MEMORY_MB: { total: h.memory_mb, ratio: Number(h.ram_allocation_ratio) },
    DISK_GB: { total: h.disk_gb, ratio: Number(h.disk_allocation_ratio) },
  };
}

/** Makes each host's provider, inventories and status traits match the host rows. */
export async function syncComputeProviders(db: Db, hosts: ComputeHost[]): Promise<void> {
  if (!hosts.length) return;
  const ids = hosts.map((h) => h.id);
  const providers = new Map((await db.selectFrom('placement_providers').select(['uuid', 'name']).where('uuid', 'in', ids).execute()).map((p) => [p.uuid, p]));
  const invRows = await db.selectFrom('placement_inventories').selectAll().where('provider_uuid', 'in', ids).where('resource_class', 'in', [...HOST_CLASSES]).execute();
  const inv = new Map(invRows.map((r) => [`${r.provider_uuid}/${r.resource_class}`, r]));
  const traitRows = await db.selectFrom('placement_provider_traits').selectAll().where('provider_uuid', 'in', ids)
    .where('trait', 'in', ['COMPUTE_NODE', 'COMPUTE_STATUS_DISABLED']).execute();
  const traits = new Set(traitRows.map((t) => `${t.provider_uuid}/${t.trait}`));
  const now = nowIso();
  for (const h of hosts) {
    let changed = false;
    const p = providers.get(h.id);
    if (!p) {
      // Several schedulers (replicas, the engine's loop) sync the same new host at
      // once: the insert is a no-op for all but one, and every one of them goes on
      // to write (or find) the inventories and traits below, so none of them reads
      // a provider another is still filling in. ON CONFLICT rather than catching
      // the violation: on PostgreSQL a failed statement aborts the caller's
      // transaction (claim() syncs inside one).
      const r = await db.insertInto('placement_providers').values({
        uuid: h.id, name: h.hostname, generation: 0, parent_provider_uuid: null, root_provider_uuid: h.id, created_at: now, updated_at: now,
      }).onConflict((oc) => oc.doNothing()).executeTakeFirst();
      // Nothing inserted and still no provider of this uuid: a provider of that name
      // made through the API first keeps the name; the host's provider cannot exist.
      const inserted = Number(r.numInsertedOrUpdatedRows ?? 0) > 0;
      if (!inserted && !(await getProvider(db, h.id))) continue;
      changed ||= inserted;
    } else if (p.name !== h.hostname) {
      const taken = await db.selectFrom('placement_providers').select('uuid').where('name', '=', h.hostname).where('uuid', '!=', h.id).executeTakeFirst();
      if (!taken) {
        await db.updateTable('placement_providers').set({ name: h.hostname }).where('uuid', '=', h.id).execute();
        changed = true;
      }
    }
    for (const [rc, want] of Object.entries(hostInventory(h))) {
      const have = inv.get(`${h.id}/${rc}`);
      if (want.total <= 0) {
        if (have) {
          // Still allocated inventory stays until the consumers go (Placement's inventory in use).
          const inUse = await db.selectFrom('placement_allocations').select('consumer_uuid').where('provider_uuid', '=', h.id).where('resource_class', '=', rc).executeTakeFirst();
          if (!inUse) {
            await db.deleteFrom('placement_inventories').where('provider_uuid', '=', h.id).where('resource_class', '=', rc).execute();
            changed = true;
          }
        }
        continue;
      }
      if (have && have.total === want.total && have.max_unit === want.total && Number(have.allocation_ratio) === want.ratio) continue;
      const row: Inventory = { total: want.total, reserved: have?.reserved ?? 0, min_unit: have?.min_unit ?? 1, max_unit: want.total, step_size: have?.step_size ?? 1, allocation_ratio: want.ratio };
      await db.insertInto('placement_inventories').values({ provider_uuid: h.id, resource_class: rc, ...row })
        .onConflict((oc) => oc.columns(['provider_uuid', 'resource_class']).doUpdateSet({ total: row.total, max_unit: row.max_unit, allocation_ratio: row.allocation_ratio }))
        .execute();
      changed = true;
    }
    const wantTraits: Record<string, boolean> = { COMPUTE_NODE: true, COMPUTE_STATUS_DISABLED: h.status !== 'enabled' };
    for (const [t, want] of Object.entries(wantTraits)) {
      const has = traits.has(`${h.id}/${t}`);
      if (want && !has) await db.insertInto('placement_provider_traits').values({ provider_uuid: h.id, trait: t }).onConflict((oc) => oc.doNothing()).execute();
      if (!want && has) await db.deleteFrom('placement_provider_traits').where('provider_uuid', '=', h.id).where('trait', '=', t).execute();
      if (want !== has) changed = true;
    }
    if (changed) await bumpGeneration(db, h.id);
  }
}
