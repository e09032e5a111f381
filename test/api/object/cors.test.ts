// CORS over HTTP: preflight OPTIONS against the container's allowed origins
// (Swift's strict mode: 401 for an origin or method it does not allow), and
// the Access-Control headers on actual answers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useCloud } from '../../harness.ts';
import { expectStatus, raw, swiftTenant, type Swift } from './middleware-lib.ts';

let s: Swift;
const cloud = useCloud(async (c) => {
  s = await swiftTenant(c);
  expectStatus(await s.call('PUT', 'cc', { headers: {
    'X-Container-Meta-Access-Control-Allow-Origin': 'http://a.example http://b.example',
    'X-Container-Meta-Access-Control-Max-Age': '600',
    'X-Container-Meta-Access-Control-Expose-Headers': 'X-Custom',
    'X-Container-Read': '.r:*',
  } }), 201);
  expectStatus(await s.call('PUT', 'cc/o', { body: 'data', headers: { 'X-Object-Meta-Color': 'red' } }), 201);
});

test('preflight: allowed origin and method, max age, requested headers; others 401', async () => {
  const ok = await raw(cloud, 'OPTIONS', `${s.account}/cc/o`, { headers: { Origin: 'http://a.example', 'Access-Control-Request-Method': 'PUT', 'Access-Control-Request-Headers': 'x-auth-token' } });
  expectStatus(ok, 200);
  assert.equal(ok.headers.get('access-control-allow-origin'), 'http://a.example');
  assert.equal(ok.headers.get('access-control-max-age'), '600');
  assert.match(ok.headers.get('access-control-allow-methods')!, /PUT/);
  assert.equal(ok.headers.get('access-control-allow-headers'), 'x-auth-token');
  expectStatus(await raw(cloud, 'OPTIONS', `${s.account}/cc/o`, { headers: { Origin: 'http://evil.example', 'Access-Control-Request-Method': 'GET' } }), 401);
  expectStatus(await raw(cloud, 'OPTIONS', `${s.account}/cc/o`, { headers: { Origin: 'http://a.example', 'Access-Control-Request-Method': 'TRACE' } }), 401);
  expectStatus(await raw(cloud, 'OPTIONS', `${s.account}/nocontainer/o`, { headers: { Origin: 'http://a.example', 'Access-Control-Request-Method': 'GET' } }), 401);
  const plain = await raw(cloud, 'OPTIONS', `${s.account}/cc`);
  expectStatus(plain, 200);
  assert.ok(plain.headers.get('allow'));
});

test('actual requests: allow-origin and expose-headers for allowed origins only', async () => {
  const r = await raw(cloud, 'GET', `${s.account}/cc/o`, { headers: { Origin: 'http://b.example' } });
  expectStatus(r, 200);
  assert.equal(r.headers.get('access-control-allow-origin'), 'http://b.example');
  const expose = r.headers.get('access-control-expose-headers')!;
  for (const h of ['etag', 'x-trans-id', 'x-object-meta-color', 'x-custom']) assert.match(expose, new RegExp(`\\b${h}\\b`));
  const none = await raw(cloud, 'GET', `${s.account}/cc/o`, { headers: { Origin: 'http://evil.example' } });
  expectStatus(none, 200);
  assert.equal(none.headers.get('access-control-allow-origin'), null);
  const missing = await raw(cloud, 'GET', `${s.account}/cc/nothing`, { headers: { Origin: 'http://a.example' } });
  expectStatus(missing, 404);
  assert.equal(missing.headers.get('access-control-allow-origin'), 'http://a.example');
});
