import { test } from 'node:test';
import assert from 'node:assert/strict';
import { uniqueName, useCloud } from '../../harness.ts';
import { fixtures } from './delegation-fixtures.ts';
import { createResource, mustCreateResource, V3 } from './lib.ts';

let admin: string;
const cloud = useCloud(async (cloud) => { admin = cloud.adminToken; });

const createProject = (body: Record<string, unknown>, token?: string) => createResource(cloud, 'project', body, token);
const mustCreate = (body?: Record<string, unknown>) => mustCreateResource(cloud, 'project', body);
async function createDomain(enabled = true) {
  const r = await cloud.call('POST', `${V3}/domains`, { token: admin, body: { domain: { name: uniqueName('d'), enabled } } });
  assert.equal(r.status, 201);
  return r.body.domain;
}

/** A user with the member role on the project (written straight to the database), and their project token. */
const memberToken = (projectId: string) => fixtures(cloud).userOn(projectId);

test('create, show, list, update and delete a project with Keystone fields', async () => {
  const p = await mustCreate({ description: 'desc', enabled: false, color: 'blue' });
  assert.equal(p.domain_id, 'default');
  assert.equal(p.parent_id, 'default', 'a top-level project names its domain as parent');
  assert.equal(p.is_domain, false);
  assert.equal(p.enabled, false);
  assert.equal(p.description, 'desc');
  assert.equal(p.color, 'blue', 'extra attributes are kept');
  assert.deepEqual(p.tags, []);
  assert.deepEqual(p.options, {});
  assert.match(p.links.self, new RegExp(`/identity/v3/projects/${p.id}$`));

  const shown = await cloud.call('GET', `${V3}/projects/${p.id}`, { token: admin });
  assert.equal(shown.status, 200);
  assert.deepEqual(shown.body.project, p);
  const listed = await cloud.call('GET', `${V3}/projects`, { token: admin });
  assert.equal(listed.status, 200);
  assert.deepEqual(listed.body.projects.find((x: { id: string }) => x.id === p.id), p, 'show equals list');
  assert.ok(listed.body.links.self.endsWith('/identity/v3/projects'));

  const upd = await cloud.call('PATCH', `${V3}/projects/${p.id}`, { token: admin, body: { project: { name: 'renamed-' + p.name, enabled: true, color: null, size: 3 } } });
  assert.equal(upd.status, 200);
  assert.equal(upd.body.project.name, 'renamed-' + p.name);
  assert.equal(upd.body.project.enabled, true);
  assert.equal(upd.body.project.description, 'desc');
  assert.equal(upd.body.project.size, 3);
  assert.equal((await cloud.call('GET', `${V3}/projects/${p.id}`, { token: admin })).body.project.name, 'renamed-' + p.name);

  assert.equal((await cloud.call('DELETE', `${V3}/projects/${p.id}`, { token: admin })).status, 204);
  const gone = await cloud.call('GET', `${V3}/projects/${p.id}`, { token: admin });
  assert.equal(gone.status, 404);
  assert.equal(gone.body.error.message, `Could not find project: ${p.id}.`);
  assert.equal((await cloud.call('DELETE', `${V3}/projects/${p.id}`, { token: admin })).status, 404);
});

