import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useCloud } from '../../harness.ts';
import { unifiedLimits } from '../../../src/identity/lookup.ts';
import { adminApi, projectUser, V3, type ProjectUser } from './lib.ts';

let serviceId: string;
let otherServiceId: string;
let alice: ProjectUser;
let bob: ProjectUser;
const cloud = useCloud(async (cloud) => {
  alice = await projectUser(cloud, 'member');
  bob = await projectUser(cloud, 'member');
  serviceId = (await admin('POST', '/services', { service: { type: 'volumev3', name: 'cinder' } })).body.service.id;
  otherServiceId = (await admin('POST', '/services', { service: { type: 'quotatest' } })).body.service.id;
});
const admin = adminApi(cloud);

/** One resource's limit as another service's quota reads it. */
const projectLimit = async (q: { projectId?: string; serviceType?: string; serviceId?: string; regionId?: string; resourceName: string }) =>
  (await unifiedLimits(cloud.server.database.db, q)).get(q.resourceName);

test('limit model is flat', async () => {
  const r = await cloud.call('GET', `${V3}/limits/model`, { token: alice.token });
  assert.equal(r.status, 200);
  assert.equal(r.body.model.name, 'flat');
  assert.equal(typeof r.body.model.description, 'string');
});

test('registered limits: all-or-nothing create, validation, duplicates, filters, update, delete', async () => {
  const bad = [
    { registered_limits: [] },
    { registered_limits: [{ service_id: serviceId, resource_name: 'x' }] },
    { registered_limits: [{ service_id: serviceId, resource_name: 'x', default_limit: -2 }] },
    { registered_limits: [{ service_id: serviceId, resource_name: 'x', default_limit: 1, extra: 1 }] },
    { registered_limits: [{ service_id: 'nope', resource_name: 'x', default_limit: 1 }] },
    { registered_limits: [{ service_id: serviceId, region_id: 'nowhere', resource_name: 'x', default_limit: 1 }] },
  ];
  for (const body of bad) assert.equal((await admin('POST', '/registered_limits', body)).status, 400, JSON.stringify(body));
  assert.equal((await cloud.call('POST', `${V3}/registered_limits`, { token: alice.token, body: { registered_limits: [{ service_id: serviceId, resource_name: 'x', default_limit: 1 }] } })).status, 403);

  const r = await admin('POST', '/registered_limits', {
    registered_limits: [
      { service_id: serviceId, resource_name: 'volume', default_limit: 10, description: 'Number of volumes' },
      { service_id: serviceId, region_id: 'RegionOne', resource_name: 'snapshot', default_limit: 5 },
    ],
  });
  assert.equal(r.status, 201);
  assert.equal(r.body.registered_limits.length, 2);
  const [vol, snap] = r.body.registered_limits;
  assert.deepEqual(
    { s: vol.service_id, r: vol.region_id, n: vol.resource_name, d: vol.default_limit, desc: vol.description },
    { s: serviceId, r: null, n: 'volume', d: 10, desc: 'Number of volumes' },
  );
  assert.equal(snap.region_id, 'RegionOne');
  assert.equal(snap.description, null);
  assert.match(vol.links.self, new RegExp(`/v3/registered_limits/${vol.id}$`));

  // A duplicate anywhere in the batch fails the whole batch.
  const dup = await admin('POST', '/registered_limits', {
    registered_limits: [
      { service_id: serviceId, resource_name: 'backups', default_limit: 3 },
      { service_id: serviceId, resource_name: 'volume', default_limit: 1 },
    ],
  });
  assert.equal(dup.status, 409);
  assert.equal((await admin('GET', '/registered_limits?resource_name=backups')).body.registered_limits.length, 0);

  const byRegion = await admin('GET', '/registered_limits?region_id=RegionOne');
  assert.deepEqual(byRegion.body.registered_limits.map((x: { id: string }) => x.id), [snap.id]);
  const byService = await cloud.call('GET', `${V3}/registered_limits?service_id=${serviceId}`, { token: alice.token });
  assert.equal(byService.status, 200, 'any user may read registered limits');
  assert.equal(byService.body.registered_limits.length, 2);

  const up = await admin('PATCH', `/registered_limits/${snap.id}`, { registered_limit: { default_limit: 7, description: 'snaps' } });
  assert.equal(up.status, 200);
  assert.deepEqual({ d: up.body.registered_limit.default_limit, desc: up.body.registered_limit.description }, { d: 7, desc: 'snaps' });
  assert.equal((await admin('PATCH', `/registered_limits/${snap.id}`, { registered_limit: { resource_name: 'volume', region_id: null } })).status, 409);
  assert.equal((await admin('PATCH', `/registered_limits/${snap.id}`, { registered_limit: { region_id: 'nowhere' } })).status, 400);
  assert.equal((await admin('PATCH', '/registered_limits/missing', { registered_limit: { default_limit: 1 } })).status, 404);
  assert.equal((await admin('GET', `/registered_limits/${snap.id}`)).body.registered_limit.default_limit, 7);

  assert.equal((await admin('DELETE', `/registered_limits/${snap.id}`)).status, 204);
  assert.equal((await admin('GET', `/registered_limits/${snap.id}`)).status, 404);
  assert.equal((await admin('DELETE', `/registered_limits/${snap.id}`)).status, 404);
});

