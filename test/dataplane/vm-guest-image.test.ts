// The small VM image (stratus-tiny, docs/guest-images.md) in plain QEMU under
// TCG with user-mode networking: built (or taken from the cache under
// /var/cache/stratus/guest), booted from a qcow2 overlay on it, once with a
// config drive (a `config-2` ISO as a SATA CD-ROM) and once with a metadata
// service (a small HTTP server the guest reaches at 169.254.169.254 through
// QEMU's guestfwd). Each boot must lease its address, take its host name and
// SSH key, run its user-data script, answer SSH (OpenSSH's client through a
// hostfwd port), run what Tempest's remote client runs in a guest (lsblk, blkid -L
// and a sudo mount of the config drive, curl GET and POST to the metadata service)
// and power off on QMP's system_powerdown, after which QEMU exits.
// Then `importTinyImage` (what `stratus up` runs) uploads it to a cloud's Glance.
// QEMU is killed by its PID and the temp dir removed also when a step fails.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { run, runOk } from '../../src/agent/exec.ts';
import { importTinyImage } from '../../src/agent/image-import.ts';
import { buildTinyImage, TINY_IMAGE_NAME, type TinyImage } from '../../src/agent/drivers/vm/guest/tiny-image.ts';
import { READY_MARKER } from '../../src/agent/drivers/vm/guest/scripts.ts';
import { startCloud } from '../harness.ts';
import { freePort, skipUnlessRoot, sleep } from './lib.ts';

const QEMU = 'qemu-system-x86_64';
const hasQemu = ['/usr/bin', '/usr/local/bin'].some((d) => existsSync(join(d, QEMU)));
const skip = skipUnlessRoot || (hasQemu ? false : `${QEMU} is not installed`);
/** Generous: a loaded 2-core CI box under TCG. Not a timing assertion, only how long to wait. */
const BOOT_WAIT_MS = 180_000;

const dir = mkdtempSync(join(tmpdir(), 'stratus-vmguest-'));
const started: ChildProcess[] = [];
let image: TinyImage;

before(async () => {
  if (skip) return;
  image = await buildTinyImage();
  await runOk('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'vmguest-test', '-f', join(dir, 'id')]);
});
after(() => {
  for (const p of started) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

interface Guest {
  proc: ChildProcess;
  serial: string;
  qmp: string;
  sshPort: number;
  exited: Promise<number | null>;
}

async function boot(name: string, o: { configDrive?: string; netdev?: string }): Promise<Guest> {
  const gdir = join(dir, name);
  mkdirSync(gdir);
  const overlay = join(gdir, 'disk.qcow2');
  await runOk('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', image.disk, '-F', 'qcow2', overlay]);
  const sshPort = await freePort();
  const serial = join(gdir, 'serial.log');
  const qmp = join(gdir, 'qmp.sock');
  const args = [
    '-machine', 'q35', '-accel', 'tcg', '-cpu', 'max', '-m', '256', '-smp', '1',
    '-drive', `file=${overlay},if=virtio,format=qcow2`,
    ...(o.configDrive ? ['-drive', `file=${o.configDrive},media=cdrom,format=raw,readonly=on`] : []),
    '-netdev', `user,id=n0,hostfwd=tcp:127.0.0.1:${sshPort}-:22${o.netdev ?? ''}`, '-device', 'virtio-net-pci,netdev=n0',
    '-display', 'none', '-serial', `file:${serial}`, '-qmp', `unix:${qmp},server=on,wait=off`, '-no-reboot',
  ];
  const proc = spawn(QEMU, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  started.push(proc);
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  void exited.then((code) => { if (code) process.stderr.write(`qemu ${name} exited ${code}: ${stderr}\n`); });
  return { proc, serial, qmp, sshPort, exited };
}

function serialText(g: Guest): string {
  return existsSync(g.serial) ? readFileSync(g.serial, 'utf8').replace(/\r/g, '') : '';
}

async function waitSerial(g: Guest, pattern: RegExp): Promise<RegExpMatchArray> {
  const deadline = Date.now() + BOOT_WAIT_MS;
  for (;;) {
    const m = serialText(g).match(pattern);
    if (m) return m;
    if (g.proc.exitCode !== null || Date.now() > deadline) {
      assert.fail(`no ${pattern} on the serial console (qemu ${g.proc.exitCode === null ? 'running' : `exited ${g.proc.exitCode}`}); its end:\n${serialText(g).slice(-3000)}`);
    }
    await sleep(200);
  }
}

/** A few lines of QMP: the greeting, qmp_capabilities, then `command`; resolves with the command's reply. */
function qmpCommand(socket: string, command: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const s = connect(socket);
    let buf = '';
    let sent = 0;
    s.setEncoding('utf8');
    s.on('error', reject);
    s.on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const msg = JSON.parse(buf.slice(0, nl)) as Record<string, unknown>;
        buf = buf.slice(nl + 1);
        if ('QMP' in msg) { s.write('{"execute":"qmp_capabilities"}\n'); sent = 1; }
        else if (('return' in msg || 'error' in msg) && sent === 1) { s.write(`${JSON.stringify({ execute: command })}\n`); sent = 2; }
        else if (('return' in msg || 'error' in msg) && sent === 2) { s.end(); resolve(msg); }
      }
    });
  });
}

