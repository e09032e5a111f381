// The Swift v1 API's basics over HTTP: the catalog entry, accounts,
// containers and objects (PUT/GET/HEAD/DELETE), listings in three formats.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { tenant, uniqueName, useCloud, type Tenant } from '../../harness.ts';
import { enc, swift } from './lib.ts';

let alice: Tenant;
const cloud = useCloud(async (c) => {
  alice = await tenant(c);
});
const call = swift(cloud, () => alice);

test('the catalog names object-store (swift) at /object/v1/AUTH_<the token\'s project>', async () => {
  const r = await cloud.call('POST', '/identity/v3/auth/tokens', {
    body: { auth: { identity: { methods: ['token'], token: { id: alice.token } }, scope: { project: { id: alice.projectId } } } },
  });
  assert.equal(r.status, 201);
  const entry = r.body.token.catalog.find((e: any) => e.type === 'object-store');
  assert.ok(entry, 'an object-store entry');
  assert.equal(entry.name, 'swift');
  for (const ep of entry.endpoints) assert.equal(ep.url, `${cloud.url}/object/v1/AUTH_${alice.projectId}`);
});

test('container and object round trip: PUT 201, HEAD, GET, listing, DELETE', async () => {
  const c = uniqueName('c');
  let r = await call('PUT', `/${c}`);
  assert.equal(r.status, 201, r.text);
  assert.ok(r.headers.get('x-trans-id'));
  r = await call('PUT', `/${c}`);
  assert.equal(r.status, 202);
  const data = Buffer.from('hello object world');
  const md5 = createHash('md5').update(data).digest('hex');
  r = await call('PUT', `/${c}/dir/a.txt`, { body: data, headers: { 'X-Object-Meta-Color': 'blue' } });
  assert.equal(r.status, 201, r.text);
  assert.equal(r.headers.get('etag'), md5);
  r = await call('HEAD', `/${c}/dir/a.txt`);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-length'), String(data.length));
  assert.equal(r.headers.get('x-object-meta-color'), 'blue');
  assert.equal(r.headers.get('content-type'), 'text/plain');
  r = await call('GET', `/${c}/dir/a.txt`);
  assert.equal(r.status, 200);
  assert.equal(r.text, data.toString());
  r = await call('GET', `/${c}?format=json`);
  assert.equal(r.status, 200);
  assert.equal(r.json.length, 1);
  assert.equal(r.json[0].name, 'dir/a.txt');
  assert.equal(r.json[0].hash, md5);
  assert.equal(r.json[0].bytes, data.length);
  r = await call('HEAD', `/${c}`);
  assert.equal(r.status, 204);
  assert.equal(r.headers.get('x-container-object-count'), '1');
  assert.equal(r.headers.get('x-container-bytes-used'), String(data.length));
  r = await call('HEAD', '');
  assert.equal(r.status, 204);
  assert.ok(Number(r.headers.get('x-account-container-count')) >= 1);
  r = await call('DELETE', `/${c}`);
  assert.equal(r.status, 409);
  r = await call('DELETE', `/${c}/dir/a.txt`);
  assert.equal(r.status, 204);
  r = await call('GET', `/${c}/dir/a.txt`);
  assert.equal(r.status, 404);
  r = await call('DELETE', `/${c}`);
  assert.equal(r.status, 204);
  r = await call('HEAD', `/${c}`);
  assert.equal(r.status, 404);
});

test('listings: prefix, delimiter, marker, end_marker, limit, reverse in plain, json and xml', async () => {
  const c = uniqueName('l');
  assert.equal((await call('PUT', `/${c}`)).status, 201);
  const names = ['a', 'b/1', 'b/2', 'b/3/x', 'c', 'd/e'];
  for (const n of names) assert.equal((await call('PUT', `/${c}/${enc(n)}`, { body: n })).status, 201);
  let r = await call('GET', `/${c}`);
  assert.equal(r.text, names.join('\n') + '\n');
  r = await call('GET', `/${c}?delimiter=/`);
  assert.equal(r.text, 'a\nb/\nc\nd/\n');
  r = await call('GET', `/${c}?delimiter=/&prefix=b/`);
  assert.equal(r.text, 'b/1\nb/2\nb/3/\n');
  r = await call('GET', `/${c}?marker=b/2&limit=2`);
  assert.equal(r.text, 'b/3/x\nc\n');
  r = await call('GET', `/${c}?end_marker=b/2`);
  assert.equal(r.text, 'a\nb/1\n');
  r = await call('GET', `/${c}?reverse=true&limit=3`);
  assert.equal(r.text, 'd/e\nc\nb/3/x\n');
  r = await call('GET', `/${c}?reverse=true&delimiter=/`);
  assert.equal(r.text, 'd/\nc\nb/\na\n');
  r = await call('GET', `/${c}?format=json&delimiter=/&prefix=d`);
  assert.deepEqual(r.json, [{ subdir: 'd/' }]);
  r = await call('GET', `/${c}?format=xml&limit=1`);
  assert.match(r.text, /^<\?xml version="1.0" encoding="UTF-8"\?>\n<container name="[^"]+"><object><name>a<\/name><hash>[0-9a-f]{32}<\/hash><bytes>1<\/bytes>/);
  r = await call('GET', `/${c}`, { headers: { Accept: 'application/json' } });
  assert.equal(r.json.length, names.length);
  r = await call('GET', `/${c}?prefix=zzz`);
  assert.equal(r.status, 204);
  r = await call('GET', `/${c}?limit=10001`);
  assert.equal(r.status, 412);
  r = await call('GET', `?format=json&prefix=${c}`);
  assert.equal(r.json.length, 1);
  assert.equal(r.json[0].count, names.length);
});
