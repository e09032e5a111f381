// Bare-metal servers through the Nova API, as with Nova's ironic driver: a
// flavor asking a unit of a node's custom resource class (VCPU/MEMORY_MB/
// DISK_GB zeroed) and a whole-disk image make a server of kind baremetal,
// placed on a free node's provider; compute drives the node through the
// bare-metal service (instance_info, VIFs bound to the node's NICs, deploy
// with Ironic's JSON config drive, power, undeploy). The conductor is a test
// double answering over the real agent API (test/api/baremetal/lib.ts).
// Each test uses its own resource class, so nodes of one never serve another.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { until, useCloud } from '../../harness.ts';
import { ironic, provisioningNetwork, TestConductor } from '../baremetal/lib.ts';
import { adminNova, type Nova } from './lib.ts';
import { pino } from 'pino';
import { Scheduler } from '../../../src/compute/engine/scheduler.ts';

let cond: TestConductor;
let imageId: string;
let provisioningNet: string;
let nv: Nova;
const cloud = useCloud(async (c) => {
  cond = new TestConductor(c, 'bm-compute-cond');
  await cond.register(['ipmi', 'redfish'], { address: '172.31.9.1', http_port: 8091, tftp: false });
  nv = await adminNova(c);
  // the provisioning network, flat, as `stratus up` makes it (servers may use it too)
  provisioningNet = await provisioningNetwork(c, 'bm-compute', '172.31.9.0/24');
  const img = await c.call('POST', '/image/v2/images', { token: c.adminToken, body: { name: 'bm-disk', disk_format: 'raw', container_format: 'bare', visibility: 'public' } });
  imageId = img.body.id;
  const up = await fetch(`${c.url}/image/v2/images/${imageId}/file`, { method: 'PUT', headers: { 'X-Auth-Token': c.adminToken, 'Content-Type': 'application/octet-stream' }, body: Buffer.alloc(4096, 7) });
  assert.equal(up.status, 204);
});
const bm = () => ironic(cloud);
const node = async (n: string) => (await bm()('GET', `/v1/nodes/${n}`)).body;
const verb = (n: string, body: Record<string, unknown>) => bm()('PUT', `/v1/nodes/${n}/states/provision`, { body });
const server = async (id: string) => (await nv.call('GET', `/servers/${id}`, { version: '2.96' })).body.server;

/** Polls `f` until it gives a truthy value (the engine acts on events and a 2 s tick). */

/** An available node of `rc` (enrolled, verified, cleaned through the conductor double), with one port. */
async function availableNode(name: string, rc: string, mac: string): Promise<string> {
  const r = await bm()('POST', '/v1/nodes', { body: { driver: 'ipmi', name, resource_class: rc, driver_info: { ipmi_address: '192.0.2.40', ipmi_password: 'pw' }, properties: { cpus: 8, memory_mb: 16384, local_gb: 100 } } });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  const id = r.body.uuid as string;
  const p = await bm()('POST', '/v1/ports', { body: { node_uuid: id, address: mac, local_link_connection: { switch_id: '0a:1b:2c:3d:4e:5f', port_id: `Ethernet1/${name.length}`, switch_info: 'tor-1' } } });
  assert.equal(p.status, 201, JSON.stringify(p.body));
  assert.equal((await verb(id, { target: 'manage' })).status, 202);
  await cond.finish(id, 'succeeded');
  assert.equal((await verb(id, { target: 'provide' })).status, 202);
  await cond.finish(id, 'succeeded');
  assert.equal((await node(id)).provision_state, 'available');
  return id;
}

/** A bare-metal flavor: one unit of CUSTOM_<rc>, VCPU/MEMORY_MB/DISK_GB zeroed (Nova's ironic flavors). */
async function bmFlavor(name: string, rc: string): Promise<string> {
  const f = await nv.call('POST', '/flavors', { body: { flavor: { name, ram: 512, vcpus: 1, disk: 10 } } });
  assert.equal(f.status, 200, JSON.stringify(f.body));
  const id = f.body.flavor.id as string;
  const x = await nv.call('POST', `/flavors/${id}/os-extra_specs`, {
    body: { extra_specs: { [`resources:CUSTOM_${rc.toUpperCase()}`]: '1', 'resources:VCPU': '0', 'resources:MEMORY_MB': '0', 'resources:DISK_GB': '0' } },
  });
  assert.equal(x.status, 200, JSON.stringify(x.body));
  return id;
}

async function create(name: string, flavorRef: string, extra: Record<string, unknown> = {}): Promise<string> {
  const r = await nv.call('POST', '/servers', { body: { server: { name, flavorRef, imageRef: imageId, networks: 'none', ...extra } }, version: '2.96' });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  return r.body.server.id as string;
}

const allocations = async (consumer: string) =>
  cloud.server.database.db.selectFrom('placement_allocations').selectAll().where('consumer_uuid', '=', consumer).execute();

/** Reports the node's power request carried out (what a conductor says after acting on spec.power). */
async function powerDone(id: string, state: 'power on' | 'power off') {
  const { version, spec } = await cond.spec(id);
  assert.ok(spec.power, `node ${id} has a power request`);
  await cond.report(id, version, { power_state: state, power_seq: spec.power.seq });
  return spec.power;
}

