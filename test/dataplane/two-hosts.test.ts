// Two hosts through the whole plane: a server, the first host's agent
// (in-process, its bridges in a namespace of this test) and a second host made
// by `stratus host add-local`'s library (its own namespace, veth underlay to
// the first host's namespace, a real `stratus agent` process with its own
// state dir and runc root). Two servers forced onto different hosts on one
// tenant network reach each other over VXLAN; the one on the host without
// the network's DHCP gets a lease and names from the other's dnsmasq; after
// the deletes and `remove-local` nothing of either is left.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../src/agent/exec.ts';
import { removeLocalHost } from '../../src/cli/local-host.ts';
import { dhcpNamespace, serverNamespace } from '../../src/network/protocol.ts';
import { sh, shOk } from './network-lib.ts';
import { skipUnlessRoot, sleep } from './lib.ts';
import { startTwoHosts } from './two-hosts-lib.ts';

async function until<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const v = await fn();
    if (v) return v;
    await sleep(200);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** The driver's devices in a host namespace: bridges, taps, VXLAN devices. */
async function driverLinks(ns: string): Promise<string[]> {
  const links = JSON.parse(await shOk(ns, ['ip', '-j', 'link', 'show'])) as Array<{ ifname: string }>;
  return links.map((l) => l.ifname).filter((n) => /^(brq|tap|vx-)/.test(n));
}

/** The nft ruleset of a namespace without counters (what the rules are, not what they saw). */
async function ruleset(ns: string): Promise<string> {
  return shOk(ns, ['nft', '-s', 'list', 'ruleset']);
}

