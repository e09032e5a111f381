// The provision state machine end to end with a test-double conductor (an
// agent registered over the real /agent/v1 API that answers its node specs
// with reports): enroll -> verifying -> manageable -> inspecting (ports and
// properties from the inventory) -> cleaning -> available -> deploying ->
// active -> deleting -> cleaning -> available; failures to `* failed` with
// last_error and node history; each verb in a wrong state refused with
// Ironic's 400 (409 while the conductor holds the node's lock); maintenance;
// abort; and placement's inventory following the node.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useCloud } from '../../harness.ts';
import { assertIronicError, ironic, provisioningNetwork, TestConductor } from './lib.ts';

let cond: TestConductor;
let imageId: string;
let provisioningNet: string;
const cloud = useCloud(async (c) => {
  cond = new TestConductor(c, 'bm-states-cond');
  await cond.register();
  const img = await c.call('POST', '/image/v2/images', { token: c.adminToken, body: { name: 'bm-img', disk_format: 'raw', container_format: 'bare' } });
  imageId = img.body.id;
  const up = await fetch(`${c.url}/image/v2/images/${imageId}/file`, { method: 'PUT', headers: { 'X-Auth-Token': c.adminToken, 'Content-Type': 'application/octet-stream' }, body: Buffer.alloc(4096, 7) });
  assert.equal(up.status, 204);
  // the provisioning network (config provisioningNetwork), as `stratus up` makes it
  provisioningNet = await provisioningNetwork(c, 'bm-states', '172.31.8.0/24');
});
/** The provisioning network's ports of a node (the network service's, as the admin sees them). */
const provisioningPorts = async (node: string) =>
  (await cloud.call('GET', `/network/v2.0/ports?network_id=${provisioningNet}&device_id=${node}`, { token: cloud.adminToken })).body.ports as any[];
const bm = () => ironic(cloud);
const show = async (n: string) => (await bm()('GET', `/v1/nodes/${n}`)).body;
const verb = (n: string, body: Record<string, unknown>, version?: string) => bm()('PUT', `/v1/nodes/${n}/states/provision`, { body, ...(version ? { version } : {}) });

async function enroll(name: string, o: Record<string, unknown> = {}) {
  const r = await bm()('POST', '/v1/nodes', { body: { driver: 'ipmi', name, resource_class: 'bm-gold', driver_info: { ipmi_address: '192.0.2.30', ipmi_password: 'topsecret' }, ...o } });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body.uuid as string;
}

/** Drives a fresh node to `available` through the conductor double. */
async function available(name: string): Promise<string> {
  const id = await enroll(name);
  assert.equal((await verb(name, { target: 'manage' })).status, 202);
  await cond.finish(id, 'succeeded');
  assert.equal((await verb(name, { target: 'provide' })).status, 202);
  await cond.finish(id, 'succeeded');
  assert.equal((await show(name)).provision_state, 'available');
  return id;
}

async function inventory(id: string) {
  const rows = await cloud.server.database.db.selectFrom('placement_inventories').selectAll().where('provider_uuid', '=', id).execute();
  return rows.map((r) => ({ rc: r.resource_class, total: r.total, reserved: r.reserved }));
}

