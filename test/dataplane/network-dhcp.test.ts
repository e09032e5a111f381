// DHCP and DNS of a network: dnsmasq in its own namespace hands a port its
// fixed IP (static entries only), answers the network's hostnames, reloads
// on a host change, is restarted when dead, and is gone after destroy. A VM
// port is a tap on the bridge.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dnsmasqPid, env, hostLeftovers, networkSpec, portSpec, randomMac, rule, sgSpec, sh, shOk, skipUnlessRoot } from './network-lib.ts';
import { bridgeName, tapName } from '../../src/network/protocol.ts';
import { run } from '../../src/agent/exec.ts';
import { VM_USER } from '../../src/agent/drivers/qemu-user.ts';

test('DHCP: static leases from dnsmasq, hostnames in DNS, reload, restart, destroy; a VM tap', { skip: skipUnlessRoot, timeout: 180_000 }, async (t) => {
  const e = env();
  const scratch = mkdtempSync(join(tmpdir(), `${e.prefix}-dhcp-`));
  t.after(async () => {
    await e.cleanup();
    rmSync(scratch, { recursive: true, force: true });
  });
  // udhcpc's script: print what the lease says
  const script = join(scratch, 'lease.sh');
  writeFileSync(script, '#!/bin/sh\n[ "$1" = bound ] && echo "LEASE ip=$ip mask=$mask router=$router dns=$dns domain=$domain mtu=$mtu"\nexit 0\n', { mode: 0o755 });
  const lease = async (ns: string) => (await sh(ns, ['/bin/busybox', 'udhcpc', '-i', 'eth0', '-n', '-q', '-f', '-t', '4', '-T', '1', '-O', 'mtu', '-s', script], 20_000)).stdout;

  const h = await e.host('h1');
  const net = randomUUID();
  const c1 = await e.server(), c2 = await e.server();
  const p1 = randomUUID(), p2 = randomUUID();
  const mac1 = randomMac(), mac2 = randomMac();
  const hosts = [{ port_id: p1, mac: mac1, ip: '10.60.0.21', hostname: 'alpha' }];
  const first = networkSpec({ cidr: '10.60.0.0/24', gateway: '10.60.0.1', dhcp: { ip: '10.60.0.2', hosts } });
  /** The network's spec with these DHCP host entries (same VNI and DHCP port). */
  const withHosts = (hs: typeof hosts) => ({ ...first, dhcp: { ...first.dhcp!, hosts: hs.map((x) => ({ port_id: x.port_id, mac_address: x.mac, ip_address: x.ip, subnet_id: 'sub-1', hostname: x.hostname })) } });
  let spec = first;
  await h.converge('network', net, spec);
  assert.deepEqual((await h.converge('network', net, spec)).changes, [], 'a second converge changes nothing');
  const sg = randomUUID();
  await h.converge('security_group', sg, sgSpec([rule('egress')]));
  // the ports' addresses come from DHCP, not from the driver
  const spec1 = portSpec(net, c1.id, '10.60.0.21', { mac_address: mac1, configure: false, security_group_ids: [sg] });
  await h.converge('port', p1, spec1);

  const dir = join(e.stateDirs[0]!, 'network', 'dhcp', net);
  const pid = await dnsmasqPid(dir);
  assert.ok(pid, 'dnsmasq runs');

  await t.test('a port gets its fixed IP, the gateway and the MTU (DHCP passes its security group)', async () => {
    const out = await lease(c1.ns);
    assert.match(out, /LEASE ip=10\.60\.0\.21 mask=24 router=10\.60\.0\.1 dns=10\.60\.0\.2 domain=openstacklocal mtu=1450/);
  });

  await t.test('a MAC without a host entry gets nothing; after the entry is added (dnsmasq restarted) it does', async () => {
    const spec2 = portSpec(net, c2.id, '10.60.0.22', { mac_address: mac2, configure: false, security_group_ids: [sg] });
    await h.converge('port', p2, spec2);
    assert.doesNotMatch(await lease(c2.ns), /LEASE/);
    spec = withHosts([...hosts, { port_id: p2, mac: mac2, ip: '10.60.0.22', hostname: 'beta' }]);
    const r = await h.converge('network', net, spec);
    assert.ok(r.changes.includes('dnsmasq started'), r.changes.join('; '));
    assert.ok(await dnsmasqPid(dir));
    assert.match(await lease(c2.ns), /LEASE ip=10\.60\.0\.22 /);
  });

  await t.test('hostnames resolve within the network', async () => {
    await shOk(c2.ns, ['ip', 'addr', 'add', '10.60.0.22/24', 'dev', 'eth0']);
    const out = (await sh(c2.ns, ['/bin/busybox', 'nslookup', 'alpha.openstacklocal', '10.60.0.2'])).stdout;
    assert.match(out, /10\.60\.0\.21/);
    const short = (await sh(c2.ns, ['/bin/busybox', 'nslookup', 'beta', '10.60.0.2'])).stdout;
    assert.match(short, /10\.60\.0\.22/);
  });

  await t.test('a dead dnsmasq is restarted', async () => {
    const before = (await dnsmasqPid(dir))!;
    process.kill(before, 'SIGKILL');
    for (let i = 0; i < 50 && (await dnsmasqPid(dir)); i++) await new Promise((r) => setTimeout(r, 20));
    const r = await h.converge('network', net, spec);
    assert.ok(r.changes.includes('dnsmasq started'), r.changes.join('; '));
    const after = await dnsmasqPid(dir);
    assert.ok(after && after !== before);
    assert.match(await lease(c1.ns), /LEASE ip=10\.60\.0\.21 /);
  });

  await t.test('a VM port is a tap on the bridge', async () => {
    const vm = randomUUID();
    await h.converge('port', vm, portSpec(net, randomUUID(), '10.60.0.30', { vif: { type: 'tap', ifname: 'eth0' } }));
    const l = JSON.parse(await shOk(h.ns, ['ip', '-j', '-d', 'link', 'show', 'dev', tapName(vm)]))[0];
    assert.equal(l.linkinfo.info_kind, 'tun');
    assert.equal(l.master, bridgeName(net));
    // a running qemu (no longer root) can open it when its NIC is hot-plugged
    if ((await run('id', ['-u', VM_USER])).code === 0) assert.equal(l.linkinfo.info_data.user, VM_USER);
    await h.destroy('port', vm);
  });

  await t.test('destroy removes dnsmasq and its namespace', async () => {
    const last = (await dnsmasqPid(dir))!;
    for (const p of [p1, p2]) await h.destroy('port', p);
    await h.destroy('security_group', sg);
    await h.destroy('network', net);
    assert.equal(await dnsmasqPid(dir), null);
    const stat = await import('node:fs/promises').then((f) => f.readFile(`/proc/${last}/stat`, 'utf8')).catch(() => '');
    assert.ok(!stat || / [ZX] /.test(stat.slice(stat.lastIndexOf(')'))), `dnsmasq ${last} still runs`);
    await h.removeTables();
    assert.deepEqual(await hostLeftovers(h.ns, [net]), []);
  });

});
