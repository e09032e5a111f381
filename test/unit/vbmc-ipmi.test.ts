// The IPMI client (src/agent/drivers/baremetal/bmc/ipmi.ts) against the
// virtual IPMI BMC (ipmi_sim with Stratus's chassis control program,
// src/vbmc), without qemu or root: a machine that stays powered off (its
// files only). Power status, every boot device (as ipmitool reads it back
// and as the machine keeps it), a wrong password and an unknown user as
// bmc_auth with no password in the message, a device IPMI cannot set. Serial
// over LAN: the machine's serial port is a TCP server of the test's (as the
// relay of serial-relay.ts offers qemu's), which ipmi_sim's `sol` connects
// to; the conductor's console recorder (console.ts) through the client's
// openConsole records what it says (no password on ipmitool's command line),
// across a dropped serial connection, and stops its ipmitool when told (reaped
// when stop() resolves); a stop while the session is still being opened for a
// BMC that never answers ends it at once, no ipmitool left. The SOL session's
// failure paths (solSession over a child of the test's: a failed first read,
// an abort while opening, a close) kill its child by pid and reap it. The
// BMC is stopped at the end.
import { test, before, after } from 'node:test';
import { spawn, type ChildProcess } from 'node:child_process';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { createSocket } from 'node:dgram';
import { pino } from 'pino';
import { ConsoleRecorders } from '../../src/agent/drivers/baremetal/console.ts';
import { CONSOLE_UNAVAILABLE } from '../../src/agent/drivers/baremetal/bmc.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IpmiBmc, solSession } from '../../src/agent/drivers/baremetal/bmc/ipmi.ts';
import { ResourceFailure } from '../../src/agent/errors.ts';
import { run } from '../../src/agent/exec.ts';
import type { BmcAccess, BootDevice } from '../../src/baremetal/protocol.ts';
import { freeUdpPort, ipmiBmcPid, startIpmiBmc, stopIpmiBmc, writeIpmiConfig } from '../../src/vbmc/ipmi-bmc.ts';
import { Machine, writeJson, type MachineConfig } from '../../src/vbmc/machine.ts';
import { freeTcpPort } from '../../src/vbmc/serial-relay.ts';

const onPath = (c: string) => (process.env.PATH ?? '').split(':').some((d) => existsSync(join(d, c)));
const missing = ['ipmi_sim', 'ipmitool'].filter((c) => !onPath(c));
const skip = missing.length ? `not installed: ${missing.join(', ')}` : false;

let dir: string;
let m: Machine;
/** The machine's serial port: the connections ipmi_sim made to it. */
let serial: Server;
const serialConns: Socket[] = [];

before(async () => {
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), 'stratus-vbmc-ipmi-unit-'));
  const mdir = join(dir, 'machines', 'i1');
  mkdirSync(mdir, { recursive: true });
  const serialPort = await freeTcpPort('127.0.0.1');
  serial = createServer((c) => {
    serialConns.push(c);
    c.on('error', () => undefined);
  });
  await new Promise<void>((r) => serial.listen(serialPort, '127.0.0.1', () => r()));
  const config: MachineConfig = {
    name: 'i1', uuid: '0e7e7c1a-55a3-4b1e-8d0c-3f2f1b9a6d21', mac: '52:54:00:11:22:33', bridge: 'none', tap: 'none', memoryMb: 512, diskMb: 16, cpus: 1, accel: 'tcg',
    bmc: { kind: 'ipmi', address: '127.0.0.1', port: await freeUdpPort('127.0.0.1'), username: 'admin', password: 'Unit-Test-Pass1' },
    serial: { address: '127.0.0.1', port: serialPort },
  };
  await writeJson(join(mdir, 'machine.json'), config);
  m = new Machine(mdir, config);
  await writeIpmiConfig(m);
  await startIpmiBmc(m);
});

after(async () => {
  if (skip) return;
  await stopIpmiBmc(m);
  for (const c of serialConns) c.destroy();
  serial.close();
  rmSync(dir, { recursive: true, force: true });
});

const access = (o: Partial<BmcAccess> = {}): BmcAccess => ({ type: 'ipmi', address: '127.0.0.1', port: m.config.bmc.port, username: 'admin', password: m.config.bmc.password, ...o });

