// OCI image handling of the container driver: OCI layout and docker-save
// archives, digest checks, whiteouts and opaque directories in overlayfs form,
// unsafe paths, the snapshot layer writer, and the reproducible busybox image.
// Root: unpacking sets owners, makes whiteout devices and trusted.* xattrs.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createWriteStream, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { buildBusyboxImage } from '../../src/agent/drivers/container/busybox.ts';
import { buildLayerBlob, fileRange, inspectArchive, ImageFormatError, unpackLayer, writeOciArchive, writeUpperLayer } from '../../src/agent/drivers/container/oci.ts';
import { run, runOk } from '../../src/agent/exec.ts';
import { readTar, TarWriter, type TarType } from '../../src/common/tar.ts';
import { skipUnlessRoot } from './lib.ts';

const dir = mkdtempSync(join(tmpdir(), 'stratus-oci-'));
after(async () => {
  for (const m of readFileSync('/proc/self/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1] ?? '').filter((m) => m.startsWith(dir)).reverse()) await run('umount', ['-l', m]);
  rmSync(dir, { recursive: true, force: true });
});

type Entry = { name: string; type: TarType; body?: string; linkname?: string; mode?: number };

async function tarBuffer(entries: Entry[]): Promise<Buffer> {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  const tar = new TarWriter(out);
  for (const e of entries) await tar.add({ name: e.name, type: e.type, linkname: e.linkname, mode: e.mode }, e.body !== undefined ? Buffer.from(e.body) : undefined);
  await tar.finish();
  return Buffer.concat(chunks);
}

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** A `docker save` archive: manifest.json, <config>.json, <n>/layer.tar (uncompressed). */
async function dockerSave(file: string, layers: Entry[][], config: Record<string, unknown> = { Cmd: ['/bin/sh'] }) {
  const layerTars = await Promise.all(layers.map(tarBuffer));
  const cfg = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config, rootfs: { type: 'layers', diff_ids: layerTars.map((l) => `sha256:${sha(l)}`) } }));
  const out = createWriteStream(file);
  const tar = new TarWriter(out);
  const names = layerTars.map((_l, i) => `${String(i).padStart(64, 'a')}/layer.tar`);
  for (const [i, l] of layerTars.entries()) {
    await tar.add({ name: names[i]!.split('/')[0]!, type: 'dir' });
    await tar.add({ name: names[i]!, type: 'file' }, l);
  }
  await tar.add({ name: `${sha(cfg)}.json`, type: 'file' }, cfg);
  await tar.add({ name: 'manifest.json', type: 'file' }, Buffer.from(JSON.stringify([{ Config: `${sha(cfg)}.json`, RepoTags: ['x:latest'], Layers: names }])));
  await tar.finish();
}

test('tar round trip: long names, symlinks, modes', async () => {
  const long = `${'d'.repeat(120)}/${'f'.repeat(120)}`;
  const buf = await tarBuffer([
    { name: 'a', type: 'dir', mode: 0o750 },
    { name: 'a/file', type: 'file', body: 'hello', mode: 0o640 },
    { name: 'a/link', type: 'symlink', linkname: 'file' },
    { name: long, type: 'file', body: 'x'.repeat(1000) },
  ]);
  const seen: Array<[string, TarType, number, string]> = [];
  for await (const e of readTar(Readable.from([buf]))) {
    let body = '';
    for await (const c of e.body()) body += c.toString();
    seen.push([e.name, e.type, e.mode, e.type === 'symlink' ? e.linkname : body.slice(0, 5)]);
  }
  assert.deepEqual(seen, [['a', 'dir', 0o750, ''], ['a/file', 'file', 0o640, 'hello'], ['a/link', 'symlink', 0o644, 'file'], [long, 'file', 0o644, 'xxxxx']]);
});