test('the whole cycle: manage, inspect, provide, deploy, undeploy, with history and placement following', async () => {
  const id = await enroll('cycle-1');
  // a provider at once, reserved (not available yet)
  assert.deepEqual(await inventory(id), [{ rc: 'CUSTOM_BM_GOLD', total: 1, reserved: 1 }]);
  let r = await verb('cycle-1', { target: 'manage' });
  assert.equal(r.status, 202);
  assert.match(r.headers.get('location') ?? '', /\/v1\/nodes\/.*\/states$/);
  let n = await show('cycle-1');
  assert.equal(n.provision_state, 'verifying');
  assert.equal(n.target_provision_state, 'manageable');
  assert.equal(n.reservation, 'bm-states-cond');
  let op = await cond.finish(id, 'succeeded', { power: 'power off' });
  assert.equal(op.type, 'verify');
  n = await show('cycle-1');
  assert.equal(n.provision_state, 'manageable');
  assert.equal(n.target_provision_state, null);
  assert.equal(n.power_state, 'power off');
  assert.equal(n.reservation, null);

  // inspection: wait while the ramdisk boots, then ports and properties from the inventory
  await bm()('POST', '/v1/ports', { body: { node_uuid: id, address: '52:54:00:c1:c1:01' } });
  assert.equal((await verb('cycle-1', { target: 'inspect' })).status, 202);
  assert.equal((await show('cycle-1')).provision_state, 'inspecting');
  op = await cond.finish(id, 'running', { phase: 'pxe', power: 'power on' });
  assert.equal(op.type, 'inspect');
  assert.equal(op.boot_interface, 'ipxe');
  assert.equal((await show('cycle-1')).provision_state, 'inspect wait');
  // before 1.39 the wait state reads as inspecting
  assert.equal((await bm()('GET', '/v1/nodes/cycle-1', { version: '1.38' })).body.provision_state, 'inspecting');
  // the PXE NIC has a port on the provisioning network, bound to the conductor's host (which serves its DHCP)
  const prov = await provisioningPorts(id);
  assert.deepEqual(prov.map((p) => [p.mac_address, p.device_owner, p['binding:host_id'], p['binding:vnic_type']]), [['52:54:00:c1:c1:01', 'baremetal:none', 'bm-states-cond', 'baremetal']]);
  await cond.finish(id, 'succeeded', {
    inventory: { cpus: 4, cpu_arch: 'x86_64', memory_mb: 8192, disks: [{ name: '/dev/sda', size_bytes: 64 * 2 ** 30 }, { name: '/dev/sdb', size_bytes: 10 * 2 ** 30 }], nics: [{ name: 'eth0', mac: '52:54:00:C1:C1:01' }, { name: 'eth1', mac: '52:54:00:c1:c1:02' }], boot_mac: '52:54:00:c1:c1:01' },
  });
  n = await show('cycle-1');
  assert.equal(n.provision_state, 'manageable');
  assert.deepEqual(n.properties, { cpus: 4, memory_mb: 8192, local_gb: 64, cpu_arch: 'x86_64' });
  assert.ok(n.inspection_finished_at);
  assert.deepEqual(await provisioningPorts(id), [], 'the provisioning port goes with the inspection');
  const ports = (await bm()('GET', `/v1/ports/detail?node=${id}`)).body.ports;
  assert.deepEqual(ports.map((p: any) => [p.address, p.pxe_enabled]).sort(), [['52:54:00:c1:c1:01', true], ['52:54:00:c1:c1:02', false]]);
  assert.deepEqual((await cond.spec(id)).spec.nics.map((x: any) => x.mac).sort(), ['52:54:00:c1:c1:01', '52:54:00:c1:c1:02']);

  // provide: automated cleaning erases disk metadata, then available (and free in placement)
  assert.equal((await verb('cycle-1', { target: 'provide' })).status, 202);
  op = await cond.finish(id, 'succeeded');
  assert.deepEqual(op.steps, [{ interface: 'deploy', step: 'erase_devices_metadata' }]);
  assert.equal((await show('cycle-1')).provision_state, 'available');
  assert.deepEqual(await inventory(id), [{ rc: 'CUSTOM_BM_GOLD', total: 1, reserved: 0 }]);

  // deploy without an image: Ironic's 400, nothing moves
  assertIronicError(await verb('cycle-1', { target: 'active' }), 400, /Missing are: \['image_source'\]/);
  assert.equal((await show('cycle-1')).provision_state, 'available');
  await bm()('PATCH', '/v1/nodes/cycle-1', { body: [{ op: 'add', path: '/instance_info/image_source', value: imageId }, { op: 'add', path: '/instance_info/root_gb', value: 2 }, { op: 'add', path: '/instance_uuid', value: 'aaaaaaaa-0000-4000-8000-000000000001' }] });
  assert.deepEqual(await inventory(id), [{ rc: 'CUSTOM_BM_GOLD', total: 1, reserved: 1 }], 'an instance reserves the node');
  r = await verb('cycle-1', { target: 'active', configdrive: { meta_data: { uuid: 'x', hostname: 'bm' }, user_data: '#cloud-config\n', network_data: { links: [] } } });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  n = await show('cycle-1');
  assert.equal(n.provision_state, 'deploying');
  assert.equal(n.target_provision_state, 'active');
  assert.equal(n.instance_info.configdrive, '******');
  const dep = (await cond.spec(id)).spec.operation;
  assert.equal(dep.type, 'deploy');
  assert.deepEqual(dep.image, { image_id: imageId, disk_format: 'raw', hash_algo: 'sha512', hash_value: dep.image.hash_value, root_gb: 2 });
  assert.match(dep.image.hash_value, /^[0-9a-f]{128}$/);
  assert.deepEqual(dep.config_drive, { meta_data: { uuid: 'x', hostname: 'bm' }, user_data: '#cloud-config\n', network_data: { links: [] } });
  // a verb while the conductor holds the lock: Ironic's NodeLocked 409
  assertIronicError(await verb('cycle-1', { target: 'manage' }), 409, /is locked by host bm-states-cond/);
  await cond.finish(id, 'running', { phase: 'pxe' });
  assert.equal((await show('cycle-1')).provision_state, 'wait call-back');
  await cond.finish(id, 'running', { phase: 'write_image' });
  assert.equal((await show('cycle-1')).provision_state, 'deploying');
  await cond.finish(id, 'succeeded', { power: 'power on' });
  n = await show('cycle-1');
  assert.equal(n.provision_state, 'active');
  assert.equal(n.power_state, 'power on');
  assert.equal((await cond.spec(id)).spec.operation, null);

  // undeploy: tear down, then cleaning, then available
  assert.equal((await verb('cycle-1', { target: 'deleted' })).status, 202);
  assert.equal((await show('cycle-1')).provision_state, 'deleting');
  op = await cond.finish(id, 'succeeded');
  assert.equal(op.type, 'tear_down');
  assert.equal((await show('cycle-1')).provision_state, 'cleaning');
  op = await cond.finish(id, 'succeeded');
  assert.equal(op.type, 'clean');
  n = await show('cycle-1');
  assert.equal(n.provision_state, 'available');
  assert.deepEqual(n.instance_info, {});

  const hist = (await bm()('GET', '/v1/nodes/cycle-1/history?detail=true')).body.history;
  assert.ok(hist.some((h: any) => /"manageable" to "inspecting"/.test(h.event)));
  assert.ok(hist.some((h: any) => /"deploying" to "active"/.test(h.event) && h.conductor === 'bm-states-cond'));
  const one = (await bm()('GET', `/v1/nodes/cycle-1/history/${hist[0].uuid}`)).body;
  assert.equal(one.uuid, hist[0].uuid);
  assert.ok('event_type' in one && 'user' in one);
});

