import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useCloud } from '../../harness.ts';
import { adminNova, projectUser, TempestSchemas, type Nova } from './lib.ts';

let admin: Nova;
let alice: Nova;
const schemas = new TempestSchemas();
const cloud = useCloud(async (cloud) => {
  admin = await adminNova(cloud);
  alice = await projectUser(cloud, ['member']);
});

test('version documents and microversion negotiation', async () => {
  const root = await cloud.call('GET', '/compute/');
  assert.equal(root.status, 200);
  assert.deepEqual(root.body.versions.map((v: { id: string }) => v.id), ['v2.0', 'v2.1']);
  schemas.add('v2_1.versions', 'list_versions', root);
  const v21 = await cloud.call('GET', '/compute/v2.1/');
  assert.equal(v21.body.version.min_version, '2.1');
  assert.ok(Number(v21.body.version.version.split('.')[1]) >= 79);
  assert.match(v21.body.version.links[0].href, /\/compute\/v2\.1\/$/);
  schemas.add('v2_1.versions', 'get_one_version', v21);

  const dflt = await alice.call('GET', '/flavors');
  assert.equal(dflt.headers.get('openstack-api-version'), 'compute 2.1');
  assert.equal(dflt.headers.get('x-openstack-nova-api-version'), '2.1');
  assert.match(dflt.headers.get('vary') ?? '', /OpenStack-API-Version/);
  const latest = await alice.call('GET', '/flavors', { version: 'latest' });
  assert.equal(latest.headers.get('openstack-api-version'), `compute ${v21.body.version.version}`);
  const legacy = await cloud.call('GET', '/compute/v2.1/flavors', { token: alice.token, headers: { 'X-OpenStack-Nova-API-Version': '2.30' } });
  assert.equal(legacy.headers.get('x-openstack-nova-api-version'), '2.30');
  const tooHigh = await alice.call('GET', '/flavors', { version: '2.999' });
  assert.equal(tooHigh.status, 406);
  assert.equal(tooHigh.body.computeFault.code, 406);
  const garbage = await alice.call('GET', '/flavors', { version: '2.x' });
  assert.equal(garbage.status, 400);
  assert.equal(garbage.body.badRequest.code, 400);
  const missing = await alice.call('GET', '/flavors/nope');
  assert.equal(missing.status, 404);
  assert.equal(missing.body.itemNotFound.code, 404);
  const noToken = await cloud.call('GET', '/compute/v2.1/flavors');
  assert.equal(noToken.status, 401);
  assert.equal(noToken.body.error.code, 401);
  assert.match(noToken.headers.get('www-authenticate') ?? '', /^Keystone uri=".*\/identity"$/);
});

test('default flavors exist once, with devstack sizes and a container flavor', async () => {
  const r = await alice.call('GET', '/flavors/detail');
  assert.equal(r.status, 200);
  schemas.add('v2_1.flavors', 'list_flavors_details', r);
  const tiny = r.body.flavors.find((f: { name: string }) => f.name === 'm1.tiny');
  assert.deepEqual([tiny.id, tiny.ram, tiny.vcpus, tiny.disk, tiny.swap], ['1', 512, 1, 1, '']);
  assert.ok(r.body.flavors.some((f: { name: string }) => f.name === 'c1.container'));
  // Restart-safe: the seed runs once per cloud.
  const { seedDefaultFlavors } = await import('../../../src/compute/api/flavors.ts');
  await seedDefaultFlavors(cloud.server.database.db);
  const again = await alice.call('GET', '/flavors');
  assert.equal(again.body.flavors.length, r.body.flavors.length);
  schemas.add('v2_1.flavors', 'list_flavors', again);
  const sw = await alice.call('GET', '/flavors/1', { version: '2.75' });
  assert.equal(sw.body.flavor.swap, 0);
  const filtered = await alice.call('GET', '/flavors?minRam=2048&minDisk=20');
  assert.ok(filtered.body.flavors.every((f: { name: string }) => ['m1.small', 'm1.medium', 'm1.large', 'm1.xlarge'].includes(f.name)));
  const page = await alice.call('GET', '/flavors?limit=2');
  assert.equal(page.body.flavors.length, 2);
  assert.match(page.body.flavors_links[0].href, /marker=2/);
  const next = await alice.call('GET', `/flavors?limit=2&marker=${page.body.flavors[1].id}`);
  assert.notEqual(next.body.flavors[0].id, page.body.flavors[1].id);
  assert.equal((await alice.call('GET', '/flavors?marker=nope')).status, 400);
});

