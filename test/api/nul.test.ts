// A NUL character in a request is every service's own 400, on either database
// (PostgreSQL's text cannot hold one, so it must never reach a query): one
// refusal in src/http, rendered in each service's error body.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tenant, useCloud, type Reply, type Tenant } from '../harness.ts';
import { assertFault } from './volume/lib.ts';
import { assertNeutronError } from './network/lib.ts';

let alice: Tenant;
const cloud = useCloud(async (c) => { alice = await tenant(c); });
const NUL = /a NUL character is not allowed/;

const as = (method: string, path: string, body?: unknown, headers?: Record<string, string>) =>
  cloud.call(method, path, { token: alice.token, body, headers });

function assertGlance(r: Reply): void {
  assert.equal(r.status, 400, JSON.stringify(r.body));
  assert.deepEqual(r.body, { message: r.body.message, code: '400 Bad Request', title: 'Bad Request' });
  assert.match(r.body.message, NUL);
}

function assertKeystone(r: Reply): void {
  assert.equal(r.status, 400, JSON.stringify(r.body));
  assert.equal(r.body.error.code, 400);
  assert.equal(r.body.error.title, 'Bad Request');
  assert.match(r.body.error.message, NUL);
}

test('network: a NUL in a name, a key, a query or a path is Neutron\'s 400; nothing stored', async () => {
  assertNeutronError(await as('POST', '/network/v2.0/networks', { network: { name: 'a\u0000b' } }), 400, 'HTTPBadRequest', NUL);
  assertNeutronError(await as('POST', '/network/v2.0/networks', { network: { ['k\u0000']: 'v' } }), 400, 'HTTPBadRequest', NUL);
  assertNeutronError(await as('GET', '/network/v2.0/networks?name=a%00b'), 400, 'HTTPBadRequest', NUL);
  const net = (await as('POST', '/network/v2.0/networks', { network: { name: 'nul-ok' } })).body.network;
  assertNeutronError(await as('PUT', `/network/v2.0/networks/${net.id}`, { network: { name: 'x\u0000' } }), 400, 'HTTPBadRequest', NUL);
  assert.equal((await as('GET', `/network/v2.0/networks/${net.id}`)).body.network.name, 'nul-ok');
  assert.equal((await as('DELETE', `/network/v2.0/networks/${net.id}`)).status, 204);
});

test('volume: a NUL in a name or metadata is Cinder\'s badRequest', async () => {
  const base = `/volume/v3/${alice.projectId}`;
  assertFault(await as('POST', `${base}/volumes`, { volume: { size: 1, name: 'a\u0000b' } }), 400, 'badRequest', NUL);
  assertFault(await as('POST', `${base}/volumes`, { volume: { size: 1, metadata: { k: 'v\u0000' } } }), 400, 'badRequest', NUL);
  assertFault(await as('GET', `${base}/volumes?name=%00`), 400, 'badRequest', NUL);
});

test('image: a NUL in a name, a property or a JSON patch is Glance\'s 400', async () => {
  assertGlance(await as('POST', '/image/v2/images', { name: 'a\u0000b' }));
  assertGlance(await as('POST', '/image/v2/images', { ['k\u0000']: 'v' }));
  assertGlance(await as('GET', '/image/v2/images?name=%00'));
  const img = (await as('POST', '/image/v2/images', { name: 'nul-ok' })).body;
  const patch = await cloud.call('PATCH', `/image/v2/images/${img.id}`, {
    token: alice.token, raw: JSON.stringify([{ op: 'replace', path: '/name', value: 'x\u0000' }]),
    headers: { 'Content-Type': 'application/openstack-images-v2.1-json-patch' },
  });
  assertGlance(patch);
  assert.equal((await as('GET', `/image/v2/images/${img.id}`)).body.name, 'nul-ok');
  assert.equal((await as('DELETE', `/image/v2/images/${img.id}`)).status, 204);
});

test('compute: a NUL in a server name or its metadata is Nova\'s badRequest', async () => {
  const server = (name: string, metadata: Record<string, string> = {}) =>
    as('POST', '/compute/v2.1/servers', { server: { name, flavorRef: '1', imageRef: '00000000-0000-4000-8000-000000000000', networks: 'none', metadata } }, { 'OpenStack-API-Version': 'compute 2.37' });
  for (const r of [await server('a\u0000b'), await server('ok', { k: 'v\u0000' }), await server('ok', { ['k\u0000']: 'v' }),
    await as('GET', '/compute/v2.1/servers?name=%00'), await as('GET', '/compute/v2.1/servers/00000000-0000-4000-8000-000000000000%00')]) {
    assertFault(r, 400, 'badRequest', NUL);
  }
});

test('identity: a NUL in a project name is Keystone\'s 400', async () => {
  const r = await cloud.call('POST', '/identity/v3/projects', { token: cloud.adminToken, body: { project: { name: 'a\u0000b' } } });
  assertKeystone(r);
});
