// Nodes (src/baremetal/nodes.ts): create with driver and driver_info checked
// per hardware type, secrets masked, JSON patch, uuid or name addressing,
// list filters, fields, sorting and pagination with `next` links, traits,
// maintenance, power and boot device requests reaching the conductor's spec,
// validate, and delete's rules.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useCloud } from '../../harness.ts';
import { assertIronicError, ironic, TestConductor } from './lib.ts';

let cond: TestConductor;
const cloud = useCloud(async (c) => {
  cond = new TestConductor(c, 'bm-nodes-cond');
  await cond.register();
});
const bm = () => ironic(cloud);
const create = async (body: Record<string, unknown>) => {
  const r = await bm()('POST', '/v1/nodes', { body: { driver: 'ipmi', driver_info: { ipmi_address: '192.0.2.10' }, ...body } });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body;
};

test('create: driver required and known, driver_info checked per hardware type, interfaces defaulted and checked', async () => {
  assertIronicError(await bm()('POST', '/v1/nodes', { body: { name: 'x' } }), 400, /Mandatory field missing/);
  assertIronicError(await bm()('POST', '/v1/nodes', { body: { driver: 'idrac' } }), 400,
    /No valid host was found\. Reason: No conductor service registered which supports driver idrac for conductor group ""/);
  assertIronicError(await bm()('POST', '/v1/nodes', { body: { driver: 'ipmi', driver_info: { ipmi_port: 'abc' } } }), 400, /IPMI port is not an integer/);
  assertIronicError(await bm()('POST', '/v1/nodes', { body: { driver: 'redfish', driver_info: { redfish_address: 'ftp://x' } } }), 400, /Invalid Redfish address/);
  assertIronicError(await bm()('POST', '/v1/nodes', { body: { driver: 'redfish', driver_info: { redfish_verify_ca: 'maybe' } } }), 400, /redfish_verify_ca/);
  assertIronicError(await bm()('POST', '/v1/nodes', { body: { driver: 'ipmi', boot_interface: 'redfish-virtual-media' } }), 400,
    /boot interface implementation 'redfish-virtual-media' is not supported by hardware type ipmi/);
  assertIronicError(await bm()('POST', '/v1/nodes', { body: { driver: 'ipmi', power_interface: 'snmp' } }), 400, /Could not find the following interface/);
  assertIronicError(await bm()('POST', '/v1/nodes', { body: { driver: 'ipmi', bogus: 1 } }), 400, /Unknown attribute/);
  assertIronicError(await bm()('POST', '/v1/nodes', { body: { driver: 'ipmi', name: 'bad name!' } }), 400, /invalid name/);
  const r = await create({ driver: 'redfish', name: 'rf-1', driver_info: { redfish_address: 'https://192.0.2.20', redfish_username: 'root', redfish_password: 'calvin' }, boot_interface: 'redfish-virtual-media' });
  assert.equal(r.boot_interface, 'redfish-virtual-media');
  assert.equal(r.power_interface, 'redfish');
  assert.equal(r.management_interface, 'redfish');
  assert.equal(r.deploy_interface, 'direct');
  assert.equal(r.network_interface, 'flat');
  assert.equal(r.provision_state, 'enroll');
  assert.equal(r.conductor, 'bm-nodes-cond');
  assertIronicError(await bm()('POST', '/v1/nodes', { body: { driver: 'ipmi', name: 'rf-1' } }), 409, /A node with name rf-1 already exists\./);
});

test('secrets are never shown: driver_info passwords, the config drive, in every view', async () => {
  const n = await create({ name: 'secret-1', driver_info: { ipmi_address: '192.0.2.11', ipmi_username: 'admin', ipmi_password: 'hunter2' }, instance_info: { image_source: 'x', configdrive: 'abc' } });
  assert.equal(n.driver_info.ipmi_password, '******');
  assert.equal(n.driver_info.ipmi_username, 'admin');
  assert.equal(n.instance_info.configdrive, '******');
  for (const path of ['/v1/nodes/secret-1', '/v1/nodes/detail', '/v1/nodes/secret-1?fields=driver_info']) {
    const r = await bm()('GET', path);
    assert.ok(!JSON.stringify(r.body).includes('hunter2'), path);
  }
  // the conductor gets them in clear, over the agent channel only
  const { spec } = await cond.spec(n.uuid);
  assert.deepEqual(spec.bmc, { type: 'ipmi', address: '192.0.2.11', port: 623, username: 'admin', password: 'hunter2' });
});

