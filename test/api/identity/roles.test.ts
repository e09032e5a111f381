import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useCloud } from '../../harness.ts';
import { fixtures } from './assignment-fixtures.ts';
import { adminApi, V3 } from './lib.ts';

const cloud = useCloud();
const admin = adminApi(cloud);
const fx = fixtures(cloud);

test('create, show, list, filter and update a global role', async () => {
  const created = await admin('POST', '/roles', { role: { name: 'observer-x', description: 'watches', color: 'blue' } });
  assert.equal(created.status, 201);
  const role = created.body.role;
  assert.match(role.id, /^[0-9a-f]{32}$/);
  assert.equal(role.domain_id, null);
  assert.equal(role.description, 'watches');
  assert.equal(role.color, 'blue', 'extra attributes are kept');
  assert.deepEqual(role.options, {});
  assert.match(role.links.self, new RegExp(`/identity/v3/roles/${role.id}$`));

  const shown = await admin('GET', `/roles/${role.id}`);
  assert.equal(shown.status, 200);
  assert.deepEqual(shown.body.role, role);
  const list = await admin('GET', '/roles');
  assert.deepEqual(list.body.roles.find((r: { id: string }) => r.id === role.id), role, 'the listed role equals the created one');
  assert.ok(list.body.roles.some((r: { name: string }) => r.name === 'admin'));
  assert.equal(list.body.links.next, null);
  const byName = await admin('GET', '/roles?name=observer-x');
  assert.deepEqual(byName.body.roles.map((r: { id: string }) => r.id), [role.id]);

  const plain = await admin('POST', '/roles', { role: { name: 'plain-x' } });
  assert.equal(plain.body.role.description, null);

  const updated = await admin('PATCH', `/roles/${role.id}`, { role: { name: 'observer-y', description: null } });
  assert.equal(updated.status, 200);
  assert.equal(updated.body.role.name, 'observer-y');
  assert.equal(updated.body.role.description, null);
  assert.equal(updated.body.role.color, 'blue');
  assert.equal((await admin('GET', `/roles/${role.id}`)).body.role.name, 'observer-y');

  const dup = await admin('POST', '/roles', { role: { name: 'observer-y' } });
  assert.equal(dup.status, 409);
  assert.equal(dup.body.error.code, 409);
  assert.equal((await admin('PATCH', `/roles/${plain.body.role.id}`, { role: { name: 'observer-y' } })).status, 409);
  assert.equal((await admin('PATCH', `/roles/${role.id}`, { role: { domain_id: 'default' } })).status, 400);
  assert.equal((await admin('PATCH', `/roles/${role.id}`, { role: {} })).status, 400);
  assert.equal((await admin('DELETE', `/roles/${plain.body.role.id}`)).status, 204);
  assert.equal((await admin('GET', `/roles/${plain.body.role.id}`)).status, 404);
});

test('bad role bodies get 400, missing roles 404', async () => {
  for (const body of [{}, { role: {} }, { role: { name: '' } }, { role: { name: '   ' } }, { role: { name: 'x', options: { nope: true } } },
    { role: { name: 'x', options: { immutable: 'yes' } } }, { role: { name: 'x'.repeat(256) } }, { role: { name: 'x' }, other: 1 }]) {
    const r = await admin('POST', '/roles', body);
    assert.equal(r.status, 400, JSON.stringify(body));
    assert.equal(r.body.error.code, 400);
  }
  const gone = await admin('GET', '/roles/nope');
  assert.equal(gone.status, 404);
  assert.equal(gone.body.error.message, 'Could not find role: nope.');
  assert.equal((await admin('PATCH', '/roles/nope', { role: { name: 'n' } })).status, 404);
  assert.equal((await admin('DELETE', '/roles/nope')).status, 404);
});

test('domain-specific roles: listed by domain only, unique per domain', async () => {
  const d1 = await fx.domain();
  const d2 = await fx.domain();
  const r1 = await admin('POST', '/roles', { role: { name: 'dom-role', domain_id: d1 } });
  assert.equal(r1.status, 201);
  assert.equal(r1.body.role.domain_id, d1);
  assert.equal((await admin('POST', '/roles', { role: { name: 'dom-role', domain_id: d2 } })).status, 201);
  assert.equal((await admin('POST', '/roles', { role: { name: 'dom-role', domain_id: d1 } })).status, 409);
  assert.equal((await admin('POST', '/roles', { role: { name: 'dom-role' } })).status, 201, 'a global role may share the name');
  assert.equal((await admin('POST', '/roles', { role: { name: 'dom-role', domain_id: 'no-such-domain' } })).status, 404);

  const inD1 = await admin('GET', `/roles?domain_id=${d1}`);
  assert.deepEqual(inD1.body.roles, [r1.body.role]);
  const global = await admin('GET', '/roles');
  assert.ok(!global.body.roles.some((r: { id: string }) => r.id === r1.body.role.id), 'domain roles are not in the global list');
  assert.equal((await admin('DELETE', `/roles/${r1.body.role.id}`)).status, 204);
  assert.deepEqual((await admin('GET', `/roles?domain_id=${d1}`)).body.roles, []);
});

