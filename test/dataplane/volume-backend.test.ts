// The volume backend conformance suite: every backend (today the file
// backend on a reflink file system, a loop-mounted btrfs, and as qcow2 chains
// on a file system without reflink) runs the same cases: data written to a
// volume survives snapshot, clone and extend (checksums compared), snapshots
// and clones of a sparse 1 GiB volume share its blocks, a crash's
// temporaries are finished or removed, and nothing is left after deletes.
// Snapshots and clones of one volume asked at once (the volume and snapshot
// reconcilers run side by side) keep its data; the volume reconciler reports
// a made volume whose data is missing as `data_missing` and never re-makes it.
import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { pino } from 'pino';
import { FileBackend } from '../../src/agent/drivers/volume/file.ts';
import { VolumeDriver } from '../../src/agent/drivers/volume/driver.ts';
import { volumeReconcilers } from '../../src/agent/drivers/volume/reconciler.ts';
import type { ResourceReport } from '../../src/fleet/protocol.ts';
import { VOLUME_KIND, type VolumeSpec } from '../../src/volume/protocol.ts';
import { run, runOk } from '../../src/agent/exec.ts';
import { skipUnlessRoot } from './lib.ts';
import { HttpError } from '../../src/agent/client.ts';
import { ResourceFailure } from '../../src/agent/errors.ts';

const GIB = 2 ** 30;

interface Case {
  name: string;
  format: 'raw' | 'qcow2';
  make(dir: string, fetchImage: (id: string, dest: string) => Promise<void>): FileBackend;
}

const CASES: Case[] = [
  { name: 'file backend, reflink (loop-mounted btrfs)', format: 'raw', make: (dir, fetchImage) => new FileBackend({ dir, format: 'auto', fetchImage }) },
  { name: 'file backend, qcow2 chains (ext4, no reflink)', format: 'qcow2', make: (dir, fetchImage) => new FileBackend({ dir, format: 'qcow2', fetchImage }) },
];

/** Writes `len` bytes of `pattern` at `offset` of the volume (through QEMU's block layer, as a guest would). */
async function write(b: FileBackend, path: string, pattern: number, offset: number, len: number): Promise<void> {
  await runOk('qemu-io', ['-f', b.format, '-c', `write -P ${pattern} ${offset} ${len}`, path], { timeoutMs: 60_000 });
}

/** The sha256 of the volume's first 16 MiB (where the tests write) as a guest sees them, and its virtual size. */
async function checksum(b: FileBackend, path: string, scratch: string): Promise<{ sha: string; size: number }> {
  const out = join(scratch, `read-${crypto.randomUUID()}.raw`);
  try {
    await runOk('qemu-img', ['dd', '-U', '-f', b.format, '-O', 'raw', 'bs=1M', 'count=16', `if=${path}`, `of=${out}`], { timeoutMs: 120_000 });
    const info = await runOk('qemu-img', ['info', '-U', '--output=json', '-f', b.format, path]);
    return { sha: createHash('sha256').update(await fsp.readFile(out)).digest('hex'), size: (JSON.parse(info.stdout) as { 'virtual-size': number })['virtual-size'] };
  } finally {
    await fsp.rm(out, { force: true });
  }
}

/** KiB the file system gives the backend's files (du counts shared reflink extents once per file, so btrfs' own accounting is used there). */
async function usedKib(b: FileBackend): Promise<number> {
  if (b.format === 'raw') {
    const r = await runOk('btrfs', ['filesystem', 'du', '-s', '--raw', b.dir]);
    // Total Exclusive Set-shared Filename: exclusive + shared counts each block once
    const m = /^\s*(\d+)\s+(\d+)\s+(\d+)\s/m.exec(r.stdout.split('\n').slice(1).join('\n'))!;
    return (Number(m[2]) + Number(m[3])) / 1024;
  }
  const r = await runOk('du', ['-s', '-k', b.dir]);
  return Number(r.stdout.split(/\s/)[0]);
}

