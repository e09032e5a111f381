// S3 buckets and objects over HTTP: create/head/delete buckets, location,
// ListObjects V1 and V2 (prefix, delimiter, markers, tokens, max-keys,
// encoding), objects with metadata, ranges and conditionals, Content-MD5,
// CopyObject, DeleteObjects; and the same data seen through Swift.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { connect } from 'node:net';
import { tenant, useCloud, type Tenant } from '../../harness.ts';
import { assertS3Error, ec2Keys, s3Client, signV4, xmlAll, xmlText, type Keys, type S3Client } from './s3-lib.ts';

let alice: Tenant;
let s3: S3Client;
let keys: Keys;
const cloud = useCloud(async (c) => {
  alice = await tenant(c);
  keys = await ec2Keys(c, alice);
  s3 = s3Client(c, keys);
});
const md5 = (s: string | Buffer) => createHash('md5').update(s).digest('hex');
const md5b64 = (s: string | Buffer) => createHash('md5').update(s).digest('base64');

test('buckets: create (name rules, location constraint), head, location, list, delete', async () => {
  assertS3Error(await s3.call('PUT', '/s3/Bad_Name'), 400, 'InvalidBucketName');
  assertS3Error(await s3.call('PUT', '/s3/ab'), 400, 'InvalidBucketName');
  const loc = '<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><LocationConstraint>eu-west-1</LocationConstraint></CreateBucketConfiguration>';
  const made = await s3.call('PUT', '/s3/obj-bucket', { body: loc });
  assert.equal(made.status, 200, made.text);
  assert.equal(made.headers.get('location'), '/obj-bucket');
  assertS3Error(await s3.call('PUT', '/s3/obj-bucket2', { body: '<CreateBucketConfiguration><oops' }), 400, 'MalformedXML');
  const head = await s3.call('HEAD', '/s3/obj-bucket');
  assert.equal(head.status, 200);
  assert.equal(head.headers.get('x-amz-bucket-region'), 'us-east-1');
  assert.equal((await s3.call('HEAD', '/s3/obj-nope')).status, 404);
  assert.match((await s3.call('GET', '/s3/obj-bucket', { query: 'location' })).text, /<LocationConstraint[^>]*>eu-west-1<\/LocationConstraint>/);
  assert.ok(xmlAll((await s3.call('GET', '/s3')).text, 'Name').includes('obj-bucket'));
  assert.equal((await s3.call('PUT', '/s3/obj-bucket/k', { body: 'v' })).status, 200);
  assertS3Error(await s3.call('DELETE', '/s3/obj-bucket'), 409, 'BucketNotEmpty');
  assert.equal((await s3.call('DELETE', '/s3/obj-bucket/k')).status, 204);
  assert.equal((await s3.call('DELETE', '/s3/obj-bucket')).status, 204);
  assertS3Error(await s3.call('DELETE', '/s3/obj-bucket'), 404, 'NoSuchBucket');
});

