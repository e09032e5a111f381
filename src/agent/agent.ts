// The host agent: registers its host, long-polls the server for the desired
// state of the servers placed on it, converges the host (level-triggered: it
// acts on the difference between desired and observed, so a restart anywhere
// simply converges again), reports what it observes, and heartbeats.
//
// Concurrency: one converge at a time per server, at most `concurrency` at
// once; reports are batched (one POST carries every report queued while the
// previous one was in flight).
import type { Logger } from 'pino';
import { PowerState } from '../compute/schema.ts';
import type { DesiredServer, PendingRequest, RequestReport, ServerReport } from '../compute/engine/protocol.ts';
import type { AgentClient } from './client.ts';
import { HttpError } from './client.ts';
import type { ComputeDriver } from './drivers/driver.ts';
import { PermanentError } from './drivers/driver.ts';

export const AGENT_VERSION = '0.1.0';

export interface AgentOptions {
  client: AgentClient;
  driver: ComputeDriver;
  log: Logger;
  /** Converges running at once. */
  concurrency?: number;
  /** Long-poll length in seconds. */
  watchWait?: number;
  /** How often every server is observed and the driver swept, in ms. */
  sweepIntervalMs?: number;
  availabilityZone?: string;
  hostIp?: string;
  /** Overcommit ratios this host announces (Nova's defaults: 16, 1.5, 1). */
  allocationRatios?: { cpu?: number; ram?: number; disk?: number };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class Agent {
  private readonly o: AgentOptions & { concurrency: number; watchWait: number; sweepIntervalMs: number };
  private readonly log: Logger;
  private readonly desired = new Map<string, DesiredServer>();
  /** Version each server was last converged to (successfully or not). */
  private readonly converged = new Map<string, number>();
  private readonly running = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly queue: string[] = [];
  private readonly lastReport = new Map<string, string>();
  private readonly requestsInFlight = new Set<string>();
  private pendingServers = new Map<string, ServerReport>();
  private pendingRequests: RequestReport[] = [];
  private flushing: Promise<void> | null = null;
  private active = 0;
  private stopped = false;
  private heartbeatMs = 10_000;
  private timers: NodeJS.Timeout[] = [];
  private loops: Promise<void>[] = [];
  private idleWaiters: Array<() => void> = [];
  private watchAbort = new AbortController();

  constructor(o: AgentOptions) {
    this.o = { ...o, concurrency: o.concurrency ?? 8, watchWait: o.watchWait ?? 25, sweepIntervalMs: o.sweepIntervalMs ?? 10_000 };
    this.log = o.log;
  }

  /** Registers (retrying until the server answers), syncs once, then runs the loops. */
  async start(): Promise<void> {
    await this.o.driver.start();
    await this.register(true);
    // first sync: the full desired state of this host; anything local that is not in it is an orphan
    const first = await this.retry(() => this.o.client.watch({ known: {}, wait: 0 }));
    for (const s of first.servers) this.desired.set(s.id, s);
    for (const id of await this.o.driver.localServers()) {
      if (!this.desired.has(id)) {
        this.log.info({ server: id }, 'removing a server this host no longer holds');
        this.enqueue(id);
      }
    }
    for (const id of this.desired.keys()) this.enqueue(id);
    this.handleRequests(first.requests);
    this.loops.push(this.watchLoop());
    this.timers.push(setInterval(() => void this.register(false), this.heartbeatMs));
    this.timers.push(setInterval(() => void this.sweep(), this.o.sweepIntervalMs));
    this.log.info({ host: this.o.client.hostname, servers: this.desired.size }, 'agent started');
  }

  /** Stops watching and waits for the converges in flight; containers keep running. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.watchAbort.abort();
    for (const t of this.timers) clearInterval(t);
    this.queue.length = 0;
    await this.idle();
    await this.flush();
    await Promise.allSettled(this.loops);
    await this.o.driver.stop();
    this.o.client.close();
  }

  /** Resolves when no converge is running or queued. */
  idle(): Promise<void> {
    if (this.active === 0 && this.queue.length === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  private async retry<T>(fn: () => Promise<T>): Promise<T> {
    for (let delay = 250; ; delay = Math.min(delay * 2, 5000)) {
      try {
        return await fn();
      } catch (err) {
        if (this.stopped) throw err;
        this.log.warn({ err: (err as Error).message }, 'server unreachable, retrying');
        await sleep(delay);
      }
    }
  }

  private async register(retry: boolean): Promise<void> {
    const call = async () => {
      const cap = await this.o.driver.capacity();
      const r = await this.o.client.register({
        kinds: this.o.driver.kinds, ...cap, version: AGENT_VERSION,
        ...(this.o.availabilityZone ? { availability_zone: this.o.availabilityZone } : {}),
        ...(this.o.hostIp ? { host_ip: this.o.hostIp } : {}),
        ...(this.o.allocationRatios?.cpu ? { cpu_allocation_ratio: this.o.allocationRatios.cpu } : {}),
        ...(this.o.allocationRatios?.ram ? { ram_allocation_ratio: this.o.allocationRatios.ram } : {}),
        ...(this.o.allocationRatios?.disk ? { disk_allocation_ratio: this.o.allocationRatios.disk } : {}),
      });
      this.heartbeatMs = r.heartbeat_interval * 1000;
    };
    if (retry) await this.retry(call);
    else await call().catch((err: Error) => this.log.warn({ err: err.message }, 'heartbeat failed'));
  }

  private async watchLoop(): Promise<void> {
    while (!this.stopped) {
      try {
        const known: Record<string, number> = {};
        for (const [id, d] of this.desired) known[id] = d.version;
        const r = await this.o.client.watch({ known, requests: [...this.requestsInFlight], wait: this.o.watchWait }, this.watchAbort.signal);
        if (this.stopped) return;
        for (const s of r.servers) {
          this.desired.set(s.id, s);
          this.enqueue(s.id);
        }
        for (const id of r.gone) {
          this.desired.delete(id);
          this.lastReport.delete(id);
          this.enqueue(id);
        }
        this.handleRequests(r.requests);
        // in a burst (many servers placed one after another), let changes gather before asking again
        if (r.servers.length || r.gone.length) await sleep(15);
      } catch (err) {
        if (this.stopped) return;
        this.log.warn({ err: (err as Error).message }, 'watch failed');
        await sleep(err instanceof HttpError && err.status < 500 ? 5000 : 1000);
      }
    }
  }

  private enqueue(id: string): void {
    if (this.stopped) return;
    if (this.running.has(id)) {
      this.dirty.add(id);
      return;
    }
    if (!this.queue.includes(id)) this.queue.push(id);
    this.pump();
  }

  private pump(): void {
    while (this.active < this.o.concurrency && this.queue.length) {
      const id = this.queue.shift()!;
      if (this.running.has(id)) {
        this.dirty.add(id);
        continue;
      }
      this.running.add(id);
      this.active++;
      void this.work(id).finally(() => {
        this.running.delete(id);
        this.active--;
        if (this.dirty.delete(id)) this.enqueue(id);
        this.pump();
        if (this.active === 0 && this.queue.length === 0) {
          const w = this.idleWaiters;
          this.idleWaiters = [];
          for (const f of w) f();
        }
      });
    }
  }

  /** One converge step for one server. */
  private async work(id: string): Promise<void> {
    const d = this.desired.get(id);
    try {
      if (!d) {
        // not ours (any more): clean up whatever is left
        await this.o.driver.destroy(id);
        this.converged.delete(id);
        return;
      }
      if (d.deleted) {
        await this.o.driver.destroy(id);
        this.converged.set(id, d.version);
        this.queueReport({ id, version: d.version, power_state: PowerState.NOSTATE, state: 'deleted' });
        return;
      }
      if (this.converged.get(id) === d.version) {
        // nothing new was asked: only observe (a container that exited stays stopped, as Nova's power sync wants)
        const obs = await this.o.driver.observe(id, d.power);
        if (obs) this.queueReport({ id, version: d.version, ...obs });
        return;
      }
      const t0 = performance.now();
      const obs = await this.o.driver.converge(d);
      this.converged.set(id, d.version);
      this.queueReport({ id, version: d.version, ...obs });
      this.log.debug({ server: id, version: d.version, ms: Math.round(performance.now() - t0) }, 'converged');
    } catch (err) {
      const message = String((err as Error).message).slice(0, 1500);
      if (!d || d.deleted) {
        this.log.error({ server: id, err: message }, 'cleanup failed; retrying at the next sweep');
        return;
      }
      this.converged.set(id, d.version);
      if (d.vm_state === 'building') {
        this.log.warn({ server: id, err: message }, 'build failed');
        await this.o.driver.destroy(id).catch((e: Error) => this.log.error({ server: id, err: e.message }, 'rollback of a failed build failed'));
        this.queueReport({ id, version: d.version, power_state: PowerState.NOSTATE, state: 'build_failed', message: err instanceof PermanentError ? `${message} (permanent)` : message });
      } else {
        this.log.warn({ server: id, err: message }, 'converge failed');
        const obs = await this.o.driver.observe(id, d.power).catch(() => null);
        this.queueReport({ id, version: d.version, power_state: obs?.power_state ?? PowerState.NOSTATE, state: 'error', message });
      }
    }
  }

  private queueReport(r: ServerReport): void {
    if (r.message && r.message.length > 2000) r.message = `${r.message.slice(0, 2000)}…`;
    const key = JSON.stringify(r);
    if (this.lastReport.get(r.id) === key) return;
    this.lastReport.set(r.id, key);
    this.pendingServers.set(r.id, r);
    void this.flush();
  }

  /** Sends every queued report in one call; a call in flight collects the next batch. */
  private flush(): Promise<void> {
    if (this.flushing) return this.flushing;
    if (!this.pendingServers.size && !this.pendingRequests.length) return Promise.resolve();
    this.flushing = (async () => {
      for (let attempt = 0; this.pendingServers.size || this.pendingRequests.length; attempt++) {
        const servers = [...this.pendingServers.values()];
        const requests = this.pendingRequests;
        this.pendingServers = new Map();
        this.pendingRequests = [];
        try {
          await this.o.client.report({ servers, requests });
          attempt = 0;
        } catch (err) {
          if (err instanceof HttpError && err.status >= 400 && err.status < 500 && err.status !== 404 && err.status !== 401) {
            // the server refuses this batch as it is: sending it again would not help
            this.log.error({ err: err.message }, 'report refused; dropped');
            continue;
          }
          this.log.warn({ err: (err as Error).message }, 'report failed, retrying');
          for (const s of servers) if (!this.pendingServers.has(s.id)) this.pendingServers.set(s.id, s);
          this.pendingRequests.unshift(...requests);
          if (this.stopped && attempt > 2) return;
          await sleep(Math.min(250 * 2 ** attempt, 5000));
        }
      }
    })().finally(() => {
      this.flushing = null;
      if (this.pendingServers.size || this.pendingRequests.length) void this.flush();
    });
    return this.flushing;
  }

  private handleRequests(reqs: PendingRequest[]): void {
    for (const r of reqs) {
      if (this.requestsInFlight.has(r.id)) continue;
      this.requestsInFlight.add(r.id);
      void this.serve(r).then((result) => ({ id: r.id, ok: true, result }), (err: Error) => ({ id: r.id, ok: false, message: err.message }))
        .then((rep: RequestReport) => {
          if (rep.message && rep.message.length > 2000) rep.message = `${rep.message.slice(0, 2000)}…`;
          this.pendingRequests.push(rep);
          return this.flush();
        })
        .finally(() => this.requestsInFlight.delete(r.id));
    }
  }

  private async serve(r: PendingRequest): Promise<Record<string, unknown>> {
    const local = await this.o.driver.observe(r.server_id);
    if (!local) throw new Error(`server ${r.server_id} is not on host ${this.o.client.hostname}`);
    if (r.kind === 'console') {
      const length = typeof r.args.length === 'number' ? r.args.length : undefined;
      return { output: await this.o.driver.consoleOutput(r.server_id, length) };
    }
    if (r.kind === 'snapshot') {
      const imageId = String(r.args.image_id ?? '');
      if (!imageId) throw new Error('snapshot request without image_id');
      await this.o.driver.snapshot(r.server_id, (archive) => this.o.client.uploadImage(imageId, archive));
      return { image_id: imageId };
    }
    throw new Error(`unknown request kind ${r.kind}`);
  }

  /** Observes every server (reports what changed, e.g. a container that exited) and lets the driver tidy up. */
  private async sweep(): Promise<void> {
    if (this.stopped) return;
    for (const id of this.desired.keys()) if (!this.running.has(id)) this.enqueue(id);
    const local = await this.o.driver.localServers().catch(() => [] as string[]);
    for (const id of local) if (!this.desired.has(id) && !this.running.has(id)) this.enqueue(id);
    await this.o.driver.sweep(new Set(this.desired.keys())).catch((err: Error) => this.log.warn({ err: err.message }, 'sweep failed'));
  }
}