test('an immutable role cannot be changed or deleted until made mutable', async () => {
  const role = await fx.role({ options: { immutable: true } });
  assert.deepEqual((await admin('GET', `/roles/${role.id}`)).body.role.options, { immutable: true });
  const patch = await admin('PATCH', `/roles/${role.id}`, { role: { name: 'renamed' } });
  assert.equal(patch.status, 403);
  assert.equal((await admin('PATCH', `/roles/${role.id}`, { role: { name: 'renamed', options: { immutable: false } } })).status, 403);
  assert.equal((await admin('DELETE', `/roles/${role.id}`)).status, 403);
  const off = await admin('PATCH', `/roles/${role.id}`, { role: { options: { immutable: false } } });
  assert.equal(off.status, 200);
  assert.deepEqual(off.body.role.options, { immutable: false });
  const cleared = await admin('PATCH', `/roles/${role.id}`, { role: { options: { immutable: null } } });
  assert.deepEqual(cleared.body.role.options, {});
  assert.equal((await admin('DELETE', `/roles/${role.id}`)).status, 204);
});

test('only the admin writes roles; a member cannot even list them', async () => {
  const project = await fx.project();
  const u = await fx.user();
  await cloud.server.database.db.insertInto('identity_assignments')
    .values({ type: 'UserProject', actor_id: u.id, target_id: project, role_id: await fx.roleId('member'), inherited: 0 }).execute();
  const token = await fx.login(u, 'default', { project });
  const role = await fx.role();
  for (const [method, path, body] of [
    ['POST', '/roles', { role: { name: 'sneaky' } }], ['GET', '/roles'], ['PATCH', `/roles/${role.id}`, { role: { name: 'x' } }],
    ['DELETE', `/roles/${role.id}`], ['PUT', `/roles/${role.id}/implies/${await fx.roleId('reader')}`],
  ] as const) {
    const r = await cloud.call(method, `${V3}${path}`, { token, body });
    assert.equal(r.status, 403, `${method} ${path}`);
    assert.equal(r.body.error.code, 403);
  }
  // A missing role is not revealed to those who may not read roles.
  assert.equal((await cloud.call('GET', `${V3}/roles/nope`, { token })).status, 403);
});

test('implied roles: create, check, show, list, all inferences, delete', async () => {
  const [a, b, c] = [await fx.role(), await fx.role(), await fx.role()];
  const put = await admin('PUT', `/roles/${a.id}/implies/${b.id}`);
  assert.equal(put.status, 201);
  assert.equal(put.body.role_inference.prior_role.id, a.id);
  assert.equal(put.body.role_inference.prior_role.name, a.name);
  assert.match(put.body.role_inference.prior_role.links.self, new RegExp(`/v3/roles/${a.id}$`));
  assert.deepEqual(Object.keys(put.body.role_inference.implies).sort(), ['id', 'links', 'name']);
  assert.equal(put.body.role_inference.implies.id, b.id);
  assert.match(put.body.links.self, new RegExp(`/v3/roles/${a.id}/implies/${b.id}$`));
  assert.equal((await admin('PUT', `/roles/${a.id}/implies/${b.id}`)).status, 409);
  assert.equal((await admin('PUT', `/roles/${a.id}/implies/${c.id}`)).status, 201);
  assert.equal((await admin('PUT', `/roles/${c.id}/implies/${b.id}`)).status, 201);

  const head = await admin('HEAD', `/roles/${a.id}/implies/${b.id}`);
  assert.equal(head.status, 204);
  const shown = await admin('GET', `/roles/${a.id}/implies/${b.id}`);
  assert.equal(shown.status, 200);
  assert.deepEqual(shown.body, put.body);
  const list = await admin('GET', `/roles/${a.id}/implies`);
  assert.equal(list.status, 200);
  assert.deepEqual(list.body.role_inference.implies.map((r: { id: string }) => r.id).sort(), [b.id, c.id].sort());
  const all = await admin('GET', '/role_inferences');
  const mine = all.body.role_inferences.find((r: { prior_role: { id: string } }) => r.prior_role.id === a.id);
  assert.equal(mine.implies.length, 2);
  const defaults = all.body.role_inferences.find((r: { prior_role: { name: string } }) => r.prior_role.name === 'admin');
  assert.deepEqual(defaults.implies.map((r: { name: string }) => r.name), ['member']);

  assert.equal((await admin('DELETE', `/roles/${a.id}/implies/${b.id}`)).status, 204);
  assert.equal((await admin('GET', `/roles/${a.id}/implies/${b.id}`)).status, 404);
  assert.equal((await admin('HEAD', `/roles/${a.id}/implies/${b.id}`)).status, 404);
  assert.equal((await admin('DELETE', `/roles/${a.id}/implies/${b.id}`)).status, 404);
  assert.equal((await admin('PUT', `/roles/${a.id}/implies/nope`)).status, 404);
  assert.equal((await admin('GET', `/roles/nope/implies`)).status, 404);
});

