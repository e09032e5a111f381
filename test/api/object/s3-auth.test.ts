// S3 authentication over HTTP: SigV4 headers, presigned URLs (V4 and V2),
// aws-chunked uploads with chunk signatures, V2 headers; the errors of a bad
// signature, an unknown key, a skewed clock, an expired URL; requests at the
// server's root and virtual-hosted ones; another project's bucket.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { crc32 } from 'node:zlib';
import { tenant, useCloud, type Tenant } from '../../harness.ts';
import { assertS3Error, chunkedBody, ec2Keys, presignV4, s3Client, signV2, signV4, xmlAll, xmlText, type Keys, type S3Client } from './s3-lib.ts';

let alice: Tenant;
let bob: Tenant;
let aliceKeys: Keys;
let bobKeys: Keys;
let s3: S3Client;
let bobS3: S3Client;
const cloud = useCloud(async (c) => {
  alice = await tenant(c);
  bob = await tenant(c);
  aliceKeys = await ec2Keys(c, alice);
  bobKeys = await ec2Keys(c, bob);
  s3 = s3Client(c, aliceKeys);
  bobS3 = s3Client(c, bobKeys);
}, { s3: { domain: 's3.test' } });

test('a signed PUT and GET round-trip; the path style works under /s3 and at the root', async () => {
  assert.equal((await s3.call('PUT', '/s3/auth-one')).status, 200);
  const put = await s3.call('PUT', '/s3/auth-one/hello.txt', { body: 'hello', headers: { 'content-type': 'text/plain' } });
  assert.equal(put.status, 200, put.text);
  assert.equal(put.headers.get('etag'), `"${createHash('md5').update('hello').digest('hex')}"`);
  const get = await s3.call('GET', '/auth-one/hello.txt');
  assert.equal(get.status, 200, get.text);
  assert.equal(get.text, 'hello');
  assert.equal(get.headers.get('content-type'), 'text/plain');
  const list = await s3.call('GET', '/');
  assert.equal(list.status, 200, list.text);
  assert.deepEqual(xmlAll(list.text, 'Name'), ['auth-one']);
});

test('a wrong signature, an unknown key, a skewed clock and a tampered body are refused', async () => {
  const wrong = await s3.call('GET', '/s3/auth-one/hello.txt', { keys: { access: aliceKeys.access, secret: 'not-the-secret' } });
  assertS3Error(wrong, 403, 'SignatureDoesNotMatch');
  assert.ok(!wrong.text.includes(aliceKeys.secret));
  assertS3Error(await s3.call('GET', '/s3/auth-one/hello.txt', { keys: { access: 'AKIDNOBODYHASTHIS', secret: 'x' } }), 403, 'InvalidAccessKeyId');
  assertS3Error(await s3.call('GET', '/s3/auth-one/hello.txt', { date: new Date(Date.now() - 20 * 60 * 1000) }), 403, 'RequestTimeTooSkewed');
  // the body does not match the signed hash: nothing stored
  const s = signV4(aliceKeys, { method: 'PUT', path: '/s3/auth-one/tampered', body: 'good', host: s3.host });
  const r = await s3.raw('PUT', '/s3/auth-one/tampered', { headers: s.headers, body: 'evil' });
  assertS3Error(r, 400, 'XAmzContentSHA256Mismatch');
  assertS3Error(await s3.call('HEAD', '/s3/auth-one/tampered').then((x) => ({ ...x, text: '' })), 404, 'NoSuchKey');
  // a header added after signing
  const h = signV4(aliceKeys, { method: 'GET', path: '/s3/auth-one/hello.txt', host: s3.host });
  assertS3Error(await s3.raw('GET', '/s3/auth-one/hello.txt', { headers: { ...h.headers, 'x-amz-meta-sneaky': '1' } }), 403, 'AccessDenied');
});

