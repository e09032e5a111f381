import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useCloud } from '../../harness.ts';

const cloud = useCloud();

test('version discovery at /identity and /identity/v3', async () => {
  const all = await cloud.call('GET', '/identity');
  assert.equal(all.status, 300);
  assert.equal(all.body.versions.values[0].id, 'v3.14');
  const v3 = await cloud.call('GET', '/identity/v3');
  assert.equal(v3.status, 200);
  assert.match(v3.body.version.links[0].href, /\/identity\/v3\/$/);
  assert.match(v3.headers.get('x-openstack-request-id') ?? '', /^req-[0-9a-f-]{36}$/);
});

test('password token scoped to the admin project carries roles and the catalog', async () => {
  const r = await cloud.call('GET', '/identity/v3/auth/tokens', { token: cloud.adminToken, headers: { 'X-Subject-Token': cloud.adminToken } });
  assert.equal(r.status, 200);
  const t = r.body.token;
  assert.equal(t.user.name, 'admin');
  assert.equal(t.project.name, 'admin');
  assert.deepEqual(t.roles.map((x: { name: string }) => x.name).sort(), ['admin', 'member', 'reader']);
  assert.ok(t.catalog.some((s: { type: string }) => s.type === 'identity'));
  const nocat = await cloud.call('GET', '/identity/v3/auth/tokens?nocatalog', { token: cloud.adminToken, headers: { 'X-Subject-Token': cloud.adminToken } });
  assert.equal(nocat.body.token.catalog, undefined);
});

test('wrong password and unknown user fail alike, without naming the user', async () => {
  for (const name of ['admin', 'nobody']) {
    const r = await cloud.call('POST', '/identity/v3/auth/tokens', {
      body: { auth: { identity: { methods: ['password'], password: { user: { name, domain: { id: 'default' }, password: 'wrong' } } } } },
    });
    assert.equal(r.status, 401);
    assert.equal(r.body.error.code, 401);
    assert.doesNotMatch(JSON.stringify(r.body), /nobody|wrong/);
  }
});

test('rescope with a token keeps the audit chain; revocation invalidates it', async () => {
  const unscoped = await cloud.login('admin', cloud.adminPassword);
  const r = await cloud.call('POST', '/identity/v3/auth/tokens', {
    body: { auth: { identity: { methods: ['token'], token: { id: unscoped } }, scope: { domain: { id: 'default' } } } },
  });
  assert.equal(r.status, 401, 'admin has no role on the domain');
  const sys = await cloud.call('POST', '/identity/v3/auth/tokens', {
    body: { auth: { identity: { methods: ['token'], token: { id: unscoped } }, scope: { system: { all: true } } } },
  });
  assert.equal(sys.status, 201);
  assert.deepEqual(sys.body.token.system, { all: true });
  const parentAudit = (await cloud.call('GET', '/identity/v3/auth/tokens', { token: cloud.adminToken, headers: { 'X-Subject-Token': unscoped } })).body.token.audit_ids[0];
  assert.equal(sys.body.token.audit_ids[1], parentAudit);
  const del = await cloud.call('DELETE', '/identity/v3/auth/tokens', { token: cloud.adminToken, headers: { 'X-Subject-Token': unscoped } });
  assert.equal(del.status, 204);
  const gone = await cloud.call('GET', '/identity/v3/auth/tokens', { token: cloud.adminToken, headers: { 'X-Subject-Token': unscoped } });
  assert.equal(gone.status, 404);
});

test('malformed bodies get Keystone errors, never a 500', async () => {
  const bad = await cloud.call('POST', '/identity/v3/auth/tokens', { raw: '{not json', headers: { 'Content-Type': 'application/json' } });
  assert.equal(bad.status, 400);
  assert.equal(bad.body.error.code, 400);
  for (const body of [{}, { auth: {} }, { auth: { identity: { methods: 'password' } } }, { auth: { identity: { methods: ['password'] } } }]) {
    const r = await cloud.call('POST', '/identity/v3/auth/tokens', { body });
    assert.equal(r.status, 400, JSON.stringify(body));
  }
  const noToken = await cloud.call('GET', '/identity/v3/domains');
  assert.equal(noToken.status, 401);
  assert.match(noToken.headers.get('www-authenticate') ?? '', /^Keystone uri=/);
  const garbage = await cloud.call('GET', '/identity/v3/domains', { token: 'garbage' });
  assert.equal(garbage.status, 401);
});

test('healthz and metrics', async () => {
  assert.equal((await cloud.call('GET', '/healthz')).status, 200);
  const m = await cloud.call('GET', '/metrics');
  assert.match(m.body, /stratus_http_requests_total\{method="POST",route="\/identity\/v3\/auth\/tokens",status="201"\} \d+/);
  assert.match(m.body, /stratus_http_request_duration_seconds_bucket/);
});