test('objects: metadata, content headers, HEAD, GET with ranges and conditionals, Content-MD5', async () => {
  await s3.call('PUT', '/s3/obj-data');
  const body = 'The quick brown fox jumps over the lazy dog';
  const put = await s3.call('PUT', '/s3/obj-data/dir/fox.txt', {
    body, headers: { 'content-type': 'text/plain', 'x-amz-meta-colour': 'brown', 'x-amz-meta-Animal-Kind': 'fox', 'content-disposition': 'attachment', 'content-md5': md5b64(body) },
  });
  assert.equal(put.status, 200, put.text);
  const etag = `"${md5(body)}"`;
  assert.equal(put.headers.get('etag'), etag);
  const head = await s3.call('HEAD', '/s3/obj-data/dir/fox.txt');
  assert.equal(head.status, 200);
  assert.equal(head.headers.get('content-length'), String(body.length));
  assert.equal(head.headers.get('x-amz-meta-colour'), 'brown');
  assert.equal(head.headers.get('x-amz-meta-animal-kind'), 'fox');
  assert.equal(head.headers.get('content-disposition'), 'attachment');
  assert.equal(head.headers.get('etag'), etag);
  assert.ok(head.headers.get('last-modified'));
  const range = await s3.call('GET', '/s3/obj-data/dir/fox.txt', { headers: { range: 'bytes=4-8' } });
  assert.equal(range.status, 206);
  assert.equal(range.text, 'quick');
  assert.equal(range.headers.get('content-range'), `bytes 4-8/${body.length}`);
  assert.equal((await s3.call('GET', '/s3/obj-data/dir/fox.txt', { headers: { range: 'bytes=-3' } })).text, 'dog');
  assert.equal((await s3.call('GET', '/s3/obj-data/dir/fox.txt', { headers: { range: 'bytes=40-' } })).text, 'dog');
  assertS3Error(await s3.call('GET', '/s3/obj-data/dir/fox.txt', { headers: { range: 'bytes=100-200' } }), 416, 'InvalidRange');
  assert.equal((await s3.call('GET', '/s3/obj-data/dir/fox.txt', { headers: { 'if-none-match': etag } })).status, 304);
  assertS3Error(await s3.call('GET', '/s3/obj-data/dir/fox.txt', { headers: { 'if-match': '"0000"' } }), 412, 'PreconditionFailed');
  assert.equal((await s3.call('GET', '/s3/obj-data/dir/fox.txt', { headers: { 'if-match': etag } })).status, 200);
  const future = new Date(Date.now() + 3600_000).toUTCString();
  const past = new Date(Date.now() - 3600_000).toUTCString();
  assert.equal((await s3.call('GET', '/s3/obj-data/dir/fox.txt', { headers: { 'if-modified-since': future } })).status, 304);
  assert.equal((await s3.call('GET', '/s3/obj-data/dir/fox.txt', { headers: { 'if-modified-since': past } })).status, 200);
  assertS3Error(await s3.call('GET', '/s3/obj-data/dir/fox.txt', { headers: { 'if-unmodified-since': past } }), 412, 'PreconditionFailed');
  assertS3Error(await s3.call('PUT', '/s3/obj-data/bad-md5', { body, headers: { 'content-md5': md5b64('other') } }), 400, 'BadDigest');
  assertS3Error(await s3.call('PUT', '/s3/obj-data/bad-md5', { body, headers: { 'content-md5': 'not-base64!' } }), 400, 'InvalidDigest');
  assert.equal((await s3.call('HEAD', '/s3/obj-data/bad-md5')).status, 404);
  assertS3Error(await s3.call('GET', '/s3/obj-data/missing'), 404, 'NoSuchKey');
  assertS3Error(await s3.call('PUT', `/s3/obj-data/${'k'.repeat(1025)}`, { body: 'x' }), 400, 'KeyTooLongError');
  assert.equal((await s3.call('PUT', '/s3/obj-data/only-if-new', { body: 'a', headers: { 'if-none-match': '*' } })).status, 200);
  assertS3Error(await s3.call('PUT', '/s3/obj-data/only-if-new', { body: 'b', headers: { 'if-none-match': '*' } }), 412, 'PreconditionFailed');
  // response-* overrides on a signed GET
  const o = await s3.call('GET', '/s3/obj-data/dir/fox.txt', { query: 'response-content-type=application%2Fx-fox' });
  assert.equal(o.headers.get('content-type'), 'application/x-fox');
  // keys with characters that need encoding, and a key ending in '/'
  for (const key of ['a b+c', 'ünïcödé/ключ', 'folder/', 'x?y#z', "q'!(*)~"]) {
    const path = `/s3/obj-data/${key.split('/').map((s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)).join('/')}`;
    assert.equal((await s3.call('PUT', path, { body: key })).status, 200, key);
    const g = await s3.call('GET', path);
    assert.equal(g.text, key);
  }
  const all = await s3.call('GET', '/s3/obj-data', { query: 'list-type=2' });
  assert.ok(xmlAll(all.text, 'Key').includes('folder/'), all.text);
  assert.ok(xmlAll(all.text, 'Key').includes('x?y#z'), all.text);
});

