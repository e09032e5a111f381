// Metadata definitions: namespaces with resource types, objects, properties
// and tags; admins write, readers see public namespaces and their own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tenant, useCloud, type Tenant } from '../../harness.ts';

let user: Tenant;
const cloud = useCloud(async (cloud) => { user = await tenant(cloud); });

const admin = (method: string, path: string, body?: unknown) => cloud.call(method, `/image/v2/metadefs${path}`, { token: cloud.adminToken, body });
const asUser = (method: string, path: string, body?: unknown) => cloud.call(method, `/image/v2/metadefs${path}`, { token: user.token, body });

test('metadef schemas', async () => {
  const names: Record<string, string> = {
    namespace: 'namespace', namespaces: 'namespaces', resource_type: 'resource_type_association',
    resource_types: 'resource_type_associations', object: 'object', objects: 'objects', property: 'property',
    properties: 'properties', tag: 'tag', tags: 'tags',
  };
  for (const [path, name] of Object.entries(names)) {
    const r = await cloud.call('GET', `/image/v2/schemas/metadefs/${path}`, { token: user.token });
    assert.equal(r.status, 200, path);
    assert.equal(r.body.name, name);
  }
  assert.equal((await cloud.call('GET', '/image/v2/schemas/metadefs/nope', { token: user.token })).status, 404);
});

test('namespaces: create with associations, protect, update, delete', async () => {
  const types = (await asUser('GET', '/resource_types')).body.resource_types.map((t: { name: string }) => t.name);
  assert.ok(types.includes('OS::Glance::Image'));
  const c = await admin('POST', '/namespaces', {
    namespace: 'Stratus::Test', display_name: 'Test', description: 'd', visibility: 'public', protected: true,
    resource_type_associations: [{ name: 'OS::Glance::Image', prefix: 'hw_' }],
    properties: { cpu: { title: 'CPU', type: 'integer', minimum: 1 } },
    objects: [{ name: 'Limits', properties: { a: { title: 'A', type: 'string' } } }],
    tags: [{ name: 'x' }],
  });
  assert.equal(c.status, 201, JSON.stringify(c.body));
  assert.equal(c.body.self, '/v2/metadefs/namespaces/Stratus::Test');
  assert.equal(c.body.protected, true);
  assert.equal((await admin('POST', '/namespaces', { namespace: 'Stratus::Test' })).status, 409);
  assert.equal((await admin('POST', '/namespaces', { namespace: 'x', bogus: 1 })).status, 400);
  assert.equal((await admin('POST', '/namespaces', { namespace: 'x', self: '/x' })).status, 403);
  assert.equal((await asUser('POST', '/namespaces', { namespace: 'mine' })).status, 403, 'only admins write');

  const shown = await asUser('GET', '/namespaces/Stratus::Test');
  assert.equal(shown.status, 200);
  assert.deepEqual(Object.keys(shown.body.properties), ['cpu']);
  assert.equal(shown.body.objects[0].name, 'Limits');
  assert.deepEqual(shown.body.tags, [{ name: 'x' }]);
  assert.equal(shown.body.resource_type_associations[0].prefix, 'hw_');
  const prefixed = await asUser('GET', '/namespaces/Stratus::Test?resource_type=OS::Glance::Image');
  assert.deepEqual(Object.keys(prefixed.body.properties), ['hw_cpu']);
  assert.ok((await asUser('GET', '/namespaces')).body.namespaces.some((n: { namespace: string }) => n.namespace === 'Stratus::Test'));

  assert.equal((await admin('DELETE', '/namespaces/Stratus::Test')).status, 403, 'protected');
  const upd = await admin('PUT', '/namespaces/Stratus::Test', { namespace: 'Stratus::Test', visibility: 'private', protected: false });
  assert.equal(upd.status, 200);
  assert.equal(upd.body.visibility, 'private');
  assert.equal((await asUser('GET', '/namespaces/Stratus::Test')).status, 404, 'private to the admin project now');
  assert.ok(!(await asUser('GET', '/namespaces')).body.namespaces.some((n: { namespace: string }) => n.namespace === 'Stratus::Test'));
  assert.equal((await admin('DELETE', '/namespaces/Stratus::Test')).status, 204);
  assert.equal((await admin('GET', '/namespaces/Stratus::Test')).status, 404);
  assert.equal((await admin('GET', '/namespaces/Stratus::Test/objects/Limits')).status, 404);
});

