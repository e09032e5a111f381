// The VM image cache's checks (images.ts) with the real qemu-img: a qcow2 that
// names a backing file or an external data file is refused (qemu would open it
// as root), a plain one is cached.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { ImageFormatError, VmImageCache } from '../../src/agent/drivers/vm/images.ts';

const skip = spawnSync('sh', ['-c', 'command -v qemu-img && command -v prlimit']).status !== 0 ? 'needs qemu-img and prlimit' : false;

const qemuImg = (...args: string[]) => {
  const r = spawnSync('qemu-img', args, { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
};

test('qcow2 images naming a backing file or an external data file are refused; a plain one is cached', { skip }, async () => {
  const root = await fsp.mkdtemp(join(tmpdir(), 'vm-images-'));
  try {
    const cache = new VmImageCache(join(root, 'cache'));
    await cache.init();
    // qemu-img create makes (truncates) the data file: a stand-in for the host file an attacker would name
    const outside = join(root, 'host-file');
    await fsp.writeFile(outside, '');
    const image = (id: string) => ({ id, disk_format: 'qcow2', container_format: 'bare' });

    await assert.rejects(
      cache.ensure(image('datafile'), async (dest) => qemuImg('create', '-q', '-f', 'qcow2', '-o', `data_file=${outside},data_file_raw=on`, dest, '1M')),
      (e: unknown) => e instanceof ImageFormatError && /external data file/.test(e.message),
    );
    await assert.rejects(
      cache.ensure(image('backing'), async (dest) => qemuImg('create', '-q', '-f', 'qcow2', '-b', outside, '-F', 'raw', dest, '1M')),
      (e: unknown) => e instanceof ImageFormatError && /backing file/.test(e.message),
    );
    for (const id of ['datafile', 'backing']) assert.equal(existsSync(join(root, 'cache', 'images', id)), false, `${id} is not cached`);
    assert.deepEqual(await fsp.readdir(join(root, 'cache', 'tmp')), [], 'nothing left in tmp');

    const ok = await cache.ensure(image('plain'), async (dest) => qemuImg('create', '-q', '-f', 'qcow2', dest, '2M'));
    assert.equal(ok.format, 'qcow2');
    assert.equal(ok.virtualSize, 2 * 2 ** 20);
    assert.ok(existsSync(join(root, 'cache', 'images', 'plain', 'disk')));
  } finally {
    await fsp.rm(root, { recursive: true, force: true });
  }
});
