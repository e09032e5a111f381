// The host agent: registers its host, long-polls the server for the desired
// state of the resources placed on it (every kind its drivers serve),
// converges the host (level-triggered: it acts on the difference between
// desired and observed, so a restart anywhere simply converges again),
// reports what it observes, and heartbeats.
//
// One reconciler per resource kind (kinds/), each with its own work queue
// (queue.ts: per-id dedupe, re-run when changed while running, bounded
// concurrency, retry with backoff), so a slow kind never holds up another.
// Reports are batched (reports.ts).
import type { Logger } from 'pino';
import { PROTOCOL_VERSION, type BaremetalConductor, type Hypervisor, type Known, type PendingRequest, type Resource } from '../fleet/protocol.ts';
import { HttpError, type AgentTransport } from './client.ts';
import type { Capacity, Driver } from './drivers/driver.ts';
import { toResourceError } from './errors.ts';
import { serverReconciler } from './kinds/server.ts';
import { WorkQueue } from './queue.ts';
import type { Reconciler, ReconcilerContext, ReconcilerFactory } from './reconciler.ts';
import { ReportBatcher } from './reports.ts';

export const AGENT_VERSION = '0.2.0';

/** The reconciler of each resource kind the agent knows; a driver serving a kind not here is refused at start. */
export const RECONCILERS: Readonly<Record<string, ReconcilerFactory>> = { server: serverReconciler };

export interface AgentOptions {
  client: AgentTransport;
  drivers: Driver[];
  log: Logger;
  /** Converges running at once, per kind (a number for every kind, or per kind). */
  concurrency?: number | Record<string, number>;
  /** Long-poll length in seconds. */
  watchWait?: number;
  /** How often every resource is observed and the drivers swept, in ms. */
  sweepIntervalMs?: number;
  /** Retry delays of a failed converge, in ms (first, longest). */
  retry?: { baseMs?: number; maxMs?: number };
  availabilityZone?: string;
  hostIp?: string;
  /** Overcommit ratios this host announces (Nova's defaults: 16, 1.5, 1). */
  allocationRatios?: { cpu?: number; ram?: number; disk?: number };
  /** Reconcilers by kind (default RECONCILERS); tests add their own kinds. */
  reconcilers?: Readonly<Record<string, ReconcilerFactory>>;
}

