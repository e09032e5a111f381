// Provision verbs racing for one node (two API replicas, or a client
// retrying): the request that holds the node first (Ironic's reservation,
// written version-checked before any port is opened) wins; the others are
// Ironic's 409 NodeLocked and never touch a provisioning port, so the port
// the winner boots from keeps its PXE options. The network service's own
// provisioning ports, behind a seam that yields before each create: on
// SQLite a request otherwise runs to its end before the next one starts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { useCloud } from '../../harness.ts';
import type { ProvisioningPorts } from '../../../src/baremetal/service.ts';
import { createNetworkService } from '../../../src/network/service.ts';
import { assertIronicError, ironic, provisioningNetwork, TestConductor } from './lib.ts';

let real: ProvisioningPorts;
const ports: ProvisioningPorts = {
  async create(o) {
    // what a remote network service's latency does: the other requests run meanwhile
    await new Promise((r) => setTimeout(r, 50));
    return real.create(o);
  },
  remove: (id, op) => real.remove(id, op),
};
let cond: TestConductor;
let provisioningNet: string;
const cloud = useCloud(async (c) => {
  real = createNetworkService({ db: c.server.database.db, log: pino({ level: 'silent' }) }).baremetalPorts;
  cond = new TestConductor(c, 'bm-race-cond');
  await cond.register(['ipmi', 'redfish'], { address: '172.31.7.1', http_port: 8088, tftp: false });
  provisioningNet = await provisioningNetwork(c, 'bm-race', '172.31.7.0/24');
}, { baremetalPorts: ports });
const bm = () => ironic(cloud);
const show = async (n: string) => (await bm()('GET', `/v1/nodes/${n}`)).body;
const verb = (n: string, body: Record<string, unknown>) => bm()('PUT', `/v1/nodes/${n}/states/provision`, { body });
const port = async (id: string) => (await cloud.call('GET', `/network/v2.0/ports/${id}`, { token: cloud.adminToken })).body.port;
const provisioningPorts = async (node: string) =>
  (await cloud.call('GET', `/network/v2.0/ports?network_id=${provisioningNet}&device_id=${node}`, { token: cloud.adminToken })).body.ports as any[];
const BOOT = 'http://172.31.7.1:8088/boot.ipxe';

async function manageable(name: string, mac: string): Promise<string> {
  const r = await bm()('POST', '/v1/nodes', { body: { driver: 'ipmi', name, driver_info: { ipmi_address: '192.0.2.50', ipmi_password: 'pw' } } });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  const id = r.body.uuid as string;
  assert.equal((await bm()('POST', '/v1/ports', { body: { node_uuid: id, address: mac } })).status, 201);
  assert.equal((await verb(name, { target: 'manage' })).status, 202);
  await cond.finish(id, 'succeeded');
  assert.equal((await show(name)).provision_state, 'manageable');
  return id;
}

/** Four inspections of `name` at once: one 202, the others Ironic's 409 NodeLocked. */
async function race(name: string): Promise<void> {
  const replies = await Promise.all([0, 1, 2, 3].map(() => verb(name, { target: 'inspect' })));
  assert.equal(replies.filter((r) => r.status === 202).length, 1, JSON.stringify(replies.map((r) => [r.status, r.body])));
  for (const r of replies.filter((x) => x.status !== 202)) {
    assertIronicError(r, 409, /^Node \S+ is locked by host \S+, please retry after the current operation is completed\.$/);
  }
}

test('a NIC whose VIF is on the provisioning network: the losers leave the winner\'s adopted port as the winner made it', async () => {
  const id = await manageable('race-1', '52:54:00:c1:00:01');
  const vif = await cloud.call('POST', '/network/v2.0/ports', {
    token: cloud.adminToken,
    body: { port: { network_id: provisioningNet, mac_address: '52:54:00:c1:00:01', 'binding:vnic_type': 'baremetal', device_id: 'race-server', device_owner: 'compute:nova' } },
  });
  assert.equal(vif.status, 201, JSON.stringify(vif.body));
  await race('race-1');
  assert.deepEqual((await cond.spec(id)).spec.provisioning?.port_ids, [vif.body.port.id]);
  let p = await port(vif.body.port.id);
  assert.equal(p.extra_dhcp_opts.find((o: any) => o.opt_name === 'tag:ipxe,67')?.opt_value, BOOT, 'the losers took nothing off the winner\'s port');
  assert.equal(p['binding:host_id'], cond.hostname);
  await cond.finish(id, 'succeeded');
  assert.equal((await show('race-1')).provision_state, 'manageable');
  p = await port(vif.body.port.id);
  assert.deepEqual(p.extra_dhcp_opts, [], 'the inspection\'s options go with it');
  assert.equal(p.device_id, 'race-server');
});