test('bad input: names, domains, parents, duplicates, ids', async () => {
  for (const name of ['', 'a'.repeat(65), '   ']) {
    const r = await createProject({ name });
    assert.equal(r.status, 400, JSON.stringify(name));
    assert.equal(r.body.error.code, 400);
  }
  assert.equal((await cloud.call('POST', `${V3}/projects`, { token: admin, body: { project: {} } })).status, 400);
  assert.equal((await cloud.call('POST', `${V3}/projects`, { token: admin, body: {} })).status, 400);
  assert.equal((await createProject({ enabled: 'yes' })).status, 400);
  const noDomain = await createProject({ domain_id: 'nope' });
  assert.equal(noDomain.status, 400, 'Keystone turns a missing domain into a validation error');
  assert.match(noDomain.body.error.message, /Could not find domain: nope/);
  assert.equal((await createProject({ parent_id: 'nope' })).status, 400);

  const p = await mustCreate();
  const dup = await createProject({ name: p.name });
  assert.equal(dup.status, 409);
  const other = await createDomain();
  assert.equal((await createProject({ name: p.name, domain_id: other.id })).status, 201, 'names are unique per domain');
  assert.equal((await createProject({ parent_id: p.id, domain_id: other.id })).status, 400, 'parent in another domain');

  const q = await mustCreate();
  assert.equal((await cloud.call('PATCH', `${V3}/projects/${q.id}`, { token: admin, body: { project: { name: p.name } } })).status, 409);
  assert.equal((await cloud.call('PATCH', `${V3}/projects/${q.id}`, { token: admin, body: { project: {} } })).status, 400);
  assert.equal((await cloud.call('PATCH', `${V3}/projects/${q.id}`, { token: admin, body: { project: { domain_id: other.id } } })).status, 400);
  assert.equal((await cloud.call('PATCH', `${V3}/projects/${q.id}`, { token: admin, body: { project: { id: 'other' } } })).status, 400);
  assert.equal((await cloud.call('PATCH', `${V3}/projects/${q.id}`, { token: admin, body: { project: { parent_id: p.id } } })).status, 403);
  assert.equal((await cloud.call('PATCH', `${V3}/projects/${q.id}`, { token: admin, body: { project: { parent_id: 'default' } } })).status, 200, 'the same parent is no change');
  assert.equal((await cloud.call('PATCH', `${V3}/projects/nope`, { token: admin, body: { project: { name: 'x' } } })).status, 404);
});

test('hierarchy: parents, subtree, leaf-only delete, enabled branches, depth', async () => {
  const dom = await createDomain();
  const a = await mustCreate({ domain_id: dom.id });
  assert.equal(a.parent_id, dom.id);
  const b = await mustCreate({ parent_id: a.id });
  assert.equal(b.domain_id, dom.id, 'the domain follows the parent');
  assert.equal(b.parent_id, a.id);
  const c = await mustCreate({ parent_id: b.id, domain_id: dom.id });
  const d = await mustCreate({ parent_id: b.id });

  const byParent = await cloud.call('GET', `${V3}/projects?parent_id=${b.id}`, { token: admin });
  assert.deepEqual(byParent.body.projects.map((p: { id: string }) => p.id).sort(), [c.id, d.id].sort());
  const top = await cloud.call('GET', `${V3}/projects?parent_id=${dom.id}`, { token: admin });
  assert.deepEqual(top.body.projects.map((p: { id: string }) => p.id), [a.id]);

  const ids = await cloud.call('GET', `${V3}/projects/${c.id}?parents_as_ids`, { token: admin });
  assert.deepEqual(ids.body.project.parents, { [b.id]: { [a.id]: { [dom.id]: null } } });
  const sub = await cloud.call('GET', `${V3}/projects/${a.id}?subtree_as_ids`, { token: admin });
  assert.deepEqual(sub.body.project.subtree, { [b.id]: { [c.id]: null, [d.id]: null } });
  const leaf = await cloud.call('GET', `${V3}/projects/${c.id}?subtree_as_ids=true`, { token: admin });
  assert.equal(leaf.body.project.subtree, null);
  assert.equal((await cloud.call('GET', `${V3}/projects/${c.id}?parents_as_ids&parents_as_list`, { token: admin })).status, 400);

  // The *_as_list forms show only projects the caller holds a role on.
  const m = await memberToken(c.id);
  const db = cloud.server.database.db;
  const reader = await db.selectFrom('identity_roles').select('id').where('name', '=', 'admin').executeTakeFirstOrThrow();
  const adminUser = await db.selectFrom('identity_users').select('id').where('name', '=', 'admin').executeTakeFirstOrThrow();
  await db.insertInto('identity_assignments').values({ type: 'UserProject', actor_id: adminUser.id, target_id: a.id, role_id: reader.id, inherited: 0 }).execute();
  const list = await cloud.call('GET', `${V3}/projects/${c.id}?parents_as_list`, { token: admin });
  assert.deepEqual(list.body.project.parents.map((p: { project: { id: string } }) => p.project.id), [a.id]);
  const subList = await cloud.call('GET', `${V3}/projects/${a.id}?subtree_as_list`, { token: admin });
  assert.deepEqual(subList.body.project.subtree, []);
  // A member may read their own project, not its siblings or parents.
  assert.equal((await cloud.call('GET', `${V3}/projects/${c.id}`, { token: m.token })).status, 200);
  assert.equal((await cloud.call('GET', `${V3}/projects/${d.id}`, { token: m.token })).status, 403);

  const notLeaf = await cloud.call('DELETE', `${V3}/projects/${b.id}`, { token: admin });
  assert.equal(notLeaf.status, 403);
  assert.equal((await cloud.call('PATCH', `${V3}/projects/${b.id}`, { token: admin, body: { project: { enabled: false } } })).status, 403, 'enabled children');
  for (const p of [c, d, b]) {
    assert.equal((await cloud.call('PATCH', `${V3}/projects/${p.id}`, { token: admin, body: { project: { enabled: false } } })).status, 200);
  }
  const under = await createProject({ parent_id: b.id });
  assert.equal(under.status, 400, 'no project under a disabled parent');
  assert.match(under.body.error.message, /disabled project/);
  assert.equal((await cloud.call('PATCH', `${V3}/projects/${c.id}`, { token: admin, body: { project: { enabled: true } } })).status, 403, 'disabled parent');
  assert.equal((await cloud.call('PATCH', `${V3}/projects/${b.id}`, { token: admin, body: { project: { enabled: true } } })).status, 200);
  for (const p of [c, d, b]) assert.equal((await cloud.call('DELETE', `${V3}/projects/${p.id}`, { token: admin })).status, 204);

  // Five levels below the domain at most.
  let parent = a.id;
  for (let i = 2; i <= 5; i++) parent = (await mustCreate({ parent_id: parent })).id;
  const tooDeep = await createProject({ parent_id: parent });
  assert.equal(tooDeep.status, 403);
  assert.match(tooDeep.body.error.message, /Max hierarchy depth/);

  const off = await createDomain(false);
  assert.equal((await createProject({ domain_id: off.id })).status, 400, 'no project in a disabled domain');
});

