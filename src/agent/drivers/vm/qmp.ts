// Stratus's QMP client: the QEMU Machine Protocol over a unix socket.
//
// One connection per VM, opened by the agent to the socket qemu listens on
// (`-qmp unix:<path>,server=on,wait=off`). On connect qemu sends a greeting
// ({"QMP": {...}}); the client answers `qmp_capabilities` before anything
// else. Replies carry the `id` of their command, so several commands may be
// in flight; events ({"event", "data", "timestamp"}) arrive on the same
// socket between replies and are handed to listeners and iterators. Each
// command has a deadline (the connection stays usable after one passes: a
// late reply is dropped). `close()` ends the socket and fails what is still
// pending; qemu closing the socket (it quit) does the same.
import { EventEmitter } from 'node:events';
import { createConnection, type Socket } from 'node:net';

export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  /** When qemu emitted it (seconds + microseconds since the epoch). */
  timestamp: { seconds: number; microseconds: number };
}

/** The commands Stratus uses, with their arguments and results. */
export interface QmpCommands {
  'qmp_capabilities': { args: { enable?: string[] }; ret: Record<string, never> };
  'query-status': { args: undefined; ret: { status: string; running: boolean; singlestep?: boolean } };
  'query-version': { args: undefined; ret: { qemu: { major: number; minor: number; micro: number }; package: string } };
  'query-kvm': { args: undefined; ret: { enabled: boolean; present: boolean } };
  'query-name': { args: undefined; ret: { name?: string } };
  'query-block': { args: undefined; ret: Array<{ device: string; qdev?: string; inserted?: { file: string; ro: boolean; drv: string; 'node-name'?: string } }> };
  'query-block-jobs': { args: undefined; ret: Array<{ device: string; type: string; len: number; offset: number; ready: boolean; status: string; 'io-status'?: string }> };
  'query-named-block-nodes': { args: { flat?: boolean }; ret: Array<{ 'node-name': string; drv: string; file: string; ro: boolean }> };
  'query-migrate': { args: undefined; ret: { status?: string; 'error-desc'?: string; ram?: { total: number; transferred: number; remaining: number } } };
  'qom-list': { args: { path: string }; ret: Array<{ name: string; type: string }> };
  'qom-get': { args: { path: string; property: string }; ret: unknown };
  'stop': { args: undefined; ret: Record<string, never> };
  'cont': { args: undefined; ret: Record<string, never> };
  'system_powerdown': { args: undefined; ret: Record<string, never> };
  'system_reset': { args: undefined; ret: Record<string, never> };
  'quit': { args: undefined; ret: Record<string, never> };
  'human-monitor-command': { args: { 'command-line': string }; ret: string };
  'device_add': { args: { driver: string; id: string; [k: string]: unknown }; ret: Record<string, never> };
  'device_del': { args: { id: string }; ret: Record<string, never> };
  'netdev_add': { args: { type: string; id: string; [k: string]: unknown }; ret: Record<string, never> };
  'netdev_del': { args: { id: string }; ret: Record<string, never> };
  'blockdev-add': { args: Record<string, unknown>; ret: Record<string, never> };
  'blockdev-del': { args: { 'node-name': string }; ret: Record<string, never> };
  'migrate': { args: { uri: string }; ret: Record<string, never> };
  'migrate_cancel': { args: undefined; ret: Record<string, never> };
  'migrate-incoming': { args: { uri: string }; ret: Record<string, never> };
  'blockdev-mirror': { args: { 'job-id': string; device: string; target: string; sync: 'top' | 'full'; speed?: number }; ret: Record<string, never> };
  'block-job-cancel': { args: { device: string; force?: boolean }; ret: Record<string, never> };
  'nbd-server-start': { args: { addr: { type: 'inet'; data: { host: string; port: string } } }; ret: Record<string, never> };
  'nbd-server-stop': { args: undefined; ret: Record<string, never> };
  'block-export-add': { args: { type: 'nbd'; id: string; 'node-name': string; writable: boolean; name: string }; ret: Record<string, never> };
  'block-export-del': { args: { id: string; mode?: 'safe' | 'hard' }; ret: Record<string, never> };
  'migrate-set-parameters': { args: { 'max-bandwidth'?: number; [k: string]: unknown }; ret: Record<string, never> };
}
export type QmpCommand = keyof QmpCommands;

