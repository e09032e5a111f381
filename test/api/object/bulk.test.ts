// Bulk operations over HTTP: extract-archive of tar, tar.gz and tar.bz2
// archives (Tempest's layout: a directory per container), bulk-delete by
// DELETE and POST, answers in text, JSON and XML, damaged archives.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { TarWriter } from '../../../src/common/tar.ts';
import { useCloud } from '../../harness.ts';
import { expectStatus, swiftTenant, type Swift } from './middleware-lib.ts';

let s: Swift;
useCloud(async (c) => {
  s = await swiftTenant(c);
});

async function tarOf(files: Array<[string, string]>, dirs: string[] = []): Promise<Buffer> {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  const w = new TarWriter(out);
  for (const d of dirs) await w.add({ name: d, type: 'dir' });
  for (const [name, data] of files) await w.add({ name, type: 'file' }, Buffer.from(data));
  await w.finish();
  return Buffer.concat(chunks);
}

test('extract-archive: tar, tar.gz and tar.bz2 make containers and objects', async () => {
  const tar = await tarOf([['bulk1/a.txt', 'A'], ['bulk1/sub/b.txt', 'B'], ['top-level-file', 'skipped']], ['bulk1']);
  let r = await s.call('PUT', `${s.account}?extract-archive=tar`, { body: tar, headers: { Accept: 'application/json', 'X-Object-Meta-Origin': 'tar' } });
  expectStatus(r, 200);
  const res = JSON.parse(r.text);
  assert.equal(res['Response Status'], '201 Created');
  assert.equal(res['Number Files Created'], 2);
  assert.deepEqual(res.Errors, []);
  assert.equal((await s.call('GET', 'bulk1/sub/b.txt')).text, 'B');
  assert.equal((await s.call('HEAD', 'bulk1/a.txt')).headers.get('x-object-meta-origin'), 'tar');
  // into a container path, gzipped
  r = await s.call('PUT', 'bulk2?extract-archive=tar.gz', { body: gzipSync(await tarOf([['x/y.txt', 'Y']])) });
  expectStatus(r, 200);
  assert.match(r.text, /Number Files Created: 1/);
  assert.match(r.text, /Response Status: 201 Created/);
  assert.equal((await s.call('GET', 'bulk2/x/y.txt')).text, 'Y');
  const bz = spawnSync('bzip2', ['-c'], { input: await tarOf([['bulk3/z.txt', 'Z']]) });
  assert.equal(bz.status, 0, 'bzip2 (a host package) compresses the archive');
  r = await s.call('PUT', `${s.account}?extract-archive=tar.bz2`, { body: bz.stdout, headers: { Accept: 'application/xml' } });
  expectStatus(r, 200);
  assert.match(r.text, /<number_files_created>1<\/number_files_created>/);
  assert.equal((await s.call('GET', 'bulk3/z.txt')).text, 'Z');
  // damaged archives and unknown formats
  r = await s.call('PUT', `${s.account}?extract-archive=tar`, { body: Buffer.alloc(1024, 7) });
  expectStatus(r, 200);
  assert.match(r.text, /Response Status: 400 Bad Request/);
  assert.match(r.text, /Invalid Tar File/);
  r = await s.call('PUT', `${s.account}?extract-archive=tar.gz`, { body: Buffer.from('not gzip') });
  assert.match(r.text, /Response Status: 400 Bad Request/);
  r = await s.call('PUT', `${s.account}?extract-archive=zip`, { body: Buffer.from('x') });
  expectStatus(r, 400);
  assert.equal(r.text, 'Unsupported archive format');
});

test('bulk-delete: objects then containers, counts and errors (DELETE and POST)', async () => {
  await s.call('PUT', `${s.account}?extract-archive=tar`, { body: await tarOf([['del1/a', '1'], ['del1/b', '2'], ['del2/c', '3']]) });
  let r = await s.call('DELETE', `${s.account}?bulk-delete`, { body: 'del1/a\ndel1/b\ndel1\ndel1/missing\n', headers: { 'Content-Type': 'text/plain', Accept: 'application/json' } });
  expectStatus(r, 200);
  let res = JSON.parse(r.text);
  assert.equal(res['Number Deleted'], 3);
  assert.equal(res['Number Not Found'], 1);
  assert.equal(res['Response Status'], '200 OK');
  expectStatus(await s.call('HEAD', 'del1'), 404);
  // a container that is not empty is a 409 in the errors
  r = await s.call('POST', `${s.account}?bulk-delete`, { body: 'del2\n', headers: { Accept: 'application/json' } });
  res = JSON.parse(r.text);
  assert.equal(res['Response Status'], '400 Bad Request');
  assert.deepEqual(res.Errors, [['del2', '409 Conflict']]);
  r = await s.call('POST', `${s.account}?bulk-delete`, { body: 'del2/c\ndel2\n' });
  expectStatus(r, 200);
  assert.match(r.text, /Number Deleted: 2/);
  // names Swift refuses are errors of their own, not failures of the request
  r = await s.call('POST', `${s.account}?bulk-delete`, { body: `del2/a%00b\n..\n${'n'.repeat(300)}/o\n`, headers: { Accept: 'application/json' } });
  expectStatus(r, 200);
  res = JSON.parse(r.text);
  assert.deepEqual(res.Errors.map((e: string[]) => e[1]).sort(), ['400 Bad Request', '412 Precondition Failed']);
  assert.equal(res['Number Not Found'], 1, '".." is no container');
  r = await s.call('POST', `${s.account}?bulk-delete`, { body: '\n' });
  assert.match(r.text, /Response Status: 400 Bad Request/);
  assert.match(r.text, /Invalid bulk delete/);
});