test('IPMI client and virtual BMC: power status, boot devices, bmc_auth, refused devices', { skip }, async () => {
  assert.ok(ipmiBmcPid(m), 'ipmi_sim runs as a daemon');
  const bmc = new IpmiBmc(access());
  assert.equal(await bmc.power(), 'power off');
  const selector: Record<BootDevice, RegExp> = { pxe: /Force PXE/, disk: /Force Boot from default Hard-Drive/, cdrom: /Force Boot from CD\/DVD/, bios: /Force Boot into BIOS Setup/ };
  for (const dev of ['cdrom', 'pxe', 'bios', 'disk'] as const) {
    await bmc.setBootDevice(dev, true);
    assert.equal((await m.state()).boot.device, dev);
    const r = await run('ipmitool', ['-I', 'lanplus', '-C', '3', '-H', '127.0.0.1', '-p', String(m.config.bmc.port), '-U', 'admin', '-E', 'chassis', 'bootparam', 'get', '5'],
      { env: { ...process.env, IPMI_PASSWORD: m.config.bmc.password } });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, selector[dev]);
  }
  const noSecret = (code: string) => (e: unknown) => e instanceof ResourceFailure && e.code === code && e.class === 'user'
    && !e.message.includes(m.config.bmc.password) && !e.message.includes('Wrong-Pass-99');
  await assert.rejects(new IpmiBmc(access({ password: 'Wrong-Pass-99' })).power(), noSecret('bmc_auth'));
  await assert.rejects(new IpmiBmc(access({ username: 'nobody' })).power(), noSecret('bmc_auth'));
  await assert.rejects(bmc.setBootDevice('floppy' as BootDevice, false), noSecret('bmc_refused'));
  assert.throws(() => new IpmiBmc({ ...access(), type: 'redfish' }));
});

/** ipmitool processes talking to this BMC (its port on their command line). */
function ipmitools(port = m.config.bmc.port): Array<{ pid: number; cmdline: string }> {
  const out = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const cmdline = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').join(' ');
      if (cmdline.startsWith('ipmitool ') && cmdline.includes(` -p ${port} `)) out.push({ pid: Number(p), cmdline });
    } catch { /* gone */ }
  }
  return out;
}

/** This process's children named ipmitool or stdbuf, zombies (exited, not reaped) too. */
function ipmitoolChildren(): string[] {
  const out = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const m = /^\d+ \((.*)\) (\S) (\d+)/.exec(stat);
      if (m && Number(m[4]) === process.pid && (m[1] === 'ipmitool' || m[1] === 'stdbuf')) out.push(`${p} ${m[1]} ${m[2]}`);
    } catch { /* gone */ }
  }
  return out;
}

test('Serial over LAN: the console recorder through ipmitool sol activate records the machine\'s serial port, across a dropped connection; stopped by pid', { skip, timeout: 60_000 }, async () => {
  const until = async (what: string, pred: () => boolean | Promise<boolean>, ms = 20_000) => {
    const end = Date.now() + ms;
    while (Date.now() < end) { if (await pred()) return; await new Promise((r) => setTimeout(r, 100)); }
    assert.fail(`no ${what}`);
  };
  await until('ipmi_sim connected to the serial port', () => serialConns.some((c) => !c.destroyed));
  const rec = new ConsoleRecorders(dir, pino({ level: 'silent' }), 1 << 20);
  const bmc = new IpmiBmc(access());
  await rec.start('node-1', bmc, 15_000);
  try {
    await until('sol activate', () => ipmitools().some((p) => p.cmdline.includes('sol activate')));
    for (const p of ipmitools()) assert.ok(!p.cmdline.includes(m.config.bmc.password), 'no password on ipmitool\'s command line');
    // the guest talks until the recorder has heard it (SOL begins when the session is up)
    let n = 0;
    const say = () => { for (const c of serialConns) if (!c.destroyed) c.write(`guest line ${n++}\r\n`); };
    await until('recorded output', async () => { say(); return /guest line \d+\r\n/.test(await rec.output('node-1')); });
    const text = await rec.output('node-1');
    assert.doesNotMatch(text, /SOL Session/, 'ipmitool\'s own banner is left out');
    assert.equal(await rec.output('node-1', 1), '');
    // the serial connection drops (qemu restarted): ipmi_sim reconnects; the recorder goes on (a new session if SOL ended)
    for (const c of serialConns) c.destroy();
    await until('ipmi_sim connected again', () => serialConns.some((c) => !c.destroyed));
    await until('output after the drop', async () => {
      for (const c of serialConns) if (!c.destroyed) c.write('after the drop\r\n');
      return (await rec.output('node-1')).includes('after the drop');
    }, 40_000);
  } finally {
    await rec.stop('node-1');
  }
  // stop() resolves once its ipmitool is reaped
  assert.deepEqual(ipmitools(), []);
  assert.deepEqual(ipmitoolChildren(), []);
});

