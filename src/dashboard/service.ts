// The web dashboard's static files (built from ui/ by ui/build.mjs into
// ui/dist): index.html at `/` and `/dashboard/`, the hashed assets under
// `/dashboard/assets/`. The dashboard is a client of the public APIs like any
// other (it calls them with the user's token); this service only hands out
// its files, to anyone, with:
//
// - a strict Content-Security-Policy: scripts, styles, connections only from
//   this origin, no inline script or style, no framing (frame-ancestors 'none'),
//   no plugins, no base URI;
// - X-Content-Type-Options nosniff, Referrer-Policy no-referrer;
// - assets (named by content hash) cached for a year, immutable; index.html
//   revalidated on every load (no-cache with an ETag);
// - the precompressed .br or .gz the build wrote, as Accept-Encoding allows.
//
// Served from memory once read. Nothing is fetched from elsewhere at run time.
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { extname, join, resolve } from 'node:path';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from '../common/errors.ts';
import { PUBLIC } from '../http/policy.ts';
import type { Route, Service } from '../http/service.ts';

/** Where the built dashboard is: STRATUS_UI_DIST, else ui/dist in the checkout. */
export const DEFAULT_UI_DIST = resolve(import.meta.dirname, '../../ui/dist');

export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:", "font-src 'self'",
  "connect-src 'self'", "manifest-src 'self'", "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'", "object-src 'none'",
].join('; ');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.json': 'application/json', '.txt': 'text/plain; charset=utf-8', '.svg': 'image/svg+xml', '.woff2': 'font/woff2', '.png': 'image/png',
};

interface Variant { data: Buffer; encoding: 'br' | 'gzip' | null }
interface StaticFile { type: string; etag: string; plain: Buffer; br: Buffer | null; gz: Buffer | null }

function renderError(err: ApiError): unknown {
  return { error: { code: err.status, title: err.code, message: err.message } };
}

/** A file name the build makes: one path segment of safe characters under assets/, never `.` or `..`. */
const ASSET = /^[A-Za-z0-9_-][A-Za-z0-9_.-]*$/;

export function dashboardServices(o: { dist?: string } = {}): Service[] {
  const dist = o.dist ?? process.env.STRATUS_UI_DIST ?? DEFAULT_UI_DIST;
  const cache = new Map<string, { file: StaticFile | null; mtimeMs: number }>();

  /** A file of the build, read once (again when it changed: a rebuild while serving). */
  const load = (rel: string): StaticFile | null => {
    const path = join(dist, rel);
    let mtimeMs: number;
    try {
      mtimeMs = statSync(path).mtimeMs;
    } catch {
      cache.delete(rel);
      return null;
    }
    const hit = cache.get(rel);
    if (hit && hit.mtimeMs === mtimeMs) return hit.file;
    const read = (p: string) => {
      try {
        return readFileSync(p);
      } catch {
        return null;
      }
    };
    const plain = read(path);
    const file = plain && {
      type: TYPES[extname(rel)] ?? 'application/octet-stream',
      etag: `"${createHash('sha256').update(plain).digest('base64url').slice(0, 22)}"`,
      plain, br: read(`${path}.br`), gz: read(`${path}.gz`),
    };
    cache.set(rel, { file, mtimeMs });
    return file;
  };

  const pick = (req: FastifyRequest, f: StaticFile): Variant => {
    const accept = String(req.headers['accept-encoding'] ?? '');
    if (f.br && /\bbr\b/.test(accept)) return { data: f.br, encoding: 'br' };
    if (f.gz && /\bgzip\b/.test(accept)) return { data: f.gz, encoding: 'gzip' };
    return { data: f.plain, encoding: null };
  };

  const send = (req: FastifyRequest, reply: FastifyReply, f: StaticFile, cacheControl: string): Buffer | string => {
    reply
      .header('content-security-policy', CONTENT_SECURITY_POLICY)
      .header('x-content-type-options', 'nosniff')
      .header('x-frame-options', 'DENY')
      .header('referrer-policy', 'no-referrer')
      .header('cross-origin-opener-policy', 'same-origin')
      .header('cache-control', cacheControl)
      .header('etag', f.etag)
      .header('vary', 'accept-encoding')
      .type(f.type);
    if (req.headers['if-none-match'] === f.etag) {
      reply.code(304);
      return '';
    }
    const v = pick(req, f);
    if (v.encoding) reply.header('content-encoding', v.encoding);
    return v.data;
  };

  const index: Route = {
    method: 'GET', path: '/', rule: PUBLIC,
    handler(rc) {
      const f = load('index.html');
      if (!f) throw new ApiError('Unavailable', 'The dashboard is not built: run `node ui/build.mjs` (bin/stratus does it).');
      return send(rc.req, rc.reply, f, 'no-cache');
    },
  };
  const asset: Route = {
    method: 'GET', path: '/assets/:file', rule: PUBLIC,
    handler(rc) {
      const name = rc.params.file!;
      const f = ASSET.test(name) && !name.endsWith('.br') && !name.endsWith('.gz') ? load(join('assets', name)) : null;
      if (!f) throw new ApiError('NotFound', 'The resource could not be found.');
      return send(rc.req, rc.reply, f, 'public, max-age=31536000, immutable');
    },
  };
  return [
    { name: 'dashboard', prefix: '/dashboard', rules: {}, renderError, routes: [index, asset] },
    // the root page alone; any other path outside a service is answered as before (the server's 404)
    { name: 'dashboard-root', prefix: '', rules: {}, renderError, routes: [index] },
  ];
}