test('a NIC with no port there: the winner\'s provisioning port, none of the losers\' (no 400 for a MAC the winner took)', async () => {
  const id = await manageable('race-2', '52:54:00:c1:00:02');
  await race('race-2');
  const made = await provisioningPorts(id);
  assert.equal(made.length, 1);
  assert.deepEqual((await cond.spec(id)).spec.provisioning?.port_ids, [made[0].id]);
  assert.equal(made[0].extra_dhcp_opts.find((o: any) => o.opt_name === 'tag:ipxe,67')?.opt_value, BOOT);
  await cond.finish(id, 'succeeded');
  assert.deepEqual(await provisioningPorts(id), []);
});

test('a request that cannot open its ports gives the node back; a hold left by a replica that died counts for a minute', async () => {
  const id = await manageable('race-3', '52:54:00:c1:00:03');
  // the MAC taken on the provisioning network by a port that is no VIF of a node: Ironic's 400, the node as it was
  const taken = await cloud.call('POST', '/network/v2.0/ports', { token: cloud.adminToken, body: { port: { network_id: provisioningNet, mac_address: '52:54:00:c1:00:03' } } });
  assert.equal(taken.status, 201, JSON.stringify(taken.body));
  const before = await show('race-3');
  assertIronicError(await verb('race-3', { target: 'inspect' }), 400, /Unable to set up the provisioning network .*52:54:00:c1:00:03/);
  let n = await show('race-3');
  assert.equal(n.provision_state, 'manageable');
  assert.equal(n.reservation, before.reservation);
  assert.equal((await cloud.call('DELETE', `/network/v2.0/ports/${taken.body.port.id}`, { token: cloud.adminToken })).status, 204);
  // held by a request of another replica: 409; once the hold is a minute old (that replica died holding it), taken over
  const db = cloud.server.database.db;
  await db.updateTable('baremetal_nodes').set({ reservation: 'bm-replica-2', updated_at: new Date().toISOString() }).where('uuid', '=', id).execute();
  assertIronicError(await verb('race-3', { target: 'inspect' }), 409, /is locked by host bm-replica-2/);
  await db.updateTable('baremetal_nodes').set({ updated_at: new Date(Date.now() - 120_000).toISOString() }).where('uuid', '=', id).execute();
  assert.equal((await verb('race-3', { target: 'inspect' })).status, 202);
  n = await show('race-3');
  assert.equal(n.provision_state, 'inspecting');
  assert.equal(n.reservation, cond.hostname);
  await cond.finish(id, 'succeeded');
  assert.equal((await show('race-3')).provision_state, 'manageable');
});

test('a node changed while a request holds it (a PATCH between the hold and the operation\'s write): the request is 409 and the hold is given back, never left', async () => {
  const id = await manageable('bm-race-patched', '52:54:00:7a:00:04');
  const inspecting = verb('bm-race-patched', { target: 'inspect' });
  // the hold is written before the ports are made (50 ms each): a PATCH then moves the node's version
  await new Promise((r) => setTimeout(r, 20));
  const patched = await bm()('PATCH', `/v1/nodes/${id}`, { body: [{ op: 'add', path: '/extra/touched', value: 'yes' }] });
  const r = await inspecting;
  if (r.status === 202) {
    // the PATCH was refused while the node was held, or came after: the request won as usual
    assert.equal((await show(id)).provision_state, 'inspecting', JSON.stringify(patched.body));
    return;
  }
  assert.equal(patched.status, 200, JSON.stringify(patched.body));
  assertIronicError(r, 409, /is locked by host/);
  const after = await show(id);
  assert.equal(after.reservation, null, 'the hold was given back');
  assert.equal(after.provision_state, 'manageable');
  assert.deepEqual(await provisioningPorts(id), [], 'the ports it made went with it');
  // not locked: the next request takes it
  assert.equal((await verb('bm-race-patched', { target: 'inspect' })).status, 202);
});
