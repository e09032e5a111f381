// Named byte streams multiplexed over one message channel (the WebSocket an
// agent opens to the server): consoles and exec need bytes both ways between
// a user and a process on a host that only connects outward.
//
// Each frame is one binary message: [type u8][stream id u32 BE][payload].
//   OPEN    payload JSON {name, args}: the opener asks for a stream
//   ACCEPT  the stream exists on the other side; data may flow
//   DATA    bytes, at most the credit the receiver granted
//   WINDOW  payload u32: more credit for DATA on this stream
//   END     no more DATA from this side (half close)
//   RESET   payload UTF-8 reason: the stream is gone both ways
// Flow control is per stream, as in HTTP/2 and SSH: a sender may have at most
// `window` bytes unread by the receiving stream's consumer, and the receiver
// returns credit as its consumer reads. One slow stream therefore stops only
// itself; the others keep flowing, and no side buffers more than a window per
// stream. Writes also wait while the channel's own send buffer is over its
// high-water mark, so a fast producer cannot queue without bound either.
import { Duplex } from 'node:stream';

export const FrameType = { OPEN: 1, ACCEPT: 2, DATA: 3, WINDOW: 4, END: 5, RESET: 6 } as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

const HEADER = 5;

export function encodeFrame(type: FrameType, id: number, payload?: Buffer): Buffer {
  const b = Buffer.allocUnsafe(HEADER + (payload?.length ?? 0));
  b[0] = type;
  b.writeUInt32BE(id, 1);
  payload?.copy(b, HEADER);
  return b;
}

export function decodeFrame(b: Buffer): { type: number; id: number; payload: Buffer } | null {
  if (b.length < HEADER) return null;
  return { type: b[0]!, id: b.readUInt32BE(1), payload: b.subarray(HEADER) };
}

/** What a multiplexer sends its frames over: one message per frame, `cb` once it is handed to the network. */
export interface FrameSink {
  send(frame: Buffer, cb: (err?: Error) => void): void;
}

export interface OpenRequest {
  name: string;
  args: Record<string, unknown>;
}

export interface MuxOptions {
  /** The side that opened the channel numbers its streams odd, the other even, so both may open streams. */
  initiator: boolean;
  /** Serves a stream the other side opens; throw (or reject) to refuse it with that message. */
  onOpen?: (req: OpenRequest) => Promise<Duplex>;
  /** Bytes a stream's sender may have in flight unread (the receive window). */
  window?: number;
  /** Largest DATA payload. */
  maxFrame?: number;
  /** Writes wait while more than this many bytes are queued on the channel. */
  highWater?: number;
  /** Streams open at once; further opens are refused. */
  maxStreams?: number;
}

const DEFAULTS = { window: 256 * 1024, maxFrame: 32 * 1024, highWater: 1024 * 1024, maxStreams: 256 };

export class MuxError extends Error {}

/** Connects two duplexes both ways: what one reads the other writes; when either fails or is cut short, both go. */
export function bridge(a: Duplex, b: Duplex): void {
  a.pipe(b);
  b.pipe(a);
  a.on('error', (err) => b.destroy(err));
  b.on('error', (err) => a.destroy(err));
  // one that closed cleanly (ended both ways) lets the other finish its writes; one cut short cuts the other
  const cut = (from: Duplex, to: Duplex) => () => {
    if (!(from.readableEnded && from.writableFinished)) to.destroy();
  };
  a.on('close', cut(a, b));
  b.on('close', cut(b, a));
}

export class Mux {
  readonly o: Required<Omit<MuxOptions, 'onOpen'>> & Pick<MuxOptions, 'onOpen'>;
  private readonly sink: FrameSink;
  private readonly streams = new Map<number, MuxStream>();
  private readonly opening = new Map<number, { resolve(s: MuxStream): void; reject(e: Error): void }>();
  private nextId: number;
  private queued = 0;
  private drainWaiters: Array<() => void> = [];
  private closedWith: Error | null = null;

  constructor(sink: FrameSink, o: MuxOptions) {
    this.sink = sink;
    this.o = { ...DEFAULTS, ...o };
    this.nextId = o.initiator ? 1 : 2;
  }

  get closed(): boolean {
    return this.closedWith !== null;
  }

  /** Streams open now. */
  get size(): number {
    return this.streams.size;
  }

  /** Bytes handed to the channel and not yet sent. */
  get queuedBytes(): number {
    return this.queued;
  }

