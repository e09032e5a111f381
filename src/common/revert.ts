/**
 * A reverter for multi-step work: each step registers its undo; on failure the
 * undos run in reverse order, on success they are dropped.
 */
export class Reverter {
  private undos: Array<() => unknown> = [];
  add(undo: () => unknown): void {
    this.undos.push(undo);
  }
  async fail(): Promise<void> {
    const undos = this.undos.reverse();
    this.undos = [];
    for (const undo of undos) {
      try {
        await undo();
      } catch {
        // best effort: the reconciler finishes what an undo could not
      }
    }
  }
  success(): void {
    this.undos = [];
  }
}
