// The agent's half of the metadata service (169.254.169.254): one HTTP
// listener per network on a unix socket, which the haproxy in the network's
// DHCP namespace forwards guests' requests to (dhcp.ts runs it), relayed to
// the control plane's POST /agent/v1/metadata with the agent token.
//
// Who asks is what haproxy saw, never what the guest says: the network is the
// socket's (haproxy's header must agree), the source address haproxy's
// `set-header` (it replaces any header of that name the guest sent), and the
// relay carries only method, path and body, so no other header of the guest
// reaches the control plane. The answer (status, type, body) streams back.
import * as fsp from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { Logger } from 'pino';
import { AGENT_TOKEN_HEADER } from '../fleet/protocol.ts';
import {
  MAX_RELAY_BODY, METADATA_ANSWER_HEADER, METADATA_NETWORK_HEADER, METADATA_RELAY_PATH, METADATA_SOURCE_HEADER, type MetadataRelayRequest,
} from '../metadata/protocol.ts';
import { HttpError, ServerList } from './client.ts';

/** Linux's limit on a unix socket path (sun_path), less its NUL. */
/** haproxy's bound on a unix socket path (the kernel's is 107). */
const MAX_SOCKET_PATH = 97;
const TIMEOUT_MS = 30_000;

const plain = (res: http.ServerResponse, status: number, title: string, explanation: string) => {
  res.writeHead(status, { 'content-type': 'text/plain; charset=UTF-8' });
  res.end(`${status} ${title}\n\n${explanation}\n\n   `);
};

/** The request body; null once it grows past what is relayed. */
function readBody(req: http.IncomingMessage): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= MAX_RELAY_BODY) return void chunks.push(c);
      req.pause();
      resolve(null);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export class MetadataProxy {
  private readonly servers: ServerList;
  private readonly token: string;
  private readonly log: Logger;
  private readonly listeners = new Map<string, { server: http.Server; path: string }>();
  private readonly httpAgent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  private readonly httpsAgent = new https.Agent({ keepAlive: true, maxSockets: 16 });

  constructor(o: { servers: ServerList; token: string; log: Logger }) {
    this.servers = o.servers;
    this.token = o.token;
    this.log = o.log;
  }

  /** Listens for `networkId` on `socketPath` unless it already does (a socket file left by an earlier agent is replaced); true when it started. */
  async ensure(networkId: string, socketPath: string): Promise<boolean> {
    const have = this.listeners.get(networkId);
    if (have && have.path === socketPath && have.server.listening && (await fsp.stat(socketPath).then((s) => s.isSocket(), () => false))) return false;
    if (have) await this.remove(networkId);
    if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH) throw new Error(`metadata socket path ${socketPath} is longer than a unix socket path may be`);
    await fsp.rm(socketPath, { force: true });
    const server = http.createServer((req, res) => void this.handle(networkId, req, res));
    server.requestTimeout = TIMEOUT_MS;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
    // the agent's stop closes them; they alone do not keep it running
    server.unref();
    this.listeners.set(networkId, { server, path: socketPath });
    return true;
  }

  /** Stops listening for `networkId` and removes its socket. */
  async remove(networkId: string): Promise<void> {
    const l = this.listeners.get(networkId);
    if (!l) return;
    this.listeners.delete(networkId);
    await new Promise<void>((resolve) => {
      l.server.close(() => resolve());
      l.server.closeAllConnections();
    });
    await fsp.rm(l.path, { force: true });
  }

  /** Whether it listens for `networkId`. */
  listening(networkId: string): boolean {
    return !!this.listeners.get(networkId)?.server.listening;
  }

  async close(): Promise<void> {
    for (const id of [...this.listeners.keys()]) await this.remove(id);
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }

  private async handle(networkId: string, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    try {
      const source = req.headers[METADATA_SOURCE_HEADER];
      const network = req.headers[METADATA_NETWORK_HEADER];
      // only haproxy talks to this socket and always sets both: anything else is refused
      if (typeof source !== 'string' || network !== networkId) return plain(res, 400, 'Bad Request', 'The request did not come through the metadata proxy.');
      const method = req.method ?? 'GET';
      if (method !== 'GET' && method !== 'HEAD' && method !== 'POST') return plain(res, 405, 'Method Not Allowed', 'The method is not allowed for this resource.');
      let path: string;
      try {
        path = decodeURIComponent(new URL(req.url ?? '/', 'http://169.254.169.254').pathname);
      } catch {
        return plain(res, 400, 'Bad Request', 'The path is not valid.');
      }
      const body = await readBody(req);
      if (!body) {
        // the rest is not read: the answer closes the connection
        res.setHeader('connection', 'close');
        return plain(res, 400, 'Bad Request', 'Request is too large.');
      }
      const relay: MetadataRelayRequest = { network_id: networkId, remote_ip: source, method, path, ...(body.length ? { body: body.toString('base64') } : {}) };
      const answer = await this.servers.attempt((base) => this.relayOne(base, relay));
      res.writeHead(answer.statusCode ?? 500, { 'content-type': answer.headers['content-type'] ?? 'text/plain; charset=UTF-8' });
      if (method === 'HEAD') {
        answer.resume();
        res.end();
        return;
      }
      answer.pipe(res);
    } catch (err) {
      // the control plane could not be asked: the guest hears it failed, the log says why (no request content)
      this.log.warn({ network: networkId, err: (err as Error).message }, 'metadata relay failed');
      if (!res.headersSent) plain(res, 500, 'Internal Server Error', 'An unknown error has occurred. Please try your request again.');
      else res.destroy();
    }
  }

  /** One relay to one replica: the metadata answer's response (its body unread), or an error another replica may not have. */
  private relayOne(base: string, relay: MetadataRelayRequest): Promise<http.IncomingMessage> {
    const url = new URL(`${base}/agent${METADATA_RELAY_PATH}`);
    const payload = Buffer.from(JSON.stringify(relay));
    const mod = url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const r = mod.request(url, {
        method: 'POST', agent: url.protocol === 'https:' ? this.httpsAgent : this.httpAgent, timeout: TIMEOUT_MS,
        headers: { [AGENT_TOKEN_HEADER]: this.token, 'content-type': 'application/json', 'content-length': payload.length },
      }, (answer) => {
        if (answer.headers[METADATA_ANSWER_HEADER]) return resolve(answer);
        answer.resume();
        reject(new HttpError(answer.statusCode ?? 0, `metadata relay: agent API answered ${answer.statusCode}`));
      });
      r.on('timeout', () => r.destroy(new Error(`metadata relay: timed out after ${TIMEOUT_MS} ms`)));
      r.on('error', reject);
      r.end(payload);
    });
  }
}
