// Stable interface names: a server's port keeps the index (eth<n>) it got when
// it was bound to the server. At create in the order the networks were asked
// for, on os-interface attach the lowest free one; detaching one interface
// renames none of the others, and a port made before the server is named by
// its attachment, not its age. Concurrent attaches get distinct indexes; rows
// from before the index was stored keep the order-based names they run under.
// No agent: a host registered by hand, its watch read for the ports' specs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sql, type Kysely } from 'kysely';
import { useCloud, type Cloud } from '../../harness.ts';
import { create, neutron, type NetCall } from '../network/lib.ts';
import { claimInterfaceIndex } from '../../../src/network/interface-index.ts';
import { retryOnCollision } from '../../../src/network/retry.ts';
import { ApiError } from '../../../src/common/errors.ts';
import { adminNova, agentCall, networkedHost, projectUser, type Nova } from './lib.ts';

let admin: Nova;
let alice: Nova;
let call: NetCall;
let imageId: string;
let flavorId: string;
const HOST = `ifname-host-${process.pid}`;

const cloud: Cloud = useCloud(async (c) => {
  admin = await adminNova(c);
  alice = await projectUser(c);
  call = neutron(c);
  ({ imageId, flavorId } = await networkedHost(c, admin, HOST, 'ifname'));
});

const agent = agentCall;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const db = () => cloud.server.database.db as unknown as Kysely<any>;

/** What the host's agent is handed: each of the server's ports' interface name, by port id. */
async function ifnames(serverId: string): Promise<Record<string, string>> {
  const w = await (await agent(cloud, 'POST', `${HOST}/watch`, { known: { server: {}, network: {}, port: {}, security_group: {} }, wait: 0 })).json() as any;
  return Object.fromEntries(w.resources.filter((x: any) => x.kind === 'port' && x.spec?.device_id === serverId).map((x: any) => [x.id, x.spec.vif.ifname]));
}

/** A server of alice's placed on HOST and made ACTIVE by the admin (no agent builds it here). */
async function activeServer(networks: unknown): Promise<string> {
  const r = await alice.call('POST', '/servers', { version: '2.37', body: { server: { name: 'srv', imageRef: imageId, flavorRef: flavorId, networks } } });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  const id = r.body.server.id as string;
  for (let i = 0; i < 200; i++) {
    const s = (await admin.call('GET', `/servers/${id}`, { version: '2.37' })).body.server;
    if (s['OS-EXT-SRV-ATTR:host'] === HOST) break;
    await sleep(50);
  }
  assert.equal((await admin.call('POST', `/servers/${id}/action`, { body: { 'os-resetState': { state: 'active' } } })).status, 202);
  return id;
}