test('flavor management is admin only; private flavors need access', async () => {
  const body = { flavor: { name: 'priv-1', ram: 256, vcpus: 1, disk: 1, id: 'priv-1', 'os-flavor-access:is_public': false } };
  assert.equal((await alice.call('POST', '/flavors', { body })).status, 403);
  const made = await admin.call('POST', '/flavors', { body });
  assert.equal(made.status, 200, JSON.stringify(made.body));
  schemas.add('v2_1.flavors', 'create_update_get_flavor_details', made);
  assert.equal((await admin.call('POST', '/flavors', { body })).status, 409);
  assert.equal((await admin.call('POST', '/flavors', { body: { flavor: { ...body.flavor, id: 'other' } } })).status, 409, 'name taken');
  assert.equal((await alice.call('GET', '/flavors/priv-1')).status, 404);
  const list = await alice.call('GET', '/flavors');
  assert.ok(!list.body.flavors.some((f: { id: string }) => f.id === 'priv-1'));

  const add = await admin.call('POST', '/flavors/priv-1/action', { body: { addTenantAccess: { tenant: alice.projectId } } });
  assert.equal(add.status, 200);
  schemas.add('v2_1.flavors_access', 'add_remove_list_flavor_access', add);
  assert.deepEqual(add.body.flavor_access, [{ flavor_id: 'priv-1', tenant_id: alice.projectId }]);
  assert.equal((await admin.call('POST', '/flavors/priv-1/action', { body: { addTenantAccess: { tenant: alice.projectId } } })).status, 409);
  assert.equal((await admin.call('POST', '/flavors/priv-1/action', { body: { addTenantAccess: { tenant: 'nosuchproject' } } })).status, 400);
  assert.equal((await admin.call('POST', '/flavors/1/action', { version: '2.7', body: { addTenantAccess: { tenant: alice.projectId } } })).status, 409);
  assert.equal((await alice.call('GET', '/flavors/priv-1')).status, 200);
  assert.ok((await alice.call('GET', '/flavors')).body.flavors.some((f: { id: string }) => f.id === 'priv-1'));
  assert.equal((await admin.call('GET', '/flavors/1/os-flavor-access')).status, 404);
  const rm = await admin.call('POST', '/flavors/priv-1/action', { body: { removeTenantAccess: { tenant: alice.projectId } } });
  assert.deepEqual(rm.body.flavor_access, []);
  assert.equal((await admin.call('POST', '/flavors/priv-1/action', { body: { removeTenantAccess: { tenant: alice.projectId } } })).status, 404);

  // bad input
  for (const bad of [{ flavor: { name: '', ram: 1, vcpus: 1, disk: 0 } }, { flavor: { name: 'x', ram: 0, vcpus: 1, disk: 0 } },
    { flavor: { name: 'x', ram: 'abc', vcpus: 1, disk: 0 } }, { flavor: { name: ' lead', ram: 1, vcpus: 1, disk: 0 } },
    { flavor: { name: 'x', ram: 1, vcpus: 1, disk: -1 } }, { flavor: { name: 'x', ram: 1, vcpus: 1 } }, { nope: 1 }]) {
    const r = await admin.call('POST', '/flavors', { body: bad });
    assert.equal(r.status, 400, JSON.stringify(bad));
    assert.equal(r.body.badRequest.code, 400);
  }
  // description at 2.55 only, update at 2.55
  assert.equal((await admin.call('POST', '/flavors', { body: { flavor: { name: 'd', ram: 1, vcpus: 1, disk: 0, description: 'x' } } })).status, 400);
  const d = await admin.call('POST', '/flavors', { version: '2.61', body: { flavor: { name: 'd', ram: 64, vcpus: 1, disk: 0, description: 'small', swap: 0 } } });
  assert.equal(d.status, 200);
  assert.equal(d.body.flavor.description, 'small');
  assert.deepEqual(d.body.flavor.extra_specs, {});
  schemas.add('v2_61.flavors', 'create_update_get_flavor_details', d);
  assert.match(d.body.flavor.id, /^[0-9a-f-]{36}$/);
  assert.equal((await admin.call('PUT', `/flavors/${d.body.flavor.id}`, { body: { flavor: { description: 'y' } } })).status, 404, 'no update below 2.55');
  const up = await admin.call('PUT', `/flavors/${d.body.flavor.id}`, { version: '2.55', body: { flavor: { description: 'bigger' } } });
  assert.equal(up.body.flavor.description, 'bigger');
  schemas.add('v2_55.flavors', 'create_update_get_flavor_details', up);
  const del = await admin.call('DELETE', `/flavors/${d.body.flavor.id}`);
  assert.equal(del.status, 202);
  assert.equal((await admin.call('DELETE', `/flavors/${d.body.flavor.id}`)).status, 404);
});