  /** Opens a stream on the other side; resolves once it accepts, rejects with its reason otherwise. */
  open(name: string, args: Record<string, unknown> = {}): Promise<MuxStream> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    if (this.streams.size >= this.o.maxStreams) return Promise.reject(new MuxError('too many streams open on the channel'));
    const id = this.nextId;
    this.nextId = (this.nextId + 2) >>> 0 || (this.o.initiator ? 1 : 2);
    const s = new MuxStream(this, id);
    this.streams.set(id, s);
    return new Promise<MuxStream>((resolve, reject) => {
      this.opening.set(id, { resolve, reject });
      this.send(FrameType.OPEN, id, Buffer.from(JSON.stringify({ name, args })));
    });
  }

  /** Feeds one message received from the channel. */
  receive(msg: Buffer): void {
    const f = decodeFrame(msg);
    if (!f || this.closedWith) return;
    const s = this.streams.get(f.id);
    switch (f.type) {
      case FrameType.OPEN:
        void this.accept(f.id, f.payload);
        return;
      case FrameType.ACCEPT: {
        const w = this.opening.get(f.id);
        this.opening.delete(f.id);
        if (w && s) w.resolve(s);
        return;
      }
      case FrameType.DATA:
        s?.onData(f.payload);
        return;
      case FrameType.WINDOW:
        if (f.payload.length >= 4) s?.onWindow(f.payload.readUInt32BE(0));
        return;
      case FrameType.END:
        s?.onEnd();
        return;
      case FrameType.RESET: {
        const reason = f.payload.toString('utf8') || 'stream reset';
        const w = this.opening.get(f.id);
        this.opening.delete(f.id);
        // a refused open fails the open() promise; the stream nobody holds yet just goes
        if (s) s.onReset(reason, !!w);
        w?.reject(new MuxError(reason));
        return;
      }
      default:
        // an unknown frame type from a newer peer: ignored
    }
  }

  /** The channel is gone: every stream fails with `err`. */
  close(err: Error = new MuxError('stream channel closed')): void {
    if (this.closedWith) return;
    this.closedWith = err;
    for (const w of this.opening.values()) w.reject(err);
    this.opening.clear();
    for (const s of [...this.streams.values()]) s.destroy(err);
    this.streams.clear();
    this.wakeDrain();
  }

  private async accept(id: number, payload: Buffer): Promise<void> {
    if (this.streams.has(id) || (id % 2 === 1) === this.o.initiator) return this.send(FrameType.RESET, id, Buffer.from('bad stream id'));
    let req: OpenRequest;
    try {
      const p = JSON.parse(payload.toString('utf8')) as Partial<OpenRequest>;
      if (typeof p.name !== 'string') throw new Error('no name');
      req = { name: p.name, args: p.args && typeof p.args === 'object' ? p.args : {} };
    } catch {
      return this.send(FrameType.RESET, id, Buffer.from('malformed open request'));
    }
    if (!this.o.onOpen) return this.send(FrameType.RESET, id, Buffer.from('this side serves no streams'));
    if (this.streams.size >= this.o.maxStreams) return this.send(FrameType.RESET, id, Buffer.from('too many streams open on the channel'));
    const s = new MuxStream(this, id);
    this.streams.set(id, s);
    let target: Duplex;
    try {
      target = await this.o.onOpen(req);
    } catch (err) {
      this.streams.delete(id);
      if (!this.closedWith) this.send(FrameType.RESET, id, Buffer.from(String((err as Error)?.message ?? err).slice(0, 1000)));
      return;
    }
    if (this.closedWith || s.destroyed) {
      target.destroy();
      return;
    }
    this.send(FrameType.ACCEPT, id);
    bridge(s, target);
  }

  /** @internal */
  send(type: FrameType, id: number, payload?: Buffer): void {
    if (this.closedWith) return;
    const f = encodeFrame(type, id, payload);
    this.queued += f.length;
    this.sink.send(f, (err) => {
      this.queued -= f.length;
      if (err) this.close(err);
      else if (this.queued <= this.o.highWater / 2) this.wakeDrain();
    });
  }

  /** @internal Resolves once the channel's queue is below its high-water mark. */
  async drained(): Promise<void> {
    while (this.queued > this.o.highWater && !this.closedWith) await new Promise<void>((r) => this.drainWaiters.push(r));
    if (this.closedWith) throw this.closedWith;
  }

  private wakeDrain(): void {
    const w = this.drainWaiters;
    this.drainWaiters = [];
    for (const r of w) r();
  }

  /** @internal */
  forget(id: number): void {
    this.streams.delete(id);
    const w = this.opening.get(id);
    this.opening.delete(id);
    w?.reject(new MuxError('stream closed before it was accepted'));
  }
}

