// Live migration across two hosts, through the whole plane (two-hosts-lib.ts:
// host A in-process, host B a real `stratus agent` of `host add-local`). A
// tiny VM on a tenant network, having written 4 MiB of 'Z' to its root disk
// (user data), is pinged every 0.2 s from the network's DHCP namespace (kept
// on A by a container there) while it live-migrates to B: it loses at most a
// few packets, ends ACTIVE on B with the same port, MAC and address, the
// bytes it wrote are in B's copy of its disk (the NBD mirror), its migration
// completed with its progress, and nothing of it is left on A (qemu, tap,
// disk, sockets, cgroups). Then a live migration
// back, with B's copy slowed to 1 MiB/s (--live-migration-bandwidth), is
// aborted while it runs: cancelled, the VM ACTIVE on B in the same qemu,
// nothing made on A left.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../../src/agent/exec.ts';
import { READY_MARKER } from '../../src/agent/drivers/vm/guest/scripts.ts';
import { tapName } from '../../src/network/protocol.ts';
import { processAlive, sleep, waitConsole } from './lib.ts';
import { until } from '../harness.ts';
import { BOOT_WAIT_MS, qemuPid, skip, twoHosts } from './two-hosts-lib.ts';

/** The cgroup directories (v1 controllers, or the v2 one) a process is in. */
function cgroupsOf(pid: number): string[] {
  return readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n').filter(Boolean).flatMap((l) => {
    const [, ctrls, path] = l.split(':');
    if (!path || path === '/') return [];
    if (!ctrls) return [join('/sys/fs/cgroup', path)];
    return ctrls.split(',').filter((c) => ['cpu', 'memory', 'pids'].includes(c)).map((c) => join('/sys/fs/cgroup', c, path));
  });
}