/** An error reply of qemu: its class (`GenericError`, `CommandNotFound`, `DeviceNotFound`...) and description. */
export class QmpError extends Error {
  readonly errorClass: string;
  constructor(command: string, errorClass: string, desc: string) {
    super(`QMP ${command}: ${desc}`);
    this.errorClass = errorClass;
  }
}

/** The connection is gone (qemu quit, or close() was called) or a deadline passed. */
export class QmpClosedError extends Error {}
export class QmpTimeoutError extends Error {}

interface Pending {
  command: string;
  resolve(v: unknown): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
}

export interface QmpOptions {
  /** Deadline of the connect + greeting + capabilities handshake (default 5 s). */
  connectTimeoutMs?: number;
  /** Default deadline of a command (default 10 s). */
  commandTimeoutMs?: number;
}

export class QmpClient extends EventEmitter<{ event: [QmpEvent]; close: [Error | null] }> {
  /** qemu's greeting: its version and capabilities. */
  greeting: { version?: { qemu: { major: number; minor: number; micro: number } }; capabilities?: string[] } = {};
  private readonly sock: Socket;
  private readonly pending = new Map<string, Pending>();
  private seq = 0;
  private buf = '';
  private closedWith: Error | null = null;
  private readonly commandTimeoutMs: number;
  private greeted: ((v: unknown) => void) | null = null;