test('two hosts: servers on either, over VXLAN, DHCP and DNS across hosts, nothing left after', { skip: skipUnlessRoot, timeout: 300_000 }, async (t) => {
  const { p, nsA, nameB, stateB, tag, layout, log, stopB } = await startTwoHosts(t, { prefix: 'tw', underlayNet: '10.250' });
  const scratch = mkdtempSync(join(tmpdir(), `tw${tag}-s-`));
  const ids: string[] = [];
  t.after(async () => {
    for (const ns of ids.map(serverNamespace)) if (existsSync(`/run/netns/${ns}`)) await run('ip', ['netns', 'del', ns]);
    rmSync(scratch, { recursive: true, force: true });
  });
  const hostRow = (h: string) => p.cloud.server.database.db.selectFrom('compute_hosts').select(['hostname', 'host_ip']).where('hostname', '=', h).executeTakeFirst();
  const registered = await until('host B registered', async () => hostRow(nameB), 60_000);
  assert.equal(registered.host_ip, layout.hostIp, 'host B registers its end of the underlay as its VXLAN endpoint');
  assert.equal((await hostRow(p.hostname))?.host_ip, layout.peerIp);
  const rulesA = await ruleset(nsA);
  const rulesB = await until('host B\'s nft skeleton', async () => {
    const r = await ruleset(layout.netns);
    return r.includes('table inet stratus') && r;
  });

  const neutron = (method: string, path: string, body?: unknown) => p.api(method, `/network/v2.0${path}`, body);
  const net = (await neutron('POST', '/networks', { network: { name: 'apps' } })).body.network;
  assert.equal(net['provider:network_type'] ?? 'vxlan', 'vxlan');
  const sub = await neutron('POST', '/subnets', { subnet: { network_id: net.id, cidr: '10.95.0.0/24', ip_version: 4 } });
  assert.equal(sub.status, 201);
  const hosts = [p.hostname, nameB];
  for (const [i, h] of hosts.entries()) ids.push(await p.createServer({ name: `srv${i}`, networks: [{ uuid: net.id }], availability_zone: `nova:${h}` }));
  const servers: any[] = [];
  for (const id of ids) servers.push(await p.waitStatus(id, ['ACTIVE'], 120_000));
  for (const [i, s] of servers.entries()) assert.equal(s['OS-EXT-SRV-ATTR:host'], hosts[i], `server ${i} placed on ${hosts[i]}`);
  const ipOf = (s: any) => s.addresses.apps[0].addr as string;
  for (const s of servers) assert.match(ipOf(s), /^10\.95\.0\.\d+$/);
  for (const id of ids) {
    await until(`port of ${id} ACTIVE`, async () => (await neutron('GET', `/ports?device_id=${id}`)).body.ports[0]?.status === 'ACTIVE');
  }

  // each host's VXLAN device floods to the other's endpoint: the only path between them is the underlay
  for (const [ns, remote] of [[nsA, layout.hostIp], [layout.netns, layout.peerIp]] as const) {
    // the peer comes with the other host's port binding: a later spec than the server's ACTIVE may have seen
    await until(`${ns}'s VXLAN device flooding to ${remote}`, async () => {
      const vx = (await driverLinks(ns)).find((n) => n.startsWith('vx-'));
      return !!vx && (await shOk(ns, ['bridge', 'fdb', 'show', 'dev', vx])).includes(`dst ${remote} `);
    }, 30_000);
  }
  const [nsS0, nsS1] = ids.map(serverNamespace) as [string, string];
  const get = async (ns: string, ip: string) => {
    // (not wget -T: Debian's busybox 1.35 wget crashes with it)
    const r = await sh(ns, ['timeout', '3', '/bin/busybox', 'wget', '-qO-', `http://${ip}/`]);
    return r.code === 0 ? r.stdout.trim() : null;
  };
  assert.equal(await until('srv0 -> srv1 over HTTP', () => get(nsS0, ipOf(servers[1]))), 'srv1');
  assert.equal(await until('srv1 -> srv0 over HTTP', () => get(nsS1, ipOf(servers[0]))), 'srv0');

  // DHCP runs on one host (the first by name); the server on the other gets its lease and names from it
  const dhcpPort = await until('the DHCP port', async () => (await neutron('GET', `/ports?network_id=${net.id}&device_owner=network:dhcp`)).body.ports[0]);
  const dhcpIp = dhcpPort.fixed_ips[0].ip_address as string;
  const dhcpHost = [...hosts].sort()[0]!;
  const remote = dhcpHost === p.hostname ? 1 : 0;
  const remoteNs = remote === 1 ? nsS1 : nsS0;
  assert.ok(existsSync(`/run/netns/${dhcpNamespace(net.id)}`), 'the DHCP namespace');
  const dnsmasqPidFile = (stateDir: string) => join(stateDir, 'network', 'dhcp', net.id, 'pid');
  assert.deepEqual([p.stateDir, stateB].map((d) => existsSync(dnsmasqPidFile(d))), remote === 1 ? [true, false] : [false, true], 'dnsmasq runs on one host only');
  const script = join(scratch, 'lease.sh');
  writeFileSync(script, '#!/bin/sh\n[ "$1" = bound ] && echo "LEASE ip=$ip dns=$dns"\nexit 0\n', { mode: 0o755 });
  const lease = await until('a lease across hosts', async () => {
    const out = (await sh(remoteNs, ['/bin/busybox', 'udhcpc', '-i', 'eth0', '-n', '-q', '-f', '-t', '3', '-T', '1', '-s', script], 20_000)).stdout;
    return /LEASE/.test(out) && out;
  });
  assert.match(lease, new RegExp(`LEASE ip=${ipOf(servers[remote]).replace(/\./g, '\\.')} dns=${dhcpIp.replace(/\./g, '\\.')}`));
  const other = servers[1 - remote];
  const otherPort = (await neutron('GET', `/ports?device_id=${other.id}`)).body.ports[0];
  const otherName = otherPort.dns_name || `host-${ipOf(other).replace(/\./g, '-')}`;
  const answer = (await sh(remoteNs, ['/bin/busybox', 'nslookup', otherName, dhcpIp])).stdout;
  assert.match(answer, new RegExp(`Address:? *\\d*:? *${ipOf(other).replace(/\./g, '\\.')}`), `${otherName} resolves across hosts: ${answer}`);

  for (const id of ids) assert.equal((await p.api('DELETE', `/compute/v2.1/servers/${id}`)).status, 204);
  for (const id of ids) await p.waitGone(id);
  assert.equal((await neutron('DELETE', `/networks/${net.id}`)).status, 204);
  for (const ns of [nsA, layout.netns]) await until(`the network gone from ${ns}`, async () => (await driverLinks(ns)).length === 0);
  assert.ok(!existsSync(`/run/netns/${dhcpNamespace(net.id)}`), 'the DHCP namespace is gone');
  await until('host A\'s nft back to its skeleton', async () => (await ruleset(nsA)) === rulesA);
  await until('host B\'s nft back to its skeleton', async () => (await ruleset(layout.netns)) === rulesB);

  await stopB();
  const removed = await removeLocalHost({ name: nameB, stateDir: stateB, log });
  assert.ok(removed.some((r) => r.startsWith('namespace')), removed.join('; '));
  assert.ok(!existsSync(`/run/netns/${layout.netns}`), 'host B\'s namespace is gone');
  assert.ok(!existsSync(stateB), 'host B\'s state dir is gone');
  const linksA = (JSON.parse(await shOk(nsA, ['ip', '-j', 'link', 'show'])) as Array<{ ifname: string }>).map((l) => l.ifname);
  assert.ok(!linksA.includes(layout.peerLink), 'the underlay veth is gone');
  assert.deepEqual(await removeLocalHost({ name: nameB, stateDir: stateB, log }), [], 'a second remove finds nothing');
  const serverNsLeft = () => ids.map(serverNamespace).filter((ns) => existsSync(`/run/netns/${ns}`));
  // a port converged between its server's deletion and its own does not make the namespace again
  await until('the servers\' namespaces gone', async () => serverNsLeft().length === 0, 10_000).catch(() => undefined);
  assert.deepEqual(serverNsLeft(), [], 'the servers\' namespaces are gone');
});
