// TempURL over HTTP: account and container keys, sha1/sha256/sha512 (hex and
// base64), GET/HEAD/PUT, prefix URLs, inline and filename, IP ranges,
// expired and forged URLs (Swift's 401 with its text), Tempest's shapes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { useCloud } from '../../harness.ts';
import { expectStatus, hmacHex, raw, swiftTenant, type Swift } from './middleware-lib.ts';

let s: Swift;
const cloud = useCloud(async (c) => {
  s = await swiftTenant(c);
  expectStatus(await s.call('POST', s.account, { headers: { 'X-Account-Meta-Temp-URL-Key': 'akey' } }), 204);
  expectStatus(await s.call('PUT', 'tc'), 201);
  expectStatus(await s.call('PUT', 'tc/dir/obj.txt', { body: 'hello', headers: { 'X-Object-Meta-Secret': 's', 'X-Object-Meta-Public-Color': 'red' } }), 201);
});

const sign = (method: string, path: string, key: string, expires: number, algo = 'sha256', ip?: string) =>
  hmacHex(algo, key, `${ip ? `ip=${ip}\n` : ''}${method}\n${expires}\n${path}`);

test('a GET signed with the account key (path with /object, as Tempest signs) reads the object anonymously', async () => {
  const expires = Math.floor(Date.now() / 1000) + 300;
  const path = `${s.account}/tc/dir/obj.txt`;
  for (const algo of ['sha1', 'sha256', 'sha512']) {
    const r = await raw(cloud, 'GET', `${path}?temp_url_sig=${sign('GET', path, 'akey', expires, algo)}&temp_url_expires=${expires}`);
    expectStatus(r, 200, algo);
    assert.equal(r.text, 'hello');
    assert.equal(r.headers.get('content-disposition'), `attachment; filename="obj.txt"; filename*=UTF-8''obj.txt`);
    assert.ok(r.headers.get('expires'));
    assert.equal(r.headers.get('x-object-meta-secret'), null, 'private metadata is not shown');
    assert.equal(r.headers.get('x-object-meta-public-color'), 'red');
  }
  // Swift's own form: the path from /v1; base64 signatures; HEAD with the GET signature.
  const v1 = `/v1/AUTH_${s.t.projectId}/tc/dir/obj.txt`;
  const b64 = `sha512:${createHmac('sha512', 'akey').update(`GET\n${expires}\n${v1}`).digest('base64url')}`;
  expectStatus(await raw(cloud, 'GET', `${path}?temp_url_sig=${encodeURIComponent(b64)}&temp_url_expires=${expires}`), 200);
  const head = await raw(cloud, 'HEAD', `${path}?temp_url_sig=${sign('GET', v1, 'akey', expires)}&temp_url_expires=${expires}`);
  expectStatus(head, 200);
  const inline = await raw(cloud, 'GET', `${path}?temp_url_sig=${sign('GET', path, 'akey', expires)}&temp_url_expires=${expires}&inline`);
  assert.equal(inline.headers.get('content-disposition'), 'inline');
  const named = await raw(cloud, 'GET', `${path}?temp_url_sig=${sign('GET', path, 'akey', expires)}&temp_url_expires=${expires}&filename=report.txt`);
  assert.equal(named.headers.get('content-disposition'), `attachment; filename="report.txt"; filename*=UTF-8''report.txt`);
  // ISO 8601 expiry.
  const iso = new Date(expires * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
  expectStatus(await raw(cloud, 'GET', `${path}?temp_url_sig=${sign('GET', path, 'akey', expires)}&temp_url_expires=${iso}`), 200);
});

test('bad, expired and misused URLs are 401 "Temp URL invalid", nothing else', async () => {
  const now = Math.floor(Date.now() / 1000);
  const path = `${s.account}/tc/dir/obj.txt`;
  const expect401 = async (url: string, method = 'GET', body?: string) => {
    const r = await raw(cloud, method, url, { body });
    expectStatus(r, 401, url);
    if (method !== 'HEAD') assert.equal(r.text, '401 Unauthorized: Temp URL invalid\n');
  };
  await expect401(`${path}?temp_url_sig=${sign('GET', path, 'akey', now - 1)}&temp_url_expires=${now - 1}`);
  await expect401(`${path}?temp_url_sig=${sign('GET', path, 'other', now + 60)}&temp_url_expires=${now + 60}`);
  await expect401(`${path}?temp_url_sig=${sign('PUT', path, 'akey', now + 60)}&temp_url_expires=${now + 60}`);
  await expect401(`${path}?temp_url_sig=nothex&temp_url_expires=${now + 60}`);
  await expect401(`${path}?temp_url_expires=${now + 60}`);
  await expect401(`${path}?temp_url_sig=${sign('GET', path, 'akey', now + 60)}`);
  await expect401(`${s.account}/tc/dir/other?temp_url_sig=${sign('GET', path, 'akey', now + 60)}&temp_url_expires=${now + 60}`);
  await expect401(`${path}?temp_url_sig=${sign('GET', path, 'akey', now + 60)}&temp_url_expires=${now + 60}`, 'DELETE');
  // a signed write may not make a manifest
  const put = `${s.account}/tc/new`;
  const r = await raw(cloud, 'PUT', `${put}?temp_url_sig=${sign('PUT', put, 'akey', now + 60)}&temp_url_expires=${now + 60}`, { body: '', headers: { 'X-Object-Manifest': 'tc/dir' } });
  expectStatus(r, 400);
  assert.match(r.text, /X-Object-Manifest/);
  // an IP range the client is not in
  const ipSig = sign('GET', path, 'akey', now + 60, 'sha256', '10.9.9.0/24');
  await expect401(`${path}?temp_url_sig=${ipSig}&temp_url_expires=${now + 60}&temp_url_ip_range=10.9.9.0/24`);
  const mine = sign('GET', path, 'akey', now + 60, 'sha256', '127.0.0.1');
  expectStatus(await raw(cloud, 'GET', `${path}?temp_url_sig=${mine}&temp_url_expires=${now + 60}&temp_url_ip_range=127.0.0.1`), 200);
  // another project's key opens nothing here
  const other = await swiftTenant(cloud);
  expectStatus(await other.call('POST', other.account, { headers: { 'X-Account-Meta-Temp-URL-Key': 'okey' } }), 204);
  await expect401(`${path}?temp_url_sig=${sign('GET', path, 'okey', now + 60)}&temp_url_expires=${now + 60}`);
});

test('a PUT URL writes, a container key and a prefix URL read (Tempest test_get_object_using_temp_url_with_prefix)', async () => {
  const expires = Math.floor(Date.now() / 1000) + 300;
  const path = `${s.account}/tc/uploaded`;
  const put = await raw(cloud, 'PUT', `${path}?temp_url_sig=${sign('PUT', path, 'akey', expires)}&temp_url_expires=${expires}`, { body: 'via url' });
  expectStatus(put, 201);
  assert.ok(put.headers.get('etag'));
  const got = await s.call('GET', 'tc/uploaded');
  assert.equal(got.text, 'via url');
  expectStatus(await s.call('POST', 'tc', { headers: { 'X-Container-Meta-Temp-URL-Key': 'ckey' } }), 204);
  expectStatus(await s.call('PUT', 'tc/public/tempurl_test.txt', { body: 'prefixed' }), 201);
  const signed = `/v1/AUTH_${s.t.projectId}/tc/public`;
  const sig = hmacHex('sha256', 'ckey', `GET\n${expires}\nprefix:${signed}`);
  const r = await raw(cloud, 'GET', `${s.account}/tc/public/tempurl_test.txt?temp_url_sig=${sig}&temp_url_expires=${expires}&temp_url_prefix=public`);
  expectStatus(r, 200);
  assert.equal(r.text, 'prefixed');
  // the container key opens only its container
  expectStatus(await s.call('PUT', 'tc2'), 201);
  expectStatus(await s.call('PUT', 'tc2/public/x', { body: 'x' }), 201);
  const sig2 = hmacHex('sha256', 'ckey', `GET\n${expires}\nprefix:/v1/AUTH_${s.t.projectId}/tc2/public`);
  expectStatus(await raw(cloud, 'GET', `${s.account}/tc2/public/x?temp_url_sig=${sig2}&temp_url_expires=${expires}&temp_url_prefix=public`), 401);
  // a container key's PUT may not copy from another container; the account key's may
  const dst = `${s.account}/tc/copied`;
  const cput = hmacHex('sha256', 'ckey', `PUT\n${expires}\n${dst}`);
  expectStatus(await raw(cloud, 'PUT', `${dst}?temp_url_sig=${cput}&temp_url_expires=${expires}`, { body: '', headers: { 'X-Copy-From': 'tc2/public/x' } }), 401);
  expectStatus(await s.call('HEAD', 'tc/copied'), 404);
  const aput = sign('PUT', dst, 'akey', expires);
  expectStatus(await raw(cloud, 'PUT', `${dst}?temp_url_sig=${aput}&temp_url_expires=${expires}`, { body: '', headers: { 'X-Copy-From': 'tc2/public/x' } }), 201);
  assert.equal((await s.call('GET', 'tc/copied')).text, 'x');
});

test("the keys are the owner's: a reader of the container (read ACL) does not see them", async () => {
  expectStatus(await s.call('PUT', 'shared', { headers: { 'X-Container-Read': '.r:*,.rlistings', 'X-Container-Meta-Temp-URL-Key': 'secret', 'X-Container-Meta-Color': 'red' } }), 201);
  const owner = await s.call('HEAD', 'shared');
  assert.equal(owner.headers.get('x-container-meta-temp-url-key'), 'secret');
  const anon = await raw(cloud, 'HEAD', `${s.account}/shared`);
  expectStatus(anon, 204);
  assert.equal(anon.headers.get('x-container-meta-temp-url-key'), null);
  assert.equal(anon.headers.get('x-container-meta-color'), 'red');
  const other = await swiftTenant(cloud);
  const listed = await other.call('GET', `${s.account}/shared`);
  expectStatus(listed, 204);
  assert.equal(listed.headers.get('x-container-meta-temp-url-key'), null);
});