test('a docker-save archive: layers checked against the config diff ids, whiteouts and opaque directories in overlayfs form', { skip: skipUnlessRoot }, async () => {
  const file = join(dir, 'docker.tar');
  await dockerSave(file, [
    [{ name: 'etc', type: 'dir' }, { name: 'etc/keep', type: 'file', body: 'k' }, { name: 'etc/gone', type: 'file', body: 'g' },
      { name: 'opq', type: 'dir' }, { name: 'opq/old', type: 'file', body: 'o' }],
    [{ name: 'etc', type: 'dir' }, { name: 'etc/.wh.gone', type: 'file', body: '' }, { name: 'opq', type: 'dir' }, { name: 'opq/.wh..wh..opq', type: 'file', body: '' },
      { name: 'opq/new', type: 'file', body: 'n' }],
  ]);
  const img = await inspectArchive(file);
  assert.equal(img.layers.length, 2);
  assert.deepEqual(img.config.config?.Cmd, ['/bin/sh']);
  const l0 = join(dir, 'dl0');
  const l1 = join(dir, 'dl1');
  await unpackLayer(file, img.layers[0]!, l0, []);
  await unpackLayer(file, img.layers[1]!, l1, [l0]);
  const wh = lstatSync(join(l1, 'etc', 'gone'));
  assert.ok(wh.isCharacterDevice() && wh.rdev === 0, 'a whiteout is a 0:0 character device');
  const opq = await runOk('getfattr', ['--only-values', '-n', 'trusted.overlay.opaque', join(l1, 'opq')]);
  assert.equal(opq.stdout, 'y');
  // mounted together, the layers look as the image means
  const m = join(dir, 'merged');
  for (const d of [m, join(dir, 'up'), join(dir, 'wk')]) mkdirSync(d, { recursive: true });
  await runOk('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${l1}:${l0},upperdir=${join(dir, 'up')},workdir=${join(dir, 'wk')}`, m]);
  try {
    assert.equal(readFileSync(join(m, 'etc', 'keep'), 'utf8'), 'k');
    assert.ok(!existsSync(join(m, 'etc', 'gone')));
    assert.ok(!existsSync(join(m, 'opq', 'old')), 'the opaque directory hides the lower one');
    assert.equal(readFileSync(join(m, 'opq', 'new'), 'utf8'), 'n');
    // changes in the upper directory become a layer: whiteouts and opaque markers again
    rmSync(join(m, 'etc', 'keep'));
    rmSync(join(m, 'opq'), { recursive: true });
    mkdirSync(join(m, 'opq'));
    writeFileSync(join(m, 'opq', 'newer'), 'nn');
    writeFileSync(join(m, 'added'), 'a');
  } finally {
    await runOk('umount', [m]);
  }
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  const w = new TarWriter(out);
  await writeUpperLayer(join(dir, 'up'), w);
  await w.finish();
  const names: string[] = [];
  for await (const e of readTar(Readable.from([Buffer.concat(chunks)]))) names.push(e.name.replace(/\/$/, ''));
  assert.deepEqual(names.sort(), ['added', 'etc', 'etc/.wh.keep', 'opq', 'opq/.wh..wh..opq', 'opq/newer'].sort());
});

test('a layer whose content does not match its digest is refused', { skip: skipUnlessRoot }, async () => {
  const file = join(dir, 'bad.tar');
  const layerFile = join(dir, 'bad-layer.tar.gz');
  const layer = await buildLayerBlob(layerFile, async (t) => { await t.add({ name: 'x', type: 'file' }, Buffer.from('x')); });
  const cfg = Buffer.from(JSON.stringify({ os: 'linux', config: { Cmd: ['/x'] }, rootfs: { type: 'layers', diff_ids: [`sha256:${'0'.repeat(64)}`] } }));
  await writeOciArchive(createWriteStream(file), { configRaw: cfg, layers: [{ ...layer, read: fileRange(layerFile, 0, layer.size) }] });
  const img = await inspectArchive(file);
  await assert.rejects(unpackLayer(file, img.layers[0]!, join(dir, 'badl'), []), (e: Error) => e instanceof ImageFormatError && /diff id/.test(e.message));
  // a blob that does not match its name in the layout
  const index = join(dir, 'tampered.tar');
  const raw = readFileSync(file);
  const at = raw.indexOf(Buffer.from('"Cmd":["/x"]'));
  raw.write('"Cmd":["/y"]', at);
  writeFileSync(index, raw);
  await assert.rejects(inspectArchive(index), /does not match its content/);
});

test('layer entries that escape the root are refused', { skip: skipUnlessRoot }, async () => {
  for (const [label, entries] of [
    ['dot-dot', [{ name: '../evil', type: 'file', body: 'x' }]],
    ['through a symlink', [{ name: 'a', type: 'symlink', linkname: '/tmp' }, { name: 'a/evil', type: 'file', body: 'x' }]],
  ] as Array<[string, Entry[]]>) {
    const file = join(dir, `escape-${label.replace(/\W/g, '')}.tar`);
    await dockerSave(file, [entries]);
    const img = await inspectArchive(file);
    await assert.rejects(unpackLayer(file, img.layers[0]!, join(dir, `esc-${label.replace(/\W/g, '')}`), []), ImageFormatError, label);
  }
  assert.ok(!existsSync('/tmp/evil'));
  assert.ok(!existsSync(join(dir, 'evil')));
});

test('the busybox image is reproducible, with its init as the entrypoint', { skip: skipUnlessRoot }, async () => {
  const a = join(dir, 'bb1.tar');
  const b = join(dir, 'bb2.tar');
  await buildBusyboxImage(a);
  await buildBusyboxImage(b);
  assert.equal(sha(readFileSync(a)), sha(readFileSync(b)));
  const img = await inspectArchive(a);
  assert.deepEqual(img.config.config?.Entrypoint, ['/sbin/stratus-init']);
  const l = join(dir, 'bbl');
  await unpackLayer(a, img.layers[0]!, l, []);
  assert.equal(readlinkSync(join(l, 'bin', 'sh')), 'busybox');
  assert.equal(lstatSync(join(l, 'tmp')).mode & 0o7777, 0o1777);
  assert.match(readFileSync(join(l, 'sbin', 'stratus-init'), 'utf8'), /httpd -p 80/);
});
