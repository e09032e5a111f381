// Nova's floating IP proxies through the compute API (no agent: a host
// registered by hand, so servers are placed and their ports bound):
// os-floating-ip-pools and os-floating-ips below 2.36 (404 from 2.36),
// the addFloatingIp/removeFloatingIp actions below 2.44, with Nova's
// statuses for a Neutron-backed cloud. Bodies are checked against
// Tempest's own response schemas.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useCloud, type Cloud } from '../../harness.ts';
import { create, neutron, type NetCall } from '../network/lib.ts';
import { adminNova, networkedHost, projectUser, TempestSchemas, type Nova } from './lib.ts';

let admin: Nova;
let alice: Nova;
let call: NetCall;
let imageId: string;
let flavorId: string;
let publicNet: any;
const HOST = `fip-host-${process.pid}`;
const schemas = new TempestSchemas();

const cloud: Cloud = useCloud(async (c) => {
  admin = await adminNova(c);
  alice = await projectUser(c);
  call = neutron(c);
  ({ imageId, flavorId } = await networkedHost(c, admin, HOST, 'fip'));
  publicNet = await create(call, 'networks', 'network', { name: 'fip-public', 'router:external': true, is_default: true });
  await create(call, 'subnets', 'subnet', { network_id: publicNet.id, cidr: '172.30.4.0/29', ip_version: 4, enable_dhcp: false });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A server of `who` on `networkId`, placed on HOST and made ACTIVE by the admin. */
async function activeServer(who: Nova, networkId: string): Promise<string> {
  const r = await who.call('POST', '/servers', { version: '2.37', body: { server: { name: 'srv', imageRef: imageId, flavorRef: flavorId, networks: [{ uuid: networkId }] } } });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  const id = r.body.server.id as string;
  for (let i = 0; i < 200; i++) {
    if ((await admin.call('GET', `/servers/${id}`, { version: '2.37' })).body.server['OS-EXT-SRV-ATTR:host'] === HOST) break;
    await sleep(50);
  }
  assert.equal((await admin.call('POST', `/servers/${id}/action`, { body: { 'os-resetState': { state: 'active' } } })).status, 202);
  return id;
}

/** A project network with a subnet, routed to the public network when `routed`. */
async function projectNet(who: Nova, name: string, cidr: string, routed: boolean): Promise<string> {
  const net = await create(call, 'networks', 'network', { name }, who.token);
  const subnet = await create(call, 'subnets', 'subnet', { network_id: net.id, cidr, ip_version: 4 }, who.token);
  if (routed) {
    const router = await create(call, 'routers', 'router', { name, external_gateway_info: { network_id: publicNet.id } }, who.token);
    const r = await call('PUT', `/routers/${router.id}/add_router_interface`, { body: { subnet_id: subnet.id }, token: who.token });
    assert.equal(r.status, 200, JSON.stringify(r.body));
  }
  return net.id;
}

const action = (who: Nova, serverId: string, body: unknown, version?: string) =>
  who.call('POST', `/servers/${serverId}/action`, { body, ...(version ? { version } : {}) });

test('os-floating-ip-pools and os-floating-ips: allocate from a pool or the default, list, show, release; 404s', async () => {
  const pools = await alice.call('GET', '/os-floating-ip-pools');
  assert.equal(pools.status, 200);
  schemas.add('v2_1.floating_ips', 'list_floating_ip_pools', pools);
  assert.deepEqual(pools.body.floating_ip_pools, [{ name: 'fip-public' }]);
  assert.equal((await alice.call('GET', '/os-floating-ip-pools', { version: '2.36' })).status, 404);

  const made = await alice.call('POST', '/os-floating-ips', { body: { pool: 'fip-public' } });
  assert.equal(made.status, 200, JSON.stringify(made.body));
  schemas.add('v2_1.floating_ips', 'create_get_floating_ip', made);
  const fip = made.body.floating_ip;
  assert.equal(fip.pool, 'fip-public');
  assert.match(fip.ip, /^172\.30\.4\.\d+$/);
  assert.equal(fip.fixed_ip, null);
  assert.equal(fip.instance_id, null);
  // the network service holds it: the same address, in alice's project
  const n = (await call('GET', `/floatingips/${fip.id}`, { token: alice.token })).body.floatingip;
  assert.equal(n.floating_ip_address, fip.ip);
  assert.equal(n.project_id, alice.projectId);

  // no pool: the default external network (by id works too)
  const dflt = await alice.call('POST', '/os-floating-ips', { body: {} });
  assert.equal(dflt.status, 200, JSON.stringify(dflt.body));
  assert.equal(dflt.body.floating_ip.pool, 'fip-public');
  const byId = await alice.call('POST', '/os-floating-ips', { body: { pool: publicNet.id } });
  assert.equal(byId.status, 200, JSON.stringify(byId.body));

  const unknown = await alice.call('POST', '/os-floating-ips', { body: { pool: 'no-such-pool' } });
  assert.equal(unknown.status, 404);
  assert.equal(unknown.body.itemNotFound.message, 'Floating IP pool not found.');
  assert.equal((await alice.call('POST', '/os-floating-ips', { body: { pool: 'fip-public', x: 1 } })).status, 400);
  assert.equal((await alice.call('POST', '/os-floating-ips', { body: { pool: 'fip-public' }, version: '2.36' })).status, 404);

  const list = await alice.call('GET', '/os-floating-ips');
  assert.equal(list.status, 200);
  schemas.add('v2_1.floating_ips', 'list_floating_ips', list);
  assert.deepEqual(list.body.floating_ips.map((f: any) => f.id), [fip.id, dflt.body.floating_ip.id, byId.body.floating_ip.id]);
  assert.equal((await alice.call('GET', '/os-floating-ips', { version: '2.36' })).status, 404);
  const shown = await alice.call('GET', `/os-floating-ips/${fip.id}`);
  schemas.add('v2_1.floating_ips', 'create_get_floating_ip', shown);
  assert.deepEqual(shown.body.floating_ip, fip);

  // an admin's list is its own project's (as Nova asks Neutron), but it may show any
  assert.ok(!(await admin.call('GET', '/os-floating-ips')).body.floating_ips.some((f: any) => f.id === fip.id));
  assert.deepEqual((await admin.call('GET', `/os-floating-ips/${fip.id}`)).body.floating_ip, fip);
  // another project sees none of them
  const bob = await projectUser(cloud);
  assert.deepEqual((await bob.call('GET', '/os-floating-ips')).body.floating_ips, []);
  assert.equal((await bob.call('GET', `/os-floating-ips/${fip.id}`)).status, 404);
  assert.equal((await bob.call('DELETE', `/os-floating-ips/${fip.id}`)).status, 404);
  for (const id of [crypto.randomUUID(), '12345']) {
    const r = await alice.call('GET', `/os-floating-ips/${id}`);
    assert.equal(r.status, 404);
    assert.equal(r.body.itemNotFound.message, `Floating IP not found for ID ${id}`);
  }

  // over the network service's floatingip quota: Nova's 403
  assert.equal((await call('PUT', `/quotas/${bob.projectId}`, { body: { quota: { floatingip: 0 } } })).status, 200);
  const over = await bob.call('POST', '/os-floating-ips', { body: { pool: 'fip-public' } });
  assert.equal(over.status, 403);
  assert.equal(over.body.forbidden.message, 'IP allocation over quota in pool fip-public.');

  // the public subnet's /29 has 5 addresses to give (the gateway takes one): the pool runs dry with Nova's 404
  const more = [];
  for (;;) {
    const r = await alice.call('POST', '/os-floating-ips', { body: { pool: 'fip-public' } });
    if (r.status !== 200) {
      assert.equal(r.status, 404);
      assert.equal(r.body.itemNotFound.message, 'No more floating IPs in pool fip-public.');
      break;
    }
    more.push(r.body.floating_ip.id);
    assert.ok(more.length < 10);
  }

  for (const id of [fip.id, dflt.body.floating_ip.id, byId.body.floating_ip.id, ...more]) {
    const del = await alice.call('DELETE', `/os-floating-ips/${id}`);
    assert.equal(del.status, 202);
  }
  assert.equal((await alice.call('DELETE', `/os-floating-ips/${fip.id}`)).status, 404);
  assert.equal((await call('GET', `/floatingips/${fip.id}`)).status, 404);
  assert.deepEqual((await alice.call('GET', '/os-floating-ips')).body.floating_ips, []);
  schemas.check();
});

test('addFloatingIp / removeFloatingIp: associate with the server\'s port, move to another server, take off; Nova\'s errors', async () => {
  const netId = await projectNet(alice, 'fip-routed', '10.93.0.0/24', true);
  const one = await activeServer(alice, netId);
  const two = await activeServer(alice, netId);
  const fip = (await alice.call('POST', '/os-floating-ips', { body: { pool: 'fip-public' } })).body.floating_ip;
  const fixedOf = async (id: string) => (await alice.call('GET', `/servers/${id}/os-interface`)).body.interfaceAttachments[0].fixed_ips[0].ip_address as string;

  const add = await action(alice, one, { addFloatingIp: { address: fip.ip } });
  assert.equal(add.status, 202, JSON.stringify(add.body));
  schemas.add('v2_1.floating_ips', 'add_remove_floating_ip', add);
  let shown = (await alice.call('GET', `/os-floating-ips/${fip.id}`)).body.floating_ip;
  assert.equal(shown.instance_id, one);
  assert.equal(shown.fixed_ip, await fixedOf(one));
  // the server's addresses show it, after the fixed one
  const addrs = (await alice.call('GET', `/servers/${one}`)).body.server.addresses['fip-routed'];
  assert.deepEqual(addrs.map((a: any) => a['OS-EXT-IPS:type']), ['fixed', 'floating']);
  assert.equal(addrs[1].addr, fip.ip);
  // the network service's floating IP is on the server's port, served by the router
  const n = (await call('GET', `/floatingips/${fip.id}`, { token: alice.token })).body.floatingip;
  assert.equal(n.port_details.device_id, one);
  assert.ok(n.router_id);

  // associating it again (with the fixed address named) moves it to the other server
  const moved = await action(alice, two, { addFloatingIp: { address: fip.ip, fixed_address: await fixedOf(two) } });
  assert.equal(moved.status, 202, JSON.stringify(moved.body));
  shown = (await alice.call('GET', `/os-floating-ips/${fip.id}`)).body.floating_ip;
  assert.equal(shown.instance_id, two);
  const notHere = await action(alice, one, { removeFloatingIp: { address: fip.ip } });
  assert.equal(notHere.status, 409);
  assert.equal(notHere.body.conflictingRequest.message, `Floating IP ${fip.ip} is not associated with instance ${one}.`);

  // errors: unknown address 404, bad or missing address 400, a fixed address not the server's 400, from 2.44 no such action
  const missing = await action(alice, one, { addFloatingIp: { address: '0.0.0.0' } });
  assert.equal(missing.status, 404);
  assert.equal(missing.body.itemNotFound.message, 'floating IP not found');
  assert.equal((await action(alice, one, { addFloatingIp: { address: '' } })).status, 400);
  assert.equal((await action(alice, one, { addFloatingIp: {} })).status, 400);
  const wrongFixed = await action(alice, one, { addFloatingIp: { address: fip.ip, fixed_address: '10.99.99.99' } });
  assert.equal(wrongFixed.status, 400);
  assert.equal(wrongFixed.body.badRequest.message, 'Specified fixed address not assigned to instance');
  assert.equal((await action(alice, one, { addFloatingIp: { address: fip.ip } }, '2.44')).status, 404);
  assert.equal((await action(alice, two, { removeFloatingIp: { address: fip.ip } }, '2.44')).status, 404);
  assert.equal((await action(alice, one, { removeFloatingIp: { address: '0.0.0.0' } })).status, 404);
  // another project's floating IP is not found
  const bob = await projectUser(cloud);
  const bobs = (await bob.call('POST', '/os-floating-ips', { body: {} })).body.floating_ip;
  assert.equal((await action(alice, one, { addFloatingIp: { address: bobs.ip } })).status, 404);

  // a server whose subnet has no router to the pool: Nova's 400
  const isolated = await activeServer(alice, await projectNet(alice, 'fip-isolated', '10.94.0.0/24', false));
  const noRoute = await action(alice, isolated, { addFloatingIp: { address: fip.ip } });
  assert.equal(noRoute.status, 400);
  assert.match(noRoute.body.badRequest.message, /^Unable to associate floating IP .* is not reachable from subnet/);
  assert.equal((await alice.call('GET', `/os-floating-ips/${fip.id}`)).body.floating_ip.instance_id, two);

  const removed = await action(alice, two, { removeFloatingIp: { address: fip.ip } });
  assert.equal(removed.status, 202);
  schemas.add('v2_1.floating_ips', 'add_remove_floating_ip', removed);
  shown = await alice.call('GET', `/os-floating-ips/${fip.id}`);
  schemas.add('v2_1.floating_ips', 'create_get_floating_ip', shown);
  assert.equal(shown.body.floating_ip.instance_id, null);
  assert.equal(shown.body.floating_ip.fixed_ip, null);
  assert.equal((await action(alice, two, { removeFloatingIp: { address: fip.ip } })).status, 409);
  assert.deepEqual((await alice.call('GET', `/servers/${two}`)).body.server.addresses['fip-routed'].map((a: any) => a['OS-EXT-IPS:type']), ['fixed']);

  // released while associated: the association goes with it
  assert.equal((await action(alice, one, { addFloatingIp: { address: fip.ip } })).status, 202);
  assert.equal((await alice.call('DELETE', `/os-floating-ips/${fip.id}`)).status, 202);
  assert.deepEqual((await alice.call('GET', `/servers/${one}`)).body.server.addresses['fip-routed'].map((a: any) => a['OS-EXT-IPS:type']), ['fixed']);
  schemas.check();
});