async function attach(serverId: string, body: Record<string, unknown>): Promise<string> {
  const r = await alice.call('POST', `/servers/${serverId}/os-interface`, { body: { interfaceAttachment: body } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.interfaceAttachment.port_id;
}

async function network(name: string, cidr: string): Promise<string> {
  const net = await create(call, 'networks', 'network', { name }, alice.token);
  await create(call, 'subnets', 'subnet', { network_id: net.id, cidr, ip_version: 4 }, alice.token);
  return net.id;
}

test('detaching the middle interface renames none; the next attach takes the freed index', async () => {
  const net = await network('ifn-a', '10.93.0.0/24');
  const id = await activeServer([{ uuid: net }]);
  const [first] = Object.keys(await ifnames(id));
  const second = await attach(id, { net_id: net });
  const third = await attach(id, { net_id: net });
  assert.deepEqual(await ifnames(id), { [first!]: 'eth0', [second]: 'eth1', [third]: 'eth2' });

  assert.equal((await alice.call('DELETE', `/servers/${id}/os-interface/${second}`)).status, 202);
  assert.deepEqual(await ifnames(id), { [first!]: 'eth0', [third]: 'eth2' }, 'eth2 stays eth2');
  const fourth = await attach(id, { net_id: net });
  assert.deepEqual(await ifnames(id), { [first!]: 'eth0', [third]: 'eth2', [fourth]: 'eth1' });
  const fifth = await attach(id, { net_id: net });
  assert.equal((await ifnames(id))[fifth], 'eth3');

  // a given port takes the lowest free index; detached and kept, it leaves the index behind
  const given = await create(call, 'ports', 'port', { network_id: net, name: 'given' }, alice.token);
  assert.equal(await attach(id, { port_id: given.id }), given.id);
  assert.equal((await ifnames(id))[given.id], 'eth4');
  assert.equal((await alice.call('DELETE', `/servers/${id}/os-interface/${given.id}`)).status, 202);
  const row = await db().selectFrom('network_ports').select(['device_id', 'interface_index']).where('id', '=', given.id).executeTakeFirstOrThrow();
  assert.deepEqual({ ...row }, { device_id: '', interface_index: null });
});

test('a port made before the server is named by its place at create, or by its attachment', async () => {
  const net = await network('ifn-b', '10.94.0.0/24');
  const other = await network('ifn-c', '10.95.0.0/24');
  const early = await create(call, 'ports', 'port', { network_id: other, name: 'early' }, alice.token);
  const late = await create(call, 'ports', 'port', { network_id: other, name: 'late' }, alice.token);
  // at create: in the order asked, though the given port is older than the made one
  const id = await activeServer([{ uuid: net }, { port: early.id }]);
  const names = await ifnames(id);
  const made = Object.keys(names).find((p) => p !== early.id)!;
  assert.deepEqual(names, { [made]: 'eth0', [early.id]: 'eth1' });
  // attached: the lowest free index, though it is older than the server's ports
  assert.equal((await alice.call('DELETE', `/servers/${id}/os-interface/${made}`)).status, 202);
  assert.deepEqual(await ifnames(id), { [early.id]: 'eth1' });
  await attach(id, { port_id: late.id });
  assert.deepEqual(await ifnames(id), { [early.id]: 'eth1', [late.id]: 'eth0' });
});

test('concurrent attaches on one server get distinct indexes', async () => {
  const net = await network('ifn-d', '10.96.0.0/24');
  const id = await activeServer([{ uuid: net }]);
  const given = await Promise.all([0, 1].map((i) => create(call, 'ports', 'port', { network_id: net, name: `c${i}` }, alice.token)));
  const ports = await Promise.all([
    attach(id, { net_id: net }), attach(id, { net_id: net }), attach(id, { net_id: net }),
    attach(id, { port_id: given[0].id }), attach(id, { port_id: given[1].id }),
  ]);
  const names = await ifnames(id);
  assert.equal(Object.keys(names).length, 6);
  for (const p of ports) assert.ok(names[p], p);
  assert.deepEqual(Object.values(names).sort(), ['eth0', 'eth1', 'eth2', 'eth3', 'eth4', 'eth5']);
  // stored so, not merely named so
  const rows = await db().selectFrom('network_ports').select('interface_index').where('device_id', '=', id).execute();
  assert.deepEqual(rows.map((r) => r.interface_index).sort(), [0, 1, 2, 3, 4, 5]);
});

// The race itself, made to happen: the second claim picks the index the first
// holds uncommitted, waits on the unique index, is refused once the first
// commits, and is run again (PostgreSQL: SQLite runs one transaction at a time).
test('a claim that collides with a concurrent one is run again and gets the next index', { skip: !process.env.STRATUS_TEST_DATABASE }, async () => {
  const net = await network('ifn-r', '10.99.0.0/24');
  const id = await activeServer([{ uuid: net }]);
  const [p1, p2] = await Promise.all([0, 1].map((i) => create(call, 'ports', 'port', { network_id: net, name: `r${i}` }, alice.token)));
  const take = async (tx: Kysely<any>, portId: string) => {
    await tx.updateTable('network_ports').set({ device_id: id, device_owner: 'compute:nova' }).where('id', '=', portId).execute();
    return await claimInterfaceIndex(tx, id, portId);
  };
  let release!: () => void;
  const gate = new Promise<void>((r) => { release = r; });
  let claimed!: (n: number) => void;
  const firstClaimed = new Promise<number>((r) => { claimed = r; });
  const first = db().transaction().execute(async (tx) => { claimed(await take(tx, p1.id)); await gate; });
  assert.equal(await firstClaimed, 1);
  let attempts = 0;
  let settled = false;
  const second = retryOnCollision(() => db().transaction().execute(async (tx) => { attempts++; return await take(tx, p2.id); }), () => new ApiError('Conflict', 'exhausted'))
    .finally(() => { settled = true; });
  // the second waits on the first's uncommitted index entry (or, were nothing to keep them apart, is done)
  while (!settled) {
    const waiting = await db().selectFrom('pg_stat_activity' as any).select('pid').where('wait_event_type', '=', 'Lock').where('datname', '=', sql<string>`current_database()`).execute();
    if (waiting.length) break;
    await sleep(10);
  }
  release();
  await first;
  assert.equal(await second, 2);
  assert.equal(attempts, 2, 'refused once, then run again');
});

test('ports bound before indexes were stored keep their order-based names; an attach fills them in first', async () => {
  const net = await network('ifn-e', '10.97.0.0/24');
  const id = await activeServer([{ uuid: net }, { uuid: net }, { uuid: net }]);
  const before = await ifnames(id);
  assert.deepEqual(Object.values(before).sort(), ['eth0', 'eth1', 'eth2']);
  // as the rows were before the upgrade: no index; the order rule of then (created_at, id) gave these names
  // (ports made in the same millisecond are ordered by their random id: made apart here, as they were named)
  await db().updateTable('network_ports').set({ interface_index: null }).where('device_id', '=', id).execute();
  for (const [port, name] of Object.entries(before)) {
    await db().updateTable('network_ports').set({ created_at: `2026-01-01T00:00:0${name.slice(3)}.000Z` }).where('id', '=', port).execute();
  }
  assert.deepEqual(await ifnames(id), before);
  const added = await attach(id, { net_id: net });
  assert.deepEqual(await ifnames(id), { ...before, [added]: 'eth3' });
  const middle = Object.keys(before).find((p) => before[p] === 'eth1')!;
  assert.equal((await alice.call('DELETE', `/servers/${id}/os-interface/${middle}`)).status, 202);
  const { [middle]: _gone, ...rest } = before;
  assert.deepEqual(await ifnames(id), { ...rest, [added]: 'eth3' });
});

test('a port moved to another device through Neutron loses its index', async () => {
  const net = await network('ifn-f', '10.98.0.0/24');
  const id = await activeServer([{ uuid: net }]);
  const p = await create(call, 'ports', 'port', { network_id: net }, alice.token);
  await attach(id, { port_id: p.id });
  assert.equal((await ifnames(id))[p.id], 'eth1');
  const r = await call('PUT', `/ports/${p.id}`, { body: { port: { device_id: 'elsewhere' } }, token: alice.token });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const row = await db().selectFrom('network_ports').select('interface_index').where('id', '=', p.id).executeTakeFirstOrThrow();
  assert.equal(row.interface_index, null);
});
