// A route outside its microversion range does not exist: the compute
// service's gate answers 404 before authentication and before the body is
// parsed or validated, as Nova's router does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useCloud } from '../../harness.ts';

const cloud = useCloud();
const FAKE = '00000000-0000-4000-8000-000000000000';

const put = (version: string, o: { token?: string; raw?: string }) => cloud.call('PUT', `/compute/v2.1/servers/${FAKE}/tags`, {
  token: o.token, raw: o.raw, headers: { 'OpenStack-API-Version': `compute ${version}`, 'Content-Type': 'application/json' },
});

test('below its range a route is 404, before auth and before body validation', async () => {
  for (const raw of ['{"tags": ', '{"tags": 7}', '{"tags": []}']) {
    const r = await put('2.25', { raw });
    assert.equal(r.status, 404, `${raw}: ${JSON.stringify(r.body)}`);
    assert.deepEqual(r.body, { itemNotFound: { code: 404, message: 'The resource could not be found.' } });
    assert.equal(r.headers.get('openstack-api-version'), 'compute 2.25');
  }
});

test('inside its range the same requests reach body parsing and auth', async () => {
  assert.equal((await put('2.26', { raw: '{"tags": ' })).status, 400);
  assert.equal((await put('2.26', { raw: '{"tags": []}' })).status, 401);
  const r = await put('2.26', { raw: '{"tags": []}', token: cloud.adminToken });
  assert.equal(r.status, 404);
  assert.match(r.body.itemNotFound.message, /^Instance .* could not be found\.$/);
});

test('above its range a route is 404 too (os-hosts ends at 2.42)', async () => {
  const at = (v: string, token?: string) => cloud.call('GET', '/compute/v2.1/os-hosts', { token, headers: { 'OpenStack-API-Version': `compute ${v}` } });
  assert.equal((await at('2.43')).status, 404);
  assert.equal((await at('2.43', cloud.adminToken)).status, 404);
  assert.equal((await at('2.42')).status, 401);
  assert.equal((await at('2.42', cloud.adminToken)).status, 200);
});
