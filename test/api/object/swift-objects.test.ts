// Swift objects over HTTP: metadata (limits, POST replacing, removal),
// uploads (ETag 422, short body 499, chunked, 411, If-None-Match: *), ranges
// (one, several, 416), conditional GETs, server-side copies (PUT with
// X-Copy-From and COPY, X-Fresh-Metadata), expiry, and bad names.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { tenant, uniqueName, useCloud, type Tenant } from '../../harness.ts';
import { enc, swift } from './lib.ts';

let alice: Tenant;
let c: string;
const cloud = useCloud(async (cl) => {
  alice = await tenant(cl);
  c = uniqueName('obj');
  const r = await fetch(`${cl.url}/object/v1/AUTH_${alice.projectId}/${c}`, { method: 'PUT', headers: { 'X-Auth-Token': alice.token } });
  assert.equal(r.status, 201);
});
const call = swift(cloud, () => alice);
const md5 = (b: Buffer | string) => createHash('md5').update(b).digest('hex');

/** A raw HTTP/1.1 request (for bodies shorter than their Content-Length and chunked bodies). */
function raw(method: string, path: string, headers: Record<string, string>, write: (req: ReturnType<typeof request>) => void): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(`${cloud.url}/object/v1/AUTH_${alice.projectId}${path}`);
    const req = request({ host: u.hostname, port: u.port, path: u.pathname, method, headers: { 'X-Auth-Token': alice.token, ...headers } }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', (e) => resolve({ status: -1, body: String(e) }));
    void reject;
    write(req);
  });
}

test('object metadata: set on PUT, replaced by POST, limits answered 400 as Swift', async () => {
  let r = await call('PUT', `/${c}/meta`, { body: 'x', headers: { 'X-Object-Meta-One': '1', 'X-Object-Meta-Two': 'zwei ü' , 'Content-Type': 'text/x-mine' } });
  assert.equal(r.status, 201);
  r = await call('HEAD', `/${c}/meta`);
  assert.equal(r.headers.get('x-object-meta-one'), '1');
  assert.equal(r.headers.get('x-object-meta-two'), 'zwei ü');
  assert.equal(r.headers.get('content-type'), 'text/x-mine');
  r = await call('POST', `/${c}/meta`, { headers: { 'X-Object-Meta-Three': '3', 'Content-Type': 'text/other' } });
  assert.equal(r.status, 202);
  r = await call('HEAD', `/${c}/meta`);
  assert.equal(r.headers.get('x-object-meta-one'), null, 'POST replaces the metadata');
  assert.equal(r.headers.get('x-object-meta-three'), '3');
  assert.equal(r.headers.get('content-type'), 'text/other');
  r = await call('POST', `/${c}/meta`, { headers: { ['X-Object-Meta-' + 'n'.repeat(129)]: 'v' } });
  assert.equal(r.status, 400);
  assert.match(r.text, /Metadata name too long/);
  r = await call('PUT', `/${c}/meta2`, { body: 'x', headers: { 'X-Object-Meta-Big': 'v'.repeat(257) } });
  assert.equal(r.status, 400);
  assert.match(r.text, /Metadata value longer than 256/);
  const many: Record<string, string> = {};
  for (let i = 0; i < 91; i++) many[`X-Object-Meta-K${i}`] = 'v';
  r = await call('PUT', `/${c}/meta2`, { body: 'x', headers: many });
  assert.equal(r.status, 400);
  assert.match(r.text, /Too many metadata items; max 90/);
  const big: Record<string, string> = {};
  for (let i = 0; i < 20; i++) big[`X-Object-Meta-K${i}`] = 'v'.repeat(250);
  r = await call('PUT', `/${c}/meta2`, { body: 'x', headers: big });
  assert.equal(r.status, 400);
  assert.match(r.text, /Total metadata too large; max 4096/);
  assert.equal((await call('HEAD', `/${c}/meta2`)).status, 404, 'nothing stored');
  // the headers Swift keeps with an object: set on PUT, replaced by POST, carried by a copy
  r = await call('PUT', `/${c}/disp`, { body: 'x', headers: { 'Content-Disposition': 'attachment; filename="a.txt"', 'Content-Encoding': 'gzip' } });
  assert.equal(r.status, 201);
  r = await call('HEAD', `/${c}/disp`);
  assert.equal(r.headers.get('content-disposition'), 'attachment; filename="a.txt"');
  assert.equal(r.headers.get('content-encoding'), 'gzip');
  assert.equal((await call('COPY', `/${c}/disp`, { headers: { Destination: `${c}/disp2` } })).status, 201);
  assert.equal((await call('HEAD', `/${c}/disp2`)).headers.get('content-disposition'), 'attachment; filename="a.txt"');
  assert.equal((await call('POST', `/${c}/disp`, { headers: { 'Content-Disposition': 'inline' } })).status, 202);
  r = await call('HEAD', `/${c}/disp`);
  assert.equal(r.headers.get('content-disposition'), 'inline');
  assert.equal(r.headers.get('content-encoding'), null);
  r = await call('POST', `/${c}/absent`, { headers: { 'X-Object-Meta-A': '1' } });
  assert.equal(r.status, 404);
});

