// Large objects over HTTP: SLO manifests (Tempest's, ranges, inline data,
// nested, bad ones refused with Swift's problem list, nothing stored),
// multipart-manifest=get/delete, Range over the whole; DLO by
// X-Object-Manifest (PUT or POST), its ETag, length and ranges.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { useCloud } from '../../harness.ts';
import { expectStatus, swiftTenant, type Swift } from './middleware-lib.ts';

let s: Swift;
const cloud = useCloud(async (c) => {
  s = await swiftTenant(c);
  expectStatus(await s.call('PUT', 'lc'), 201);
});
const md5 = (b: string | Buffer) => createHash('md5').update(b).digest('hex');

test("SLO: Tempest's manifest, its headers, GET, HEAD, ranges, listing, multipart-manifest=get and delete", async () => {
  const seg = 'x'.repeat(1024);
  expectStatus(await s.call('PUT', 'lc/seg_01', { body: seg }), 201);
  expectStatus(await s.call('PUT', 'lc/seg_02', { body: seg.replace(/x/g, 'y') }), 201);
  const manifest = [
    { path: '/lc/seg_01', etag: md5(seg), size_bytes: 1024 },
    { path: '/lc/seg_02', etag: md5(seg.replace(/x/g, 'y')), size_bytes: 1024 },
  ];
  const put = await s.call('PUT', 'lc/big?multipart-manifest=put', { body: JSON.stringify(manifest), headers: { 'X-Object-Meta-Color': 'blue' } });
  expectStatus(put, 201);
  const etag = md5(md5(seg) + md5(seg.replace(/x/g, 'y')));
  assert.equal(put.headers.get('etag'), `"${etag}"`);
  const head = await s.call('HEAD', 'lc/big');
  expectStatus(head, 200);
  assert.equal(head.headers.get('x-static-large-object'), 'True');
  assert.equal(head.headers.get('etag'), `"${etag}"`);
  assert.equal(head.headers.get('content-length'), '2048');
  assert.equal(head.headers.get('x-object-meta-color'), 'blue');
  const get = await s.call('GET', 'lc/big');
  assert.equal(get.text, seg + seg.replace(/x/g, 'y'));
  const part = await s.call('GET', 'lc/big', { headers: { Range: 'bytes=1020-1027' } });
  expectStatus(part, 206);
  assert.equal(part.text, 'xxxxyyyy');
  expectStatus(await s.call('GET', 'lc/big', { headers: { 'If-None-Match': `"${etag}"` } }), 304);
  const listing = JSON.parse((await s.call('GET', 'lc?format=json')).text) as Array<{ name: string; bytes: number; hash: string }>;
  const entry = listing.find((e) => e.name === 'big')!;
  assert.equal(entry.bytes, 2048);
  assert.equal(entry.hash, etag);
  const mg = await s.call('GET', 'lc/big?multipart-manifest=get');
  expectStatus(mg, 200);
  const stored = JSON.parse(mg.text);
  assert.deepEqual(stored.map((x: { name: string; bytes: number; hash: string }) => [x.name, x.bytes, x.hash]), [['/lc/seg_01', 1024, md5(seg)], ['/lc/seg_02', 1024, md5(seg.replace(/x/g, 'y'))]]);
  const rawm = JSON.parse((await s.call('GET', 'lc/big?multipart-manifest=get&format=raw')).text);
  assert.deepEqual(rawm, manifest);
  // deleting the manifest alone leaves the segments; multipart-manifest=delete takes them too
  const del = await s.call('DELETE', 'lc/big?multipart-manifest=delete', { headers: { Accept: 'application/json' } });
  expectStatus(del, 200);
  const res = JSON.parse(del.text);
  assert.equal(res['Number Deleted'], 3);
  assert.equal(res['Response Status'], '200 OK');
  for (const n of ['big', 'seg_01', 'seg_02']) expectStatus(await s.call('HEAD', `lc/${n}`), 404);
});

