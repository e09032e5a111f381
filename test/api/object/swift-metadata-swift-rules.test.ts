// Swift's metadata rules that Tempest's object tests check (tempest.api.object_storage):
// an object keeps a metadata item with an empty value (PUT, POST, COPY; only
// X-Remove-Object-Meta-* removes), a copy's answer carries the new object's
// metadata (Swift's copy middleware), and an underscore in a metadata header's
// name is a hyphen (Swift's WSGI server).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tenant, uniqueName, useCloud, type Tenant } from '../../harness.ts';
import { swift } from './lib.ts';

let alice: Tenant;
let c: string;
const cloud = useCloud(async (cl) => {
  alice = await tenant(cl);
  c = uniqueName('meta');
  const r = await fetch(`${cl.url}/object/v1/AUTH_${alice.projectId}/${c}`, { method: 'PUT', headers: { 'X-Auth-Token': alice.token } });
  assert.equal(r.status, 201);
});
const call = swift(cloud, () => alice);

test('an object keeps an empty metadata value on PUT and POST; X-Remove-Object-Meta removes', async () => {
  assert.equal((await call('PUT', `/${c}/empty`, { body: 'x', headers: { 'X-Object-Meta-Test-Meta': '', 'X-Object-Meta-Other': 'v' } })).status, 201);
  let r = await call('GET', `/${c}/empty`);
  assert.equal(r.headers.get('x-object-meta-test-meta'), '');
  assert.equal(r.headers.get('x-object-meta-other'), 'v');
  assert.equal((await call('POST', `/${c}/empty`, { headers: { 'X-Object-Meta-Blank': '' } })).status, 202);
  r = await call('HEAD', `/${c}/empty`);
  assert.equal(r.headers.get('x-object-meta-blank'), '');
  assert.equal(r.headers.get('x-object-meta-other'), null, 'a POST replaces the metadata');
  assert.equal((await call('POST', `/${c}/empty`, { headers: { 'X-Remove-Object-Meta-Blank': 'x', 'X-Object-Meta-Kept': 'k' } })).status, 202);
  r = await call('HEAD', `/${c}/empty`);
  assert.equal(r.headers.get('x-object-meta-blank'), null);
  assert.equal(r.headers.get('x-object-meta-kept'), 'k');
});

test('a copy answers with the new object\'s metadata, the source\'s merged with the request\'s', async () => {
  assert.equal((await call('PUT', `/${c}/src`, { body: 'data', headers: { 'X-Object-Meta-Src': 'src_value' } })).status, 201);
  let r = await call('COPY', `/${c}/src`, { headers: { Destination: `${c}/dst`, 'X-Object-Meta-Test': 'value', 'X-Object-Meta-Blank': '' } });
  assert.equal(r.status, 201);
  assert.equal(r.headers.get('x-object-meta-test'), 'value');
  assert.equal(r.headers.get('x-object-meta-src'), 'src_value');
  assert.equal(r.headers.get('x-object-meta-blank'), '');
  assert.equal(r.headers.get('x-copied-from'), `${c}/src`);
  r = await call('PUT', `/${c}/dst2`, { headers: { 'X-Copy-From': `${c}/src`, 'X-Object-Meta-Test': 'put' } });
  assert.equal(r.status, 201);
  assert.equal(r.headers.get('x-object-meta-test'), 'put');
  assert.equal(r.headers.get('x-object-meta-src'), 'src_value');
  r = await call('GET', `/${c}/dst`);
  assert.equal(r.text, 'data');
  assert.equal(r.headers.get('x-object-meta-blank'), '');
});

test('an underscore in a metadata header name is a hyphen; an empty value still removes container metadata', async () => {
  const k = uniqueName('under');
  assert.equal((await call('PUT', `/${k}`, { headers: { 'X-Container-Meta-test_container_meta': 'Meta1' } })).status, 201);
  let r = await call('HEAD', `/${k}`);
  assert.equal(r.headers.get('x-container-meta-test-container-meta'), 'Meta1');
  assert.equal((await call('POST', `/${k}`, { headers: { 'X-Container-Meta-Test-Container-Meta': '' } })).status, 204);
  r = await call('HEAD', `/${k}`);
  assert.equal(r.headers.get('x-container-meta-test-container-meta'), null);
  assert.equal((await call('PUT', `/${c}/under`, { body: 'x', headers: { 'X-Object-Meta-a_b': '1' } })).status, 201);
  assert.equal((await call('HEAD', `/${c}/under`)).headers.get('x-object-meta-a-b'), '1');
});
