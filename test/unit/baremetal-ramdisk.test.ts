// The conductor's pure parts and the deploy ramdisk's shell helpers, run with
// the host's busybox: the iPXE scripts, the ramdisk's commands and reports
// (what a ramdisk may send is checked), the inventory from a sysfs/procfs
// tree, the MBR partition the config drive goes into, the metadata erase.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chainScript, localBootScript, macFromPath, ramdiskScript } from '../../src/agent/drivers/baremetal/ipxe.ts';
import { parseReport, renderCommand } from '../../src/agent/drivers/baremetal/ramdisk/protocol.ts';
import { RAMDISK_FUNCTIONS } from '../../src/agent/drivers/baremetal/ramdisk/scripts.ts';
import { isolinuxConfig, ramdiskCmdline } from '../../src/agent/drivers/baremetal/ramdisk/build.ts';
import { run } from '../../src/agent/exec.ts';

test('iPXE: the chain by MAC, the ramdisk with its parameters, the local boot', () => {
  assert.equal(chainScript('http://10.0.0.1:6386'), '#!ipxe\nchain http://10.0.0.1:6386/ipxe/${netX/mac:hexhyp} || exit\n');
  const cmdline = ramdiskCmdline('http://10.0.0.1:6386', 'n1', 'tok');
  assert.match(cmdline, /stratus\.callback=http:\/\/10\.0\.0\.1:6386 stratus\.node=n1 stratus\.token=tok$/);
  const s = ramdiskScript('http://10.0.0.1:6386', cmdline);
  assert.match(s, /^#!ipxe\nkernel http:\/\/10\.0\.0\.1:6386\/ramdisk\/vmlinuz console=.* stratus\.token=tok BOOTIF=\$\{netX\/mac\} \|\| goto fail\ninitrd http:\/\/10\.0\.0\.1:6386\/ramdisk\/initrd\.img/);
  assert.match(s, /chain --replace --autofree http:\/\/10\.0\.0\.1:6386\/ipxe\/\$\{netX\/mac:hexhyp\}/);
  assert.match(localBootScript(), /^#!ipxe\n[^]*\nexit\n$/);
  assert.equal(macFromPath('52-54-00-AB-cd-01'), '52:54:00:ab:cd:01');
  assert.equal(macFromPath('52-54-00-ab-cd'), null);
  assert.match(isolinuxConfig(cmdline), /APPEND .*stratus\.node=n1/);
});

test('ramdisk commands: key=value lines; a value that could break the shell is refused', () => {
  assert.equal(renderCommand({ op: 'deploy', id: 'op-1', image_size: 1024, image_sha256: 'ab'.repeat(32), configdrive_size: 0 }),
    `op=deploy\nid=op-1\nimage_size=1024\nimage_sha256=${'ab'.repeat(32)}\nconfigdrive_size=0\n`);
  assert.equal(renderCommand({ op: 'rescue', id: 'x', rescue_password_hash: '$6$salt$abc/def.' }), 'op=rescue\nid=x\nrescue_password_hash=$6$salt$abc/def.\n');
  for (const bad of ['a\nop=poweroff', 'a b', '`x`', "a'b", 'a;b']) assert.throws(() => renderCommand({ op: 'inspect', id: bad }), /cannot take/);
});

test('ramdisk reports: checked and trimmed; an unknown phase is the ramdisk\'s', () => {
  const r = parseReport({
    op_id: 'o', status: 'ok', phase: 'inspect', message: 'x\u0000y',
    inventory: { cpus: 2, cpu_arch: 'x86_64', memory_mb: 500, disks: [{ name: '/dev/vda', size_bytes: 10 }, { name: '/dev/vdb', size_bytes: 20, model: 'm' }, 'junk'],
      nics: [{ name: 'eth0', mac: '52:54:00:AA:BB:CC', has_carrier: true }, { name: 'eth1', mac: 'nope' }], boot_mac: '52:54:00:aa:bb:cc', extra: 1 },
  });
  assert.equal(r.message, 'x y');
  assert.deepEqual(r.inventory, {
    cpus: 2, cpu_arch: 'x86_64', memory_mb: 500, disks: [{ name: '/dev/vdb', size_bytes: 20, model: 'm' }, { name: '/dev/vda', size_bytes: 10 }],
    nics: [{ name: 'eth0', mac: '52:54:00:aa:bb:cc', has_carrier: true }], boot_mac: '52:54:00:aa:bb:cc',
  });
  assert.equal(parseReport({ op_id: 'o', status: 'running', phase: 'power_on', message: 'm' }).phase, 'ramdisk');
  for (const bad of [null, 'x', { status: 'ok' }, { op_id: 'o', status: 'done' }]) assert.throws(() => parseReport(bad));
});

const busybox = async (dir: string, script: string, env: Record<string, string> = {}) => {
  writeFileSync(join(dir, 'f.sh'), RAMDISK_FUNCTIONS);
  const r = await run('/bin/busybox', ['sh', '-c', `. ${join(dir, 'f.sh')}; ${script}`], { env: { ...process.env, PATH: '/usr/sbin:/usr/bin:/sbin:/bin', ...env } });
  assert.equal(r.code, 0, `${script}: ${r.stderr}`);
  return r.stdout;
};

test('ramdisk shell: the inventory from sysfs and procfs; command values; the kernel command line', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bm-ramdisk-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const sys = join(dir, 'sys'), proc = join(dir, 'proc');
  const f = (p: string, text: string) => {
    mkdirSync(join(p, '..'), { recursive: true });
    writeFileSync(p, text);
  };
  f(join(sys, 'block/vda/size'), '524288\n');
  f(join(sys, 'block/vda/queue/rotational'), '0\n');
  f(join(sys, 'block/vda/serial'), 'disk"one\n');
  f(join(sys, 'block/sda/size'), '1048576\n');
  f(join(sys, 'block/sda/queue/rotational'), '1\n');
  f(join(sys, 'block/sda/device/model'), 'QEMU HARDDISK   \n');
  f(join(sys, 'block/loop0/size'), '100\n');
  f(join(sys, 'block/sr0/size'), '100\n');
  f(join(sys, 'class/net/eth0/address'), '52:54:00:12:34:56\n');
  f(join(sys, 'class/net/eth0/carrier'), '1\n');
  mkdirSync(join(sys, 'class/net/eth0/device'));
  f(join(sys, 'class/net/lo/address'), '00:00:00:00:00:00\n');
  symlinkSync('/nonexistent', join(sys, 'class/net/lo/device'));
  f(join(proc, 'cpuinfo'), 'processor\t: 0\nmodel name\t: x\n\nprocessor\t: 1\n');
  f(join(proc, 'meminfo'), 'MemTotal:         500000 kB\nMemFree: 1 kB\n');
  const out = await busybox(dir, 'BOOTIF=01-52-54-00-12-34-56 inventory', { SYSFS: sys, PROCFS: proc });
  const inv = JSON.parse(out);
  assert.equal(inv.cpus, 2);
  assert.equal(inv.memory_mb, 489);
  assert.deepEqual(inv.disks, [
    { name: '/dev/sda', size_bytes: 536870912, rotational: true, model: 'QEMU HARDDISK' },
    { name: '/dev/vda', size_bytes: 268435456, rotational: false, serial: 'diskone' },
  ]);
  assert.deepEqual(inv.nics, [{ name: 'eth0', mac: '52:54:00:12:34:56', has_carrier: true }]);
  assert.equal(inv.boot_mac, '52:54:00:12:34:56');
  assert.deepEqual(parseReport({ op_id: 'o', status: 'ok', phase: 'inspect', message: '', inventory: inv }).inventory?.disks.length, 2);

  writeFileSync(join(dir, 'cmd'), 'op=deploy\nid=abc\nimage_size=42\n');
  assert.equal(await busybox(dir, `val image_size ${join(dir, 'cmd')}; val id ${join(dir, 'cmd')}`), '42\nabc\n');
  writeFileSync(join(dir, 'cmdline'), 'console=ttyS0 stratus.callback=http://1.2.3.4:6386 stratus.node=n-1 stratus.token=t0k BOOTIF=01-aa\n');
  assert.equal(await busybox(dir, 'cmdline_arg stratus.callback; cmdline_arg stratus.token; cmdline_arg stratus.nope', { CMDLINE: join(dir, 'cmdline') }), 'http://1.2.3.4:6386\nt0k\n');
  assert.equal(await busybox(dir, 'jstr \'a"b\\c\''), '"a\\"b\\\\c"');
});

test('ramdisk shell: a config drive partition after the MBR ones; GPT refused; the metadata erase', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bm-ramdisk-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const disk = join(dir, 'disk');
  const mib = 1 << 20;
  const b = Buffer.alloc(8 * mib, 0xaa);
  b.fill(0, 440, 512);
  // partition 1: sectors 2048..(2048+4096), type 0x0e
  b[446 + 4] = 0x0e;
  b.writeUInt32LE(2048, 446 + 8);
  b.writeUInt32LE(4096, 446 + 12);
  b[510] = 0x55; b[511] = 0xaa;
  writeFileSync(disk, b);
  assert.equal(await busybox(dir, `partitions_end ${disk}`), '6144\n');
  assert.equal(await busybox(dir, `add_partition ${disk} 14336 2048 131`), '2\n');
  const d = readFileSync(disk);
  assert.equal(d[446 + 16 + 4], 0x83);
  assert.equal(d.readUInt32LE(446 + 16 + 8), 14336);
  assert.equal(d.readUInt32LE(446 + 16 + 12), 2048);
  assert.equal(d[446 + 4], 0x0e, 'the first entry is kept');
  assert.equal(await busybox(dir, `partitions_end ${disk}`), '16384\n');
  // a protective MBR (GPT): refused
  const gpt = join(dir, 'gpt');
  const g = Buffer.alloc(mib);
  g[446 + 4] = 0xee; g[510] = 0x55; g[511] = 0xaa;
  writeFileSync(gpt, g);
  const r = await run('/bin/busybox', ['sh', '-c', `. ${join(dir, 'f.sh')}; add_partition ${gpt} 100 100 131`]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /GPT/);
  // erase: the first and last MiB zeroed, the middle kept
  const e = join(dir, 'erase');
  writeFileSync(e, Buffer.alloc(5 * mib + 4096, 0xaa));
  await busybox(dir, `erase_metadata ${e}`);
  const x = readFileSync(e);
  assert.ok(x.subarray(0, mib).every((v) => v === 0));
  assert.ok(x.subarray(mib, 4 * mib).every((v) => v === 0xaa));
  assert.ok(x.subarray(4 * mib).every((v) => v === 0), 'the last MiB and the tail');
});
