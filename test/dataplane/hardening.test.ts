// Container hardening seen from INSIDE running servers (their user data
// writes what it finds to the console): Podman's default seccomp filter, no
// new privileges, Docker's capability set, masked and read-only /proc and /sys
// paths; the optional user namespace (flavor extra spec stratus:userns); the
// flavor's disk size enforced on the writable layer (btrfs qgroup), also
// across an agent restart; and nothing left on the host after delete.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, lstatSync, readFileSync, readdirSync, statSync, writeFileSync, rmSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../src/agent/exec.ts';
import { waitConsole as libWaitConsole } from './lib.ts';
import { DEFAULT_CAPS } from '../../src/agent/drivers/container/spec.ts';
import { USERNS_HOST_BASE } from '../../src/agent/drivers/container/userns.ts';
import { leftovers, runcState, skipUnlessRoot, sleep, startPlane, httpInNetns, type Plane } from './lib.ts';

let plane: Plane;

before(async () => {
  if (skipUnlessRoot) return;
  plane = await startPlane({ agent: 'inproc' });
});
after(async () => {
  if (!plane) return;
  const image = join(plane.stateDir, 'disks.img');
  await plane.cleanup();
  // the pool's loop device goes with its last mount
  for (let i = 0; i < 50 && (await run('losetup', ['-j', image])).stdout.trim(); i++) await sleep(100);
  assert.equal((await run('losetup', ['-j', image])).stdout.trim(), '', 'no loop device left on the disk pool');
});

const b64 = (s: string) => Buffer.from(s).toString('base64');

const waitConsole = (id: string, pattern: RegExp, timeoutMs = 60_000) => libWaitConsole(plane, id, pattern, timeoutMs);