test('container and account metadata: set, removed with X-Remove-*, an empty value removes', async () => {
  let r = await call('POST', `/${c}`, { headers: { 'X-Container-Meta-A': '1', 'X-Container-Meta-B': '2' } });
  assert.equal(r.status, 204);
  r = await call('POST', `/${c}`, { headers: { 'X-Remove-Container-Meta-A': 'x', 'X-Container-Meta-B': '' } });
  assert.equal(r.status, 204);
  r = await call('HEAD', `/${c}`);
  assert.equal(r.headers.get('x-container-meta-a'), null);
  assert.equal(r.headers.get('x-container-meta-b'), null);
  assert.equal(r.headers.get('x-storage-policy'), 'Policy-0');
  r = await call('POST', '', { headers: { 'X-Account-Meta-Color': 'red' } });
  assert.equal(r.status, 204);
  r = await call('HEAD', '');
  assert.equal(r.headers.get('x-account-meta-color'), 'red');
  r = await call('POST', '', { headers: { 'X-Remove-Account-Meta-Color': '1' } });
  r = await call('HEAD', '');
  assert.equal(r.headers.get('x-account-meta-color'), null);
});

test('uploads: ETag mismatch 422, a body shorter than its length 499, chunked bodies, 411 without a length, If-None-Match: *', async () => {
  let r = await call('PUT', `/${c}/etag`, { body: 'data', headers: { ETag: md5('other') } });
  assert.equal(r.status, 422);
  assert.equal((await call('HEAD', `/${c}/etag`)).status, 404);
  r = await call('PUT', `/${c}/etag`, { body: 'data', headers: { ETag: `"${md5('data')}"` } });
  assert.equal(r.status, 201);

  const short = await raw('PUT', `/${c}/short`, { 'Content-Length': '100' }, (req) => {
    req.write('only a few bytes');
    setTimeout(() => req.destroy(), 200);
  });
  assert.ok(short.status === -1 || short.status === 499, `short body: ${short.status}`);
  await new Promise((res) => setTimeout(res, 200));
  assert.equal((await call('HEAD', `/${c}/short`)).status, 404, 'nothing stored');

  const chunked = await raw('PUT', `/${c}/chunked`, { 'Transfer-Encoding': 'chunked' }, (req) => {
    req.write('part one, ');
    req.end('part two');
  });
  assert.equal(chunked.status, 201);
  r = await call('GET', `/${c}/chunked`);
  assert.equal(r.text, 'part one, part two');

  const nolen = await raw('PUT', `/${c}/nolen`, {}, (req) => req.end());
  assert.ok([201, 411].includes(nolen.status));

  r = await call('PUT', `/${c}/once`, { body: 'first', headers: { 'If-None-Match': '*' } });
  assert.equal(r.status, 201);
  r = await call('PUT', `/${c}/once`, { body: 'second', headers: { 'If-None-Match': '*' } });
  assert.equal(r.status, 412);
  assert.equal((await call('GET', `/${c}/once`)).text, 'first');
  r = await call('PUT', `/${c}/once`, { body: 'x', headers: { 'If-None-Match': 'abc' } });
  assert.equal(r.status, 400);
});

