// Cold migration across two hosts, through the whole plane: the first host's
// agent in-process (its bridges and qemu in a namespace of this test), the
// second made by `stratus host add-local`'s library (a real `stratus agent`
// in its own namespace). A small VM (stratus-tiny under TCG) on a tenant
// network answers pings from the network's DHCP namespace; migrated to the
// other host (2.56 `host`) it runs there from the copy of its disk
// (VERIFY_RESIZE), its port bound there with the same address, and answers
// again; confirmed, the source holds nothing of it. Then its host is forced
// down and it is evacuated: rebuilt on the first host from its image, it
// answers again, and the second host removes what it held. qemu processes are
// killed by the pids their hosts recorded, and everything either host made is
// removed in after(), also when a step fails.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { READY_MARKER } from '../../src/agent/drivers/vm/guest/scripts.ts';
import { processAlive, waitConsole } from './lib.ts';
import { until } from '../harness.ts';
import { BOOT_WAIT_MS, qemuPid, skip, twoHosts } from './two-hosts-lib.ts';

test('cold migration of a VM between two hosts: it answers pings on the other host with its address; confirmed, the source holds nothing; evacuated back when its host is down', { skip, timeout: 900_000 }, async (t) => {
  const h = await twoHosts(t, { prefix: 'mg', cidr: '10.96.0.0/24' });
  const { p, nameB, stateB, neutron, net, pids, notePids } = h;
  const id = await p.createServer({
    name: 'mg-vm', imageRef: h.vmImage, flavorRef: h.vmFlavor, networks: [{ uuid: net.id }], availability_zone: `nova:${p.hostname}`, security_groups: [{ name: h.sgName }],
  });
  h.track(id);
  let s = await p.waitStatus(id, ['ACTIVE'], 120_000);
  notePids();
  assert.equal(s['OS-EXT-SRV-ATTR:host'], p.hostname);
  const ip = s.addresses.mg[0].addr as string;
  const port = (await neutron('GET', `/ports?device_id=${id}`)).body.ports[0];
  await waitConsole(p, id, new RegExp(READY_MARKER), BOOT_WAIT_MS);
  // the network's DHCP namespace is on the network (whichever host holds it): it pings the guest once its lease is in
  await until('the DHCP namespace', async () => existsSync(`/run/netns/${h.dhcpNs}`));
  const ping = () => h.ping(ip);
  await until(`a ping to ${ip} on ${p.hostname}`, ping, BOOT_WAIT_MS);

  const r = await p.api('POST', `/compute/v2.1/servers/${id}/action`, { migrate: { host: nameB } });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  s = await p.waitStatus(id, ['VERIFY_RESIZE', 'ERROR'], 600_000);
  assert.equal(s.status, 'VERIFY_RESIZE', JSON.stringify(s.fault ?? {}));
  assert.equal(s['OS-EXT-SRV-ATTR:host'], nameB);
  notePids();
  assert.ok(qemuPid(stateB, id), 'qemu runs on the destination');
  assert.equal(qemuPid(p.stateDir, id), null, 'and no longer on the source');
  assert.ok(existsSync(join(p.stateDir, 'vm', 'servers', id, 'root.qcow2')), 'the source keeps its disk until confirm');
  const moved = (await neutron('GET', `/ports?device_id=${id}`)).body.ports[0];
  assert.equal(moved['binding:host_id'], nameB);
  assert.deepEqual(moved.fixed_ips, port.fixed_ips);
  assert.equal(moved.mac_address, port.mac_address);
  await until(`a ping to ${ip} on ${nameB}`, ping, BOOT_WAIT_MS);

  assert.equal((await p.api('POST', `/compute/v2.1/servers/${id}/action`, { confirmResize: null })).status, 204);
  s = await p.waitStatus(id, ['ACTIVE'], 30_000);
  assert.equal(s['OS-EXT-SRV-ATTR:host'], nameB);
  await until('the source removes what it kept', async () => !existsSync(join(p.stateDir, 'vm', 'servers', id)), 60_000);
  // (the DHCP namespace may move with the network's ports meanwhile: a few tries)
  await until('a ping after the confirm', ping, 60_000);

  // evacuate: host B forced down (its agent lives on, as a host back from the dead would), the VM rebuilt on A from its image
  const down = await p.api('PUT', '/compute/v2.1/os-services/force-down', { host: nameB, binary: 'nova-compute', forced_down: true }, { 'X-OpenStack-Nova-API-Version': '2.11' });
  assert.equal(down.status, 200, JSON.stringify(down.body));
  const ev = await p.api('POST', `/compute/v2.1/servers/${id}/action`, { evacuate: {} });
  assert.equal(ev.status, 200, JSON.stringify(ev.body));
  s = await p.waitStatus(id, ['ACTIVE', 'ERROR'], 300_000);
  assert.equal(s.status, 'ACTIVE', JSON.stringify(s.fault ?? {}));
  assert.equal(s['OS-EXT-SRV-ATTR:host'], p.hostname);
  notePids();
  await until('host B removes what it held', async () => !existsSync(join(stateB, 'vm', 'servers', id)), 60_000);
  await waitConsole(p, id, new RegExp(READY_MARKER), BOOT_WAIT_MS);
  await until(`a ping to ${ip} after the evacuation`, ping, BOOT_WAIT_MS);
  await p.api('PUT', '/compute/v2.1/os-services/force-down', { host: nameB, binary: 'nova-compute', forced_down: false }, { 'X-OpenStack-Nova-API-Version': '2.11' });

  assert.equal((await p.api('DELETE', `/compute/v2.1/servers/${id}`)).status, 204);
  await p.waitGone(id, 120_000);
  assert.ok(!existsSync(join(p.stateDir, 'vm', 'servers', id)), 'host A removed it');
  for (const pid of pids) assert.ok(!processAlive(pid), `qemu ${pid} is gone`);
});
