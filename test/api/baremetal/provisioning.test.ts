// The provisioning network of an operation (src/baremetal/provisioning.ts)
// through the ProvisioningPorts seam (StratusOptions.baremetalPorts; the
// network service's side is not wired yet): a port per PXE NIC with the PXE
// extra_dhcp_opts pointing at the node's conductor, named in the spec, gone
// when the operation ends; virtual media gets the port (the ramdisk's DHCP)
// without the PXE options.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useCloud } from '../../harness.ts';
import { PROTOCOL_VERSION } from '../../../src/fleet/protocol.ts';
import type { ProvisioningPorts } from '../../../src/baremetal/service.ts';
import { ironic, TestConductor } from './lib.ts';

const made = new Map<string, { network: string; mac: string; nodeUuid: string; dhcpOptions: Array<{ opt_name: string; opt_value: string }> }>();
let next = 0;
const ports: ProvisioningPorts = {
  async create(o) {
    const id = `port-${++next}`;
    made.set(id, o);
    return { portId: id, networkId: 'net-prov' };
  },
  async remove(id) {
    made.delete(id);
  },
};

let cond: TestConductor;
const cloud = useCloud(async (c) => {
  cond = new TestConductor(c, 'bm-prov-cond');
  // a conductor announcing its endpoint (protocol 2.5 HostInfo.baremetal) and TFTP
  await cond.call('PUT', '', {
    protocol: PROTOCOL_VERSION, kinds: { baremetal_node: ['ipmi', 'redfish'] }, vcpus: 0, memory_mb: 0, disk_gb: 0, version: 'test',
    baremetal: { address: '172.24.8.1', http_port: 6386, tftp: true },
  });
  for (let i = 0; i < 100 && !(await c.server.database.db.selectFrom('baremetal_conductors').select('hostname').where('hostname', '=', 'bm-prov-cond').executeTakeFirst()); i++) {
    await new Promise((res) => setTimeout(res, 20));
  }
}, { baremetalPorts: ports, baremetal: { provisioningNetwork: 'bm-prov-net' } });
const bm = () => ironic(cloud);

test('inspect and clean get a provisioning port per PXE NIC with the PXE options; it goes with the operation', async () => {
  const r = await bm()('POST', '/v1/nodes', { body: { driver: 'ipmi', name: 'prov-1', driver_info: { ipmi_address: '192.0.2.80' } } });
  const id = r.body.uuid;
  await bm()('POST', '/v1/ports', { body: { node_uuid: id, address: '52:54:00:9a:00:01' } });
  await bm()('POST', '/v1/ports', { body: { node_uuid: id, address: '52:54:00:9a:00:02', pxe_enabled: false } });
  await bm()('PUT', '/v1/nodes/prov-1/states/provision', { body: { target: 'manage' } });
  assert.equal(made.size, 0, 'verify boots nothing');
  await cond.finish(id, 'succeeded');
  await bm()('PUT', '/v1/nodes/prov-1/states/provision', { body: { target: 'inspect' } });
  assert.equal(made.size, 1);
  const [portId, p] = [...made][0]!;
  assert.equal(p.network, 'bm-prov-net');
  assert.equal(p.mac, '52:54:00:9a:00:01');
  assert.equal(p.nodeUuid, id);
  assert.deepEqual(p.dhcpOptions.map((o) => [o.opt_name, o.opt_value]), [
    ['tag:ipxe,67', 'http://172.24.8.1:6386/boot.ipxe'], ['tag:!ipxe,67', 'undionly.kpxe'], ['66', '172.24.8.1'], ['150', '172.24.8.1'],
  ]);
  assert.deepEqual((await cond.spec(id)).spec.provisioning, { network_id: 'net-prov', port_ids: [portId] });
  await cond.finish(id, 'succeeded');
  assert.equal(made.size, 0, 'the port goes when the inspection ends');
  assert.equal((await cond.spec(id)).spec.provisioning, null);
  // abort removes them too
  await bm()('PUT', '/v1/nodes/prov-1/states/provision', { body: { target: 'provide' } });
  assert.equal(made.size, 1);
  await cond.finish(id, 'running', { phase: 'pxe' });
  await bm()('PUT', '/v1/nodes/prov-1/states/provision', { body: { target: 'abort' } });
  assert.equal(made.size, 0);
  assert.equal((await bm()('GET', '/v1/nodes/prov-1')).body.provision_state, 'clean failed');
});

