// The host agent's loops with test doubles: a scripted transport in place of
// the server (no HTTP) and a fake driver in place of runc. The doubles live
// here only; the agent has no fake driver of its own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { Agent } from '../../src/agent/agent.ts';
import { HttpError, type AgentTransport } from '../../src/agent/client.ts';
import type { ComputeDriver, Driver, Observed } from '../../src/agent/drivers/driver.ts';
import { permanent } from '../../src/agent/errors.ts';
import { PROTOCOL_VERSION } from '../../src/fleet/protocol.ts';
import { WorkQueue } from '../../src/agent/queue.ts';
import type { Reconciler, ReconcilerFactory } from '../../src/agent/reconciler.ts';
import { ReportBatcher } from '../../src/agent/reports.ts';
import { serverReconciler } from '../../src/agent/kinds/server.ts';
import type { DesiredServer, ServerSpec } from '../../src/compute/engine/protocol.ts';
import type { HostInfo, HostRegistration, ReportRequest, Resource, ResourceReport, WatchRequest, WatchResponse } from '../../src/fleet/protocol.ts';

const log = pino({ level: 'silent' });
/** A test that waits for events, bounded so a lost event fails instead of hanging. */
const it = (name: string, fn: () => Promise<void>) => test(name, { timeout: 20_000 }, fn);

/** A promise with its resolve, to hold a step until the test lets it go. */
function gate<T = void>() {
  let open!: (v: T) => void;
  const p = new Promise<T>((r) => (open = r));
  return { p, open };
}

/** The server, scripted: watch answers are pushed by the test; reports are recorded (or fail as told). */
class FakeTransport implements AgentTransport {
  readonly hostname = 'fake-host';
  readonly registered: HostInfo[] = [];
  readonly reports: ReportRequest[] = [];
  readonly watches: WatchRequest[] = [];
  /** Decides each report call's fate (default: accepted). */
  reportHook: (r: ReportRequest) => Promise<void> = async () => {};
  private answers: WatchResponse[] = [];
  private wake: (() => void) | null = null;
  private reportWaiters: Array<{ pred: (r: ResourceReport) => boolean; done: (r: ResourceReport) => void }> = [];

  constructor(first: Resource[] = []) {
    this.answers.push({ resources: first, gone: [], requests: [] });
  }
  push(w: Partial<WatchResponse>) {
    this.answers.push({ resources: [], gone: [], requests: [], ...w });
    this.wake?.();
  }
  async register(info: HostInfo): Promise<HostRegistration> {
    this.registered.push(info);
    return { host_id: 'h', service_id: 's', heartbeat_interval: 3600, protocol: info.protocol };
  }
  async watch(req: WatchRequest, signal?: AbortSignal): Promise<WatchResponse> {
    this.watches.push(req);
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
    await this.reportHook(r);
    this.reports.push(r);
    for (const rr of r.resources ?? []) {
      for (const w of [...this.reportWaiters]) {
        if (w.pred(rr)) {
          this.reportWaiters.splice(this.reportWaiters.indexOf(w), 1);
          w.done(rr);
        }
      }
    }
  }
  /** Resolves with the first report (already sent or to come) that matches. */
  reported(pred: (r: ResourceReport) => boolean): Promise<ResourceReport> {
    const seen = this.reports.flatMap((r) => r.resources ?? []).find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((done) => this.reportWaiters.push({ pred, done }));
  }
  async uploadImage(): Promise<void> {
    throw new Error('no uploads here');
  }
  close() {}
}

/** A compute driver double: converges in memory; a test may hold or fail a converge. */
class FakeDriver implements ComputeDriver {
  readonly name = 'fake';
  readonly serves = { server: ['container'] };
  readonly servers = new Map<string, Observed>();
  readonly calls: Array<{ id: string; version: number }> = [];
  readonly destroyed: string[] = [];
  /** Per id: what the next converges do before finishing (hold on a promise, throw). */
  readonly script = new Map<string, Array<() => Promise<void>>>();
  running = new Set<string>();
  overlap = false;
  /** Attachments whose (fake) detach or attach fails: reported `failed` while listed here. */
  readonly stuckVolumes = new Set<string>();
  async start() {}
  async stop() {}
  async capacity() {
    return { vcpus: 2, memory_mb: 1024, disk_gb: 10 };
  }
  async localServers() {
    return [...this.servers.keys()];
  }
  async converge(d: DesiredServer): Promise<Observed> {
    if (this.running.has(d.id)) this.overlap = true;
    this.running.add(d.id);
    this.calls.push({ id: d.id, version: d.version });
    try {
      const step = this.script.get(d.id)?.shift();
      if (step) await step();
      const o: Observed = d.power === 'stopped' ? { power_state: 4, state: 'stopped' } : { power_state: 1, state: 'active' };
      if (d.volumes?.length) o.volumes = d.volumes.map((v) => ({ attachment_id: v.attachment_id, state: this.stuckVolumes.has(v.attachment_id) ? 'failed' : 'attached' }));
      this.servers.set(d.id, o);
      return o;
    } finally {
      this.running.delete(d.id);
    }
  }
  async observe(id: string) {
    return this.servers.get(id) ?? null;
  }
  async destroy(id: string) {
    this.destroyed.push(id);
    this.servers.delete(id);
  }
  async consoleOutput() {
    return '';
  }
  async snapshot() {}
  async sweep() {}
}