async function ssh(g: Guest, command: string): Promise<string> {
  const args = ['-i', join(dir, 'id'), '-p', String(g.sshPort), '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
    '-o', 'ConnectTimeout=20', '-o', 'LogLevel=ERROR', 'root@127.0.0.1', command];
  let last = '';
  for (let i = 0; i < 5; i++) {
    const r = await run('ssh', args, { timeoutMs: 60_000 });
    if (r.code === 0) return r.stdout;
    last = r.stderr;
    await sleep(1000);
  }
  assert.fail(`ssh ${command}: ${last}`);
}

function metaData(hostname: string, uuid: string): string {
  const key = readFileSync(join(dir, 'id.pub'), 'utf8').trim();
  // as Nova writes it: one line, the key also under "keys", a trailing \n in the key
  return JSON.stringify({ uuid, name: hostname, hostname: `${hostname}.novalocal`, launch_index: 0, availability_zone: 'nova',
    public_keys: { vmguest: `${key}\n` }, keys: [{ name: 'vmguest', type: 'ssh', data: `${key}\n` }], meta: {}, project_id: 'p' });
}

const userData = (marker: string) => `#!/bin/sh\necho "${marker} on $(hostname) as $(id -u)"\n`;

/** The guest's own lines about its boot (with their uptimes), for the test's log. */
function timeline(g: Guest): string {
  return serialText(g).split('\n').filter((l) => l.includes('stratus-guest:')).map((l) => l.slice(l.indexOf('stratus-guest:'))).join('\n');
}

/** A command as Tempest's remote client runs it in a guest: after its [validation] ssh_shell_prologue. */
const tempestSsh = (g: Guest, command: string) => ssh(g, `set -eu -o pipefail; PATH=$PATH:/sbin:/usr/sbin; ${command}`);

/** What Tempest's remote client reads in a guest (tempest/common/utils/linux/remote_client.py): disks, uptime, CPUs. */
async function checkTempestCommands(g: Guest): Promise<void> {
  const lines = (await tempestSsh(g, 'lsblk -lb --nodeps')).trimEnd().split('\n');
  const pos = lines[0]!.indexOf('TYPE');
  const disks = lines.slice(1).filter((l) => l.slice(pos, pos + 4) === 'disk').map((l) => l.split(/\s+/)[0]);
  assert.deepEqual(disks, ['vda'], lines.join('\n'));
  assert.match(await tempestSsh(g, 'cut -f1 -d. /proc/uptime'), /^\d+\n$/);
  assert.equal(await tempestSsh(g, 'grep -c ^processor /proc/cpuinfo'), '1\n');
  assert.equal(await tempestSsh(g, 'sudo sh -c "echo hello >/dev/null" && echo ok'), 'ok\n');
}