test('failures: `* failed` with last_error (never a secret), history ERROR, and the way back', async () => {
  const id = await available('fail-1');
  await bm()('PATCH', '/v1/nodes/fail-1', { body: [{ op: 'add', path: '/instance_info/image_source', value: imageId }] });
  assert.equal((await verb('fail-1', { target: 'active' })).status, 202);
  await cond.finish(id, 'failed', { phase: 'write_image', message: 'Image checksum mismatch: sha512 of the written bytes differs' });
  let n = await show('fail-1');
  assert.equal(n.provision_state, 'deploy failed');
  assert.match(n.last_error, /checksum mismatch/);
  assert.ok(!JSON.stringify(n).includes('topsecret'));
  const hist = (await bm()('GET', '/v1/nodes/fail-1/history')).body.history;
  assert.ok(hist.some((h: any) => h.severity === 'ERROR' && /checksum mismatch/.test(h.event)));
  // deploy failed: rebuild or delete are accepted, not provide
  assertIronicError(await verb('fail-1', { target: 'provide' }), 400, /The requested action "provide" can not be performed on node "[0-9a-f-]+" while it is in state "deploy failed"\./);
  assert.equal((await verb('fail-1', { target: 'deleted' })).status, 202);
  await cond.finish(id, 'succeeded');
  await cond.finish(id, 'failed', { phase: 'erase', message: 'wipefs failed on /dev/sda' });
  n = await show('fail-1');
  assert.equal(n.provision_state, 'clean failed');
  assert.match(n.last_error, /wipefs/);
  assert.equal((await verb('fail-1', { target: 'manage' })).status, 202);
  assert.equal((await show('fail-1')).provision_state, 'manageable');

  // verify fails at once on driver_info it cannot use: back to enroll with last_error
  const bad = await enroll('fail-2', { driver_info: {} });
  assert.equal((await verb('fail-2', { target: 'manage' })).status, 202);
  n = await show('fail-2');
  assert.equal(n.provision_state, 'enroll');
  assert.match(n.last_error, /ipmi_address/);
  void bad;
  // a conductor that cannot reach the BMC fails the verification
  const id3 = await enroll('fail-3');
  await verb('fail-3', { target: 'manage' });
  const s = await cond.spec(id3);
  await cond.report(id3, s.version, { power_state: null }, { class: 'transient', code: 'bmc_unreachable', message: 'The BMC at 192.0.2.30 did not answer' });
  n = await show('fail-3');
  assert.equal(n.provision_state, 'enroll');
  assert.match(n.last_error, /did not answer/);
});

