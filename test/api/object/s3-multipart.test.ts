// S3 multipart uploads over HTTP: initiate, upload parts (and a part copied
// from an object), list parts and uploads, complete (ETag md5-of-md5s-N, the
// parts' order and sizes checked), abort; and the errors of each.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { tenant, useCloud, type Tenant } from '../../harness.ts';
import { assertS3Error, ec2Keys, s3Client, xmlAll, xmlText, type S3Client } from './s3-lib.ts';

const MiB = 1024 * 1024;
let alice: Tenant;
let s3: S3Client;
let bobS3: S3Client;
useCloud(async (c) => {
  alice = await tenant(c);
  s3 = s3Client(c, await ec2Keys(c, alice));
  bobS3 = s3Client(c, await ec2Keys(c, await tenant(c)));
  assert.equal((await s3.call('PUT', '/s3/mp-test')).status, 200);
});

const part = (n: number, size: number) => Buffer.alloc(size, String.fromCharCode(0x60 + n));
const md5 = (b: Buffer) => createHash('md5').update(b).digest();

async function initiate(key: string, headers: Record<string, string> = {}): Promise<string> {
  const r = await s3.call('POST', `/s3/mp-test/${key}`, { query: 'uploads', headers });
  assert.equal(r.status, 200, r.text);
  return xmlText(r.text, 'UploadId')!;
}
const completeXml = (parts: Array<[number, string]>) =>
  `<CompleteMultipartUpload>${parts.map(([n, e]) => `<Part><PartNumber>${n}</PartNumber><ETag>${e}</ETag></Part>`).join('')}</CompleteMultipartUpload>`;

test('a three-part upload completes into one object with the md5-of-md5s ETag', async () => {
  const id = await initiate('big.bin', { 'content-type': 'application/x-big', 'x-amz-meta-kind': 'multipart' });
  const parts = [part(1, 5 * MiB), part(2, 5 * MiB), part(3, 1234)];
  const etags: string[] = [];
  // out of order on purpose
  for (const n of [2, 1, 3]) {
    const r = await s3.call('PUT', '/s3/mp-test/big.bin', { query: `partNumber=${n}&uploadId=${id}`, body: parts[n - 1], unsigned: true });
    assert.equal(r.status, 200, r.text);
    etags[n - 1] = r.headers.get('etag')!;
    assert.equal(etags[n - 1], `"${md5(parts[n - 1]!).toString('hex')}"`);
  }
  const listed = await s3.call('GET', '/s3/mp-test/big.bin', { query: `uploadId=${id}` });
  assert.deepEqual(xmlAll(listed.text, 'PartNumber'), ['1', '2', '3']);
  assert.deepEqual(xmlAll(listed.text, 'Size'), [String(5 * MiB), String(5 * MiB), '1234']);
  const page = await s3.call('GET', '/s3/mp-test/big.bin', { query: `uploadId=${id}&max-parts=1&part-number-marker=1` });
  assert.deepEqual(xmlAll(page.text, 'PartNumber'), ['2']);
  assert.equal(xmlText(page.text, 'IsTruncated'), 'true');
  const uploads = await s3.call('GET', '/s3/mp-test', { query: 'uploads' });
  assert.ok(xmlAll(uploads.text, 'UploadId').includes(id));
  assert.ok(xmlAll(uploads.text, 'Key').includes('big.bin'));
  // the object does not exist before completion
  assert.equal((await s3.call('HEAD', '/s3/mp-test/big.bin')).status, 404);
  const done = await s3.call('POST', '/s3/mp-test/big.bin', { query: `uploadId=${id}`, body: completeXml(etags.map((e, i) => [i + 1, e])) });
  assert.equal(done.status, 200, done.text);
  const expected = `${createHash('md5').update(Buffer.concat(parts.map(md5))).digest('hex')}-3`;
  assert.equal(xmlText(done.text, 'ETag'), `&quot;${expected}&quot;`);
  const got = await s3.call('GET', '/s3/mp-test/big.bin');
  assert.equal(got.status, 200);
  assert.equal(got.headers.get('etag'), `"${expected}"`);
  assert.equal(got.headers.get('content-type'), 'application/x-big');
  assert.equal(got.headers.get('x-amz-meta-kind'), 'multipart');
  assert.ok(got.body.equals(Buffer.concat(parts)));
  const range = await s3.call('GET', '/s3/mp-test/big.bin', { headers: { range: `bytes=${5 * MiB - 2}-${5 * MiB + 1}` } });
  assert.equal(range.text, 'aabb');
  // one part of it, by number
  const p3 = await s3.call('GET', '/s3/mp-test/big.bin', { query: 'partNumber=3' });
  assert.equal(p3.status, 206);
  assert.ok(p3.body.equals(parts[2]!));
  assert.equal(p3.headers.get('x-amz-mp-parts-count'), '3');
  assert.equal(p3.headers.get('content-range'), `bytes ${10 * MiB}-${10 * MiB + 1233}/${10 * MiB + 1234}`);
  const h2 = await s3.call('HEAD', '/s3/mp-test/big.bin', { query: 'partNumber=2' });
  assert.equal(h2.headers.get('content-length'), String(5 * MiB));
  assertS3Error(await s3.call('GET', '/s3/mp-test/big.bin', { query: 'partNumber=4' }), 416, 'InvalidPartNumber');
  // the upload is gone
  assert.ok(!xmlAll((await s3.call('GET', '/s3/mp-test', { query: 'uploads' })).text, 'UploadId').includes(id));
  assertS3Error(await s3.call('GET', '/s3/mp-test/big.bin', { query: `uploadId=${id}` }), 404, 'NoSuchUpload');
  const listing = await s3.call('GET', '/s3/mp-test', { query: 'list-type=2' });
  assert.deepEqual(xmlAll(listing.text, 'Key'), ['big.bin']);
  assert.equal(xmlText(listing.text, 'Size'), String(10 * MiB + 1234));
});