test('a node booting by virtual media gets its provisioning port (its ramdisk leases an address) without the PXE options', async () => {
  const r = await bm()('POST', '/v1/nodes', { body: { driver: 'redfish', name: 'prov-2', boot_interface: 'redfish-virtual-media', driver_info: { redfish_address: 'https://192.0.2.81' } } });
  const id = r.body.uuid;
  await bm()('POST', '/v1/ports', { body: { node_uuid: id, address: '52:54:00:9a:00:03' } });
  await bm()('PUT', '/v1/nodes/prov-2/states/provision', { body: { target: 'manage' } });
  await cond.finish(id, 'succeeded');
  await bm()('PUT', '/v1/nodes/prov-2/states/provision', { body: { target: 'inspect' } });
  const { spec } = await cond.spec(id);
  assert.equal(spec.operation.boot_interface, 'redfish-virtual-media');
  assert.equal(made.size, 1);
  const [portId, p] = [...made][0]!;
  assert.equal(p.mac, '52:54:00:9a:00:03');
  assert.deepEqual(p.dhcpOptions, []);
  assert.deepEqual(spec.provisioning, { network_id: 'net-prov', port_ids: [portId] });
  await cond.finish(id, 'succeeded');
  assert.equal(made.size, 0, 'the port goes when the inspection ends');
});

