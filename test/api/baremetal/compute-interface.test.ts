// The in-process interface compute will drive nodes through
// (src/baremetal/service.ts BaremetalNodes, as Nova's ironic driver uses
// Ironic): set the instance and its instance_info, deploy with a config
// drive, power, VIFs, find by instance, undeploy, and the events of state
// changes; a conductor takeover when a conductor has been gone for long.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useCloud } from '../../harness.ts';
import type { NodeEvent } from '../../../src/baremetal/service.ts';
import { assertIronicError, ironic, provisioningNetwork, TestConductor } from './lib.ts';

let cond: TestConductor;
let imageId: string;
const cloud = useCloud(async (c) => {
  cond = new TestConductor(c, 'bm-ci-cond');
  await cond.register();
  await provisioningNetwork(c, 'bm-ci', '172.31.10.0/24');
  const img = await c.call('POST', '/image/v2/images', { token: c.adminToken, body: { name: 'bm-ci-img', disk_format: 'qcow2', container_format: 'bare' } });
  imageId = img.body.id;
  const up = await fetch(`${c.url}/image/v2/images/${imageId}/file`, { method: 'PUT', headers: { 'X-Auth-Token': c.adminToken, 'Content-Type': 'application/octet-stream' }, body: Buffer.alloc(2048, 1) });
  assert.equal(up.status, 204);
});
const bm = () => ironic(cloud);

test("compute's calls: instance, deploy with a config drive, power, vifs, undeploy, and events", async () => {
  const events: NodeEvent[] = [];
  cloud.server.baremetal.onEvent((e) => events.push(e));
  const r = await bm()('POST', '/v1/nodes', { version: '1.10', body: { driver: 'ipmi', driver_info: { ipmi_address: '192.0.2.90' } } });
  const id = r.body.uuid;
  await bm()('POST', '/v1/ports', { body: { node_uuid: id, address: '52:54:00:c0:00:01' } });
  const nodes = cloud.server.baremetal;
  const inst = 'bbbbbbbb-0000-4000-8000-000000000001';
  await nodes.setInstance(id, inst, { image_source: imageId, root_gb: 1 });
  assert.equal((await nodes.byInstance(inst))?.uuid, id);
  await assert.rejects(nodes.setInstance(id, 'bbbbbbbb-0000-4000-8000-000000000002'), /is associated with instance/);
  await nodes.attachVif(id, 'neutron-port-1');
  assert.deepEqual((await bm()('GET', `/v1/nodes/${id}/vifs`)).body.vifs, [{ id: 'neutron-port-1' }]);
  await nodes.deploy(id, 'H4sIAAAAAAAA-a-gzipped-base64-iso');
  const dep = (await cond.spec(id)).spec.operation;
  assert.equal(dep.type, 'deploy');
  assert.deepEqual(dep.config_drive, { meta_data: {}, image: 'H4sIAAAAAAAA-a-gzipped-base64-iso' });
  assert.equal(dep.image.disk_format, 'qcow2');
  assert.ok(events.some((e) => e.node === id && e.provision_state === 'deploying' && e.instance_uuid === inst));
  await cond.finish(id, 'succeeded', { power: 'power on' });
  assert.ok(events.some((e) => e.node === id && e.provision_state === 'active'));
  assert.equal((await nodes.get(id))?.provision_state, 'active');
  await nodes.power(id, 'power off');
  const s = await cond.spec(id);
  assert.deepEqual(s.spec.power, { target: 'power off', seq: 1 });
  await cond.report(id, s.version, { power_state: 'power off', power_seq: 1 });
  assert.ok(events.some((e) => e.node === id && e.power_state === 'power off'));
  await nodes.detachVif(id, 'neutron-port-1');
  await nodes.undeploy(id);
  await cond.finish(id, 'succeeded');
  await cond.finish(id, 'succeeded');
  assert.equal((await nodes.get(id))?.provision_state, 'available');
  await nodes.setInstance(id, null);
  assert.equal(await nodes.byInstance(inst), null);
  // a deploy refused as the API refuses it
  await assert.rejects(nodes.deploy(id), /image_source/);
});

