// Subrequests, as Swift's middleware make them (make_subrequest): bulk
// operations, FormPost uploads, static-web index pages, versioned writes and
// large-object segment checks run an object or container request of the
// caller through the rest of the pipeline (the middleware after the one
// asking, then the core), so access rules, quotas and versioning apply to
// them as to the caller's own requests. The answer is captured (status,
// headers, body) instead of sent.
import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from '../../common/errors.ts';
import { accountRequest } from './account.ts';
import { containerRequest } from './container.ts';
import { objectRequest } from './object.ts';
import { splitSwiftPath, type SwiftMiddleware, type SwiftRequest } from './request.ts';

/** A reply that keeps what handlers set (status, headers) for the caller to read. */
export class CapturedReply {
  statusCode = 200;
  private readonly h = new Map<string, string>();
  code(n: number): this { this.statusCode = n; return this; }
  status(n: number): this { return this.code(n); }
  header(k: string, v: unknown): this { this.h.set(k.toLowerCase(), String(v)); return this; }
  headers(o: Record<string, unknown>): this { for (const [k, v] of Object.entries(o)) this.header(k, v); return this; }
  getHeader(k: string): string | undefined { return this.h.get(k.toLowerCase()); }
  getHeaders(): Record<string, string> { return Object.fromEntries(this.h); }
  hasHeader(k: string): boolean { return this.h.has(k.toLowerCase()); }
  removeHeader(k: string): this { this.h.delete(k.toLowerCase()); return this; }
}

export interface SubAnswer {
  status: number;
  headers: Record<string, string>;
  /** What the handler answered: a string, a Buffer, a stream, or undefined. */
  body: unknown;
}

export interface SubrequestSpec {
  method: string;
  container?: string;
  object?: string;
  /** The subrequest's own headers (lower-case names); the caller's are not passed on. */
  headers?: IncomingHttpHeaders;
  query?: Record<string, string>;
  contentType?: string;
  /** The body of a PUT (a stream of the bytes). */
  body?: Readable | AsyncIterable<Buffer>;
}

/** Runs subrequests through the middleware after a given one, then the core. */
export class Subrequests {
  private readonly chain: SwiftMiddleware[];
  constructor(chain: SwiftMiddleware[]) {
    this.chain = chain;
  }

  /** The subrequest's answer; an error answer (thrown ApiError) is returned as its status, not thrown. */
  async run(after: SwiftMiddleware, sr: SwiftRequest, spec: SubrequestSpec): Promise<SubAnswer> {
    // Names from a body (bulk lists, archives, forms) meet the same rules as a request's path.
    try {
      const enc = (p: string) => p.split('/').map(encodeURIComponent).join('/');
      splitSwiftPath(`/v1/${sr.account}${spec.container !== undefined ? `/${enc(spec.container)}` : ''}${spec.object !== undefined ? `/${enc(spec.object)}` : ''}`);
    } catch (e) {
      if (e instanceof ApiError) return errorAnswer(e);
      throw e;
    }
    const reply = new CapturedReply();
    const req = Object.create(sr.req) as FastifyRequest;
    Object.defineProperty(req, 'body', { value: spec.body, writable: true, configurable: true });
    Object.defineProperty(req, 'method', { value: spec.method, writable: true, configurable: true });
    const sub: SwiftRequest = {
      req, reply: reply as unknown as FastifyReply, ctx: sr.ctx, method: spec.method,
      account: sr.account, project: sr.project, container: spec.container, object: spec.object,
      query: spec.query ?? {}, headers: spec.headers ?? {}, contentType: spec.contentType, cred: sr.cred,
      authorized: sr.authorized, level: sr.level,
    };
    const from = this.chain.indexOf(after) + 1;
    let i = from;
    const next = (): Promise<unknown> => {
      const m = this.chain[i++];
      if (m) return m(sub, next);
      if (sub.object !== undefined) return objectRequest(sub);
      if (sub.container !== undefined) return containerRequest(sub);
      return accountRequest(sub);
    };
    try {
      const body = await next();
      return { status: reply.statusCode, headers: reply.getHeaders(), body };
    } catch (e) {
      if (e instanceof ApiError) return errorAnswer(e);
      throw e;
    }
  }
}

function errorAnswer(e: ApiError): SubAnswer {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(e.headers)) headers[k.toLowerCase()] = v;
  return { status: e.status, headers, body: e.message };
}

/** Reads a subrequest's body to the end (small answers only: listings, pages, error texts). */
export async function bodyText(body: unknown, max = 16 * 1024 * 1024): Promise<Buffer> {
  if (body === undefined || body === null) return Buffer.alloc(0);
  if (typeof body === 'string') return Buffer.from(body);
  if (Buffer.isBuffer(body)) return body;
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of body as AsyncIterable<Buffer | string>) {
    const b = typeof c === 'string' ? Buffer.from(c) : c;
    n += b.length;
    if (n > max) throw new Error('subrequest answer too large');
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}

/** Drops a subrequest's body unread (a stream is destroyed). */
export function discard(body: unknown): void {
  const s = body as { destroy?: () => void } | undefined;
  if (s && typeof s === 'object' && typeof s.destroy === 'function') s.destroy();
}

export const isSuccess = (status: number) => status >= 200 && status < 300;