test('out-of-band inspection (inspect_interface redfish): no boot, no provisioning port; the BMC inventory becomes properties and a PXE-enabled port per new MAC', async () => {
  // Ironic's redfish inspect interface is the redfish hardware type's only
  const ipmi = await bm()('POST', '/v1/nodes', { body: { driver: 'ipmi', name: 'oob-ipmi', inspect_interface: 'redfish', driver_info: { ipmi_address: '192.0.2.82' } } });
  assert.equal(ipmi.status, 400);
  assert.match(JSON.parse(ipmi.body.error_message).faultstring, /inspect interface implementation 'redfish' is not supported by hardware type ipmi/);
  const drv = (await bm()('GET', '/v1/drivers/redfish')).body;
  assert.ok(drv.enabled_inspect_interfaces.includes('redfish'), JSON.stringify(drv));
  assert.equal(drv.default_inspect_interface, 'agent');

  // a node enrolled without ports, switched to out-of-band inspection
  const r = await bm()('POST', '/v1/nodes', { body: { driver: 'redfish', name: 'oob-1', boot_interface: 'redfish-virtual-media', driver_info: { redfish_address: 'https://192.0.2.83' } } });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  const id = r.body.uuid;
  const set = await bm()('PATCH', '/v1/nodes/oob-1', { body: [{ op: 'replace', path: '/inspect_interface', value: 'redfish' }] });
  assert.equal(set.status, 200, JSON.stringify(set.body));
  assert.equal(set.body.inspect_interface, 'redfish');
  await bm()('PUT', '/v1/nodes/oob-1/states/provision', { body: { target: 'manage' } });
  await cond.finish(id, 'succeeded');
  assert.equal((await bm()('PUT', '/v1/nodes/oob-1/states/provision', { body: { target: 'inspect' } })).status, 202);
  const { spec } = await cond.spec(id);
  assert.deepEqual(Object.keys(spec.operation).sort(), ['id', 'inspect_interface', 'type']);
  assert.deepEqual([spec.operation.type, spec.operation.inspect_interface], ['inspect', 'redfish']);
  assert.equal(spec.provisioning, null, 'nothing boots: no provisioning network');
  assert.equal(spec.power, null, 'no power request');
  assert.equal(made.size, 0);
  assert.equal((await bm()('GET', '/v1/nodes/oob-1')).body.provision_state, 'inspecting');

  // the conductor read the BMC at once: no boot phase, no wait state
  await cond.finish(id, 'succeeded', {
    inventory: { cpus: 2, cpu_arch: 'x86_64', memory_mb: 384, disks: [{ name: 'disk', size_bytes: 3 * 2 ** 30 }], nics: [{ name: 'nic0', mac: '52:54:00:9A:00:04', has_carrier: true }, { name: 'nic1', mac: '52:54:00:9a:00:05', has_carrier: false }] },
  });
  const n = (await bm()('GET', '/v1/nodes/oob-1')).body;
  assert.equal(n.provision_state, 'manageable');
  assert.equal(n.last_error, null);
  assert.ok(n.inspection_finished_at);
  assert.deepEqual(n.properties, { cpus: 2, memory_mb: 384, local_gb: 3, cpu_arch: 'x86_64' });
  // a port per MAC, PXE-enabled as a new Ironic port is (the BMC does not say which NIC boots)
  const ports = (await bm()('GET', `/v1/ports/detail?node=${id}`)).body.ports;
  assert.deepEqual(ports.map((p: any) => [p.address, p.pxe_enabled, p.physical_network]).sort(), [['52:54:00:9a:00:04', true, null], ['52:54:00:9a:00:05', true, null]]);
  const hist = (await bm()('GET', `/v1/nodes/${id}/history`)).body.history;
  assert.ok(hist.some((h: any) => /"inspecting" to "manageable"/.test(h.event)), JSON.stringify(hist));

  // again: the known MACs are not added twice, and an operator's pxe_enabled false stays
  const spare = ports.find((p: any) => p.address === '52:54:00:9a:00:05');
  assert.equal((await bm()('PATCH', `/v1/ports/${spare.uuid}`, { body: [{ op: 'replace', path: '/pxe_enabled', value: false }] })).status, 200);
  await bm()('PUT', '/v1/nodes/oob-1/states/provision', { body: { target: 'inspect' } });
  await cond.finish(id, 'succeeded', {
    inventory: { cpus: 2, cpu_arch: 'x86_64', memory_mb: 384, disks: [], nics: [{ name: 'nic0', mac: '52:54:00:9a:00:04' }, { name: 'nic1', mac: '52:54:00:9a:00:05' }] },
  });
  const again = (await bm()('GET', `/v1/ports/detail?node=${id}`)).body.ports;
  assert.deepEqual(again.map((p: any) => [p.address, p.pxe_enabled]).sort(), [['52:54:00:9a:00:04', true], ['52:54:00:9a:00:05', false]]);
  // then cleaning over virtual media opens a provisioning port for the PXE-enabled NIC only
  await bm()('PUT', '/v1/nodes/oob-1/states/provision', { body: { target: 'provide' } });
  assert.deepEqual([...made.values()].map((p) => p.mac), ['52:54:00:9a:00:04']);
  await cond.finish(id, 'succeeded');
  assert.equal(made.size, 0);

  // a failure to read the BMC is inspect failed with its message
  await bm()('PUT', '/v1/nodes/oob-1/states/provision', { body: { target: 'manage' } });
  await bm()('PUT', '/v1/nodes/oob-1/states/provision', { body: { target: 'inspect' } });
  await cond.finish(id, 'failed', { message: 'Redfish BMC https://192.0.2.83: the system does not say its memory' });
  const failed = (await bm()('GET', '/v1/nodes/oob-1')).body;
  assert.equal(failed.provision_state, 'inspect failed');
  assert.match(failed.last_error, /does not say its memory/);
});
