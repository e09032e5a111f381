// IPv6 through a router: a network with a SLAAC subnet, one with a
// DHCPv6-stateful subnet and one with a DHCPv6-stateless subnet, all on a
// router whose radvd advertises them. A server on the SLAAC network makes its
// address from the router's RA; one on the stateful network sees the managed
// flag and gets its fixed IP from the network's dnsmasq by DHCPv6 (dhclient
// -6); one on the stateless network makes its address from the RA and gets
// its name server by an information request; each pings its gateway through
// port security. A converge that changes nothing leaves radvd alone, a
// changed subnet restarts it, and the router's delete stops it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { env, hostLeftovers, networkPlane, pingSoon, portSpec, randomMac, rule, sgSpec, sh, shOk, skipUnlessRoot, sleep } from './network-lib.ts';
import { dhcpIfName, routerNamespace, serverNamespace, type NetworkSpec, type RouterSpec, type SubnetSpec } from '../../src/network/protocol.ts';
import { radvdPid } from '../../src/agent/drivers/network/radvd.ts';
import { eui64, formatIp, parseCidr } from '../../src/network/ipnet.ts';

const skip = skipUnlessRoot || (['radvd', 'rdisc6', 'dhclient'].some((b) => !['/usr/sbin', '/usr/bin', '/sbin', '/bin'].some((d) => existsSync(join(d, b))))
  ? 'needs radvd, ndisc6 and isc-dhcp-client (bin/test installs them)' : false);

function v6Network(subnet: SubnetSpec, dhcp: NetworkSpec['dhcp'] = null): NetworkSpec {
  return {
    project_id: 'p1', name: subnet.name, admin_state_up: true, segmentation: { type: 'vxlan', vni: 1000 + Math.floor(Math.random() * 100000), physical_network: null },
    mtu: 1450, subnets: [subnet], vxlan_peers: [], dhcp, deleted: false,
  };
}

function v6Subnet(id: string, cidr: string, mode: SubnetSpec['ipv6_ra_mode']): SubnetSpec {
  return {
    id, name: id, cidr, ip_version: 6, gateway_ip: cidr.replace('::/64', '::1'), enable_dhcp: true, dns_nameservers: [], host_routes: [], allocation_pools: [],
    ipv6_ra_mode: mode, ipv6_address_mode: mode,
  };
}

/** The global (and link-local) IPv6 addresses of a device that finished DAD. */
async function v6Addresses(ns: string, dev: string): Promise<string[]> {
  const out = JSON.parse(await shOk(ns, ['ip', '-6', '-j', 'addr', 'show', 'dev', dev])) as Array<{ addr_info: Array<{ local: string; prefixlen: number; tentative?: boolean }> }>;
  return (out[0]?.addr_info ?? []).filter((a) => !a.tentative).map((a) => `${a.local}/${a.prefixlen}`);
}

/** Polls (a bounded number of times) until `pred` holds for the device's addresses; returns the last ones seen. */
async function addressesOnceThere(ns: string, dev: string, pred: (a: string[]) => boolean, tries = 40): Promise<string[]> {
  let got: string[] = [];
  for (let i = 0; i < tries; i++) {
    got = await v6Addresses(ns, dev);
    if (pred(got)) break;
    await sleep(250);
  }
  return got;
}

