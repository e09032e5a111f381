// Placement tables (OpenStack Placement's model): resource providers with
// inventories by resource class and traits, consumers with their allocations.
// Capacity of any kind (a compute host's VCPU/MEMORY_MB/DISK_GB, a bare-metal
// node's CUSTOM_BAREMETAL_* unit, a volume backend's DISK_GB, a GPU's VGPU)
// is an inventory row; no kind of capacity needs a column of its own.
//
// Standard resource classes and traits are constants in code (classes.ts);
// only CUSTOM_* ones are rows. A compute host's provider has the host's id as
// uuid (Nova's compute node uuid) and its hostname as name.
import type { Kysely } from 'kysely';
import type { Migration } from 'kysely/migration';

export interface PlacementTables {
  placement_providers: {
    uuid: string; name: string; generation: number;
    parent_provider_uuid: string | null; root_provider_uuid: string;
    created_at: string; updated_at: string;
  };
  placement_inventories: {
    provider_uuid: string; resource_class: string; total: number; reserved: number;
    min_unit: number; max_unit: number; step_size: number; allocation_ratio: number;
  };
  /** CUSTOM_* resource classes. */
  placement_resource_classes: { name: string; created_at: string };
  /** CUSTOM_* traits. */
  placement_traits: { name: string; created_at: string };
  placement_provider_traits: { provider_uuid: string; trait: string };
  placement_provider_aggregates: { provider_uuid: string; aggregate_uuid: string };
  /** A consumer exists while it holds allocations; its generation guards concurrent writers (1.28). */
  placement_consumers: { uuid: string; project_id: string; user_id: string; generation: number; created_at: string; updated_at: string };
  placement_allocations: { consumer_uuid: string; provider_uuid: string; resource_class: string; used: number };
}

const text = 'text' as const;

export const placementMigrations: Record<string, Migration> = {
  '0200_placement': {
    async up(db: Kysely<any>) {
      const s = db.schema;
      await s.createTable('placement_providers')
        .addColumn('uuid', text, (c) => c.primaryKey()).addColumn('name', text, (c) => c.notNull().unique())
        .addColumn('generation', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('parent_provider_uuid', text).addColumn('root_provider_uuid', text, (c) => c.notNull())
        .addColumn('created_at', text, (c) => c.notNull()).addColumn('updated_at', text, (c) => c.notNull()).execute();
      await s.createIndex('placement_providers_root').on('placement_providers').column('root_provider_uuid').execute();
      await s.createTable('placement_inventories')
        .addColumn('provider_uuid', text, (c) => c.notNull()).addColumn('resource_class', text, (c) => c.notNull())
        .addColumn('total', 'integer', (c) => c.notNull()).addColumn('reserved', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('min_unit', 'integer', (c) => c.notNull().defaultTo(1)).addColumn('max_unit', 'integer', (c) => c.notNull())
        .addColumn('step_size', 'integer', (c) => c.notNull().defaultTo(1)).addColumn('allocation_ratio', 'real', (c) => c.notNull().defaultTo(1))
        .addPrimaryKeyConstraint('placement_inventories_pk', ['provider_uuid', 'resource_class']).execute();
      await s.createTable('placement_resource_classes')
        .addColumn('name', text, (c) => c.primaryKey()).addColumn('created_at', text, (c) => c.notNull()).execute();
      await s.createTable('placement_traits')
        .addColumn('name', text, (c) => c.primaryKey()).addColumn('created_at', text, (c) => c.notNull()).execute();
      await s.createTable('placement_provider_traits')
        .addColumn('provider_uuid', text, (c) => c.notNull()).addColumn('trait', text, (c) => c.notNull())
        .addPrimaryKeyConstraint('placement_provider_traits_pk', ['provider_uuid', 'trait']).execute();
      await s.createTable('placement_provider_aggregates')
        .addColumn('provider_uuid', text, (c) => c.notNull()).addColumn('aggregate_uuid', text, (c) => c.notNull())
        .addPrimaryKeyConstraint('placement_provider_aggregates_pk', ['provider_uuid', 'aggregate_uuid']).execute();
      await s.createTable('placement_consumers')
        .addColumn('uuid', text, (c) => c.primaryKey()).addColumn('project_id', text, (c) => c.notNull())
        .addColumn('user_id', text, (c) => c.notNull()).addColumn('generation', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('created_at', text, (c) => c.notNull()).addColumn('updated_at', text, (c) => c.notNull()).execute();
      await s.createIndex('placement_consumers_project').on('placement_consumers').columns(['project_id', 'user_id']).execute();
      await s.createTable('placement_allocations')
        .addColumn('consumer_uuid', text, (c) => c.notNull()).addColumn('provider_uuid', text, (c) => c.notNull())
        .addColumn('resource_class', text, (c) => c.notNull()).addColumn('used', 'integer', (c) => c.notNull())
        .addPrimaryKeyConstraint('placement_allocations_pk', ['consumer_uuid', 'provider_uuid', 'resource_class']).execute();
      await s.createIndex('placement_allocations_provider').on('placement_allocations').columns(['provider_uuid', 'resource_class']).execute();

      // Compute's per-host claims become placement allocations: each host a
      // provider with its VCPU/MEMORY_MB/DISK_GB inventories, each claim a
      // consumer (the server) with its allocations; then the old table goes.
      const now = new Date().toISOString();
      const hosts = await db.selectFrom('compute_hosts').selectAll().execute() as Array<Record<string, any>>;
      for (const h of hosts) {
        await db.insertInto('placement_providers').values({
          uuid: h.id, name: h.hostname, generation: 1, parent_provider_uuid: null, root_provider_uuid: h.id, created_at: now, updated_at: now,
        }).execute();
        const inv = [['VCPU', h.vcpus, h.cpu_allocation_ratio], ['MEMORY_MB', h.memory_mb, h.ram_allocation_ratio], ['DISK_GB', h.disk_gb, h.disk_allocation_ratio]] as const;
        for (const [rc, total, ratio] of inv) {
          if (Number(total) > 0) {
            await db.insertInto('placement_inventories').values({
              provider_uuid: h.id, resource_class: rc, total, reserved: 0, min_unit: 1, max_unit: total, step_size: 1, allocation_ratio: ratio,
            }).execute();
          }
        }
      }
      const claims = await db.selectFrom('compute_allocations as a').leftJoin('compute_servers as s', 's.id', 'a.server_id')
        .select(['a.server_id', 'a.host_id', 'a.vcpus', 'a.memory_mb', 'a.disk_gb', 's.project_id', 's.user_id']).execute() as Array<Record<string, any>>;
      const known = new Set(hosts.map((h) => h.id));
      for (const a of claims) {
        if (!known.has(a.host_id)) continue;
        await db.insertInto('placement_consumers').values({
          uuid: a.server_id, project_id: a.project_id ?? '', user_id: a.user_id ?? '', generation: 1, created_at: now, updated_at: now,
        }).execute();
        for (const [rc, used] of [['VCPU', a.vcpus], ['MEMORY_MB', a.memory_mb], ['DISK_GB', a.disk_gb]] as const) {
          if (Number(used) > 0) await db.insertInto('placement_allocations').values({ consumer_uuid: a.server_id, provider_uuid: a.host_id, resource_class: rc, used }).execute();
        }
      }
      await s.dropTable('compute_allocations').execute();
    },
  },
};
