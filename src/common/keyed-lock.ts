// Serializes async work per key: `run(key, work)` runs work once no earlier
// caller still holds or waits for that key; work under other keys runs side
// by side. `run([k1, k2], work)` holds several keys at once (a clone holds
// its volume and its source), `run(ALL_KEYS, work)` excludes every key (a
// pool-wide step such as a garbage collection). First come, first served: a
// caller never overtakes an earlier one it conflicts with, whether that one
// succeeds or fails. Not re-entrant: work must not wait for work under a key
// it holds. Users: the VM driver (one change at a time per server), the file
// volume backend (one call at a time per volume).
export const ALL_KEYS = Symbol('all keys');
export type LockKeys = string | readonly string[] | typeof ALL_KEYS;

interface Holder { keys: readonly string[] | typeof ALL_KEYS; start: () => void; running: boolean }

const conflict = (a: Holder['keys'], b: Holder['keys']): boolean => a === ALL_KEYS || b === ALL_KEYS || a.some((k) => b.includes(k));

export class KeyedLock {
  /** Holders and waiters, in arrival order; a holder leaves when its work settles. */
  private readonly queue: Holder[] = [];

  async run<T>(keys: LockKeys, work: () => Promise<T>): Promise<T> {
    let start!: () => void;
    const ready = new Promise<void>((r) => { start = r; });
    const h: Holder = { keys: typeof keys === 'string' ? [keys] : keys, start, running: false };
    this.queue.push(h);
    this.pump();
    await ready;
    try {
      return await work();
    } finally {
      this.queue.splice(this.queue.indexOf(h), 1);
      this.pump();
    }
  }

  /** Whether work under `key` (any key when none is given) runs or waits. */
  busy(key?: string): boolean {
    return key === undefined ? this.queue.length > 0 : this.queue.some((h) => conflict(h.keys, [key]));
  }

  private pump(): void {
    for (let i = 0; i < this.queue.length; i++) {
      const h = this.queue[i]!;
      if (h.running || this.queue.slice(0, i).some((p) => conflict(p.keys, h.keys))) continue;
      h.running = true;
      h.start();
    }
  }
}
