// The small VM image's pieces that need no VM: the newc cpio writer (read back
// by busybox cpio), the MBR partition entry, and the guest's shell functions
// and scripts (run and syntax-checked by the host's busybox sh).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runOk } from '../../src/agent/exec.ts';
import { cpioArchive, cpioName } from '../../src/agent/drivers/vm/guest/cpio.ts';
import { mbrPartitionTable, syslinuxConfig } from '../../src/agent/drivers/vm/guest/disk.ts';
import { BLKID, CURL, ETC_FILES, FUNCTIONS_SH, KERNEL_CMDLINE, LSBLK, MARKER, RCS, SUDO } from '../../src/agent/drivers/vm/guest/scripts.ts';

const BUSYBOX = '/bin/busybox';
const dir = mkdtempSync(join(tmpdir(), 'stratus-vmguest-unit-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('cpio: busybox cpio lists and extracts what the writer wrote (names of every padding length)', async () => {
  const names = ['a', 'ab', 'abc', 'abcd', 'abcde', 'abcdef', 'abcdefg', 'abcdefgh'];
  const archive = cpioArchive([
    { name: 'd', type: 'dir', mode: 0o750 },
    ...names.map((n, i) => ({ name: `d/${n}`, type: 'file' as const, mode: 0o640, data: 'x'.repeat(i) })),
    { name: 'd/bin', type: 'file', mode: 0o755, data: Buffer.from([0, 1, 2, 255]) },
    { name: 'd/link', type: 'symlink', target: '/bin/busybox' },
    { name: 'd/empty', type: 'dir' },
  ]);
  const file = join(dir, 'a.cpio');
  writeFileSync(file, archive);
  const listed = (await runOk('sh', ['-c', `${BUSYBOX} cpio -t < '${file}'`])).stdout.trim().split('\n');
  assert.deepEqual(listed, ['d', ...names.map((n) => `d/${n}`), 'd/bin', 'd/link', 'd/empty']);
  const out = join(dir, 'x');
  await runOk('sh', ['-c', `mkdir -p '${out}' && cd '${out}' && ${BUSYBOX} cpio -i -d < '${file}'`]);
  names.forEach((n, i) => assert.equal(readFileSync(join(out, 'd', n), 'utf8'), 'x'.repeat(i)));
  assert.deepEqual([...readFileSync(join(out, 'd', 'bin'))], [0, 1, 2, 255]);
  assert.equal(statSync(join(out, 'd', 'bin')).mode & 0o777, 0o755);
  assert.equal(statSync(join(out, 'd', 'a')).mode & 0o777, 0o640);
  assert.equal(readlinkSync(join(out, 'd', 'link')), '/bin/busybox');
  assert.ok(statSync(join(out, 'd', 'empty')).isDirectory());
});

test('cpio: device nodes carry their major and minor; names are normalised and checked', async () => {
  const file = join(dir, 'dev.cpio');
  writeFileSync(file, cpioArchive([{ name: '/dev/', type: 'dir' }, { name: './dev/console', type: 'char', mode: 0o600, major: 5, minor: 1 }]));
  const listed = (await runOk('sh', ['-c', `${BUSYBOX} cpio -tv < '${file}'`])).stdout;
  assert.match(listed, /^crw------- 0\/0 .* dev\/console$/m);
  // the second header (dev/console): mode, then rdevmajor and rdevminor (fields 2, 10 and 11 of 13)
  const a0 = readFileSync(file);
  const second = a0.indexOf('070701', 6);
  const field = (i: number) => parseInt(a0.subarray(second + 6 + i * 8, second + 14 + i * 8).toString(), 16);
  assert.deepEqual([field(1), field(9), field(10)], [0o020600, 5, 1]);
  assert.equal(cpioName('/a//b/./c'), 'a/b/c');
  assert.throws(() => cpioName('a/../b'), /bad cpio entry name/);
  assert.throws(() => cpioName('/'), /bad cpio entry name/);
  assert.throws(() => cpioArchive([{ name: 'a', type: 'dir' }, { name: '/a', type: 'dir' }]), /given twice/);
  // the header of the trailer: magic, and namesize 11 ("TRAILER!!!" and its NUL)
  const a = cpioArchive([]);
  assert.equal(a.subarray(0, 6).toString(), '070701');
  assert.equal(a.subarray(94, 102).toString(), '0000000b');
  assert.equal(a.length % 4, 0);
});

test('MBR: partition entries with LBA start and size, the active flag, and the boot signature', () => {
  const t = mbrPartitionTable([{ start: 2048, sectors: 40960, type: 0x0e, active: true }, { start: 43008, sectors: 100, type: 0x83 }], 0x12345678);
  assert.equal(t.length, 72);
  assert.equal(t.readUInt32LE(0), 0x12345678);
  assert.equal(t[6], 0x80);
  assert.equal(t[10], 0x0e);
  assert.equal(t.readUInt32LE(14), 2048);
  assert.equal(t.readUInt32LE(18), 40960);
  assert.deepEqual([t[22], t[26], t.readUInt32LE(30), t.readUInt32LE(34)], [0, 0x83, 43008, 100]);
  assert.equal(t[38], 0); // no third entry
  assert.deepEqual([t[70], t[71]], [0x55, 0xaa]);
  assert.match(syslinuxConfig(KERNEL_CMDLINE), /^ {2}APPEND console=tty0 console=ttyS0,115200n8 /m);
});

