// The conductor inside the agent, with test doubles for the server (a
// scripted transport), the BMC (power in memory) and the ramdisk (the test
// speaks its HTTP protocol): the registration (kinds, HostInfo.baremetal);
// power and boot-device requests once per seq; an inspection phase by phase
// (power_on -> pxe -> inspect -> power_off -> done) driven by the ramdisk's
// calls, each of which makes the agent converge again; the endpoint's
// tokens (none, a wrong one, an old operation's) refused; a ramdisk failure
// reported without secrets and the node off; maintenance leaves the node
// alone; a conductor restarted mid-operation carries on from its state file;
// out-of-band inspection reads the BMC's inventory with no boot and no power
// change (and fails, the node untouched, on a BMC that cannot).
// The console recorder's stop() ends a session still being opened (the BMC's
// openConsole aborted through its signal) at once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Agent } from '../../src/agent/agent.ts';
import type { AgentTransport } from '../../src/agent/client.ts';
import { BaremetalConductor } from '../../src/agent/drivers/baremetal/conductor.ts';
import { ConsoleRecorders } from '../../src/agent/drivers/baremetal/console.ts';
import { baremetalReconcilers } from '../../src/agent/drivers/baremetal/reconciler.ts';
import { CONSOLE_UNAVAILABLE, type BmcClient, type ConsoleSession } from '../../src/agent/drivers/baremetal/bmc.ts';
import { userError } from '../../src/agent/errors.ts';
import type { BootDevice, NodeObserved, NodeOperation, NodeSpec, PowerState } from '../../src/baremetal/protocol.ts';
import type { HostInfo, HostRegistration, PendingRequest, ReportRequest, RequestReport, Resource, ResourceReport, WatchRequest, WatchResponse } from '../../src/fleet/protocol.ts';
import { freePort } from '../ports.ts';

const log = pino({ level: 'silent' });

class Transport implements AgentTransport {
  readonly hostname = 'conductor-1';
  readonly registered: HostInfo[] = [];
  readonly reports: ResourceReport[] = [];
  private answers: WatchResponse[] = [];
  private wake: (() => void) | null = null;
  private waiters: Array<{ pred: (r: ResourceReport) => boolean; done: (r: ResourceReport) => void }> = [];
  constructor(first: Resource[]) {
    this.answers.push({ resources: first, gone: [], requests: [] });
  }
  readonly requestReports: RequestReport[] = [];
  push(resources: Resource[], requests: PendingRequest[] = []) {
    this.answers.push({ resources, gone: [], requests });
    this.wake?.();
  }
  /** Hands the agent a request and waits for its answer. */
  async ask(req: PendingRequest): Promise<RequestReport> {
    this.push([], [req]);
    for (let i = 0; i < 200; i++) {
      const a = this.requestReports.find((q) => q.id === req.id);
      if (a) return a;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`no answer to request ${req.id}`);
  }
  async register(info: HostInfo): Promise<HostRegistration> {
    this.registered.push(info);
    return { host_id: 'h', service_id: 's', heartbeat_interval: 3600, protocol: info.protocol };
  }
  async watch(_req: WatchRequest, signal?: AbortSignal): Promise<WatchResponse> {
    for (;;) {
      const a = this.answers.shift();
      if (a) return a;
      await new Promise<void>((r) => {
        this.wake = r;
        signal?.addEventListener('abort', () => r(), { once: true });
      });
      if (signal?.aborted) throw new Error('aborted');
    }
  }
  async report(r: ReportRequest): Promise<void> {
    this.requestReports.push(...(r.requests ?? []));
    for (const rr of r.resources ?? []) {
      this.reports.push(rr);
      for (const w of [...this.waiters]) if (w.pred(rr)) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.done(rr);
      }
    }
  }
  reported(pred: (o: NodeObserved, r: ResourceReport) => boolean): Promise<ResourceReport> {
    const p = (r: ResourceReport) => pred(r.observed as NodeObserved, r);
    const seen = this.reports.find(p);
    if (seen) return Promise.resolve(seen);
    return new Promise((done) => this.waiters.push({ pred: p, done }));
  }
  async uploadImage(): Promise<void> {}
  close() {}
}