test('a node moves to another conductor once its own has been gone for long', async () => {
  const r = await bm()('POST', '/v1/nodes', { body: { driver: 'redfish', name: 'takeover-1', driver_info: { redfish_address: 'https://192.0.2.91' } } });
  const id = r.body.uuid;
  assert.equal(r.body.conductor, 'bm-ci-cond');
  const other = new TestConductor(cloud, 'bm-ci-cond-2');
  await other.register();
  // still alive: the node stays where it is
  await other.watch();
  assert.equal(other.specs.has(id), false);
  // gone for longer than takeoverAfter (300 s by default)
  const old = new Date(Date.now() - 3600_000).toISOString();
  await cloud.server.database.db.updateTable('baremetal_conductors').set({ last_seen_at: old }).where('hostname', '=', 'bm-ci-cond').execute();
  await other.watch();
  assert.ok(other.specs.has(id), 'the live conductor takes the node');
  assert.equal((await bm()('GET', '/v1/nodes/takeover-1')).body.conductor, 'bm-ci-cond-2');
  const conductors = (await bm()('GET', '/v1/conductors')).body.conductors;
  assert.deepEqual(conductors.map((c: any) => [c.hostname, c.alive]), [['bm-ci-cond', false], ['bm-ci-cond-2', true]]);
  // a report from the old one changes nothing
  const before = (await bm()('GET', '/v1/nodes/takeover-1')).body;
  await cond.report(id, 99, { power_state: 'power on' });
  assert.equal((await bm()('GET', '/v1/nodes/takeover-1')).body.power_state, before.power_state);
  assertIronicError(await bm()('GET', '/v1/conductors/bm-ci-cond-3'), 404);
});

test("a VIF takes the node's port on its network's physnet (or on none) first, then a PXE-enabled one, as Ironic's get_free_port_like_object", async () => {
  const r = await bm()('POST', '/v1/nodes', { body: { driver: 'redfish', driver_info: { redfish_address: 'https://192.0.2.91' } } });
  const id = r.body.uuid;
  // created a few milliseconds apart: "the oldest" is then one port (created_at counts milliseconds)
  const port = async (address: string, o: Record<string, unknown> = {}) => {
    await new Promise((r) => setTimeout(r, 3));
    return (await bm()('POST', '/v1/ports', { body: { node_uuid: id, address, ...o } })).body.uuid as string;
  };
  const spare = await port('52:54:00:c0:01:01', { pxe_enabled: false });
  const other = await port('52:54:00:c0:01:02', { physical_network: 'elsewhere' });
  const plain = await port('52:54:00:c0:01:03');
  const onNet = await port('52:54:00:c0:01:04', { pxe_enabled: false, physical_network: 'physnet-a' });
  const nodes = cloud.server.baremetal;
  // on physnet-a: its own port first, though not PXE-enabled; then the PXE one without a physnet; never another physnet's
  assert.equal((await nodes.attachVif(id, 'vif-a1', ['physnet-a'])).uuid, onNet);
  assert.equal((await nodes.attachVif(id, 'vif-a2', ['physnet-a'])).uuid, plain);
  assert.equal((await nodes.attachVif(id, 'vif-a3', ['physnet-a'])).uuid, spare);
  await assert.rejects(nodes.attachVif(id, 'vif-a4', ['physnet-a']), /free|port/i);
  for (const v of ['vif-a1', 'vif-a2', 'vif-a3']) await nodes.detachVif(id, v);
  // no physnet (a network without one): every port is free, the PXE-enabled ones first, the oldest of them first
  assert.equal((await nodes.attachVif(id, 'vif-b1')).uuid, other);
  assert.equal((await nodes.attachVif(id, 'vif-b2')).uuid, plain);
  assert.equal((await nodes.attachVif(id, 'vif-b3')).uuid, spare);
  assert.equal((await nodes.attachVif(id, 'vif-b4')).uuid, onNet);
  for (const v of ['vif-b1', 'vif-b2', 'vif-b3', 'vif-b4']) await nodes.detachVif(id, v);
});