interface KindState {
  reconciler: Reconciler;
  queue: WorkQueue;
  desired: Map<string, Resource>;
  /** Sweeps so far (the re-check of desired resources runs at every `recheckEvery`th). */
  sweeps: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class Agent {
  private readonly o: AgentOptions & { watchWait: number; sweepIntervalMs: number };
  private readonly log: Logger;
  private readonly kinds = new Map<string, KindState>();
  private readonly serves: Record<string, string[]> = {};
  private readonly reports: ReportBatcher;
  private readonly requestsInFlight = new Set<string>();
  private stopped = false;
  private heartbeatMs = 10_000;
  private timers: NodeJS.Timeout[] = [];
  private loops: Promise<void>[] = [];
  private watchAbort = new AbortController();

  constructor(o: AgentOptions) {
    this.o = { ...o, watchWait: o.watchWait ?? 25, sweepIntervalMs: o.sweepIntervalMs ?? 10_000 };
    this.log = o.log;
    this.reports = new ReportBatcher({ send: (r) => this.o.client.report(r), log: o.log });
    const factories = o.reconcilers ?? RECONCILERS;
    const ctx: ReconcilerContext = {
      log: o.log, hostname: o.client.hostname,
      report: (r) => this.reports.resource(r),
      uploadImage: (id, archive) => this.o.client.uploadImage(id, archive),
      ...(o.client.putBackupChunk && o.client.getBackupChunk ? {
        backupChunks: {
          put: (id: string, index: number, sha: string, data: Buffer) => this.o.client.putBackupChunk!(id, index, sha, data),
          get: (id: string, index: number) => this.o.client.getBackupChunk!(id, index),
        },
      } : {}),
    };
    const byKind = new Map<string, Driver[]>();
    for (const d of o.drivers) {
      for (const [kind, variants] of Object.entries(d.serves)) {
        byKind.set(kind, [...(byKind.get(kind) ?? []), d]);
        this.serves[kind] = [...new Set([...(this.serves[kind] ?? []), ...variants])].sort();
      }
    }
    for (const [kind, drivers] of byKind) {
      const factory = factories[kind];
      if (!factory) throw new Error(`no reconciler for resource kind ${kind} (driver ${drivers.map((d) => d.name).join(', ')})`);
      const desired = new Map<string, Resource>();
      const requeue = (id: string) => {
        if (!this.stopped && desired.has(id)) this.kinds.get(kind)?.queue.add(id);
      };
      const reconciler = factory(drivers, { ...ctx, log: o.log.child({ kind }), requeue });
      const concurrency = typeof o.concurrency === 'number' ? o.concurrency : o.concurrency?.[kind] ?? 8;
      const queue = new WorkQueue((id) => reconciler.reconcile(id, desired.get(id)), {
        concurrency, baseDelayMs: o.retry?.baseMs, maxDelayMs: o.retry?.maxMs,
        onError: (id, err, attempt, delay) => this.log.warn({ kind, id, attempt, retryInMs: delay, err: (err as Error).message }, 'reconcile failed; retrying'),
      });
      this.kinds.set(kind, { reconciler, queue, desired, sweeps: 0 });
    }
  }

  /** Starts the drivers, registers (retrying until the server answers), syncs once, then runs the loops. */
  async start(): Promise<void> {
    for (const d of this.o.drivers) await d.start();
    await this.register(true);
    // first sync: the full desired state of this host; anything local that is not in it is an orphan
    const first = await this.retry(() => this.o.client.watch({ known: this.known(), wait: 0 }));
    this.take(first.resources);
    for (const [kind, k] of this.kinds) {
      for (const id of await k.reconciler.local()) {
        if (!k.desired.has(id)) {
          this.log.info({ kind, id }, 'removing a resource this host no longer holds');
          k.queue.add(id);
        }
      }
      for (const id of k.desired.keys()) k.queue.add(id);
    }
    this.handleRequests(first.requests);
    this.loops.push(this.watchLoop());
    this.timers.push(setInterval(() => void this.register(false), this.heartbeatMs));
    this.timers.push(setInterval(() => void this.sweep(), this.o.sweepIntervalMs));
    this.log.info({ host: this.o.client.hostname, kinds: this.serves, resources: Object.fromEntries([...this.kinds].map(([k, s]) => [k, s.desired.size])) }, 'agent started');
  }

  /** Stops watching and waits for the converges in flight; what runs keeps running. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.watchAbort.abort();
    for (const t of this.timers) clearInterval(t);
    for (const k of this.kinds.values()) k.queue.stop();
    await this.idle();
    await this.reports.close();
    await Promise.allSettled(this.loops);
    for (const d of this.o.drivers) await d.stop();
    this.o.client.close();
  }

  /** Resolves when no converge of any kind is running or queued. */
  async idle(): Promise<void> {
    await Promise.all([...this.kinds.values()].map((k) => k.queue.idle()));
  }

  /** Resolves once every report queued so far is sent. */
  flushReports(): Promise<void> {
    return this.reports.flush();
  }

  private async retry<T>(fn: () => Promise<T>): Promise<T> {
    for (let delay = 250; ; delay = Math.min(delay * 2, 5000)) {
      try {
        return await fn();
      } catch (err) {
        if (this.stopped) throw err;
        // a refusal of this agent's protocol version is final
        if (err instanceof HttpError && err.status === 400) throw err;
        this.log.warn({ err: (err as Error).message }, 'server unreachable, retrying');
        await sleep(delay);
      }
    }
  }

  private async capacity(): Promise<Capacity> {
    for (const d of this.o.drivers) if (d.capacity) return d.capacity();
    return { vcpus: 0, memory_mb: 0, disk_gb: 0 };
  }

  private baremetal(): BaremetalConductor | undefined {
    for (const d of this.o.drivers) if (d.baremetal) return d.baremetal();
    return undefined;
  }

  private async hypervisor(): Promise<Hypervisor | undefined> {
    for (const d of this.o.drivers) if (d.hypervisor) return d.hypervisor();
    return undefined;
  }

  private async register(retry: boolean): Promise<void> {
    const call = async () => {
      const cap = await this.capacity();
      const hypervisor = await this.hypervisor();
      const volumePools = [];
      for (const d of this.o.drivers) if (d.volumePools) volumePools.push(...await d.volumePools(this.o.client.hostname));
      const r = await this.o.client.register({
        protocol: PROTOCOL_VERSION, kinds: this.serves, ...cap, version: AGENT_VERSION,
        ...(this.o.availabilityZone ? { availability_zone: this.o.availabilityZone } : {}),
        ...(this.o.hostIp ? { host_ip: this.o.hostIp } : {}),
        ...(hypervisor ? { hypervisor } : {}),
        ...(volumePools.length ? { volume_pools: volumePools } : {}),
        ...(this.baremetal() ? { baremetal: this.baremetal() } : {}),
        ...(this.o.allocationRatios?.cpu ? { cpu_allocation_ratio: this.o.allocationRatios.cpu } : {}),
        ...(this.o.allocationRatios?.ram ? { ram_allocation_ratio: this.o.allocationRatios.ram } : {}),
        ...(this.o.allocationRatios?.disk ? { disk_allocation_ratio: this.o.allocationRatios.disk } : {}),
      });
      this.heartbeatMs = r.heartbeat_interval * 1000;
    };
    if (retry) await this.retry(call);
    else await call().catch((err: Error) => this.log.warn({ err: err.message }, 'heartbeat failed'));
  }

  /** Takes new desired state; returns the resources taken (of kinds this agent serves). */
  private take(resources: Resource[]): Resource[] {
    const taken: Resource[] = [];
    for (const r of resources) {
      const k = this.kinds.get(r.kind);
      if (!k) {
        this.log.warn({ kind: r.kind, id: r.id }, 'a resource of a kind this agent does not serve');
        continue;
      }
      k.desired.set(r.id, r);
      taken.push(r);
    }
    return taken;
  }

  private known(): Known {
    const known: Known = {};
    for (const [kind, k] of this.kinds) {
      const m: Record<string, number> = {};
      for (const [id, r] of k.desired) m[id] = r.version;
      known[kind] = m;
    }
    return known;
  }

  private async watchLoop(): Promise<void> {
    while (!this.stopped) {
      try {
        const r = await this.o.client.watch({ known: this.known(), requests: [...this.requestsInFlight], wait: this.o.watchWait }, this.watchAbort.signal);
        if (this.stopped) return;
        for (const res of this.take(r.resources)) this.kinds.get(res.kind)!.queue.add(res.id);
        for (const g of r.gone) {
          const k = this.kinds.get(g.kind);
          if (!k) continue;
          k.desired.delete(g.id);
          this.reports.forget(g.kind, g.id);
          k.queue.add(g.id);
        }
        this.handleRequests(r.requests);
        // in a burst (many resources placed one after another), let changes gather before asking again
        if (r.resources.length || r.gone.length) await sleep(15);
      } catch (err) {
        if (this.stopped) return;
        this.log.warn({ err: (err as Error).message }, 'watch failed');
        await sleep(err instanceof HttpError && err.status < 500 ? 5000 : 1000);
      }
    }
  }

  private handleRequests(reqs: PendingRequest[]): void {
    for (const r of reqs) {
      if (this.requestsInFlight.has(r.id)) continue;
      const rec = this.kinds.get(r.kind)?.reconciler;
      this.requestsInFlight.add(r.id);
      const work = rec?.serve ? rec.serve(r) : Promise.reject(new Error(`this agent serves no ${r.kind} requests`));
      void work.then((result) => ({ id: r.id, ok: true, result }), (err: unknown) => ({ id: r.id, ok: false, error: toResourceError(err) }))
        .then((rep) => {
          this.reports.request(rep);
          return this.reports.flush();
        })
        .finally(() => this.requestsInFlight.delete(r.id));
    }
  }

  /** Observes every resource (reports what changed, e.g. a container that exited) and lets the reconcilers tidy up. */
  private async sweep(): Promise<void> {
    if (this.stopped) return;
    for (const k of this.kinds.values()) {
      const recheck = k.sweeps++ % Math.max(1, k.reconciler.recheckEvery ?? 1) === 0;
      if (recheck) for (const id of k.desired.keys()) if (!k.queue.isRunning(id)) k.queue.add(id, false);
      const local = await k.reconciler.local().catch(() => [] as string[]);
      for (const id of local) if (!k.desired.has(id) && !k.queue.isRunning(id)) k.queue.add(id, false);
      await k.reconciler.sweep?.(new Set(k.desired.keys())).catch((err: Error) => this.log.warn({ err: err.message }, 'sweep failed'));
    }
  }
}