/** A serial console double: sessions the test writes into and ends. */
function fakeConsole() {
  const sessions: Array<{ write(text: string): void; end(): void; closed: boolean }> = [];
  const open = async (): Promise<ConsoleSession> => {
    const queue: Buffer[] = [];
    let wake: (() => void) | null = null;
    let ended = false;
    const s = {
      closed: false,
      write(text: string) { queue.push(Buffer.from(text)); wake?.(); },
      end() { ended = true; wake?.(); },
    };
    sessions.push(s);
    async function* output(): AsyncIterable<Buffer> {
      for (;;) {
        while (queue.length) yield queue.shift()!;
        if (ended || s.closed) return;
        await new Promise<void>((r) => { wake = r; });
      }
    }
    return { output: output(), close: async () => { s.closed = true; wake?.(); } };
  };
  return { sessions, open };
}

/** A BMC in memory; every call recorded. */
function fakeBmc(console = fakeConsole()) {
  const calls: string[] = [];
  let power: PowerState = 'power off';
  const bmc: BmcClient = {
    openConsole: console.open,
    async power() {
      return power;
    },
    async setPower(p) {
      calls.push(p);
      power = p;
    },
    async reboot() {
      calls.push('reboot');
      power = 'power on';
    },
    async softPowerOff() {
      calls.push('soft power off');
      return false;
    },
    async setBootDevice(d: BootDevice, persistent: boolean) {
      calls.push(`boot ${d}${persistent ? ' persistent' : ''}`);
    },
    virtualMedia: null,
  };
  return { bmc, calls };
}

const MAC = '52:54:00:00:00:42';
const NODE = 'a1b2c3d4-0000-4000-8000-000000000001';

function node(version: number, over: Partial<NodeSpec> = {}): Resource {
  const spec: NodeSpec = {
    bmc: { type: 'ipmi', address: '192.0.2.9', username: 'admin', password: 'sekrit-password' },
    maintenance: false, nics: [{ mac: MAC, pxe_enabled: true }], power: null, boot_device: null, operation: null, provisioning: null, ...over,
  };
  return { kind: 'baremetal_node', id: NODE, version, spec };
}

