/**
 * Serializes async work per key: work under one key runs one at a time, in
 * the order it was asked for; work under different keys runs side by side.
 * A promise chain per key; a key whose chain is empty is forgotten. Not
 * reentrant: work must not wait for work under its own key.
 */
export class KeyedLock {
  private readonly tails = new Map<string, Promise<void>>();

  run<T>(key: string, work: () => Promise<T>): Promise<T> {
    const result = (this.tails.get(key) ?? Promise.resolve()).then(work);
    // the next in line waits for this one to settle, whether it succeeded or not
    const tail = result.then(() => undefined, () => undefined);
    this.tails.set(key, tail);
    void tail.then(() => { if (this.tails.get(key) === tail) this.tails.delete(key); });
    return result;
  }

  /** Whether work under `key` runs or waits. */
  busy(key: string): boolean {
    return this.tails.has(key);
  }
}
