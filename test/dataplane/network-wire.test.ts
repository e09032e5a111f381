// Networks through the API become real on a host: a real server and a real
// agent (its network driver keeps its bridges and nft tables in a namespace of
// this test's, standing for the host), a network with a DHCP subnet and two
// ports bound to the agent's host for two "servers" (plain namespaces
// st-<id>, made by the driver): the ports turn ACTIVE, the servers ping each
// other, DHCP runs; deleting the ports and the network removes everything.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../../src/agent/exec.ts';
import { bridgeName, dhcpNamespace, serverNamespace, tapName, vxlanName } from '../../src/network/protocol.ts';
import { dnsmasqPid, hostLeftovers, pingSoon, sh, shOk } from './network-lib.ts';
import { skipUnlessRoot, sleep, startPlane, type Plane } from './lib.ts';

async function until<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: T | null | undefined | false = null;
  while (Date.now() < end) {
    last = await fn();
    if (last) return last;
    await sleep(200);
  }
  throw new Error(`timed out waiting for ${what}`);
}

const links = async (ns: string) => (JSON.parse(await shOk(ns, ['ip', '-j', 'link', 'show'])) as Array<{ ifname: string }>).map((l) => l.ifname);

test('API network and ports made real by the agent: ACTIVE, ping, DHCP, all gone after delete', { skip: skipUnlessRoot, timeout: 240_000 }, async (t) => {
  const hostNs = `nw${randomBytes(3).toString('hex')}-host`;
  const servers = [randomUUID(), randomUUID()];
  let plane: Plane | null = null;
  let networkId: string | null = null;
  t.after(async () => {
    await plane?.cleanup();
    for (const ns of [hostNs, ...servers.map(serverNamespace), ...(networkId ? [dhcpNamespace(networkId)] : [])]) {
      if (existsSync(`/run/netns/${ns}`)) await run('ip', ['netns', 'del', ns]);
    }
  });
  await run('ip', ['netns', 'add', hostNs]);
  await sh(hostNs, ['ip', 'link', 'set', 'lo', 'up']);
  plane = await startPlane({ agent: 'inproc', network: { hostNetns: hostNs } });
  const p = plane;
  const neutron = async (method: string, path: string, body?: unknown) => {
    const r = await p.api(method, `/network/v2.0${path}`, body);
    return r;
  };
  const created = async (path: string, key: string, body: Record<string, unknown>) => {
    const r = await neutron('POST', path, { [key]: body });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body[key];
  };

  const net = await created('/networks', 'network', { name: 'wire' });
  networkId = net.id as string;
  const sub = await created('/subnets', 'subnet', { network_id: net.id, cidr: '10.93.0.0/24', ip_version: 4 });
  const ports: any[] = [];
  for (const id of servers) {
    ports.push(await created('/ports', 'port', { network_id: net.id, device_id: id, device_owner: 'compute:nova', 'binding:host_id': p.hostname }));
  }
  // the first bound port gave the network its DHCP port
  const dhcps = (await neutron('GET', `/ports?network_id=${net.id}&device_owner=network:dhcp`)).body.ports;
  assert.equal(dhcps.length, 1);
  const dhcp = dhcps[0];

  // plugged: ACTIVE once the agent reports
  for (const port of ports) {
    await until(`port ${port.id} ACTIVE`, async () => (await neutron('GET', `/ports/${port.id}`)).body.port.status === 'ACTIVE');
  }
  const hostLinks = await links(hostNs);
  assert.ok(hostLinks.includes(bridgeName(net.id)), 'the bridge');
  assert.ok(hostLinks.includes(vxlanName(net['provider:segmentation_id'])), 'the VXLAN device');
  for (const port of ports) assert.ok(hostLinks.includes(tapName(port.id)), `the host side of ${port.id}`);

  // the servers' side: MAC, address, gateway route; they reach each other
  const [a, b] = servers.map(serverNamespace) as [string, string];
  const eth0 = JSON.parse(await shOk(a, ['ip', '-j', 'addr', 'show', 'dev', 'eth0']))[0];
  assert.equal(eth0.address, ports[0].mac_address);
  assert.equal(eth0.mtu, 1450);
  assert.ok(eth0.addr_info.some((x: any) => x.local === ports[0].fixed_ips[0].ip_address && x.prefixlen === 24));
  const routes = JSON.parse(await shOk(a, ['ip', '-j', 'route', 'show', 'default']));
  assert.equal(routes[0]?.gateway, sub.gateway_ip);
  assert.ok(await pingSoon(a, ports[1].fixed_ips[0].ip_address, 5), 'a -> b (the default group lets its members in)');
  assert.ok(await pingSoon(b, ports[0].fixed_ips[0].ip_address, 5), 'b -> a');

  // DHCP: dnsmasq in qdhcp-<net> on the DHCP port's address, reachable from the servers
  const pid = await until('dnsmasq', async () => dnsmasqPid(join(p.stateDir, 'network', 'dhcp', net.id)));
  assert.ok(pid > 0);
  assert.ok(await pingSoon(a, dhcp.fixed_ips[0].ip_address, 5), 'a -> the DHCP port');

  // delete the ports: with no device port left on this host, the network (bridge, VXLAN, DHCP) leaves it too
  for (const port of ports) assert.equal((await neutron('DELETE', `/ports/${port.id}`)).status, 204);
  await until('the ports gone from the host', async () => {
    const now = await links(hostNs);
    return ports.every((port) => !now.includes(tapName(port.id))) && !now.includes(bridgeName(net.id));
  });
  // no server here: the namespaces the ports made go with them (as after a server deleted before its port came)
  await until('the namespaces the ports made gone', async () => [a, b].every((ns) => !existsSync(`/run/netns/${ns}`)));
  assert.equal((await neutron('DELETE', `/networks/${net.id}`)).status, 204, 'the network goes with its DHCP port');
  assert.equal((await neutron('GET', `/ports/${dhcp.id}`)).status, 404);
  await until('dnsmasq and qdhcp gone', async () => !existsSync(`/run/netns/${dhcpNamespace(net.id)}`) && !(await dnsmasqPid(join(p.stateDir, 'network', 'dhcp', net.id))));
  const left = await hostLeftovers(hostNs, [net.id]);
  assert.deepEqual(left.filter((l) => !l.startsWith('table')), [], 'no bridge, tap or VXLAN device left');
  // the group's removal waits for its ports' (retried with backoff)
  await until('no network state left', async () => ['networks', 'ports', 'sgs'].every((d) => readdirSync(join(p.stateDir, 'network', d)).length === 0));
});