/** Runs `script` in busybox sh with the guest's functions.sh loaded. */
async function withFunctions(script: string): Promise<string> {
  const f = join(dir, 'functions.sh');
  writeFileSync(f, FUNCTIONS_SH);
  return (await runOk(BUSYBOX, ['sh', '-c', `. '${f}'; ${script}`])).stdout;
}

test('guest functions: SSH keys and host name from a Nova meta_data.json, user data as a script', async () => {
  const md = join(dir, 'meta_data.json');
  const k1 = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE/x+y k1@host';
  const k2 = 'ecdsa-sha2-nistp256 AAAAE2VjZHNh/LXN= k2';
  // as Nova writes it (public_keys and keys repeat each key, a trailing \n), plus an escaped slash
  writeFileSync(md, JSON.stringify({ uuid: 'u-1', hostname: 'vm1.novalocal', name: 'vm1', public_keys: { k1: `${k1}\n`, k2 }, keys: [{ name: 'k1', type: 'ssh', data: `${k1}\n` }] }).replace('E/x', 'E\\/x'));
  assert.deepEqual((await withFunctions(`ssh_keys '${md}'`)).trim().split('\n'), [k1, k2]);
  assert.equal((await withFunctions(`json_str hostname '${md}'`)).trim(), 'vm1.novalocal');
  assert.equal((await withFunctions(`json_str name '${md}'`)).trim(), 'vm1');
  assert.equal((await withFunctions(`json_str uuid '${md}'`)).trim(), 'u-1');
  assert.equal((await withFunctions(`ssh_keys '${join(dir, 'missing')}'; echo end`)).trim(), 'end');
  writeFileSync(join(dir, 'ud1'), '#!/bin/sh\necho hi\n');
  writeFileSync(join(dir, 'ud2'), '#cloud-config\n');
  writeFileSync(join(dir, 'ud3'), '');
  assert.equal((await withFunctions(`for f in ud1 ud2 ud3 ud4; do is_script '${dir}'/$f && echo $f; done; true`)).trim(), 'ud1');
  assert.ok(FUNCTIONS_SH.includes(`echo "${MARKER} $*"`));
});

test('guest scripts: every shell script parses (busybox sh -n); rcS prints the ready marker after dropbear', async () => {
  for (const [name, text] of ETC_FILES) {
    if (!text.startsWith('#!/bin/sh') && !name.endsWith('.sh')) continue;
    const f = join(dir, name.replace(/\//g, '_'));
    writeFileSync(f, text);
    await runOk(BUSYBOX, ['sh', '-n', f]);
  }
  assert.ok(!RCS.includes('\\${'), 'no escaped substitution left in the script text');
  assert.ok(RCS.indexOf('dropbear -r') < RCS.indexOf('say "ready'), 'ready comes after dropbear starts');
});

// The commands Tempest's remote client runs in a guest (sudo, curl, lsblk, blkid), run by the host's busybox
// with busybox's applets first on PATH, as in the guest.
test('guest tools: sudo runs its command, curl GETs and POSTs through wget, lsblk lines up its TYPE column, blkid -L asks findfs', async (t) => {
  const bin = join(dir, 'tools');
  await runOk('sh', ['-c', `mkdir -p '${bin}' && ${BUSYBOX} --install -s '${bin}'`]);
  for (const [name, text] of [['sudo', SUDO], ['curl', CURL], ['lsblk', LSBLK], ['blkid', BLKID]] as const) {
    rmSync(join(bin, name), { force: true });
    writeFileSync(join(bin, name), text, { mode: 0o755 });
  }
  const run = async (cmd: string) => (await runOk(`${bin}/sh`, ['-c', cmd], { env: { PATH: bin } })).stdout;
  assert.equal(await run('sudo echo a b'), 'a b\n');
  assert.equal(await run('sudo -u root -- echo c'), 'c\n');
  assert.equal(await run('sudo -u nobody echo c 2>/dev/null || echo refused'), 'refused\n');

  const { createServer } = await import('node:http');
  const posted: string[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => { body += c; });
    req.on('end', () => {
      if (req.method === 'POST') posted.push(body);
      res.writeHead(req.url === '/missing' ? 404 : 200, { 'content-type': 'text/plain' });
      res.end(req.url === '/missing' ? 'no' : `${req.method} ${req.url}`);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => server.close());
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  assert.equal(await run(`curl ${url}/latest/meta-data/public-ipv4`), 'GET /latest/meta-data/public-ipv4');
  assert.equal(await run(`curl -X POST -d abc123 ${url}/openstack/2013-10-17/password`), 'POST /openstack/2013-10-17/password');
  assert.deepEqual(posted, ['abc123']);
  assert.equal(await run(`curl ${url}/missing; echo " $?"`), ' 0\n', 'an HTTP error is exit status 0 without -f, as curl');
  assert.equal(await run(`curl -f ${url}/missing || echo failed`), 'failed\n');
  assert.equal(await run('curl -k https://x 2>/dev/null; echo $?'), '2\n', 'an option it does not do is refused');

  // the host's /sys/block: the header's TYPE column is where every line's type is (Tempest's get_disks reads it so)
  const lines = (await run('lsblk -lb --nodeps')).trimEnd().split('\n');
  const pos = lines[0]!.indexOf('TYPE');
  assert.ok(pos > 0, lines[0]);
  for (const l of lines.slice(1)) assert.match(l.slice(pos, pos + 4), /^(disk|rom )$/, l);
  assert.equal(await run('lsblk --tree 2>/dev/null; echo $?'), '2\n');
  assert.equal(await run('blkid -L no-such-label-here -o device; echo $?'), '2\n');
  assert.equal(await run('blkid /dev/vda 2>/dev/null; echo $?'), '2\n');
});