test('a bare-metal server: deployed on a free node with its key in the config drive, powered, deleted back to a clean node', async () => {
  const n1 = await availableNode('bmc-life-1', 'bm-life', '52:54:00:b1:00:01');
  const flavor = await bmFlavor('bm-life', 'bm_life');
  const kp = await nv.call('POST', '/os-keypairs', { body: { keypair: { name: 'bm-key' } } });
  assert.equal(kp.status, 200, JSON.stringify(kp.body));
  const id = await create('bm-life', flavor, { key_name: 'bm-key', user_data: Buffer.from('#cloud-config\nhostname: bm\n').toString('base64') });

  // placed on the node: instance_uuid, instance_info and a deploy with Ironic's JSON config drive
  const n = await until('the node deploying', async () => { const x = await node(n1); return x.provision_state === 'deploying' ? x : null; });
  assert.equal(n.instance_uuid, id);
  assert.equal(n.instance_info.image_source, imageId);
  assert.equal(n.instance_info.root_gb, '10');
  assert.equal(n.instance_info.display_name, 'bm-life');
  let s = await server(id);
  assert.equal(s.status, 'BUILD');
  assert.equal(s['OS-EXT-SRV-ATTR:host'], 'bm-compute-cond');
  assert.equal(s['OS-EXT-SRV-ATTR:hypervisor_hostname'], n1);
  const op = (await cond.spec(n1)).spec.operation;
  assert.equal(op.type, 'deploy');
  assert.equal(op.image.image_id, imageId);
  const md = op.config_drive.meta_data;
  assert.equal(md.uuid, id);
  assert.equal(md.name, 'bm-life');
  assert.equal(md.hostname, 'bm-life');
  assert.equal(md.availability_zone, 'nova');
  assert.deepEqual(md.public_keys, { 'bm-key': kp.body.keypair.public_key });
  assert.equal(op.config_drive.user_data, '#cloud-config\nhostname: bm\n');
  assert.deepEqual(Object.keys(op.config_drive.network_data).sort(), ['links', 'networks', 'services']);
  // the node's unit is the server's in placement
  assert.deepEqual((await allocations(id)).map((a) => [a.provider_uuid, a.resource_class, a.used]), [[n1, 'CUSTOM_BM_LIFE', 1]]);

  // the conductor boots the ramdisk, writes the image, boots the disk: ACTIVE, running
  await cond.finish(n1, 'running', { phase: 'pxe', power: 'power on' });
  assert.equal((await server(id)).status, 'BUILD');
  await cond.finish(n1, 'succeeded', { power: 'power on' });
  s = await until('the server ACTIVE', async () => { const x = await server(id); return x.status === 'ACTIVE' ? x : null; });
  assert.equal(s['OS-EXT-STS:power_state'], 1);
  assert.ok(s['OS-SRV-USG:launched_at']);

  // stop and start are the node's power
  assert.equal((await nv.call('POST', `/servers/${id}/action`, { body: { 'os-stop': null } })).status, 202);
  const off = await until('a power-off request', async () => (await cond.spec(n1)).spec.power);
  assert.equal(off.target, 'power off');
  assert.equal((await server(id))['OS-EXT-STS:task_state'], 'powering-off');
  await powerDone(n1, 'power off');
  s = await until('the server SHUTOFF', async () => { const x = await server(id); return x.status === 'SHUTOFF' ? x : null; });
  assert.equal(s['OS-EXT-STS:power_state'], 4);
  assert.equal(s['OS-EXT-STS:task_state'], null);
  assert.equal((await nv.call('POST', `/servers/${id}/action`, { body: { 'os-start': null } })).status, 202);
  const on = await until('a power-on request', async () => { const p = (await cond.spec(n1)).spec.power; return p?.target === 'power on' ? p : null; });
  assert.ok(on.seq > off.seq);
  await powerDone(n1, 'power on');
  s = await until('the server ACTIVE again', async () => { const x = await server(id); return x.status === 'ACTIVE' && x['OS-EXT-STS:task_state'] === null ? x : null; });
  assert.equal(s['OS-EXT-STS:power_state'], 1);

  // a hard reboot: the node's reboot, ACTIVE when the conductor has done it
  assert.equal((await nv.call('POST', `/servers/${id}/action`, { body: { reboot: { type: 'HARD' } } })).status, 202);
  const rb = await until('a reboot request', async () => { const p = (await cond.spec(n1)).spec.power; return p?.target === 'reboot' ? p : null; });
  assert.equal((await server(id)).status, 'HARD_REBOOT');
  await powerDone(n1, 'power on');
  await until('the reboot done', async () => { const x = await server(id); return x.status === 'ACTIVE' && x['OS-EXT-STS:task_state'] === null; });
  assert.ok(rb.seq > on.seq);

  // the node powered off behind Nova's back (Ironic's power sync): SHUTOFF, not restarted
  const { version } = await cond.spec(n1);
  await cond.report(n1, version, { power_state: 'power off' });
  await until('the server SHUTOFF by itself', async () => (await server(id)).status === 'SHUTOFF');

  // delete: undeploy (tear down, then cleaning); the server is gone once the node cleans, its allocation with it
  assert.equal((await nv.call('DELETE', `/servers/${id}`)).status, 204);
  const td = await until('a tear-down', async () => { const o = (await cond.spec(n1)).spec.operation; return o?.type === 'tear_down' ? o : null; });
  assert.equal(td.type, 'tear_down');
  assert.equal((await node(n1)).provision_state, 'deleting');
  assert.equal((await server(id))['OS-EXT-STS:task_state'], 'deleting');
  await cond.finish(n1, 'succeeded');
  await until('the server gone', async () => (await nv.call('GET', `/servers/${id}`)).status === 404);
  assert.deepEqual(await allocations(id), []);
  let after = await node(n1);
  assert.equal(after.provision_state, 'cleaning');
  assert.equal(after.instance_uuid, null);
  const clean = (await cond.spec(n1)).spec.operation;
  assert.equal(clean.type, 'clean');
  await cond.finish(n1, 'succeeded');
  after = await node(n1);
  assert.equal(after.provision_state, 'available');
  assert.deepEqual(after.instance_info, {});
  const inv = await cloud.server.database.db.selectFrom('placement_inventories').selectAll().where('provider_uuid', '=', n1).execute();
  assert.deepEqual(inv.map((i) => [i.resource_class, i.total, i.reserved]), [['CUSTOM_BM_LIFE', 1, 0]], 'the node is free again');
});