async function checkGuest(g: Guest, hostname: string, marker: string, source: RegExp, more?: () => Promise<void>): Promise<void> {
  const lease = await waitSerial(g, /stratus-guest: eth0 leased (\d+\.\d+\.\d+\.\d+)\/(\d+)/);
  assert.ok(lease[1], 'an address leased');
  await waitSerial(g, source);
  await waitSerial(g, new RegExp(`stratus-guest: hostname ${hostname}\\b`));
  await waitSerial(g, /stratus-guest: installed 1 SSH key\(s\) for root/);
  await waitSerial(g, new RegExp(READY_MARKER));
  await waitSerial(g, new RegExp(`${marker} on ${hostname} as 0`));
  await waitSerial(g, /stratus-guest: user data exited with 0/);
  // SSH with the injected key, through the hostfwd port
  const out = await ssh(g, 'hostname; cat /root/.ssh/authorized_keys | wc -l');
  assert.deepEqual(out.trim().split('\n').map((s) => s.trim()), [hostname, '1']);
  await checkTempestCommands(g);
  await more?.();
  // ACPI power-down: the guest powers off and QEMU exits by itself
  const reply = await qmpCommand(g.qmp, 'system_powerdown');
  assert.deepEqual(reply, { return: {} });
  await waitSerial(g, /stratus-guest: ACPI power button: powering off/);
  console.log(timeline(g));
  let timer: NodeJS.Timeout | undefined;
  const code = await Promise.race([g.exited, new Promise<'still running'>((r) => { timer = setTimeout(() => r('still running'), BOOT_WAIT_MS); })]);
  clearTimeout(timer);
  assert.equal(code, 0, 'qemu exited after the guest powered off');
}

test('the tiny image boots with a config drive: lease, key, user data, SSH, ACPI power-off', { skip, timeout: 600_000 }, async () => {
  const cd = join(dir, 'config-drive');
  mkdirSync(join(cd, 'openstack', 'latest'), { recursive: true });
  writeFileSync(join(cd, 'openstack', 'latest', 'meta_data.json'), metaData('tiny-cd', randomUUID()));
  writeFileSync(join(cd, 'openstack', 'latest', 'user_data'), userData('vmguest-cd-marker'));
  const iso = join(dir, 'config-2.iso');
  await runOk('genisoimage', ['-quiet', '-V', 'config-2', '-r', '-J', '-o', iso, cd]);
  const g = await boot('cd', { configDrive: iso });
  try {
    await checkGuest(g, 'tiny-cd', 'vmguest-cd-marker', /stratus-guest: metadata from the config drive \/dev\/sr0/, async () => {
      // Tempest's mount_config_drive: blkid -L, sudo mount, the files, sudo umount
      assert.equal(await tempestSsh(g, 'blkid -L config-2 -o device'), '/dev/sr0\n');
      const md = await tempestSsh(g, 'sudo mount /dev/sr0 /mnt && sudo cat /mnt/openstack/latest/meta_data.json && sudo umount /mnt');
      assert.equal(JSON.parse(md).hostname, 'tiny-cd.novalocal');
    });
  } finally {
    if (g.proc.exitCode === null) g.proc.kill('SIGKILL');
  }
});