test('another project: its bucket is closed to a valid signature; its name is taken', async () => {
  assertS3Error(await bobS3.call('GET', '/s3/auth-one/hello.txt'), 403, 'AccessDenied');
  assertS3Error(await bobS3.call('GET', '/s3/auth-one'), 403, 'AccessDenied');
  assertS3Error(await bobS3.call('PUT', '/s3/auth-one/x', { body: 'x' }), 403, 'AccessDenied');
  assertS3Error(await bobS3.call('DELETE', '/s3/auth-one/hello.txt'), 403, 'AccessDenied');
  assertS3Error(await bobS3.call('PUT', '/s3/auth-one'), 409, 'BucketAlreadyExists');
  assertS3Error(await s3.call('PUT', '/s3/auth-one'), 409, 'BucketAlreadyOwnedByYou');
  assertS3Error(await bobS3.call('GET', '/s3/no-such-bucket-here'), 404, 'NoSuchBucket');
  const bobs = await bobS3.call('GET', '/s3');
  assert.deepEqual(xmlAll(bobs.text, 'Name'), []);
  // anonymous
  assertS3Error(await s3.raw('GET', '/s3/auth-one/hello.txt'), 403, 'AccessDenied');
  assertS3Error(await s3.raw('GET', '/s3/'), 403, 'AccessDenied');
});

test('presigned GET and PUT (V4); an expired one and a changed one are refused', async () => {
  const q = presignV4(aliceKeys, { method: 'GET', path: '/s3/auth-one/hello.txt', host: s3.host, expires: 60 });
  const ok = await s3.raw('GET', `/s3/auth-one/hello.txt?${q}`);
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.text, 'hello');
  // at the root too
  const rootQ = presignV4(aliceKeys, { method: 'GET', path: '/auth-one/hello.txt', host: s3.host, expires: 60 });
  assert.equal((await s3.raw('GET', `/auth-one/hello.txt?${rootQ}`)).text, 'hello');
  const put = presignV4(aliceKeys, { method: 'PUT', path: '/s3/auth-one/uploaded', host: s3.host, expires: 60 });
  assert.equal((await s3.raw('PUT', `/s3/auth-one/uploaded?${put}`, { body: 'via presigned PUT' })).status, 200);
  assert.equal((await s3.call('GET', '/s3/auth-one/uploaded')).text, 'via presigned PUT');
  const old = presignV4(aliceKeys, { method: 'GET', path: '/s3/auth-one/hello.txt', host: s3.host, expires: 60, date: new Date(Date.now() - 120_000) });
  const expired = await s3.raw('GET', `/s3/auth-one/hello.txt?${old}`);
  assertS3Error(expired, 403, 'AccessDenied');
  assert.equal(xmlText(expired.text, 'Message'), 'Request has expired');
  assertS3Error(await s3.raw('GET', `/s3/auth-one/uploaded?${q}`), 403, 'SignatureDoesNotMatch');
  assertS3Error(await s3.raw('PUT', `/s3/auth-one/hello.txt?${q}`, { body: 'x' }), 403, 'SignatureDoesNotMatch');
  const tooLong = presignV4(aliceKeys, { method: 'GET', path: '/s3/auth-one/hello.txt', host: s3.host, expires: 604801 });
  assertS3Error(await s3.raw('GET', `/s3/auth-one/hello.txt?${tooLong}`), 400, 'AuthorizationQueryParametersError');
});

