import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useCloud } from '../../harness.ts';
import { adminApi, projectUser, V3, type ProjectUser } from './lib.ts';

let member: ProjectUser;
const cloud = useCloud(async (cloud) => { member = await projectUser(cloud, 'member'); });
const admin = adminApi(cloud);

test('policies: create, list by type, update, delete; admin only', async () => {
  assert.equal((await admin('POST', '/policies', { policy: { blob: '{}' } })).status, 400);
  assert.equal((await admin('POST', '/policies', { policy: { type: 'x' } })).status, 400);
  assert.equal((await admin('POST', '/policies', { policy: { blob: 1, type: 'x' } })).status, 400);
  const p = await admin('POST', '/policies', { policy: { blob: '{"a": 1}', type: 'application/json', owner: 'ops' } });
  assert.equal(p.status, 201);
  const id = p.body.policy.id;
  assert.deepEqual({ blob: p.body.policy.blob, type: p.body.policy.type, owner: p.body.policy.owner }, { blob: '{"a": 1}', type: 'application/json', owner: 'ops' });
  await admin('POST', '/policies', { policy: { blob: 'b', type: 'text/plain' } });
  const byType = await admin('GET', '/policies?type=application/json');
  assert.deepEqual(byType.body.policies.map((x: { id: string }) => x.id), [id]);
  assert.equal((await admin('GET', '/policies')).body.policies.length, 2);

  const up = await admin('PATCH', `/policies/${id}`, { policy: { type: 'text/yaml' } });
  assert.equal(up.status, 200);
  assert.deepEqual({ blob: up.body.policy.blob, type: up.body.policy.type, owner: up.body.policy.owner }, { blob: '{"a": 1}', type: 'text/yaml', owner: 'ops' });
  assert.equal((await admin('GET', `/policies/${id}`)).body.policy.type, 'text/yaml');
  assert.equal((await admin('PATCH', `/policies/${id}`, { policy: {} })).status, 400);

  assert.equal((await cloud.call('GET', `${V3}/policies`, { token: member.token })).status, 403);
  assert.equal((await cloud.call('POST', `${V3}/policies`, { token: member.token, body: { policy: { blob: 'x', type: 'y' } } })).status, 403);

  assert.equal((await admin('DELETE', `/policies/${id}`)).status, 204);
  const gone = await admin('GET', `/policies/${id}`);
  assert.equal(gone.status, 404);
  assert.equal(gone.body.error.message, `Could not find policy: ${id}.`);
});

test('OAuth consumers: the secret is shown once; description updates; secret cannot be changed', async () => {
  const c = await admin('POST', '/OS-OAUTH1/consumers', { consumer: { description: 'first' } });
  assert.equal(c.status, 201);
  const { id, secret } = c.body.consumer;
  assert.match(secret, /^[0-9a-f]{32}$/);
  const shown = await admin('GET', `/OS-OAUTH1/consumers/${id}`);
  assert.equal(shown.status, 200);
  assert.equal(shown.body.consumer.secret, undefined);
  assert.deepEqual(shown.body.consumer, { id, description: 'first', links: c.body.consumer.links });
  const listed = await admin('GET', '/OS-OAUTH1/consumers');
  assert.ok(listed.body.consumers.some((x: { id: string }) => x.id === id));
  assert.doesNotMatch(JSON.stringify(listed.body), new RegExp(secret));

  const noBody = await admin('POST', '/OS-OAUTH1/consumers', { consumer: { description: null } });
  assert.equal(noBody.status, 201);
  assert.equal(noBody.body.consumer.description, null);

  const up = await admin('PATCH', `/OS-OAUTH1/consumers/${id}`, { consumer: { description: 'second' } });
  assert.equal(up.status, 200);
  assert.equal(up.body.consumer.description, 'second');
  assert.equal((await admin('GET', `/OS-OAUTH1/consumers/${id}`)).body.consumer.description, 'second');
  assert.equal((await admin('PATCH', `/OS-OAUTH1/consumers/${id}`, { consumer: { secret: 'mine' } })).status, 400);
  assert.equal((await admin('PATCH', `/OS-OAUTH1/consumers/${id}`, { consumer: { id: 'other' } })).status, 400);
  assert.equal((await admin('PATCH', `/OS-OAUTH1/consumers/${id}`, { consumer: {} })).status, 400);
  assert.equal((await cloud.call('GET', `${V3}/OS-OAUTH1/consumers`, { token: member.token })).status, 403);

  assert.equal((await admin('DELETE', `/OS-OAUTH1/consumers/${id}`)).status, 204);
  assert.equal((await admin('GET', `/OS-OAUTH1/consumers/${id}`)).status, 404);
  assert.equal((await admin('DELETE', `/OS-OAUTH1/consumers/${id}`)).status, 404);
});

test('OS-REVOKE events list revocations, filtered by since; admin only', async () => {
  const before = new Date().toISOString();
  const unscoped = await cloud.login('admin', cloud.adminPassword);
  const auditId = (await cloud.call('GET', `${V3}/auth/tokens`, { token: cloud.adminToken, headers: { 'X-Subject-Token': unscoped } })).body.token.audit_ids[0];
  assert.equal((await cloud.call('DELETE', `${V3}/auth/tokens`, { token: cloud.adminToken, headers: { 'X-Subject-Token': unscoped } })).status, 204);

  const r = await admin('GET', '/OS-REVOKE/events');
  assert.equal(r.status, 200);
  const ev = r.body.events.find((e: { audit_id?: string }) => e.audit_id === auditId);
  assert.ok(ev, 'the revoked token is listed by audit id');
  assert.match(ev.issued_before, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/);
  assert.match(ev.revoked_at, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/);
  assert.equal(r.body.links.next, null);

  assert.ok((await admin('GET', `/OS-REVOKE/events?since=${encodeURIComponent(before)}`)).body.events.some((e: { audit_id?: string }) => e.audit_id === auditId));
  const future = new Date(Date.now() + 3600_000).toISOString();
  assert.deepEqual((await admin('GET', `/OS-REVOKE/events?since=${encodeURIComponent(future)}`)).body.events, []);
  assert.equal((await admin('GET', '/OS-REVOKE/events?since=yesterday')).status, 400);
  assert.equal((await cloud.call('GET', `${V3}/OS-REVOKE/events`, { token: member.token })).status, 403);
});