test('IPv6: SLAAC by the router\'s RA, DHCPv6-stateful by dnsmasq, ping6 to the gateways, radvd converged and stopped', { skip, timeout: 240_000 }, async (t) => {
  const e = env();
  const tmp = mkdtempSync(join(tmpdir(), `${e.prefix}-v6-`));
  const dhclientPid = join(tmp, 'dhclient6.pid'), informPid = join(tmp, 'dhclient6-inform.pid');
  t.after(async () => {
    for (const f of [dhclientPid, informPid]) {
      const pid = Number((await fsp.readFile(f, 'utf8').catch(() => '')).trim());
      const cmdline = pid > 0 ? await fsp.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '') : '';
      if (cmdline.includes(tmp)) process.kill(pid, 'SIGKILL');
    }
  });
  t.after(() => e.cleanup());
  t.after(() => fsp.rm(tmp, { recursive: true, force: true }));
  const h = await e.host('h1');
  const radvdRoot = join(e.stateDirs[0]!, 'network', 'radvd');

  const netA = randomUUID(), netB = randomUUID();
  const subA = v6Subnet('sub-a', '2001:db8:a::/64', 'slaac');
  const subB = v6Subnet('sub-b', '2001:db8:b::/64', 'dhcpv6-stateful');
  const a = await e.server(), b = await e.server();
  const pA = randomUUID(), pB = randomUUID();
  const macA = randomMac(), macB = randomMac();
  const slaacA = formatIp(6, eui64(parseCidr('2001:db8:a::/64')!, macA));
  const fixedB = '2001:db8:b::10';
  const specA = v6Network(subA);
  const specB = v6Network(subB, {
    port_id: randomUUID(), mac_address: randomMac(), fixed_ips: [{ subnet_id: 'sub-b', ip_address: '2001:db8:b::2' }],
    hosts: [{ port_id: pB, mac_address: macB, ip_address: fixedB, subnet_id: 'sub-b', hostname: 'server-b' }], dns_domain: 'openstacklocal.', lease_seconds: 600,
  });
  // DHCPv6-stateless: addresses by SLAAC, options (DNS: the DHCP port's address) by DHCPv6
  const netC = randomUUID();
  const subC = v6Subnet('sub-c', '2001:db8:c::/64', 'dhcpv6-stateless');
  const c = await e.server();
  const pC = randomUUID();
  const macC = randomMac(), dhcpMacC = randomMac();
  const slaacC = formatIp(6, eui64(parseCidr('2001:db8:c::/64')!, macC));
  const dhcpC = formatIp(6, eui64(parseCidr('2001:db8:c::/64')!, dhcpMacC));
  const specC = v6Network(subC, {
    port_id: randomUUID(), mac_address: dhcpMacC, fixed_ips: [{ subnet_id: 'sub-c', ip_address: dhcpC }],
    hosts: [{ port_id: pC, mac_address: macC, ip_address: slaacC, subnet_id: 'sub-c', hostname: 'server-c' }], dns_domain: 'openstacklocal.', lease_seconds: 600,
  });
  await h.converge('network', netA, specA);
  await h.converge('network', netB, specB);
  await h.converge('network', netC, specC);

  // egress open (so the ping goes out; its answer comes back by state), nothing in
  const sg = randomUUID();
  await h.converge('security_group', sg, sgSpec([rule('egress', { ethertype: 'IPv6' })]));
  // the servers' ends carry no address of ours: what they get comes from the RA and DHCPv6
  await h.converge('port', pA, portSpec(netA, a.id, null, { mac_address: macA, fixed_ips: [{ subnet_id: 'sub-a', ip_address: slaacA }], security_group_ids: [sg] }));
  await h.converge('port', pB, portSpec(netB, b.id, null, { mac_address: macB, fixed_ips: [{ subnet_id: 'sub-b', ip_address: fixedB }], security_group_ids: [sg] }));
  await h.converge('port', pC, portSpec(netC, c.id, null, { mac_address: macC, fixed_ips: [{ subnet_id: 'sub-c', ip_address: slaacC }], security_group_ids: [sg] }));

  const router = randomUUID();
  const rA = randomUUID(), rB = randomUUID();
  const rspec: RouterSpec = {
    project_id: 'p1', name: 'r6', admin_state_up: true,
    interfaces: [
      { port_id: rA, network_id: netA, subnet_id: 'sub-a', mac_address: randomMac(), ip_address: '2001:db8:a::1', prefixlen: 64, cidr: '2001:db8:a::/64', ipv6_ra_mode: 'slaac', dns_nameservers: [] },
      { port_id: rB, network_id: netB, subnet_id: 'sub-b', mac_address: randomMac(), ip_address: '2001:db8:b::1', prefixlen: 64, cidr: '2001:db8:b::/64', ipv6_ra_mode: 'dhcpv6-stateful', dns_nameservers: [] },
      { port_id: randomUUID(), network_id: netC, subnet_id: 'sub-c', mac_address: randomMac(), ip_address: '2001:db8:c::1', prefixlen: 64, cidr: '2001:db8:c::/64', ipv6_ra_mode: 'dhcpv6-stateless', dns_nameservers: [] },
    ],
    external_gateway: null, routes: [], floating_ips: [], port_forwardings: [], deleted: false,
  };
  const first = await h.converge('router', router, rspec);
  assert.ok(first.changes.some((c) => c.endsWith('radvd started')), first.changes.join('\n'));
  const radvdDir = join(radvdRoot, router);
  const pid = await radvdPid(radvdDir);
  assert.ok(pid, 'radvd runs');
  // in the router's namespace
  assert.equal(await fsp.readlink(`/proc/${pid}/ns/net`), `net:[${statSync(`/run/netns/${routerNamespace(router)}`).ino}]`);

  await t.test('the SLAAC server sees the RA (autonomous prefix) and makes its EUI-64 address from it', async () => {
    // a solicitation goes out from the link-local address, once it passed DAD
    await addressesOnceThere(a.ns, 'eth0', (x) => x.some((y) => y.startsWith('fe80:')));
    const ra = await sh(a.ns, ['rdisc6', '-1', '-n', '-r', '5', '-w', '2000', 'eth0'], 20_000);
    assert.equal(ra.code, 0, ra.stderr);
    assert.match(ra.stdout, /Stateful address conf\.\s*:\s*No/);
    assert.match(ra.stdout, /Prefix\s*:\s*2001:db8:a::\/64/);
    assert.match(ra.stdout, /Autonomous address conf\.\s*:\s*Yes/);
    const got = await addressesOnceThere(a.ns, 'eth0', (x) => x.includes(`${slaacA}/64`));
    assert.ok(got.includes(`${slaacA}/64`), `SLAAC address ${slaacA} on eth0: ${got.join(' ')}`);
    assert.ok(await pingSoon(a.ns, '2001:db8:a::1', 5), 'ping6 to the gateway');
  });

  await t.test('the DHCPv6-stateful server sees the managed flag and gets its fixed IP from dnsmasq', async () => {
    // a solicitation goes out from the link-local address, once it passed DAD
    await addressesOnceThere(b.ns, 'eth0', (x) => x.some((y) => y.startsWith('fe80:')));
    const ra = await sh(b.ns, ['rdisc6', '-1', '-n', '-r', '5', '-w', '2000', 'eth0'], 20_000);
    assert.equal(ra.code, 0, ra.stderr);
    assert.match(ra.stdout, /Stateful address conf\.\s*:\s*Yes/);
    assert.match(ra.stdout, /Autonomous address conf\.\s*:\s*No/);
    // no address made from the prefix
    assert.ok(!(await v6Addresses(b.ns, 'eth0')).some((x) => x.startsWith('2001:db8:b:')));
    // dhclient with a script of our own that only sets the address (Debian's also rewrites the machine's resolv.conf)
    const script = join(tmp, 'dhclient-script');
    writeFileSync(script, '#!/bin/sh\ncase "$reason" in BOUND6|RENEW6|REBIND6|REBOOT6) ip -6 addr replace "$new_ip6_address/$new_ip6_prefixlen" dev "$interface" nodad ;; esac\nexit 0\n', { mode: 0o755 });
    const r = await sh(b.ns, ['dhclient', '-6', '-1', '-v', '-cf', '/dev/null', '-lf', join(tmp, 'dhclient6.leases'), '-pf', dhclientPid, '-sf', script, '--dad-wait-time', '5', 'eth0'], 90_000);
    assert.equal(r.code, 0, `dhclient -6: ${r.stderr}`);
    const got = await addressesOnceThere(b.ns, 'eth0', (x) => x.some((y) => y.startsWith(`${fixedB}/`)));
    assert.ok(got.some((y) => y.startsWith(`${fixedB}/`)), `the fixed IP ${fixedB} by DHCPv6: ${got.join(' ')}`);
    assert.ok(await pingSoon(b.ns, '2001:db8:b::1', 5), 'ping6 to the gateway');
  });

  await t.test('the DHCPv6-stateless server makes its address from the RA and asks dnsmasq for options only', async () => {
    await addressesOnceThere(c.ns, 'eth0', (x) => x.some((y) => y.startsWith('fe80:')));
    const ra = await sh(c.ns, ['rdisc6', '-1', '-n', '-r', '5', '-w', '2000', 'eth0'], 20_000);
    assert.equal(ra.code, 0, ra.stderr);
    assert.match(ra.stdout, /Stateful address conf\.\s*:\s*No/);
    assert.match(ra.stdout, /Stateful other conf\.\s*:\s*Yes/);
    assert.match(ra.stdout, /Autonomous address conf\.\s*:\s*Yes/);
    const got = await addressesOnceThere(c.ns, 'eth0', (x) => x.includes(`${slaacC}/64`));
    assert.ok(got.includes(`${slaacC}/64`), `SLAAC address ${slaacC} on eth0: ${got.join(' ')}`);
    // an information request (dhclient -S; its script runs with reason RENEW6): the name server is the DHCP port
    const out = join(tmp, 'inform6');
    const script = join(tmp, 'inform-script');
    writeFileSync(script, `#!/bin/sh\necho "$reason $new_dhcp6_name_servers" >> ${out}.log\n[ -n "$new_dhcp6_name_servers" ] && echo "$new_dhcp6_name_servers" > ${out}\nexit 0\n`, { mode: 0o755 });
    const r = await sh(c.ns, ['dhclient', '-6', '-S', '-1', '-v', '-cf', '/dev/null', '-lf', join(tmp, 'inform6.leases'), '-pf', informPid, '-sf', script, 'eth0'], 90_000);
    assert.equal(r.code, 0, `dhclient -6 -S: ${r.stderr}`);
    for (let i = 0; i < 40 && !existsSync(out); i++) await sleep(250);
    assert.ok(existsSync(out), `no name servers: ${r.stderr}\n${readFileSync(`${out}.log`, { encoding: 'utf8', flag: 'a+' })}`);
    // (dhclient writes the address uncompressed)
    assert.deepEqual(readFileSync(out, 'utf8').trim().split(/\s+/).map((a) => formatIp(6, parseCidr(`${a}/128`)!.network)), [dhcpC]);
    assert.ok(await pingSoon(c.ns, '2001:db8:c::1', 5), 'ping6 to the gateway');
    // the DHCP port takes no RA: its namespace holds its own address only, and a converge changes nothing
    const dhcpNs = `qdhcp-${netC}`;
    const dev = JSON.parse(await shOk(dhcpNs, ['ip', '-6', '-j', 'addr', 'show'])) as Array<{ addr_info: Array<{ local?: string; scope?: string }> }>;
    assert.deepEqual(dev.flatMap((d) => d.addr_info.filter((a) => a.local && a.scope === 'global').map((a) => a.local)), [dhcpC]);
    assert.equal((await shOk(dhcpNs, ['sysctl', '-n', `net.ipv6.conf.${dhcpIfName(specC.dhcp!.port_id)}.accept_ra`])).trim(), '0');
    assert.deepEqual((await h.converge('network', netC, specC)).changes, []);
  });

  await t.test('a converge that changes nothing leaves radvd alone; a changed mode restarts it with the new config', async () => {
    const again = await h.converge('router', router, rspec);
    assert.deepEqual(again.changes, []);
    assert.equal(await radvdPid(radvdDir), pid);
    const changed = { ...rspec, interfaces: rspec.interfaces.map((i) => (i.port_id === rA ? { ...i, ipv6_ra_mode: 'dhcpv6-stateless' as const } : i)) };
    const r = await h.converge('router', router, changed);
    assert.ok(r.changes.some((c) => c.endsWith('radvd stopped')) && r.changes.some((c) => c.endsWith('radvd started')), r.changes.join('\n'));
    const pid2 = await radvdPid(radvdDir);
    assert.ok(pid2 && pid2 !== pid);
    assert.match(readFileSync(join(radvdDir, 'radvd.conf'), 'utf8'), /AdvOtherConfigFlag on;/);
    // a dead radvd is started again
    process.kill(pid2!, 'SIGKILL');
    for (let i = 0; i < 50 && (await radvdPid(radvdDir)); i++) await sleep(20);
    const r2 = await h.converge('router', router, changed);
    assert.ok(r2.changes.some((c) => c.endsWith('radvd started')), r2.changes.join('\n'));
    // no IPv6 subnet with an RA mode left: radvd goes
    const none = { ...changed, interfaces: changed.interfaces.map((i) => ({ ...i, ipv6_ra_mode: null })) };
    const r3 = await h.converge('router', router, none);
    assert.ok(r3.changes.some((c) => c.endsWith('radvd removed')), r3.changes.join('\n'));
    assert.equal(await radvdPid(radvdDir), null);
    assert.ok(!existsSync(radvdDir));
    await h.converge('router', router, rspec);
    assert.ok(await radvdPid(radvdDir));
  });

  await t.test('deleting the router stops radvd and removes its files and namespace', async () => {
    const last = await radvdPid(radvdDir);
    assert.ok(last);
    await h.converge('router', router, { ...rspec, deleted: true });
    assert.equal(await radvdPid(radvdDir), null);
    assert.ok(!existsSync(`/proc/${last}/cmdline`) || !readFileSync(`/proc/${last}/cmdline`, 'utf8').includes(radvdDir));
    assert.ok(!existsSync(radvdDir));
    assert.deepEqual((await hostLeftovers(h.ns, [], [router])).filter((x) => x.startsWith('netns')), []);
  });
});