test('an aws-chunked upload: chunk signatures checked as the body streams', async () => {
  const data = Buffer.alloc(200_000);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7) % 251;
  const sign = (path: string) => signV4(aliceKeys, {
    method: 'PUT', path, host: s3.host, payloadHash: 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
    headers: { 'content-encoding': 'aws-chunked', 'x-amz-decoded-content-length': String(data.length) },
  });
  const s = sign('/s3/auth-one/chunked');
  const body = chunkedBody(data, 65536, s);
  const r = await s3.raw('PUT', '/s3/auth-one/chunked', { headers: s.headers, body });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers.get('etag'), `"${createHash('md5').update(data).digest('hex')}"`);
  const got = await s3.call('GET', '/s3/auth-one/chunked');
  assert.ok(got.body.equals(data));
  assert.equal(got.headers.get('content-encoding'), null);
  // one chunk altered: refused, nothing stored
  const s2 = sign('/s3/auth-one/chunked-bad');
  assertS3Error(await s3.raw('PUT', '/s3/auth-one/chunked-bad', { headers: s2.headers, body: chunkedBody(data, 65536, s2, 1) }), 403, 'SignatureDoesNotMatch');
  assert.equal((await s3.call('HEAD', '/s3/auth-one/chunked-bad')).status, 404);
  // the decoded length does not match what came
  const s3b = sign('/s3/auth-one/chunked-short');
  const short = chunkedBody(data.subarray(0, 100_000), 65536, s3b);
  assertS3Error(await s3.raw('PUT', '/s3/auth-one/chunked-short', { headers: s3b.headers, body: short }), 400, 'IncompleteBody');
  assert.equal((await s3.call('HEAD', '/s3/auth-one/chunked-short')).status, 404);
});

test('an aws-chunked upload with an unsigned payload and a trailing checksum (what SDKs send by default)', async () => {
  const data = Buffer.from('checked by its trailing CRC32, '.repeat(3000));
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(data) >>> 0);
  const body = (checksum: string) => Buffer.concat([
    Buffer.from(`${(50_000).toString(16)}\r\n`), data.subarray(0, 50_000), Buffer.from('\r\n'),
    Buffer.from(`${(data.length - 50_000).toString(16)}\r\n`), data.subarray(50_000), Buffer.from('\r\n'),
    Buffer.from(`0\r\nx-amz-checksum-crc32:${checksum}\r\n\r\n`),
  ]);
  const headers = { 'content-encoding': 'aws-chunked', 'x-amz-decoded-content-length': String(data.length), 'x-amz-trailer': 'x-amz-checksum-crc32' };
  const s = signV4(aliceKeys, { method: 'PUT', path: '/s3/auth-one/trailer', host: s3.host, payloadHash: 'STREAMING-UNSIGNED-PAYLOAD-TRAILER', headers });
  const r = await s3.raw('PUT', '/s3/auth-one/trailer', { headers: s.headers, body: body(crc.toString('base64')) });
  assert.equal(r.status, 200, r.text);
  assert.ok((await s3.call('GET', '/s3/auth-one/trailer')).body.equals(data));
  const bad = signV4(aliceKeys, { method: 'PUT', path: '/s3/auth-one/trailer-bad', host: s3.host, payloadHash: 'STREAMING-UNSIGNED-PAYLOAD-TRAILER', headers });
  assertS3Error(await s3.raw('PUT', '/s3/auth-one/trailer-bad', { headers: bad.headers, body: body('AAAAAA==') }), 400, 'BadDigest');
  assert.equal((await s3.call('HEAD', '/s3/auth-one/trailer-bad')).status, 404);
  // a whole-body checksum header is checked too
  assertS3Error(await s3.call('PUT', '/s3/auth-one/crc-bad', { body: 'abc', headers: { 'x-amz-checksum-crc32': 'AAAAAA==' } }), 400, 'BadDigest');
  const good = Buffer.alloc(4);
  good.writeUInt32BE(crc32('abc') >>> 0);
  const ok = await s3.call('PUT', '/s3/auth-one/crc-good', { body: 'abc', headers: { 'x-amz-checksum-crc32': good.toString('base64') } });
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.headers.get('x-amz-checksum-crc32'), good.toString('base64'));
});