test('SLO: ranges, inline data and a nested SLO make one object', async () => {
  expectStatus(await s.call('PUT', 'lc/abc', { body: 'abcdefghij' }), 201);
  expectStatus(await s.call('PUT', 'lc/inner?multipart-manifest=put', { body: JSON.stringify([{ path: 'lc/abc', range: '0-2' }, { data: Buffer.from('--').toString('base64') }]) }), 201);
  expectStatus(await s.call('PUT', 'lc/outer?multipart-manifest=put', { body: JSON.stringify([{ path: 'lc/inner' }, { path: 'lc/abc', range: '-3' }]) }), 201);
  assert.equal((await s.call('GET', 'lc/inner')).text, 'abc--');
  assert.equal((await s.call('GET', 'lc/outer')).text, 'abc--hij');
  const stored = JSON.parse((await s.call('GET', 'lc/outer?multipart-manifest=get')).text);
  assert.equal(stored[0].sub_slo, true);
  assert.equal(stored[1].range, '7-9');
  // the segments may change afterwards: the SLO keeps the bytes it was made of
  expectStatus(await s.call('DELETE', 'lc/abc'), 204);
  assert.equal((await s.call('GET', 'lc/outer')).text, 'abc--hij');
});

test('SLO: bad manifests are refused with Swift\'s words and nothing is stored', async () => {
  expectStatus(await s.call('PUT', 'lc/s1', { body: 'one' }), 201);
  let r = await s.call('PUT', 'lc/bad?multipart-manifest=put', { body: '{"x": 1' });
  expectStatus(r, 400);
  assert.equal(r.text, 'Manifest must be valid JSON.\n');
  r = await s.call('PUT', 'lc/bad?multipart-manifest=put', { body: JSON.stringify([{ path: 'lc/s1', etag: 'nope' }, { path: 'lc/missing' }, { path: 'lc/s1', size_bytes: 99 }]) });
  expectStatus(r, 400);
  assert.match(r.text, /lc\/s1, Etag Mismatch/);
  assert.match(r.text, /lc\/missing, 404 Not Found/);
  assert.match(r.text, /lc\/s1, Size Mismatch/);
  r = await s.call('PUT', 'lc/bad?multipart-manifest=put', { body: JSON.stringify([{ path: 'lc/s1' }]), headers: { ETag: 'wrong' } });
  expectStatus(r, 422);
  r = await s.call('PUT', 'lc/bad', { body: '', headers: { 'X-Static-Large-Object': 'True' } });
  expectStatus(r, 400);
  expectStatus(await s.call('HEAD', 'lc/bad'), 404);
  // a segment in a container of another project is not found as one of this account's
  const other = await swiftTenant(cloud);
  expectStatus(await other.call('PUT', 'priv'), 201);
  expectStatus(await other.call('PUT', 'priv/secret', { body: 'secret' }), 201);
  r = await s.call('PUT', 'lc/steal?multipart-manifest=put', { body: JSON.stringify([{ path: 'priv/secret' }]) });
  expectStatus(r, 400);
  assert.match(r.text, /404 Not Found/);
});

