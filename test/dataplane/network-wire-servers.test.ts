// Servers on a tenant network end to end: `POST /servers` with `networks`
// makes the ports, the scheduler's host binds them, the real agent starts the
// containers and plugs the ports into their namespaces; the two servers ping
// each other, `addresses` shows the fixed IPs, and deleting the servers
// removes their ports and the network from the host.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bridgeName, serverNamespace, tapName } from '../../src/network/protocol.ts';
import { networkPlane, pingSoon, shOk } from './network-lib.ts';
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

test('servers with networks: ports made and bound, plugged into the containers, ping, gone with the servers', { skip: skipUnlessRoot, timeout: 300_000 }, async (t) => {
  const { plane: p, hostNs } = await networkPlane(t, 'nw');
  const neutron = (method: string, path: string, body?: unknown) => p.api(method, `/network/v2.0${path}`, body);

  const net = (await neutron('POST', '/networks', { network: { name: 'apps' } })).body.network;
  const sub = await neutron('POST', '/subnets', { subnet: { network_id: net.id, cidr: '10.94.0.0/24', ip_version: 4 } });
  assert.equal(sub.status, 201);
  const ids: string[] = [];
  for (const name of ['web', 'db']) ids.push(await p.createServer({ name, networks: [{ uuid: net.id }] }));
  const servers: any[] = [];
  for (const id of ids) servers.push(await p.waitStatus(id, ['ACTIVE']));
  const ipOf = (s: any) => s.addresses.apps[0].addr as string;
  // the view read at ACTIVE: the address is there from the create on
  for (const s of servers) assert.match(ipOf(s), /^10\.94\.0\.\d+$/);
  const ports: any[] = [];
  for (const id of ids) {
    const list = (await neutron('GET', `/ports?device_id=${id}`)).body.ports;
    assert.equal(list.length, 1);
    assert.equal(list[0]['binding:host_id'], p.hostname);
    ports.push(await until(`port of ${id} ACTIVE`, async () => {
      const port = (await neutron('GET', `/ports/${list[0].id}`)).body.port;
      return port.status === 'ACTIVE' && port;
    }));
  }
  // inside the container's namespace: eth0 with the port's MAC and address
  const [a, b] = ids.map(serverNamespace) as [string, string];
  const eth0 = JSON.parse(await shOk(a, ['ip', '-j', 'addr', 'show', 'dev', 'eth0']))[0];
  assert.equal(eth0.address, ports[0].mac_address);
  assert.ok(eth0.addr_info.some((x: any) => x.local === ipOf(servers[0])));
  assert.ok(await pingSoon(a, ipOf(servers[1]), 5), 'web -> db');
  assert.ok(await pingSoon(b, ipOf(servers[0]), 5), 'db -> web');

  for (const id of ids) assert.equal((await p.api('DELETE', `/compute/v2.1/servers/${id}`)).status, 204);
  for (const id of ids) await p.waitGone(id);
  await until('the ports deleted', async () => {
    for (const id of ids) if ((await neutron('GET', `/ports?device_id=${id}`)).body.ports.length) return false;
    return true;
  });
  await until('the network gone from the host', async () => {
    const links = (JSON.parse(await shOk(hostNs, ['ip', '-j', 'link', 'show'])) as Array<{ ifname: string }>).map((l) => l.ifname);
    return !links.includes(bridgeName(net.id)) && ports.every((port) => !links.includes(tapName(port.id)));
  });
  assert.equal((await neutron('DELETE', `/networks/${net.id}`)).status, 204);
});