test('ranges: one (206, Content-Range), several (multipart/byteranges), suffix, unsatisfiable (416)', async () => {
  const data = Buffer.from(Array.from({ length: 200_000 }, (_, i) => i % 251));
  assert.equal((await call('PUT', `/${c}/ranged`, { body: data })).status, 201);
  let r = await call('GET', `/${c}/ranged`, { headers: { Range: 'bytes=10-19' } });
  assert.equal(r.status, 206);
  assert.equal(r.headers.get('content-range'), `bytes 10-19/${data.length}`);
  assert.deepEqual(r.bytes, data.subarray(10, 20));
  r = await call('GET', `/${c}/ranged`, { headers: { Range: 'bytes=65530-131080' } });
  assert.deepEqual(r.bytes, data.subarray(65530, 131081), 'across blocks');
  r = await call('GET', `/${c}/ranged`, { headers: { Range: 'bytes=-5' } });
  assert.deepEqual(r.bytes, data.subarray(data.length - 5));
  r = await call('GET', `/${c}/ranged`, { headers: { Range: 'bytes=0-1,100-101' } });
  assert.equal(r.status, 206);
  const ct = r.headers.get('content-type')!;
  assert.match(ct, /^multipart\/byteranges;boundary=/);
  const boundary = ct.split('boundary=')[1]!;
  assert.equal(r.text.split(`--${boundary}`).length, 4);
  assert.ok(r.bytes.includes(Buffer.from(`Content-Range: bytes 100-101/${data.length}`)));
  r = await call('GET', `/${c}/ranged`, { headers: { Range: `bytes=${data.length}-` } });
  assert.equal(r.status, 416);
  assert.equal(r.headers.get('content-range'), `bytes */${data.length}`);
  r = await call('GET', `/${c}/ranged`, { headers: { Range: 'bytes=junk' } });
  assert.equal(r.status, 200, 'an invalid range is ignored');
  // as swob, more than 50 ranges are ignored: one request must not make the server send the object 51 times
  r = await call('GET', `/${c}/ranged`, { headers: { Range: `bytes=${Array(51).fill('0-').join(',')}` } });
  assert.equal(r.status, 200);
  assert.equal(r.bytes.length, data.length);
  r = await call('GET', `/${c}/ranged`, { headers: { Range: `bytes=${Array(50).fill('0-0').join(',')}` } });
  assert.equal(r.status, 206);
});

test('conditional GETs: If-Match 412, If-None-Match 304, If-Modified-Since 304, If-Unmodified-Since 412', async () => {
  assert.equal((await call('PUT', `/${c}/cond`, { body: 'abc' })).status, 201);
  const etag = md5('abc');
  assert.equal((await call('GET', `/${c}/cond`, { headers: { 'If-Match': etag } })).status, 200);
  assert.equal((await call('GET', `/${c}/cond`, { headers: { 'If-Match': '"nope"' } })).status, 412);
  assert.equal((await call('GET', `/${c}/cond`, { headers: { 'If-None-Match': `"${etag}"` } })).status, 304);
  assert.equal((await call('GET', `/${c}/cond`, { headers: { 'If-None-Match': 'other' } })).status, 200);
  const later = new Date(Date.now() + 3600_000).toUTCString();
  const earlier = new Date(Date.now() - 3600_000).toUTCString();
  assert.equal((await call('GET', `/${c}/cond`, { headers: { 'If-Modified-Since': later } })).status, 304);
  assert.equal((await call('GET', `/${c}/cond`, { headers: { 'If-Modified-Since': earlier } })).status, 200);
  assert.equal((await call('GET', `/${c}/cond`, { headers: { 'If-Unmodified-Since': earlier } })).status, 412);
  assert.equal((await call('HEAD', `/${c}/cond`, { headers: { 'If-None-Match': etag } })).status, 304);
});