test("each verb in a state that does not take it: Ironic's 400 (unknown verbs too); maintenance refuses deploys", async () => {
  const id = await enroll('wrong-1');
  const wrongInEnroll = ['provide', 'inspect', 'active', 'deploy', 'deleted', 'undeploy', 'rebuild', 'abort', 'adopt', 'unrescue'];
  for (const target of wrongInEnroll) {
    const body: Record<string, unknown> = { target };
    assertIronicError(await verb('wrong-1', body), 400, new RegExp(`The requested action "${target}" can not be performed on node "${id}" while it is in state "enroll"`));
  }
  assertIronicError(await verb('wrong-1', { target: 'clean', clean_steps: [{ interface: 'deploy', step: 'erase_devices_metadata' }] }), 400, /while it is in state "enroll"/);
  assertIronicError(await verb('wrong-1', { target: 'fly' }), 400, /The requested action "fly" could not be understood\./);
  // the state is checked first, as Ironic does
  assertIronicError(await verb('wrong-1', { target: 'clean' }), 400, /while it is in state "enroll"/);
  assertIronicError(await verb('wrong-1', { target: 'manage', clean_steps: [] }), 400, /"clean_steps" is only valid/);
  assertIronicError(await verb('wrong-1', { target: 'manage', configdrive: 'abc' }), 400, /config drive is only supported/);
  assertIronicError(await verb('wrong-1', { target: 'inspect' }, '1.5'), 406);
  assertIronicError(await verb('wrong-1', { target: 'undeploy' }, '1.72'), 406);

  await available('wrong-2');
  for (const target of ['provide', 'inspect', 'rebuild', 'abort', 'adopt', 'deleted']) {
    assertIronicError(await verb('wrong-2', { target }), 400, new RegExp(`"${target}" can not be performed .* state "available"`));
  }
  await bm()('PUT', '/v1/nodes/wrong-2/maintenance', { body: { reason: 'x' } });
  assertIronicError(await verb('wrong-2', { target: 'active' }), 400, /The provisioning operation can't be performed on node [0-9a-f-]+ because it's in maintenance mode\./);
  await bm()('DELETE', '/v1/nodes/wrong-2/maintenance');
  assertIronicError(await verb('wrong-2', { target: 'rescue', rescue_password: 'x' }), 400, /state "available"/);
});

test('abort in a wait state fails the operation; the conductor sees it dropped', async () => {
  const id = await enroll('abort-1');
  await verb('abort-1', { target: 'manage' });
  await cond.finish(id, 'succeeded');
  await verb('abort-1', { target: 'inspect' });
  await cond.finish(id, 'running', { phase: 'pxe' });
  assert.equal((await show('abort-1')).provision_state, 'inspect wait');
  assert.equal((await verb('abort-1', { target: 'abort' })).status, 202);
  const n = await show('abort-1');
  assert.equal(n.provision_state, 'inspect failed');
  assert.match(n.last_error, /aborted/);
  assert.equal((await cond.spec(id)).spec.operation, null);
});

