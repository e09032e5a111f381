// A lock per key (e.g. one per volume): `run(keys, fn)` runs fn once no
// earlier caller still holds or waits for one of its keys; `run(ALL_KEYS, fn)`
// excludes every key (a pool-wide step such as a garbage collection).
// First come, first served: a caller never overtakes an earlier one it
// conflicts with. Not re-entrant: fn must not run() a key it holds.
export const ALL_KEYS = Symbol('all keys');
export type LockKeys = readonly string[] | typeof ALL_KEYS;

interface Holder { keys: LockKeys; start: () => void; running: boolean }

const conflict = (a: LockKeys, b: LockKeys): boolean => a === ALL_KEYS || b === ALL_KEYS || a.some((k) => b.includes(k));

export class KeyedLock {
  /** Holders and waiters, in arrival order. */
  private readonly queue: Holder[] = [];

  async run<T>(keys: LockKeys, fn: () => Promise<T>): Promise<T> {
    let start!: () => void;
    const ready = new Promise<void>((r) => { start = r; });
    const h: Holder = { keys, start, running: false };
    this.queue.push(h);
    this.pump();
    await ready;
    try {
      return await fn();
    } finally {
      this.queue.splice(this.queue.indexOf(h), 1);
      this.pump();
    }
  }

  /** Whether any caller holds or waits for a key (tests). */
  get busy(): boolean { return this.queue.length > 0; }

  private pump(): void {
    for (let i = 0; i < this.queue.length; i++) {
      const h = this.queue[i]!;
      if (h.running || this.queue.slice(0, i).some((p) => conflict(p.keys, h.keys))) continue;
      h.running = true;
      h.start();
    }
  }
}