test('the tiny image boots with the metadata service at 169.254.169.254', { skip, timeout: 600_000 }, async () => {
  // the guest's 169.254.169.254:80 is forwarded by QEMU to a command per connection, which relays to this server's socket
  const sock = join(dir, 'md.sock');
  const requests: string[] = [];
  const posted: string[] = [];
  const md = metaData('tiny-md', randomUUID());
  const server = createHttpServer((req, res) => {
    requests.push(req.url ?? '');
    if (req.method === 'POST') {
      let body = '';
      req.on('data', (c: Buffer) => { body += c; });
      req.on('end', () => { posted.push(`${req.url} ${body}`); res.end(); });
      return;
    }
    if (req.url === '/openstack/latest/meta_data.json') res.end(md);
    else if (req.url === '/latest/meta-data/local-ipv4') res.end('10.0.2.15');
    else if (req.url === '/openstack/latest/user_data') res.end(userData('vmguest-md-marker'));
    else { res.statusCode = 404; res.end(); }
  });
  await new Promise<void>((r) => server.listen(sock, r));
  const relay = join(dir, 'md-relay.sh');
  writeFileSync(relay, `#!/bin/sh\nexec '${process.execPath}' -e 'const s=require("net").connect(process.argv[1]);process.stdin.pipe(s);s.pipe(process.stdout);s.on("error",()=>process.exit(1))' '${sock}'\n`, { mode: 0o755 });
  const g = await boot('md', { netdev: `,net=169.254.0.0/16,host=169.254.0.2,dhcpstart=169.254.0.15,guestfwd=tcp:169.254.169.254:80-cmd:${relay}` });
  try {
    await checkGuest(g, 'tiny-md', 'vmguest-md-marker', /stratus-guest: metadata from the metadata service http:\/\/169\.254\.169\.254\/openstack\/latest/, async () => {
      // Tempest's test_server_basic_ops: curl the EC2 metadata, then POST the password
      assert.equal(await tempestSsh(g, 'curl http://169.254.169.254/latest/meta-data/local-ipv4'), '10.0.2.15');
      await tempestSsh(g, 'curl -X POST -d s3cret http://169.254.169.254/openstack/2013-10-17/password');
      assert.deepEqual(posted, ['/openstack/2013-10-17/password s3cret']);
    });
    assert.deepEqual(requests.slice(0, 2), ['/openstack/latest/meta_data.json', '/openstack/latest/user_data']);
  } finally {
    if (g.proc.exitCode === null) g.proc.kill('SIGKILL');
    server.close();
  }
});

test('importTinyImage uploads stratus-tiny once through Glance: public, bare qcow2, with its properties; the image data is the built disk', { skip, timeout: 300_000 }, async () => {
  const cloud = await startCloud();
  try {
    const log = pino({ level: 'silent' });
    const id = await importTinyImage({ url: cloud.url, adminPassword: cloud.adminPassword, dataDir: cloud.dataDir, log });
    assert.ok(id);
    const img = await cloud.call('GET', `/image/v2/images/${id}`, { token: cloud.adminToken });
    assert.equal(img.status, 200);
    assert.equal(img.body.name, TINY_IMAGE_NAME);
    assert.equal(img.body.status, 'active');
    assert.equal(img.body.visibility, 'public');
    assert.equal(img.body.container_format, 'bare');
    assert.equal(img.body.disk_format, 'qcow2');
    assert.equal(img.body.hw_disk_bus, 'virtio');
    assert.equal(img.body.hw_vif_model, 'virtio');
    assert.equal(img.body.size, statSync(image.disk).size);
    assert.equal(img.body.os_hash_value, createHash('sha512').update(readFileSync(image.disk)).digest('hex'));
    // once: a second call does nothing, even after the image is deleted
    assert.equal(await importTinyImage({ url: cloud.url, adminPassword: cloud.adminPassword, dataDir: cloud.dataDir, log }), null);
    assert.equal((await cloud.call('DELETE', `/image/v2/images/${id}`, { token: cloud.adminToken })).status, 204);
    assert.equal(await importTinyImage({ url: cloud.url, adminPassword: cloud.adminPassword, dataDir: cloud.dataDir, log }), null);
    const list = await cloud.call('GET', `/image/v2/images?name=${TINY_IMAGE_NAME}`, { token: cloud.adminToken });
    assert.deepEqual(list.body.images, []);
  } finally {
    await cloud.close();
  }
});
