// Two "hosts" (namespaces with their own bridges and nft tables) joined by a
// veth underlay: a network's VXLAN carries its servers' traffic between them
// with static FDB entries (no multicast, no learning); another VNI with the
// same CIDR stays apart; a restarted driver (same state) changes nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { env, hostLeftovers, networkSpec, ping, pingSoon, portSpec, rule, sgSpec, shOk, skipUnlessRoot } from './network-lib.ts';
import { run } from '../../src/agent/exec.ts';
import { NetworkDriver } from '../../src/agent/drivers/network/driver.ts';
import { vxlanName } from '../../src/network/protocol.ts';

test('two hosts over VXLAN: reach, VNI isolation, static FDB, restart', { skip: skipUnlessRoot, timeout: 180_000 }, async (t) => {
  const e = env();
  t.after(() => e.cleanup());
  const h1 = await e.host('h1', '192.0.2.1');
  const h2 = await e.host('h2', '192.0.2.2');
  // the underlay: one veth between the two host namespaces
  const r = await run('ip', ['-n', h1.ns, 'link', 'add', 'u1', 'type', 'veth', 'peer', 'name', 'u2', 'netns', h2.ns]);
  assert.equal(r.code, 0, r.stderr);
  await shOk(h1.ns, ['sh', '-c', 'ip addr add 192.0.2.1/24 dev u1 && ip link set u1 up']);
  await shOk(h2.ns, ['sh', '-c', 'ip addr add 192.0.2.2/24 dev u2 && ip link set u2 up']);

  const sg = randomUUID();
  for (const h of [h1, h2]) await h.converge('security_group', sg, sgSpec([rule('ingress'), rule('egress')]));
  const netA = randomUUID(), netB = randomUUID();
  const [a1, a2, b1, b2] = [await e.server(), await e.server(), await e.server(), await e.server()];
  const pa1 = portSpec(netA, a1.id, '10.70.0.11', { security_group_ids: [sg] });
  const pa2 = portSpec(netA, a2.id, '10.70.0.12', { security_group_ids: [sg] });
  const pb1 = portSpec(netB, b1.id, '10.70.0.13', { security_group_ids: [sg] });
  const pb2 = portSpec(netB, b2.id, '10.70.0.14', { security_group_ids: [sg] });
  const base = { A: networkSpec({ cidr: '10.70.0.0/24', vni: 4101 }), B: networkSpec({ cidr: '10.70.0.0/24', vni: 4102 }) };
  // each host's view: the other host is the peer, with the MACs behind it
  const specs = {
    h1A: { ...base.A, vxlan_peers: [{ underlay_ip: '192.0.2.2', macs: [pa2.mac_address] }] },
    h2A: { ...base.A, vxlan_peers: [{ underlay_ip: '192.0.2.1', macs: [pa1.mac_address] }] },
    h1B: { ...base.B, vxlan_peers: [{ underlay_ip: '192.0.2.2', macs: [pb2.mac_address] }] },
    h2B: { ...base.B, vxlan_peers: [{ underlay_ip: '192.0.2.1', macs: [pb1.mac_address] }] },
  };
  await h1.converge('network', netA, specs.h1A);
  await h2.converge('network', netA, specs.h2A);
  await h1.converge('network', netB, specs.h1B);
  await h2.converge('network', netB, specs.h2B);
  const ids = { pa1: randomUUID(), pa2: randomUUID(), pb1: randomUUID(), pb2: randomUUID() };
  await h1.converge('port', ids.pa1, pa1);
  await h2.converge('port', ids.pa2, pa2);
  await h1.converge('port', ids.pb1, pb1);
  await h2.converge('port', ids.pb2, pb2);

  await t.test('servers on two hosts reach each other over VXLAN', async () => {
    assert.ok(await pingSoon(a1.ns, '10.70.0.12'), 'a1 (h1) -> a2 (h2)');
    assert.ok(await pingSoon(b2.ns, '10.70.0.13'), 'b2 (h2) -> b1 (h1)');
    // a full-size packet at the inner MTU (1422 + 28 = 1450) crosses the 1500 underlay
    const big = await run('nsenter', [`--net=/run/netns/${a1.ns}`, '/bin/busybox', 'ping', '-c', '1', '-W', '2', '-s', '1422', '10.70.0.12']);
    assert.equal(big.code, 0, big.stdout + big.stderr);
  });

  await t.test('another VNI with the same CIDR is apart', async () => {
    assert.equal(await ping(a1.ns, '10.70.0.14'), false);
    assert.equal(await ping(b1.ns, '10.70.0.12'), false);
  });

  await t.test('static FDB, no learning', async () => {
    const fdb = JSON.parse(await shOk(h1.ns, ['bridge', '-j', 'fdb', 'show', 'dev', vxlanName(4101)])) as Array<{ mac: string; dst?: string }>;
    const remote = fdb.filter((f) => f.dst).map((f) => `${f.mac} ${f.dst}`).sort();
    assert.deepEqual(remote, [`00:00:00:00:00:00 192.0.2.2`, `${pa2.mac_address} 192.0.2.2`].sort());
    const link = JSON.parse(await shOk(h1.ns, ['ip', '-j', '-d', 'link', 'show', 'dev', vxlanName(4101)]))[0];
    assert.equal(link.linkinfo.info_data.learning, false);
    assert.equal(link.mtu, 1450);
  });

  await t.test('a restarted driver with the same state changes nothing', async () => {
    await h1.stop();
    const again = new NetworkDriver({ stateDir: e.stateDirs[0]!, hostNetns: h1.ns, underlayIp: '192.0.2.1', log: pino({ level: 'silent' }), serverHere: async () => true });
    e.drivers.push(again);
    await again.start();
    assert.deepEqual(await again.list('port'), [ids.pa1, ids.pb1].sort());
    for (const [kind, id, s] of [['network', netA, specs.h1A], ['network', netB, specs.h1B], ['port', ids.pa1, pa1], ['port', ids.pb1, pb1]] as const) {
      assert.deepEqual((await again.converge(kind as any, id, s as any)).changes, [], `${kind} ${id}`);
    }
    // a peer gone from the spec: its FDB entries go
    const r2 = await again.converge('network', netA, { ...specs.h1A, vxlan_peers: [] });
    assert.ok(r2.changes.some((c) => c.startsWith('fdb del')), r2.changes.join('; '));
    assert.equal(await ping(a1.ns, '10.70.0.12'), false);
    await again.converge('network', netA, specs.h1A);
    assert.ok(await pingSoon(a1.ns, '10.70.0.12'));
  });

  await t.test('destroy on both hosts leaves nothing', async () => {
    const d1 = e.drivers[e.drivers.length - 1]!;
    for (const [d, ports] of [[d1, [ids.pa1, ids.pb1]], [h2, [ids.pa2, ids.pb2]]] as const) {
      for (const p of ports) await d.destroy('port', p);
      await d.destroy('security_group', sg);
      for (const n of [netA, netB]) await d.destroy('network', n);
      await d.removeTables();
    }
    assert.deepEqual(await hostLeftovers(h1.ns, [netA, netB]), []);
    assert.deepEqual(await hostLeftovers(h2.ns, [netA, netB]), []);
  });
});
