// The server's end of the agents' stream channels. Each agent keeps one
// WebSocket open to the server (GET /agent/v1/hosts/{host}/stream, with the
// agent token like every agent call); over it the server opens named streams
// to that host (`serial-console` today; VNC, exec, bare-metal consoles next)
// through src/common/mux.ts. The agent connects outward only, so this is how
// bytes reach a process on a host from a user's browser or CLI.
//
// A channel lives on the replica the agent connected to: a stream to a host
// whose agent holds its channel on another replica is refused (409) here.
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import { ApiError, conflict } from '../common/errors.ts';
import { muxOverSocket, type Mux } from '../common/mux.ts';
import type { Route } from '../http/service.ts';
import { acceptWebSocket } from '../http/websocket.ts';
import { HOSTNAME_PATTERN } from './protocol.ts';

export const STREAM_PATH = '/v1/hosts/:hostname/stream';

export interface StreamHub {
  /** The agent API's channel route (rule: the agent's). */
  readonly routes: Route[];
  /** Opens a named stream to a process on `host`; a 409 ApiError when the host has no channel here or refuses. */
  open(host: string, name: string, args: Record<string, unknown>): Promise<Duplex>;
  /** Hosts whose agent holds a channel to this replica. */
  connected(): string[];
  /** Resolves once `host` has a channel (tests, and callers that just started an agent). */
  waitFor(host: string): Promise<void>;
  close(): void;
}

interface Channel { ws: WebSocket; mux: Mux; alive: boolean; timer: NodeJS.Timeout }

/** The code a channel closes with when the same host connects again. */
const REPLACED = 4000;

export function createStreamHub(o: { log: Logger; rule: string; pingMs?: number }): StreamHub {
  const channels = new Map<string, Channel>();
  const waiters = new Map<string, Array<() => void>>();
  const pingMs = o.pingMs ?? 15_000;
  let closed = false;

  const attach = (host: string, ws: WebSocket) => {
    channels.get(host)?.ws.close(REPLACED, 'replaced by a newer channel');
    // the server only opens streams; an agent that asks for one is refused by the mux
    const ch: Channel = { ws, mux: muxOverSocket(ws, { initiator: false }), alive: true, timer: setInterval(() => {
      // a channel that missed a ping's answer is dead (a host gone without closing its TCP connection)
      if (!ch.alive) return ws.terminate();
      ch.alive = false;
      ws.ping();
    }, pingMs) };
    ch.timer.unref();
    ws.on('pong', () => (ch.alive = true));
    ws.on('close', () => {
      clearInterval(ch.timer);
      if (channels.get(host) === ch) channels.delete(host);
      o.log.info({ host }, 'agent stream channel closed');
    });
    ws.on('error', (err) => o.log.warn({ host, err: err.message }, 'agent stream channel failed'));
    channels.set(host, ch);
    for (const w of waiters.get(host) ?? []) w();
    waiters.delete(host);
    o.log.info({ host }, 'agent stream channel open');
  };

  const routes: Route[] = [{
    method: 'GET', path: STREAM_PATH, rule: o.rule,
    async handler(rc) {
      const host = rc.params.hostname ?? '';
      if (!HOSTNAME_PATTERN.test(host)) throw new ApiError('BadRequest', 'Invalid host name.');
      if (closed) throw new ApiError('Unavailable', 'The server is stopping.');
      attach(host, await acceptWebSocket(rc, { maxPayload: 1 << 20 }));
    },
  }];

  return {
    routes,
    async open(host, name, args) {
      const ch = channels.get(host);
      if (!ch) throw conflict(`The agent of host ${host} has no stream channel to this server.`);
      try {
        return await ch.mux.open(name, args);
      } catch (err) {
        throw conflict(`Host ${host} refused the ${name} stream: ${(err as Error).message}`);
      }
    },
    connected: () => [...channels.keys()],
    waitFor(host) {
      if (channels.has(host)) return Promise.resolve();
      return new Promise((resolve) => waiters.set(host, [...(waiters.get(host) ?? []), resolve]));
    },
    close() {
      closed = true;
      for (const ch of channels.values()) {
        clearInterval(ch.timer);
        ch.ws.close(1001, 'server stopping');
        ch.mux.close();
      }
      channels.clear();
    },
  };
}