test('tags: in the body, the tag routes and the list filters', async () => {
  const p = await mustCreate({ tags: ['a', 'b', 'c'] });
  assert.deepEqual(p.tags.sort(), ['a', 'b', 'c']);
  assert.equal((await createProject({ tags: ['x', 'x'] })).status, 400, 'duplicate tags');
  assert.equal((await createProject({ tags: ['a/b'] })).status, 400);
  assert.equal((await createProject({ tags: ['a,b'] })).status, 400);
  assert.equal((await createProject({ tags: ['t'.repeat(256)] })).status, 400);
  assert.equal((await createProject({ tags: Array.from({ length: 81 }, (_, i) => `t${i}`) })).status, 400);

  const base = `${V3}/projects/${p.id}/tags`;
  assert.equal((await cloud.call('PUT', `${base}/new%20one`, { token: admin, raw: '{}', headers: { 'Content-Type': 'application/json' } })).status, 201);
  assert.equal((await cloud.call('GET', `${base}/new%20one`, { token: admin })).status, 204);
  assert.equal((await cloud.call('GET', `${base}/absent`, { token: admin })).status, 404);
  assert.equal((await cloud.call('PUT', `${base}/a,b`, { token: admin })).status, 400);
  const all = await cloud.call('GET', base, { token: admin });
  assert.equal(all.status, 200);
  assert.deepEqual(all.body.tags.sort(), ['a', 'b', 'c', 'new one']);

  const put = await cloud.call('PUT', base, { token: admin, body: { tags: ['x', 'y', 'z'] } });
  assert.equal(put.status, 200);
  assert.deepEqual(put.body.tags, ['x', 'y', 'z']);
  assert.equal((await cloud.call('PUT', base, { token: admin, body: { tags: ['x', 'x'] } })).status, 400);
  assert.equal((await cloud.call('PUT', base, { token: admin, body: {} })).status, 400);
  assert.equal((await cloud.call('DELETE', `${base}/x`, { token: admin })).status, 204);
  assert.equal((await cloud.call('DELETE', `${base}/x`, { token: admin })).status, 404);
  assert.deepEqual((await cloud.call('GET', `${V3}/projects/${p.id}`, { token: admin })).body.project.tags, ['y', 'z']);

  const q = await mustCreate({ tags: ['y'] });
  const ids = async (qs: string) => (await cloud.call('GET', `${V3}/projects?${qs}`, { token: admin })).body.projects
    .map((x: { id: string }) => x.id).filter((id: string) => id === p.id || id === q.id).sort();
  assert.deepEqual(await ids('tags=y,z'), [p.id]);
  assert.deepEqual(await ids('tags-any=z,y'), [p.id, q.id].sort());
  assert.deepEqual(await ids('not-tags=y,z'), [q.id]);
  assert.deepEqual(await ids('not-tags-any=z'), [q.id]);

  assert.equal((await cloud.call('DELETE', base, { token: admin })).status, 204);
  assert.deepEqual((await cloud.call('GET', base, { token: admin })).body.tags, []);
  assert.equal((await cloud.call('GET', `${V3}/projects/nope/tags`, { token: admin })).status, 404);
});

