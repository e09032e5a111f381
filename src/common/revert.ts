/**
 * A reverter for multi-step work: each step registers its undo; on failure the
 * undos run in reverse order, on success they are dropped.
 */
export class Reverter {
  private undos: Array<() => unknown> = [];
  add(undo: () => unknown): void {
    this.undos.push(undo);
  }
  /**
   * Runs the undos in reverse order, each one even when an earlier one
   * failed; returns the errors of those that failed (best effort: the
   * reconciler finishes what an undo could not, the caller reports them).
   */
  async fail(): Promise<Error[]> {
    const undos = this.undos.reverse();
    this.undos = [];
    const failed: Error[] = [];
    for (const undo of undos) {
      try {
        await undo();
      } catch (err) {
        failed.push(err instanceof Error ? err : new Error(String(err)));
      }
    }
    return failed;
  }
  success(): void {
    this.undos = [];
  }
}
