// The agent's end of its stream channel: one WebSocket the agent opens to
// the server (GET /agent/v1/hosts/{host}/stream, agent token in the header),
// kept open and reopened with backoff when it drops; given several replicas,
// reopened on the next one (a channel lives on one replica, see
// src/fleet/stream.ts). The server opens named
// streams over it (src/common/mux.ts); each name is served by a provider the
// drivers register, e.g. `serial-console` {server_id} -> the console of that
// server on this host, as a Duplex (output to read, input to write), and
// `vnc-console` {server_id} -> its VNC server's socket (raw RFB both ways).
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
// ws loads node:https and node:tls: imported when the channel starts (see src/http/defer-tls.ts)
import type { WebSocket } from 'ws';
import { AGENT_TOKEN_HEADER } from '../fleet/protocol.ts';
import { muxOverSocket, type Mux } from '../common/mux.ts';
import { serverUrls } from './client.ts';

/** Serves one stream name: the args come from the server. */
export type StreamProvider = (args: Record<string, unknown>) => Promise<Duplex>;

/** A driver whose servers have consoles: each stream goes to the driver that holds the server. */
export interface ConsoleProvider {
  /** Whether the server is this driver's, on this host. */
  hasServer(serverId: string): Promise<boolean>;
  serialConsole(serverId: string): Promise<Duplex>;
  /** A connection to the server's VNC server (optional: not every driver has a screen). */
  vncConsole?(serverId: string): Promise<Duplex>;
}

export interface StreamChannelOptions {
  /** The server's base URL (http(s)://host:port), or the replicas' in the order they are tried. */
  server: string | readonly string[];
  token: string;
  hostname: string;
  log: Logger;
  providers: Record<string, StreamProvider>;
  /** A channel that heard no ping from the server for this long is dropped and reopened (ms). */
  pingTimeoutMs?: number;
}

/** The console streams (`serial-console`, `vnc-console`), each opened by the driver that holds the server. */
export function consoleProviders(...drivers: ConsoleProvider[]): Record<string, StreamProvider> {
  const holder = async (name: string, args: Record<string, unknown>): Promise<[ConsoleProvider, string]> => {
    const id = typeof args.server_id === 'string' ? args.server_id : '';
    if (!id) throw new Error(`${name} needs a server_id`);
    for (const d of drivers) if (await d.hasServer(id)) return [d, id];
    throw new Error(`server ${id} is not on this host`);
  };
  return {
    'serial-console': async (args) => {
      const [d, id] = await holder('serial-console', args);
      return d.serialConsole(id);
    },
    'vnc-console': async (args) => {
      const [d, id] = await holder('vnc-console', args);
      if (!d.vncConsole) throw new Error(`server ${id} has no VNC console`);
      return d.vncConsole(id);
    },
  };
}

export class StreamChannel {
  private readonly o: StreamChannelOptions;
  private ws: WebSocket | null = null;
  private mux: Mux | null = null;
  private stopped = true;
  private delay = 250;
  private retry: NodeJS.Timeout | null = null;
  private watchdog: NodeJS.Timeout | null = null;
  private openWaiters: Array<() => void> = [];
  private readonly servers: string[];
  private index = 0;

  constructor(o: StreamChannelOptions) {
    this.o = o;
    this.servers = serverUrls(o.server);
  }

  /** The channel's URL on the replica it is (or will next be) opened to. */
  get url(): string {
    const base = this.servers[this.index]!.replace(/^http/, 'ws');
    return `${base}/agent/v1/hosts/${encodeURIComponent(this.o.hostname)}/stream`;
  }

  /** True while the channel is open. */
  get open(): boolean {
    return this.ws?.readyState === 1; // OPEN
  }

  /** Streams being served now. */
  get streams(): number {
    return this.mux?.size ?? 0;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.connect();
  }

  /** Closes the channel; streams being served end with it. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retry) clearTimeout(this.retry);
    if (this.watchdog) clearTimeout(this.watchdog);
    const ws = this.ws;
    this.ws = null;
    this.mux?.close();
    if (ws && ws.readyState !== 3) { // CLOSED
      await new Promise<void>((resolve) => {
        ws.once('close', () => resolve());
        ws.close(1001, 'agent stopping');
        setTimeout(() => ws.terminate(), 2000).unref();
      });
    }
  }

  /** Resolves once the channel is open. */
  waitOpen(): Promise<void> {
    if (this.open) return Promise.resolve();
    return new Promise((r) => this.openWaiters.push(r));
  }

  private connect(): void {
    void import('ws').then(({ WebSocket }) => this.connectWith(WebSocket));
  }

  private connectWith(WebSocketClass: typeof WebSocket): void {
    if (this.stopped) return;
    const ws = new WebSocketClass(this.url, { headers: { [AGENT_TOKEN_HEADER]: this.o.token }, perMessageDeflate: false, maxPayload: 1 << 20 });
    this.ws = ws;
    const mux = muxOverSocket(ws, { initiator: true, onOpen: (req) => this.serve(req.name, req.args) });
    this.mux = mux;
    ws.on('open', () => {
      this.delay = 250;
      this.armWatchdog(ws);
      this.o.log.info({ url: this.url }, 'stream channel open');
      const w = this.openWaiters;
      this.openWaiters = [];
      for (const r of w) r();
    });
    ws.on('ping', () => this.armWatchdog(ws));
    ws.on('unexpected-response', (_req, res) => {
      // refused (a bad token, an old server without the route): say so, then retry like any drop
      this.o.log.warn({ status: res.statusCode }, 'stream channel refused');
      res.resume();
      ws.terminate();
    });
    ws.on('error', (err) => this.o.log.debug({ err: err.message }, 'stream channel error'));
    ws.on('close', () => {
      if (this.watchdog) clearTimeout(this.watchdog);
      if (this.ws !== ws || this.stopped) return;
      this.ws = null;
      // dropped or never opened: the next replica, round the list
      this.index = (this.index + 1) % this.servers.length;
      const delay = this.delay;
      this.delay = Math.min(this.delay * 2, 10_000);
      this.o.log.info({ retryInMs: delay }, 'stream channel closed; reopening');
      this.retry = setTimeout(() => this.connect(), delay);
      this.retry.unref();
    });
  }

  private armWatchdog(ws: WebSocket): void {
    if (this.watchdog) clearTimeout(this.watchdog);
    this.watchdog = setTimeout(() => ws.terminate(), this.o.pingTimeoutMs ?? 60_000);
    this.watchdog.unref();
  }

  private async serve(name: string, args: Record<string, unknown>): Promise<Duplex> {
    const p = this.o.providers[name];
    if (!p) throw new Error(`this host serves no ${name} streams`);
    const s = await p(args);
    this.o.log.info({ stream: name, server: args.server_id }, 'stream opened');
    return s;
  }
}

/** Runs the channel alongside an agent: opened after it starts, closed before it stops. */
export function withStreams<A extends { start(): Promise<void>; stop(): Promise<void> }>(agent: A, channel: StreamChannel): A {
  const start = agent.start.bind(agent);
  const stop = agent.stop.bind(agent);
  agent.start = async () => {
    await start();
    channel.start();
  };
  agent.stop = async () => {
    await channel.stop();
    await stop();
  };
  return agent;
}
