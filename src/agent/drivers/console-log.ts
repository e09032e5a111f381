// A server's console log (a file its process appends to with O_APPEND: the
// container's output, a VM's serial port) kept under a cap by the drivers'
// sweeps, and followed by an interactive console session: the recent part
// first, then what is appended, as it comes.
import { watch, type FSWatcher } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { Duplex, type Writable } from 'node:stream';

/** How much of the console's past a new session sees first. */
export const CONSOLE_HISTORY = 16 * 1024;

/**
 * A console session over a log (`log`, open for reading, at `logPath`):
 * reads give its last CONSOLE_HISTORY bytes (from a line start) and then
 * follow it; writes go to `input` (a container's stdin FIFO, a VM's serial
 * port), or nowhere when there is none. The session owns `log` and `input`.
 */
export async function followConsoleLog(log: fsp.FileHandle, logPath: string, input: Writable | null): Promise<Duplex> {
  const size = (await log.stat()).size;
  return new ConsoleStream(log, logPath, input, await historyStart(log, size));
}

/** Keeps the newest half of a console log that outgrew `cap` bytes, from a line start. */
export async function capConsoleLog(file: string, cap: number): Promise<void> {
  const size = await fsp.stat(file).then((s) => s.size, () => 0);
  if (size <= cap) return;
  const keep = Math.floor(cap / 2);
  const fh = await fsp.open(file, 'r+');
  try {
    const buf = Buffer.alloc(keep);
    const { bytesRead } = await fh.read(buf, 0, keep, size - keep);
    let tail = buf.subarray(0, bytesRead);
    const nl = tail.indexOf(10);
    if (nl >= 0 && nl < tail.length - 1) tail = tail.subarray(nl + 1);
    await fh.truncate(0);
    await fh.write(tail, 0, tail.length, 0);
  } finally {
    await fh.close();
  }
}

/** Where the history a new session sees starts: the first line boundary in the last CONSOLE_HISTORY bytes. */
async function historyStart(log: fsp.FileHandle, size: number): Promise<number> {
  if (size <= CONSOLE_HISTORY) return 0;
  const from = size - CONSOLE_HISTORY;
  const buf = Buffer.alloc(Math.min(4096, CONSOLE_HISTORY));
  const { bytesRead } = await log.read(buf, 0, buf.length, from);
  const nl = buf.subarray(0, bytesRead).indexOf(10);
  return nl >= 0 ? from + nl + 1 : from;
}

/**
 * A console session: reads follow the log from `offset` (only as fast as the
 * reader takes them), writes go to the input FIFO (or nowhere when the
 * container does not run).
 */
class ConsoleStream extends Duplex {
  private readonly log: fsp.FileHandle;
  private readonly input: Writable | null;
  private offset: number;
  private wanted = false;
  private reading = false;
  private readonly watcher: FSWatcher | null;
  private readonly poll: NodeJS.Timeout;

  constructor(log: fsp.FileHandle, logPath: string, input: Writable | null, offset: number) {
    super({ allowHalfOpen: true });
    this.log = log;
    this.input = input;
    this.offset = offset;
    input?.on('error', (err) => this.destroy(err));
    let w: FSWatcher | null = null;
    try {
      w = watch(logPath, () => this.pump());
      w.on('error', () => undefined);
    } catch {
      // no inotify: the poll below is enough
    }
    this.watcher = w;
    // also polled, in case a change event is missed
    this.poll = setInterval(() => this.pump(), 500);
    this.poll.unref();
  }

  override _read(): void {
    this.wanted = true;
    this.pump();
  }

  private pump(): void {
    if (this.reading || !this.wanted || this.destroyed) return;
    this.reading = true;
    void this.readMore().catch((err: Error) => this.destroy(err)).finally(() => {
      this.reading = false;
    });
  }

  private async readMore(): Promise<void> {
    const buf = Buffer.allocUnsafe(32 * 1024);
    while (this.wanted && !this.destroyed) {
      const { bytesRead } = await this.log.read(buf, 0, buf.length, this.offset);
      if (bytesRead === 0) {
        // the agent keeps the newest half of a log over its cap: what is left was sent already
        const size = (await this.log.stat()).size;
        if (size < this.offset) this.offset = size;
        return;
      }
      this.offset += bytesRead;
      this.wanted = this.push(Buffer.from(buf.subarray(0, bytesRead)));
    }
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (!this.input) return cb();
    this.input.write(chunk, (err) => cb(err ?? null));
  }

  override _final(cb: (err?: Error | null) => void): void {
    // the FIFO stays: the container holds it; only this session's write end closes
    this.input?.end();
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    clearInterval(this.poll);
    this.watcher?.close();
    this.input?.destroy();
    this.log.close().then(() => cb(err), () => cb(err));
  }
}
