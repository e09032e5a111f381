// Volumes through the Cinder API against an in-process server and a real agent
// with the file volume backend (a loop-mounted btrfs pool under its state dir):
// a volume goes `available` on the host, extend grows its file, a snapshot
// goes available, a volume from the snapshot holds the same data, and deletes
// leave no file behind (and no mount or loop device once the plane is gone);
// `stratus volume audit`'s check lists files no volume accounts for.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { run, runOk } from '../../src/agent/exec.ts';
import { skipUnlessRoot, sleep, startPlane, type Plane } from './lib.ts';
import { auditVolumes } from '../../src/agent/volume-audit.ts';

let plane: Plane;
let pool = '';

before(async () => {
  if (skipUnlessRoot) return;
  plane = await startPlane({ agent: 'inproc', volume: true });
  pool = join(plane.stateDir, 'volumes');
});
after(async () => {
  if (!plane) return;
  await plane.cleanup();
  assert.ok(!readFileSync('/proc/self/mountinfo', 'utf8').includes(` ${pool} `), 'the volume pool is unmounted');
  const loops = await run('losetup', ['-j', `${pool}.img`]);
  assert.equal(loops.stdout.trim(), '', 'no loop device is left on the pool image');
});

const api = (method: string, path: string, body?: unknown) => plane.api(method, `/volume/v3${path}`, body, { 'OpenStack-API-Version': 'volume 3.64' });

async function waitVolume(id: string, statuses: string[], timeoutMs = 60_000): Promise<any> {
  const until = Date.now() + timeoutMs;
  let last: any;
  while (Date.now() < until) {
    const r = await api('GET', `/volumes/${id}`);
    last = r.status === 404 ? { status: 'gone' } : r.body.volume;
    if (statuses.includes(last.status)) return last;
    await sleep(100);
  }
  throw new Error(`volume ${id} did not reach ${statuses.join('/')}: ${JSON.stringify(last)}`);
}

async function waitSnapshot(id: string, statuses: string[], timeoutMs = 60_000): Promise<any> {
  const until = Date.now() + timeoutMs;
  let last: any;
  while (Date.now() < until) {
    const r = await api('GET', `/snapshots/${id}`);
    last = r.status === 404 ? { status: 'gone' } : r.body.snapshot;
    if (statuses.includes(last.status)) return last;
    await sleep(100);
  }
  throw new Error(`snapshot ${id} did not reach ${statuses.join('/')}: ${JSON.stringify(last)}`);
}

const volumeFile = (id: string) => join(pool, 'volumes', `${id}.raw`);

async function first16MiB(path: string): Promise<string> {
  const out = `${path}.read-${process.pid}`;
  try {
    await runOk('qemu-img', ['dd', '-U', '-f', 'raw', '-O', 'raw', 'bs=1M', 'count=16', `if=${path}`, `of=${out}`]);
    return createHash('sha256').update(await fsp.readFile(out)).digest('hex');
  } finally {
    await fsp.rm(out, { force: true });
  }
}

test('a volume goes available, extends, snapshots, and a volume from the snapshot has its data; deletes leave nothing', { skip: skipUnlessRoot }, async () => {
  const c = await api('POST', '/volumes', { volume: { size: 1, name: 'dp-vol' } });
  assert.equal(c.status, 202, JSON.stringify(c.body));
  const id = c.body.volume.id as string;
  const v = await waitVolume(id, ['available', 'error']);
  assert.equal(v.status, 'available');
  assert.equal(v['os-vol-host-attr:host'] ?? `${plane.hostname}@file#default`, `${plane.hostname}@file#default`);
  assert.equal((await fsp.stat(volumeFile(id))).size, 2 ** 30);

  // data, as a guest would write it
  await runOk('qemu-io', ['-f', 'raw', '-c', 'write -P 0x7e 1M 4M', volumeFile(id)]);
  const sum = await first16MiB(volumeFile(id));

  const e = await api('POST', `/volumes/${id}/action`, { 'os-extend': { new_size: 2 } });
  assert.equal(e.status, 202, JSON.stringify(e.body));
  const grown = await waitVolume(id, ['available', 'error_extending']);
  assert.equal(grown.status, 'available');
  assert.equal(grown.size, 2);
  assert.equal((await fsp.stat(volumeFile(id))).size, 2 * 2 ** 30);
  assert.equal(await first16MiB(volumeFile(id)), sum);

  const s = await api('POST', '/snapshots', { snapshot: { volume_id: id, name: 'dp-snap' } });
  assert.equal(s.status, 202, JSON.stringify(s.body));
  const snapId = s.body.snapshot.id as string;
  assert.equal((await waitSnapshot(snapId, ['available', 'error'])).status, 'available');
  assert.ok(existsSync(join(pool, 'snapshots', id, `${snapId}.raw`)));

  // the volume changes after the snapshot; the new volume has the snapshot's data
  await runOk('qemu-io', ['-f', 'raw', '-c', 'write -P 0x01 0 4096', volumeFile(id)]);
  const fromSnap = await api('POST', '/volumes', { volume: { size: 2, snapshot_id: snapId, name: 'dp-from-snap' } });
  assert.equal(fromSnap.status, 202, JSON.stringify(fromSnap.body));
  const id2 = fromSnap.body.volume.id as string;
  assert.equal((await waitVolume(id2, ['available', 'error'])).status, 'available');
  assert.equal(await first16MiB(volumeFile(id2)), sum);

  assert.equal((await api('DELETE', `/volumes/${id2}`)).status, 202);
  assert.equal((await api('DELETE', `/snapshots/${snapId}`)).status, 202);
  await waitSnapshot(snapId, ['gone']);
  assert.equal((await api('DELETE', `/volumes/${id}`)).status, 202);
  await waitVolume(id, ['gone']);
  await waitVolume(id2, ['gone']);
  assert.deepEqual(readdirSync(join(pool, 'volumes')), []);
  assert.deepEqual(readdirSync(join(pool, 'snapshots')), []);

  // the audit: clean now; a file of no volume and a crash's temporary are listed, and left alone
  const audit = () => auditVolumes({ server: `http://127.0.0.1:${plane.port}`, tokenFile: join(plane.dataDir, 'agent-token'), stateDir: plane.stateDir, hostname: plane.hostname });
  const clean = await audit();
  assert.deepEqual(clean.audit, { volumes: [], snapshots: [], strays: [], missing: [] }, clean.text);
  await fsp.writeFile(join(pool, 'volumes', 'orphan.raw'), '');
  await fsp.writeFile(join(pool, 'volumes', 'half.raw.tmp'), '');
  const dirty = (await audit()).audit;
  assert.deepEqual(dirty.volumes, [{ backend: 'file', id: 'orphan' }]);
  assert.deepEqual(dirty.strays, [join(pool, 'volumes', 'half.raw.tmp')]);
  assert.ok(existsSync(join(pool, 'volumes', 'orphan.raw')));
  await fsp.rm(join(pool, 'volumes', 'orphan.raw'));
  await fsp.rm(join(pool, 'volumes', 'half.raw.tmp'));
});