test('patch: JSON patch on fields and dictionaries, internal attributes refused, name or uuid', async () => {
  const n = await create({ name: 'patch-1', properties: { cpus: 2 } });
  let r = await bm()('PATCH', '/v1/nodes/patch-1', { body: [
    { op: 'add', path: '/properties/memory_mb', value: 4096 }, { op: 'replace', path: '/properties/cpus', value: 8 },
    { op: 'add', path: '/extra/rack', value: 'r1' }, { op: 'add', path: '/description', value: 'a node' },
    { op: 'replace', path: '/resource_class', value: 'gold' }, { op: 'add', path: '/driver_info/ipmi_password', value: 'pw' },
  ] });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual(r.body.properties, { cpus: 8, memory_mb: 4096 });
  assert.deepEqual(r.body.extra, { rack: 'r1' });
  assert.equal(r.body.description, 'a node');
  assert.equal(r.body.resource_class, 'gold');
  assert.equal(r.body.driver_info.ipmi_password, '******');
  r = await bm()('PATCH', `/v1/nodes/${n.uuid}`, { body: [{ op: 'remove', path: '/extra/rack' }, { op: 'remove', path: '/description' }] });
  assert.deepEqual(r.body.extra, {});
  assert.equal(r.body.description, null);
  assertIronicError(await bm()('PATCH', '/v1/nodes/patch-1', { body: [{ op: 'replace', path: '/provision_state', value: 'active' }] }), 400, /'\/provision_state' is an internal attribute and can not be updated/);
  assertIronicError(await bm()('PATCH', '/v1/nodes/patch-1', { body: [{ op: 'remove', path: '/extra/nothing' }] }), 400, /non-existent/);
  assertIronicError(await bm()('PATCH', '/v1/nodes/patch-1', { body: [{ op: 'add', path: '/traits', value: ['CUSTOM_X'] }] }), 400, /node traits API/);
  assertIronicError(await bm()('PATCH', '/v1/nodes/patch-1', { body: { name: 'x' } }), 400);
  assertIronicError(await bm()('PATCH', '/v1/nodes/patch-1', { body: [{ op: 'replace', path: '/driver', value: 'nope' }] }), 400, /No valid host/);
  // a driver change resets the interfaces to the new hardware type's defaults
  r = await bm()('PATCH', '/v1/nodes/patch-1', { body: [{ op: 'replace', path: '/driver', value: 'redfish' }] });
  assert.equal(r.body.power_interface, 'redfish');
  // instance_uuid: set once, another node's is a 409
  const inst = '11111111-2222-3333-4444-555555555555';
  r = await bm()('PATCH', '/v1/nodes/patch-1', { body: [{ op: 'add', path: '/instance_uuid', value: inst }] });
  assert.equal(r.body.instance_uuid, inst);
  await create({ name: 'patch-2' });
  assertIronicError(await bm()('PATCH', '/v1/nodes/patch-2', { body: [{ op: 'add', path: '/instance_uuid', value: inst }] }), 409, /already associated with a node/);
});

test('lists: filters, fields, sorting, pagination with next links', async () => {
  for (let i = 0; i < 5; i++) await create({ name: `page-${i}`, resource_class: i % 2 ? 'odd' : 'even', owner: i === 4 ? 'proj-x' : undefined });
  let r = await bm()('GET', '/v1/nodes?resource_class=odd');
  assert.deepEqual(r.body.nodes.map((n: any) => n.name).sort(), ['page-1', 'page-3']);
  assert.deepEqual(Object.keys(r.body.nodes[0]).sort(), ['instance_uuid', 'links', 'maintenance', 'name', 'power_state', 'provision_state', 'uuid']);
  r = await bm()('GET', '/v1/nodes?owner=proj-x');
  assert.deepEqual(r.body.nodes.map((n: any) => n.name), ['page-4']);
  r = await bm()('GET', '/v1/nodes?driver=redfish&fields=name,driver');
  assert.ok(r.body.nodes.every((n: any) => n.driver === 'redfish' && Object.keys(n).sort().join() === 'driver,links,name'));
  assertIronicError(await bm()('GET', '/v1/nodes?fields=name,nonsense'), 400, /Field\(s\) "nonsense" are not valid/);
  assertIronicError(await bm()('GET', '/v1/nodes?maintenance=perhaps'), 400, /Unrecognized value/);
  assertIronicError(await bm()('GET', '/v1/nodes?sort_key=bogus'), 400, /sort_key value bogus is an invalid field for sorting/);
  assertIronicError(await bm()('GET', '/v1/nodes?sort_dir=up'), 400, /Invalid sort direction/);
  assertIronicError(await bm()('GET', '/v1/nodes?provision_state=enroll', { version: '1.8' }), 406);
  r = await bm()('GET', '/v1/nodes?associated=false&provision_state=enroll&sort_key=name&sort_dir=desc&limit=2');
  assert.equal(r.body.nodes.length, 2);
  const names = r.body.nodes.map((n: any) => n.name);
  assert.deepEqual(names, [...names].sort().reverse());
  assert.match(r.body.next, /\/baremetal\/v1\/nodes\?.*limit=2/);
  assert.match(r.body.next, /marker=/);
  const seen = [...names];
  let next: string | undefined = r.body.next;
  while (next) {
    const u = new URL(next);
    const p = await bm()('GET', `/v1/nodes${u.search}`);
    seen.push(...p.body.nodes.map((n: any) => n.name));
    next = p.body.next;
  }
  assert.equal(new Set(seen).size, seen.length, 'no node twice');
  const all = (await bm()('GET', '/v1/nodes?associated=false&provision_state=enroll')).body.nodes;
  assert.equal(seen.length, all.length);
  assertIronicError(await bm()('GET', '/v1/nodes?marker=00000000-0000-0000-0000-000000000000'), 404);
  // detail lists every field; ?detail=true from 1.43
  r = await bm()('GET', '/v1/nodes/detail?resource_class=even');
  assert.ok(r.body.nodes.every((n: any) => 'driver_info' in n && 'properties' in n));
  r = await bm()('GET', '/v1/nodes?detail=true&resource_class=even');
  assert.ok(r.body.nodes.every((n: any) => 'driver_info' in n));
  assertIronicError(await bm()('GET', '/v1/nodes?detail=true', { version: '1.42' }), 406);
});

