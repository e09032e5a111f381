// A work queue of keys (resource ids), as a controller's: a key is queued at
// most once; a key added while its work runs is marked dirty and runs again
// right after (the work always reads the latest desired state, so changes
// that came meanwhile are never lost nor run twice at once); at most
// `concurrency` keys run at a time; a key whose work throws runs again after
// an exponential backoff (base, 2×base, ... up to max), reset by a success.
// A change (add with `changed`) cuts a backoff short; a periodic re-check
// (add without it) does not.

export interface WorkQueueOptions {
  concurrency: number;
  /** First retry delay after a failure, in ms. */
  baseDelayMs?: number;
  /** Longest retry delay, in ms. */
  maxDelayMs?: number;
  /** Called with each failure (after which the key is retried). */
  onError?(key: string, err: unknown, attempt: number, delayMs: number): void;
}

export class WorkQueue {
  private readonly o: Required<Omit<WorkQueueOptions, 'onError'>> & Pick<WorkQueueOptions, 'onError'>;
  private readonly work: (key: string) => Promise<void>;
  private readonly queue: string[] = [];
  private readonly queued = new Set<string>();
  private readonly running = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly backoff = new Map<string, NodeJS.Timeout>();
  private idleWaiters: Array<() => void> = [];
  private stopped = false;

  constructor(work: (key: string) => Promise<void>, o: WorkQueueOptions) {
    this.work = work;
    // an option given as undefined keeps its default (a NaN delay would retry at once, in a tight loop)
    this.o = { ...o, baseDelayMs: o.baseDelayMs ?? 250, maxDelayMs: o.maxDelayMs ?? 30_000 };
  }

  /** Queues `key`; `changed` says its desired state changed (a backoff in progress is cut short). */
  add(key: string, changed = true): void {
    if (this.stopped) return;
    if (this.running.has(key)) {
      this.dirty.add(key);
      return;
    }
    const waiting = this.backoff.get(key);
    if (waiting) {
      if (!changed) return;
      clearTimeout(waiting);
      this.backoff.delete(key);
    }
    if (this.queued.has(key)) return;
    this.queued.add(key);
    this.queue.push(key);
    this.pump();
  }

  /** Keys running now. */
  isRunning(key: string): boolean {
    return this.running.has(key);
  }

  /** Failures in a row of a key (0 after a success). */
  failuresOf(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  get size(): number {
    return this.queue.length + this.running.size;
  }

  /** Resolves when nothing runs and nothing is queued (keys waiting out a backoff do not count). */
  idle(): Promise<void> {
    if (this.size === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  /** Drops what is queued and every pending retry; work running goes on (await idle()). */
  stop(): void {
    this.stopped = true;
    this.queue.length = 0;
    this.queued.clear();
    this.dirty.clear();
    for (const t of this.backoff.values()) clearTimeout(t);
    this.backoff.clear();
    this.settle();
  }

  private pump(): void {
    while (this.running.size < this.o.concurrency && this.queue.length) {
      const key = this.queue.shift()!;
      this.queued.delete(key);
      this.running.add(key);
      void this.run(key);
    }
  }

  private async run(key: string): Promise<void> {
    try {
      await this.work(key);
      this.failures.delete(key);
    } catch (err) {
      const attempt = (this.failures.get(key) ?? 0) + 1;
      this.failures.set(key, attempt);
      const delay = Math.min(this.o.baseDelayMs * 2 ** (attempt - 1), this.o.maxDelayMs);
      this.o.onError?.(key, err, attempt, delay);
      if (!this.stopped && !this.dirty.has(key)) {
        const t = setTimeout(() => {
          this.backoff.delete(key);
          this.add(key, true);
        }, delay);
        t.unref?.();
        this.backoff.set(key, t);
      }
    } finally {
      this.running.delete(key);
      // changed while running: run again now (a failure's backoff gives way to the change)
      if (this.dirty.delete(key) && !this.stopped) this.add(key, true);
      this.pump();
      this.settle();
    }
  }

  private settle(): void {
    if (this.size !== 0) return;
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const f of w) f();
  }
}
