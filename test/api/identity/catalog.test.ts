import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useCloud } from '../../harness.ts';
import { adminApi, projectUser, V3, type ProjectUser } from './lib.ts';

let member: ProjectUser;
const cloud = useCloud(async (cloud) => { member = await projectUser(cloud, 'member'); });
const admin = adminApi(cloud);

async function tokenCatalog(token: string) {
  const r = await cloud.call('GET', `${V3}/auth/tokens`, { token: cloud.adminToken, headers: { 'X-Subject-Token': token } });
  assert.equal(r.status, 200);
  return r.body.token.catalog as Array<{ id: string; type: string; endpoints: Array<{ id: string; url: string }> }>;
}

test('regions: create (POST and PUT), list by parent, update, cycles, delete with children', async () => {
  const a = await admin('POST', '/regions', { region: { description: 'top' } });
  assert.equal(a.status, 201);
  assert.match(a.body.region.id, /^[0-9a-f]{32}$/);
  assert.equal(a.body.region.parent_region_id, null);
  assert.match(a.body.region.links.self, new RegExp(`/identity/v3/regions/${a.body.region.id}$`));

  const b = await admin('PUT', '/regions/region-b', { region: { description: 'child', parent_region_id: a.body.region.id, color: 'blue' } });
  assert.equal(b.status, 201);
  assert.deepEqual({ id: b.body.region.id, parent: b.body.region.parent_region_id, color: b.body.region.color }, { id: 'region-b', parent: a.body.region.id, color: 'blue' });
  assert.equal((await admin('PUT', '/regions/region-b', { region: {} })).status, 409);
  assert.equal((await admin('PUT', '/regions/region-x', { region: { id: 'other' } })).status, 400);
  assert.equal((await admin('POST', '/regions', { region: { parent_region_id: 'nowhere' } })).status, 404);

  const c = await admin('POST', '/regions', { region: { id: 'region-c', parent_region_id: 'region-b' } });
  assert.equal(c.status, 201);
  const kids = await admin('GET', `/regions?parent_region_id=${a.body.region.id}`);
  assert.deepEqual(kids.body.regions.map((r: { id: string }) => r.id), ['region-b']);

  // a -> b -> c; making a a child of c would close a cycle; so would a region being its own parent.
  assert.equal((await admin('PATCH', `/regions/${a.body.region.id}`, { region: { parent_region_id: 'region-c' } })).status, 400);
  assert.equal((await admin('PATCH', '/regions/region-c', { region: { parent_region_id: 'region-c' } })).status, 400);
  assert.equal((await admin('PATCH', '/regions/region-c', { region: { parent_region_id: 'ghost' } })).status, 404);
  assert.equal((await admin('PATCH', '/regions/region-c', { region: {} })).status, 400);
  const up = await admin('PATCH', '/regions/region-c', { region: { description: 'moved', parent_region_id: a.body.region.id } });
  assert.equal(up.status, 200);
  assert.equal(up.body.region.description, 'moved');
  assert.equal((await admin('GET', '/regions/region-c')).body.region.parent_region_id, a.body.region.id);

  // Deleting a region takes its children along, unless an endpoint lives below.
  const svc = await admin('POST', '/services', { service: { type: 'regiontest' } });
  const ep = await admin('POST', '/endpoints', { endpoint: { service_id: svc.body.service.id, interface: 'public', url: 'http://x.example', region_id: 'region-b' } });
  assert.equal(ep.status, 201);
  const blocked = await admin('DELETE', `/regions/${a.body.region.id}`);
  assert.equal(blocked.status, 403);
  assert.equal(blocked.body.error.code, 403);
  assert.equal((await admin('DELETE', `/endpoints/${ep.body.endpoint.id}`)).status, 204);
  assert.equal((await admin('DELETE', `/regions/${a.body.region.id}`)).status, 204);
  for (const id of [a.body.region.id, 'region-b', 'region-c']) assert.equal((await admin('GET', `/regions/${id}`)).status, 404);
  assert.equal((await admin('DELETE', '/regions/region-b')).status, 404);
});