  private constructor(sock: Socket, o: QmpOptions) {
    super();
    this.sock = sock;
    this.commandTimeoutMs = o.commandTimeoutMs ?? 10_000;
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => this.onData(d));
    sock.on('error', (err) => this.shutdown(new QmpClosedError(`QMP socket: ${err.message}`)));
    sock.on('close', () => this.shutdown(new QmpClosedError('QMP connection closed')));
  }

  /** Connects to qemu's QMP socket and negotiates capabilities. */
  static async connect(path: string, o: QmpOptions = {}): Promise<QmpClient> {
    const deadline = o.connectTimeoutMs ?? 5000;
    const sock = createConnection({ path });
    const c = new QmpClient(sock, o);
    const timer = setTimeout(() => c.shutdown(new QmpTimeoutError(`QMP ${path}: no greeting within ${deadline} ms`)), deadline);
    try {
      await new Promise<unknown>((resolve, reject) => {
        c.greeted = resolve;
        c.once('close', (err) => reject(err ?? new QmpClosedError('QMP connection closed')));
      });
      await c.execute('qmp_capabilities', {}, { timeoutMs: deadline });
      return c;
    } catch (err) {
      c.close();
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  get closed(): boolean {
    return this.closedWith !== null;
  }

  /** Runs one command; resolves with its `return`, rejects with QmpError, QmpTimeoutError or QmpClosedError. */
  execute<K extends QmpCommand>(command: K, ...rest: QmpCommands[K]['args'] extends undefined ? [args?: undefined, o?: { timeoutMs?: number }] : [args: QmpCommands[K]['args'], o?: { timeoutMs?: number }]): Promise<QmpCommands[K]['ret']>;
  execute(command: string, args?: Record<string, unknown>, o?: { timeoutMs?: number }): Promise<unknown>;
  execute(command: string, args?: Record<string, unknown>, o: { timeoutMs?: number } = {}): Promise<unknown> {
    if (this.closedWith) return Promise.reject(new QmpClosedError(`QMP ${command}: ${this.closedWith.message}`));
    const id = `s${++this.seq}`;
    const ms = o.timeoutMs ?? this.commandTimeoutMs;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new QmpTimeoutError(`QMP ${command}: no reply within ${ms} ms`));
      }, ms);
      this.pending.set(id, { command, resolve, reject, timer });
      this.sock.write(`${JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}), id })}\n`);
    });
  }

  /**
   * The next event named `name` (and matching `match`), or a QmpTimeoutError
   * after `timeoutMs`; a QmpClosedError when the connection goes first.
   * Listen before sending the command that causes it.
   */
  waitEvent(name: string, timeoutMs: number, match: (e: QmpEvent) => boolean = () => true): Promise<QmpEvent> {
    if (this.closedWith) return Promise.reject(new QmpClosedError(`waiting for ${name}: ${this.closedWith.message}`));
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        this.off('event', onEvent);
        this.off('close', onClose);
      };
      const onEvent = (e: QmpEvent) => {
        if (e.event !== name || !match(e)) return;
        done();
        resolve(e);
      };
      const onClose = (err: Error | null) => {
        done();
        reject(new QmpClosedError(`waiting for ${name}: ${err?.message ?? 'QMP connection closed'}`));
      };
      const timer = setTimeout(() => {
        done();
        reject(new QmpTimeoutError(`no ${name} event within ${timeoutMs} ms`));
      }, timeoutMs);
      this.on('event', onEvent);
      this.on('close', onClose);
    });
  }

  /**
   * Every event from the call on (listening starts at once, not at the first
   * `next()`), until the connection closes or the consumer stops.
   */
  events(): AsyncIterableIterator<QmpEvent> {
    const queue: QmpEvent[] = [];
    let wake: (() => void) | null = null;
    let ended = this.closed;
    const onEvent = (e: QmpEvent) => {
      queue.push(e);
      wake?.();
    };
    const onClose = () => {
      ended = true;
      wake?.();
    };
    const detach = () => {
      ended = true;
      this.off('event', onEvent);
      this.off('close', onClose);
    };
    this.on('event', onEvent);
    this.on('close', onClose);
    const it: AsyncIterableIterator<QmpEvent> = {
      async next() {
        for (;;) {
          if (queue.length) return { value: queue.shift()!, done: false };
          if (ended) {
            detach();
            return { value: undefined, done: true };
          }
          await new Promise<void>((r) => (wake = r));
          wake = null;
        }
      },
      async return() {
        detach();
        return { value: undefined, done: true };
      },
      [Symbol.asyncIterator]() {
        return it;
      },
    };
    return it;
  }

  /** Ends the connection; pending commands fail with QmpClosedError. qemu keeps running. */
  close(): void {
    this.shutdown(new QmpClosedError('QMP connection closed by the client'));
    this.sock.destroy();
  }

  private shutdown(err: Error): void {
    if (this.closedWith) return;
    this.closedWith = err;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new QmpClosedError(`QMP ${p.command}: ${err.message}`));
    }
    this.pending.clear();
    this.sock.destroy();
    this.emit('close', err);
  }

  private onData(d: string): void {
    this.buf += d;
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl).trim();
      this.buf = this.buf.slice(nl + 1);
      if (!line) continue;
      let msg: Record<string, any>;
      try {
        msg = JSON.parse(line);
      } catch {
        continue;
      }
      if (msg.QMP) {
        this.greeting = msg.QMP;
        this.greeted?.(msg.QMP);
        this.greeted = null;
      } else if (typeof msg.event === 'string') {
        this.emit('event', { event: msg.event, data: msg.data, timestamp: msg.timestamp });
      } else if (msg.id !== undefined) {
        const p = this.pending.get(String(msg.id));
        if (!p) continue; // a reply after its deadline
        this.pending.delete(String(msg.id));
        clearTimeout(p.timer);
        if (msg.error) p.reject(new QmpError(p.command, String(msg.error.class ?? 'GenericError'), String(msg.error.desc ?? 'error')));
        else p.resolve(msg.return);
      }
    }
  }
}
