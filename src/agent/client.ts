// The agent's side of the agent API: plain HTTP(S) calls out to the server,
// with the agent token in a header. Image bytes stream both ways.
import { createWriteStream } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  AGENT_TOKEN_HEADER, type HostInfo, type HostRegistration, type ReportRequest, type WatchRequest, type WatchResponse,
} from '../fleet/protocol.ts';

export class HttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/** The calls an agent makes to the server (AgentClient over HTTP; a test double in tests). */
export interface AgentTransport {
  readonly hostname: string;
  register(info: HostInfo): Promise<HostRegistration>;
  watch(req: WatchRequest, signal?: AbortSignal): Promise<WatchResponse>;
  report(req: ReportRequest): Promise<void>;
  uploadImage(imageId: string, body: AsyncIterable<Buffer>): Promise<void>;
  close(): void;
}

export class AgentClient implements AgentTransport {
  private readonly httpAgent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  private readonly httpsAgent = new https.Agent({ keepAlive: true, maxSockets: 16 });
  private readonly base: string;
  private readonly token: string;
  readonly hostname: string;
  constructor(server: string, token: string, hostname: string) {
    this.base = server.replace(/\/+$/, '') + '/agent/v1';
    this.token = token;
    this.hostname = hostname;
  }

  /** A JSON call over node:http(s) with keep-alive (lighter than fetch for the many small calls an agent makes). */
  private call<T>(method: string, path: string, body?: unknown, timeoutMs = 30_000, signal?: AbortSignal): Promise<T> {
    const url = new URL(this.base + path);
    const payload = body !== undefined ? Buffer.from(JSON.stringify(body)) : null;
    const mod = url.protocol === 'https:' ? https : http;
    return new Promise<T>((resolve, reject) => {
      const req = mod.request(url, {
        method, agent: url.protocol === 'https:' ? this.httpsAgent : this.httpAgent, timeout: timeoutMs, signal,
        headers: { [AGENT_TOKEN_HEADER]: this.token, ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}) },
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const status = res.statusCode ?? 0;
          if (status < 200 || status >= 300) return reject(new HttpError(status, `${method} ${path}: ${status} ${text.slice(0, 300)}`));
          try {
            resolve((text ? JSON.parse(text) : {}) as T);
          } catch (err) {
            reject(err);
          }
        });
      });
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timed out after ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end(payload ?? undefined);
    });
  }

  private host(): string {
    return `/hosts/${encodeURIComponent(this.hostname)}`;
  }

  register(info: HostInfo): Promise<HostRegistration> {
    return this.call('PUT', this.host(), info);
  }

  watch(req: WatchRequest, signal?: AbortSignal): Promise<WatchResponse> {
    return this.call('POST', `${this.host()}/watch`, req, ((req.wait ?? 0) + 15) * 1000, signal);
  }

  report(req: ReportRequest): Promise<void> {
    return this.call('POST', `${this.host()}/report`, req);
  }

  async downloadImage(imageId: string, dest: string): Promise<void> {
    const r = await fetch(`${this.base}/images/${encodeURIComponent(imageId)}/file`, { headers: { [AGENT_TOKEN_HEADER]: this.token } });
    if (!r.ok || !r.body) throw new HttpError(r.status, `download of image ${imageId}: ${r.status} ${(await r.text()).slice(0, 300)}`);
    await pipeline(Readable.fromWeb(r.body as import('node:stream/web').ReadableStream), createWriteStream(dest, { mode: 0o600 }));
  }

  /** Closes idle keep-alive connections. */
  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }

  async uploadImage(imageId: string, body: AsyncIterable<Buffer>): Promise<void> {
    const r = await fetch(`${this.base}/images/${encodeURIComponent(imageId)}/file`, {
      method: 'PUT',
      headers: { [AGENT_TOKEN_HEADER]: this.token, 'content-type': 'application/octet-stream' },
      body: Readable.from(body) as unknown as BodyInit,
      duplex: 'half',
    } as RequestInit);
    if (!r.ok) throw new HttpError(r.status, `upload of image ${imageId}: ${r.status} ${(await r.text()).slice(0, 300)}`);
  }
}
