// Gives memory back once a burst of requests is over. Under load, the young
// generation promotes short-lived request objects and V8 grows the old
// generation ahead of them; a full collection frees the objects, but V8 keeps
// the freed pages pooled. Only a memory-reducing collection returns them.
// V8's memory reducer makes those collections on its own, but once it has
// run after start-up it stays disarmed until the heap outgrows its size then
// by 10 MB, so a server that settles at a few MB above that never gets one
// (measured: 15 MiB held after bin/bench identity, docs/performance.md).
import { getHeapStatistics } from 'node:v8';

/** The collector V8 exposes under --expose-gc (bin/stratus passes it). */
export type Collector = (options: { type: 'major'; flavor: 'last-resort'; execution: 'sync' }) => void;

export interface IdleMemoryOptions {
  /** Quiet time after the last request before collecting. */
  idleMs?: number;
  /** Collect only when V8's committed heap grew this much since the last collection. */
  minGrowthBytes?: number;
  /** V8's committed heap in bytes (injectable for tests). */
  committed?: () => number;
}

export class IdleMemory {
  private readonly collect: Collector | undefined;
  private readonly idleMs: number;
  private readonly minGrowth: number;
  private readonly committed: () => number;
  private lastActivity = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private afterLastCollection: number;
  /** Collections made so far. */
  collections = 0;

  constructor(collect: Collector | undefined, o: IdleMemoryOptions = {}) {
    this.collect = collect;
    this.idleMs = o.idleMs ?? 2000;
    this.minGrowth = o.minGrowthBytes ?? 4 * 1024 * 1024;
    this.committed = o.committed ?? (() => getHeapStatistics().total_heap_size);
    this.afterLastCollection = this.committed();
  }

  /** Called on every response: (re)starts the quiet-time clock. */
  noteActivity(): void {
    if (!this.collect || this.stopped) return;
    this.lastActivity = Date.now();
    this.timer ??= setTimeout(() => this.check(), this.idleMs).unref();
  }

  private check(): void {
    this.timer = undefined;
    const quiet = Date.now() - this.lastActivity;
    if (quiet < this.idleMs) {
      this.timer = setTimeout(() => this.check(), this.idleMs - quiet).unref();
      return;
    }
    if (this.committed() - this.afterLastCollection < this.minGrowth) return;
    this.collectGarbage();
  }

  /**
   * Collects at once: start-up's garbage, before the server reports ready.
   * Freed before the first request, the malloc space it held is reused or
   * trimmed; freed 2 s into traffic, it is left as holes between what the
   * requests keep (measured through bin/bench identity: glibc's heap at
   * 11.5-11.9 MiB against 8.3-8.8, docs/performance.md).
   */
  collectNow(): void {
    if (!this.collect || this.stopped) return;
    this.collectGarbage();
  }

  private collectGarbage(): void {
    this.collect!({ type: 'major', flavor: 'last-resort', execution: 'sync' });
    this.collections++;
    this.afterLastCollection = this.committed();
  }

  /** For good: a response that completes during shutdown does not schedule a collection. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
