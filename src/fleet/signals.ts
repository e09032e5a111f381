// Wake-ups for long polls: a generation counter per key. A waiter records the
// generation before it reads the database and sleeps only while the generation
// is unchanged, so a notify between the read and the sleep is never lost.
export class Signals {
  private readonly gens = new Map<string, number>();
  private readonly waiters = new Map<string, Set<() => void>>();

  gen(key: string): number {
    return this.gens.get(key) ?? 0;
  }

  bump(key: string): void {
    this.gens.set(key, this.gen(key) + 1);
    const w = this.waiters.get(key);
    if (!w) return;
    this.waiters.delete(key);
    for (const f of w) f();
  }

  /** Resolves when `key` moves past `since`, or after `ms`. */
  wait(key: string, since: number, ms: number): Promise<void> {
    if (this.gen(key) !== since || ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      let set = this.waiters.get(key);
      if (!set) this.waiters.set(key, (set = new Set()));
      const done = () => {
        clearTimeout(timer);
        this.waiters.get(key)?.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      set.add(done);
    });
  }

  wakeAll(): void {
    for (const key of [...this.waiters.keys()]) this.bump(key);
  }
}
