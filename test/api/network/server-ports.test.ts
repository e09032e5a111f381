// The in-process interface compute uses for its servers' ports: ports made or
// taken at create (all or nothing), bound to the scheduler's host (which gives
// the network its DHCP port), the server's addresses, and release: made
// ports deleted, given ones detached.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { startCloud, type Cloud } from '../../harness.ts';
import { createNetworkService, type ServerNetworking } from '../../../src/network/service.ts';
import { NeutronError } from '../../../src/network/errors.ts';
import { create, neutron, type NetCall } from './lib.ts';

let cloud: Cloud;
let call: NetCall;
let servers: ServerNetworking;
let projectId: string;

before(async () => {
  cloud = await startCloud();
  call = neutron(cloud);
  servers = createNetworkService({ db: cloud.server.database.db, log: pino({ level: 'silent' }) }).servers;
  projectId = (await cloud.server.database.db.selectFrom('identity_projects').select('id').where('name', '=', 'admin').executeTakeFirstOrThrow()).id;
});
after(async () => {
  await cloud?.close();
});

test('server ports: allocate, bind, addresses, release', async () => {
  const net = await create(call, 'networks', 'network', { name: 'srv-net' });
  await create(call, 'subnets', 'subnet', { network_id: net.id, cidr: '10.81.0.0/24', ip_version: 4 });
  const given = await create(call, 'ports', 'port', { network_id: net.id });
  const serverId = '11111111-2222-3333-4444-555555555555';

  assert.deepEqual(await servers.allocate({ serverId, projectId, availabilityZone: 'nova', requested: 'none' }), []);
  // an unknown network: nothing made, the given port not taken
  await assert.rejects(servers.allocate({ serverId, projectId, availabilityZone: 'nova', requested: [{ port: given.id }, { uuid: '99999999-2222-3333-4444-555555555555' }] }),
    (e: unknown) => e instanceof NeutronError && e.type === 'NetworkNotFound');
  assert.equal((await call('GET', `/ports/${given.id}`)).body.port.device_id, '');
  assert.equal((await call('GET', `/ports?device_id=${serverId}`)).body.ports.length, 0);

  const ids = await servers.allocate({ serverId, projectId, availabilityZone: 'nova', requested: [{ uuid: net.id, fixed_ip: '10.81.0.40' }, { port: given.id }] });
  assert.equal(ids.length, 2);
  assert.equal(ids[1], given.id);
  const made = (await call('GET', `/ports/${ids[0]}`)).body.port;
  assert.equal(made.device_owner, 'compute:nova');
  assert.equal(made.device_id, serverId);
  assert.deepEqual(made.fixed_ips.map((f: any) => f.ip_address), ['10.81.0.40']);
  assert.equal(made.security_groups.length, 1, 'the project\'s default group');
  // a port in use cannot be taken again
  await assert.rejects(servers.allocate({ serverId: 'other', projectId, availabilityZone: 'nova', requested: [{ port: given.id }] }), (e: unknown) => e instanceof NeutronError && e.type === 'PortInUse');

  await servers.bind(serverId, 'host-x');
  for (const id of ids) assert.equal((await call('GET', `/ports/${id}`)).body.port['binding:host_id'], 'host-x');
  assert.equal((await call('GET', `/ports?network_id=${net.id}&device_owner=network:dhcp`)).body.ports.length, 1, 'binding gave the network its DHCP port');

  const addrs = (await servers.addresses([serverId])).get(serverId)!;
  assert.deepEqual(Object.keys(addrs), ['srv-net']);
  assert.equal(addrs['srv-net']!.length, 2);
  assert.deepEqual(addrs['srv-net']!.find((a) => a.addr === '10.81.0.40'), { version: 4, addr: '10.81.0.40', 'OS-EXT-IPS:type': 'fixed', 'OS-EXT-IPS-MAC:mac_addr': made.mac_address });

  await servers.release(serverId, [given.id]);
  assert.equal((await call('GET', `/ports/${ids[0]}`)).status, 404, 'the port made for the server goes');
  const kept = (await call('GET', `/ports/${given.id}`)).body.port;
  assert.equal(kept.device_id, '');
  assert.equal(kept['binding:host_id'], '');
});

test('server ports: auto takes the project\'s one network', async () => {
  // the project has srv-net from the test before (and no other): auto takes it
  const nets = (await call('GET', '/networks')).body.networks.filter((n: any) => !n['router:external']);
  if (nets.length === 1) {
    const ids = await servers.allocate({ serverId: 'auto-1', projectId, availabilityZone: 'nova', requested: 'auto' });
    assert.equal(ids.length, 1);
    await servers.release('auto-1', []);
  }
  await create(call, 'networks', 'network', { name: 'second' });
  await assert.rejects(servers.allocate({ serverId: 'auto-2', projectId, availabilityZone: 'nova', requested: 'auto' }), (e: unknown) => e instanceof NeutronError && e.status === 409);
});