test('DLO: X-Object-Manifest (PUT, or POST as Tempest does) concatenates the prefix, quoted ETag, ranges', async () => {
  for (let i = 0; i < 10; i++) expectStatus(await s.call('PUT', `lc/dlo/${i}`, { body: `part${i}` }), 201);
  expectStatus(await s.call('PUT', 'lc/dlo', { body: '', headers: { 'X-Object-Manifest': 'lc/dlo/' } }), 201);
  const whole = Array.from({ length: 10 }, (_, i) => `part${i}`).join('');
  const get = await s.call('GET', 'lc/dlo');
  expectStatus(get, 200);
  assert.equal(get.text, whole);
  assert.equal(get.headers.get('x-object-manifest'), 'lc/dlo/');
  assert.equal(get.headers.get('etag'), `"${md5(Array.from({ length: 10 }, (_, i) => md5(`part${i}`)).join(''))}"`);
  assert.equal(get.headers.get('content-length'), String(whole.length));
  const r = await s.call('GET', 'lc/dlo', { headers: { Range: 'bytes=3-6' } });
  expectStatus(r, 206);
  assert.equal(r.text, whole.slice(3, 7));
  const m = await s.call('GET', 'lc/dlo?multipart-manifest=get');
  assert.equal(m.text, '');
  assert.equal(m.headers.get('x-object-manifest'), 'lc/dlo/');
  // POST sets it, and a POST without it removes it (Swift's object server)
  expectStatus(await s.call('PUT', 'lc/dlo2', { body: '' }), 201);
  expectStatus(await s.call('POST', 'lc/dlo2', { headers: { 'X-Object-Manifest': 'lc/dlo/1' } }), 202);
  assert.equal((await s.call('GET', 'lc/dlo2')).text, 'part1');
  expectStatus(await s.call('POST', 'lc/dlo2', { headers: { 'X-Object-Meta-A': 'b' } }), 202);
  const plain = await s.call('HEAD', 'lc/dlo2');
  assert.equal(plain.headers.get('x-object-manifest'), null);
  const bad = await s.call('PUT', 'lc/dlo3', { body: '', headers: { 'X-Object-Manifest': 'nocontainer' } });
  expectStatus(bad, 400);
  assert.equal(bad.text, 'X-Object-Manifest must be in the format container/prefix');
});

test('SLO: heartbeat=on answers 202 at once, then the outcome in the body (201, problems, 422), as Swift', async () => {
  expectStatus(await s.call('PUT', 'lc/h1', { body: 'heart' }), 201);
  expectStatus(await s.call('PUT', 'lc/h2', { body: 'beat' }), 201);
  const manifest = JSON.stringify([{ path: 'lc/h1' }, { path: 'lc/h2' }]);
  const ok = await s.call('PUT', 'lc/hb?multipart-manifest=put&heartbeat=on', { body: manifest });
  expectStatus(ok, 202);
  assert.match(ok.text, /^ \r\n\r\n/);
  const etag = (/Etag: "([0-9a-f]{32})"/.exec(ok.text) ?? [])[1];
  assert.ok(etag, ok.text);
  assert.match(ok.text, /Response Status: 201 Created\n/);
  assert.match(ok.text, /Last Modified: .+ GMT\n/);
  assert.match(ok.text, /Errors:\n$/);
  const got = await s.call('GET', 'lc/hb');
  assert.equal(got.text, 'heartbeat');
  assert.equal(got.headers.get('etag'), `"${etag}"`);
  // problems: still 202, the 400 and the list in the body (JSON when asked)
  const bad = await s.call('PUT', 'lc/hb-bad?multipart-manifest=put&heartbeat=on', { body: JSON.stringify([{ path: 'lc/h1', etag: 'nope' }]), headers: { Accept: 'application/json' } });
  expectStatus(bad, 202);
  assert.equal(bad.headers.get('content-type'), 'application/json');
  const j = JSON.parse(bad.text);
  assert.equal(j['Response Status'], '400 Bad Request');
  assert.deepEqual(j.Errors, [['lc/h1', 'Etag Mismatch']]);
  expectStatus(await s.call('HEAD', 'lc/hb-bad'), 404);
  const mismatch = await s.call('PUT', 'lc/hb-bad?multipart-manifest=put&heartbeat=on', { body: manifest, headers: { ETag: 'wrong' } });
  expectStatus(mismatch, 202);
  assert.match(mismatch.text, /Response Status: 422 Unprocessable Entity/);
  expectStatus(await s.call('HEAD', 'lc/hb-bad'), 404);
  // a manifest that is not one is refused before the heartbeat starts
  expectStatus(await s.call('PUT', 'lc/hb-bad?multipart-manifest=put&heartbeat=on', { body: '{"x"' }), 400);
});
