// WebSocket routes on the one HTTP server. An upgrade request goes through
// Fastify's router like any other request (with a response bound to its
// socket), so it meets the same service machinery: request id, gate,
// authenticators, policy rule; a refusal is the service's own error body.
// The route's handler then takes the connection over with acceptWebSocket().
import type { FastifyInstance } from 'fastify';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
// ws loads node:https and node:tls: imported on the first upgrade, so a plain HTTP server never loads TLS (see defer-tls.ts)
import type { WebSocket, WebSocketServer } from 'ws';
import { ApiError } from '../common/errors.ts';
import type { RouteContext } from './service.ts';

const UPGRADE = Symbol('stratus.upgrade');
interface Upgrade { socket: Duplex; head: Buffer; res: ServerResponse }
type UpgradeRequest = IncomingMessage & { [UPGRADE]?: Upgrade };

/** Routes upgrade requests of `app`'s server through its router (call once, when building the server). */
export function routeUpgrades(app: FastifyInstance): void {
  // node:http as CommonJS: its ES module namespace would load node:tls and node:http2 (see defer-tls.ts)
  const http = process.getBuiltinModule('node:http');
  app.server.on('upgrade', (req: UpgradeRequest, socket: Duplex, head: Buffer) => {
    const res = new http.ServerResponse(req);
    res.assignSocket(socket as import('node:net').Socket);
    req[UPGRADE] = { socket, head, res };
    // an answer other than the upgrade (a refusal, a 404) ends the connection
    res.on('finish', () => socket.end());
    socket.on('error', () => socket.destroy());
    app.routing(req, res);
  });
}

export interface AcceptOptions {
  /** Subprotocols this route speaks, in preference order; the first the client offers is chosen. */
  protocols?: string[];
  /** Largest message accepted. */
  maxPayload?: number;
}

/** One handshake handler per kind of route (payload limit and subprotocols). */
const servers = new Map<string, WebSocketServer>();
async function serverFor(maxPayload: number, protocols: string[]): Promise<WebSocketServer> {
  const { WebSocketServer } = await import('ws');
  const key = `${maxPayload} ${protocols.join(',')}`;
  let s = servers.get(key);
  if (!s) {
    s = new WebSocketServer({
      noServer: true, maxPayload, perMessageDeflate: false,
      handleProtocols: (offered: Set<string>) => protocols.find((p) => offered.has(p)) ?? false,
    });
    servers.set(key, s);
  }
  return s;
}

/** True when the route's request asks to upgrade to a WebSocket. */
export function isUpgrade(rc: RouteContext): boolean {
  return !!(rc.req.raw as UpgradeRequest)[UPGRADE];
}

/**
 * Completes the WebSocket handshake of the route's request and hands the
 * connection over (Fastify no longer answers it). A plain HTTP request gets
 * a 400: this route only speaks WebSocket.
 */
export async function acceptWebSocket(rc: RouteContext, o: AcceptOptions = {}): Promise<WebSocket> {
  const raw = rc.req.raw as UpgradeRequest;
  const up = raw[UPGRADE];
  if (!up || String(raw.headers.upgrade ?? '').toLowerCase() !== 'websocket') {
    throw new ApiError('BadRequest', 'This resource speaks WebSocket: send an upgrade request.');
  }
  const wss = await serverFor(o.maxPayload ?? 1 << 20, o.protocols ?? []);
  rc.reply.hijack();
  up.res.detachSocket(up.socket as import('node:net').Socket);
  return new Promise((resolve, reject) => {
    if (!up.socket.readable || !up.socket.writable) return reject(new ApiError('BadRequest', 'The connection closed during the upgrade.'));
    wss.handleUpgrade(raw, up.socket, up.head, (ws) => resolve(ws));
    // a failed handshake (bad key or version) is answered by ws itself and ends the socket
    up.socket.once('close', () => reject(new ApiError('BadRequest', 'The WebSocket handshake failed.')));
  });
}