test('a server on a network: its port is bound to the node\'s NIC as Ironic\'s flat network binds it, and in the config drive', async () => {
  const mac = '52:54:00:b2:00:01';
  const n1 = await availableNode('bmc-net-1', 'bm-net', mac);
  const flavor = await bmFlavor('bm-net', 'bm_net');
  // the provisioning network itself: the deploy boots from the server's port (Ironic's flat network interface)
  const netId = provisioningNet;
  const id = await create('bm-net', flavor, { networks: [{ uuid: netId }] });
  await until('the node deploying', async () => (await node(n1)).provision_state === 'deploying');
  const ports = (await cloud.call('GET', `/network/v2.0/ports?network_id=${netId}&mac_address=${mac}`, { token: cloud.adminToken })).body.ports;
  assert.equal(ports.length, 1, 'one port for the NIC: the server\'s, no provisioning port beside it');
  const p = ports[0];
  assert.equal(p.device_id, id);
  assert.deepEqual(p.extra_dhcp_opts.find((o: any) => o.opt_name === 'tag:ipxe,67')?.opt_value, 'http://172.31.9.1:8091/boot.ipxe', 'the deploy\'s PXE options on it');
  assert.equal(p.mac_address, mac);
  assert.equal(p['binding:host_id'], cond.hostname, 'bound to the host of the node\'s conductor, which reaches the node');
  assert.equal(p['binding:vnic_type'], 'baremetal');
  assert.equal(p['binding:vif_type'], 'other');
  assert.deepEqual(p['binding:profile'], { local_link_information: [{ switch_id: '0a:1b:2c:3d:4e:5f', port_id: 'Ethernet1/9', switch_info: 'tor-1' }] });
  // Nova's VIF attach: the node's port holds the VIF
  assert.deepEqual((await bm()('GET', `/v1/nodes/${n1}/vifs`)).body.vifs, [{ id: p.id }]);
  const cd = (await cond.spec(n1)).spec.operation.config_drive;
  assert.equal(cd.network_data.links[0].ethernet_mac_address, mac);
  assert.equal(cd.network_data.links[0].vif_id, p.id);
  assert.equal(cd.network_data.networks[0].network_id, netId);
  assert.equal(cd.network_data.networks[0].link, cd.network_data.links[0].id);
  // the server's addresses are the port's
  await cond.finish(n1, 'succeeded', { power: 'power on' });
  const s = await until('ACTIVE', async () => { const x = await server(id); return x.status === 'ACTIVE' ? x : null; });
  assert.equal(s.addresses.baremetal[0].addr, p.fixed_ips[0].ip_address);
  assert.equal(s.addresses.baremetal[0]['OS-EXT-IPS-MAC:mac_addr'], mac);
  const after = (await cloud.call('GET', `/network/v2.0/ports/${p.id}`, { token: cloud.adminToken })).body.port;
  assert.deepEqual(after.extra_dhcp_opts, [], 'the deploy\'s PXE options gone with the deploy');
  // deleted: the VIF leaves the node, the server's port goes; the cleaning after the tear down boots from it (the
  // node's MAC keeps its address and DHCP entry), so it is handed over to the cleaning and goes when that ends
  assert.equal((await nv.call('DELETE', `/servers/${id}`)).status, 204);
  await until('a tear-down', async () => (await cond.spec(n1)).spec.operation?.type === 'tear_down');
  await cond.finish(n1, 'succeeded');
  await until('the server gone', async () => (await nv.call('GET', `/servers/${id}`)).status === 404);
  assert.deepEqual((await bm()('GET', `/v1/nodes/${n1}/vifs`)).body.vifs, []);
  await until('the port gone from the server', async () => (await cloud.call('GET', `/network/v2.0/ports?device_id=${id}`, { token: cloud.adminToken })).body.ports.length === 0);
  const { spec } = await cond.spec(n1);
  assert.equal(spec.operation?.type, 'clean');
  assert.deepEqual(spec.provisioning?.port_ids, [p.id], 'the cleaning boots from the VIF');
  const cleaning = (await cloud.call('GET', `/network/v2.0/ports/${p.id}`, { token: cloud.adminToken })).body.port;
  assert.equal(cleaning.device_owner, 'baremetal:none');
  assert.equal(cleaning.device_id, n1);
  assert.equal(cleaning.mac_address, mac);
  assert.deepEqual(cleaning.fixed_ips, p.fixed_ips);
  assert.equal(cleaning['binding:host_id'], cond.hostname);
  assert.equal(cleaning.extra_dhcp_opts.find((o: any) => o.opt_name === 'tag:ipxe,67')?.opt_value, 'http://172.31.9.1:8091/boot.ipxe');
  await cond.finish(n1, 'succeeded');
  await until('available', async () => (await node(n1)).provision_state === 'available');
  assert.equal((await cloud.call('GET', `/network/v2.0/ports/${p.id}`, { token: cloud.adminToken })).status, 404, 'the port goes with the cleaning');
});