test('Signature V2: header and presigned query', async () => {
  const date = new Date().toUTCString();
  const sig = signV2(aliceKeys, 'GET', '/auth-one/hello.txt', date);
  const r = await s3.raw('GET', '/s3/auth-one/hello.txt', { headers: { date, authorization: `AWS ${aliceKeys.access}:${sig}` } });
  // V2 signs the path as sent: /s3/... here
  assertS3Error(r, 403, 'SignatureDoesNotMatch');
  const sig2 = signV2(aliceKeys, 'GET', '/s3/auth-one/hello.txt', date);
  const ok = await s3.raw('GET', '/s3/auth-one/hello.txt', { headers: { date, authorization: `AWS ${aliceKeys.access}:${sig2}` } });
  assert.equal(ok.status, 200, ok.text);
  const atRoot = await s3.raw('GET', '/auth-one/hello.txt', { headers: { date, authorization: `AWS ${aliceKeys.access}:${sig}` } });
  assert.equal(atRoot.text, 'hello');
  const expires = String(Math.floor(Date.now() / 1000) + 60);
  const qs = `AWSAccessKeyId=${encodeURIComponent(aliceKeys.access)}&Expires=${expires}&Signature=${encodeURIComponent(signV2(aliceKeys, 'GET', '/auth-one/hello.txt', expires))}`;
  assert.equal((await s3.raw('GET', `/auth-one/hello.txt?${qs}`)).text, 'hello');
  const past = String(Math.floor(Date.now() / 1000) - 10);
  const qp = `AWSAccessKeyId=${encodeURIComponent(aliceKeys.access)}&Expires=${past}&Signature=${encodeURIComponent(signV2(aliceKeys, 'GET', '/auth-one/hello.txt', past))}`;
  assertS3Error(await s3.raw('GET', `/auth-one/hello.txt?${qp}`), 403, 'AccessDenied');
  const bad = `AWS ${bobKeys.access}:${sig}`;
  assertS3Error(await s3.raw('GET', '/auth-one/hello.txt', { headers: { date, authorization: bad } }), 403, 'SignatureDoesNotMatch');
});

/** A GET with its own Host header (fetch does not let a caller set Host). */
function getWithHost(path: string, headers: Record<string, string>): Promise<{ status: number; text: string }> {
  const u = new URL(cloud.url);
  return new Promise((resolve, reject) => {
    request({ host: u.hostname, port: u.port, path, method: 'GET', headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
    }).on('error', reject).end();
  });
}

test('virtual-hosted style: Host <bucket>.<s3 domain>, signed with that host', async () => {
  const port = new URL(cloud.url).port;
  const host = `auth-one.s3.test:${port}`;
  const s = signV4(aliceKeys, { method: 'GET', path: '/hello.txt', host });
  const r = await getWithHost('/hello.txt', { ...s.headers, host });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.text, 'hello');
  const date = new Date().toUTCString();
  const v2 = signV2(aliceKeys, 'GET', '/auth-one/hello.txt', date);
  const r2 = await getWithHost('/hello.txt', { host, date, authorization: `AWS ${aliceKeys.access}:${v2}` });
  assert.equal(r2.text, 'hello');
  // a bucket listing at the virtual host's root
  const l = signV4(aliceKeys, { method: 'GET', path: '/', host });
  const list = await getWithHost('/', { ...l.headers, host });
  assert.equal(list.status, 200, list.text);
  assert.ok(list.text.includes('<Key>hello.txt</Key>'), list.text);
});

test('a disabled user\'s key is refused; a deleted key is unknown', async () => {
  const carol = await tenant(cloud);
  const keys = await ec2Keys(cloud, carol);
  const c = s3Client(cloud, keys);
  assert.equal((await c.call('GET', '/s3')).status, 200);
  const off = await cloud.call('PATCH', `/identity/v3/users/${carol.userId}`, { token: cloud.adminToken, body: { user: { enabled: false } } });
  assert.equal(off.status, 200);
  assertS3Error(await c.call('GET', '/s3'), 403, 'AccessDenied');
  await cloud.call('PATCH', `/identity/v3/users/${carol.userId}`, { token: cloud.adminToken, body: { user: { enabled: true } } });
  const del = await cloud.call('DELETE', `/identity/v3/users/${carol.userId}/credentials/OS-EC2/${keys.access}`, { token: cloud.adminToken });
  assert.equal(del.status, 204);
  assertS3Error(await c.call('GET', '/s3'), 403, 'InvalidAccessKeyId');
});