/** `key=value` lines the user data printed as `hardening: key=value`. */
function findings(out: string): Record<string, string> {
  const r: Record<string, string> = {};
  // a line may start with the prompt of the shell the init runs on the serial console's input
  for (const m of out.matchAll(/^(?:[^\n]*?# )?hardening: ([\w./-]+)=(.*)$/gm)) r[m[1]!] = m[2]!.trim();
  return r;
}

async function flavor(name: string, disk: number, extraSpecs?: Record<string, string>): Promise<string> {
  const f = await plane.api('POST', '/compute/v2.1/flavors', { flavor: { name: `${name}-${plane.hostname}`, ram: 96, vcpus: 1, disk } });
  assert.equal(f.status, 200, JSON.stringify(f.body));
  if (extraSpecs) {
    const s = await plane.api('POST', `/compute/v2.1/flavors/${f.body.flavor.id}/os-extra_specs`, { extra_specs: extraSpecs });
    assert.equal(s.status, 200, JSON.stringify(s.body));
  }
  return f.body.flavor.id as string;
}

/** A static x86-64 program that calls add_key(NULL, ...) and exits with the errno (the kernel's own answer is EFAULT, 14). */
function addKeyProgram(): Buffer {
  const code = Buffer.from('b8f800000031ff31f631d24531d24531c00f05f7d889c7b83c0000000f05', 'hex');
  const total = 64 + 56 + code.length;
  const eh = Buffer.alloc(64);
  Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]).copy(eh);
  eh.writeUInt16LE(2, 16); // ET_EXEC
  eh.writeUInt16LE(0x3e, 18); // x86-64
  eh.writeUInt32LE(1, 20);
  eh.writeBigUInt64LE(0x400078n, 24); // entry: the code after the headers
  eh.writeBigUInt64LE(64n, 32); // program headers
  eh.writeUInt16LE(64, 52);
  eh.writeUInt16LE(56, 54);
  eh.writeUInt16LE(1, 56);
  const ph = Buffer.alloc(56);
  ph.writeUInt32LE(1, 0); // PT_LOAD
  ph.writeUInt32LE(5, 4); // R+X
  ph.writeBigUInt64LE(0x400000n, 16);
  ph.writeBigUInt64LE(0x400000n, 24);
  ph.writeBigUInt64LE(BigInt(total), 32);
  ph.writeBigUInt64LE(BigInt(total), 40);
  ph.writeBigUInt64LE(0x1000n, 48);
  return Buffer.concat([eh, ph, code]);
}

/** The user data: probes from inside, one `hardening: key=value` line each. */
const PROBE = `#!/bin/sh
say() { echo "hardening: $1=$2"; }
for k in Seccomp Seccomp_filters NoNewPrivs CapEff CapBnd CapPrm CapInh CapAmb Uid; do
  say $k "$(sed -n "s/^$k:[[:space:]]*//p" /proc/self/status | tr -s '\\t' ' ')"
done
printf '%s' '${addKeyProgram().toString('base64')}' | base64 -d > /tmp/addkey && chmod 700 /tmp/addkey
/tmp/addkey; say add_key_errno $?
say kcore_bytes "$(cat /proc/kcore 2>&1 | wc -c)"
say kcore "$(cat /proc/kcore 2>&1 | head -c 100)"
say keys_bytes "$(cat /proc/keys 2>&1 | wc -c)"
say timer_list_bytes "$(cat /proc/timer_list 2>&1 | wc -c)"
say firmware_fs "$(awk '$2 == "/sys/firmware" { print $3 }' /proc/mounts)"
say acpi_fs "$(awk '$2 == "/proc/acpi" { print $3 }' /proc/mounts)"
say proc_sys_write "$( (cat /proc/sys/kernel/hostname > /proc/sys/kernel/hostname) 2>&1 && echo ok)"
say sysrq_write "$( (echo h > /proc/sysrq-trigger) 2>&1 && echo ok)"
say sys_mount "$(awk '$2 == "/sys" { print $4 }' /proc/mounts | cut -d, -f1)"
say sys_write "$( (mkdir /sys/kernel/stratus-probe) 2>&1 && echo ok)"
say mount_tmpfs "$( (mount -t tmpfs probe /mnt) 2>&1 && echo ok)"
say uid_map "$(cat /proc/self/uid_map | tr -s ' ' ' ' | sed 's/^ //')"
say id "$(id -u):$(id -g)"
say busybox_owner "$(stat -c %u:%g /bin/busybox)"
say config_drive "$(sed -n 's/^{"uuid":"\\([0-9a-f-]*\\)".*/\\1/p' /mnt/config/openstack/latest/meta_data.json)"
echo created > /root/owned-file; say root_write $?
say done 1
`;

test('seccomp, no new privileges, capabilities, masked and read-only paths, seen from inside', { skip: skipUnlessRoot }, async () => {
  const id = await plane.createServer({ name: 'hard', user_data: b64(PROBE) });
  await plane.waitStatus(id, ['ACTIVE']);
  const f = findings(await waitConsole(id, /hardening: done=1$/m));
  // Seccomp mode 2 (filter), one filter: the profile, translated
  assert.equal(f.Seccomp, '2');
  assert.equal(f.Seccomp_filters, '1');
  // add_key is not in Podman's profile: the default action answers ENOSYS (38) instead of the kernel's EFAULT
  assert.equal(f.add_key_errno, '38');
  assert.equal(f.NoNewPrivs, '1');
  const mask = capMask(DEFAULT_CAPS);
  assert.equal(BigInt(`0x${f.CapEff}`), mask, `CapEff ${f.CapEff}`);
  assert.equal(BigInt(`0x${f.CapBnd}`), mask, `CapBnd ${f.CapBnd}`);
  assert.equal(BigInt(`0x${f.CapPrm}`), mask, `CapPrm ${f.CapPrm}`);
  assert.equal(BigInt(`0x${f.CapAmb}`), 0n);
  assert.equal(BigInt(`0x${f.CapInh}`), 0n);
  // masked: /dev/null over files, an empty read-only tmpfs over directories (this kernel has no /proc/kcore)
  if (existsSync('/proc/kcore')) assert.equal(f.kcore_bytes, '0', f.kcore);
  else assert.match(f.kcore!, /No such file/);
  assert.ok(readFileSync('/proc/keys', 'utf8').length > 0 && readFileSync('/proc/timer_list', 'utf8').length > 0, 'the host has content there');
  assert.equal(f.keys_bytes, '0');
  assert.equal(f.timer_list_bytes, '0');
  assert.equal(f.firmware_fs, 'tmpfs');
  assert.equal(f.acpi_fs, 'tmpfs');
  // read-only
  assert.match(f.proc_sys_write!, /Read-only file system/);
  if (existsSync('/proc/sysrq-trigger')) assert.match(f.sysrq_write!, /Read-only file system/);
  assert.equal(f.sys_mount, 'ro');
  assert.match(f.sys_write!, /Read-only file system/);
  // no CAP_SYS_ADMIN: no mounts
  assert.match(f.mount_tmpfs!, /denied|not permitted/);
  // no user namespace by default: root is root, the host's own mapping
  assert.equal(f.uid_map, '0 0 4294967295');
  assert.equal(f.config_drive, id);
  // the kernel's view agrees, from the host
  const st = runcState(plane.stateDir, id)!;
  const status = readFileSync(`/proc/${st.pid}/status`, 'utf8');
  assert.match(status, /^Seccomp:\s+2$/m);
  assert.match(status, /^NoNewPrivs:\s+1$/m);
  await deleteServer(id);
});

function capMask(caps: readonly string[]): bigint {
  const bits: Record<string, number> = {
    CAP_CHOWN: 0, CAP_DAC_OVERRIDE: 1, CAP_FOWNER: 3, CAP_FSETID: 4, CAP_KILL: 5, CAP_SETGID: 6, CAP_SETUID: 7, CAP_SETPCAP: 8,
    CAP_NET_BIND_SERVICE: 10, CAP_NET_RAW: 13, CAP_SYS_CHROOT: 18, CAP_MKNOD: 27, CAP_AUDIT_WRITE: 29, CAP_SETFCAP: 31,
  };
  assert.equal(caps.length, 14);
  return caps.reduce((m, c) => m | (1n << BigInt(bits[c]!)), 0n);
}

test('user namespace (stratus:userns=true): root in the container is an unprivileged host id', { skip: skipUnlessRoot }, async () => {
  const fl = await flavor('userns', 0, { 'stratus:userns': 'true' });
  const id = await plane.createServer({ name: 'userns', flavorRef: fl, user_data: b64(PROBE) });
  await plane.waitStatus(id, ['ACTIVE']);
  const f = findings(await waitConsole(id, /hardening: done=1$/m));
  assert.equal(f.uid_map, `0 ${USERNS_HOST_BASE} 65536`);
  assert.equal(f.id, '0:0');
  // the image's files are the container's root's (a shifted copy of the layer), the config drive is readable
  assert.equal(f.busybox_owner, '0:0');
  assert.equal(f.config_drive, id);
  assert.equal(f.root_write, '0');
  // the rest of the hardening holds in the namespace too
  assert.equal(f.Seccomp, '2');
  assert.equal(f.NoNewPrivs, '1');
  assert.equal(f.keys_bytes, '0');
  assert.equal(f.sys_mount, 'ro');
  assert.match(f.mount_tmpfs!, /denied|not permitted/);
  // on the host: the init runs as the mapped id, and what root wrote belongs to it
  const st = runcState(plane.stateDir, id)!;
  assert.match(readFileSync(`/proc/${st.pid}/status`, 'utf8'), new RegExp(`^Uid:\\s+${USERNS_HOST_BASE}\\s`, 'm'));
  const written = statSync(join(plane.stateDir, 'servers', id, 'upper', 'root', 'owned-file'));
  assert.equal(written.uid, USERNS_HOST_BASE);
  assert.equal(written.gid, USERNS_HOST_BASE);
  // the mapped root binds port 80 in the server's namespace (ip_unprivileged_port_start=0 there)
  assert.equal((await httpInNetns(id)).trim(), 'userns');
  await deleteServer(id);
  // its shifted layers stay for the next user-namespaced server (shared by the host); the sweep drops them with the image
  assert.ok(readdirSync(join(plane.stateDir, 'userns', 'layers')).length >= 1);
});

test('flavor disk size: writing past it fails inside (EDQUOT), the host is unaffected; kept across an agent restart; nothing leaks on delete', { skip: skipUnlessRoot }, async () => {
  const fl = await flavor('disk1', 1);
  const fill = `#!/bin/sh
# dd's message in a variable: the disk it would go to is full
err=$(dd if=/dev/zero of=/fill bs=1M count=1200 2>&1); echo "hardening: dd_exit=$?"
echo "hardening: dd_err=$(echo "$err" | grep -v records | head -n 1)"
echo "hardening: fill_mib=$(( $(stat -c %s /fill) / 1048576 ))"
rm -f /fill; sync
dd if=/dev/zero of=/after bs=1M count=8 2>/dev/null; echo "hardening: after_exit=$?"
echo "hardening: done=1"
`;
  const id = await plane.createServer({ name: 'disk', flavorRef: fl, user_data: b64(fill) });
  await plane.waitStatus(id, ['ACTIVE']);
  const dir = join(plane.stateDir, 'servers', id);
  const pool = join(plane.stateDir, 'disks');
  assert.ok(lstatSync(join(dir, 'upper')).isSymbolicLink(), 'upper/ lives in the server\'s subvolume');
  assert.equal(await fsp.realpath(join(dir, 'upper')), join(pool, id, 'upper'));
  const f = findings(await waitConsole(id, /hardening: done=1$/m, 180_000));
  assert.notEqual(f.dd_exit, '0');
  assert.match(f.dd_err!, /Disk quota exceeded/);
  const mib = Number(f.fill_mib);
  assert.ok(mib >= 1000 && mib <= 1024, `wrote ${mib} MiB before the limit of 1 GiB`);
  assert.equal(f.after_exit, '0', 'space freed inside is usable again');
  // the host's file system is not the one that filled up
  const probe = join(plane.stateDir, 'host-write-probe');
  writeFileSync(probe, Buffer.alloc(16 << 20));
  rmSync(probe);
  const limit = await run('btrfs', ['qgroup', 'show', '--raw', '-re', pool]);
  assert.match(limit.stdout, new RegExp(`\\s${2 ** 30}\\s+none\\s+${id}\\s*$`, 'm'), limit.stdout);

  // an agent restart re-adopts the pool (still one mount of it) and the server keeps its limit
  await plane.stopAgent();
  await plane.startAgent('inproc');
  const again = await plane.api('POST', `/compute/v2.1/servers/${id}/action`, { reboot: { type: 'HARD' } });
  assert.equal(again.status, 202);
  await plane.waitStatus(id, ['ACTIVE']);
  assert.equal(mounts(pool).length, 1, 'the pool is mounted once');
  const r = await run('runc', ['--root', join(plane.stateDir, 'runc'), 'exec', id, 'sh', '-c', 'dd if=/dev/zero of=/again bs=1M count=1200 2>&1; rm -f /again']);
  assert.match(r.stdout, /Disk quota exceeded/);

  // a snapshot reads the upper/ in the subvolume
  assert.equal((await run('runc', ['--root', join(plane.stateDir, 'runc'), 'exec', id, 'sh', '-c', 'echo in-the-subvolume > /root/kept'])).code, 0);
  const snap = await plane.api('POST', `/compute/v2.1/servers/${id}/action`, { createImage: { name: 'disk-snap' } });
  assert.equal(snap.status, 202, JSON.stringify(snap.body));
  let img: any;
  for (let i = 0; i < 300; i++) {
    img = (await plane.api('GET', `/image/v2/images/${snap.body.image_id}`)).body;
    if (img.status === 'active' || img.status === 'killed') break;
    await sleep(100);
  }
  assert.equal(img.status, 'active');
  const file = await fetch(`${plane.cloud.url}/image/v2/images/${snap.body.image_id}/file`, { headers: { 'x-auth-token': plane.token } });
  const tmp = join(plane.stateDir, 'snap-check');
  await fsp.mkdir(tmp);
  writeFileSync(join(tmp, 'image.tar'), Buffer.from(await file.arrayBuffer()));
  const inLayers = await run('sh', ['-c', 'cd "$0" && tar -xf image.tar && for b in blobs/sha256/*; do gzip -dc "$b" 2>/dev/null; done | grep -ac in-the-subvolume', tmp]);
  assert.equal(inLayers.stdout.trim(), '1', 'the file written in the subvolume is in the snapshot');
  rmSync(tmp, { recursive: true, force: true });
  // rebuild: a fresh subvolume with the same limit
  const rb = await plane.api('POST', `/compute/v2.1/servers/${id}/action`, { rebuild: { imageRef: plane.imageId } });
  assert.equal(rb.status, 202, JSON.stringify(rb.body));
  await plane.waitStatus(id, ['ACTIVE']);
  assert.ok(!existsSync(join(pool, id, 'upper', 'root', 'kept')), 'the old disk is gone');
  assert.ok(lstatSync(join(dir, 'upper')).isSymbolicLink());
  assert.match((await run('btrfs', ['qgroup', 'show', '--raw', '-re', pool])).stdout, new RegExp(`\\s${2 ** 30}\\s+none\\s+${id}\\s*$`, 'm'));

  await deleteServer(id);
  assert.ok(!existsSync(join(pool, id)), 'the subvolume is gone');
  assert.equal((await run('timeout', ['60', 'btrfs', 'subvolume', 'sync', pool])).code, 0, 'the deleted subvolumes are cleaned up (nothing holds them)');
  const qgroups = await run('btrfs', ['qgroup', 'show', '--raw', '-r', pool]);
  assert.deepEqual(qgroups.stdout.split('\n').filter((l) => /^0\/\d+/.test(l) && !l.startsWith('0/5 ')), [], 'no qgroup left: ' + qgroups.stdout);
});

test('disk 0: no limit, upper/ is a plain directory of the host', { skip: skipUnlessRoot }, async () => {
  const id = await plane.createServer({ name: 'nolimit' });
  await plane.waitStatus(id, ['ACTIVE']);
  const upper = lstatSync(join(plane.stateDir, 'servers', id, 'upper'));
  assert.ok(upper.isDirectory() && !upper.isSymbolicLink());
  assert.ok(!existsSync(join(plane.stateDir, 'disks', id)));
  await deleteServer(id);
});

function mounts(path: string): string[] {
  return readFileSync('/proc/self/mounts', 'utf8').split('\n').filter((l) => l.split(' ')[1] === path);
}

async function deleteServer(id: string): Promise<void> {
  const d = await plane.api('DELETE', `/compute/v2.1/servers/${id}`);
  assert.equal(d.status, 204);
  await plane.waitGone(id);
  assert.deepEqual(leftovers(plane.stateDir, id), []);
}