test('server-side copies share the bytes: PUT with X-Copy-From, COPY with Destination, metadata merged unless X-Fresh-Metadata', async () => {
  assert.equal((await call('PUT', `/${c}/src`, { body: 'copy me', headers: { 'X-Object-Meta-Orig': 'yes', 'Content-Type': 'text/a' } })).status, 201);
  let r = await call('PUT', `/${c}/dst1`, { headers: { 'X-Copy-From': `/${c}/src`, 'X-Object-Meta-New': 'n', 'Content-Length': '0' } });
  assert.equal(r.status, 201, r.text);
  assert.equal(r.headers.get('x-copied-from'), `${c}/src`);
  r = await call('GET', `/${c}/dst1`);
  assert.equal(r.text, 'copy me');
  assert.equal(r.headers.get('x-object-meta-orig'), 'yes');
  assert.equal(r.headers.get('x-object-meta-new'), 'n');
  assert.equal(r.headers.get('content-type'), 'text/a');
  r = await call('COPY', `/${c}/src`, { headers: { Destination: `${c}/dst2`, 'X-Fresh-Metadata': 'true', 'X-Object-Meta-Only': 'o' } });
  assert.equal(r.status, 201);
  r = await call('HEAD', `/${c}/dst2`);
  assert.equal(r.headers.get('x-object-meta-orig'), null);
  assert.equal(r.headers.get('x-object-meta-only'), 'o');
  // the source goes; the copies keep their bytes
  assert.equal((await call('DELETE', `/${c}/src`)).status, 204);
  assert.equal((await call('GET', `/${c}/dst2`)).text, 'copy me');
  r = await call('COPY', `/${c}/src`, { headers: { Destination: `${c}/dst3` } });
  assert.equal(r.status, 404);
  r = await call('COPY', `/${c}/dst1`, { headers: { Destination: 'nocontainerpart' } });
  assert.equal(r.status, 412);
});

test('expiry: X-Delete-After hides the object once past; past and non-integer values are 400s', async () => {
  // a few seconds ahead, so that a loaded machine still sees it before it expires; then waited out by the clock
  const deleteAt = Math.floor(Date.now() / 1000) + 4;
  let r = await call('PUT', `/${c}/soon`, { body: 'x', headers: { 'X-Delete-At': String(deleteAt) } });
  assert.equal(r.status, 201);
  assert.equal((await call('HEAD', `/${c}/soon`)).headers.get('x-delete-at'), String(deleteAt));
  while (Date.now() / 1000 < deleteAt + 0.1) await new Promise((res) => setTimeout(res, 100));
  assert.equal((await call('GET', `/${c}/soon`)).status, 404);
  r = await call('GET', `/${c}?prefix=soon`);
  assert.equal(r.status, 204, 'not listed');
  assert.equal((await call('PUT', `/${c}/x`, { body: 'x', headers: { 'X-Delete-After': 'abc' } })).status, 400);
  assert.equal((await call('PUT', `/${c}/x`, { body: 'x', headers: { 'X-Delete-At': '1000' } })).status, 400);
  assert.equal((await call('PUT', `/${c}/x`, { body: 'x', headers: { 'X-Delete-At': '1'.repeat(30) } })).status, 400);
  assert.equal((await call('PUT', `/${c}/x`, { body: 'x', headers: { 'X-Delete-After': '9'.repeat(30) } })).status, 400);
  r = await call('POST', `/${c}/x2`, { headers: { 'X-Delete-After': '100' } });
  assert.equal(r.status, 404);
});

test('names: an object name of 1024 bytes is fine, 1025 is 400; a container name over 256 is 400; bad UTF-8 412; trailing slashes kept', async () => {
  const long = 'a'.repeat(1024);
  assert.equal((await call('PUT', `/${c}/${long}`, { body: 'x' })).status, 201);
  assert.equal((await call('PUT', `/${c}/${long}b`, { body: 'x' })).status, 400);
  assert.equal((await call('PUT', `/${'c'.repeat(257)}`)).status, 400);
  assert.ok([400, 412].includes((await call('PUT', `/${c}/bad%FFutf8`, { body: 'x' })).status));
  assert.ok([400, 412].includes((await call('PUT', `/${c}/bad%C3%28utf8`, { body: 'x' })).status));
  assert.equal((await call('PUT', `/${c}/dir/`, { body: '' })).status, 201);
  assert.equal((await call('PUT', `/${c}/dir`, { body: 'file' })).status, 201);
  assert.equal((await call('GET', `/${c}/dir/`)).text, '');
  assert.equal((await call('GET', `/${c}/dir`)).text, 'file');
  assert.equal((await call('PUT', `/${c}/${enc('ünïcödé/名前')}`, { body: 'u' })).status, 201);
  const r = await call('GET', `/${c}?format=json&prefix=${encodeURIComponent('ünï')}`);
  assert.equal(r.json[0].name, 'ünïcödé/名前');
  assert.equal((await call('PUT', `/${c}/nul%00name`, { body: 'x' })).status, 400);
});
