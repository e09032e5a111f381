// The agent's side of the agent API: plain HTTP(S) calls out to the server,
// with the agent token in a header. Image bytes stream both ways.
import { createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  AGENT_TOKEN_HEADER, type HostInfo, type HostRegistration, type ReportRequest, type WatchRequest, type WatchResponse,
} from '../compute/engine/protocol.ts';

export class HttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

export class AgentClient {
  private readonly base: string;
  private readonly token: string;
  readonly hostname: string;
  constructor(server: string, token: string, hostname: string) {
    this.base = server.replace(/\/+$/, '') + '/agent/v1';
    this.token = token;
    this.hostname = hostname;
  }

  private async call<T>(method: string, path: string, body?: unknown, timeoutMs = 30_000, signal?: AbortSignal): Promise<T> {
    const timeout = AbortSignal.timeout(timeoutMs);
    const r = await fetch(this.base + path, {
      method,
      headers: { [AGENT_TOKEN_HEADER]: this.token, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body !== undefined ? JSON.stringify(body) : undefined,
      signal: signal ? AbortSignal.any([timeout, signal]) : timeout,
    });
    const text = await r.text();
    if (!r.ok) throw new HttpError(r.status, `${method} ${path}: ${r.status} ${text.slice(0, 300)}`);
    return (text ? JSON.parse(text) : {}) as T;
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