test('flavor extra specs', async () => {
  const set = await admin.call('POST', '/flavors/2/os-extra_specs', { body: { extra_specs: { 'hw:cpu_policy': 'shared', 'foo:bar': 'baz', n: 3 } } });
  assert.equal(set.status, 200);
  schemas.add('v2_1.flavors_extra_specs', 'set_get_flavor_extra_specs', set);
  assert.equal((await alice.call('POST', '/flavors/2/os-extra_specs', { body: { extra_specs: { a: 'b' } } })).status, 403);
  const all = await alice.call('GET', '/flavors/2/os-extra_specs');
  assert.deepEqual(all.body.extra_specs, { 'foo:bar': 'baz', 'hw:cpu_policy': 'shared', n: '3' });
  const one = await alice.call('GET', '/flavors/2/os-extra_specs/foo:bar');
  assert.deepEqual(one.body, { 'foo:bar': 'baz' });
  schemas.add('v2_1.flavors_extra_specs', 'set_get_flavor_extra_specs_key', one);
  const put = await admin.call('PUT', '/flavors/2/os-extra_specs/foo:bar', { body: { 'foo:bar': 'qux' } });
  assert.deepEqual(put.body, { 'foo:bar': 'qux' });
  assert.equal((await admin.call('PUT', '/flavors/2/os-extra_specs/foo:bar', { body: { other: 'x' } })).status, 400);
  assert.equal((await admin.call('PUT', '/flavors/2/os-extra_specs/foo:bar', { body: { 'foo:bar': 'x', b: 'y' } })).status, 400);
  assert.equal((await admin.call('DELETE', '/flavors/2/os-extra_specs/foo:bar')).status, 200);
  assert.equal((await admin.call('DELETE', '/flavors/2/os-extra_specs/foo:bar')).status, 404);
  assert.equal((await alice.call('GET', '/flavors/2/os-extra_specs/foo:bar')).status, 404);
  // validated from 2.86
  assert.equal((await admin.call('POST', '/flavors/2/os-extra_specs', { version: '2.86', body: { extra_specs: { 'hw:cpu_policy': 'bogus' } } })).status, 400);
  assert.equal((await admin.call('POST', '/flavors/2/os-extra_specs', { version: '2.86', body: { extra_specs: { 'hw:no_such_thing': '1' } } })).status, 400);
  assert.equal((await admin.call('POST', '/flavors/2/os-extra_specs', { version: '2.86', body: { extra_specs: { 'custom:thing': '1' } } })).status, 200);
  const shown = await alice.call('GET', '/flavors/2', { version: '2.61' });
  assert.equal(shown.body.flavor.extra_specs['custom:thing'], '1');
  schemas.add('v2_61.flavors', 'create_update_get_flavor_details', shown);
});

const PUB = 'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCsNe3/1ILNCqFyfYWDeTKLD6jEXC2OQHLmietMWW+/vdaZq7KZEwO0jhglaFjU1mpqq4Gz5RX156sCTNM9vRbw' +
  'KAxfsdF9laBYVsex3m3Wmui3uYrKyumsoJn2g9GNnG1PI1mrVjZ61i0GY3khna+wzlTpCCmy5HNlrmbj3XLqBUpipTOXmsnr4sChzC53KCd8LXuwc1i/CZPvF+3XipvAgFSE53pCt' +
  'LOeB1kYMOBaiUPLQTWXR3JpckqFIQwhIH0zoHlJvZE8hh90XcPojYN56tI0OlrGqojbediJYD0rUsJu4weZpbn8vilb3JuDY+jwssnSA8wzBx3A/8y9Pp1B nova@ubuntu';

