// A router on one host: two tenant networks joined through the router, a
// gateway on an external network whose physical network is mapped to a host
// bridge (br-ex, inside the test's host namespace) with an "upstream"
// namespace on it; SNAT, floating IPs (in and out), a port forwarding, the
// servers' security groups after DNAT, SNAT off, idempotence, drift repair,
// and nothing left after delete (the mapped bridge stays: it is the host's).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { connect, env, hostLeftovers, networkSpec, ping, pingSoon, portSpec, randomMac, rule, sgSpec, sh, shOk, skipUnlessRoot } from './network-lib.ts';
import { routerGatewayName, routerInterfaceName, routerNamespace, tapName, type RouterSpec } from '../../src/network/protocol.ts';
import { ResourceFailure } from '../../src/agent/errors.ts';
import { run } from '../../src/agent/exec.ts';

test('a router: east-west, SNAT, floating IPs, port forwarding, security groups after DNAT, idempotence, drift, delete', { skip: skipUnlessRoot, timeout: 240_000 }, async (t) => {
  const e = env();
  t.after(() => e.cleanup());
  const h = await e.host('h1', '192.0.2.1', { bridgeMappings: { public: 'br-ex' } });

  // the host's external bridge and, on it, the upstream world (172.24.4.1, no route to the tenant networks)
  const up = `${e.prefix}-up`;
  await shOk(h.ns, ['ip', 'link', 'add', 'br-ex', 'type', 'bridge']);
  await shOk(h.ns, ['ip', 'link', 'set', 'br-ex', 'up']);
  // the host's own address on it, as `stratus up` makes it
  await shOk(h.ns, ['ip', 'addr', 'add', '172.24.4.2/24', 'dev', 'br-ex']);
  await shOk(h.ns, ['ip', 'netns', 'add', up]);
  e.namespaces.push(up);
  await shOk(h.ns, ['ip', 'link', 'add', 'upx', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', up]);
  await shOk(h.ns, ['ip', 'link', 'set', 'upx', 'master', 'br-ex', 'up']);
  await shOk(up, ['ip', 'addr', 'add', '172.24.4.1/24', 'dev', 'eth0']);
  await shOk(up, ['ip', 'link', 'set', 'eth0', 'up']);
  await shOk(up, ['ip', 'link', 'set', 'lo', 'up']);

  const netExt = randomUUID(), netA = randomUUID(), netB = randomUUID();
  const specExt = networkSpec({ cidr: '172.24.4.0/24', physical: 'public', gateway: '172.24.4.1' });
  const specA = networkSpec({ cidr: '10.1.0.0/24', gateway: '10.1.0.1' });
  const specB = networkSpec({ cidr: '10.2.0.0/24', gateway: '10.2.0.1' });

  const router = randomUUID();
  const rA = randomUUID(), rB = randomUUID(), rGw = randomUUID();
  const rspec: RouterSpec = {
    project_id: 'p1', name: 'r1', admin_state_up: true,
    interfaces: [
      { port_id: rA, network_id: netA, subnet_id: 'sub-1', mac_address: randomMac(), ip_address: '10.1.0.1', prefixlen: 24 },
      { port_id: rB, network_id: netB, subnet_id: 'sub-1', mac_address: randomMac(), ip_address: '10.2.0.1', prefixlen: 24 },
    ],
    external_gateway: { network_id: netExt, port_id: rGw, mac_address: randomMac(), ip_addresses: [{ ip_address: '172.24.4.10', prefixlen: 24 }], gateway_ip: '172.24.4.1', enable_snat: true },
    routes: [],
    floating_ips: [{ floating_ip: '172.24.4.20', fixed_ip: '10.1.0.11', port_id: 'pa' }],
    port_forwardings: [{ floating_ip: '172.24.4.21', protocol: 'tcp', external_port: 2222, internal_ip: '10.2.0.11', internal_port: 8080 }],
    deleted: false,
  };

  await t.test('a router before its networks are here: a transient network_missing', async () => {
    await h.converge('network', netA, specA);
    await h.converge('network', netB, specB);
    await assert.rejects(h.converge('router', router, rspec), (err: unknown) => err instanceof ResourceFailure && err.class === 'transient' && err.code === 'network_missing');
    // a spec the host cannot make is the user's error, not a retry
    const bad = { ...rspec, interfaces: [{ ...rspec.interfaces[0]!, mac_address: 'fa:16:3e:00:00:01 mtu 1' }] };
    await assert.rejects(h.converge('router', router, bad), (err: unknown) => err instanceof ResourceFailure && err.class === 'user' && err.code === 'spec_invalid');
  });

  // the external network plugs into the mapped bridge: no brq of its own
  await h.converge('network', netExt, specExt);
  const links = JSON.parse(await shOk(h.ns, ['ip', '-j', 'link', 'show'])) as Array<{ ifname: string }>;
  assert.ok(!links.some((l) => l.ifname.startsWith('brq') && netExt.startsWith(l.ifname.slice(3))), 'no brq for a mapped flat network');

  // server a (netA, floating IP): in icmp + tcp/80 only; server b (netB, port forwarding target): open
  const sgA = randomUUID(), sgOpen = randomUUID();
  await h.converge('security_group', sgA, sgSpec([rule('ingress', { protocol: 'icmp' }), rule('ingress', { protocol: 'tcp', port_range_min: 80, port_range_max: 80 }), rule('egress')]));
  await h.converge('security_group', sgOpen, sgSpec([rule('ingress'), rule('egress')]));
  const a = await e.server(), b = await e.server(), a2 = await e.server();
  const pA = randomUUID(), pB = randomUUID(), pA2 = randomUUID();
  const gw = (g: string) => ({ addresses: [], gateway4: g, gateway6: null, routes: [], dns_nameservers: [], dns_search: [] });
  const specPA = portSpec(netA, a.id, '10.1.0.11', { security_group_ids: [sgA] });
  specPA.ip_config = { ...gw('10.1.0.1'), addresses: specPA.ip_config.addresses };
  const specPB = portSpec(netB, b.id, '10.2.0.11', { security_group_ids: [sgOpen] });
  specPB.ip_config = { ...gw('10.2.0.1'), addresses: specPB.ip_config.addresses };
  const specPA2 = portSpec(netA, a2.id, '10.1.0.12', { security_group_ids: [sgOpen] });
  specPA2.ip_config = { ...gw('10.1.0.1'), addresses: specPA2.ip_config.addresses };
  await h.converge('port', pA, specPA);
  await h.converge('port', pB, specPB);
  await h.converge('port', pA2, specPA2);

  const r = await h.converge('router', router, rspec);
  assert.equal(r.observed.state, 'active');
  const ns = routerNamespace(router);
  assert.ok(existsSync(`/run/netns/${ns}`));
  const qg = JSON.parse(await shOk(ns, ['ip', '-j', 'addr', 'show', 'dev', routerGatewayName(rGw)]))[0];
  assert.equal(qg.address, rspec.external_gateway!.mac_address);
  assert.deepEqual(qg.addr_info.filter((x: any) => x.family === 'inet').map((x: any) => `${x.local}/${x.prefixlen}`).sort(), ['172.24.4.10/24', '172.24.4.20/32', '172.24.4.21/32']);
  const qrA = JSON.parse(await shOk(ns, ['ip', '-j', 'addr', 'show', 'dev', routerInterfaceName(rA)]))[0];
  assert.equal(qrA.mtu, 1450, 'the network\'s MTU');
  assert.equal(qrA.address, rspec.interfaces[0]!.mac_address);
  assert.equal((await shOk(ns, ['sysctl', '-n', 'net.ipv4.ip_forward'])).trim(), '1');
  if (existsSync('/usr/bin/arping')) assert.ok(r.changes.some((c) => c.endsWith('arping 172.24.4.20')), 'a gratuitous ARP for the floating IP');

  await e.listen(a.ns, 80, 'hello-a');
  await e.listen(a.ns, 8080, 'secret-a');
  await e.listen(b.ns, 8080, 'hello-b');
  await e.listen(up, 9000, '@peer');

  await t.test('servers on the two networks reach each other through the router', async () => {
    assert.ok(await pingSoon(a.ns, '10.2.0.11'), 'a -> b');
    assert.ok(await pingSoon(b.ns, '10.1.0.11'), 'b -> a');
    assert.equal(await connect(a.ns, '10.2.0.11', 8080), 'hello-b');
  });

  await t.test('SNAT: a server without a floating IP reaches upstream as the gateway address', async () => {
    assert.ok(await pingSoon(b.ns, '172.24.4.1'));
    assert.equal(await connect(b.ns, '172.24.4.1', 9000), '172.24.4.10');
  });

  await t.test('a floating IP: reachable from upstream, and its server goes out from it', async () => {
    assert.equal(await connect(up, '172.24.4.20', 80), 'hello-a');
    assert.ok(await ping(up, '172.24.4.20'));
    assert.equal(await connect(a.ns, '172.24.4.1', 9000), '172.24.4.20');
  });

  await t.test('the host itself reaches a floating IP through its address on the mapped bridge, under a host firewall dropping invalid packets', async () => {
    // the replies must be tracked as what they are (no conntrack zone of the tenant kind on the host's own bridge)
    await shOk(h.ns, ['nft', 'add table inet hostfw; add chain inet hostfw input { type filter hook input priority 0; policy accept; ct state invalid drop; }']);
    try {
      assert.equal(await connect(h.ns, '172.24.4.20', 80), 'hello-a');
      assert.ok(await ping(h.ns, '172.24.4.20'));
    } finally {
      await shOk(h.ns, ['nft', 'delete', 'table', 'inet', 'hostfw']);
    }
  });

  await t.test('a floating IP from inside: another network, and its own subnet (hairpin)', async () => {
    assert.equal(await connect(b.ns, '172.24.4.20', 80), 'hello-a');
    assert.equal(await connect(a2.ns, '172.24.4.20', 80), 'hello-a');
  });

  await t.test('the server\'s security group still filters DNATed traffic', async () => {
    assert.equal(await connect(up, '172.24.4.20', 8080), null, 'tcp/8080 is not in a\'s group');
    assert.equal(await connect(a.ns, '127.0.0.1', 8080), 'secret-a', 'the listener is there');
  });

  await t.test('a port forwarding', async () => {
    assert.equal(await connect(up, '172.24.4.21', 2222), 'hello-b');
    assert.equal(await connect(up, '172.24.4.21', 8080), null, 'only the forwarded port');
  });

  await t.test('converging again changes nothing', async () => {
    for (const [kind, id, s] of [['network', netExt, specExt], ['network', netA, specA], ['network', netB, specB], ['port', pA, specPA], ['port', pB, specPB], ['router', router, rspec]] as const) {
      assert.deepEqual((await h.converge(kind as any, id, s as any)).changes, [], `${kind} ${id} changed on a second converge`);
    }
  });

  await t.test('drift is repaired: a deleted NAT rule, a deleted qr device', async () => {
    const listing = JSON.parse(await shOk(ns, ['nft', '-j', '-a', 'list', 'chain', 'ip', 'stratus', 'prerouting'])).nftables as any[];
    const fipRule = listing.find((o) => o.rule && JSON.stringify(o.rule.expr).includes('172.24.4.20'));
    await shOk(ns, ['nft', 'delete', 'rule', 'ip', 'stratus', 'prerouting', 'handle', String(fipRule.rule.handle)]);
    assert.equal(await connect(up, '172.24.4.20', 80), null, 'the drift is real');
    const r1 = await h.converge('router', router, rspec);
    assert.ok(r1.changes.some((c) => c.includes('prerouting')), r1.changes.join('; '));
    assert.equal(await connect(up, '172.24.4.20', 80), 'hello-a', 'repaired');

    await shOk(ns, ['ip', 'link', 'del', routerInterfaceName(rB)]);
    assert.equal(await ping(a.ns, '10.2.0.11'), false, 'b\'s network is cut off');
    const r2 = await h.converge('router', router, rspec);
    assert.ok(r2.changes.some((c) => c.includes(tapName(rB))), r2.changes.join('; '));
    assert.ok(await pingSoon(a.ns, '10.2.0.11'), 'repaired');
    assert.deepEqual((await h.converge('router', router, rspec)).changes, []);
  });

  await t.test('SNAT off: a server without a floating IP no longer gets out; the floating IP still does', async () => {
    const noSnat = { ...rspec, external_gateway: { ...rspec.external_gateway!, enable_snat: false } };
    await h.converge('router', router, noSnat);
    assert.equal(await connect(b.ns, '172.24.4.1', 9000), null);
    assert.equal(await connect(a.ns, '172.24.4.1', 9000), '172.24.4.20');
    await h.converge('router', router, rspec);
    assert.equal(await connect(b.ns, '172.24.4.1', 9000), '172.24.4.10', 'back on');
  });

  await t.test('a removed interface and floating IP go; static routes come and go', async () => {
    const tracked = async () => (await sh(ns, ['conntrack', '-L', '-d', '172.24.4.20'])).stdout.trim();
    const haveConntrack = (await sh(ns, ['conntrack', '--version'])).code === 0;
    assert.equal(await connect(up, '172.24.4.20', 80), 'hello-a');
    if (haveConntrack) assert.notEqual(await tracked(), '', 'the connection to the floating IP is tracked');
    const less: RouterSpec = { ...rspec, interfaces: [rspec.interfaces[0]!], floating_ips: [], port_forwardings: [], routes: [{ destination: '10.9.0.0/24', nexthop: '10.1.0.11' }] };
    await h.converge('router', router, less);
    const devs = (JSON.parse(await shOk(ns, ['ip', '-j', 'link', 'show'])) as Array<{ ifname: string }>).map((l) => l.ifname).sort();
    assert.deepEqual(devs, ['lo', routerGatewayName(rGw), routerInterfaceName(rA)].sort());
    const hostLinks = (JSON.parse(await shOk(h.ns, ['ip', '-j', 'link', 'show'])) as Array<{ ifname: string }>).map((l) => l.ifname);
    assert.ok(!hostLinks.includes(tapName(rB)), 'the host end went with it');
    if (haveConntrack) assert.equal(await tracked(), '', 'and forgotten with the floating IP');
    assert.equal(await connect(up, '172.24.4.20', 80), null, 'no floating IP');
    assert.match(await shOk(ns, ['ip', 'route', 'show', '10.9.0.0/24']), /via 10\.1\.0\.11/);
    assert.deepEqual((await h.converge('router', router, less)).changes, []);
    // upstream still holds a neighbour entry for the floating IP, with another MAC (as after a move): the gratuitous ARP corrects it
    await shOk(up, ['ip', 'neigh', 'replace', '172.24.4.20', 'lladdr', '02:00:00:00:00:01', 'dev', 'eth0', 'nud', 'stale']);
    await h.converge('router', router, rspec);
    assert.equal(await shOk(ns, ['ip', 'route', 'show', '10.9.0.0/24']), '');
    if (existsSync('/usr/bin/arping')) assert.match(await shOk(up, ['ip', 'neigh', 'show', '172.24.4.20']), new RegExp(rspec.external_gateway!.mac_address), 'updated by the gratuitous ARP');
    assert.equal(await connect(up, '172.24.4.20', 80), 'hello-a');
  });

  await t.test('admin down: the router\'s devices go down and it reports down; up again, back', async () => {
    // with a static route: going down takes it away (the kernel's doing and ours must not collide)
    const routed: RouterSpec = { ...rspec, routes: [{ destination: '10.9.0.0/24', nexthop: '10.1.0.11' }] };
    await h.converge('router', router, routed);
    const r1 = await h.converge('router', router, { ...routed, admin_state_up: false });
    assert.equal(r1.observed.state, 'down');
    assert.equal(await connect(up, '172.24.4.20', 80), null);
    assert.equal(await ping(a.ns, '10.2.0.11'), false);
    const r2 = await h.converge('router', router, rspec);
    assert.equal(r2.observed.state, 'active');
    assert.equal(await connect(up, '172.24.4.20', 80), 'hello-a');
    assert.ok(await pingSoon(a.ns, '10.2.0.11'));
    assert.deepEqual((await h.converge('router', router, rspec)).changes, []);
  });

  await t.test('delete leaves nothing; the mapped bridge stays', async () => {
    assert.deepEqual(await h.list('router'), [router]);
    const gone = await h.converge('router', router, { ...rspec, deleted: true });
    assert.equal(gone.observed.state, 'deleted');
    assert.deepEqual(await h.list('router'), []);
    assert.ok(!existsSync(`/run/netns/${ns}`));
    const hostLinks = (JSON.parse(await shOk(h.ns, ['ip', '-j', 'link', 'show'])) as Array<{ ifname: string }>).map((l) => l.ifname);
    for (const p of [rA, rB, rGw]) assert.ok(!hostLinks.includes(tapName(p)), `${tapName(p)} is gone`);
    assert.equal(await connect(b.ns, '172.24.4.1', 9000), null, 'no way out any more');
    await h.destroy('router', router);

    for (const p of [pA, pB, pA2]) await h.destroy('port', p);
    for (const g of [sgA, sgOpen]) await h.destroy('security_group', g);
    for (const n of [netA, netB, netExt]) await h.destroy('network', n);
    await h.removeTables();
    assert.deepEqual(await hostLeftovers(h.ns, [netA, netB, netExt], [router]), []);
    assert.ok((await sh(h.ns, ['ip', 'link', 'show', 'br-ex'])).code === 0, 'br-ex is the host\'s');
  });
});

test('the all-in-one\'s external bridge: made with the host address once, left alone after', { skip: skipUnlessRoot, timeout: 60_000 }, async (t) => {
  const e = env();
  t.after(() => e.cleanup());
  const ns = `${e.prefix}-aio`;
  await run('ip', ['netns', 'add', ns]);
  e.namespaces.push(ns);
  // ensureExternalBridge works in the namespace it runs in: a child entered into the test namespace
  const script = `import(${JSON.stringify(new URL('../../src/agent/main.ts', import.meta.url).href)}).then(async (m) => process.stdout.write(JSON.stringify(await m.ensureExternalBridge('br-ex', '172.24.4.1/24'))))`;
  const once = async () => JSON.parse(await shOk(ns, [process.execPath, '--input-type=module', '-e', script])) as string[];
  assert.deepEqual(await once(), ['bridge br-ex', '172.24.4.1/24 on br-ex']);
  const link = JSON.parse(await shOk(ns, ['ip', '-j', 'addr', 'show', 'dev', 'br-ex']))[0];
  assert.ok(link.flags.includes('UP'));
  assert.deepEqual(link.addr_info.filter((a: any) => a.family === 'inet').map((a: any) => `${a.local}/${a.prefixlen}`), ['172.24.4.1/24']);
  assert.deepEqual(await once(), [], 'the second time changes nothing');
  assert.equal((await shOk(ns, ['sysctl', '-n', 'net.ipv4.ip_forward'])).trim(), '0', 'the host does not forward');
});