test('live migration of a VM between two hosts: pinged all along it loses at most a few packets and ends ACTIVE on the other host with its port; nothing left on the source; an abort leaves it running where it was', { skip, timeout: 900_000 }, async (t) => {
  const h = await twoHosts(t, { prefix: 'lm', cidr: '10.97.0.0/24', bArgs: ['--live-migration-bandwidth', '1'] });
  const { p, nameB, stateB, neutron, net } = h;
  const nova = (method: string, path: string, body?: unknown, version = '2.80') => p.api(method, `/compute/v2.1${path}`, body, { 'X-OpenStack-Nova-API-Version': version });
  // a container on A keeps the network, and its DHCP namespace (the pinger), on A whatever the VM does
  const anchor = await p.createServer({ name: 'lm-anchor', networks: [{ uuid: net.id }], availability_zone: `nova:${p.hostname}` });
  // the guest writes 4 MiB of 'Z' (0x5a) at 900 MiB into its root disk: data only the disk's mirror can bring to B
  const userData = '#!/bin/sh\ndd if=/dev/zero bs=1M count=4 2>/dev/null | tr \'\\000\' Z | dd of=/dev/vda bs=1M seek=900 2>/dev/null && sync && echo LM-DISK-WRITTEN\n';
  const id = await p.createServer({
    name: 'lm-vm', imageRef: h.vmImage, flavorRef: h.vmFlavor, networks: [{ uuid: net.id }], availability_zone: `nova:${p.hostname}`, security_groups: [{ name: h.sgName }],
    user_data: Buffer.from(userData).toString('base64'),
  });
  h.track(id);
  await p.waitStatus(anchor, ['ACTIVE'], 120_000);
  let s = await p.waitStatus(id, ['ACTIVE'], 120_000);
  assert.equal(s['OS-EXT-SRV-ATTR:host'], p.hostname);
  const ip = s.addresses.lm[0].addr as string;
  const port = (await neutron('GET', `/ports?device_id=${id}`)).body.ports[0];
  await waitConsole(p, id, new RegExp(READY_MARKER), BOOT_WAIT_MS);
  await waitConsole(p, id, /LM-DISK-WRITTEN/, BOOT_WAIT_MS);
  await until(`a ping to ${ip} on ${p.hostname}`, () => h.ping(ip), BOOT_WAIT_MS);
  const pidA = qemuPid(p.stateDir, id)!;
  assert.ok(pidA, 'qemu runs on A');
  h.notePids();
  const cgroupsA = cgroupsOf(pidA);
  assert.ok(cgroupsA.length > 0);

  // pinged every 0.2 s from the DHCP namespace on A, all through the migration
  const pinger = spawn('ip', ['netns', 'exec', h.dhcpNs, '/bin/busybox', 'ping', '-i', '0.2', ip], { stdio: ['ignore', 'pipe', 'pipe'] });
  let pings = '';
  pinger.stdout.on('data', (b: Buffer) => { pings += b.toString(); });
  const pingerDone = new Promise<void>((r) => pinger.once('exit', () => r()));
  t.after(() => { if (pinger.exitCode === null) pinger.kill('SIGKILL'); });
  await sleep(1000);
  const r = await nova('POST', `/servers/${id}/action`, { 'os-migrateLive': { host: nameB, block_migration: 'auto' } }, '2.30');
  assert.equal(r.status, 202, JSON.stringify(r.body));
  await until('the migration completes', async () => {
    const m = (await nova('GET', `/os-migrations?instance_uuid=${id}&migration_type=live-migration`)).body.migrations[0];
    if (m?.status === 'error' || m?.status === 'cancelled') throw new Error(`the live migration ended ${m.status}`);
    return m?.status === 'completed' ? m : undefined;
  }, 600_000);
  await sleep(3000);
  pinger.kill('SIGINT');
  await pingerDone;
  const stats = /(\d+) packets transmitted, (\d+) packets received/.exec(pings);
  assert.ok(stats, pings.slice(-400));
  const lost = Number(stats[1]) - Number(stats[2]);
  console.log(`live migration: ${stats[1]} pings, ${lost} lost`);
  assert.ok(Number(stats[1]) > 10, 'the pings ran through the migration');
  assert.ok(lost <= 10, `at most a few pings lost (${lost} of ${stats[1]})`);

  s = (await nova('GET', `/servers/${id}`)).body.server;
  assert.equal(s.status, 'ACTIVE');
  assert.equal(s['OS-EXT-SRV-ATTR:host'], nameB);
  const db = p.cloud.server.database.db;
  const done = await db.selectFrom('compute_migrations').selectAll().where('server_id', '=', id).executeTakeFirstOrThrow();
  const progress = JSON.parse(done.progress ?? '{}');
  assert.ok(progress.memory_total > 0 && progress.memory_remaining === 0, `the progress recorded: ${done.progress}`);
  assert.ok(progress.disk_total >= 4 * 2 ** 20 && progress.disk_remaining === 0, `the disk copied: ${done.progress}`);
  const moved = (await neutron('GET', `/ports/${port.id}`)).body.port;
  assert.equal(moved['binding:host_id'], nameB);
  assert.equal(moved.mac_address, port.mac_address);
  assert.deepEqual(moved.fixed_ips, port.fixed_ips);
  assert.equal(moved['binding:profile'].migrating_to, undefined);
  const pidB = qemuPid(stateB, id);
  assert.ok(pidB, 'qemu runs on B');
  // what the guest wrote on A is in B's disk (read beside the running qemu: -U)
  const check = await run('qemu-io', ['-r', '-U', '-f', 'qcow2', join(stateB, 'vm', 'servers', id, 'root.qcow2'), '-c', `read -P 0x5a ${900 * 2 ** 20} ${4 * 2 ** 20}`]);
  assert.equal(check.code, 0, check.stderr);
  assert.doesNotMatch(check.stdout, /verification failed/i, check.stdout);
  assert.match(check.stdout, /read 4194304\/4194304 bytes/);
  h.notePids();
  // nothing of it left on A
  await until('A removes what it held', async () => !existsSync(join(p.stateDir, 'vm', 'servers', id)), 60_000);
  assert.ok(!processAlive(pidA), 'A\'s qemu is gone');
  for (const c of cgroupsA) assert.ok(!existsSync(c), `cgroup ${c} removed`);
  await until('A\'s tap removed', async () => (await run('ip', ['-n', h.nsA, 'link', 'show', 'dev', tapName(port.id)])).code !== 0, 60_000);
  await until(`a ping to ${ip} on ${nameB}`, () => h.ping(ip), 60_000);

  // back towards A, B copying at 1 MiB/s: aborted while it runs
  const back = await nova('POST', `/servers/${id}/action`, { 'os-migrateLive': { host: p.hostname, block_migration: 'auto' } }, '2.65');
  assert.equal(back.status, 202, JSON.stringify(back.body));
  const running = await until('the copy runs, with progress', async () => {
    const m = (await nova('GET', `/servers/${id}/migrations`)).body.migrations[0];
    return m?.status === 'running' && (m.memory_total_bytes > 0 || m.disk_total_bytes > 0) ? m : undefined;
  }, 300_000);
  assert.equal(running.source_compute, nameB);
  assert.equal(running.dest_compute, p.hostname);
  assert.ok(existsSync(join(p.stateDir, 'vm', 'servers', id)), 'A prepared it');
  const prepared = qemuPid(p.stateDir, id);
  if (prepared) h.pids.add(prepared);
  const del = await nova('DELETE', `/servers/${id}/migrations/${running.id}`, undefined, '2.24');
  assert.equal(del.status, 202, JSON.stringify(del.body));
  await until('cancelled', async () => (await db.selectFrom('compute_migrations').select('status').where('id', '=', running.id).executeTakeFirstOrThrow()).status === 'cancelled', 120_000);
  s = (await nova('GET', `/servers/${id}`)).body.server;
  assert.equal(s.status, 'ACTIVE');
  assert.equal(s['OS-EXT-SRV-ATTR:host'], nameB);
  assert.equal(qemuPid(stateB, id), pidB, 'the same qemu runs on B');
  await until('A removes what it prepared', async () => !existsSync(join(p.stateDir, 'vm', 'servers', id)), 60_000);
  if (prepared) assert.ok(!processAlive(prepared), 'A\'s waiting qemu is gone');
  assert.deepEqual((await nova('GET', `/servers/${id}/migrations`)).body.migrations, []);
  await until(`a ping to ${ip} after the abort`, () => h.ping(ip), 60_000);

  for (const sid of [id, anchor]) assert.equal((await p.api('DELETE', `/compute/v2.1/servers/${sid}`)).status, 204);
  for (const sid of [id, anchor]) await p.waitGone(sid, 120_000);
  assert.ok(!existsSync(join(stateB, 'vm', 'servers', id)), 'B removed it');
});