test('adopt, rescue and manual cleaning', async () => {
  const id = await enroll('adopt-1', { rescue_interface: 'agent' });
  await verb('adopt-1', { target: 'manage' });
  await cond.finish(id, 'succeeded');
  assert.equal((await verb('adopt-1', { target: 'adopt' })).status, 202);
  assert.equal((await show('adopt-1')).provision_state, 'adopt failed');
  await bm()('PATCH', '/v1/nodes/adopt-1', { body: [{ op: 'add', path: '/instance_info/image_source', value: imageId }] });
  assert.equal((await verb('adopt-1', { target: 'adopt' })).status, 202);
  assert.equal((await show('adopt-1')).provision_state, 'active');
  assertIronicError(await verb('adopt-1', { target: 'rescue' }), 400, /rescue_password/);
  assert.equal((await verb('adopt-1', { target: 'rescue', rescue_password: 'let-me-in' })).status, 202);
  const op = await cond.finish(id, 'succeeded');
  assert.match(op.rescue_password_hash, /^\$6\$/);
  assert.ok(!JSON.stringify(await show('adopt-1')).includes('let-me-in'));
  assert.equal((await show('adopt-1')).provision_state, 'rescue');
  await verb('adopt-1', { target: 'unrescue' });
  await cond.finish(id, 'succeeded');
  assert.equal((await show('adopt-1')).provision_state, 'active');

  const id2 = await enroll('clean-1');
  await verb('clean-1', { target: 'manage' });
  await cond.finish(id2, 'succeeded');
  assertIronicError(await verb('clean-1', { target: 'clean', clean_steps: [{ interface: 'nope', step: 'x' }] }), 400, /Invalid clean_steps/);
  assertIronicError(await verb('clean-1', { target: 'clean' }), 400, /"clean_steps" is required/);
  assert.equal((await verb('clean-1', { target: 'clean', clean_steps: [{ interface: 'deploy', step: 'erase_devices_metadata' }] })).status, 202);
  assert.equal((await show('clean-1')).target_provision_state, 'manageable');
  await cond.finish(id2, 'succeeded');
  assert.equal((await show('clean-1')).provision_state, 'manageable');
  // automated_clean off: provide goes straight to available
  await bm()('PATCH', '/v1/nodes/clean-1', { body: [{ op: 'replace', path: '/automated_clean', value: false }] });
  await verb('clean-1', { target: 'provide' });
  assert.equal((await show('clean-1')).provision_state, 'available');
});

test('placement: the provider follows maintenance, traits, the resource class and deletion', async () => {
  const id = await available('place-1');
  assert.deepEqual(await inventory(id), [{ rc: 'CUSTOM_BM_GOLD', total: 1, reserved: 0 }]);
  await bm()('PUT', '/v1/nodes/place-1/maintenance', { body: {} });
  assert.deepEqual(await inventory(id), [{ rc: 'CUSTOM_BM_GOLD', total: 1, reserved: 1 }]);
  await bm()('DELETE', '/v1/nodes/place-1/maintenance');
  assert.deepEqual(await inventory(id), [{ rc: 'CUSTOM_BM_GOLD', total: 1, reserved: 0 }]);
  await bm()('PUT', '/v1/nodes/place-1/traits', { body: { traits: ['CUSTOM_RAID', 'HW_CPU_X86_VMX'] } });
  const p = await cloud.call('GET', `/placement/resource_providers/${id}/traits`, { token: cloud.adminToken, headers: { 'OpenStack-API-Version': 'placement 1.6' } });
  assert.deepEqual(p.body.traits.sort(), ['CUSTOM_RAID', 'HW_CPU_X86_VMX']);
  const prov = await cloud.call('GET', `/placement/resource_providers/${id}`, { token: cloud.adminToken });
  assert.equal(prov.body.name, id);
  // the class may change only in enroll/manageable (or maintenance)
  assertIronicError(await bm()('PATCH', '/v1/nodes/place-1', { body: [{ op: 'replace', path: '/resource_class', value: 'silver' }] }), 400, /resource_class/);
  await bm()('PUT', '/v1/nodes/place-1/maintenance', { body: {} });
  await bm()('PATCH', '/v1/nodes/place-1', { body: [{ op: 'replace', path: '/resource_class', value: 'silver.large' }] });
  assert.deepEqual(await inventory(id), [{ rc: 'CUSTOM_SILVER_LARGE', total: 1, reserved: 1 }]);
  assert.equal((await bm()('DELETE', '/v1/nodes/place-1')).status, 204);
  assert.equal((await cloud.call('GET', `/placement/resource_providers/${id}`, { token: cloud.adminToken })).status, 404);
});
