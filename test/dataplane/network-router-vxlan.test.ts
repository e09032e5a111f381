// A router on one host (the "network node", with the external bridge) and a
// server on another, on a VXLAN network between them: the router's interface
// MAC is in the compute host's static FDB (as the control plane sends it), so
// the server reaches upstream through the router, and its floating IP
// answers from upstream.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { connect, env, hostLeftovers, networkSpec, pingSoon, portSpec, randomMac, rule, sgSpec, shOk, skipUnlessRoot } from './network-lib.ts';
import { run } from '../../src/agent/exec.ts';
import type { RouterSpec } from '../../src/network/protocol.ts';

test('a router on another host than its server, over VXLAN: SNAT and a floating IP', { skip: skipUnlessRoot, timeout: 180_000 }, async (t) => {
  const e = env();
  t.after(() => e.cleanup());
  const net = await e.host('h1', '192.0.2.1', { bridgeMappings: { public: 'br-ex' } });
  const compute = await e.host('h2', '192.0.2.2');
  const r = await run('ip', ['-n', net.ns, 'link', 'add', 'u1', 'type', 'veth', 'peer', 'name', 'u2', 'netns', compute.ns]);
  assert.equal(r.code, 0, r.stderr);
  await shOk(net.ns, ['sh', '-c', 'ip addr add 192.0.2.1/24 dev u1 && ip link set u1 up']);
  await shOk(compute.ns, ['sh', '-c', 'ip addr add 192.0.2.2/24 dev u2 && ip link set u2 up']);

  // the external bridge on the network node, with upstream on it
  const up = `${e.prefix}-up`;
  await shOk(net.ns, ['sh', '-c', `ip link add br-ex type bridge && ip link set br-ex up && ip netns add ${up}`]);
  e.namespaces.push(up);
  await shOk(net.ns, ['sh', '-c', `ip link add upx type veth peer name eth0 netns ${up} && ip link set upx master br-ex up`]);
  await shOk(up, ['sh', '-c', 'ip addr add 172.24.4.1/24 dev eth0 && ip link set eth0 up && ip link set lo up']);

  const netExt = randomUUID(), netA = randomUUID(), router = randomUUID();
  const s = await e.server();
  const sg = randomUUID();
  await compute.converge('security_group', sg, sgSpec([rule('ingress'), rule('egress')]));
  const pS = randomUUID();
  const specS = portSpec(netA, s.id, '10.3.0.11', { security_group_ids: [sg] });
  specS.ip_config = { ...specS.ip_config, gateway4: '10.3.0.1' };
  const qrMac = randomMac();
  const base = networkSpec({ cidr: '10.3.0.0/24', vni: 4200 + Math.floor(Math.random() * 1000), gateway: '10.3.0.1' });
  await net.converge('network', netA, { ...base, vxlan_peers: [{ underlay_ip: '192.0.2.2', macs: [specS.mac_address] }] });
  await compute.converge('network', netA, { ...base, vxlan_peers: [{ underlay_ip: '192.0.2.1', macs: [qrMac] }] });
  await net.converge('network', netExt, networkSpec({ cidr: '172.24.4.0/24', physical: 'public', gateway: '172.24.4.1' }));
  await compute.converge('port', pS, specS);

  const rspec: RouterSpec = {
    project_id: 'p1', name: 'r1', admin_state_up: true,
    interfaces: [{ port_id: randomUUID(), network_id: netA, subnet_id: 'sub-1', mac_address: qrMac, ip_address: '10.3.0.1', prefixlen: 24 }],
    external_gateway: { network_id: netExt, port_id: randomUUID(), mac_address: randomMac(), ip_addresses: [{ ip_address: '172.24.4.10', prefixlen: 24 }], gateway_ip: '172.24.4.1', enable_snat: true },
    routes: [], floating_ips: [], port_forwardings: [], deleted: false,
  };
  assert.equal((await net.converge('router', router, rspec)).observed.state, 'active');
  await e.listen(up, 9000, '@peer');
  await e.listen(s.ns, 80, 'hello-s');

  await t.test('the server reaches its router and, through SNAT, upstream', async () => {
    assert.ok(await pingSoon(s.ns, '10.3.0.1'), 'the router\'s interface across VXLAN');
    assert.equal(await connect(s.ns, '172.24.4.1', 9000), '172.24.4.10');
  });

  await t.test('a floating IP on the network node reaches the server on the compute host', async () => {
    const withFip = { ...rspec, floating_ips: [{ floating_ip: '172.24.4.30', fixed_ip: '10.3.0.11', port_id: pS }] };
    await net.converge('router', router, withFip);
    assert.equal(await connect(up, '172.24.4.30', 80), 'hello-s');
    assert.equal(await connect(s.ns, '172.24.4.1', 9000), '172.24.4.30');
  });

  await t.test('delete leaves nothing on either host', async () => {
    await net.destroy('router', router);
    for (const [h, ids] of [[net, [netA, netExt]], [compute, [netA]]] as const) {
      for (const p of await h.list('port')) await h.destroy('port', p);
      for (const g of await h.list('security_group')) await h.destroy('security_group', g);
      for (const n of ids) await h.destroy('network', n);
      await h.removeTables();
      assert.deepEqual(await hostLeftovers(h.ns, [...ids], [router]), []);
    }
  });
});
