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
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { run } from '../../src/agent/exec.ts';
import { buildTinyImage } from '../../src/agent/drivers/vm/guest/tiny-image.ts';
import { READY_MARKER } from '../../src/agent/drivers/vm/guest/scripts.ts';
import { addLocalHost, localHostLayout, removeLocalHost, removeNetworking, type LocalHost } from '../../src/cli/local-host.ts';
import { dhcpNamespace } from '../../src/network/protocol.ts';
import { sh } from './network-lib.ts';
import { CLI, processAlive, skipUnlessRoot, startPlane, waitConsole, type Plane } from './lib.ts';
import { until } from '../harness.ts';

const hasQemu = ['/usr/bin', '/usr/local/bin'].some((d) => existsSync(join(d, 'qemu-system-x86_64')));
const skip = skipUnlessRoot || (hasQemu ? false : 'qemu-system-x86_64 is not installed');
/** How long to wait for the guest under TCG on a loaded box; not a timing assertion. */
const BOOT_WAIT_MS = 300_000;


/** The pid a host's VM driver recorded for a server, if its qemu runs. */
function qemuPid(stateDir: string, id: string): number | null {
  try {
    const pid = Number(readFileSync(join(stateDir, 'vm', 'servers', id, 'qemu.pid'), 'utf8').trim());
    return pid > 0 && processAlive(pid) ? pid : null;
  } catch {
    return null;
  }
}

test('cold migration of a VM between two hosts: it answers pings on the other host with its address; confirmed, the source holds nothing; evacuated back when its host is down', { skip, timeout: 900_000 }, async (t) => {
  const tag = randomBytes(3).toString('hex');
  const nsA = `mg${tag}-a`;
  const nameB = `mg${tag}`;
  const underlay = `10.251.${Math.floor(Math.random() * 256)}.${4 * Math.floor(Math.random() * 64)}/30`;
  const stateB = mkdtempSync(join(tmpdir(), `mg${tag}-b-`));
  const layout = localHostLayout(nameB, { underlay, stateDir: stateB });
  const log = pino({ level: process.env.STRATUS_TEST_LOG ?? 'silent' });
  let plane: Plane | null = null;
  let hostB: LocalHost | null = null;
  let id = '';
  const pids = new Set<number>();
  const notePids = () => {
    for (const dir of [plane?.stateDir, stateB]) {
      const pid = dir && id ? qemuPid(dir, id) : null;
      if (pid) pids.add(pid);
    }
  };
  t.after(async () => {
    notePids();
    await hostB?.stop().catch(() => undefined);
    await removeLocalHost({ name: nameB, stateDir: stateB, log }).catch((err) => console.error('remove-local:', err));
    await plane?.stopAgent().catch(() => undefined);
    if (plane && existsSync(`/run/netns/${nsA}`)) await removeNetworking(plane.stateDir, nsA, log).catch((err) => console.error('host A networking:', err));
    for (const p of pids) if (processAlive(p)) try { process.kill(p, 'SIGKILL'); } catch { /* gone */ }
    await plane?.cleanup();
    if (existsSync(`/run/netns/${nsA}`)) await run('ip', ['netns', 'del', nsA]);
    rmSync(stateB, { recursive: true, force: true });
  });
  const tiny = await buildTinyImage();
  await run('ip', ['netns', 'add', nsA]);
  await sh(nsA, ['ip', 'link', 'set', 'lo', 'up']);
  plane = await startPlane({ agent: 'none', network: { hostNetns: nsA, underlayIp: layout.peerIp } });
  const p = plane;
  hostB = await addLocalHost({
    name: nameB, server: [p.cloud.url], tokenFile: join(p.dataDir, 'agent-token'), underlay, stateDir: stateB, peerNetns: nsA,
    cli: CLI, log, execArgv: ['--disable-warning=ExperimentalWarning'], agentArgs: ['--log-level', process.env.STRATUS_TEST_LOG ?? 'warn'],
  });
  await p.startAgent('inproc');
  const db = p.cloud.server.database.db;
  await until('host B registered', async () => db.selectFrom('compute_hosts').select('hostname').where('hostname', '=', nameB).executeTakeFirst());

  const img = await p.api('POST', '/image/v2/images', { name: 'stratus-tiny', container_format: 'bare', disk_format: 'qcow2', visibility: 'public', min_disk: 1, min_ram: 64 });
  assert.equal(img.status, 201);
  const up = await fetch(`${p.cloud.url}/image/v2/images/${img.body.id}/file`, {
    method: 'PUT', headers: { 'x-auth-token': p.token, 'content-type': 'application/octet-stream' }, body: new Uint8Array(await fsp.readFile(tiny.disk)),
  });
  assert.equal(up.status, 204);
  const fl = await p.api('POST', '/compute/v2.1/flavors', { flavor: { name: `mg-${tag}`, ram: 128, vcpus: 1, disk: 1 } });
  const neutron = (method: string, path: string, body?: unknown) => p.api(method, `/network/v2.0${path}`, body);
  const net = (await neutron('POST', '/networks', { network: { name: 'mg' } })).body.network;
  assert.equal((await neutron('POST', '/subnets', { subnet: { network_id: net.id, cidr: '10.96.0.0/24', ip_version: 4 } })).status, 201);

  // pings come from outside the server's groups: a group that lets them in
  const sg = (await neutron('POST', '/security-groups', { security_group: { name: `mg-ping-${tag}` } })).body.security_group;
  assert.equal((await neutron('POST', '/security-group-rules', { security_group_rule: { security_group_id: sg.id, direction: 'ingress', protocol: 'icmp', ethertype: 'IPv4' } })).status, 201);
  id = await p.createServer({
    name: 'mg-vm', imageRef: img.body.id, flavorRef: fl.body.flavor.id, networks: [{ uuid: net.id }], availability_zone: `nova:${p.hostname}`, security_groups: [{ name: sg.name }],
  });
  let s = await p.waitStatus(id, ['ACTIVE'], 120_000);
  notePids();
  assert.equal(s['OS-EXT-SRV-ATTR:host'], p.hostname);
  const ip = s.addresses.mg[0].addr as string;
  const port = (await neutron('GET', `/ports?device_id=${id}`)).body.ports[0];
  await waitConsole(p, id, new RegExp(READY_MARKER), BOOT_WAIT_MS);
  // the network's DHCP namespace is on the network (whichever host holds it): it pings the guest once its lease is in
  const dhcpNs = dhcpNamespace(net.id);
  await until('the DHCP namespace', async () => existsSync(`/run/netns/${dhcpNs}`));
  const ping = async () => (await sh(dhcpNs, ['/bin/busybox', 'ping', '-c', '1', '-W', '2', ip], 10_000)).code === 0;
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
