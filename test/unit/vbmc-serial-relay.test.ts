// The serial relay of a virtual machine (src/vbmc/serial-relay.ts), without
// qemu or root: socat relays a TCP port to the machine's serial.sock (here a
// unix socket server of the test's). socat is slow to start here (a wrapper
// first in PATH sleeps 0.3 s before it execs socat, as on a loaded host), so
// the readiness check runs before socat binds. Its readiness is socat's own
// listening socket seen in /proc, never a bind of the port (which takes the
// port from socat, and reads any bind error as "socat has it"): a relay started many times in a
// row is up every time and carries bytes, and a relay that cannot bind its
// address (not one of the host's) is an error, not a relay said to run. Its
// start leaves no fork waiting for a machine that is off (no probe connects;
// a client's fork stays). Every socat started is stopped
// by pid, also when an assertion fails.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tcpAnswers } from '../../src/vbmc/daemon.ts';
import { Machine, livePid, type MachineConfig } from '../../src/vbmc/machine.ts';
import { freeTcpPort, serialSocket, startSerialRelay, stopSerialRelay } from '../../src/vbmc/serial-relay.ts';

const onPath = (c: string) => (process.env.PATH ?? '').split(':').map((d) => join(d, c)).find((f) => existsSync(f));
const socat = onPath('socat');
const skip = socat ? false : 'not installed: socat';

function machine(dir: string, name: string, serial: { address: string; port: number }): Machine {
  const mdir = join(dir, 'machines', name);
  mkdirSync(mdir, { recursive: true });
  const config: MachineConfig = {
    name, uuid: '3f1c6a52-6d0e-4b8e-9b51-2a7c0d9e4f10', mac: '52:54:00:12:34:56', bridge: 'none', tap: 'none', memoryMb: 512, diskMb: 16, cpus: 1, accel: 'tcg',
    bmc: { kind: 'ipmi', address: '127.0.0.1', port: 1, username: 'admin', password: 'x' }, serial,
  };
  return new Machine(mdir, config);
}

/** Sends `text` through the relay's TCP port; what the serial socket heard. */
const alive = (pid: number) => {
  try {
    return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

/** The live processes forked by the relay `pid`. */
function forksOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter((c) => /^\d+$/.test(c)).map(Number)
      .filter(alive);
  } catch {
    return [];
  }
}

async function through(port: number, heard: () => string, text: string): Promise<void> {
  const c: Socket = connect({ host: '127.0.0.1', port });
  try {
    await new Promise<void>((resolve, reject) => { c.once('connect', resolve); c.once('error', reject); });
    c.write(text);
    const end = Date.now() + 5000;
    while (!heard().includes(text)) {
      if (Date.now() > end) assert.fail(`the serial socket did not hear ${JSON.stringify(text)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    c.destroy();
  }
}

test('the serial relay: ready once socat holds its listening port, started 10 times in a row, no fork left for the probe; one that cannot bind is an error', { skip, timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'stratus-serial-relay-unit-'));
  let heard = '';
  const unix = createServer((c) => { c.on('data', (d: Buffer) => { heard += d.toString(); }); c.on('error', () => undefined); });
  const machines: Machine[] = [];
  const path = process.env.PATH;
  mkdirSync(join(dir, 'bin'));
  writeFileSync(join(dir, 'bin', 'socat'), `#!/bin/sh\nsleep 0.3\nexec ${socat} "$@"\n`, { mode: 0o755 });
  process.env.PATH = `${join(dir, 'bin')}:${path}`;
  try {
    const m = machine(dir, 'r1', { address: '127.0.0.1', port: await freeTcpPort('127.0.0.1') });
    machines.push(m);
    await new Promise<void>((r) => unix.listen(serialSocket(m), r));
    for (let i = 0; i < 10; i++) {
      const pid = await startSerialRelay(m);
      assert.ok(pid && livePid(m.file('serial-relay.pid'), serialSocket(m)) === pid, `start ${i}: socat runs (its log: ${readFileSync(m.file('serial-relay.log'), 'utf8').trim().split('\n').slice(-3).join(' | ')})`);
      assert.ok(await tcpAnswers('127.0.0.1', m.config.serial!.port), `start ${i}: its port answers`);
      await through(m.config.serial!.port, () => heard, `hello ${i}\n`);
      await stopSerialRelay(m);
      assert.equal(livePid(m.file('serial-relay.pid'), serialSocket(m)), null, `start ${i}: stopped`);
    }
    // the machine off (no serial.sock): the probe's fork, waiting for qemu's socket for nobody, is ended; a client's stays until the relay stops
    unix.close();
    rmSync(serialSocket(m), { force: true });
    for (let i = 0; i < 5; i++) {
      const pid = (await startSerialRelay(m))!;
      assert.deepEqual(forksOf(pid), [], `start ${i} with the machine off: no fork left`);
      const client = connect({ host: '127.0.0.1', port: m.config.serial!.port });
      client.on('error', () => undefined);
      const end = Date.now() + 5000;
      while (forksOf(pid).length !== 1 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
      assert.equal(forksOf(pid).length, 1, 'a client\'s connection waits for the machine');
      const [fork] = forksOf(pid);
      await stopSerialRelay(m);
      // gone, or a zombie of init's (its parent the relay stopped first)
      assert.equal(alive(fork!), false, 'the stop ends it');
      client.destroy();
    }
    // an address that is not the host's: socat cannot bind it and exits, which the start says
    const far = machine(dir, 'r2', { address: '192.0.2.77', port: 7 });
    machines.push(far);
    await assert.rejects(startSerialRelay(far), /socat exited/);
    assert.equal(livePid(far.file('serial-relay.pid'), serialSocket(far)), null);
  } finally {
    process.env.PATH = path;
    for (const m of machines) await stopSerialRelay(m).catch(() => undefined);
    if (unix.listening) unix.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
