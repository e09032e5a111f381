// Volume backups through the Cinder API against an in-process server and a
// real agent (file backend, loop-mounted btrfs pool) and the object store:
// a pattern written to a volume survives a full backup and a restore into a
// new volume; a block changed afterwards goes into an incremental backup
// that holds only the changed chunk (object count 1 of 32); restoring it
// gives the changed data, and so does a volume created from it (backup_id,
// 3.47); checksums of the whole volumes compared. The
// backups' objects in the project's container go with the backups; no file
// is left in the pool.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createReadStream, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { runOk } from '../../src/agent/exec.ts';
import { skipUnlessRoot, sleep, startPlane, type Plane } from './lib.ts';

let plane: Plane;
let pool = '';

before(async () => {
  if (skipUnlessRoot) return;
  plane = await startPlane({ agent: 'inproc', volume: true });
  pool = join(plane.stateDir, 'volumes');
});
after(async () => {
  if (plane) await plane.cleanup();
});

const api = (method: string, path: string, body?: unknown) => plane.api(method, `/volume/v3${path}`, body, { 'OpenStack-API-Version': 'volume 3.64' });

async function waitFor(kind: 'volumes' | 'backups', id: string, statuses: string[], timeoutMs = 120_000): Promise<any> {
  const until = Date.now() + timeoutMs;
  let last: any;
  while (Date.now() < until) {
    const r = await api('GET', `/${kind}/${id}`);
    last = r.status === 404 ? { status: 'gone' } : r.body[kind === 'volumes' ? 'volume' : 'backup'];
    if (statuses.includes(last.status)) return last;
    await sleep(100);
  }
  throw new Error(`${kind} ${id} did not reach ${statuses.join('/')}: ${JSON.stringify(last)}`);
}

const volumeFile = (id: string) => join(pool, 'volumes', `${id}.raw`);
/** The sha256 of a file, or of its first `bytes`. */
async function sha(path: string, bytes?: number): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(path, bytes === undefined ? {} : { end: bytes - 1 })) h.update(c as Buffer);
  return h.digest('hex');
}

async function backup(volumeId: string, incremental: boolean): Promise<any> {
  const r = await api('POST', '/backups', { backup: { volume_id: volumeId, incremental, name: incremental ? 'dp-incr' : 'dp-full' } });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  const b = await waitFor('backups', r.body.backup.id, ['available', 'error']);
  assert.equal(b.status, 'available', JSON.stringify(b));
  assert.equal((await waitFor('volumes', volumeId, ['available'])).status, 'available');
  return b;
}

async function restoreNew(backupId: string): Promise<string> {
  const r = await api('POST', `/backups/${backupId}/restore`, { restore: {} });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  const v = await waitFor('volumes', r.body.restore.volume_id, ['available', 'error', 'error_restoring']);
  assert.equal(v.status, 'available', JSON.stringify(v));
  assert.equal((await waitFor('backups', backupId, ['available'])).status, 'available');
  return v.id as string;
}

test('a backup and an incremental backup of a volume restore its data (checksums compared); the incremental holds only the changed chunk', { skip: skipUnlessRoot }, async () => {
  const made: string[] = [];
  const backups: string[] = [];
  try {
    const c = await api('POST', '/volumes', { volume: { size: 1, name: 'dp-backup' } });
    assert.equal(c.status, 202, JSON.stringify(c.body));
    const id = c.body.volume.id as string;
    made.push(id);
    await waitFor('volumes', id, ['available']);
    // a pattern in chunks 0 and 1 (32 MiB each), and one at the very end
    await runOk('qemu-io', ['-f', 'raw', '-c', 'write -P 0x5a 0 1M', '-c', 'write -P 0xa5 40M 512k', '-c', 'write -P 0x11 1023M 1M', volumeFile(id)]);
    const before = await sha(volumeFile(id));

    const full = await backup(id, false);
    backups.push(full.id);
    assert.equal(full.object_count, 32, 'a full backup writes every chunk');
    assert.equal(full.is_incremental, false);

    // one block changed in chunk 3
    await runOk('qemu-io', ['-f', 'raw', '-c', 'write -P 0x33 100M 64k', volumeFile(id)]);
    const after = await sha(volumeFile(id));
    assert.notEqual(after, before);
    const incr = await backup(id, true);
    backups.push(incr.id);
    assert.equal(incr.object_count, 1, 'the incremental backup sends only the changed chunk');
    assert.equal(incr.is_incremental, true);
    assert.equal((await api('GET', `/backups/${full.id}`)).body.backup.has_dependent_backups, true);

    // the objects: in the project's container
    const project = (await api('GET', `/volumes/${id}`)).body.volume['os-vol-tenant-attr:tenant_id'] as string;
    const names = async () => {
      const r = await plane.api('GET', `/object/v1/AUTH_${project}/volumebackups?format=json`);
      return r.status === 200 ? (r.body as Array<{ name: string }>).map((o) => o.name) : [];
    };
    assert.equal((await names()).length, 32 + 1 + 2 * 2, 'chunks, and a metadata and sha256 object per backup');

    // restores into new volumes: the data as it was at each backup
    const fromFull = await restoreNew(full.id);
    made.push(fromFull);
    assert.equal(await sha(volumeFile(fromFull)), before, 'the full backup restores the first data');
    const fromIncr = await restoreNew(incr.id);
    made.push(fromIncr);
    assert.equal(await sha(volumeFile(fromIncr)), after, 'the incremental backup restores the changed data');

    // a volume created from a backup (backup_id, 3.47), larger than it: the backup's data in its first GiB
    const fb = await api('POST', '/volumes', { volume: { backup_id: incr.id, size: 2, name: 'dp-from-backup' } });
    assert.equal(fb.status, 202, JSON.stringify(fb.body));
    made.push(fb.body.volume.id);
    const fromBackup = await waitFor('volumes', fb.body.volume.id, ['available', 'error', 'error_restoring']);
    assert.equal(fromBackup.status, 'available', JSON.stringify(fromBackup));
    assert.equal(fromBackup.size, 2);
    assert.equal((await waitFor('backups', incr.id, ['available'])).status, 'available');
    assert.equal(statSync(volumeFile(fromBackup.id)).size, 2 * 2 ** 30);
    assert.equal(await sha(volumeFile(fromBackup.id), 2 ** 30), after, 'the volume made from the incremental backup holds its data');

    // into the existing volume: back to the first data
    const r = await api('POST', `/backups/${full.id}/restore`, { restore: { volume_id: id } });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    assert.equal((await waitFor('volumes', id, ['available', 'error_restoring'])).status, 'available');
    assert.equal(await sha(volumeFile(id)), before, 'restored over the volume');

    // deletes: the incremental first (the full one has a dependent), then the full one; their objects go
    for (const b of [...backups].reverse()) {
      assert.equal((await api('DELETE', `/backups/${b}`)).status, 202);
      await waitFor('backups', b, ['gone']);
    }
    backups.length = 0;
    assert.deepEqual(await names(), [], 'no object of the backups left');
  } finally {
    for (const b of backups.reverse()) await api('POST', `/backups/${b}/action`, { 'os-force_delete': {} }).catch(() => undefined);
    for (const id of made) await api('DELETE', `/volumes/${id}`).catch(() => undefined);
    for (const id of made) await waitFor('volumes', id, ['gone']).catch(() => undefined);
  }
  assert.deepEqual(readdirSync(join(pool, 'volumes')), [], 'no file left (no copy or restore temporaries)');
  assert.deepEqual(readdirSync(join(pool, 'snapshots')), [], 'no snapshot left');
});