test('immutable projects refuse changes until made mutable', async () => {
  const p = await mustCreate({ options: { immutable: true } });
  assert.deepEqual(p.options, { immutable: true });
  assert.equal((await createProject({ options: { unknown: true } })).status, 400);
  assert.equal((await cloud.call('PATCH', `${V3}/projects/${p.id}`, { token: admin, body: { project: { name: 'x' + p.name } } })).status, 403);
  assert.equal((await cloud.call('PUT', `${V3}/projects/${p.id}/tags/t1`, { token: admin })).status, 403);
  assert.equal((await cloud.call('DELETE', `${V3}/projects/${p.id}`, { token: admin })).status, 403);
  const mutable = await cloud.call('PATCH', `${V3}/projects/${p.id}`, { token: admin, body: { project: { options: { immutable: false } } } });
  assert.equal(mutable.status, 200);
  assert.deepEqual(mutable.body.project.options, { immutable: false });
  assert.equal((await cloud.call('DELETE', `${V3}/projects/${p.id}`, { token: admin })).status, 204);
});

test('a project acting as a domain is a domain', async () => {
  const r = await createProject({ is_domain: true, domain_id: null });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  const p = r.body.project;
  assert.equal(p.is_domain, true);
  assert.equal(p.domain_id, null);
  assert.equal(p.parent_id, null);
  const asDomains = await cloud.call('GET', `${V3}/projects?is_domain=true`, { token: admin });
  assert.ok(asDomains.body.projects.some((x: { id: string }) => x.id === p.id));
  assert.ok(asDomains.body.projects.some((x: { id: string }) => x.id === 'default'));
  const regular = await cloud.call('GET', `${V3}/projects`, { token: admin });
  assert.ok(!regular.body.projects.some((x: { id: string }) => x.id === p.id), 'domains are not listed as projects by default');
  const domains = await cloud.call('GET', `${V3}/domains`, { token: admin });
  assert.ok(domains.body.domains.some((x: { id: string }) => x.id === p.id));
  assert.equal((await cloud.call('GET', `${V3}/projects/${p.id}`, { token: admin })).body.project.is_domain, true);
  assert.equal((await createProject({ is_domain: true, parent_id: 'default' })).status, 400);
  const child = await mustCreate({ domain_id: p.id });
  assert.equal(child.parent_id, p.id);
  assert.equal((await cloud.call('DELETE', `${V3}/projects/${p.id}`, { token: admin })).status, 403, 'enabled domain');
  assert.equal((await cloud.call('PATCH', `${V3}/projects/${p.id}`, { token: admin, body: { project: { enabled: false } } })).status, 200);
  assert.equal((await cloud.call('DELETE', `${V3}/projects/${p.id}`, { token: admin })).status, 204);
  assert.equal((await cloud.call('GET', `${V3}/domains/${p.id}`, { token: admin })).status, 404);
  assert.equal((await cloud.call('GET', `${V3}/projects/${child.id}`, { token: admin })).status, 404, 'its projects went with it');
});

