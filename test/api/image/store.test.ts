// The file store (all-or-nothing puts, the size cap, hashes) and the
// container archive inspector, without a server.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { ContainerArchiveInspector, InvalidImageDataError } from '../../../src/image/inspect.ts';
import { FileStore, TooLargeError } from '../../../src/image/store.ts';

const dir = mkdtempSync(join(tmpdir(), 'stratus-store-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const all = (d: string): string[] =>
  readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? all(join(d, e.name)) : [join(d, e.name)]));

test('put hashes and stores; open reads ranges; delete removes', async () => {
  const store = new FileStore(join(dir, 'a'));
  const data = randomBytes(300_000);
  const r = await store.put('img1', Readable.from([data.subarray(0, 100_000), data.subarray(100_000)]), { maxSize: 1e6 });
  assert.deepEqual(r, {
    size: data.length,
    md5: createHash('md5').update(data).digest('hex'),
    sha512: createHash('sha512').update(data).digest('hex'),
  });
  assert.equal(await store.size('img1'), data.length);
  const part = Buffer.concat(await (async () => {
    const out: Buffer[] = [];
    for await (const c of store.open('img1', { start: 5, end: 9 })) out.push(c as Buffer);
    return out;
  })());
  assert.ok(part.equals(data.subarray(5, 10)));
  await store.delete('img1');
  await store.delete('img1');
  assert.equal(await store.size('img1'), undefined);
  await assert.rejects(text(store.open('img1')), { code: 'ENOENT' });
  assert.throws(() => store.open('../escape'), /invalid store key/);
});

test('a put over the cap, refused by its inspector, or cut short stores nothing', async () => {
  const store = new FileStore(join(dir, 'b'));
  await assert.rejects(store.put('big', Readable.from([randomBytes(600), randomBytes(600)]), { maxSize: 1000 }), TooLargeError);
  const refuse = { update: () => { throw new InvalidImageDataError('no'); }, finish: () => {} };
  await assert.rejects(store.put('bad', Readable.from([Buffer.from('x')]), { maxSize: 1000, inspector: refuse }), InvalidImageDataError);
  const late = { update: () => {}, finish: async () => { throw new InvalidImageDataError('at the end'); } };
  await assert.rejects(store.put('late', Readable.from([Buffer.from('x')]), { maxSize: 1000, inspector: late }), /at the end/);
  const broken = new Readable({ read() {} });
  const put = store.put('cut', broken, { maxSize: 1e6 });
  broken.push(Buffer.alloc(1000));
  setTimeout(() => broken.destroy(), 20);
  await assert.rejects(put);
  assert.deepEqual(all(join(dir, 'b')).filter((f) => !f.includes('/.tmp/')), []);
  assert.deepEqual(readdirSync(join(dir, 'b', '.tmp')), []);
  // recover() clears what a crash left in .tmp.
  writeFileSync(join(dir, 'b', '.tmp', 'left-over'), 'x');
  await store.recover();
  assert.deepEqual(readdirSync(join(dir, 'b', '.tmp')), []);
});

async function inspect(buf: Buffer, chunk = 777) {
  const insp = new ContainerArchiveInspector();
  for (let i = 0; i < buf.length; i += chunk) insp.update(buf.subarray(i, i + chunk));
  await insp.finish();
  return insp.result!;
}

test('the archive inspector reads long (pax) names, ./ prefixes and gzip, in any chunking', async () => {
  const d = join(dir, 'oci');
  const deep = join(d, 'blobs', 'sha256', 'x'.repeat(120));
  mkdirSync(deep, { recursive: true });
  writeFileSync(join(deep, 'f'), randomBytes(3000));
  writeFileSync(join(d, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  writeFileSync(join(d, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ digest: 'sha256:x', annotations: { 'org.opencontainers.image.ref.name': 'v1' } }] }));
  for (const [args, compressed] of [[['--format=pax', '-cf'], false], [['--format=gnu', '-czf'], true]] as const) {
    const out = join(dir, `oci-${compressed}.tar`);
    execFileSync('tar', [...args, out, '-C', d, '.']);
    const buf = readFileSync(out);
    for (const chunk of [1, 511, 4096, buf.length]) {
      if (chunk === 1 && buf.length > 50_000) continue;
      const r = await inspect(buf, chunk);
      assert.deepEqual(r, { format: 'oci', compressed, images: 1, tags: ['v1'] }, `chunk ${chunk}`);
    }
  }
  writeFileSync(join(d, 'index.json'), '{"manifests": []}');
  execFileSync('tar', ['-cf', join(dir, 'empty.tar'), '-C', d, '.']);
  await assert.rejects(inspect(readFileSync(join(dir, 'empty.tar'))), /non-empty "manifests"/);
  await assert.rejects(inspect(Buffer.alloc(0)), InvalidImageDataError);
});