/** One stream of a Mux: a Duplex whose writes go to the other side and whose reads come from it. */
export class MuxStream extends Duplex {
  readonly id: number;
  private readonly mux: Mux;
  /** Bytes we may still send. */
  private credit: number;
  private creditWaiter: (() => void) | null = null;
  /** Bytes received, and credit returned for them so far. */
  private received = 0;
  private returned = 0;
  private remoteEnded = false;
  private localEnded = false;
  private resetByPeer = false;

  constructor(mux: Mux, id: number) {
    super({ allowHalfOpen: true, readableHighWaterMark: 64 * 1024, writableHighWaterMark: 64 * 1024 });
    this.mux = mux;
    this.id = id;
    this.credit = mux.o.window;
    this.once('close', () => mux.forget(id));
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.sendData(chunk).then(() => cb(), (err: Error) => cb(err));
  }

  private async sendData(chunk: Buffer): Promise<void> {
    let off = 0;
    while (off < chunk.length) {
      await this.mux.drained();
      while (this.credit <= 0) {
        if (this.destroyed) throw new MuxError('stream closed');
        await new Promise<void>((r) => (this.creditWaiter = r));
      }
      if (this.destroyed) throw new MuxError('stream closed');
      const n = Math.min(this.credit, this.mux.o.maxFrame, chunk.length - off);
      this.mux.send(FrameType.DATA, this.id, chunk.subarray(off, off + n));
      this.credit -= n;
      off += n;
    }
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.localEnded = true;
    this.mux.send(FrameType.END, this.id);
    cb();
  }

  override _read(): void {
    this.grant();
  }

  // Credit goes back as the consumer takes bytes out of the read buffer. Node
  // calls _read only once per push, so a stalled sender (no credit, no push)
  // would never hear of a later read: every read() checks instead.
  override read(size?: number): any {
    const r = super.read(size);
    this.grant();
    return r;
  }

  private grant(): void {
    const consumed = this.received - this.readableLength;
    const owed = consumed - this.returned;
    if (owed > 0 && (owed >= this.mux.o.window / 4 || this.readableLength === 0) && !this.remoteEnded && !this.destroyed) {
      this.returned = consumed;
      const p = Buffer.allocUnsafe(4);
      p.writeUInt32BE(owed, 0);
      this.mux.send(FrameType.WINDOW, this.id, p);
    }
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    const clean = this.remoteEnded && this.localEnded;
    if (!clean && !this.resetByPeer && !this.mux.closed) this.mux.send(FrameType.RESET, this.id, Buffer.from((err?.message ?? 'stream cancelled').slice(0, 1000)));
    this.wakeWriter();
    this.mux.forget(this.id);
    cb(err);
  }

  /** @internal */
  onData(payload: Buffer): void {
    if (this.remoteEnded) return;
    if (this.received + payload.length - this.returned > this.mux.o.window) {
      this.destroy(new MuxError('the other side sent more than its window'));
      return;
    }
    this.received += payload.length;
    this.push(payload);
  }

  /** @internal */
  onWindow(n: number): void {
    this.credit += n;
    this.wakeWriter();
  }

  /** @internal */
  onEnd(): void {
    if (this.remoteEnded) return;
    this.remoteEnded = true;
    this.push(null);
  }

  /** @internal */
  onReset(reason: string, quietly = false): void {
    this.resetByPeer = true;
    this.destroy(quietly ? undefined : new MuxError(reason));
  }

  private wakeWriter(): void {
    const w = this.creditWaiter;
    this.creditWaiter = null;
    w?.();
  }
}

/** The subset of a `ws` WebSocket a Mux runs over. */
export interface MuxSocket {
  send(data: Buffer, opts: { binary: boolean }, cb: (err?: Error) => void): void;
  on(event: 'message', fn: (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => void): unknown;
  on(event: 'close', fn: () => void): unknown;
  on(event: 'error', fn: (err: Error) => void): unknown;
}

/** A Mux over a WebSocket: one binary message per frame; the socket's end closes every stream. */
export function muxOverSocket(ws: MuxSocket, o: MuxOptions): Mux {
  const mux = new Mux({ send: (f, cb) => ws.send(f, { binary: true }, cb) }, o);
  ws.on('message', (data, isBinary) => {
    if (!isBinary) return;
    mux.receive(Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data));
  });
  ws.on('close', () => mux.close());
  ws.on('error', (err) => mux.close(err));
  return mux;
}
