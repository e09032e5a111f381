// Cuts a byte stream into consecutive segments of at most `size` bytes, each
// an async iterable of its own, for writers that store one stream as several
// objects (an object store caps its objects; the parts are then composed):
// the object store's segmented put (src/object/segmented.ts). A segment must be read to
// its end before the next one is asked for.
export class Segmenter {
  private readonly reader: AsyncIterator<Buffer | Uint8Array>;
  private readonly size: number;
  private carry: Buffer | undefined;
  private done = false;

  constructor(source: AsyncIterable<Buffer | Uint8Array>, size: number) {
    if (!(size > 0)) throw new Error('segment size must be positive');
    this.reader = source[Symbol.asyncIterator]();
    this.size = size;
  }

  private async chunk(): Promise<Buffer | undefined> {
    if (this.carry) {
      const b = this.carry;
      this.carry = undefined;
      return b;
    }
    while (!this.done) {
      const r = await this.reader.next();
      if (r.done) {
        this.done = true;
        return undefined;
      }
      const b = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
      if (b.length) return b;
    }
    return undefined;
  }

  /** The next segment, or null once the source has no more bytes (an empty source has no segment at all). */
  async next(): Promise<AsyncGenerator<Buffer> | null> {
    const first = await this.chunk();
    if (!first) return null;
    this.carry = first;
    const self = this;
    return (async function* segment(): AsyncGenerator<Buffer> {
      let n = 0;
      while (n < self.size) {
        const b = await self.chunk();
        if (!b) return;
        if (n + b.length > self.size) {
          yield b.subarray(0, self.size - n);
          self.carry = b.subarray(self.size - n);
          return;
        }
        n += b.length;
        yield b;
      }
    })();
  }
}