test('limits: need a registered limit, one of project/domain, no duplicates; readers see only their own', async () => {
  await admin('POST', '/registered_limits', { registered_limits: [{ service_id: otherServiceId, resource_name: 'cores', default_limit: 20 }] });
  const limit = (extra: Record<string, unknown>) => ({ service_id: otherServiceId, resource_name: 'cores', resource_limit: 8, ...extra });

  assert.equal((await admin('POST', '/limits', { limits: [limit({})] })).status, 400, 'needs a project or a domain');
  assert.equal((await admin('POST', '/limits', { limits: [limit({ project_id: alice.projectId, domain_id: 'default' })] })).status, 400);
  assert.equal((await admin('POST', '/limits', { limits: [limit({ project_id: 'nope' })] })).status, 400);
  assert.equal((await admin('POST', '/limits', { limits: [limit({ project_id: alice.projectId, resource_name: 'unregistered' })] })).status, 403);
  assert.equal((await cloud.call('POST', `${V3}/limits`, { token: alice.token, body: { limits: [limit({ project_id: alice.projectId })] } })).status, 403);

  const created = await admin('POST', '/limits', {
    limits: [limit({ project_id: alice.projectId, description: 'alice cores' }), limit({ project_id: bob.projectId, resource_limit: 2 }), limit({ domain_id: 'default', resource_limit: 100 })],
  });
  assert.equal(created.status, 201);
  const [a, b, d] = created.body.limits;
  assert.deepEqual({ p: a.project_id, dom: a.domain_id, v: a.resource_limit, desc: a.description }, { p: alice.projectId, dom: null, v: 8, desc: 'alice cores' });
  assert.equal(d.domain_id, 'default');
  assert.equal((await admin('POST', '/limits', { limits: [limit({ project_id: alice.projectId })] })).status, 409);

  // Admin sees all; a project member only their project's; a reader cannot read another project's limit.
  assert.equal((await admin('GET', `/limits?service_id=${otherServiceId}`)).body.limits.length, 3);
  const mine = await cloud.call('GET', `${V3}/limits`, { token: alice.token });
  assert.equal(mine.status, 200);
  assert.deepEqual(mine.body.limits.map((x: { id: string }) => x.id), [a.id]);
  assert.equal((await cloud.call('GET', `${V3}/limits/${a.id}`, { token: alice.token })).status, 200);
  assert.equal((await cloud.call('GET', `${V3}/limits/${b.id}`, { token: alice.token })).status, 403);
  assert.equal((await admin('GET', `/limits?project_id=${bob.projectId}`)).body.limits[0].id, b.id);

  // A registered limit with limits under it cannot move or go away; its default can still change.
  const reg = (await admin('GET', `/registered_limits?service_id=${otherServiceId}`)).body.registered_limits[0];
  assert.equal((await admin('DELETE', `/registered_limits/${reg.id}`)).status, 403);
  assert.equal((await admin('PATCH', `/registered_limits/${reg.id}`, { registered_limit: { resource_name: 'ram' } })).status, 403);
  assert.equal((await admin('PATCH', `/registered_limits/${reg.id}`, { registered_limit: { default_limit: 30 } })).status, 200);

  const up = await admin('PATCH', `/limits/${a.id}`, { limit: { resource_limit: 0 } });
  assert.equal(up.status, 200);
  assert.equal(up.body.limit.resource_limit, 0);
  assert.equal(up.body.limit.description, 'alice cores');
  assert.equal((await admin('PATCH', `/limits/${a.id}`, { limit: { project_id: bob.projectId } })).status, 400);
  assert.equal((await cloud.call('PATCH', `${V3}/limits/${a.id}`, { token: alice.token, body: { limit: { resource_limit: 99 } } })).status, 403);

  // What another service's quota reads: the project's own limit, else the registered default.
  assert.equal(await projectLimit({ projectId: alice.projectId, serviceType: 'quotatest', resourceName: 'cores' }), 0);
  assert.equal(await projectLimit({ projectId: bob.projectId, serviceId: otherServiceId, resourceName: 'cores' }), 2);
  assert.equal(await projectLimit({ projectId: 'someone-else', serviceType: 'quotatest', resourceName: 'cores' }), 30);
  assert.equal(await projectLimit({ projectId: alice.projectId, serviceType: 'quotatest', resourceName: 'nothing' }), undefined);
  assert.equal(await projectLimit({ projectId: alice.projectId, serviceType: 'no-such-type', resourceName: 'cores' }), undefined);
  assert.equal(await projectLimit({ serviceType: 'quotatest', resourceName: 'cores' }), 30, 'without a project: the registered default');

  assert.equal((await admin('DELETE', `/limits/${a.id}`)).status, 204);
  assert.equal((await admin('GET', `/limits/${a.id}`)).status, 404);
  assert.equal(await projectLimit({ projectId: alice.projectId, serviceType: 'quotatest', resourceName: 'cores' }), 30);
});

test('unified limits prefer the asked region, then region-less entries', async () => {
  const svc = (await admin('POST', '/services', { service: { type: 'regionquota' } })).body.service.id;
  await admin('POST', '/regions', { region: { id: 'RegionTwo' } });
  const r = await admin('POST', '/registered_limits', {
    registered_limits: [
      { service_id: svc, resource_name: 'things', default_limit: 1 },
      { service_id: svc, region_id: 'RegionTwo', resource_name: 'things', default_limit: 2 },
    ],
  });
  assert.equal(r.status, 201);
  const q = { projectId: alice.projectId, serviceType: 'regionquota', resourceName: 'things' };
  assert.equal(await projectLimit(q), 1);
  assert.equal(await projectLimit({ ...q, regionId: 'RegionTwo' }), 2);
  assert.equal(await projectLimit({ ...q, regionId: 'RegionOne' }), 1);
  await admin('POST', '/limits', { limits: [{ service_id: svc, region_id: 'RegionTwo', resource_name: 'things', resource_limit: 9, project_id: alice.projectId }] });
  assert.equal(await projectLimit({ ...q, regionId: 'RegionTwo' }), 9);
  assert.equal(await projectLimit({ ...q, regionId: 'RegionOne' }), 1);
});