function server(id: string, version: number, over: Partial<ServerSpec> = {}): Resource {
  const spec: ServerSpec = {
    name: id, hostname: id, project_id: 'p', user_id: 'u', kind: 'container', image: null,
    flavor: { id: 'f', name: 'f', vcpus: 1, ram: 64, disk: 0, ephemeral: 0, swap: 0, extraSpecs: {} },
    power: 'running', reboot_seq: 0, reboot_type: null, rebuild_seq: 0, vm_state: 'building', task_state: 'spawning', deleted: false,
    config_drive: { meta_data: {}, user_data: null, network_data: {}, vendor_data: {} }, ...over,
  };
  return { kind: 'server', id, version, spec };
}

function agent(t: FakeTransport, drivers: Driver[], extra: Partial<ConstructorParameters<typeof Agent>[0]> = {}) {
  return new Agent({ client: t, drivers, log, sweepIntervalMs: 3600_000, retry: { baseMs: 1, maxMs: 8 }, ...extra });
}

it('the agent registers what its drivers serve, with its protocol version', async () => {
  const t = new FakeTransport();
  const a = agent(t, [new FakeDriver()]);
  await a.start();
  await a.stop();
  assert.deepEqual(t.registered[0]!.kinds, { server: ['container'] });
  assert.equal(t.registered[0]!.protocol, PROTOCOL_VERSION);
  assert.equal(t.registered[0]!.vcpus, 2);
  assert.deepEqual(t.watches[0]?.known, { server: {} }, 'the first watch names the kinds served, holding none');
});

it('a resource changed while its converge runs is converged again at once with the new version, never twice at a time', async () => {
  const t = new FakeTransport([server('s1', 1)]);
  const d = new FakeDriver();
  const held = gate();
  const started = gate();
  d.script.set('s1', [async () => {
    started.open();
    await held.p;
  }]);
  const a = agent(t, [d]);
  await a.start();
  await started.p;
  // version 2 arrives while version 1 is being converged
  t.push({ resources: [server('s1', 2, { vm_state: 'active', task_state: null })] });
  // the watch loop takes it (it asks again once it handled the answer)
  while (t.watches.length < 3) await new Promise((r) => setImmediate(r));
  held.open();
  const r = await t.reported((x) => x.id === 's1' && x.version === 2);
  assert.equal(r.error, undefined);
  await a.idle();
  await a.stop();
  assert.deepEqual(d.calls, [{ id: 's1', version: 1 }, { id: 's1', version: 2 }]);
  assert.equal(d.overlap, false, 'one converge of a server at a time');
});

it('a transient failure of a running server is reported, then retried with backoff until it converges', async () => {
  const t = new FakeTransport([server('s2', 3, { vm_state: 'active', task_state: 'rebooting' })]);
  const d = new FakeDriver();
  let fails = 2;
  d.script.set('s2', [async () => { if (fails-- > 0) throw new Error('runc: busy'); }, async () => { if (fails-- > 0) throw new Error('runc: busy'); }]);
  const a = agent(t, [d]);
  await a.start();
  const failed = await t.reported((x) => x.id === 's2' && !!x.error);
  assert.deepEqual(failed.error, { class: 'transient', code: 'host_failure', message: 'runc: busy' });
  const ok = await t.reported((x) => x.id === 's2' && !x.error && (x.observed as { state: string }).state === 'active');
  assert.equal(ok.version, 3);
  await a.stop();
  assert.equal(d.calls.length, 3, 'two failures, then the converge that worked');
});

