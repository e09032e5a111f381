// The QMP client against a real qemu (`-machine none`: no guest, QMP only):
// capabilities, typed commands, an error reply, an event, a command deadline
// that passes while qemu is stopped (SIGSTOP) and a late reply that is then
// dropped, close(), and qemu quitting under the client.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QmpClient, QmpClosedError, QmpError, QmpTimeoutError } from '../../src/agent/drivers/vm/qmp.ts';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const haveQemu = (() => {
  for (const d of (process.env.PATH ?? '').split(':')) if (existsSync(join(d, 'qemu-system-x86_64'))) return true;
  return false;
})();
const skip = haveQemu ? false : 'qemu-system-x86_64 is not installed';

let dir: string;
let qemu: ChildProcess | null = null;
let sock: string;

before(async () => {
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), 'stratus-vmqmp-'));
  sock = join(dir, 'qmp.sock');
  qemu = spawn('qemu-system-x86_64', ['-machine', 'none', '-nodefaults', '-display', 'none', '-qmp', `unix:${sock},server=on,wait=off`], { stdio: 'ignore' });
  for (let i = 0; i < 200 && !existsSync(sock); i++) await sleep(25);
  assert.ok(existsSync(sock), 'qemu made its QMP socket');
});

after(async () => {
  if (qemu && qemu.exitCode === null) {
    try { process.kill(qemu.pid!, 'SIGCONT'); } catch { /* gone */ }
    qemu.kill('SIGKILL');
    await new Promise((r) => qemu!.once('exit', r));
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('QMP: capabilities, typed commands, errors, events, a deadline, close and qemu quitting', { skip }, async () => {
  const c = await QmpClient.connect(sock);
  try {
    assert.equal(typeof c.greeting.version?.qemu.major, 'number');
    const v = await c.execute('query-version');
    assert.deepEqual(v.qemu, c.greeting.version!.qemu);
    const st = await c.execute('query-status');
    assert.equal(typeof st.running, 'boolean');
    assert.equal(typeof st.status, 'string');

    // several commands in flight at once get their own replies
    const [a, b] = await Promise.all([c.execute('query-kvm'), c.execute('human-monitor-command', { 'command-line': 'info version' })]);
    assert.equal(typeof a.enabled, 'boolean');
    assert.match(b, new RegExp(`^${v.qemu.major}\\.${v.qemu.minor}`));

    // an error reply is a QmpError with qemu's class
    await assert.rejects(c.execute('no-such-command'), (e: unknown) => e instanceof QmpError && e.errorClass === 'CommandNotFound');
    await assert.rejects(c.execute('device_del', { id: 'nothing-here' }), (e: unknown) => e instanceof QmpError && e.errorClass === 'DeviceNotFound');

    // an event: stop emits STOP, cont emits RESUME (listened for before the command)
    const iter = c.events();
    const stopped = c.waitEvent('STOP', 10_000);
    await c.execute('stop');
    const ev = await stopped;
    assert.equal(ev.event, 'STOP');
    assert.equal(typeof ev.timestamp.seconds, 'number');
    assert.equal((await c.execute('query-status')).status, 'paused');
    const resumed = c.waitEvent('RESUME', 10_000);
    await c.execute('cont');
    await resumed;
    // the iterator saw both, in order
    const seen: string[] = [];
    for await (const e of iter) {
      seen.push(e.event);
      if (seen.length === 2) break;
    }
    assert.deepEqual(seen, ['STOP', 'RESUME']);

    // a deadline: qemu is frozen, so no reply can come before it passes
    process.kill(qemu!.pid!, 'SIGSTOP');
    try {
      await assert.rejects(c.execute('query-status', undefined, { timeoutMs: 300 }), QmpTimeoutError);
      await assert.rejects(c.waitEvent('NEVER', 200), QmpTimeoutError);
    } finally {
      process.kill(qemu!.pid!, 'SIGCONT');
    }
    // the late reply is dropped; the connection still works
    assert.equal((await c.execute('query-status')).running, true);
  } finally {
    c.close();
  }
  assert.equal(c.closed, true);
  await assert.rejects(c.execute('query-status'), QmpClosedError);

  // a second connection (qemu accepts one at a time: the first is gone); qemu quitting closes it
  const d = await QmpClient.connect(sock);
  const closed = new Promise<Error | null>((r) => d.once('close', r));
  const shutdown = d.waitEvent('SHUTDOWN', 10_000);
  const exited = new Promise((r) => qemu!.once('exit', r));
  await d.execute('quit').catch((e: unknown) => assert.ok(e instanceof QmpClosedError));
  assert.equal((await shutdown).event, 'SHUTDOWN');
  assert.ok((await closed) instanceof QmpClosedError);
  await exited;
  await assert.rejects(d.execute('query-status'), QmpClosedError);
  await assert.rejects(QmpClient.connect(sock, { connectTimeoutMs: 1000 }));
});