test('the conductor in the agent: registration, power and boot device once per seq, an inspection driven by the ramdisk, tokens, a failure, restart', { timeout: 30_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bm-conductor-'));
  writeFileSync(join(dir, 'vmlinuz'), 'kernel');
  writeFileSync(join(dir, 'initrd.img'), 'initrd');
  const { bmc, calls } = fakeBmc();
  const port = await freePort();
  const make = () => new BaremetalConductor({
    stateDir: dir, log, address: '127.0.0.1', port, bmc: () => bmc, fetchImage: async () => undefined,
    ramdisk: async () => ({ vmlinuz: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd.img'), key: 'test' }),
  });
  let conductor = make();
  const tr = new Transport([node(1, { power: { target: 'power on', seq: 1 }, boot_device: { device: 'pxe', persistent: true, seq: 1 } })]);
  let agent = new Agent({ client: tr, drivers: [conductor], log, reconcilers: baremetalReconcilers, sweepIntervalMs: 60_000 });
  t.after(async () => {
    await agent.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });
  await agent.start();
  const base = `http://127.0.0.1:${port}`;

  assert.deepEqual(tr.registered[0]!.kinds, { baremetal_node: ['ipmi', 'redfish'] });
  assert.equal(tr.registered[0]!.baremetal?.address, '127.0.0.1');
  assert.equal(tr.registered[0]!.baremetal?.http_port, port);

  // power and boot device, once per seq
  const first = await tr.reported((o) => o.power_seq === 1 && o.boot_device_seq === 1);
  assert.equal((first.observed as NodeObserved).power_state, 'power on');
  assert.deepEqual(calls, ['power on', 'boot pxe persistent']);
  tr.push([node(2, { power: { target: 'power on', seq: 1 }, boot_device: { device: 'pxe', persistent: true, seq: 1 }, maintenance: true })]);
  await tr.reported((_o, r) => r.version === 2);
  assert.deepEqual(calls, ['power on', 'boot pxe persistent'], 'the same seqs are not carried out again');

  // an inspection
  const op: NodeOperation = { id: 'op-inspect', type: 'inspect', boot_interface: 'ipxe' };
  tr.push([node(3, { operation: op })]);
  await tr.reported((o) => o.operation?.phase === 'pxe');
  assert.deepEqual(calls.slice(2), ['boot pxe', 'reboot'], 'boot device pxe once, then a reset of the node that was on');
  // the chain script, and the node's script (ramdisk with its token) by its MAC
  assert.match(await (await fetch(`${base}/boot.ipxe`)).text(), /chain http:\/\/127\.0\.0\.1:\d+\/ipxe\/\$\{netX\/mac:hexhyp\}/);
  const script = await (await fetch(`${base}/ipxe/52-54-00-00-00-42`)).text();
  const token = /stratus\.token=([0-9a-f]{64})/.exec(script)?.[1];
  assert.ok(token, script);
  assert.match(script, new RegExp(`stratus\\.node=${NODE}`));
  assert.match(await (await fetch(`${base}/ipxe/52-54-00-00-00-99`)).text(), /^#!ipxe\n.*\nexit/m, 'an unknown MAC boots locally');
  assert.equal(await (await fetch(`${base}/ramdisk/initrd.img`)).text(), 'initrd');
  // the node API: no token, a wrong one, a token in the query (only the ISO takes that): refused
  const cmd = (tok?: string, path = 'command') => fetch(`${base}/v1/nodes/${NODE}/${path}`, { headers: tok ? { 'x-stratus-token': tok } : {} });
  assert.equal((await cmd()).status, 401);
  assert.equal((await cmd('0'.repeat(64))).status, 401);
  assert.equal((await fetch(`${base}/v1/nodes/${NODE}/command?token=${token}`)).status, 401);
  assert.equal((await cmd(token, 'image')).status, 404, 'an inspection has no image');
  // the ramdisk asks: inspect
  const c = await cmd(token);
  assert.equal(c.status, 200);
  assert.equal(await c.text(), 'op=inspect\nid=op-inspect\n');
  await tr.reported((o) => o.operation?.phase === 'inspect');
  // a report for another operation is ignored; a bad one refused
  const post = (body: unknown) => fetch(`${base}/v1/nodes/${NODE}/report`, { method: 'POST', headers: { 'x-stratus-token': token, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  assert.equal((await post({ op_id: 'op-other', status: 'ok', phase: 'inspect', message: '' })).status, 200);
  assert.equal((await post({ status: 'ok' })).status, 400);
  // the restart: the agent and conductor go, new ones come with the same state directory
  await agent.stop();
  conductor = make();
  const tr2 = new Transport([node(3, { operation: op })]);
  agent = new Agent({ client: tr2, drivers: [conductor], log, reconcilers: baremetalReconcilers, sweepIntervalMs: 60_000 });
  await agent.start();
  await tr2.reported((o) => o.operation?.phase === 'inspect');
  const inventory = { cpus: 2, cpu_arch: 'x86_64', memory_mb: 1024, disks: [{ name: '/dev/vda', size_bytes: 1 << 30 }], nics: [{ name: 'eth0', mac: MAC }], boot_mac: MAC };
  assert.equal((await post({ op_id: 'op-inspect', status: 'ok', phase: 'inspect', message: 'inspected', inventory })).status, 200);
  const done = await tr2.reported((o) => o.operation?.status === 'succeeded');
  const o = done.observed as NodeObserved;
  assert.equal(o.operation!.phase, 'done');
  assert.deepEqual(o.operation!.inventory, inventory);
  assert.equal(o.power_state, 'power off');
  assert.equal(calls.at(-1), 'power off');
  assert.equal(await (await cmd(token)).text(), 'op=poweroff\n', 'the inspected ramdisk is told to power off');

  // a clean whose ramdisk fails: failed, the node off, no secret in the report; the old token no longer works
  const clean: NodeOperation = { id: 'op-clean', type: 'clean', boot_interface: 'ipxe', steps: [{ interface: 'deploy', step: 'erase_devices_metadata' }] };
  tr2.push([node(4, { operation: clean })]);
  await tr2.reported((x) => x.operation?.id === 'op-clean' && x.operation.phase === 'pxe');
  assert.equal((await cmd(token)).status, 401, 'the inspection\'s token is gone');
  const token2 = /stratus\.token=([0-9a-f]{64})/.exec(await (await fetch(`${base}/ipxe/${MAC}`)).text())![1]!;
  assert.notEqual(token2, token);
  assert.equal(await (await cmd(token2)).text(), 'op=clean\nid=op-clean\n');
  await fetch(`${base}/v1/nodes/${NODE}/report`, { method: 'POST', headers: { 'x-stratus-token': token2 }, body: JSON.stringify({ op_id: 'op-clean', status: 'failed', phase: 'erase', message: 'cannot erase /dev/vda' }) });
  const failed = await tr2.reported((x) => x.operation?.id === 'op-clean' && x.operation.status === 'failed');
  assert.equal((failed.observed as NodeObserved).operation!.message, 'clean failed in the deploy ramdisk: cannot erase /dev/vda');
  assert.equal((failed.observed as NodeObserved).operation!.phase, 'erase');
  assert.equal(failed.error?.code, 'step_failed');
  assert.equal((failed.observed as NodeObserved).power_state, 'power off');
  assert.doesNotMatch(JSON.stringify(tr2.reports) + JSON.stringify(tr.reports), /sekrit|[0-9a-f]{64}/, 'no password or token in any report');

  // an operation withdrawn while the ramdisk boots: its token goes, the node off
  tr2.push([node(6, { operation: { id: 'op-w', type: 'inspect', boot_interface: 'ipxe' } })]);
  await tr2.reported((x) => x.operation?.id === 'op-w' && x.operation.phase === 'pxe');
  const token3 = /stratus\.token=([0-9a-f]{64})/.exec(await (await fetch(`${base}/ipxe/${MAC}`)).text())![1]!;
  tr2.push([node(7, { operation: null })]);
  await tr2.reported((_x, r) => r.version === 7);
  assert.equal((await cmd(token3)).status, 401, 'a withdrawn operation\'s token no longer works');
  assert.match(await (await fetch(`${base}/ipxe/${MAC}`)).text(), /exit/);
  assert.equal(calls.at(-1), 'power off');

  // an unknown clean step: failed before anything boots
  const n = calls.length;
  tr2.push([node(5, { operation: { id: 'op-bad', type: 'clean', boot_interface: 'ipxe', steps: [{ interface: 'raid', step: 'create_configuration' }] } })]);
  const bad = await tr2.reported((x) => x.operation?.id === 'op-bad' && x.operation.status === 'failed');
  assert.match((bad.observed as NodeObserved).operation!.message!, /clean steps this conductor does not do: raid\.create_configuration/);
  assert.deepEqual(calls.slice(n), ['power off']);
});

test('the serial console: recorded while the node is on, a dropped session opened again, stopped at power off, served as the `console` request; a BMC without one says so', { timeout: 30_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bm-console-'));
  writeFileSync(join(dir, 'vmlinuz'), 'kernel');
  writeFileSync(join(dir, 'initrd.img'), 'initrd');
  const con = fakeConsole();
  const { bmc } = fakeBmc(con);
  const port = await freePort();
  const conductor = new BaremetalConductor({
    stateDir: dir, log, address: '127.0.0.1', port, bmc: () => bmc, fetchImage: async () => undefined, consoleCap: 4096,
    ramdisk: async () => ({ vmlinuz: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd.img'), key: 'test' }),
  });
  const tr = new Transport([node(1, { power: { target: 'power on', seq: 1 } })]);
  const agent = new Agent({ client: tr, drivers: [conductor], log, reconcilers: baremetalReconcilers, sweepIntervalMs: 60_000 });
  t.after(async () => {
    await agent.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });
  await agent.start();
  await tr.reported((o) => o.power_seq === 1 && o.power_state === 'power on');
  const ask = async (id: string, args: Record<string, unknown> = {}) => tr.ask({ id, kind: 'baremetal_node', resource_id: NODE, action: 'console', args });
  const until = async (what: string, pred: () => Promise<boolean> | boolean) => {
    for (let i = 0; i < 200; i++) { if (await pred()) return; await new Promise((r) => setTimeout(r, 20)); }
    assert.fail(`no ${what}`);
  };
  await until('console session', () => con.sessions.length === 1);
  con.sessions[0]!.write('SeaBIOS\r\nline 1\r\n');
  con.sessions[0]!.write('line 2\r\nlogin: ');
  await until('recorded output', async () => (await ask(`q${Math.random()}`)).result?.output === 'SeaBIOS\r\nline 1\r\nline 2\r\nlogin: ');
  const tail = await ask('q-tail', { length: 2 });
  assert.equal(tail.ok, true);
  assert.equal(tail.result!.output, 'line 2\r\nlogin: ');
  // the BMC drops the session (a reset): the recorder opens another and goes on appending
  con.sessions[0]!.end();
  await until('a second session', () => con.sessions.length === 2);
  con.sessions[1]!.write('after reset\r\n');
  await until('appended', async () => /login: after reset\r\n$/.test(String((await ask(`q${Math.random()}`)).result?.output)));
  // capped: the newest half kept from a line start
  con.sessions[1]!.write(`${'x'.repeat(100)}\r\n`.repeat(60));
  await until('capped', async () => String((await ask(`q${Math.random()}`)).result?.output).length <= 4096 && !String((await ask(`q${Math.random()}`)).result?.output).includes('SeaBIOS'));
  // powered off: the session is closed; the log stays readable
  tr.push([node(2, { power: { target: 'power off', seq: 2 } })]);
  await until('session closed', () => con.sessions[1]!.closed);
  assert.match(String((await ask('q-off')).result?.output), /x{100}\r\n$/);
  // an unknown node's request is refused
  const unknown = await tr.ask({ id: 'q-unknown', kind: 'baremetal_node', resource_id: 'b1b2c3d4-0000-4000-8000-000000000009', action: 'console', args: {} });
  assert.equal(unknown.ok, false);
  assert.equal(unknown.error?.code, 'node_unknown');

  // a BMC without a serial console: the request's error says so
  bmc.openConsole = async () => { throw userError(CONSOLE_UNAVAILABLE, 'the system offers no Telnet serial console (SerialConsole.Telnet)'); };
  await conductor.forget(NODE);
  tr.push([node(3, { power: { target: 'power on', seq: 3 } })]);
  await tr.reported((o, r) => r.version === 3 && o.power_state === 'power on');
  await until('the refusal', async () => (await ask(`q${Math.random()}`)).error?.code === CONSOLE_UNAVAILABLE);
  const no = await ask('q-none');
  assert.match(no.error!.message, /^The BMC of node .* offers no serial console/);
  assert.doesNotMatch(no.error!.message, /Telnet\)|192\.0\.2\.9/, 'the BMC\'s own words and address stay in the log');
  assert.equal(no.error!.class, 'user');
});

test('out-of-band inspection: the BMC describes the hardware, nothing boots, the power stays; a BMC without inspect fails it, the node left as it is', { timeout: 30_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bm-oob-'));
  const { bmc, calls } = fakeBmc();
  const inventory = { cpus: 2, cpu_arch: 'x86_64', memory_mb: 384, disks: [{ name: 'disk', size_bytes: 1 << 28 }], nics: [{ name: 'nic0', mac: MAC, has_carrier: true }, { name: 'nic1', mac: '52:54:00:00:00:43', has_carrier: false }] };
  let described = 0;
  const redfish: BmcClient = { ...bmc, async inspect() { described++; return inventory; } };
  let which: BmcClient = redfish;
  const conductor = new BaremetalConductor({
    stateDir: dir, log, address: '127.0.0.1', port: await freePort(), bmc: () => which, fetchImage: async () => undefined,
    ramdisk: async () => { throw new Error('out-of-band inspection boots no ramdisk'); },
  });
  const oob: NodeOperation = { id: 'op-oob', type: 'inspect', inspect_interface: 'redfish' };
  const tr = new Transport([node(1, { bmc: { type: 'redfish', address: 'https://192.0.2.9', password: 'sekrit-password' }, operation: oob })]);
  const agent = new Agent({ client: tr, drivers: [conductor], log, reconcilers: baremetalReconcilers, sweepIntervalMs: 60_000 });
  t.after(async () => {
    await agent.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });
  await agent.start();
  const done = await tr.reported((o) => o.operation?.id === 'op-oob' && o.operation.status !== 'running');
  const o = done.observed as NodeObserved;
  assert.equal(o.operation!.status, 'succeeded');
  assert.equal(o.operation!.phase, 'done');
  assert.deepEqual(o.operation!.inventory, inventory);
  assert.equal(o.power_state, 'power off');
  assert.equal(described, 1);
  assert.deepEqual(calls, [], 'no power change, no boot device');
  assert.ok(!tr.reports.some((r) => ['pxe', 'vmedia', 'power_on'].includes((r.observed as NodeObserved).operation?.phase ?? '')), 'no boot phase');

  // a BMC that cannot describe the hardware (IPMI): failed with why, the node not powered off
  which = bmc;
  tr.push([node(2, { operation: { id: 'op-oob2', type: 'inspect', inspect_interface: 'redfish' } })]);
  const failed = await tr.reported((x) => x.operation?.id === 'op-oob2' && x.operation.status === 'failed');
  assert.match((failed.observed as NodeObserved).operation!.message!, /out-of-band inspection needs Redfish/);
  assert.equal(failed.error?.code, 'bmc_refused');
  assert.deepEqual(calls, [], 'a failed out-of-band inspection changes no power');
});

test('the console recorder: stop() aborts an openConsole still waiting (for a BMC that does not answer) and resolves at once', { timeout: 30_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bm-console-stop-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const { bmc } = fakeBmc();
  let asked: AbortSignal | undefined;
  // a BMC that never answers: the opening ends only when its signal is aborted (as ipmitool's or a socket's wait would)
  bmc.openConsole = (signal) => new Promise<ConsoleSession>((_, reject) => {
    asked = signal;
    signal?.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
  const rec = new ConsoleRecorders(dir, log, 4096);
  await rec.start(NODE, bmc);
  for (let i = 0; i < 100 && !asked; i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(asked, 'openConsole was given a signal');
  const stopped = Date.now();
  await Promise.race([rec.stop(NODE), new Promise((_, reject) => setTimeout(() => reject(new Error('stop() still waits for the opening after 5 s')), 5000))]);
  assert.ok(Date.now() - stopped < 1000, `stopped in ${Date.now() - stopped} ms`);
  assert.equal(asked.aborted, true);
  assert.equal(rec.recording(NODE), false);
});