it('a server\'s volumes reach its driver and its observed volumes the report; a spec without volumes (an older server) reports none', async () => {
  const vol = { attachment_id: 'a1', volume_id: 'v1', device: '/dev/vdb', location: '/x/v1.raw', format: 'raw' as const, read_only: false, boot_index: null };
  const t = new FakeTransport([server('sv', 1, { volumes: [vol] }), server('sn', 1)]);
  const a = agent(t, [new FakeDriver()]);
  await a.start();
  const r = await t.reported((x) => x.id === 'sv');
  assert.deepEqual((r.observed as { volumes?: unknown }).volumes, [{ attachment_id: 'a1', state: 'attached' }]);
  const n = await t.reported((x) => x.id === 'sn');
  assert.equal((n.observed as { volumes?: unknown }).volumes, undefined);
  await a.stop();
});

it('a server with a failed volume attachment is converged again at re-checks (not only observed) until it settles; the server is not in error', async () => {
  const vol = { attachment_id: 'a2', volume_id: 'v2', device: '/dev/vdb', location: '/x/v2.raw', format: 'raw' as const, read_only: false, boot_index: null };
  const t = new FakeTransport([server('sf', 1, { vm_state: 'active', task_state: null, volumes: [vol] })]);
  const d = new FakeDriver();
  d.stuckVolumes.add('a2');
  const a = agent(t, [d]);
  await a.start();
  const r = await t.reported((x) => x.id === 'sf');
  assert.equal(r.error, undefined);
  assert.deepEqual((r.observed as { volumes?: unknown }).volumes, [{ attachment_id: 'a2', state: 'failed' }]);
  const sweep = () => (a as unknown as { sweep(): Promise<void> }).sweep();
  await sweep();
  await a.idle();
  assert.equal(d.calls.length, 2, 'converged again at the re-check');
  d.stuckVolumes.delete('a2');
  await sweep();
  await a.idle();
  await sweep();
  await a.idle();
  assert.equal(d.calls.length, 3, 'settled: observed only afterwards');
  await a.stop();
});

it('a build that fails permanently is rolled back and reported with its class and code, not retried', async () => {
  const t = new FakeTransport([server('s3', 1)]);
  const d = new FakeDriver();
  d.script.set('s3', [async () => { throw permanent('image_invalid', 'image i: no manifest'); }]);
  const a = agent(t, [d]);
  await a.start();
  const r = await t.reported((x) => x.id === 's3');
  await a.idle();
  await a.stop();
  assert.deepEqual(r.observed, { power_state: 0, state: 'absent' });
  assert.deepEqual(r.error, { class: 'permanent', code: 'image_invalid', message: 'image i: no manifest' });
  assert.deepEqual(d.destroyed, ['s3'], 'rolled back');
  assert.equal(d.calls.length, 1);
});

it('a server of a kind no driver serves is reported as a permanent kind_unsupported error', async () => {
  const t = new FakeTransport([server('s4', 1, { kind: 'vm' })]);
  const a = agent(t, [new FakeDriver()]);
  await a.start();
  const r = await t.reported((x) => x.id === 's4');
  await a.stop();
  assert.equal(r.error?.class, 'permanent');
  assert.equal(r.error?.code, 'kind_unsupported');
});

it('a slow kind does not hold up another: each kind has its own queue', async () => {
  const held = gate();
  const slowStarted = gate();
  const seen: string[] = [];
  const slow: ReconcilerFactory = (): Reconciler => ({
    kind: 'volume',
    async reconcile(id) {
      seen.push(id);
      slowStarted.open();
      await held.p;
    },
    async local() {
      return [];
    },
  });
  const volumes: Driver = { name: 'volumes', serves: { volume: [] }, async start() {}, async stop() {} };
  const vols = Array.from({ length: 3 }, (_, i): Resource => ({ kind: 'volume', id: `v${i}`, version: 1, spec: {} }));
  const t = new FakeTransport([...vols, server('s5', 1)]);
  const d = new FakeDriver();
  const a = agent(t, [d, volumes], { concurrency: { volume: 1, server: 1 }, reconcilers: { server: serverReconciler, volume: slow } });
  await a.start();
  await slowStarted.p;
  // the volume queue is stuck on its first volume (concurrency 1), the server converges anyway
  const r = await t.reported((x) => x.id === 's5');
  assert.deepEqual(r.observed, { power_state: 1, state: 'active' });
  assert.deepEqual(seen, ['v0']);
  assert.deepEqual(t.registered[0]!.kinds, { server: ['container'], volume: [] });
  held.open();
  await a.idle();
  await a.stop();
  assert.deepEqual(seen.sort(), ['v0', 'v1', 'v2']);
});