test('services: CRUD, type filter, extra attributes, and the token catalog follows at once', async () => {
  assert.equal((await admin('POST', '/services', { service: { name: 'no-type' } })).status, 400);
  assert.equal((await admin('POST', '/services', { service: { type: 'x', enabled: 'yes' } })).status, 400);
  const s = await admin('POST', '/services', { service: { type: 'cattest', name: 'cat', description: 'd1', flavor: 'x' } });
  assert.equal(s.status, 201);
  const id = s.body.service.id;
  assert.deepEqual(
    { type: s.body.service.type, name: s.body.service.name, description: s.body.service.description, enabled: s.body.service.enabled, flavor: s.body.service.flavor },
    { type: 'cattest', name: 'cat', description: 'd1', enabled: true, flavor: 'x' },
  );
  const listed = await admin('GET', '/services?type=cattest');
  assert.deepEqual(listed.body.services.map((x: { id: string }) => x.id), [id]);
  assert.ok((await admin('GET', '/services')).body.services.some((x: { type: string }) => x.type === 'identity'));

  const ep = await admin('POST', '/endpoints', { endpoint: { service_id: id, interface: 'public', url: 'http://cat.example/v1', region_id: 'RegionOne' } });
  assert.equal(ep.status, 201);
  const cat = await tokenCatalog(await cloud.login('admin', cloud.adminPassword, await adminProject()));
  assert.equal(cat.find((e) => e.type === 'cattest')?.endpoints[0]?.url, 'http://cat.example/v1');

  const p = await admin('PATCH', `/services/${id}`, { service: { description: 'd2', enabled: false } });
  assert.equal(p.status, 200);
  assert.equal(p.body.service.description, 'd2');
  assert.equal(p.body.service.flavor, 'x');
  assert.equal((await admin('GET', `/services/${id}`)).body.service.enabled, false);
  assert.equal((await admin('PATCH', `/services/${id}`, { service: { id: 'other' } })).status, 400);
  const cat2 = await tokenCatalog(await cloud.login('admin', cloud.adminPassword, await adminProject()));
  assert.equal(cat2.find((e) => e.type === 'cattest'), undefined, 'a disabled service leaves the catalog');

  // Deleting the service deletes its endpoints.
  assert.equal((await admin('DELETE', `/services/${id}`)).status, 204);
  assert.equal((await admin('GET', `/services/${id}`)).status, 404);
  assert.equal((await admin('GET', `/endpoints/${ep.body.endpoint.id}`)).status, 404);
  assert.equal((await admin('DELETE', `/services/${id}`)).status, 404);
});

async function adminProject(): Promise<string> {
  const row = await cloud.server.database.db.selectFrom('identity_projects').select('id').where('name', '=', 'admin').executeTakeFirstOrThrow();
  return row.id;
}

test('endpoints: validation, legacy region auto-created, filters, update', async () => {
  const svc = (await admin('POST', '/services', { service: { type: 'eptest', name: 'ep' } })).body.service;
  const base = { service_id: svc.id, interface: 'public', url: 'https://ep.example/v2' };
  for (const bad of [
    { ...base, interface: 'private' },
    { ...base, enabled: 'True' },
    { ...base, url: 'not a url' },
    { ...base, url: 'http://ep.example/$(tenant)s' },
    { ...base, service_id: 'nope' },
    { ...base, region_id: 'no-such-region' },
    { interface: 'public', url: 'http://x' },
  ]) {
    const r = await admin('POST', '/endpoints', { endpoint: bad });
    assert.equal(r.status, 400, JSON.stringify(bad));
    assert.equal(r.body.error.code, 400);
  }
  const tmpl = await admin('POST', '/endpoints', { endpoint: { ...base, url: 'http://ep.example/v2/$(project_id)s' } });
  assert.equal(tmpl.status, 201);

  const legacy = await admin('POST', '/endpoints', { endpoint: { ...base, interface: 'internal', region: 'LegacyRegion' } });
  assert.equal(legacy.status, 201);
  assert.equal(legacy.body.endpoint.region, 'LegacyRegion');
  assert.equal(legacy.body.endpoint.region_id, 'LegacyRegion');
  assert.equal(legacy.body.endpoint.enabled, true);
  assert.equal((await admin('GET', '/regions/LegacyRegion')).status, 200);

  const byService = await admin('GET', `/endpoints?service_id=${svc.id}`);
  assert.equal(byService.body.endpoints.length, 2);
  const internal = await admin('GET', `/endpoints?service_id=${svc.id}&interface=internal`);
  assert.deepEqual(internal.body.endpoints.map((e: { id: string }) => e.id), [legacy.body.endpoint.id]);
  const inRegion = await admin('GET', '/endpoints?region_id=LegacyRegion');
  assert.deepEqual(inRegion.body.endpoints.map((e: { id: string }) => e.id), [legacy.body.endpoint.id]);
  assert.equal((await admin('GET', '/endpoints?interface=bogus')).status, 400);

  const svc2 = (await admin('POST', '/services', { service: { type: 'eptest2' } })).body.service;
  const up = await admin('PATCH', `/endpoints/${legacy.body.endpoint.id}`, {
    endpoint: { service_id: svc2.id, interface: 'admin', url: 'http://new.example', region: 'Region2', enabled: false },
  });
  assert.equal(up.status, 200);
  assert.deepEqual(
    { s: up.body.endpoint.service_id, i: up.body.endpoint.interface, u: up.body.endpoint.url, r: up.body.endpoint.region, e: up.body.endpoint.enabled },
    { s: svc2.id, i: 'admin', u: 'http://new.example', r: 'Region2', e: false },
  );
  assert.equal((await admin('PATCH', `/endpoints/${legacy.body.endpoint.id}`, { endpoint: { enabled: 'False' } })).status, 400);
  assert.equal((await admin('PATCH', `/endpoints/${legacy.body.endpoint.id}`, { endpoint: { service_id: 'gone' } })).status, 400);
  assert.equal((await admin('PATCH', '/endpoints/missing', { endpoint: { enabled: true } })).status, 404);
  assert.equal((await admin('GET', `/endpoints/${legacy.body.endpoint.id}`)).body.endpoint.region_id, 'Region2');
});