test('completion errors: too small, wrong ETag, missing part, order, no upload; abort', async () => {
  const id = await initiate('small.bin');
  const e1 = (await s3.call('PUT', '/s3/mp-test/small.bin', { query: `partNumber=1&uploadId=${id}`, body: 'tiny' })).headers.get('etag')!;
  const e2 = (await s3.call('PUT', '/s3/mp-test/small.bin', { query: `partNumber=2&uploadId=${id}`, body: 'end' })).headers.get('etag')!;
  assertS3Error(await s3.call('POST', '/s3/mp-test/small.bin', { query: `uploadId=${id}`, body: completeXml([[1, e1], [2, e2]]) }), 400, 'EntityTooSmall');
  assertS3Error(await s3.call('POST', '/s3/mp-test/small.bin', { query: `uploadId=${id}`, body: completeXml([[1, '"00000000000000000000000000000000"']]) }), 400, 'InvalidPart');
  assertS3Error(await s3.call('POST', '/s3/mp-test/small.bin', { query: `uploadId=${id}`, body: completeXml([[7, e1]]) }), 400, 'InvalidPart');
  assertS3Error(await s3.call('POST', '/s3/mp-test/small.bin', { query: `uploadId=${id}`, body: completeXml([[2, e2], [1, e1]]) }), 400, 'InvalidPartOrder');
  assertS3Error(await s3.call('POST', '/s3/mp-test/small.bin', { query: `uploadId=${id}`, body: '<CompleteMultipartUpload>' }), 400, 'MalformedXML');
  assertS3Error(await s3.call('PUT', '/s3/mp-test/small.bin', { query: `partNumber=0&uploadId=${id}`, body: 'x' }), 400, 'InvalidArgument');
  assertS3Error(await s3.call('PUT', '/s3/mp-test/small.bin', { query: `partNumber=10001&uploadId=${id}`, body: 'x' }), 400, 'InvalidArgument');
  assertS3Error(await s3.call('PUT', '/s3/mp-test/other.bin', { query: `partNumber=1&uploadId=${id}`, body: 'x' }), 404, 'NoSuchUpload');
  assertS3Error(await bobS3.call('PUT', '/s3/mp-test/small.bin', { query: `partNumber=1&uploadId=${id}`, body: 'x' }), 403, 'AccessDenied');
  // a single small part is a whole upload
  const single = await s3.call('POST', '/s3/mp-test/small.bin', { query: `uploadId=${id}`, body: completeXml([[2, e2]]) });
  assert.equal(single.status, 200, single.text);
  assert.equal((await s3.call('GET', '/s3/mp-test/small.bin')).text, 'end');
  const id2 = await initiate('aborted.bin');
  await s3.call('PUT', '/s3/mp-test/aborted.bin', { query: `partNumber=1&uploadId=${id2}`, body: 'x' });
  assert.equal((await s3.call('DELETE', '/s3/mp-test/aborted.bin', { query: `uploadId=${id2}` })).status, 204);
  assertS3Error(await s3.call('DELETE', '/s3/mp-test/aborted.bin', { query: `uploadId=${id2}` }), 404, 'NoSuchUpload');
  assert.equal((await s3.call('HEAD', '/s3/mp-test/aborted.bin')).status, 404);
});

test('UploadPartCopy: a whole object and a range as parts', async () => {
  const src = part(9, 5 * MiB + 10);
  assert.equal((await s3.call('PUT', '/s3/mp-test/copy-src', { body: src, unsigned: true })).status, 200);
  const id = await initiate('copied.bin');
  const c1 = await s3.call('PUT', '/s3/mp-test/copied.bin', { query: `partNumber=1&uploadId=${id}`, headers: { 'x-amz-copy-source': '/mp-test/copy-src' } });
  assert.equal(c1.status, 200, c1.text);
  const c2 = await s3.call('PUT', '/s3/mp-test/copied.bin', { query: `partNumber=2&uploadId=${id}`, headers: { 'x-amz-copy-source': '/mp-test/copy-src', 'x-amz-copy-source-range': 'bytes=0-9' } });
  assert.equal(c2.status, 200, c2.text);
  const etag = (t: string) => xmlText(t, 'ETag')!.replace(/&quot;/g, '"');
  const done = await s3.call('POST', '/s3/mp-test/copied.bin', { query: `uploadId=${id}`, body: completeXml([[1, etag(c1.text)], [2, etag(c2.text)]]) });
  assert.equal(done.status, 200, done.text);
  const got = await s3.call('GET', '/s3/mp-test/copied.bin');
  assert.ok(got.body.equals(Buffer.concat([src, src.subarray(0, 10)])));
});

test('uploads in progress go with their bucket', async () => {
  assert.equal((await s3.call('PUT', '/s3/mp-gone')).status, 200);
  const r = await s3.call('POST', '/s3/mp-gone/k', { query: 'uploads' });
  const id = xmlText(r.text, 'UploadId')!;
  await s3.call('PUT', '/s3/mp-gone/k', { query: `partNumber=1&uploadId=${id}`, body: 'x' });
  assert.equal((await s3.call('DELETE', '/s3/mp-gone')).status, 204);
  assert.equal((await s3.call('PUT', '/s3/mp-gone')).status, 200);
  assert.deepEqual(xmlAll((await s3.call('GET', '/s3/mp-gone', { query: 'uploads' })).text, 'UploadId'), []);
});