test('objects, properties, tags and resource type associations', async () => {
  assert.equal((await admin('POST', '/namespaces', { namespace: 'ns2', visibility: 'public' })).status, 201);
  // objects
  const o = await admin('POST', '/namespaces/ns2/objects', { name: 'obj', description: 'o', required: ['a'], properties: { a: { title: 'A', type: 'string' } } });
  assert.equal(o.status, 201);
  assert.equal(o.body.self, '/v2/metadefs/namespaces/ns2/objects/obj');
  assert.equal((await admin('POST', '/namespaces/ns2/objects', { name: 'obj' })).status, 409);
  assert.equal((await admin('POST', '/namespaces/ns2/objects', { name: 'bad', properties: { a: { type: 'string' } } })).status, 400);
  assert.equal((await admin('PUT', '/namespaces/ns2/objects/obj', { name: 'obj2' })).body.name, 'obj2');
  assert.equal((await asUser('GET', '/namespaces/ns2/objects/obj2')).status, 200);
  assert.deepEqual((await asUser('GET', '/namespaces/ns2/objects')).body.objects.map((x: { name: string }) => x.name), ['obj2']);
  assert.equal((await asUser('DELETE', '/namespaces/ns2/objects/obj2')).status, 403);
  assert.equal((await admin('DELETE', '/namespaces/ns2/objects/obj2')).status, 204);
  assert.equal((await admin('DELETE', '/namespaces/ns2/objects/obj2')).status, 404);
  // properties
  const p = await admin('POST', '/namespaces/ns2/properties', { name: 'hypervisor_type', title: 'Hypervisor', type: 'string', enum: ['kvm', 'qemu'] });
  assert.equal(p.status, 201);
  assert.deepEqual(p.body, { name: 'hypervisor_type', title: 'Hypervisor', type: 'string', enum: ['kvm', 'qemu'] });
  assert.equal((await admin('POST', '/namespaces/ns2/properties', { name: 'x', type: 'string' })).status, 400, 'title is required');
  assert.equal((await admin('POST', '/namespaces/ns2/properties', { name: 'y', title: 'Y', type: 'complex' })).status, 400);
  const up = await admin('PUT', '/namespaces/ns2/properties/hypervisor_type', { name: 'hypervisor_type', title: 'New', type: 'string' });
  assert.equal(up.body.title, 'New');
  assert.deepEqual(Object.keys((await asUser('GET', '/namespaces/ns2/properties')).body.properties), ['hypervisor_type']);
  assert.equal((await admin('DELETE', '/namespaces/ns2/properties/hypervisor_type')).status, 204);
  assert.deepEqual((await asUser('GET', '/namespaces/ns2/properties')).body.properties, {});
  // tags
  const tags = await admin('POST', '/namespaces/ns2/tags', { tags: [{ name: 't1' }, { name: 't2' }] });
  assert.equal(tags.status, 201);
  assert.deepEqual(tags.body, { tags: [{ name: 't1' }, { name: 't2' }] });
  assert.equal((await admin('POST', '/namespaces/ns2/tags', { tags: [{ name: 'a' }, { name: 'a' }] })).status, 409);
  assert.equal((await admin('POST', '/namespaces/ns2/tags/t3')).status, 201);
  assert.equal((await admin('POST', '/namespaces/ns2/tags/t3')).status, 409);
  assert.equal((await admin('PUT', '/namespaces/ns2/tags/t3', { name: 't4' })).body.name, 't4');
  assert.equal((await asUser('GET', '/namespaces/ns2/tags/t4')).body.name, 't4');
  assert.equal((await asUser('GET', '/namespaces/ns2/tags')).body.tags.length, 3);
  assert.equal((await admin('DELETE', '/namespaces/ns2/tags/t4')).status, 204);
  assert.equal((await admin('DELETE', '/namespaces/ns2/tags')).status, 204);
  assert.deepEqual((await asUser('GET', '/namespaces/ns2/tags')).body.tags, []);
  // resource type associations
  const a = await admin('POST', '/namespaces/ns2/resource_types', { name: 'OS::Nova::Flavor', prefix: 'hw:' });
  assert.equal(a.status, 201);
  assert.equal(a.body.name, 'OS::Nova::Flavor');
  assert.equal((await admin('POST', '/namespaces/ns2/resource_types', { name: 'OS::Nova::Flavor' })).status, 409);
  assert.deepEqual((await asUser('GET', '/namespaces/ns2/resource_types')).body.resource_type_associations.map((x: { name: string }) => x.name), ['OS::Nova::Flavor']);
  assert.equal((await admin('DELETE', '/namespaces/ns2/resource_types/OS::Nova::Flavor')).status, 204);
  assert.equal((await admin('DELETE', '/namespaces/ns2/resource_types/OS::Nova::Flavor')).status, 404);
  assert.equal((await asUser('GET', '/namespaces/nope/objects')).status, 404);
});
