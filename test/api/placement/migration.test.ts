// Migration 0200: compute's per-host claims (compute_allocations) become
// placement allocations — each host a provider with its inventories, each
// claimed server a consumer owned by its project and user — and the old table
// is dropped. Runs on SQLite, or on PostgreSQL when STRATUS_TEST_DATABASE is set.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Migrator, type Migration } from 'kysely/migration';
import { openDatabase } from '../../../src/db/database.ts';
import { migrations } from '../../../src/db/migrations.ts';
import { freshPostgres } from '../../harness.ts';

test('compute_allocations rows move into placement, then the table goes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'stratus-mig-'));
  const pgBase = process.env.STRATUS_TEST_DATABASE;
  const pg = pgBase ? await freshPostgres(pgBase) : undefined;
  const database = await openDatabase(pg?.url ?? join(dir, 'db.sqlite'));
  const db = database.db as any;
  try {
    const migrator = new Migrator({ db, provider: { getMigrations: async (): Promise<Record<string, Migration>> => migrations } });
    const before = await migrator.migrateTo('0105_compute_api');
    assert.equal(before.error, undefined);
    const now = new Date().toISOString();
    const host = { id: 'a1b2c3d4-0000-4000-8000-000000000001', hostname: 'old-host' };
    await db.insertInto('compute_hosts').values({
      ...host, service_id: 's1', kinds: '["container"]', vcpus: 4, memory_mb: 2048, disk_gb: 20, cpu_allocation_ratio: 8,
      ram_allocation_ratio: 1.5, disk_allocation_ratio: 1, availability_zone: 'nova', status: 'enabled', forced_down: 0, last_seen_at: now, created_at: now,
    }).execute();
    const server = (id: string) => ({
      id, name: id, project_id: 'proj-1', user_id: 'user-1', flavor_id: '1', flavor: '{}', kind: 'container', hostname: id, host: 'old-host',
      vm_state: 'active', desired_power: 'running', reservation_id: 'r', created_at: now, updated_at: now,
    });
    await db.insertInto('compute_servers').values([server('s-1'), server('s-2')]).execute();
    await db.insertInto('compute_allocations').values([
      { server_id: 's-1', host_id: host.id, vcpus: 2, memory_mb: 512, disk_gb: 1 },
      { server_id: 's-2', host_id: host.id, vcpus: 1, memory_mb: 256, disk_gb: 0 },
    ]).execute();

    const after = await migrator.migrateToLatest();
    assert.equal(after.error, undefined);
    const rp = await db.selectFrom('placement_providers').selectAll().where('uuid', '=', host.id).executeTakeFirstOrThrow();
    assert.equal(rp.name, 'old-host');
    const inv = await db.selectFrom('placement_inventories').selectAll().where('provider_uuid', '=', host.id).orderBy('resource_class').execute();
    assert.deepEqual(inv.map((i: any) => [i.resource_class, i.total, Number(i.allocation_ratio)]), [['DISK_GB', 20, 1], ['MEMORY_MB', 2048, 1.5], ['VCPU', 4, 8]]);
    const allocs = await db.selectFrom('placement_allocations').selectAll().orderBy('consumer_uuid').orderBy('resource_class').execute();
    assert.deepEqual(allocs.map((a: any) => [a.consumer_uuid, a.resource_class, a.used]), [
      ['s-1', 'DISK_GB', 1], ['s-1', 'MEMORY_MB', 512], ['s-1', 'VCPU', 2], ['s-2', 'MEMORY_MB', 256], ['s-2', 'VCPU', 1],
    ]);
    const consumers = await db.selectFrom('placement_consumers').selectAll().orderBy('uuid').execute();
    assert.deepEqual(consumers.map((c: any) => [c.uuid, c.project_id, c.user_id]), [['s-1', 'proj-1', 'user-1'], ['s-2', 'proj-1', 'user-1']]);
    await assert.rejects(db.selectFrom('compute_allocations').selectAll().execute(), 'the old table is gone');
  } finally {
    await database.close();
    await pg?.drop();
    rmSync(dir, { recursive: true, force: true });
  }
});