test('ListObjects V1 and V2: prefix, delimiter, markers, continuation, max-keys, encoding-type', async () => {
  await s3.call('PUT', '/s3/obj-list');
  const keys = ['a/1', 'a/2', 'a/b/3', 'b', 'c/1', 'd'];
  for (const k of keys) await s3.call('PUT', `/s3/obj-list/${k}`, { body: k });
  const v1 = await s3.call('GET', '/s3/obj-list', { query: 'delimiter=/' });
  assert.deepEqual(xmlAll(v1.text, 'Key'), ['b', 'd']);
  assert.deepEqual(xmlAll(v1.text, 'Prefix').slice(1), ['a/', 'c/']);
  const sub = await s3.call('GET', '/s3/obj-list', { query: 'prefix=a/&delimiter=/' });
  assert.deepEqual(xmlAll(sub.text, 'Key'), ['a/1', 'a/2']);
  assert.ok(sub.text.includes('<CommonPrefixes><Prefix>a/b/</Prefix></CommonPrefixes>'));
  const page1 = await s3.call('GET', '/s3/obj-list', { query: 'max-keys=2' });
  assert.deepEqual(xmlAll(page1.text, 'Key'), ['a/1', 'a/2']);
  assert.equal(xmlText(page1.text, 'IsTruncated'), 'true');
  const page2 = await s3.call('GET', '/s3/obj-list', { query: 'max-keys=2&marker=a/2' });
  assert.deepEqual(xmlAll(page2.text, 'Key'), ['a/b/3', 'b']);
  const withDelim = await s3.call('GET', '/s3/obj-list', { query: 'delimiter=/&max-keys=2' });
  assert.equal(xmlText(withDelim.text, 'NextMarker'), 'b');
  // V2 walks the same pages by continuation token
  const seen: string[] = [];
  let token: string | undefined;
  for (let i = 0; i < 10; i++) {
    const r = await s3.call('GET', '/s3/obj-list', { query: `list-type=2&max-keys=4${token ? `&continuation-token=${encodeURIComponent(token)}` : ''}` });
    assert.equal(r.status, 200, r.text);
    seen.push(...xmlAll(r.text, 'Key'));
    token = xmlText(r.text, 'NextContinuationToken');
    if (xmlText(r.text, 'IsTruncated') !== 'true') break;
  }
  assert.deepEqual(seen, keys);
  const after = await s3.call('GET', '/s3/obj-list', { query: 'list-type=2&start-after=b' });
  assert.deepEqual(xmlAll(after.text, 'Key'), ['c/1', 'd']);
  assert.equal(xmlText(after.text, 'KeyCount'), '2');
  const owner = await s3.call('GET', '/s3/obj-list', { query: 'list-type=2&fetch-owner=true&max-keys=1' });
  assert.equal(xmlText(owner.text, 'ID'), alice.projectId);
  assertS3Error(await s3.call('GET', '/s3/obj-list', { query: 'max-keys=lots' }), 400, 'InvalidArgument');
  assertS3Error(await s3.call('GET', '/s3/obj-list', { query: 'list-type=2&continuation-token=%25%25' }), 400, 'InvalidArgument');
  await s3.call('PUT', '/s3/obj-list/sp%20ace%26', { body: 'x' });
  const encoded = await s3.call('GET', '/s3/obj-list', { query: 'encoding-type=url&prefix=sp' });
  assert.deepEqual(xmlAll(encoded.text, 'Key'), ['sp%20ace%26']);
  assertS3Error(await s3.call('GET', '/s3/obj-list', { query: 'encoding-type=base64' }), 400, 'InvalidArgument');
});

