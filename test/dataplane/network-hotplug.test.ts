// Hot-plugging a port into a running server: os-interface attaches a port on
// the server's network (a fixed IP asked for), the real agent plugs it into
// the running container as eth1 with that address; a second one comes as
// eth2. Detaching eth1 takes it away and deletes the port Nova made, and eth2
// stays the same link under the same name (interfaces keep the index they were
// attached with); the next attach takes eth1 again. eth0 stays up throughout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { serverNamespace } from '../../src/network/protocol.ts';
import { networkPlane, shOk } from './network-lib.ts';
import { skipUnlessRoot, sleep } from './lib.ts';

async function until<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const v = await fn();
    if (v) return v;
    await sleep(200);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** The server's interfaces: name -> IPv4 addresses. */
async function links(ns: string): Promise<Map<string, string[]>> {
  const rows = JSON.parse(await shOk(ns, ['ip', '-j', 'addr', 'show'])) as Array<{ ifname: string; addr_info: Array<{ family: string; local: string }> }>;
  return new Map(rows.map((r) => [r.ifname, r.addr_info.filter((a) => a.family === 'inet').map((a) => a.local)]));
}

test('os-interface: a port attached to a running server appears as eth1 with its address, and goes when detached; eth2 keeps its name', { skip: skipUnlessRoot, timeout: 300_000 }, async (t) => {
  const { plane: p } = await networkPlane(t, 'hp');
  const neutron = (method: string, path: string, body?: unknown) => p.api(method, `/network/v2.0${path}`, body);

  const net = (await neutron('POST', '/networks', { network: { name: 'hot' } })).body.network;
  assert.equal((await neutron('POST', '/subnets', { subnet: { network_id: net.id, cidr: '10.96.0.0/24', ip_version: 4 } })).status, 201);
  const id = await p.createServer({ name: 'hot', networks: [{ uuid: net.id }] });
  const server = await p.waitStatus(id, ['ACTIVE']);
  const ns = serverNamespace(id);
  const eth0Ip = server.addresses.hot[0].addr as string;
  await until('eth0 with its address', async () => (await links(ns)).get('eth0')?.includes(eth0Ip));

  const att = await p.api('POST', `/compute/v2.1/servers/${id}/os-interface`, { interfaceAttachment: { net_id: net.id, fixed_ips: [{ ip_address: '10.96.0.200' }] } });
  assert.equal(att.status, 200, JSON.stringify(att.body));
  const portId = att.body.interfaceAttachment.port_id as string;
  await until('eth1 with the attached address', async () => (await links(ns)).get('eth1')?.includes('10.96.0.200'));
  const eth1 = JSON.parse(await shOk(ns, ['ip', '-j', 'link', 'show', 'dev', 'eth1']))[0];
  assert.equal(eth1.address, att.body.interfaceAttachment.mac_addr);
  await until('the port ACTIVE', async () => (await neutron('GET', `/ports/${portId}`)).body.port.status === 'ACTIVE');
  assert.ok((await links(ns)).get('eth0')?.includes(eth0Ip), 'eth0 untouched');

  const attach = async (ip: string) => {
    const r = await p.api('POST', `/compute/v2.1/servers/${id}/os-interface`, { interfaceAttachment: { net_id: net.id, fixed_ips: [{ ip_address: ip }] } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
  };
  const ifindex = async (dev: string) => JSON.parse(await shOk(ns, ['ip', '-j', 'link', 'show', 'dev', dev]))[0].ifindex as number;
  await attach('10.96.0.201');
  await until('eth2 with the second attached address', async () => (await links(ns)).get('eth2')?.includes('10.96.0.201'));
  const eth2 = await ifindex('eth2');

  // the middle one goes: eth2 is not renamed (nor re-made) under the running server
  assert.equal((await p.api('DELETE', `/compute/v2.1/servers/${id}/os-interface/${portId}`)).status, 202);
  await until('eth1 gone', async () => !(await links(ns)).has('eth1'));
  assert.equal((await neutron('GET', `/ports/${portId}`)).status, 404);
  await attach('10.96.0.202');
  await until('eth1 again, with the third attached address', async () => (await links(ns)).get('eth1')?.includes('10.96.0.202'));
  assert.ok((await links(ns)).get('eth2')?.includes('10.96.0.201'), 'eth2 keeps its address');
  assert.equal(await ifindex('eth2'), eth2, 'eth2 is the same link');
  assert.ok((await links(ns)).get('eth0')?.includes(eth0Ip), 'eth0 untouched');

  assert.equal((await p.api('DELETE', `/compute/v2.1/servers/${id}`)).status, 204);
  await p.waitGone(id);
  await until('the ports deleted', async () => !(await neutron('GET', `/ports?device_id=${id}`)).body.ports.length);
  assert.equal((await neutron('DELETE', `/networks/${net.id}`)).status, 204);
});
