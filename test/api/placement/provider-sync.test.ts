// Syncing compute hosts into placement while other schedulers sync them too
// (several replicas, the engine's own loop): each sync, when it returns,
// leaves the host's provider whole for its caller to read, also inside a
// transaction (on PostgreSQL a failed insert would abort it). Run on SQLite
// and, through scripts/test-postgres.sh, on PostgreSQL.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { providerStates, syncComputeProviders, type ComputeHost } from '../../../src/placement/service.ts';
import { uniqueName, useCloud } from '../../harness.ts';

const cloud = useCloud();
const db = () => cloud.server.database.db;

const host = (): ComputeHost => ({
  id: randomUUID(), hostname: uniqueName('sync'), status: 'enabled', vcpus: 4, memory_mb: 4096, disk_gb: 40,
  cpu_allocation_ratio: 1, ram_allocation_ratio: 1, disk_allocation_ratio: 1,
});

/** Syncs `h` (in a transaction when asked) and reads its provider as the scheduler would next. */
async function syncThenRead(h: ComputeHost, inTransaction: boolean) {
  if (!inTransaction) {
    await syncComputeProviders(db(), [h]);
    return (await providerStates(db(), [h.id])).get(h.id);
  }
  return db().transaction().execute(async (tx) => {
    await syncComputeProviders(tx, [h]);
    return (await providerStates(tx, [h.id])).get(h.id);
  });
}

test('concurrent syncs of a new host each leave its provider whole', async () => {
  for (let round = 0; round < 10; round++) {
    const h = host();
    const states = await Promise.all(Array.from({ length: 6 }, (_, i) => syncThenRead(h, i % 2 === 1)));
    for (const s of states) {
      assert.ok(s, 'the provider exists');
      assert.deepEqual([...s.inventories.keys()].sort(), ['DISK_GB', 'MEMORY_MB', 'VCPU'], 'every inventory, whoever made the provider');
      assert.deepEqual([...s.traits], ['COMPUTE_NODE']);
      assert.equal(s.provider.name, h.hostname);
    }
  }
});

test('a provider of the host\'s name made first keeps it: the host gets none, in or out of a transaction', async () => {
  const h = host();
  const other = randomUUID();
  const now = new Date().toISOString();
  await db().insertInto('placement_providers').values({
    uuid: other, name: h.hostname, generation: 0, parent_provider_uuid: null, root_provider_uuid: other, created_at: now, updated_at: now,
  }).execute();
  assert.equal(await syncThenRead(h, false), undefined);
  assert.equal(await syncThenRead(h, true), undefined);
  const rows = await db().selectFrom('placement_providers').select('uuid').where('name', '=', h.hostname).execute();
  assert.deepEqual(rows.map((r) => r.uuid), [other]);
  assert.deepEqual(await db().selectFrom('placement_inventories').select('resource_class').where('provider_uuid', '=', h.id).execute(), []);
});