test('CopyObject: COPY and REPLACE directives, copy-source conditions, to itself', async () => {
  await s3.call('PUT', '/s3/obj-copy');
  await s3.call('PUT', '/s3/obj-copy/src', { body: 'copy me', headers: { 'content-type': 'text/x-src', 'x-amz-meta-a': '1' } });
  const c1 = await s3.call('PUT', '/s3/obj-copy/dst1', { headers: { 'x-amz-copy-source': '/obj-copy/src' } });
  assert.equal(c1.status, 200, c1.text);
  assert.equal(xmlText(c1.text, 'ETag'), `&quot;${md5('copy me')}&quot;`);
  const h1 = await s3.call('HEAD', '/s3/obj-copy/dst1');
  assert.equal(h1.headers.get('content-type'), 'text/x-src');
  assert.equal(h1.headers.get('x-amz-meta-a'), '1');
  const c2 = await s3.call('PUT', '/s3/obj-copy/dst2', { headers: { 'x-amz-copy-source': 'obj-copy/src', 'x-amz-metadata-directive': 'REPLACE', 'content-type': 'text/x-new', 'x-amz-meta-b': '2' } });
  assert.equal(c2.status, 200, c2.text);
  const h2 = await s3.call('HEAD', '/s3/obj-copy/dst2');
  assert.equal(h2.headers.get('content-type'), 'text/x-new');
  assert.equal(h2.headers.get('x-amz-meta-a'), null);
  assert.equal(h2.headers.get('x-amz-meta-b'), '2');
  assert.equal((await s3.call('GET', '/s3/obj-copy/dst2')).text, 'copy me');
  assertS3Error(await s3.call('PUT', '/s3/obj-copy/dst3', { headers: { 'x-amz-copy-source': '/obj-copy/src', 'x-amz-copy-source-if-match': '"nope"' } }), 412, 'PreconditionFailed');
  assertS3Error(await s3.call('PUT', '/s3/obj-copy/dst3', { headers: { 'x-amz-copy-source': '/obj-copy/missing' } }), 404, 'NoSuchKey');
  assertS3Error(await s3.call('PUT', '/s3/obj-copy/src', { headers: { 'x-amz-copy-source': '/obj-copy/src' } }), 400, 'InvalidRequest');
  assert.equal((await s3.call('PUT', '/s3/obj-copy/src', { headers: { 'x-amz-copy-source': '/obj-copy/src', 'x-amz-metadata-directive': 'REPLACE', 'x-amz-meta-c': '3' } })).status, 200);
  assert.equal((await s3.call('HEAD', '/s3/obj-copy/src')).headers.get('x-amz-meta-c'), '3');
  // the source removed: the copy keeps its bytes (blobs are shared, not moved)
  await s3.call('DELETE', '/s3/obj-copy/src');
  assert.equal((await s3.call('GET', '/s3/obj-copy/dst1')).text, 'copy me');
});

test('DeleteObjects: results per key, quiet mode, malformed XML', async () => {
  await s3.call('PUT', '/s3/obj-del');
  for (const k of ['one', 'two', 'three']) await s3.call('PUT', `/s3/obj-del/${k}`, { body: k });
  const xml = (quiet: boolean, keys: string[]) => `<Delete>${quiet ? '<Quiet>true</Quiet>' : ''}${keys.map((k) => `<Object><Key>${k}</Key></Object>`).join('')}</Delete>`;
  const r = await s3.call('POST', '/s3/obj-del', { query: 'delete', body: xml(false, ['one', 'nope']) });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(xmlAll(r.text, 'Key'), ['one', 'nope']);
  const q = await s3.call('POST', '/s3/obj-del', { query: 'delete', body: xml(true, ['two', 'three']) });
  assert.equal(q.status, 200);
  assert.deepEqual(xmlAll(q.text, 'Key'), []);
  assert.deepEqual(xmlAll((await s3.call('GET', '/s3/obj-del')).text, 'Key'), []);
  assertS3Error(await s3.call('POST', '/s3/obj-del', { query: 'delete', body: '<Delete><Object>' }), 400, 'MalformedXML');
  assertS3Error(await s3.call('POST', '/s3/obj-del', { query: 'delete', body: '<Delete></Delete>' }), 400, 'MalformedXML');
});