for (const c of CASES) {
  describe(c.name, { skip: skipUnlessRoot }, () => {
    const scratch = mkdtempSync(join(tmpdir(), 'stratus-volbe-'));
    const dir = join(scratch, 'pool');
    // the agent's image download, as a test double: Glance images are files here
    const images = new Map<string, string>();
    const b = c.make(dir, async (id, dest) => {
      const f = images.get(id);
      if (!f) throw new HttpError(404, `Image ${id} could not be found.`);
      await fsp.copyFile(f, dest);
    });
    const image = `${dir}.img`;

    after(async () => {
      await b.stop().catch(() => undefined);
      await run('umount', [dir]);
      rmSync(scratch, { recursive: true, force: true });
    });

    test('start picks the format and reports its pool', async () => {
      await b.start();
      assert.equal(b.format, c.format);
      const [pool] = await b.pools('hostA');
      assert.equal(pool!.name, 'hostA@file#default');
      assert.equal(pool!.reflink, c.format === 'raw');
      assert.ok(pool!.total_capacity_gb > 0 && pool!.free_capacity_gb > 0);
    });

    test('a volume from a raw or qcow2 image holds its data, grown; bad images are source_unavailable; copyTo gives the data in a format', async () => {
      const raw = join(scratch, 'img.raw');
      await runOk('qemu-img', ['create', '-q', '-f', 'raw', raw, '20M']);
      await runOk('qemu-io', ['-f', 'raw', '-c', 'write -P 0x33 2M 3M', raw]);
      const qcow2 = join(scratch, 'img.qcow2');
      await runOk('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', raw, qcow2]);
      const evil = join(scratch, 'evil.qcow2');
      await runOk('qemu-img', ['create', '-q', '-f', 'qcow2', '-u', '-b', '/etc/hostname', '-F', 'raw', evil, '1M']);
      images.set('img-raw', raw).set('img-qcow2', qcow2).set('img-evil', evil);
      const want = await checksum({ format: 'raw' } as FileBackend, raw, scratch);
      for (const [id, fmt] of [['img-raw', 'raw'], ['img-qcow2', 'qcow2']] as const) {
        const v = await b.create(`vol-${id}`, 1, { type: 'image', image_id: id, disk_format: fmt });
        assert.equal(v.size_gib, 1);
        const got = await checksum(b, v.location, scratch);
        assert.equal(got.sha, want.sha, `the data of ${id}`);
        assert.equal(got.size, GIB);
      }
      const unavailable = async (p: Promise<unknown>) => {
        const err = await p.then(() => null, (e: unknown) => e);
        assert.ok(err instanceof ResourceFailure && err.code === 'source_unavailable', String(err));
      };
      await unavailable(b.create('vol-evil', 1, { type: 'image', image_id: 'img-evil', disk_format: 'qcow2' }));
      await unavailable(b.create('vol-none', 1, { type: 'image', image_id: 'img-none', disk_format: 'raw' }));
      // a qcow2 said to be raw is only raw bytes: never opened as qcow2
      const asRaw = await b.create('vol-asraw', 1, { type: 'image', image_id: 'img-evil', disk_format: 'raw' });
      assert.equal((await checksum(b, asRaw.location, scratch)).size, GIB);
      // copyTo: the data in the format asked, the copy gone after
      for (const fmt of ['raw', 'qcow2'] as const) {
        let copy = '';
        await b.copyTo('vol-img-qcow2', fmt, async (p) => {
          copy = p;
          assert.equal((await checksum({ format: fmt } as FileBackend, p, scratch)).sha, want.sha);
        });
        await assert.rejects(fsp.stat(copy));
      }
      for (const id of ['vol-img-raw', 'vol-img-qcow2', 'vol-asraw']) await b.delete(id);
      assert.deepEqual(await b.strays(), []);
      assert.deepEqual((await b.list()).volumes, []);
    });

    test('a backup\'s reads and restores: copyTo of a snapshot gives the data it froze; restoreInto writes raw data over a volume, its snapshot kept', async () => {
      const v = await b.create('vol-rs', 1, { type: 'blank' });
      const fmt = b.format;
      await runOk('qemu-io', ['-f', fmt, '-c', 'write -P 0x44 1M 1M', v.location]);
      await b.snapshot('vol-rs', 'snap-rs');
      await runOk('qemu-io', ['-f', fmt, '-c', 'write -P 0x55 1M 1M', v.location]);
      const frozen = join(scratch, 'frozen.raw');
      await b.copyTo('vol-rs', 'raw', async (p) => { await fsp.copyFile(p, frozen); }, { snapshotId: 'snap-rs' });
      const atSnapshot = await checksum({ format: 'raw' } as FileBackend, frozen, scratch);
      const now = await checksum(b, v.location, scratch);
      assert.notEqual(atSnapshot.sha, now.sha, 'the snapshot kept the first data');
      // restore the frozen data over the volume (the restore file may be shorter: grown to the volume)
      const restored = await b.restoreInto('vol-rs', async (p) => { await fsp.copyFile(frozen, p); await fsp.truncate(p, 512 * 1024 * 1024); });
      assert.equal(restored.size_gib, 1);
      const back = await checksum(b, restored.location, scratch);
      assert.equal(back.size, GIB);
      const head = join(scratch, 'head.raw');
      await runOk('qemu-img', ['dd', '-U', '-f', fmt, '-O', 'raw', 'bs=1M', 'count=4', `if=${restored.location}`, `of=${head}`]);
      const buf = await fsp.readFile(head);
      assert.equal(buf[1024 * 1024], 0x44, 'the restored data');
      // the snapshot still holds its data
      await b.copyTo('vol-rs', 'raw', async (p) => assert.equal((await checksum({ format: 'raw' } as FileBackend, p, scratch)).sha, atSnapshot.sha), { snapshotId: 'snap-rs' });
      await assert.rejects(b.copyTo('vol-rs', 'raw', async () => undefined, { snapshotId: 'snap-none' }), (e: unknown) => e instanceof ResourceFailure && e.code === 'source_unavailable');
      await fsp.rm(frozen);
      await fsp.rm(head);
      await b.delete('vol-rs');
      assert.deepEqual(await b.strays(), []);
      assert.deepEqual((await b.list()).volumes, []);
    });

    test('create, write, snapshot, clone, extend, delete keep the data and share blocks', async () => {
      const v = await b.create('vol-a', 1, { type: 'blank' });
      assert.equal(v.size_gib, 1);
      // idempotent: a second create of a present volume changes nothing
      assert.deepEqual(await b.create('vol-a', 1, { type: 'blank' }), v);
      await write(b, v.location, 0x5a, 1 << 20, 8 << 20);
      const before = await checksum(b, v.location, scratch);
      assert.equal(before.size, GIB);
      const used0 = await usedKib(b);
      assert.ok(used0 < 64 * 1024, `a sparse 1 GiB volume with 8 MiB written uses ${used0} KiB`);

      const s = await b.snapshot('vol-a', 'snap-1');
      assert.deepEqual(await b.snapshot('vol-a', 'snap-1'), s);
      assert.ok(await b.observeSnapshot('vol-a', 'snap-1'));
      // the volume goes on being written; the snapshot keeps the old content
      await write(b, (await b.observe('vol-a'))!.location, 0x11, 0, 4096);
      const changed = await checksum(b, (await b.observe('vol-a'))!.location, scratch);
      assert.notEqual(changed.sha, before.sha);

      const fromSnap = await b.create('vol-b', 1, { type: 'snapshot', snapshot_id: 'snap-1' });
      assert.equal((await checksum(b, fromSnap.location, scratch)).sha, before.sha);
      const clone = await b.create('vol-c', 2, { type: 'volume', volume_id: 'vol-a' });
      assert.equal(clone.size_gib, 2);
      const cloneSum = await checksum(b, clone.location, scratch);
      assert.equal(cloneSum.size, 2 * GIB);
      // the clone is the volume's content, grown with zeroes
      assert.equal((await checksum(b, (await b.observe('vol-a'))!.location, scratch)).sha, changed.sha);

      const used1 = await usedKib(b);
      assert.ok(used1 < used0 + 16 * 1024, `a snapshot and two clones added ${used1 - used0} KiB to ${used0} KiB: the blocks must be shared`);

      const grown = await b.extend('vol-a', 3);
      assert.equal(grown.size_gib, 3);
      const afterExtend = await checksum(b, grown.location, scratch);
      assert.equal(afterExtend.size, 3 * GIB);
      // a smaller size never shrinks
      assert.equal((await b.extend('vol-a', 1)).size_gib, 3);

      // the snapshot outlives a delete of the clone made from it, and the clone of its volume
      await b.delete('vol-b');
      await b.delete('vol-c');
      assert.equal(await b.observe('vol-b'), null);
      const again = await b.create('vol-d', 1, { type: 'snapshot', snapshot_id: 'snap-1' });
      assert.equal((await checksum(b, again.location, scratch)).sha, before.sha);
      await b.deleteSnapshot('vol-a', 'snap-1');
      await b.deleteSnapshot('vol-a', 'snap-1');
      // a volume made from a snapshot keeps its data after the snapshot is gone
      assert.equal((await checksum(b, again.location, scratch)).sha, before.sha);
      assert.equal((await checksum(b, (await b.observe('vol-a'))!.location, scratch)).sha, afterExtend.sha);
      assert.deepEqual(await b.strays(), []);
      await b.delete('vol-d');
      await b.delete('vol-a');
      await b.delete('vol-a');
      assert.deepEqual(await b.list(), { volumes: [], snapshots: [] });
      assert.deepEqual(await b.strays(), []);
    });

    test('a volume beyond the over-subscribed pool size is the no_space error, on create and on extend', async () => {
      const [p] = await b.pools('h');
      const tooBig = Math.ceil(p!.total_capacity_gb * p!.max_over_subscription_ratio) + 1;
      await assert.rejects(b.create('vol-y', tooBig, { type: 'blank' }), (e: Error & { code?: string }) => e.code === 'no_space');
      assert.equal(await b.observe('vol-y'), null);
      await b.create('vol-y', 1, { type: 'blank' });
      await assert.rejects(b.extend('vol-y', tooBig), (e: Error & { code?: string }) => e.code === 'no_space');
      assert.equal((await b.observe('vol-y'))!.size_gib, 1);
      await b.delete('vol-y');
      assert.deepEqual(await b.strays(), []);
    });

    test('a snapshot of a volume a process holds open (an attachment): refused on qcow2 chains (the freeze renames its file), a reflink copy on raw', async () => {
      const v = await b.create('vol-open', 1, { type: 'blank' });
      const fh = await fsp.open(v.location, 'r+');
      try {
        if (c.format === 'qcow2') {
          await assert.rejects(b.snapshot('vol-open', 'snap-open'), (e: Error & { code?: string }) => e.code === 'refused' && /attached/.test(e.message));
          assert.equal(await b.observeSnapshot('vol-open', 'snap-open'), null, 'nothing made');
        } else {
          assert.ok((await b.snapshot('vol-open', 'snap-open')).location);
        }
      } finally {
        await fh.close();
      }
      assert.ok((await b.snapshot('vol-open', 'snap-open')).location, 'closed: the snapshot is made');
      await b.deleteSnapshot('vol-open', 'snap-open');
      await b.delete('vol-open');
      assert.deepEqual(await b.strays(), []);
    });

    test('a missing source is the source_unavailable error, and nothing is left of the volume', async () => {
      await assert.rejects(b.create('vol-x', 1, { type: 'snapshot', snapshot_id: 'nope' }), (e: Error & { code?: string }) => e.code === 'source_unavailable');
      await assert.rejects(b.create('vol-x', 1, { type: 'volume', volume_id: 'nope' }), (e: Error & { code?: string }) => e.code === 'source_unavailable');
      assert.equal(await b.observe('vol-x'), null);
      assert.deepEqual(await b.strays(), []);
    });

    test('a crash mid-create leaves a temporary that start() removes; the audit sees it before', async () => {
      await b.create('vol-e', 1, { type: 'blank' });
      await write(b, (await b.observe('vol-e'))!.location, 0x22, 0, 1 << 20);
      const sum = await checksum(b, (await b.observe('vol-e'))!.location, scratch);
      const tmp = join(dir, 'volumes', `vol-f.${c.format}.tmp`);
      await fsp.writeFile(tmp, 'half');
      assert.deepEqual(await b.strays(), [tmp]);
      const b2 = c.make(dir, async () => { throw new Error("no images here"); });
      await b2.start();
      assert.deepEqual(await b2.strays(), []);
      // a retried create of an existing volume never replaces its data
      await b2.create('vol-e', 1, { type: 'blank' });
      assert.equal((await checksum(b2, (await b2.observe('vol-e'))!.location, scratch)).sha, sum.sha);
      await b2.delete('vol-e');
      assert.deepEqual(await b2.list(), { volumes: [], snapshots: [] });
    });

    test('a snapshot interrupted mid-way is finished or rolled back at start, and the volume keeps its data', { skip: c.format !== 'qcow2' && 'qcow2 only: a reflink snapshot is one copy and a rename' }, async () => {
      await b.create('vol-g', 1, { type: 'blank' });
      const file = (await b.observe('vol-g'))!.location;
      await write(b, file, 0x33, 0, 1 << 20);
      const sum = await checksum(b, file, scratch);
      // crashed before the layer was renamed into place: the new overlay names a layer that does not exist
      await runOk('qemu-img', ['create', '-q', '-f', 'qcow2', '-u', '-b', '../layers/never-made.qcow2', '-F', 'qcow2', `${file}.next`, String(GIB)]);
      // crashed after: the volume's file is the layer already, the overlay not yet in place
      await b.create('vol-h', 1, { type: 'blank' });
      const fileH = (await b.observe('vol-h'))!.location;
      await write(b, fileH, 0x44, 0, 1 << 20);
      const sumH = await checksum(b, fileH, scratch);
      await runOk('qemu-img', ['create', '-q', '-f', 'qcow2', '-u', '-b', '../layers/frozen-h.qcow2', '-F', 'qcow2', `${fileH}.next`, String(GIB)]);
      await fsp.rename(fileH, join(dir, 'layers', 'frozen-h.qcow2'));
      assert.equal(await b.observe('vol-h'), null);
      const b2 = c.make(dir, async () => { throw new Error("no images here"); });
      await b2.start();
      assert.equal((await checksum(b2, (await b2.observe('vol-g'))!.location, scratch)).sha, sum.sha);
      assert.equal((await checksum(b2, (await b2.observe('vol-h'))!.location, scratch)).sha, sumH.sha);
      assert.deepEqual(await b2.strays(), []);
      await b2.delete('vol-g');
      await b2.delete('vol-h');
      assert.deepEqual(await b2.list(), { volumes: [], snapshots: [] });
      assert.deepEqual(await fsp.readdir(join(dir, 'layers')), []);
    });

    test('snapshots and clones of one volume asked at once keep its data (no overlay of one removes another\'s)', async () => {
      const v = await b.create('vol-k', 1, { type: 'blank' });
      await write(b, v.location, 0x5c, 0, 4 << 20);
      const sum = await checksum(b, v.location, scratch);
      const seen: Array<unknown> = [];
      await Promise.all([
        b.snapshot('vol-k', 'snap-k1'), b.create('vol-k2', 1, { type: 'volume', volume_id: 'vol-k' }),
        b.snapshot('vol-k', 'snap-k2'), b.create('vol-k3', 1, { type: 'volume', volume_id: 'vol-k' }),
        ...Array.from({ length: 4 }, async () => seen.push(await b.observe('vol-k'))),
      ]);
      assert.ok(seen.every((x) => x !== null), 'the volume is never seen missing while it is frozen');
      assert.equal((await checksum(b, (await b.observe('vol-k'))!.location, scratch)).sha, sum.sha);
      for (const id of ['vol-k2', 'vol-k3']) assert.equal((await checksum(b, (await b.observe(id))!.location, scratch)).sha, sum.sha, id);
      // and what the snapshots hold
      await Promise.all([b.create('vol-k4', 1, { type: 'snapshot', snapshot_id: 'snap-k1' }), b.create('vol-k5', 1, { type: 'snapshot', snapshot_id: 'snap-k2' }), b.snapshot('vol-k', 'snap-k3')]);
      for (const id of ['vol-k4', 'vol-k5']) assert.equal((await checksum(b, (await b.observe(id))!.location, scratch)).sha, sum.sha, id);
      assert.deepEqual(await b.strays(), []);
      await Promise.all([b.delete('vol-k2'), b.deleteSnapshot('vol-k', 'snap-k1'), b.delete('vol-k4'), b.create('vol-k6', 1, { type: 'snapshot', snapshot_id: 'snap-k3' })]);
      assert.equal((await checksum(b, (await b.observe('vol-k6'))!.location, scratch)).sha, sum.sha);
      assert.equal((await checksum(b, (await b.observe('vol-k5'))!.location, scratch)).sha, sum.sha);
      await Promise.all(['vol-k', 'vol-k3', 'vol-k5', 'vol-k6'].map((id) => b.delete(id)));
      assert.deepEqual(await b.list(), { volumes: [], snapshots: [] });
      assert.deepEqual(await b.strays(), []);
    });

    test('the reconciler: a made volume whose data is missing is data_missing, never re-made blank; one being made is made', async () => {
      const reports: ResourceReport[] = [];
      const log = pino({ level: 'silent' });
      const rec = volumeReconcilers[VOLUME_KIND]!([new VolumeDriver({ backends: [b], log })], { log, hostname: 'h', report: (r) => reports.push(r), uploadImage: async () => {} });
      const spec = (created: boolean): VolumeSpec => ({ project_id: 'p', state: 'present', size_gib: 1, backend: b.name, pool: 'default', source: { type: 'blank' }, created, extra_specs: {}, exports: [] });
      try {
        await rec.reconcile('vol-m', { kind: VOLUME_KIND, id: 'vol-m', version: 4, spec: spec(true) });
        assert.equal(reports.length, 1);
        assert.equal(reports[0]!.error?.code, 'data_missing');
        assert.equal(reports[0]!.version, 4);
        assert.equal(await b.observe('vol-m'), null, 'not made again blank');
        await rec.reconcile('vol-m', { kind: VOLUME_KIND, id: 'vol-m', version: 1, spec: spec(false) });
        assert.equal(reports[1]!.error, undefined);
        assert.equal((reports[1]!.observed as { state: string }).state, 'present');
        assert.ok(await b.observe('vol-m'));
      } finally {
        await b.delete('vol-m');
      }
    });

    test('stop leaves no mount and no loop device', async () => {
      await b.stop();
      const mounts = await fsp.readFile('/proc/self/mountinfo', 'utf8');
      assert.ok(!mounts.includes(` ${dir} `), 'the pool is unmounted');
      // the kernel clears an autoclear loop device after the last close, from a work queue: a moment after the umount
      let loops = { stdout: '' };
      for (let i = 0; i < 50; i++) {
        loops = await runOk('losetup', ['-j', image]).catch(() => ({ stdout: '' }));
        if (!loops.stdout.trim()) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(loops.stdout.trim(), '', 'no loop device holds the pool image');
    });
  });
}