it('a resource gone from the host is removed; requests of a kind are served by its reconciler', async () => {
  const t = new FakeTransport([server('s6', 1)]);
  const d = new FakeDriver();
  const a = agent(t, [d]);
  await a.start();
  await t.reported((x) => x.id === 's6');
  t.push({ gone: [{ kind: 'server', id: 's6' }], requests: [{ id: 'q1', kind: 'server', resource_id: 'nope', action: 'console', args: {} }] });
  await new Promise<void>((resolve) => {
    const check = () => (d.destroyed.includes('s6') && t.reports.some((r) => r.requests?.length) ? resolve() : setImmediate(check));
    check();
  });
  await a.stop();
  const answer = t.reports.flatMap((r) => r.requests ?? [])[0]!;
  assert.equal(answer.ok, false);
  assert.equal(answer.error?.class, 'transient');
  assert.match(answer.error!.message, /not on host fake-host/);
});

it('reports: a batch refused with a 4xx is dropped; a failed flush is retried with the newest report of each resource', async () => {
  const sent = [] as ReportRequest[];
  const fate: Array<Error | null> = [new HttpError(400, 'POST /report: 400 bad'), new HttpError(503, 'POST /report: 503'), new Error('ECONNRESET'), null, null];
  const b = new ReportBatcher({
    log, retryBaseMs: 1,
    async send(r) {
      const f = fate.shift();
      if (f) throw f;
      sent.push(r);
    },
  });
  const rep = (id: string, version: number): ResourceReport => ({ kind: 'server', id, version, observed: { power_state: 1, state: 'active' } });
  b.resource(rep('a', 1));
  await b.flush();
  assert.equal(sent.length, 0, 'the refused batch is not sent again');
  b.resource(rep('a', 1));
  assert.equal(sent.length, 0, 'a report that says what was last said is not queued again');
  b.resource(rep('b', 1));
  const flushing = b.flush();
  b.resource(rep('b', 2)); // queued while the first try is failing
  await flushing;
  await b.flush();
  const got = sent.flatMap((r) => r.resources ?? []);
  assert.deepEqual(got.map((r) => `${r.id}@${r.version}`), ['b@2'], 'retried (503, then a reset) until sent, the newest report winning');
  b.request({ id: 'q', ok: true, result: {} });
  await b.flush();
  assert.deepEqual(sent.at(-1), { requests: [{ id: 'q', ok: true, result: {} }] });
});

it('work queue: per-key dedupe, dirty re-run, bounded concurrency, exponential backoff reset by success', async () => {
  const delays: number[] = [];
  let active = 0;
  let most = 0;
  const runs: string[] = [];
  let failA = 3;
  const holds = new Map<string, { p: Promise<void> }>();
  const q = new WorkQueue(async (k) => {
    active++;
    most = Math.max(most, active);
    runs.push(k);
    try {
      await holds.get(k)?.p;
      if (k === 'a' && failA-- > 0) throw new Error('nope');
    } finally {
      active--;
    }
  }, { concurrency: 2, baseDelayMs: 1, maxDelayMs: 4, onError: (_k, _e, attempt, delay) => delays.push(attempt * 100 + delay) });
  const hb = gate();
  holds.set('b', hb);
  q.add('a');
  q.add('b');
  q.add('b'); // running: marked dirty, runs once more after
  q.add('c');
  q.add('c'); // queued: deduplicated
  hb.open();
  holds.delete('b');
  await q.idle();
  // 'a' fails three times (backoff 1, 2, 4 ms), then succeeds
  while (q.failuresOf('a') !== 0 || runs.filter((r) => r === 'a').length < 4) await new Promise((r) => setTimeout(r, 1));
  await q.idle();
  assert.deepEqual(delays, [101, 202, 304]);
  assert.equal(runs.filter((r) => r === 'b').length, 2, 'b ran again after it was changed while running');
  assert.equal(runs.filter((r) => r === 'c').length, 1);
  assert.equal(most, 2, 'never more than the concurrency');
  q.stop();
});

it('a kind with recheckEvery N has its desired resources re-checked at every Nth sweep only; others at each', async () => {
  let passes = 0;
  const every = (n: number): ReconcilerFactory => (drivers, ctx) => {
    const base = serverReconciler(drivers, ctx);
    return { ...base, recheckEvery: n, reconcile: (id, res) => (passes++, base.reconcile(id, res)) };
  };
  for (const [n, want] of [[3, 2], [1, 6]] as const) {
    const a = agent(new FakeTransport([server('s9', 1, { vm_state: 'active', task_state: null })]), [new FakeDriver()], { reconcilers: { server: every(n) } });
    await a.start();
    await a.idle();
    passes = 0;
    for (let i = 0; i < 6; i++) await (a as unknown as { sweep(): Promise<void> }).sweep();
    await a.idle();
    await a.stop();
    assert.equal(passes, want, `recheckEvery ${n}: ${want} re-checks in 6 sweeps`);
  }
});