test('implied roles: domain roles, prohibited admin, cycles', async () => {
  const d = await fx.domain();
  const d2 = await fx.domain();
  const global = await fx.role();
  const dr1 = await fx.role({ domain_id: d });
  const dr2 = await fx.role({ domain_id: d });
  const other = await fx.role({ domain_id: d2 });
  assert.equal((await admin('PUT', `/roles/${dr1.id}/implies/${dr2.id}`)).status, 201);
  assert.equal((await admin('PUT', `/roles/${dr1.id}/implies/${other.id}`)).status, 201, 'across domains is allowed');
  assert.equal((await admin('PUT', `/roles/${dr1.id}/implies/${global.id}`)).status, 201);
  const bad = await admin('PUT', `/roles/${global.id}/implies/${dr1.id}`);
  assert.equal(bad.status, 403, 'a global role cannot imply a domain role');
  assert.equal((await admin('PUT', `/roles/${global.id}/implies/${await fx.roleId('admin')}`)).status, 403);
  const x = await fx.role();
  const y = await fx.role();
  assert.equal((await admin('PUT', `/roles/${x.id}/implies/${y.id}`)).status, 201);
  assert.equal((await admin('PUT', `/roles/${y.id}/implies/${x.id}`)).status, 403, 'a cycle is refused');
  assert.equal((await admin('PUT', `/roles/${x.id}/implies/${x.id}`)).status, 403);
});

test('tokens carry implied roles; deleting a role revokes the tokens that carry it and drops its grants and rules', async () => {
  const project = await fx.project();
  const u = await fx.user();
  const prior = await fx.role();
  const implied = await fx.role();
  assert.equal((await admin('PUT', `/roles/${prior.id}/implies/${implied.id}`)).status, 201);
  assert.equal((await admin('PUT', `/projects/${project}/users/${u.id}/roles/${prior.id}`)).status, 204);
  const token = await fx.login(u, 'default', { project });
  const body = (await cloud.call('GET', `${V3}/auth/tokens`, { token: cloud.adminToken, headers: { 'X-Subject-Token': token } })).body;
  assert.deepEqual(body.token.roles.map((r: { id: string }) => r.id).sort(), [prior.id, implied.id].sort());

  assert.equal((await admin('DELETE', `/roles/${implied.id}`)).status, 204);
  assert.equal(await fx.validate(token), 404, 'a token carrying the deleted role no longer validates');
  assert.equal((await admin('GET', `/roles/${prior.id}/implies`)).body.role_inference.implies.length, 0);

  const again = await fx.login(u, 'default', { project });
  assert.equal(await fx.validate(again), 200);
  assert.equal((await admin('DELETE', `/roles/${prior.id}`)).status, 204);
  assert.equal(await fx.validate(again), 404);
  const left = await cloud.server.database.db.selectFrom('identity_assignments').select('role_id').where('role_id', '=', prior.id).execute();
  assert.equal(left.length, 0);
  assert.equal((await admin('GET', `/role_assignments?user.id=${u.id}`)).body.role_assignments.length, 0);
});

test('removing an inference rule revokes the tokens that got roles through it', async () => {
  const project = await fx.project();
  const u = await fx.user();
  const prior = await fx.role();
  const implied = await fx.role();
  await admin('PUT', `/roles/${prior.id}/implies/${implied.id}`);
  await admin('PUT', `/projects/${project}/users/${u.id}/roles/${prior.id}`);
  const token = await fx.login(u, 'default', { project });
  assert.equal(await fx.validate(token), 200);
  assert.equal((await admin('DELETE', `/roles/${prior.id}/implies/${implied.id}`)).status, 204);
  assert.equal(await fx.validate(token), 404);
});