test('key pairs: import, generate, types, user_id, quota', async () => {
  const imp = await alice.call('POST', '/os-keypairs', { body: { keypair: { name: 'imported', public_key: PUB } } });
  assert.equal(imp.status, 200, JSON.stringify(imp.body));
  assert.match(imp.body.keypair.fingerprint, /^([0-9a-f]{2}:){15}[0-9a-f]{2}$/);
  assert.equal(imp.body.keypair.private_key, undefined);
  schemas.add('v2_1.keypairs', 'create_keypair', imp);
  const gen = await alice.call('POST', '/os-keypairs', { version: '2.2', body: { keypair: { name: 'generated' } } });
  assert.equal(gen.status, 201);
  assert.match(gen.body.keypair.private_key, /BEGIN RSA PRIVATE KEY/);
  assert.match(gen.body.keypair.public_key, /^ssh-rsa AAAA/);
  assert.equal(gen.body.keypair.type, 'ssh');
  schemas.add('v2_2.keypairs', 'create_keypair', gen);
  const x = await alice.call('POST', '/os-keypairs', { version: '2.2', body: { keypair: { name: 'cert', type: 'x509' } } });
  assert.equal(x.status, 201);
  assert.match(x.body.keypair.public_key, /BEGIN CERTIFICATE/);
  const { X509Certificate } = await import('node:crypto');
  assert.match(new X509Certificate(x.body.keypair.public_key).subject, new RegExp(alice.userId));
  assert.equal((await alice.call('POST', '/os-keypairs', { version: '2.92', body: { keypair: { name: 'gen92' } } })).status, 400);
  assert.equal((await alice.call('POST', '/os-keypairs', { version: '2.92', body: { keypair: { name: 'a@b.c', public_key: PUB } } })).status, 201);

  const list = await alice.call('GET', '/os-keypairs', { version: '2.2' });
  assert.deepEqual(list.body.keypairs.map((k: any) => k.keypair.name).sort(), ['a@b.c', 'cert', 'generated', 'imported']);
  schemas.add('v2_2.keypairs', 'list_keypairs', list);
  const show = await alice.call('GET', '/os-keypairs/imported');
  assert.equal(show.body.keypair.user_id, alice.userId);
  schemas.add('v2_1.keypairs', 'get_keypair', show);
  const page = await alice.call('GET', '/os-keypairs?limit=1', { version: '2.35' });
  assert.equal(page.body.keypairs.length, 1);
  assert.ok(page.body.keypairs_links[0].href.includes('marker='));

  for (const [body, status] of [
    [{ keypair: { name: 'imported', public_key: PUB } }, 409],
    [{ keypair: { name: 'junk', public_key: 'ssh-rsa JUNK nova@ubuntu' } }, 400],
    [{ keypair: { name: 'empty', public_key: ' ' } }, 400],
    [{ keypair: { name: 'big', public_key: 'ssh-rsa ' + 'A'.repeat(2048) + ' x' } }, 400],
    [{ keypair: { name: '' } }, 400],
    [{ keypair: { name: 'k'.repeat(260) } }, 400],
    [{ keypair: { name: 'key_/.\\@:' } }, 400],
    [{ keypair: { name: 'typed', type: 'ssh', public_key: PUB } }, 400],
  ] as const) {
    const r = await alice.call('POST', '/os-keypairs', { body });
    assert.equal(r.status, status, JSON.stringify(body));
  }
  // another user's key pairs: admins only, from 2.10
  assert.equal((await alice.call('GET', `/os-keypairs?user_id=${admin.userId}`, { version: '2.10' })).status, 403);
  const forAlice = await admin.call('POST', '/os-keypairs', { version: '2.10', body: { keypair: { name: 'by-admin', public_key: PUB, user_id: alice.userId } } });
  assert.equal(forAlice.status, 201);
  assert.equal(forAlice.body.keypair.user_id, alice.userId);
  assert.equal((await alice.call('GET', '/os-keypairs/by-admin')).status, 200);
  assert.equal((await admin.call('GET', `/os-keypairs/by-admin?user_id=${alice.userId}`, { version: '2.10' })).status, 200);
  assert.equal((await alice.call('POST', '/os-keypairs', { version: '2.10', body: { keypair: { name: 'x', public_key: PUB, user_id: admin.userId } } })).status, 403);

  assert.equal((await alice.call('DELETE', '/os-keypairs/imported')).status, 202);
  assert.equal((await alice.call('DELETE', '/os-keypairs/generated', { version: '2.2' })).status, 204);
  assert.equal((await alice.call('DELETE', '/os-keypairs/generated')).status, 404);

  // quota: key_pairs counts per user against the project's limit
  const q = await admin.call('PUT', `/os-quota-sets/${alice.projectId}`, { body: { quota_set: { key_pairs: 3 } } });
  assert.equal(q.status, 200);
  const over = await alice.call('POST', '/os-keypairs', { body: { keypair: { name: 'one-too-many', public_key: PUB } } });
  assert.equal(over.status, 403);
  assert.match(over.body.forbidden.message, /Quota exceeded/);
});

test('response bodies match Tempest schemas', () => {
  schemas.check();
});