test('traits: set, add, list, remove (one and all); bad traits refused', async () => {
  await create({ name: 'traits-1' });
  assert.equal((await bm()('PUT', '/v1/nodes/traits-1/traits', { body: { traits: ['CUSTOM_GOLD', 'HW_CPU_X86_VMX'] } })).status, 204);
  assert.equal((await bm()('PUT', '/v1/nodes/traits-1/traits/CUSTOM_FAST')).status, 204);
  assert.deepEqual((await bm()('GET', '/v1/nodes/traits-1/traits')).body.traits, ['CUSTOM_FAST', 'CUSTOM_GOLD', 'HW_CPU_X86_VMX']);
  assert.deepEqual((await bm()('GET', '/v1/nodes/traits-1')).body.traits, ['CUSTOM_FAST', 'CUSTOM_GOLD', 'HW_CPU_X86_VMX']);
  assertIronicError(await bm()('PUT', '/v1/nodes/traits-1/traits/lower_case'), 400, /Invalid trait/);
  assertIronicError(await bm()('PUT', '/v1/nodes/traits-1/traits', { body: { traits: ['NOT_A_TRAIT'] } }), 400, /Invalid trait/);
  assert.equal((await bm()('DELETE', '/v1/nodes/traits-1/traits/CUSTOM_GOLD')).status, 204);
  assertIronicError(await bm()('DELETE', '/v1/nodes/traits-1/traits/CUSTOM_GOLD'), 404, /doesn't have a trait 'CUSTOM_GOLD'/);
  assert.equal((await bm()('DELETE', '/v1/nodes/traits-1/traits')).status, 204);
  assert.deepEqual((await bm()('GET', '/v1/nodes/traits-1/traits')).body.traits, []);
  assertIronicError(await bm()('GET', '/v1/nodes/traits-1/traits', { version: '1.36' }), 404);
});

test('maintenance, power and boot device requests reach the conductor spec; states', async () => {
  const n = await create({ name: 'power-1' });
  assert.equal((await bm()('PUT', '/v1/nodes/power-1/maintenance', { body: { reason: 'disk swap' } })).status, 202);
  let node = (await bm()('GET', '/v1/nodes/power-1')).body;
  assert.equal(node.maintenance, true);
  assert.equal(node.maintenance_reason, 'disk swap');
  assert.equal((await cond.spec(n.uuid)).spec.maintenance, true);
  assert.deepEqual((await bm()('GET', '/v1/nodes?maintenance=true&fields=name')).body.nodes.map((x: any) => x.name), ['power-1']);
  assert.equal((await bm()('DELETE', '/v1/nodes/power-1/maintenance')).status, 202);
  node = (await bm()('GET', '/v1/nodes/power-1')).body;
  assert.equal(node.maintenance, false);
  assert.equal(node.maintenance_reason, null);

  assert.equal((await bm()('PUT', '/v1/nodes/power-1/states/power', { body: { target: 'power on' } })).status, 202);
  let s = await cond.spec(n.uuid);
  assert.deepEqual(s.spec.power, { target: 'power on', seq: 1 });
  assert.equal((await bm()('GET', '/v1/nodes/power-1/states')).body.target_power_state, 'power on');
  assertIronicError(await bm()('PUT', '/v1/nodes/power-1/states/power', { body: { target: 'power off' } }), 409, /already in progress/);
  await cond.report(n.uuid, s.version, { power_state: 'power on', power_seq: 1 });
  let st = (await bm()('GET', '/v1/nodes/power-1/states')).body;
  assert.equal(st.power_state, 'power on');
  assert.equal(st.target_power_state, null);
  assert.equal((await bm()('PUT', '/v1/nodes/power-1/states/power', { body: { target: 'rebooting' } })).status, 202);
  assert.deepEqual((await cond.spec(n.uuid)).spec.power, { target: 'reboot', seq: 2 });
  assertIronicError(await bm()('PUT', '/v1/nodes/power-1/states/power', { body: { target: 'soft power off' }, version: '1.26' }), 406);
  assertIronicError(await bm()('PUT', '/v1/nodes/power-1/states/power', { body: { target: 'sideways' } }), 400, /The requested action "sideways" can not be performed/);

  assert.equal((await bm()('PUT', '/v1/nodes/power-1/management/boot_device', { body: { boot_device: 'pxe', persistent: true } })).status, 204);
  assert.deepEqual((await bm()('GET', '/v1/nodes/power-1/management/boot_device')).body, { boot_device: 'pxe', persistent: true });
  assert.deepEqual((await cond.spec(n.uuid)).spec.boot_device, { device: 'pxe', persistent: true, seq: 1 });
  assertIronicError(await bm()('PUT', '/v1/nodes/power-1/management/boot_device', { body: { boot_device: 'floppy' } }), 400, /Invalid boot device floppy/);
  assert.deepEqual((await bm()('GET', '/v1/nodes/power-1/management/boot_device/supported')).body, { supported_boot_devices: ['pxe', 'disk', 'cdrom', 'bios'] });
  st = (await bm()('GET', '/v1/nodes/power-1/states')).body;
  for (const k of ['console_enabled', 'last_error', 'power_state', 'provision_state', 'provision_updated_at', 'raid_config', 'target_power_state', 'target_provision_state', 'target_raid_config']) {
    assert.ok(k in st, k);
  }
  assertIronicError(await bm()('PUT', '/v1/nodes/power-1/states/console', { body: { enabled: true } }), 400, /does not support console/);
});

test('validate names what each interface misses', async () => {
  await create({ name: 'validate-1', driver_info: {} });
  let v = (await bm()('GET', '/v1/nodes/validate-1/validate')).body;
  assert.equal(v.power.result, false);
  assert.match(v.power.reason, /ipmi_address/);
  assert.equal(v.deploy.result, false);
  await bm()('PATCH', '/v1/nodes/validate-1', { body: [{ op: 'add', path: '/driver_info/ipmi_address', value: '192.0.2.9' }, { op: 'add', path: '/instance_info/image_source', value: 'img' }] });
  v = (await bm()('GET', '/v1/nodes/validate-1/validate')).body;
  assert.equal(v.power.result, true);
  assert.equal(v.management.result, true);
  assert.equal(v.deploy.result, true);
});

test('delete: associated, protected and busy nodes refused as Ironic does; ports go with the node', async () => {
  const n = await create({ name: 'del-1' });
  const p = await bm()('POST', '/v1/ports', { body: { node_uuid: n.uuid, address: '52:54:00:de:1e:01' } });
  assert.equal(p.status, 201);
  await bm()('PATCH', '/v1/nodes/del-1', { body: [{ op: 'add', path: '/instance_uuid', value: '99999999-2222-3333-4444-555555555555' }] });
  assertIronicError(await bm()('DELETE', '/v1/nodes/del-1'), 409, /is associated with instance/);
  await bm()('PATCH', '/v1/nodes/del-1', { body: [{ op: 'remove', path: '/instance_uuid' }] });
  assert.equal((await bm()('DELETE', '/v1/nodes/del-1')).status, 204);
  assertIronicError(await bm()('GET', '/v1/nodes/del-1'), 404);
  assertIronicError(await bm()('GET', `/v1/ports/${p.body.uuid}`), 404);
  // the address is free again
  const again = await create({ name: 'del-2' });
  assert.equal((await bm()('POST', '/v1/ports', { body: { node_uuid: again.uuid, address: '52:54:00:de:1e:01' } })).status, 201);
});
