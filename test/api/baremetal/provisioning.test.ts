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