test('Swift and S3 see the same objects and metadata', async () => {
  const swift = (method: string, path: string, o: { headers?: Record<string, string>; raw?: string } = {}) =>
    cloud.call(method, `/object/v1/AUTH_${alice.projectId}${path}`, { token: alice.token, ...o });
  assert.equal((await s3.call('PUT', '/s3/obj-shared')).status, 200);
  assert.equal((await s3.call('PUT', '/s3/obj-shared/from-s3', { body: 's3 bytes', headers: { 'x-amz-meta-origin': 's3' } })).status, 200);
  const sw = await swift('GET', '/obj-shared/from-s3');
  assert.equal(sw.status, 200);
  assert.equal(sw.body, 's3 bytes');
  assert.equal(sw.headers.get('x-object-meta-origin'), 's3');
  assert.equal((await s3.call('PUT', '/s3/obj-shared/disposed', { body: 'x', headers: { 'content-disposition': 'attachment; filename="x.txt"', 'cache-control': 'no-cache' } })).status, 200);
  const disposed = await swift('HEAD', '/obj-shared/disposed');
  assert.equal(disposed.headers.get('content-disposition'), 'attachment; filename="x.txt"');
  assert.equal(disposed.headers.get('cache-control'), 'no-cache');
  const up = await swift('PUT', '/obj-shared/from-swift', { raw: 'swift bytes', headers: { 'x-object-meta-origin': 'swift', 'content-encoding': 'identity' } });
  assert.equal(up.status, 201);
  const g = await s3.call('GET', '/s3/obj-shared/from-swift');
  assert.equal(g.text, 'swift bytes');
  assert.equal(g.headers.get('x-amz-meta-origin'), 'swift');
  assert.equal(g.headers.get('content-encoding'), 'identity');
  assert.equal(g.headers.get('etag'), `"${md5('swift bytes')}"`);
  // a Swift dynamic large object reads whole through S3
  assert.equal((await swift('PUT', '/obj-shared/segs/001', { raw: 'first-' })).status, 201);
  assert.equal((await swift('PUT', '/obj-shared/segs/002', { raw: 'second' })).status, 201);
  assert.equal((await swift('PUT', '/obj-shared/dlo', { raw: '', headers: { 'x-object-manifest': 'obj-shared/segs/' } })).status, 201);
  const dlo = await s3.call('GET', '/s3/obj-shared/dlo');
  assert.equal(dlo.text, 'first-second');
  assert.equal(dlo.headers.get('etag'), `"${createHash('md5').update(md5('first-') + md5('second')).digest('hex')}"`);
  assert.equal((await s3.call('GET', '/s3/obj-shared/dlo', { headers: { range: 'bytes=4-8' } })).text, 't-sec');
  assert.equal((await s3.call('HEAD', '/s3/obj-shared/dlo')).headers.get('content-length'), '12');
  // Swift's container quota holds S3 writes too
  assert.equal((await swift('POST', '/obj-shared', { headers: { 'x-container-meta-quota-count': '4' } })).status, 204);
  const over = await s3.call('PUT', '/s3/obj-shared/one-too-many', { body: 'x' });
  assert.equal(over.status, 413, over.text);
  assert.equal(xmlText(over.text, 'Code'), 'EntityTooLarge');
  assert.equal((await s3.call('HEAD', '/s3/obj-shared/one-too-many')).status, 404);
  assert.equal((await s3.call('PUT', '/s3/obj-shared/from-s3', { body: 'replaced' })).status, 413);
  assert.equal((await swift('POST', '/obj-shared', { headers: { 'x-container-meta-quota-count': '' } })).status, 204);
  // a Swift container is a bucket
  assert.equal((await swift('PUT', '/swift-made')).status, 201);
  assert.ok(xmlAll((await s3.call('GET', '/s3')).text, 'Name').includes('swift-made'));
});