test('requests without S3 credentials at the root are not taken by S3', async () => {
  const r = await fetch(`${cloud.url}/nothing-here`);
  assert.equal(r.status, 404);
  assert.doesNotMatch(r.headers.get('content-type') ?? '', /xml/);
  // the other services keep their prefixes even for S3-signed requests
  const id = await s3.call('GET', '/identity/v3');
  assert.equal(id.status, 200);
  assert.match(id.headers.get('content-type') ?? '', /json/);
});

test('a key made under a trust is exactly as strong as a token for it: uses, trustor, roles', async () => {
  const trustor = await tenant(cloud);
  const trustee = await tenant(cloud);
  const roles = (await cloud.call('GET', '/identity/v3/roles', { token: cloud.adminToken })).body.roles as Array<{ id: string; name: string }>;
  const member = roles.find((r) => r.name === 'member')!.id;
  const trust = async (extra: Record<string, unknown>) => {
    const r = await cloud.call('POST', '/identity/v3/OS-TRUST/trusts', { token: trustor.token, body: { trust: {
      trustor_user_id: trustor.userId, trustee_user_id: trustee.userId, project_id: trustor.projectId, impersonation: false, roles: [{ id: member }], ...extra,
    } } });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body.trust.id as string;
  };
  const keysUnder = async (trustId: string): Promise<S3Client & { keys: Keys }> => {
    const t = await cloud.call('POST', '/identity/v3/auth/tokens', { body: { auth: { identity: { methods: ['token'], token: { id: trustee.token } }, scope: { 'OS-TRUST:trust': { id: trustId } } } } });
    assert.equal(t.status, 201, JSON.stringify(t.body));
    const token = t.headers.get('x-subject-token')!;
    const r = await cloud.call('POST', `/identity/v3/users/${trustee.userId}/credentials/OS-EC2`, { token, body: { tenant_id: trustor.projectId } });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.credential.trust_id, trustId);
    const keys = { access: r.body.credential.access, secret: r.body.credential.secret };
    return Object.assign(s3Client(cloud, keys), { keys });
  };

  // three uses: the token the key was made with took one; each signed request takes one, as each token would;
  // a request whose signature is wrong takes none
  const limited = await keysUnder(await trust({ remaining_uses: 3 }));
  for (let i = 0; i < 3; i++) assertS3Error(await limited.call('GET', '/s3', { keys: { access: limited.keys.access, secret: 'x' } }), 403, 'SignatureDoesNotMatch');
  assert.equal((await limited.call('GET', '/s3')).status, 200);
  assert.equal((await limited.call('GET', '/s3')).status, 200);
  assertS3Error(await limited.call('GET', '/s3'), 403, 'AccessDenied');

  // the trustor disabled: the trust gives nothing, impersonating or not
  const open = await keysUnder(await trust({}));
  assert.equal((await open.call('GET', '/s3')).status, 200);
  const off = await cloud.call('PATCH', `/identity/v3/users/${trustor.userId}`, { token: cloud.adminToken, body: { user: { enabled: false } } });
  assert.equal(off.status, 200);
  assertS3Error(await open.call('GET', '/s3'), 403, 'AccessDenied');
  await cloud.call('PATCH', `/identity/v3/users/${trustor.userId}`, { token: cloud.adminToken, body: { user: { enabled: true } } });
  assert.equal((await open.call('GET', '/s3')).status, 200);

  // the trustor no longer holds the delegated role: void
  const r = await cloud.call('DELETE', `/identity/v3/projects/${trustor.projectId}/users/${trustor.userId}/roles/${member}`, { token: cloud.adminToken });
  assert.equal(r.status, 204);
  assertS3Error(await open.call('GET', '/s3'), 403, 'AccessDenied');
});
