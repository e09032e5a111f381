// The agent's side of the agent API: plain HTTP(S) calls out to the server
// (one of several replicas, see ServerList), with the agent token in a
// header. Image bytes stream both ways.
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

// The control-plane replicas an agent talks to. Any replica serves the whole
// agent API (they share the database), so the agent uses one at a time and
// moves to the next when a call cannot reach it (a connection error, a
// timeout) or it answers 5xx; the next failure moves on again, round the list.

/** The server URLs of `--server`: repeated, comma-separated or both; each an http(s) base URL. */
export function serverUrls(given: string | readonly string[]): string[] {
  const urls = (typeof given === 'string' ? [given] : given).flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean);
  if (!urls.length) throw new Error('--server: give the URL of at least one Stratus server');
  for (const u of urls) {
    let p: URL;
    try {
      p = new URL(u);
    } catch {
      throw new Error(`--server: ${JSON.stringify(u)} is not a URL`);
    }
    if (p.protocol !== 'http:' && p.protocol !== 'https:') throw new Error(`--server: ${u} is not an http(s) URL`);
  }
  return [...new Set(urls.map((u) => u.replace(/\/+$/, '')))];
}

/** Whether another replica may answer where this one failed: it was unreachable or failed itself, not refused the call. */
export function worthAnotherServer(err: unknown): boolean {
  if (err instanceof HttpError) return err.status >= 500;
  return !(err instanceof Error && err.name === 'AbortError');
}

export class ServerList {
  readonly urls: readonly string[];
  private index = 0;
  constructor(urls: string | readonly string[]) {
    this.urls = serverUrls(urls);
  }

  /** The server calls go to now. */
  get current(): string {
    return this.urls[this.index]!;
  }

  /** Moves past `url` if it is still the current one (calls failing together move once). */
  failed(url: string): void {
    if (this.urls[this.index] === url) this.index = (this.index + 1) % this.urls.length;
  }

  /**
   * Runs `call` against the current server, then each next one while the
   * failure is one another replica may not have; throws the last failure once
   * every server was tried. `stop`: a call given up on (an abort) is not retried.
   */
  async attempt<T>(call: (base: string) => Promise<T>, stop?: AbortSignal): Promise<T> {
    let last: unknown;
    for (let tried = 0; tried < this.urls.length; tried++) {
      const base = this.current;
      try {
        return await call(base);
      } catch (err) {
        if (stop?.aborted || !worthAnotherServer(err)) throw err;
        last = err;
        this.failed(base);
      }
    }
    throw last;
  }
}

/** The calls an agent makes to the server (AgentClient over HTTP; a test double in tests). */
export interface AgentTransport {
  readonly hostname: string;
  register(info: HostInfo): Promise<HostRegistration>;
  watch(req: WatchRequest, signal?: AbortSignal): Promise<WatchResponse>;
  report(req: ReportRequest): Promise<void>;
  uploadImage(imageId: string, body: AsyncIterable<Buffer>): Promise<void>;
  /** Volume backups' chunks (AgentClient; absent in test doubles that serve no volumes). */
  putBackupChunk?(backupId: string, index: number, sha256: string, data: Buffer): Promise<void>;
  getBackupChunk?(backupId: string, index: number): Promise<Buffer>;
  close(): void;
}

export class AgentClient implements AgentTransport {
  private readonly httpAgent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  private readonly httpsAgent = new https.Agent({ keepAlive: true, maxSockets: 16 });
  readonly servers: ServerList;
  private readonly token: string;
  readonly hostname: string;
  /** `server`: one base URL, or the replicas in the order they are tried. */
  constructor(server: string | readonly string[] | ServerList, token: string, hostname: string) {
    this.servers = server instanceof ServerList ? server : new ServerList(server);
    this.token = token;
    this.hostname = hostname;
  }

  /** A call to the current server, moving to the next replica while one is unreachable or failing. */
  private call<T>(method: string, path: string, body?: unknown, timeoutMs = 30_000, signal?: AbortSignal): Promise<T> {
    return this.servers.attempt((base) => this.callOne<T>(base, method, path, body, timeoutMs, signal), signal);
  }

  /** A JSON call over node:http(s) with keep-alive (lighter than fetch for the many small calls an agent makes). */
  private callOne<T>(base: string, method: string, path: string, body: unknown, timeoutMs: number, signal?: AbortSignal): Promise<T> {
    const url = new URL(`${base}/agent/v1${path}`);
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

  /** Downloads an image's bytes into `dest` (overwritten: a download cut short on one replica starts again on the next). */
  downloadImage(imageId: string, dest: string): Promise<void> {
    return this.servers.attempt(async (base) => {
      const r = await fetch(`${base}/agent/v1/images/${encodeURIComponent(imageId)}/file`, { headers: { [AGENT_TOKEN_HEADER]: this.token } });
      if (!r.ok || !r.body) throw new HttpError(r.status, `download of image ${imageId}: ${r.status} ${(await r.text()).slice(0, 300)}`);
      await pipeline(Readable.fromWeb(r.body as import('node:stream/web').ReadableStream), createWriteStream(dest, { mode: 0o600 }));
    });
  }

  /** Closes idle keep-alive connections. */
  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }

  /**
   * Sends chunk `index` of a backup (zlib-compressed; `sha256`: of the
   * uncompressed bytes, which the server checks). Retried on the next
   * replica: a chunk is a buffer, sent again whole.
   */
  putBackupChunk(backupId: string, index: number, sha256: string, data: Buffer): Promise<void> {
    return this.servers.attempt(async (base) => {
      const r = await fetch(`${base}/agent/v1/backups/${encodeURIComponent(backupId)}/chunks/${index}`, {
        method: 'PUT', body: new Uint8Array(data),
        headers: { [AGENT_TOKEN_HEADER]: this.token, 'content-type': 'application/octet-stream', 'x-stratus-sha256': sha256 },
      });
      if (!r.ok) throw new HttpError(r.status, `chunk ${index} of backup ${backupId}: ${r.status} ${(await r.text()).slice(0, 300)}`);
    });
  }

  /** Chunk `index` of a backup being restored, as stored (zlib-compressed). */
  getBackupChunk(backupId: string, index: number): Promise<Buffer> {
    return this.servers.attempt(async (base) => {
      const r = await fetch(`${base}/agent/v1/backups/${encodeURIComponent(backupId)}/chunks/${index}`, { headers: { [AGENT_TOKEN_HEADER]: this.token } });
      if (!r.ok) throw new HttpError(r.status, `chunk ${index} of backup ${backupId}: ${r.status} ${(await r.text()).slice(0, 300)}`);
      return Buffer.from(await r.arrayBuffer());
    });
  }

  /**
   * Streams a snapshot to the current server. Not retried on another replica:
   * the bytes are read once; a failure marks that server failed (the next
   * call goes to another) and the agent reports the request failed.
   */
  async uploadImage(imageId: string, body: AsyncIterable<Buffer>): Promise<void> {
    const base = this.servers.current;
    try {
      const r = await fetch(`${base}/agent/v1/images/${encodeURIComponent(imageId)}/file`, {
        method: 'PUT',
        headers: { [AGENT_TOKEN_HEADER]: this.token, 'content-type': 'application/octet-stream' },
        body: Readable.from(body) as unknown as BodyInit,
        duplex: 'half',
      } as RequestInit);
      if (!r.ok) throw new HttpError(r.status, `upload of image ${imageId}: ${r.status} ${(await r.text()).slice(0, 300)}`);
    } catch (err) {
      if (worthAnotherServer(err)) this.servers.failed(base);
      throw err;
    }
  }
}
