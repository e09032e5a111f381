// The VM-isolated container's guest pieces that need no VM: container.sh from
// an image's config (sourced by the host's busybox sh, which must see the
// command, env and working directory exactly), its refusals, the per-server
// cpio (read back by busybox cpio), the boot scripts' syntax; and the kind's
// choice by the flavor (kinds.ts).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { runOk } from '../../src/agent/exec.ts';
import { containerConfig, serverCpio, UnsupportedImageError, VMC_RCK, VMC_RCS, VMC_RUN } from '../../src/agent/drivers/vm-container/guest.ts';
import { imageBootsKind, isolatedKind, kindOfFlavor, kindOfImageFormat } from '../../src/compute/kinds.ts';

const BUSYBOX = '/bin/busybox';
const dir = mkdtempSync(join(tmpdir(), 'stratus-vmc-unit-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** What busybox sh sees after sourcing `text`: the C_* variables and each of "$@" on its own line. */
async function sourced(text: string): Promise<{ vars: Record<string, string>; args: string[] }> {
  const file = join(dir, 'container.sh');
  writeFileSync(file, text);
  const out = (await runOk(BUSYBOX, ['sh', '-c', `. '${file}'; printf '%s\\0' "$C_HOSTNAME" "$C_CWD" "$C_STOPSIGNAL" "$@"`])).stdout.split('\0');
  out.pop();
  const [h, cwd, sig, ...args] = out;
  return { vars: { C_HOSTNAME: h!, C_CWD: cwd!, C_STOPSIGNAL: sig! }, args };
}

test('container.sh: entrypoint then cmd, the image env (PATH defaulted, HOSTNAME and HOME set), cwd and stop signal, quoted for sh', async () => {
  const text = containerConfig({
    config: { Entrypoint: ['/bin/sh', '-c'], Cmd: ["echo 'it''s' \"$X\" $(id)"], Env: ['X=a b', 'EMPTY=', 'Q=it\'s'], WorkingDir: '/srv/app dir', StopSignal: 'SIGQUIT' },
  }, 'web-1');
  const { vars, args } = await sourced(text);
  assert.deepEqual(vars, { C_HOSTNAME: 'web-1', C_CWD: '/srv/app dir', C_STOPSIGNAL: 'QUIT' });
  assert.deepEqual(args, [
    'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'X=a b', 'EMPTY=', "Q=it's", 'HOSTNAME=web-1', 'HOME=/root', 'TERM=xterm',
    '/bin/sh', '-c', "echo 'it''s' \"$X\" $(id)",
  ]);
  // the image's PATH wins; no cwd: /; an odd stop signal: TERM; a host name made safe
  const b = await sourced(containerConfig({ config: { Cmd: ['sh'], Env: ['PATH=/bin'], StopSignal: 'SIG$(reboot)' } }, 'a b;c'));
  assert.deepEqual(b.vars, { C_HOSTNAME: 'a-b-c', C_CWD: '/', C_STOPSIGNAL: 'TERM' });
  assert.deepEqual(b.args, ['PATH=/bin', 'HOSTNAME=a b;c', 'HOME=/root', 'TERM=xterm', 'sh']);
});

test('container.sh: an image with nothing to run, or a user other than root, is refused', () => {
  assert.throws(() => containerConfig({ config: {} }, 'x'), UnsupportedImageError);
  assert.throws(() => containerConfig({ config: { Cmd: ['sh'], User: 'nobody' } }, 'x'), /runs as user nobody/);
  assert.throws(() => containerConfig({ config: { Cmd: ['sh'], User: '1000:1000' } }, 'x'), UnsupportedImageError);
  for (const u of ['', 'root', '0', '0:0', 'root:root']) assert.doesNotThrow(() => containerConfig({ config: { Cmd: ['sh'], User: u } }, 'x'), u);
});

test('the per-server cpio holds etc/stratus/container.sh; the boot scripts parse', async () => {
  const file = join(dir, 'server.cpio');
  writeFileSync(file, gunzipSync(serverCpio('C_HOSTNAME=x\n')));
  const listed = (await runOk('sh', ['-c', `${BUSYBOX} cpio -t < '${file}'`])).stdout.trim().split('\n');
  assert.deepEqual(listed, ['etc', 'etc/stratus', 'etc/stratus/container.sh']);
  for (const [name, text] of [['rcS', VMC_RCS], ['run', VMC_RUN], ['rcK', VMC_RCK]] as const) {
    const f = join(dir, name);
    writeFileSync(f, text);
    await runOk(BUSYBOX, ['sh', '-n', f]);
  }
});

test('kinds: vm-container is chosen by hw:isolation=vm on the flavor or the image (or the flavor\'s stratus:kind), takes docker/oci images', () => {
  assert.equal(kindOfFlavor({ 'stratus:kind': 'vm-container' }), 'vm-container');
  assert.equal(isolatedKind('container', {}, { 'hw:isolation': 'vm' }), 'vm-container');
  assert.equal(isolatedKind('container', { 'hw:isolation': 'vm' }, {}), 'vm-container');
  assert.equal(isolatedKind('container', { 'hw:isolation': 'no' }, {}), 'container');
  assert.equal(isolatedKind('vm', { 'hw:isolation': 'vm' }), 'vm', 'a VM is isolated already');
  assert.equal(kindOfImageFormat('docker'), 'container', 'a container image alone still makes a runc container');
  assert.ok(imageBootsKind('vm-container', 'docker', 'raw') && imageBootsKind('vm-container', 'oci', null));
  assert.equal(imageBootsKind('vm-container', 'bare', 'qcow2'), false);
});
