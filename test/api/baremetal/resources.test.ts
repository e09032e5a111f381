// Ports (MAC unique, checked), port groups, VIFs, allocations, drivers and
// conductors (src/baremetal/resources.ts), and owner/lessee tenancy: a
// project sees and acts on the nodes it owns or leases as Ironic's default
// policy says, another project's node is a 404, an action its role does not
// allow a 403.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tenant, useCloud, type Tenant } from '../../harness.ts';
import { assertIronicError, ironic, TestConductor } from './lib.ts';

let cond: TestConductor;
const cloud = useCloud(async (c) => {
  cond = new TestConductor(c, 'bm-res-cond');
  await cond.register(['ipmi']);
});
const bm = () => ironic(cloud);
const node = async (name: string, o: Record<string, unknown> = {}) => {
  const r = await bm()('POST', '/v1/nodes', { body: { driver: 'ipmi', name, driver_info: { ipmi_address: '192.0.2.40' }, ...o } });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body.uuid as string;
};

test('ports: MAC checked and unique (409), node by uuid or name, fields and filters, patch, delete', async () => {
  const id = await node('port-node');
  let r = await bm()('POST', '/v1/ports', { body: { node_uuid: id, address: '52:54:00:AB:CD:01', physical_network: 'baremetal', local_link_connection: { switch_id: '0a:1b:2c:3d:4e:5f', port_id: 'Eth1/1', switch_info: 'tor-1' }, pxe_enabled: true, extra: { a: 1 } } });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  assert.equal(r.body.address, '52:54:00:ab:cd:01');
  assert.equal(r.body.physical_network, 'baremetal');
  assert.match(r.headers.get('location') ?? '', /\/v1\/ports\//);
  const port = r.body.uuid;
  assertIronicError(await bm()('POST', '/v1/ports', { body: { node_uuid: id, address: '52:54:00:ab:cd:01' } }), 409, /^A port with MAC address 52:54:00:ab:cd:01 already exists\.$/);
  assertIronicError(await bm()('POST', '/v1/ports', { body: { node_uuid: id, address: 'not-a-mac' } }), 400, /Expected a MAC address but received not-a-mac\./);
  assertIronicError(await bm()('POST', '/v1/ports', { body: { node_uuid: '00000000-0000-0000-0000-00000000dead', address: '52:54:00:ab:cd:09' } }), 404);
  assertIronicError(await bm()('POST', '/v1/ports', { body: { node_uuid: id, address: '52:54:00:ab:cd:02', local_link_connection: { port_id: 'x' } } }), 400, /local_link_connection/);
  assertIronicError(await bm()('POST', '/v1/ports', { version: '1.33', body: { node_uuid: id, address: '52:54:00:ab:cd:02', physical_network: 'x' } }), 406);
  r = await bm()('POST', '/v1/ports', { body: { node_uuid: 'port-node', address: '52:54:00:ab:cd:02' } });
  assert.equal(r.status, 201);
  r = await bm()('GET', '/v1/ports?node=port-node');
  assert.deepEqual(r.body.ports.map((p: any) => p.address).sort(), ['52:54:00:ab:cd:01', '52:54:00:ab:cd:02']);
  assert.deepEqual(Object.keys(r.body.ports[0]).sort(), ['address', 'links', 'uuid']);
  r = await bm()('GET', '/v1/ports?address=52:54:00:ab:cd:02&fields=address,node_uuid');
  assert.deepEqual(r.body.ports.map((p: any) => [p.address, p.node_uuid]), [['52:54:00:ab:cd:02', id]]);
  r = await bm()('GET', `/v1/nodes/${id}/ports`);
  assert.equal(r.body.ports.length, 2);
  r = await bm()('GET', `/v1/ports/${port}`);
  assert.deepEqual(r.body.local_link_connection, { switch_id: '0a:1b:2c:3d:4e:5f', port_id: 'Eth1/1', switch_info: 'tor-1' });
  assert.equal((await bm()('GET', `/v1/ports/${port}`, { version: '1.18' })).body.pxe_enabled, undefined);
  r = await bm()('PATCH', `/v1/ports/${port}`, { body: [{ op: 'replace', path: '/pxe_enabled', value: false }, { op: 'add', path: '/extra/b', value: 2 }] });
  assert.equal(r.body.pxe_enabled, false);
  assert.deepEqual(r.body.extra, { a: 1, b: 2 });
  assertIronicError(await bm()('PATCH', `/v1/ports/${port}`, { body: [{ op: 'replace', path: '/address', value: '52:54:00:ab:cd:02' }] }), 409, /already exists/);
  assertIronicError(await bm()('PATCH', `/v1/ports/${port}`, { body: [{ op: 'replace', path: '/uuid', value: 'x' }] }), 400, /internal attribute/);
  assert.equal((await bm()('DELETE', `/v1/ports/${port}`)).status, 204);
  assertIronicError(await bm()('GET', `/v1/ports/${port}`), 404, /Port .* could not be found\./);
});

test('port groups: create, ports in them, unique name and address, delete', async () => {
  const id = await node('pg-node');
  let r = await bm()('POST', '/v1/portgroups', { body: { node_uuid: id, name: 'bond0', address: '52:54:00:ee:00:01', mode: '802.3ad', properties: { miimon: '100' } } });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  const pg = r.body.uuid;
  assert.equal(r.body.mode, '802.3ad');
  assertIronicError(await bm()('POST', '/v1/portgroups', { body: { node_uuid: id, name: 'bond0' } }), 409, /A portgroup with name bond0 already exists/);
  assertIronicError(await bm()('POST', '/v1/portgroups', { body: { node_uuid: id, address: '52:54:00:ee:00:01' } }), 409, /A portgroup with MAC address/);
  assertIronicError(await bm()('GET', '/v1/portgroups', { version: '1.22' }), 404);
  r = await bm()('POST', '/v1/ports', { body: { node_uuid: id, address: '52:54:00:ee:00:11', portgroup_uuid: pg } });
  assert.equal(r.body.portgroup_uuid, pg);
  assert.deepEqual((await bm()('GET', '/v1/portgroups/bond0/ports')).body.ports.map((p: any) => p.address), ['52:54:00:ee:00:11']);
  assert.deepEqual((await bm()('GET', `/v1/nodes/${id}/portgroups`)).body.portgroups.map((g: any) => g.name), ['bond0']);
  r = await bm()('PATCH', '/v1/portgroups/bond0', { body: [{ op: 'replace', path: '/name', value: 'bond1' }] });
  assert.equal(r.body.name, 'bond1');
  assert.equal((await bm()('DELETE', '/v1/portgroups/bond1')).status, 204);
  assert.equal((await bm()('GET', '/v1/ports?address=52:54:00:ee:00:11&fields=portgroup_uuid')).body.ports[0].portgroup_uuid, null);
});

test('VIFs: attach to a free port, list, a second one without a free port refused, detach', async () => {
  const id = await node('vif-node');
  await bm()('POST', '/v1/ports', { body: { node_uuid: id, address: '52:54:00:f1:00:01' } });
  assert.equal((await bm()('POST', '/v1/nodes/vif-node/vifs', { body: { id: 'vif-1' } })).status, 204);
  assert.deepEqual((await bm()('GET', '/v1/nodes/vif-node/vifs')).body, { vifs: [{ id: 'vif-1' }] });
  assertIronicError(await bm()('POST', '/v1/nodes/vif-node/vifs', { body: { id: 'vif-1' } }), 409, /already attached/);
  assertIronicError(await bm()('POST', '/v1/nodes/vif-node/vifs', { body: { id: 'vif-2' } }), 400, /not enough free physical ports/);
  assert.equal((await bm()('DELETE', '/v1/nodes/vif-node/vifs/vif-1')).status, 204);
  assertIronicError(await bm()('DELETE', '/v1/nodes/vif-node/vifs/vif-1'), 400, /not attached/);
  assertIronicError(await bm()('GET', '/v1/nodes/vif-node/vifs', { version: '1.27' }), 404);
});

test('allocations: a matching available node gets it (instance_uuid too), none matching is an error, delete frees', async () => {
  // a node made available without the conductor: created at 1.10 (available at once, as Ironic before enroll)
  const r0 = await bm()('POST', '/v1/nodes', { version: '1.10', body: { driver: 'ipmi', driver_info: { ipmi_address: '192.0.2.41' } } });
  const id = r0.body.uuid;
  // the class changes in maintenance only, once available
  await bm()('PUT', `/v1/nodes/${id}/maintenance`, { body: {} });
  const p = await bm()('PATCH', `/v1/nodes/${id}`, { body: [{ op: 'add', path: '/resource_class', value: 'alloc-class' }, { op: 'add', path: '/name', value: 'alloc-node' }] });
  assert.equal(p.status, 200, JSON.stringify(p.body));
  await bm()('DELETE', `/v1/nodes/${id}/maintenance`);
  await bm()('PUT', '/v1/nodes/alloc-node/traits', { body: { traits: ['CUSTOM_FAST'] } });
  let r = await bm()('POST', '/v1/allocations', { body: { resource_class: 'alloc-class', traits: ['CUSTOM_SLOW'], name: 'a-slow' } });
  assert.equal(r.status, 201);
  assert.equal(r.body.state, 'error');
  assert.match(r.body.last_error, /no available nodes match the resource class alloc-class/);
  r = await bm()('POST', '/v1/allocations', { body: { resource_class: 'alloc-class', traits: ['CUSTOM_FAST'], candidate_nodes: ['alloc-node'], name: 'a-fast', extra: { k: 'v' } } });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  assert.equal(r.body.state, 'active');
  assert.equal(r.body.node_uuid, id);
  assert.deepEqual(r.body.candidate_nodes, [id]);
  const alloc = r.body.uuid;
  let n = (await bm()('GET', '/v1/nodes/alloc-node')).body;
  assert.equal(n.allocation_uuid, alloc);
  assert.equal(n.instance_uuid, alloc);
  assert.equal((await bm()('GET', '/v1/nodes/alloc-node/allocation')).body.uuid, alloc);
  assertIronicError(await bm()('POST', '/v1/allocations', { body: { resource_class: 'alloc-class', name: 'a-fast' } }), 409, /An allocation with name a-fast already exists/);
  assertIronicError(await bm()('POST', '/v1/allocations', { body: { traits: [] } }), 400, /resource_class/);
  r = await bm()('GET', '/v1/allocations?state=active');
  assert.ok(r.body.allocations.some((a: any) => a.uuid === alloc));
  r = await bm()('PATCH', '/v1/allocations/a-fast', { body: [{ op: 'add', path: '/extra/k2', value: 'v2' }] });
  assert.deepEqual(r.body.extra, { k: 'v', k2: 'v2' });
  assert.equal((await bm()('DELETE', '/v1/allocations/a-fast')).status, 204);
  n = (await bm()('GET', '/v1/nodes/alloc-node')).body;
  assert.equal(n.allocation_uuid, null);
  assert.equal(n.instance_uuid, null);
  assertIronicError(await bm()('GET', '/v1/allocations/a-fast'), 404, /Allocation a-fast could not be found/);
});

test('drivers and conductors come from the registered conductors', async () => {
  let r = await bm()('GET', '/v1/drivers');
  assert.deepEqual(r.body.drivers.map((d: any) => [d.name, d.hosts, d.type]), [['ipmi', ['bm-res-cond'], 'dynamic']]);
  r = await bm()('GET', '/v1/drivers/ipmi');
  assert.equal(r.body.default_power_interface, 'ipmitool');
  assert.deepEqual(r.body.enabled_boot_interfaces, ['ipxe', 'pxe']);
  assert.deepEqual(r.body.enabled_network_interfaces, ['flat', 'noop']);
  r = await bm()('GET', '/v1/drivers/ipmi/properties');
  assert.match(r.body.ipmi_address, /Required/);
  assertIronicError(await bm()('GET', '/v1/drivers/redfish'), 404, /Could not find the following driver\(s\) or hardware type\(s\): redfish\./);
  assert.deepEqual((await bm()('GET', '/v1/drivers?type=classic')).body, { drivers: [] });
  const other = new TestConductor(cloud, 'bm-res-cond-2');
  await other.register(['redfish']);
  r = await bm()('GET', '/v1/drivers?detail=true');
  assert.deepEqual(r.body.drivers.map((d: any) => d.name), ['ipmi', 'redfish']);
  assert.deepEqual(r.body.drivers[1].enabled_boot_interfaces, ['ipxe', 'pxe', 'redfish-virtual-media']);
  r = await bm()('GET', '/v1/conductors');
  assert.deepEqual(r.body.conductors.map((c: any) => [c.hostname, c.alive, c.conductor_group]), [['bm-res-cond', true, ''], ['bm-res-cond-2', true, '']]);
  r = await bm()('GET', '/v1/conductors/bm-res-cond-2');
  assert.deepEqual(r.body.drivers, ['redfish']);
  assertIronicError(await bm()('GET', '/v1/conductors/nobody'), 404, /Conductor nobody could not be found/);
  // a redfish node goes to the conductor that drives redfish
  const id = await node('rf-node', { driver: 'redfish', driver_info: { redfish_address: 'https://192.0.2.50' } });
  assert.equal((await bm()('GET', `/v1/nodes/${id}`)).body.conductor, 'bm-res-cond-2');
  assert.deepEqual((await bm()('GET', '/v1/nodes?conductor=bm-res-cond-2&fields=name')).body.nodes.map((n: any) => n.name), ['rf-node']);
});

test('owner and lessee: what a project sees and may do; another project gets 404', async () => {
  const owner: Tenant = await tenant(cloud, ['member']);
  const lessee: Tenant = await tenant(cloud, ['member']);
  const stranger: Tenant = await tenant(cloud, ['member']);
  const reader: Tenant = await tenant(cloud, ['reader']);
  const id = await node('owned-node', { owner: owner.projectId, lessee: lessee.projectId, driver_info: { ipmi_address: '192.0.2.60', ipmi_password: 'owned-secret' } });
  await node('foreign-node', { owner: reader.projectId });
  await bm()('POST', '/v1/ports', { body: { node_uuid: id, address: '52:54:00:0a:0a:01' } });
  const as = (t: Tenant) => (method: string, path: string, body?: unknown) => bm()(method, path, { token: t.token, body });

  // lists and shows: owner and lessee see it, the stranger nothing
  assert.deepEqual((await as(owner)('GET', '/v1/nodes')).body.nodes.map((n: any) => n.name), ['owned-node']);
  assert.deepEqual((await as(lessee)('GET', '/v1/nodes')).body.nodes.map((n: any) => n.name), ['owned-node']);
  assert.deepEqual((await as(stranger)('GET', '/v1/nodes')).body.nodes, []);
  assertIronicError(await as(stranger)('GET', '/v1/nodes/owned-node'), 404, /Node owned-node could not be found/);
  assertIronicError(await as(stranger)('PUT', '/v1/nodes/owned-node/states/power', { target: 'power on' }), 404);
  assertIronicError(await as(stranger)('GET', `/v1/ports?node=${id}`), 404);
  assert.deepEqual((await as(stranger)('GET', '/v1/ports')).body.ports, []);
  // the owner reads driver_info (masked); the lessee gets it redacted, as Ironic's policy
  const ownView = (await as(owner)('GET', '/v1/nodes/owned-node')).body;
  assert.equal(ownView.driver_info.ipmi_password, '******');
  const leaseView = (await as(lessee)('GET', '/v1/nodes/owned-node')).body;
  assert.match(JSON.stringify(leaseView.driver_info), /Redacted/);
  // actions: the owner's member powers and maintains it; the lessee's member powers it but may not touch maintenance
  assert.equal((await as(owner)('PUT', '/v1/nodes/owned-node/states/power', { target: 'power on' })).status, 202);
  assert.equal((await as(owner)('PUT', '/v1/nodes/owned-node/maintenance', { reason: 'mine' })).status, 202);
  assertIronicError(await as(lessee)('PUT', '/v1/nodes/owned-node/maintenance', { reason: 'x' }), 403, /baremetal:node:set_maintenance/);
  assertIronicError(await as(lessee)('PATCH', '/v1/nodes/owned-node', [{ op: 'add', path: '/driver_info/ipmi_address', value: '1.1.1.1' }]), 403, /baremetal:node:update:driver_info/);
  assert.equal((await as(lessee)('PATCH', '/v1/nodes/owned-node', [{ op: 'add', path: '/extra/tag', value: 'x' }])).status, 200);
  // only the admin creates and deletes nodes, changes the owner, sees drivers and conductors
  assertIronicError(await as(owner)('POST', '/v1/nodes', { driver: 'ipmi' }), 403);
  assertIronicError(await as(owner)('DELETE', '/v1/nodes/owned-node'), 403, /baremetal:node:delete/);
  assertIronicError(await as(owner)('PATCH', '/v1/nodes/owned-node', [{ op: 'replace', path: '/owner', value: stranger.projectId }]), 403, /baremetal:node:update:owner/);
  assertIronicError(await as(owner)('GET', '/v1/drivers'), 403);
  assertIronicError(await as(owner)('GET', '/v1/conductors'), 403);
  // a reader of the owning project reads but does not act
  assert.deepEqual((await as(reader)('GET', '/v1/nodes')).body.nodes.map((n: any) => n.name), ['foreign-node']);
  assertIronicError(await as(reader)('PUT', '/v1/nodes/foreign-node/states/power', { target: 'power on' }), 403, /baremetal:node:set_power_state/);
  // allocations: a member allocates among the nodes its project owns or leases, and sees only its own
  const a = await as(lessee)('POST', '/v1/allocations', { resource_class: 'none-such' });
  assert.equal(a.status, 201);
  assert.equal(a.body.owner, lessee.projectId);
  assertIronicError(await as(stranger)('GET', `/v1/allocations/${a.body.uuid}`), 404);
  assert.deepEqual((await as(stranger)('GET', '/v1/allocations')).body.allocations, []);
  assertIronicError(await as(lessee)('POST', '/v1/allocations', { resource_class: 'x', owner: stranger.projectId }), 403);
});