test('the console recorder\'s stop() ends an openConsole waiting for an IPMI BMC that does not answer: at once, no ipmitool left (nor a zombie)', { skip, timeout: 60_000 }, async () => {
  // a UDP port that takes every request and answers none
  const silent = createSocket('udp4');
  silent.on('message', () => undefined);
  await new Promise<void>((r) => silent.bind(0, '127.0.0.1', () => r()));
  const port = silent.address().port;
  const rec = new ConsoleRecorders(join(dir, 'silent'), pino({ level: 'silent' }), 1 << 20);
  try {
    await rec.start('node-silent', new IpmiBmc(access({ port })));
    const end = Date.now() + 10_000;
    while (!ipmitools(port).length && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    assert.ok(ipmitools(port).length, 'ipmitool asks the silent BMC');
    await new Promise((r) => setTimeout(r, 500));
    const stopping = Date.now();
    await rec.stop('node-silent');
    const took = Date.now() - stopping;
    assert.deepEqual(ipmitools(port), [], 'no ipmitool left once stop() resolved');
    assert.deepEqual(ipmitoolChildren(), [], 'nor an unreaped one');
    assert.ok(took < 2000, `stop() took ${took} ms (the opening waits ~6 s per ipmitool run for this BMC)`);
  } finally {
    await rec.stop('node-silent');
    // whatever a failed stop left: this test's own ipmitools (children of this process, the silent port on their command line), by pid
    for (const p of ipmitools(port)) {
      try {
        if (Number(/^\d+ \(.*\) \S (\d+)/.exec(readFileSync(`/proc/${p.pid}/stat`, 'utf8'))?.[1]) === process.pid) process.kill(p.pid, 'SIGKILL');
      } catch { /* gone */ }
    }
    silent.close();
  }
});

test('Serial over LAN on a BMC without it: console_unavailable', { skip, timeout: 60_000 }, async () => {
  // the same machine's BMC made again without a serial port: ipmi_sim has no `sol`
  await stopIpmiBmc(m);
  const bare = new Machine(m.dir, { ...m.config, serial: undefined });
  await writeIpmiConfig(bare);
  await startIpmiBmc(bare);
  try {
    const session = await new IpmiBmc(access()).openConsole();
    await assert.rejects((async () => { for await (const _ of session.output) { /* nothing */ } })(),
      (e: unknown) => e instanceof ResourceFailure && e.code === CONSOLE_UNAVAILABLE && e.class === 'user' && !e.message.includes(m.config.bmc.password));
  } finally {
    await stopIpmiBmc(bare);
    await writeIpmiConfig(m);
    await startIpmiBmc(m);
  }
});

/** Whether the process is gone and reaped (a zombie still answers signal 0). */
const reaped = (c: ChildProcess) => {
  try {
    process.kill(c.pid!, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
};

test('the SOL session\'s failure paths: a first read that fails, an abort while opening, a close: its child killed by pid and reaped', { timeout: 30_000 }, async () => {
  // a child standing for `sol activate` (it says nothing and waits); only processes the test starts, ended through their handles
  const children: ChildProcess[] = [];
  const child = () => {
    const c = spawn('sleep', ['60'], { stdio: ['pipe', 'pipe', 'pipe'] });
    children.push(c);
    return c;
  };
  try {
    // the first read rejects (the pipe fails): the open fails, transient, and leaves no process
    const a = child();
    const opening = solSession(a, { where: 'IPMI BMC test', scrub: (t) => t });
    setTimeout(() => a.stdout!.destroy(Object.assign(new Error('read EIO'), { code: 'EIO' })), 100);
    const failed: unknown = await opening.then(() => null, (e: unknown) => e);
    assert.ok(reaped(a), 'the child of a failed open is killed and reaped');
    assert.ok(failed instanceof ResourceFailure && failed.code === 'bmc_unreachable' && failed.class === 'transient', String(failed));

    // aborted while waiting for its first words: rejects with the abort's reason once the child is reaped
    const b = child();
    const ac = new AbortController();
    const started = Date.now();
    const aborted = solSession(b, { where: 'IPMI BMC test', scrub: (t) => t, signal: ac.signal });
    setTimeout(() => ac.abort(), 100);
    await assert.rejects(aborted, { name: 'AbortError' });
    assert.ok(Date.now() - started < 5000, 'the abort does not wait for the open\'s deadline');
    assert.ok(reaped(b), 'the child of an aborted open is killed and reaped');

    // open (its deadline passed with no words), then closed: close resolves once the child is reaped
    const c = child();
    const session = await solSession(c, { where: 'IPMI BMC test', scrub: (t) => t, openTimeoutMs: 200 });
    await session.close();
    assert.ok(reaped(c), 'a closed session\'s child is reaped');
    // an abort of an open session ends it too
    const d = child();
    const ad = new AbortController();
    const open = await solSession(d, { where: 'IPMI BMC test', scrub: (t) => t, openTimeoutMs: 200, signal: ad.signal });
    const reading = (async () => { for await (const _ of open.output) { /* nothing */ } })().catch(() => undefined);
    ad.abort();
    await reading;
    await open.close();
    assert.ok(reaped(d), 'an aborted session\'s child is reaped');
  } finally {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  }
});
