// The serial console of a container: what it prints (its stdout and stderr,
// appended to STATE_DIR/servers/<id>/console.log) followed as it grows, the
// recent part first; what the user types goes to the container's stdin, a
// FIFO at STATE_DIR/servers/<id>/console.in that the container holds open
// read-write from its start (so it never blocks and never sees an end,
// across agent restarts). The busybox image's init runs a shell on it.
import { constants, open, watch, type FSWatcher } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { Socket } from 'node:net';
import { join } from 'node:path';
import { Duplex } from 'node:stream';
import type { ConsoleProvider } from '../../stream.ts';

/** The console input FIFO, in the server's directory. */
export const CONSOLE_INPUT = 'console.in';
/** How much of the console's past a new session sees first. */
export const CONSOLE_HISTORY = 16 * 1024;

const UUIDISH = /^[0-9a-zA-Z][0-9a-zA-Z-]{0,63}$/;

export class ContainerConsoles implements ConsoleProvider {
  private readonly serversDir: string;
  constructor(stateDir: string) {
    this.serversDir = join(stateDir, 'servers');
  }

  /** A container's directory is here (the VM driver keeps its servers elsewhere). */
  async hasServer(serverId: string): Promise<boolean> {
    return UUIDISH.test(serverId) && fsp.stat(join(this.serversDir, serverId)).then((s) => s.isDirectory(), () => false);
  }

  async serialConsole(serverId: string): Promise<Duplex> {
    if (!(await this.hasServer(serverId))) throw new Error(`server ${serverId} is not on this host`);
    const dir = join(this.serversDir, serverId);
    const log = await fsp.open(join(dir, 'console.log'), constants.O_RDONLY | constants.O_CREAT, 0o600);
    let input: Socket | null = null;
    try {
      // O_NONBLOCK: opening a FIFO for writing fails at once (ENXIO) when no container holds it, instead of waiting
      // a raw descriptor (a FileHandle would close it when collected, under the Socket)
      const fd = await new Promise<number | null>((resolve, reject) => open(join(dir, CONSOLE_INPUT), constants.O_WRONLY | constants.O_NONBLOCK, (err, n) => {
        if (!err) resolve(n);
        else if (err.code === 'ENXIO' || err.code === 'ENOENT') resolve(null);
        else reject(err);
      }));
      // a Socket over the FIFO writes with backpressure (a full pipe waits, it does not fail)
      if (fd !== null) input = new Socket({ fd, readable: false, writable: true });
      const size = (await log.stat()).size;
      return new ConsoleStream(log, join(dir, 'console.log'), input, await historyStart(log, size));
    } catch (err) {
      await log.close();
      input?.destroy();
      throw err;
    }
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
  private readonly input: Socket | null;
  private offset: number;
  private wanted = false;
  private reading = false;
  private readonly watcher: FSWatcher | null;
  private readonly poll: NodeJS.Timeout;

  constructor(log: fsp.FileHandle, logPath: string, input: Socket | null, offset: number) {
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