test('two servers, one node: never both; the second is ERROR with NoValidHost', async () => {
  const n1 = await availableNode('bmc-race-1', 'bm-race', '52:54:00:b3:00:01');
  const flavor = await bmFlavor('bm-race', 'bm_race');
  const [a, b] = await Promise.all([create('bm-race-a', flavor), create('bm-race-b', flavor)]);
  const settled = await until('one placed, one refused', async () => {
    const ss = await Promise.all([server(a!), server(b!)]);
    return ss.some((x) => x.status === 'ERROR') && ss.some((x) => x['OS-EXT-SRV-ATTR:hypervisor_hostname'] === n1) ? ss : null;
  });
  const failed = settled.find((x) => x.status === 'ERROR')!;
  const placed = settled.find((x) => x.status !== 'ERROR')!;
  assert.equal(placed.status, 'BUILD');
  assert.equal(failed.fault.code, 500);
  assert.match(failed.fault.message, /^No valid host was found/);
  assert.equal(failed['OS-EXT-SRV-ATTR:host'], null);
  assert.deepEqual(await allocations(failed.id), []);
  assert.equal((await allocations(placed.id)).length, 1);
  await until('the node holding the placed one', async () => (await node(n1)).instance_uuid === placed.id);
  // one unit, one consumer
  const all = await cloud.server.database.db.selectFrom('placement_allocations').selectAll().where('provider_uuid', '=', n1).execute();
  assert.deepEqual(all.map((x) => x.consumer_uuid), [placed.id]);
});

test('a deploy that fails is rescheduled to another node; failing on every try, ERROR with the node\'s last_error', async () => {
  const nodes = [
    await availableNode('bmc-fail-1', 'bm-fail', '52:54:00:b4:00:01'),
    await availableNode('bmc-fail-2', 'bm-fail', '52:54:00:b4:00:02'),
    await availableNode('bmc-fail-3', 'bm-fail', '52:54:00:b4:00:03'),
  ];
  const flavor = await bmFlavor('bm-fail', 'bm_fail');
  const id = await create('bm-fail', flavor);
  const tried: string[] = [];
  for (let i = 0; i < 3; i++) {
    const on = await until(`try ${i + 1} deploying`, async () => {
      for (const n of nodes) if (!tried.includes(n) && (await node(n)).provision_state === 'deploying') return n;
      return null;
    });
    tried.push(on);
    assert.equal((await server(id))['OS-EXT-SRV-ATTR:hypervisor_hostname'], on);
    await cond.finish(on, 'failed', { message: `Disk write failed on try ${i + 1}` });
    // the failed node is undeployed and given back
    await until('the failed node torn down', async () => { const x = await node(on); return x.provision_state === 'deleting' && x.instance_uuid === null; });
  }
  const s = await until('ERROR', async () => { const x = await server(id); return x.status === 'ERROR' ? x : null; });
  assert.match(s.fault.message, /Exceeded max scheduling attempts 3 for instance .*Last exception: Disk write failed on try 3/);
  assert.equal(s['OS-EXT-SRV-ATTR:host'], null);
  assert.deepEqual(await allocations(id), []);
  assert.deepEqual([...tried].sort(), [...nodes].sort());
  // the nodes clean back to available
  for (const n of nodes) {
    await cond.finish(n, 'succeeded');
    await cond.finish(n, 'succeeded');
    assert.equal((await node(n)).provision_state, 'available');
  }
  assert.equal((await nv.call('DELETE', `/servers/${id}`)).status, 204);
});