/** Sends raw request bytes and returns what came back (empty when the server closed without answering). */
function rawExchange(bytes: Buffer, endAfter = true): Promise<string> {
  const u = new URL(cloud.url);
  return new Promise((resolve) => {
    const sock = connect(Number(u.port), u.hostname, () => {
      sock.write(bytes);
      if (endAfter) sock.end();
    });
    let out = '';
    sock.on('data', (d) => { out += d; });
    sock.on('close', () => resolve(out));
    sock.on('error', () => resolve(out));
    setTimeout(() => sock.destroy(), 3000);
  });
}

test('bad input: a body shorter than declared, no length, a NUL in the key: nothing stored', async () => {
  await s3.call('PUT', '/s3/obj-bad');
  const s = signV4(keys, { method: 'PUT', path: '/s3/obj-bad/short', host: s3.host, payloadHash: 'UNSIGNED-PAYLOAD', headers: { 'content-length': '100' } });
  const head = [`PUT /s3/obj-bad/short HTTP/1.1`, ...Object.entries({ ...s.headers, host: s3.host, 'content-length': '100' }).map(([k, v]) => `${k}: ${v}`), '', ''].join('\r\n');
  await rawExchange(Buffer.concat([Buffer.from(head), Buffer.alloc(10, 'x')]));
  assert.equal((await s3.call('HEAD', '/s3/obj-bad/short')).status, 404);
  // the write was abandoned, not left waiting: no blob stays pending
  const db = cloud.server.database.db as any;
  let pending = -1;
  for (let i = 0; i < 50 && pending !== 0; i++) {
    pending = Number((await db.selectFrom('object_blobs').select((eb: any) => eb.fn.countAll().as('n')).where('state', '=', 'pending').executeTakeFirst()).n);
    if (pending) await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(pending, 0);
  const c = signV4(keys, { method: 'PUT', path: '/s3/obj-bad/nolength', host: s3.host, payloadHash: 'UNSIGNED-PAYLOAD', headers: { 'transfer-encoding': 'chunked' } });
  const chunkedHead = [`PUT /s3/obj-bad/nolength HTTP/1.1`, ...Object.entries({ ...c.headers, host: s3.host, 'transfer-encoding': 'chunked', connection: 'close' }).map(([k, v]) => `${k}: ${v}`), '', ''].join('\r\n');
  const answer = await rawExchange(Buffer.from(`${chunkedHead}5\r\nhello\r\n0\r\n\r\n`), false);
  assert.match(answer, /^HTTP\/1\.1 411/);
  assert.match(answer, /<Code>MissingContentLength<\/Code>/);
  assert.equal((await s3.call('HEAD', '/s3/obj-bad/nolength')).status, 404);
  // '..' is a key's text, never a path step
  const dots = signV4(keys, { method: 'PUT', path: '/s3/obj-bad/a/../b', host: s3.host, payloadHash: 'UNSIGNED-PAYLOAD', headers: { 'content-length': '4' } });
  const dotsHead = [`PUT /s3/obj-bad/a/../b HTTP/1.1`, ...Object.entries({ ...dots.headers, host: s3.host, 'content-length': '4', connection: 'close' }).map(([k, v]) => `${k}: ${v}`), '', ''].join('\r\n');
  assert.match(await rawExchange(Buffer.from(`${dotsHead}dots`), false), /^HTTP\/1\.1 200/);
  assert.deepEqual(xmlAll((await s3.call('GET', '/s3/obj-bad')).text, 'Key'), ['a/../b']);
  await s3.call('DELETE', '/s3/obj-bad/a%2F..%2Fb');
  assertS3Error(await s3.call('PATCH', '/s3/obj-bad/x', { body: 'x' }), 405, 'MethodNotAllowed');
  const nul = await s3.call('PUT', '/s3/obj-bad/a%00b', { body: 'x' });
  assert.equal(nul.status, 400);
  assert.match(nul.text, /<Error><Code>/);
  assert.equal(xmlAll((await s3.call('GET', '/s3/obj-bad')).text, 'Key').length, 0);
});