test('catalog reads and writes are admin-only where Keystone says so', async () => {
  const t = member.token;
  assert.equal((await cloud.call('GET', `${V3}/regions`, { token: t })).status, 200, 'any user may list regions');
  assert.equal((await cloud.call('POST', `${V3}/regions`, { token: t, body: { region: {} } })).status, 403);
  assert.equal((await cloud.call('GET', `${V3}/services`, { token: t })).status, 403);
  assert.equal((await cloud.call('POST', `${V3}/services`, { token: t, body: { service: { type: 'x' } } })).status, 403);
  assert.equal((await cloud.call('GET', `${V3}/endpoints`, { token: t })).status, 403);
  assert.equal((await cloud.call('GET', `${V3}/OS-EP-FILTER/endpoint_groups`, { token: t })).status, 403);
  assert.equal((await cloud.call('GET', `${V3}/services`)).status, 401);
});

test('OS-EP-FILTER: endpoint groups and project associations', async () => {
  const svc = (await admin('POST', '/services', { service: { type: 'grouptest' } })).body.service;
  const pub = (await admin('POST', '/endpoints', { endpoint: { service_id: svc.id, interface: 'public', url: 'http://g.example', region_id: 'RegionOne' } })).body.endpoint;
  const int = (await admin('POST', '/endpoints', { endpoint: { service_id: svc.id, interface: 'internal', url: 'http://g.internal' } })).body.endpoint;

  assert.equal((await admin('POST', '/OS-EP-FILTER/endpoint_groups', { endpoint_group: { name: 'g', filters: {} } })).status, 400);
  assert.equal((await admin('POST', '/OS-EP-FILTER/endpoint_groups', { endpoint_group: { name: 'g', filters: { url: 'x' } } })).status, 400);
  assert.equal((await admin('POST', '/OS-EP-FILTER/endpoint_groups', { endpoint_group: { name: 'g', filters: { interface: 'nope' } } })).status, 400);
  assert.equal((await admin('POST', '/OS-EP-FILTER/endpoint_groups', { endpoint_group: { filters: { service_id: svc.id } } })).status, 400);
  const g = await admin('POST', '/OS-EP-FILTER/endpoint_groups', { endpoint_group: { name: 'g1', description: 'first', filters: { service_id: svc.id } } });
  assert.equal(g.status, 201);
  const gid = g.body.endpoint_group.id;
  assert.deepEqual(g.body.endpoint_group.filters, { service_id: svc.id });
  const shown = await admin('GET', `/OS-EP-FILTER/endpoint_groups/${gid}`);
  assert.deepEqual(shown.body.endpoint_group, g.body.endpoint_group);
  assert.equal((await admin('HEAD', `/OS-EP-FILTER/endpoint_groups/${gid}`)).status, 200);
  assert.ok((await admin('GET', '/OS-EP-FILTER/endpoint_groups')).body.endpoint_groups.some((x: { id: string }) => x.id === gid));

  const eps = await admin('GET', `/OS-EP-FILTER/endpoint_groups/${gid}/endpoints`);
  assert.deepEqual(eps.body.endpoints.map((e: { id: string }) => e.id).sort(), [pub.id, int.id].sort());
  const up = await admin('PATCH', `/OS-EP-FILTER/endpoint_groups/${gid}`, { endpoint_group: { name: 'g2', filters: { service_id: svc.id, interface: 'internal' } } });
  assert.equal(up.status, 200);
  assert.equal(up.body.endpoint_group.name, 'g2');
  assert.equal(up.body.endpoint_group.description, 'first');
  const eps2 = await admin('GET', `/OS-EP-FILTER/endpoint_groups/${gid}/endpoints`);
  assert.deepEqual(eps2.body.endpoints.map((e: { id: string }) => e.id), [int.id]);

  // Projects and endpoints, directly.
  const p = member.projectId;
  assert.equal((await admin('PUT', `/OS-EP-FILTER/projects/${p}/endpoints/${pub.id}`)).status, 204);
  assert.equal((await admin('PUT', `/OS-EP-FILTER/projects/${p}/endpoints/nope`)).status, 404);
  assert.equal((await admin('PUT', `/OS-EP-FILTER/projects/nope/endpoints/${pub.id}`)).status, 404);
  assert.equal((await admin('HEAD', `/OS-EP-FILTER/projects/${p}/endpoints/${pub.id}`)).status, 204);
  assert.equal((await admin('GET', `/OS-EP-FILTER/projects/${p}/endpoints/${int.id}`)).status, 404);
  const projects = await admin('GET', `/OS-EP-FILTER/endpoints/${pub.id}/projects`);
  assert.deepEqual(projects.body.projects.map((x: { id: string }) => x.id), [p]);
  assert.equal((await admin('GET', `/OS-EP-FILTER/projects/${p}/endpoints`)).body.endpoints.length, 1);

  // ... and through the group.
  assert.equal((await admin('PUT', `/OS-EP-FILTER/endpoint_groups/${gid}/projects/${p}`)).status, 204);
  const assoc = await admin('GET', `/OS-EP-FILTER/endpoint_groups/${gid}/projects/${p}`);
  assert.equal(assoc.status, 200);
  assert.deepEqual({ g: assoc.body.project_endpoint_group.endpoint_group_id, p: assoc.body.project_endpoint_group.project_id }, { g: gid, p });
  assert.deepEqual((await admin('GET', `/OS-EP-FILTER/endpoint_groups/${gid}/projects`)).body.projects.map((x: { id: string }) => x.id), [p]);
  assert.deepEqual((await admin('GET', `/OS-EP-FILTER/projects/${p}/endpoint_groups`)).body.endpoint_groups.map((x: { id: string }) => x.id), [gid]);
  const all = await admin('GET', `/OS-EP-FILTER/projects/${p}/endpoints`);
  assert.deepEqual(all.body.endpoints.map((e: { id: string }) => e.id).sort(), [pub.id, int.id].sort());

  assert.equal((await admin('DELETE', `/OS-EP-FILTER/endpoint_groups/${gid}/projects/${p}`)).status, 204);
  assert.equal((await admin('DELETE', `/OS-EP-FILTER/endpoint_groups/${gid}/projects/${p}`)).status, 404);
  assert.equal((await admin('DELETE', `/OS-EP-FILTER/projects/${p}/endpoints/${pub.id}`)).status, 204);
  assert.equal((await admin('DELETE', `/OS-EP-FILTER/projects/${p}/endpoints/${pub.id}`)).status, 404);

  // Deleting an endpoint drops its associations; deleting a group drops its projects.
  await admin('PUT', `/OS-EP-FILTER/projects/${p}/endpoints/${int.id}`);
  await admin('PUT', `/OS-EP-FILTER/endpoint_groups/${gid}/projects/${p}`);
  assert.equal((await admin('DELETE', `/endpoints/${int.id}`)).status, 204);
  assert.equal((await admin('DELETE', `/OS-EP-FILTER/endpoint_groups/${gid}`)).status, 204);
  assert.equal((await admin('GET', `/OS-EP-FILTER/endpoint_groups/${gid}`)).status, 404);
  assert.deepEqual((await admin('GET', `/OS-EP-FILTER/projects/${p}/endpoint_groups`)).body.endpoint_groups, []);
  assert.deepEqual((await admin('GET', `/OS-EP-FILTER/projects/${p}/endpoints`)).body.endpoints, []);
});