test('IPv6 through the API: a container server on a DHCPv6-stateful subnet behind a router sees its RA, gets its fixed IP by DHCPv6, pings the gateway; a SLAAC subnet joins later; the router\'s delete stops radvd', { skip, timeout: 300_000 }, async (t) => {
  const { plane: p } = await networkPlane(t, 'v6');
  const tmp = mkdtempSync(join(tmpdir(), 'stratus-v6-plane-'));
  const pidFile = join(tmp, 'dhclient6.pid');
  t.after(async () => {
    const pid = Number((await fsp.readFile(pidFile, 'utf8').catch(() => '')).trim());
    const cmdline = pid > 0 ? await fsp.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '') : '';
    if (cmdline.includes(tmp)) process.kill(pid, 'SIGKILL');
    await fsp.rm(tmp, { recursive: true, force: true });
  });
  const neutron = async (method: string, path: string, body?: unknown, status?: number) => {
    const r = await p.api(method, `/network/v2.0${path}`, body);
    if (status) assert.equal(r.status, status, JSON.stringify(r.body));
    return r.body;
  };
  const until = async <T>(what: string, fn: () => Promise<T | null | undefined | false>, tries = 300): Promise<T> => {
    for (let i = 0; i < tries; i++) {
      const v = await fn();
      if (v) return v;
      await sleep(200);
    }
    throw new Error(`never: ${what}`);
  };

  const net = (await neutron('POST', '/networks', { network: { name: 'v6net' } }, 201)).network;
  await neutron('POST', '/subnets', { subnet: { network_id: net.id, cidr: '10.97.0.0/24', ip_version: 4 } }, 201);
  const v6 = (await neutron('POST', '/subnets', { subnet: { network_id: net.id, cidr: 'fd97:1::/64', ip_version: 6, ipv6_ra_mode: 'dhcpv6-stateful', ipv6_address_mode: 'dhcpv6-stateful' } }, 201)).subnet;
  const router = (await neutron('POST', '/routers', { router: { name: 'v6r' } }, 201)).router;
  await neutron('PUT', `/routers/${router.id}/add_router_interface`, { subnet_id: v6.id }, 200);

  const id = await p.createServer({ name: 'v6', networks: [{ uuid: net.id }] });
  await p.waitStatus(id, ['ACTIVE']);
  const port = (await neutron('GET', `/ports?device_id=${id}`)).ports[0];
  const fixed6 = port.fixed_ips.find((f: { subnet_id: string }) => f.subnet_id === v6.id).ip_address as string;
  const dhcp = (await neutron('GET', `/ports?network_id=${net.id}&device_owner=network:dhcp`)).ports[0];
  assert.ok(dhcp.fixed_ips.some((f: { subnet_id: string }) => f.subnet_id === v6.id), 'the DHCP port has an address on the DHCPv6 subnet');
  await until('the router ACTIVE', async () => (await neutron('GET', `/routers/${router.id}`)).router.status === 'ACTIVE');
  const radvdDir = join(p.stateDir, 'network', 'radvd', router.id);
  await until('radvd', () => radvdPid(radvdDir));

  const ns = serverNamespace(id);
  await until('eth0\'s link-local address', async () => (await v6Addresses(ns, 'eth0')).some((a) => a.startsWith('fe80:')));
  const ra = await sh(ns, ['rdisc6', '-1', '-n', '-r', '5', '-w', '2000', 'eth0'], 20_000);
  assert.equal(ra.code, 0, ra.stderr);
  assert.match(ra.stdout, /Stateful address conf\.\s*:\s*Yes/);
  assert.match(ra.stdout, /Prefix\s*:\s*fd97:1::\/64/);
  assert.match(ra.stdout, /Autonomous address conf\.\s*:\s*No/);
  assert.ok(await pingSoon(ns, v6.gateway_ip, 5), 'ping6 to the router');

  // DHCPv6 hands out the port's fixed IP (the script only records it: the container has it already)
  const out = join(tmp, 'lease');
  const script = join(tmp, 'script');
  writeFileSync(script, `#!/bin/sh\n[ -n "$new_ip6_address" ] && echo "$new_ip6_address" > ${out}\nexit 0\n`, { mode: 0o755 });
  const r = await sh(ns, ['dhclient', '-6', '-1', '-v', '-cf', '/dev/null', '-lf', join(tmp, 'leases'), '-pf', pidFile, '-sf', script, 'eth0'], 90_000);
  assert.equal(r.code, 0, `dhclient -6: ${r.stderr}`);
  const got = await until('the lease', async () => existsSync(out) && readFileSync(out, 'utf8').trim());
  assert.equal(formatIp(6, parseCidr(`${got}/128`)!.network), fixed6);

  // a SLAAC subnet added later: the server's port gets its EUI-64 address, the subnet joins the router's IPv6
  // port on the network, radvd advertises both prefixes, the server reaches the new gateway
  const slaac = (await neutron('POST', '/subnets', { subnet: { network_id: net.id, cidr: 'fd97:2::/64', ip_version: 6, ipv6_ra_mode: 'slaac', ipv6_address_mode: 'slaac' } }, 201)).subnet;
  const itf2 = await neutron('PUT', `/routers/${router.id}/add_router_interface`, { subnet_id: slaac.id }, 200);
  const slaacIp = formatIp(6, eui64(parseCidr('fd97:2::/64')!, port.mac_address));
  assert.ok((await neutron('GET', `/ports/${port.id}`)).port.fixed_ips.some((f: { ip_address: string }) => f.ip_address === slaacIp));
  await until('radvd advertising both prefixes', async () => /prefix fd97:2::\/64/.test(await fsp.readFile(join(radvdDir, 'radvd.conf'), 'utf8').catch(() => '')));
  assert.match(readFileSync(join(radvdDir, 'radvd.conf'), 'utf8'), /prefix fd97:1::\/64/);
  assert.equal((readFileSync(join(radvdDir, 'radvd.conf'), 'utf8').match(/^interface /gm) ?? []).length, 1, 'one router port for both');
  await until('the SLAAC address on eth0', async () => (await v6Addresses(ns, 'eth0')).includes(`${slaacIp}/64`));
  assert.ok(await pingSoon(ns, slaac.gateway_ip, 5), 'ping6 to the second gateway');
  assert.equal(itf2.port_id, (await neutron('GET', `/ports?device_id=${router.id}&device_owner=network:router_interface`)).ports[0].id);
  await neutron('PUT', `/routers/${router.id}/remove_router_interface`, { subnet_id: slaac.id }, 200);
  await until('radvd without the SLAAC prefix', async () => !/fd97:2::/.test(await fsp.readFile(join(radvdDir, 'radvd.conf'), 'utf8').catch(() => '')));

  // the router goes: radvd with it
  await neutron('PUT', `/routers/${router.id}/remove_router_interface`, { subnet_id: v6.id }, 200);
  await until('radvd stopped once nothing is advertised', async () => !(await radvdPid(radvdDir)));
  assert.equal((await p.api('DELETE', `/network/v2.0/routers/${router.id}`)).status, 204);
  await until('the router namespace gone', async () => !existsSync(`/run/netns/${routerNamespace(router.id)}`));
  assert.ok(!existsSync(radvdDir));
});
