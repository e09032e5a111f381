// Servers on networks through the compute API (no agent): `networks` makes
// ports (or takes the one named) for the server, the server's `addresses`
// show them, a bad network is Nova's 400 with nothing left behind, the
// scheduler's host binds them (and the host's agent is handed them), and a
// deleted server's ports go while a port the user gave stays, detached.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startCloud, type Cloud } from '../../harness.ts';
import { PROTOCOL_VERSION } from '../../../src/fleet/protocol.ts';
import { create, neutron, type NetCall } from './lib.ts';

let cloud: Cloud;
let call: NetCall;
let imageId: string;
let flavorId: string;

const nova = (method: string, path: string, body?: unknown) =>
  cloud.call(method, `/compute/v2.1${path}`, { token: cloud.adminToken, body, headers: { 'X-OpenStack-Nova-API-Version': '2.79' } });

before(async () => {
  cloud = await startCloud();
  call = neutron(cloud);
  const img = await cloud.call('POST', '/image/v2/images', { token: cloud.adminToken, body: { name: 'i', container_format: 'bare', disk_format: 'raw', visibility: 'public' } });
  imageId = img.body.id;
  const up = await fetch(`${cloud.url}/image/v2/images/${imageId}/file`, { method: 'PUT', headers: { 'X-Auth-Token': cloud.adminToken, 'Content-Type': 'application/octet-stream' }, body: Buffer.alloc(1024, 1) });
  assert.equal(up.status, 204);
  const fl = await nova('POST', '/flavors', { flavor: { name: 'net-test', ram: 64, vcpus: 1, disk: 0 } });
  flavorId = fl.body.flavor.id;
});
after(async () => {
  await cloud?.close();
});

const server = (networks: unknown, name = 'srv') => nova('POST', '/servers', { server: { name, imageRef: imageId, flavorRef: flavorId, networks } });
const portsOf = async (serverId: string) => (await call('GET', `/ports?device_id=${serverId}`)).body.ports as any[];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('a server on networks: ports, addresses, errors, binding, delete', async () => {
  const net = await create(call, 'networks', 'network', { name: 'apps' });
  await create(call, 'subnets', 'subnet', { network_id: net.id, cidr: '10.85.0.0/24', ip_version: 4 });
  const given = await create(call, 'ports', 'port', { network_id: net.id, name: 'given' });

  // no host yet: the server is never placed, so its delete is at once
  const r = await server([{ uuid: net.id, fixed_ip: '10.85.0.30' }, { port: given.id }]);
  assert.equal(r.status, 202, JSON.stringify(r.body));
  const id = r.body.server.id as string;
  const ports = await portsOf(id);
  assert.equal(ports.length, 2);
  const made = ports.find((p) => p.id !== given.id);
  assert.equal(made.device_owner, 'compute:nova');
  const shown = (await nova('GET', `/servers/${id}`)).body.server;
  const addrs = shown.addresses.apps as any[];
  assert.deepEqual(addrs.find((a) => a.addr === '10.85.0.30'), { version: 4, addr: '10.85.0.30', 'OS-EXT-IPS:type': 'fixed', 'OS-EXT-IPS-MAC:mac_addr': made.mac_address });
  assert.equal(addrs.length, 2);

  // a network that is not there: Nova's 400, no server and no port left
  const bad = await server([{ uuid: '00000000-1111-2222-3333-444444444444' }], 'bad');
  assert.equal(bad.status, 400, JSON.stringify(bad.body));
  const live = (await nova('GET', '/servers?name=bad')).body.servers;
  assert.deepEqual(live, []);
  // a port in use by another server: 409
  assert.equal((await server([{ port: given.id }], 'twice')).status, 409);
  // one port for several servers: 400
  const many = await nova('POST', '/servers', { server: { name: 'many', imageRef: imageId, flavorRef: flavorId, networks: [{ port: given.id }], min_count: 2 } });
  assert.equal(many.status, 400);

  assert.equal((await nova('DELETE', `/servers/${id}`)).status, 204);
  assert.equal((await call('GET', `/ports/${made.id}`)).status, 404, 'the port made for the server goes');
  const kept = (await call('GET', `/ports/${given.id}`)).body.port;
  assert.equal(kept.device_id, '', 'the given port stays, detached');

  // a host: the scheduler places the next server there and its port is bound to it, so the host's agent is handed it
  const token = readFileSync(join(cloud.dataDir, 'agent-token'), 'utf8').trim();
  const agent = (method: string, path: string, body: unknown) =>
    fetch(`${cloud.url}/agent/v1/hosts/${path}`, { method, headers: { 'x-stratus-agent-token': token, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const reg = await agent('PUT', 'net-host', { protocol: PROTOCOL_VERSION, kinds: { server: ['container', 'vm'], network: [], port: [], security_group: [] }, vcpus: 8, memory_mb: 8192, disk_gb: 100, version: 't', host_ip: '127.0.0.1' });
  assert.equal(reg.status, 200);
  const placed = await server([{ uuid: net.id }], 'placed');
  assert.equal(placed.status, 202);
  const pid = placed.body.server.id as string;
  let port: any;
  for (let i = 0; i < 200; i++) {
    port = (await portsOf(pid))[0];
    if (port?.['binding:host_id'] === 'net-host') break;
    await sleep(50);
  }
  assert.equal(port['binding:host_id'], 'net-host', JSON.stringify((await nova('GET', `/servers/${pid}`)).body.server));
  const w = await (await agent('POST', 'net-host/watch', { known: { server: {}, network: {}, port: {}, security_group: {} }, wait: 0 })).json() as any;
  const handed = w.resources.find((x: any) => x.kind === 'port' && x.id === port.id);
  assert.ok(handed, 'the port is on the host');
  assert.equal(handed.spec.device_id, pid);
  assert.ok(w.resources.some((x: any) => x.kind === 'server' && x.id === pid));
  assert.ok(w.resources.some((x: any) => x.kind === 'network' && x.id === net.id));
});