test('what a bare-metal server cannot do is Nova\'s 409 (and 400 for remote consoles); its image must be a whole disk', async () => {
  const n1 = await availableNode('bmc-refuse-1', 'bm-refuse', '52:54:00:b5:00:01');
  const flavor = await bmFlavor('bm-refuse', 'bm_refuse');
  const id = await create('bm-refuse', flavor);
  await until('deploying', async () => (await node(n1)).provision_state === 'deploying');
  await cond.finish(n1, 'succeeded', { power: 'power on' });
  await until('ACTIVE', async () => (await server(id)).status === 'ACTIVE');
  for (const [body, action] of [[{ pause: null }, 'pause'], [{ suspend: null }, 'suspend'], [{ 'os-migrateLive': { host: null, block_migration: 'auto' } }, 'os-migrateLive'],
    [{ resize: { flavorRef: flavor } }, 'resize'], [{ shelve: null }, 'shelve'], [{ createImage: { name: 'snap' } }, 'createImage'], [{ rescue: null }, 'rescue']] as const) {
    const r = await nv.call('POST', `/servers/${id}/action`, { body, version: '2.96' });
    assert.equal(r.status, 409, `${action}: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.conflictingRequest.message, `Cannot '${action}' instance ${id}: a baremetal server does not support ${action}.`);
  }
  const con = await nv.call('POST', `/servers/${id}/remote-consoles`, { body: { remote_console: { protocol: 'serial', type: 'serial' } }, version: '2.96' });
  assert.equal(con.status, 400, JSON.stringify(con.body));
  // a container image (or an ISO) does not boot a bare-metal flavor
  const iso = await cloud.call('POST', '/image/v2/images', { token: cloud.adminToken, body: { name: 'bm-iso', disk_format: 'iso', container_format: 'bare', visibility: 'public' } });
  await fetch(`${cloud.url}/image/v2/images/${iso.body.id}/file`, { method: 'PUT', headers: { 'X-Auth-Token': cloud.adminToken, 'Content-Type': 'application/octet-stream' }, body: Buffer.alloc(1024, 1) });
  const bad = await nv.call('POST', '/servers', { body: { server: { name: 'bm-iso', flavorRef: flavor, imageRef: iso.body.id, networks: 'none' } }, version: '2.96' });
  assert.equal(bad.status, 400, JSON.stringify(bad.body));
  assert.match(bad.body.badRequest.message, /whole-disk image/);
  assert.equal((await nv.call('DELETE', `/servers/${id}`)).status, 204);
  await until('a tear-down', async () => (await cond.spec(n1)).spec.operation?.type === 'tear_down');
  await cond.finish(n1, 'succeeded');
  await until('the server gone', async () => (await nv.call('GET', `/servers/${id}`)).status === 404);
});

test('console log show of a bare-metal server: the node\'s conductor answers a baremetal_node request with its recorded serial console; its refusal is a 409', async () => {
  const n1 = await availableNode('bmc-console-1', 'bm-console', '52:54:00:b5:10:01');
  const flavor = await bmFlavor('bm-console', 'bm_console');
  const id = await create('bm-console', flavor);
  await until('deploying', async () => (await node(n1)).provision_state === 'deploying');
  await cond.finish(n1, 'succeeded', { power: 'power on' });
  await until('ACTIVE', async () => (await server(id)).status === 'ACTIVE');
  const serial = 'SeaBIOS (version 1.16.2)\r\nBooting from Hard Disk...\r\nstratus-tiny login: \r\nline 4\r\nline 5\r\n';
  /** Asks for the console output while the test conductor answers the request it is handed. */
  const consoleLog = async (body: unknown, answer: (q: { args: Record<string, unknown> }) => Parameters<TestConductor['answer']>[1]) => {
    const call = nv.call('POST', `/servers/${id}/action`, { body, version: '2.96' });
    let q;
    for (let i = 0; i < 100 && !q; i++) {
      q = (await cond.requests()).find((r) => r.resource_id === n1);
      if (!q) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(q, 'the conductor is handed the request');
    assert.equal(q.kind, 'baremetal_node');
    assert.equal(q.action, 'console');
    await cond.answer(q.id, answer(q));
    return { r: await call, q };
  };
  const all = await consoleLog({ 'os-getConsoleOutput': {} }, () => ({ result: { output: serial } }));
  assert.equal(all.r.status, 200, JSON.stringify(all.r.body));
  assert.deepEqual(all.r.body, { output: serial });
  assert.equal(all.q.args.length, null);
  // length: the conductor is asked for the tail, and the API keeps to it whatever it answers (Nova's count: the text
  // after the last newline is a line)
  const tail = await consoleLog({ 'os-getConsoleOutput': { length: 3 } }, () => ({ result: { output: serial } }));
  assert.equal(tail.q.args.length, 3);
  assert.deepEqual(tail.r.body, { output: 'line 4\r\nline 5\r\n' });
  // a BMC without a serial console: the conductor's refusal is Nova's 409 with its words
  const none = await consoleLog({ 'os-getConsoleOutput': { length: 5 } }, () => ({ error: { class: 'user', code: 'console_unavailable', message: `The BMC of node ${n1} offers no serial console.` } }));
  assert.equal(none.r.status, 409, JSON.stringify(none.r.body));
  assert.match(none.r.body.conflictingRequest.message, /offers no serial console/);
  // a bad length stays Nova's 400, before any request
  const bad = await nv.call('POST', `/servers/${id}/action`, { body: { 'os-getConsoleOutput': { length: -2 } }, version: '2.96' });
  assert.equal(bad.status, 400, JSON.stringify(bad.body));
  assert.equal((await nv.call('DELETE', `/servers/${id}`)).status, 204);
  await until('a tear-down', async () => (await cond.spec(n1)).spec.operation?.type === 'tear_down');
  await cond.finish(n1, 'succeeded');
  await until('the server gone', async () => (await nv.call('GET', `/servers/${id}`)).status === 404);
});

test('os-hypervisors lists the nodes as Nova\'s ironic driver does', async () => {
  const n1 = await availableNode('bmc-hyp-1', 'bm-hyp', '52:54:00:b6:00:01');
  const list = (await nv.call('GET', '/os-hypervisors/detail', { version: '2.53' })).body.hypervisors;
  const h = list.find((x: any) => x.hypervisor_hostname === n1);
  assert.ok(h, JSON.stringify(list.map((x: any) => x.hypervisor_hostname)));
  assert.equal(h.id, n1);
  assert.equal(h.hypervisor_type, 'ironic');
  assert.equal(h.service.host, 'bm-compute-cond');
  assert.equal(h.vcpus, 8);
  assert.equal(h.memory_mb, 16384);
  assert.equal(h.local_gb, 100);
  assert.equal(h.running_vms, 0);
  const one = await nv.call('GET', `/os-hypervisors/${n1}`, { version: '2.53' });
  assert.equal(one.status, 200, JSON.stringify(one.body));
  assert.equal(one.body.hypervisor.hypervisor_hostname, n1);
  // before 2.53 an integer id
  const old = (await nv.call('GET', '/os-hypervisors')).body.hypervisors.find((x: any) => x.hypervisor_hostname === n1);
  assert.equal(typeof old.id, 'number');
});

test('rebuild: Ironic\'s rebuild of the node with the new image and a new config drive', async () => {
  const n1 = await availableNode('bmc-rebuild-1', 'bm-rebuild', '52:54:00:b7:00:01');
  const flavor = await bmFlavor('bm-rebuild', 'bm_rebuild');
  const id = await create('bm-rebuild', flavor);
  await until('deploying', async () => (await node(n1)).provision_state === 'deploying');
  const first = (await cond.spec(n1)).spec.operation;
  await cond.finish(n1, 'succeeded', { power: 'power on' });
  await until('ACTIVE', async () => (await server(id)).status === 'ACTIVE');
  const img = await cloud.call('POST', '/image/v2/images', { token: cloud.adminToken, body: { name: 'bm-disk-2', disk_format: 'qcow2', container_format: 'bare', visibility: 'public' } });
  await fetch(`${cloud.url}/image/v2/images/${img.body.id}/file`, { method: 'PUT', headers: { 'X-Auth-Token': cloud.adminToken, 'Content-Type': 'application/octet-stream' }, body: Buffer.alloc(2048, 3) });
  const r = await nv.call('POST', `/servers/${id}/action`, { body: { rebuild: { imageRef: img.body.id, name: 'bm-rebuilt' } }, version: '2.96' });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  const op = await until('a new deploy', async () => { const o = (await cond.spec(n1)).spec.operation; return o?.type === 'deploy' && o.id !== first.id ? o : null; });
  assert.equal(op.image.image_id, img.body.id);
  assert.equal(op.image.disk_format, 'qcow2');
  assert.equal(op.config_drive.meta_data.name, 'bm-rebuilt');
  assert.equal((await server(id)).status, 'REBUILD');
  await cond.finish(n1, 'succeeded', { power: 'power on' });
  const s = await until('ACTIVE again', async () => { const x = await server(id); return x.status === 'ACTIVE' ? x : null; });
  assert.equal(s.image.id, img.body.id);
  assert.equal((await node(n1)).instance_info.image_source, img.body.id);
  // an image that is no whole disk: Nova's 400, nothing asked of the node
  const iso = await cloud.call('POST', '/image/v2/images', { token: cloud.adminToken, body: { name: 'bm-iso-2', disk_format: 'iso', container_format: 'bare', visibility: 'public' } });
  await fetch(`${cloud.url}/image/v2/images/${iso.body.id}/file`, { method: 'PUT', headers: { 'X-Auth-Token': cloud.adminToken, 'Content-Type': 'application/octet-stream' }, body: Buffer.alloc(1024, 1) });
  const bad = await nv.call('POST', `/servers/${id}/action`, { body: { rebuild: { imageRef: iso.body.id } }, version: '2.96' });
  assert.equal(bad.status, 400, JSON.stringify(bad.body));
  assert.equal((await nv.call('DELETE', `/servers/${id}`)).status, 204);
  await until('a tear-down', async () => (await cond.spec(n1)).spec.operation?.type === 'tear_down');
  await cond.finish(n1, 'succeeded');
  await until('the server gone', async () => (await nv.call('GET', `/servers/${id}`)).status === 404);
});

test('concurrent schedulers (replicas) never give one node twice', async () => {
  const n1 = await availableNode('bmc-conc-1', 'bm-conc', '52:54:00:b8:00:01');
  const flavor = await bmFlavor('bm-conc', 'bm_conc');
  const db = cloud.server.database.db;
  const list = async () => db.selectFrom('baremetal_nodes').select(['uuid', 'conductor']).execute();
  // three servers waiting; three more schedulers (as on other replicas) race this process's own for them
  const ids = [await create('bm-conc-a', flavor), await create('bm-conc-b', flavor), await create('bm-conc-c', flavor)];
  const log = pino({ level: 'silent' });
  const replicas = [new Scheduler(db, log, {}, undefined, list), new Scheduler(db, log, {}, undefined, list), new Scheduler(db, log, {}, undefined, list)];
  await Promise.all(replicas.map((r) => r.round()));
  await until('all decided', async () => {
    const rows = await db.selectFrom('compute_servers').select(['id', 'task_state']).where('id', 'in', ids).execute();
    return rows.every((r) => r.task_state !== 'scheduling');
  });
  const rows = await db.selectFrom('compute_servers').select(['id', 'node', 'vm_state']).where('id', 'in', ids).execute();
  assert.equal(rows.filter((r) => r.node === n1).length, 1, JSON.stringify(rows));
  assert.equal(rows.filter((r) => r.vm_state === 'error').length, 2);
  const allocs = await db.selectFrom('placement_allocations').selectAll().where('provider_uuid', '=', n1).execute();
  assert.equal(allocs.length, 1);
  for (const id of ids) await nv.call('DELETE', `/servers/${id}`);
});

test('a node in maintenance whose BMC stops answering shows NOSTATE; a tear down that fails is the delete\'s ERROR, a new delete retries', async () => {
  const n1 = await availableNode('bmc-maint-1', 'bm-maint', '52:54:00:b9:00:01');
  const flavor = await bmFlavor('bm-maint', 'bm_maint');
  const id = await create('bm-maint', flavor);
  await until('deploying', async () => (await node(n1)).provision_state === 'deploying');
  await cond.finish(n1, 'succeeded', { power: 'power on' });
  await until('ACTIVE', async () => (await server(id)).status === 'ACTIVE');
  assert.equal((await bm()('PUT', `/v1/nodes/${n1}/maintenance`, { body: { reason: 'BMC flapping' } })).status, 202);
  const { version } = await cond.spec(n1);
  await cond.report(n1, version, { power_state: null }, { class: 'transient', code: 'bmc_unreachable', message: 'BMC 192.0.2.40 does not answer' });
  const s = await until('NOSTATE', async () => { const x = await server(id); return x['OS-EXT-STS:power_state'] === 0 ? x : null; });
  assert.equal(s.status, 'ACTIVE');
  assert.equal((await bm()('DELETE', `/v1/nodes/${n1}/maintenance`)).status, 202);
  const v2 = (await cond.spec(n1)).version;
  await cond.report(n1, v2, { power_state: 'power on' });
  await until('RUNNING again', async () => (await server(id))['OS-EXT-STS:power_state'] === 1);

  // the tear down fails: the node is in error, the server ERROR with its last_error
  assert.equal((await nv.call('DELETE', `/servers/${id}`)).status, 204);
  await until('a tear-down', async () => (await cond.spec(n1)).spec.operation?.type === 'tear_down');
  await cond.finish(n1, 'failed', { message: 'BMC refused power off' });
  const e = await until('ERROR', async () => { const x = await server(id); return x.status === 'ERROR' ? x : null; });
  assert.match(e.fault.message, /BMC refused power off/);
  assert.equal((await node(n1)).provision_state, 'error');
  // deleted again: undeployed again, and this time it cleans
  assert.equal((await nv.call('DELETE', `/servers/${id}`)).status, 204);
  await until('a new tear-down', async () => (await node(n1)).provision_state === 'deleting');
  await cond.finish(n1, 'succeeded');
  await until('the server gone', async () => (await nv.call('GET', `/servers/${id}`)).status === 404);
  await cond.finish(n1, 'succeeded');
  assert.equal((await node(n1)).provision_state, 'available');
});

test('a rebuild the node refuses: NodeLocked is asked again once the node is free; any other refusal is ERROR with the fault, never ACTIVE on the old image', async () => {
  const n1 = await availableNode('bmc-rbref-1', 'bm-rbref', '52:54:00:b7:10:01');
  const flavor = await bmFlavor('bm-rbref', 'bm_rbref');
  const id = await create('bm-rbref', flavor);
  await until('deploying', async () => (await node(n1)).provision_state === 'deploying');
  const first = (await cond.spec(n1)).spec.operation;
  await cond.finish(n1, 'succeeded', { power: 'power on' });
  await until('ACTIVE', async () => (await server(id)).status === 'ACTIVE');
  const img = await cloud.call('POST', '/image/v2/images', { token: cloud.adminToken, body: { name: 'bm-disk-rbref', disk_format: 'raw', container_format: 'bare', visibility: 'public' } });
  await fetch(`${cloud.url}/image/v2/images/${img.body.id}/file`, { method: 'PUT', headers: { 'X-Auth-Token': cloud.adminToken, 'Content-Type': 'application/octet-stream' }, body: Buffer.alloc(2048, 5) });
  // another request holds the node (another replica opening its ports): Ironic refuses the rebuild with 409 NodeLocked
  const db = cloud.server.database.db;
  await db.updateTable('baremetal_nodes').set({ reservation: 'bm-replica-2', updated_at: new Date().toISOString() }).where('uuid', '=', n1).execute();
  const locked = await bm()('PUT', `/v1/nodes/${n1}/states/provision`, { body: { target: 'rebuild' } });
  assert.equal(locked.status, 409, JSON.stringify(locked.body));
  assert.match(JSON.parse(locked.body.error_message).faultstring, /is locked by host bm-replica-2/);
  const r = await nv.call('POST', `/servers/${id}/action`, { body: { rebuild: { imageRef: img.body.id } }, version: '2.96' });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  // passes go by (the engine's 2 s tick): refused each time, the server still REBUILD, the node as it was
  await new Promise((res) => setTimeout(res, 2500));
  assert.equal((await server(id)).status, 'REBUILD');
  let n = await node(n1);
  assert.equal(n.provision_state, 'active');
  assert.equal(n.instance_info.image_source, imageId, 'a refused rebuild writes no new image');
  assert.equal(n.instance_info.stratus_rebuild_seq, undefined, 'nor the rebuild asked');
  assert.equal((await cond.spec(n1)).spec.operation, null);
  // the node free again: the next pass has the rebuild accepted, and the node is re-imaged
  await db.updateTable('baremetal_nodes').set({ reservation: null }).where('uuid', '=', n1).execute();
  const op = await until('a new deploy', async () => { const o = (await cond.spec(n1)).spec.operation; return o?.type === 'deploy' && o.id !== first.id ? o : null; });
  assert.equal(op.image.image_id, img.body.id);
  assert.equal((await server(id)).status, 'REBUILD');
  await cond.finish(n1, 'succeeded', { power: 'power on' });
  const s = await until('ACTIVE on the new image', async () => { const x = await server(id); return x.status === 'ACTIVE' ? x : null; });
  assert.equal(s.image.id, img.body.id);
  // a refusal that is no lock (a node in maintenance: Ironic's 400): Nova's InstanceDeployFailure, ERROR with the fault;
  // the node keeps running the image it has
  assert.equal((await bm()('PUT', `/v1/nodes/${n1}/maintenance`, { body: { reason: 'disk swap' } })).status, 202);
  const again = await nv.call('POST', `/servers/${id}/action`, { body: { rebuild: { imageRef: imageId } }, version: '2.96' });
  assert.equal(again.status, 202, JSON.stringify(again.body));
  const e = await until('ERROR', async () => { const x = await server(id); return x.status === 'ERROR' ? x : null; });
  assert.match(e.fault.message, new RegExp(`^Failed to request Ironic to rebuild instance ${id}: .*maintenance mode`));
  n = await node(n1);
  assert.equal(n.provision_state, 'active');
  assert.equal(n.instance_info.image_source, img.body.id);
  assert.equal((await cond.spec(n1)).spec.operation, null);
  assert.equal((await bm()('DELETE', `/v1/nodes/${n1}/maintenance`)).status, 202);
  assert.equal((await nv.call('DELETE', `/servers/${id}`)).status, 204);
  await until('a tear-down', async () => (await cond.spec(n1)).spec.operation?.type === 'tear_down');
  await cond.finish(n1, 'succeeded');
  await until('the server gone', async () => (await nv.call('GET', `/servers/${id}`)).status === 404);
});

test('a port the user gave, booted from by the cleaning after its server: it stays bound through the cleaning, Neutron\'s DELETE hands it over to the cleaning, and it goes when that ends', async () => {
  const mac = '52:54:00:b2:10:01';
  const n1 = await availableNode('bmc-keep-1', 'bm-keep', mac);
  const flavor = await bmFlavor('bm-keep', 'bm_keep');
  const net = (path: string, o: { method?: string; body?: unknown } = {}) => cloud.call(o.method ?? 'GET', `/network/v2.0${path}`, { token: cloud.adminToken, body: o.body });
  // the user's own port on the provisioning network, with a DHCP option of its own
  const made = await net('/ports', { method: 'POST', body: { port: { network_id: provisioningNet, name: 'keep-me', extra_dhcp_opts: [{ opt_name: 'domain-search', opt_value: 'example.org' }] } } });
  assert.equal(made.status, 201, JSON.stringify(made.body));
  const portId = made.body.port.id as string;
  const id = await create('bm-keep', flavor, { networks: [{ port: portId }] });
  await until('deploying', async () => (await node(n1)).provision_state === 'deploying');
  await cond.finish(n1, 'succeeded', { power: 'power on' });
  await until('ACTIVE', async () => (await server(id)).status === 'ACTIVE');
  // deleted: the port the user gave is kept; the cleaning after the tear down boots from it
  assert.equal((await nv.call('DELETE', `/servers/${id}`)).status, 204);
  await until('a tear-down', async () => (await cond.spec(n1)).spec.operation?.type === 'tear_down');
  await cond.finish(n1, 'succeeded');
  await until('the server gone', async () => (await nv.call('GET', `/servers/${id}`)).status === 404);
  assert.deepEqual((await cond.spec(n1)).spec.provisioning?.port_ids, [portId], 'the cleaning boots from the user\'s port');
  let p = (await net(`/ports/${portId}`)).body.port;
  assert.equal(p.device_id, '', 'no server holds it');
  assert.equal(p.name, 'keep-me');
  assert.equal(p['binding:host_id'], cond.hostname, 'still bound to the conductor\'s host: its DHCP is the cleaning\'s boot');
  assert.equal(p.extra_dhcp_opts.find((o: any) => o.opt_name === 'tag:ipxe,67')?.opt_value, 'http://172.31.9.1:8091/boot.ipxe');
  // Neutron's DELETE of it mid-cleaning: handed over to the cleaning (the admin's provisioning port of the node), not removed
  assert.equal((await net(`/ports/${portId}`, { method: 'DELETE' })).status, 204);
  p = (await net(`/ports/${portId}`)).body.port;
  assert.ok(p, 'the node keeps its port through the cleaning');
  assert.equal(p.device_owner, 'baremetal:none');
  assert.equal(p.device_id, n1);
  assert.equal(p.mac_address, mac);
  assert.equal(p['binding:host_id'], cond.hostname);
  assert.equal(p.extra_dhcp_opts.find((o: any) => o.opt_name === 'tag:ipxe,67')?.opt_value, 'http://172.31.9.1:8091/boot.ipxe');
  await cond.finish(n1, 'succeeded');
  await until('available', async () => (await node(n1)).provision_state === 'available');
  assert.equal((await net(`/ports/${portId}`)).status, 404, 'the port goes with the cleaning');
});

test('a port the user gave, kept after its server and its node\'s cleaning: its own options back, unbound', async () => {
  const mac = '52:54:00:b2:20:01';
  const n1 = await availableNode('bmc-keep-2', 'bm-keep2', mac);
  const flavor = await bmFlavor('bm-keep2', 'bm_keep2');
  const net = (path: string, o: { method?: string; body?: unknown } = {}) => cloud.call(o.method ?? 'GET', `/network/v2.0${path}`, { token: cloud.adminToken, body: o.body });
  // the user set a PXE-named option of their own (a boot file for their own installs) and another one
  const own = [{ opt_name: 'tag:ipxe,67', opt_value: 'http://10.0.0.5/mine.ipxe', ip_version: 4 }, { opt_name: 'domain-search', opt_value: 'example.org', ip_version: 4 }];
  const made = await net('/ports', { method: 'POST', body: { port: { network_id: provisioningNet, name: 'keep-mine', extra_dhcp_opts: own } } });
  assert.equal(made.status, 201, JSON.stringify(made.body));
  const portId = made.body.port.id as string;
  const id = await create('bm-keep2', flavor, { networks: [{ port: portId }] });
  await until('deploying', async () => (await node(n1)).provision_state === 'deploying');
  let p = (await net(`/ports/${portId}`)).body.port;
  assert.equal(p.extra_dhcp_opts.find((o: any) => o.opt_name === 'tag:ipxe,67')?.opt_value, 'http://172.31.9.1:8091/boot.ipxe', 'the deploy boots from the conductor');
  await cond.finish(n1, 'succeeded', { power: 'power on' });
  await until('ACTIVE', async () => (await server(id)).status === 'ACTIVE');
  const sorted = (x: any[]) => [...x].sort((a, b) => a.opt_name.localeCompare(b.opt_name));
  p = (await net(`/ports/${portId}`)).body.port;
  assert.deepEqual(sorted(p.extra_dhcp_opts), sorted(own), 'the deploy\'s end gives back the user\'s own options, its own boot file too');
  assert.deepEqual(p['binding:profile'].stratus_provisioning_node, undefined);
  assert.equal((await nv.call('DELETE', `/servers/${id}`)).status, 204);
  await until('a tear-down', async () => (await cond.spec(n1)).spec.operation?.type === 'tear_down');
  await cond.finish(n1, 'succeeded');
  await until('the server gone', async () => (await nv.call('GET', `/servers/${id}`)).status === 404);
  await cond.finish(n1, 'succeeded');
  await until('available', async () => (await node(n1)).provision_state === 'available');
  p = (await net(`/ports/${portId}`)).body.port;
  assert.deepEqual(sorted(p.extra_dhcp_opts), sorted(own));
  assert.equal(p.device_id, '');
  assert.equal(p['binding:host_id'], '', 'unbound once the cleaning let it go');
  assert.equal(p['binding:vif_type'], 'unbound');
  assert.equal((await net(`/ports/${portId}`, { method: 'DELETE' })).status, 204);
  assert.equal((await net(`/ports/${portId}`)).status, 404);
});