test('non-admins are denied; disabling or deleting a project revokes its tokens', async () => {
  const p = await mustCreate();
  const m = await memberToken(p.id);
  assert.equal((await cloud.call('GET', `${V3}/projects`, { token: m.token })).status, 403);
  assert.equal((await createProject({}, m.token)).status, 403);
  assert.equal((await cloud.call('DELETE', `${V3}/projects/${p.id}`, { token: m.token })).status, 403);
  assert.equal((await cloud.call('PATCH', `${V3}/projects/${p.id}`, { token: m.token, body: { project: { name: 'mine' } } })).status, 403);
  // Members may tag their own project.
  assert.equal((await cloud.call('PUT', `${V3}/projects/${p.id}/tags/mine`, { token: m.token })).status, 201);
  assert.equal((await cloud.call('GET', `${V3}/projects/${p.id}/tags`, { token: m.token })).status, 200);

  assert.equal((await cloud.call('PATCH', `${V3}/projects/${p.id}`, { token: admin, body: { project: { enabled: false } } })).status, 200);
  assert.equal((await cloud.call('GET', `${V3}/projects/${p.id}`, { token: m.token })).status, 401, 'the project token is revoked');
  await cloud.call('PATCH', `${V3}/projects/${p.id}`, { token: admin, body: { project: { enabled: true } } });
  const fresh = await memberToken(p.id);
  assert.equal((await cloud.call('GET', `${V3}/projects/${p.id}`, { token: fresh.token })).status, 200);
  assert.equal((await cloud.call('DELETE', `${V3}/projects/${p.id}`, { token: admin })).status, 204);
  assert.equal((await cloud.call('GET', `${V3}/auth/projects`, { token: fresh.token })).status, 401, 'revoked by the delete');
  const db = cloud.server.database.db;
  assert.equal((await db.selectFrom('identity_assignments').select('role_id').where('target_id', '=', p.id).execute()).length, 0);
  assert.equal((await db.selectFrom('identity_project_tags').select('tag').where('project_id', '=', p.id).execute()).length, 0);
});

test('list filters: name, enabled, domain_id, and a domain-scoped caller sees its domain only', async () => {
  const dom = await createDomain();
  const p1 = await mustCreate({ domain_id: dom.id, enabled: false });
  const p2 = await mustCreate();
  const names = async (qs: string, token = admin) =>
    (await cloud.call('GET', `${V3}/projects?${qs}`, { token })).body.projects.map((x: { id: string }) => x.id);
  assert.deepEqual(await names(`name=${p1.name}`), [p1.id]);
  assert.ok((await names('enabled=false')).includes(p1.id));
  assert.ok(!(await names('enabled=false')).includes(p2.id));
  assert.deepEqual(await names(`domain_id=${dom.id}`), [p1.id]);
  assert.equal((await cloud.call('GET', `${V3}/projects?enabled=maybe`, { token: admin })).status, 400);

  // A domain reader (domain-scoped token) lists their domain's projects only, and may not create.
  const db = cloud.server.database.db;
  const u = await cloud.call('POST', `${V3}/users`, { token: admin, body: { user: { name: uniqueName('dreader'), domain_id: dom.id, password: 'pw-secret-1' } } });
  const role = await db.selectFrom('identity_roles').select('id').where('name', '=', 'reader').executeTakeFirstOrThrow();
  await db.insertInto('identity_assignments').values({ type: 'UserDomain', actor_id: u.body.user.id, target_id: dom.id, role_id: role.id, inherited: 0 }).execute();
  const tok = await cloud.call('POST', `${V3}/auth/tokens`, { body: { auth: {
    identity: { methods: ['password'], password: { user: { id: u.body.user.id, password: 'pw-secret-1' } } }, scope: { domain: { id: dom.id } } } } });
  assert.equal(tok.status, 201);
  const dt = tok.headers.get('x-subject-token')!;
  assert.deepEqual(await names('', dt), [p1.id]);
  assert.deepEqual(await names(`domain_id=default`, dt), []);
  assert.equal((await createProject({}, dt)).status, 403);
});
