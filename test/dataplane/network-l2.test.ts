// The network driver on one host: servers on a network reach each other,
// another network (even with the same CIDR) stays apart, security groups
// open and close ports statefully, anti-spoofing, idempotent converges that
// repair drift, and nothing left after destroy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { connect, env, hostLeftovers, ping, pingSoon, portSpec, rule, sgSpec, sh, shOk, networkSpec, skipUnlessRoot } from './network-lib.ts';
import { tapName } from '../../src/network/protocol.ts';
import { portChains } from '../../src/agent/drivers/network/rules.ts';

test('one host: L2 reach, tenant isolation with overlapping CIDRs, security groups, anti-spoofing, idempotence, destroy', { skip: skipUnlessRoot, timeout: 180_000 }, async (t) => {
  const e = env();
  t.after(() => e.cleanup());
  const h = await e.host('h1');

  // two tenants, the same CIDR
  const netA = randomUUID(), netB = randomUUID();
  const specA = networkSpec({ cidr: '10.50.0.0/24' });
  const specB = networkSpec({ cidr: '10.50.0.0/24' });
  assert.ok((await h.converge('network', netA, specA)).changes.length > 0);
  await h.converge('network', netB, specB);

  // sgOpen: anything in and out; sgWeb: in: icmp + (later) tcp/8080, out: nothing (replies pass by state)
  const sgOpen = randomUUID(), sgWeb = randomUUID();
  const open = sgSpec([rule('ingress'), rule('egress')]);
  const icmpIn = rule('ingress', { protocol: 'icmp' });
  const web = sgSpec([icmpIn]);
  await h.converge('security_group', sgOpen, open);
  await h.converge('security_group', sgWeb, web);

  const a1 = await e.server(), a2 = await e.server(), b1 = await e.server(), b2 = await e.server();
  const pA1 = randomUUID(), pA2 = randomUUID(), pB1 = randomUUID(), pB2 = randomUUID();
  const specA1 = portSpec(netA, a1.id, '10.50.0.11', { security_group_ids: [sgOpen] });
  const specA2 = portSpec(netA, a2.id, '10.50.0.12', { security_group_ids: [sgWeb] });
  const specB1 = portSpec(netB, b1.id, '10.50.0.13', { security_group_ids: [sgOpen] });
  const specB2 = portSpec(netB, b2.id, '10.50.0.11', { security_group_ids: [sgOpen] });
  for (const [id, s] of [[pA1, specA1], [pA2, specA2], [pB1, specB1], [pB2, specB2]] as const) {
    const r = await h.converge('port', id, s);
    assert.equal(r.observed.state, 'active');
    assert.equal(r.observed.device, tapName(id));
  }
  // the server's side: MAC, address, MTU
  const eth0 = JSON.parse(await shOk(a1.ns, ['ip', '-j', 'addr', 'show', 'dev', 'eth0']))[0];
  assert.equal(eth0.address, specA1.mac_address);
  assert.equal(eth0.mtu, 1450);
  assert.ok(eth0.addr_info.some((a: any) => a.local === '10.50.0.11' && a.prefixlen === 24));

  await t.test('servers on one network reach each other', async () => {
    assert.ok(await pingSoon(a1.ns, '10.50.0.12'), 'a1 -> a2');
    assert.ok(await pingSoon(b1.ns, '10.50.0.11'), 'b1 -> b2 (the same address as a1, in the other tenant)');
  });

  await t.test('each network tracks connections in its own conntrack zone', { skip: (await sh(h.ns, ['conntrack', '--version'])).code !== 0 && 'no conntrack tool (Debian: conntrack)' }, async () => {
    assert.ok(await pingSoon(b2.ns, '10.50.0.13'), 'b2 -> b1: the same source address as a1 -> a2 in the other tenant');
    const zoneOf = async (src: string, dst: string) => {
      const out = (await sh(h.ns, ['conntrack', '-L', '-p', 'icmp', '-s', src, '-d', dst])).stdout;
      return new Set([...out.matchAll(/zone=(\d+)/g)].map((m) => m[1]));
    };
    const za = await zoneOf('10.50.0.11', '10.50.0.12'), zb = await zoneOf('10.50.0.11', '10.50.0.13');
    assert.equal(za.size, 1, 'a1 -> a2 tracked in one zone');
    assert.equal(zb.size, 1, 'b2 -> b1 tracked in one zone');
    assert.notDeepEqual(za, zb, 'the two tenants use different zones');
  });

  await t.test('the other network, same CIDR, is not reachable', async () => {
    assert.equal(await ping(a1.ns, '10.50.0.13'), false, 'a1 must not reach b1');
    assert.equal(await ping(b1.ns, '10.50.0.12'), false, 'b1 must not reach a2');
    // b1 reaching 10.50.0.11 got b2, not a1: the MAC it resolved is b2's
    const neigh = await shOk(b1.ns, ['ip', 'neigh', 'show', '10.50.0.11']);
    assert.match(neigh, new RegExp(specB2.mac_address));
  });

  await t.test('a security group rule opens and closes a TCP port; replies pass by state', async () => {
    await e.listen(a2.ns, 8080, 'hello-a2');
    assert.equal(await connect(a1.ns, '10.50.0.12', 8080), null, 'closed before the rule');
    const tcp = rule('ingress', { protocol: 'tcp', port_range_min: 8080, port_range_max: 8080 });
    await h.converge('security_group', sgWeb, sgSpec([icmpIn, tcp]));
    assert.equal(await connect(a1.ns, '10.50.0.12', 8080), 'hello-a2', 'open with the rule (sgWeb has no egress rule: the reply passes by state)');
    await h.converge('security_group', sgWeb, sgSpec([icmpIn]));
    assert.equal(await connect(a1.ns, '10.50.0.12', 8080), null, 'closed again');
  });

  await t.test('remote group membership is a set update', async () => {
    const tcpFromOpen = rule('ingress', { protocol: 'tcp', port_range_min: 8080, port_range_max: 8080, remote_group_id: sgOpen });
    await h.converge('security_group', sgWeb, sgSpec([icmpIn, tcpFromOpen], { remote_groups: { [sgOpen]: ['10.50.0.99'] } }));
    assert.equal(await connect(a1.ns, '10.50.0.12', 8080), null, 'a1 is not a member yet');
    const r = await h.converge('security_group', sgWeb, sgSpec([icmpIn, tcpFromOpen], { remote_groups: { [sgOpen]: ['10.50.0.99', '10.50.0.11'] } }));
    assert.ok(r.changes.length > 0);
    assert.ok(r.changes.every((c) => /^nft (add|delete) element /.test(c)), `only set elements change: ${r.changes.join('; ')}`);
    assert.equal(await connect(a1.ns, '10.50.0.12', 8080), 'hello-a2', 'a1 joined the remote group');
    await h.converge('security_group', sgWeb, sgSpec([icmpIn]));
  });

  await t.test('anti-spoofing drops a changed source address; an allowed address pair lets it through', async () => {
    await shOk(a1.ns, ['ip', 'addr', 'add', '10.50.0.99/24', 'dev', 'eth0']);
    assert.equal(await ping(a1.ns, '10.50.0.12', '10.50.0.99'), false, 'spoofed source dropped');
    assert.ok(await ping(a1.ns, '10.50.0.12'), 'its own address still passes');
    await h.converge('port', pA1, { ...specA1, allowed_address_pairs: [{ ip_address: '10.50.0.96/30', mac_address: specA1.mac_address }] });
    // the converge also removed the address it does not know; a pair is the server's own business
    await shOk(a1.ns, ['ip', 'addr', 'replace', '10.50.0.99/24', 'dev', 'eth0']);
    assert.ok(await ping(a1.ns, '10.50.0.12', '10.50.0.99'), 'allowed address pair passes');
    await h.converge('port', pA1, specA1);
    assert.equal(await ping(a1.ns, '10.50.0.12', '10.50.0.99'), false, 'dropped again without the pair');
  });

  await t.test('converging again changes nothing; drift is repaired', async () => {
    for (const [kind, id, s] of [['network', netA, specA], ['network', netB, specB], ['security_group', sgOpen, open], ['security_group', sgWeb, sgSpec([icmpIn])],
      ['port', pA1, specA1], ['port', pA2, specA2], ['port', pB1, specB1], ['port', pB2, specB2]] as const) {
      const r = await h.converge(kind as any, id, s as any);
      assert.deepEqual(r.changes, [], `${kind} ${id} changed on a second converge`);
    }
    // a deleted rule: the ingress chain of a2 loses its jump to sgWeb -> icmp to a2 dropped; converge puts it back
    const chain = portChains(pA2).ingress;
    const listing = JSON.parse(await shOk(h.ns, ['nft', '-j', '-a', 'list', 'chain', 'inet', 'stratus', chain])).nftables as any[];
    const jump = listing.find((o) => o.rule && JSON.stringify(o.rule.expr).includes('"jump"'));
    await shOk(h.ns, ['nft', 'delete', 'rule', 'inet', 'stratus', chain, 'handle', String(jump.rule.handle)]);
    assert.equal(await ping(a1.ns, '10.50.0.12'), false, 'the drift is real');
    const r = await h.converge('port', pA2, specA2);
    assert.ok(r.changes.some((c) => c.includes(chain)), r.changes.join('; '));
    assert.ok(await ping(a1.ns, '10.50.0.12'), 'repaired');
    // a missing veth
    await shOk(h.ns, ['ip', 'link', 'del', tapName(pA1)]);
    assert.equal(await ping(a1.ns, '10.50.0.12'), false);
    assert.ok((await h.converge('port', pA1, specA1)).changes.length > 0);
    assert.ok(await pingSoon(a1.ns, '10.50.0.12'), 'veth made again');
    assert.deepEqual((await h.converge('port', pA1, specA1)).changes, []);
  });

  await t.test('destroy leaves nothing', async () => {
    for (const p of [pA1, pA2, pB1, pB2]) await h.destroy('port', p);
    for (const g of [sgOpen, sgWeb]) await h.destroy('security_group', g);
    for (const n of [netA, netB]) await h.destroy('network', n);
    for (const kind of ['network', 'port', 'security_group'] as const) assert.deepEqual(await h.list(kind), []);
    // the tables keep only their skeleton
    const chains = (JSON.parse(await shOk(h.ns, ['nft', '-j', 'list', 'chains'])).nftables as any[]).filter((o) => o.chain).map((o) => `${o.chain.family} ${o.chain.name}`).sort();
    assert.deepEqual(chains, ['bridge forward', 'bridge prerouting', 'inet egress', 'inet ingress', 'inet zone']);
    const maps = (JSON.parse(await shOk(h.ns, ['nft', '-j', 'list', 'maps'])).nftables as any[]).filter((o) => o.map);
    for (const m of maps) {
      const full = JSON.parse(await shOk(h.ns, ['nft', '-j', 'list', 'map', m.map.family, 'stratus', m.map.name])).nftables.find((o: any) => o.map);
      assert.deepEqual(full.map.elem ?? [], [], `map ${m.map.name} is empty`);
    }
    await h.removeTables();
    assert.deepEqual(await hostLeftovers(h.ns, [netA, netB]), []);
    // the servers' namespaces are the servers' (the container driver's): their veth ends went with the host ends
    const links = JSON.parse(await shOk(a1.ns, ['ip', '-j', 'link', 'show'])) as Array<{ ifname: string }>;
    assert.deepEqual(links.map((l) => l.ifname), ['lo']);
    void sh;
  });
});
