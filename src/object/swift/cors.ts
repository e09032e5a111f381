// CORS, as Swift's proxy does it (proxy/controllers/base.py: cors_validation
// and OPTIONS), from a container's metadata: X-Container-Meta-Access-Control-
// Allow-Origin (space-separated origins, or *), -Max-Age, -Expose-Headers.
// Strict mode (Swift's default): a request from an origin the container does
// not allow gets no CORS headers; a preflight (OPTIONS with Origin) it does
// not allow is a 401.
import { ApiError } from '../../common/errors.ts';
import { loadContainer } from './container.ts';
import { header } from './headers.ts';
import type { SwiftMiddleware } from './request.ts';

export interface CorsInfo {
  allowOrigin: string | undefined;
  maxAge: string | undefined;
  exposeHeaders: string | undefined;
}

/** The container's CORS settings from its user metadata (keys lower-cased, without X-Container-Meta-). */
export function corsInfo(meta: Record<string, string> | undefined): CorsInfo {
  const get = (k: string) => {
    if (!meta) return undefined;
    for (const [key, v] of Object.entries(meta)) if (key.toLowerCase() === k) return v;
    return undefined;
  };
  return {
    allowOrigin: get('access-control-allow-origin'),
    maxAge: get('access-control-max-age'),
    exposeHeaders: get('access-control-expose-headers'),
  };
}

export function originAllowed(cors: CorsInfo, origin: string): boolean {
  const allowed = new Set((cors.allowOrigin ?? '').split(' ').map((a) => a.trim()).filter(Boolean));
  return allowed.has(origin) || allowed.has('*');
}

/** The methods Swift's controllers answer (their `Allow`). */
export const ACCOUNT_METHODS = ['GET', 'HEAD', 'POST', 'OPTIONS'];
export const CONTAINER_METHODS = ['GET', 'HEAD', 'PUT', 'POST', 'DELETE', 'OPTIONS'];
export const OBJECT_METHODS = ['GET', 'HEAD', 'PUT', 'POST', 'DELETE', 'COPY', 'OPTIONS'];

export interface Preflight {
  status: number;
  headers: Record<string, string>;
}

/**
 * The answer to OPTIONS: 200 with Allow; with an Origin (on a container or
 * object), the CORS grant, or 401 when the origin or the requested method is
 * not allowed. `cors` is null for the account (no container to ask).
 */
export function preflight(methods: string[], cors: CorsInfo | null, headers: Record<string, string | string[] | undefined>): Preflight {
  const h = (n: string) => { const v = headers[n]; return Array.isArray(v) ? v.join(',') : v; };
  const out: Record<string, string> = { allow: methods.join(', ') };
  const origin = h('origin');
  if (!origin || !cors) return { status: 200, headers: out };
  if (!originAllowed(cors, origin) || !methods.includes(h('access-control-request-method') ?? '')) {
    return { status: 401, headers: out };
  }
  const vary: string[] = [];
  if (cors.allowOrigin?.trim() === '*') out['access-control-allow-origin'] = '*';
  else { out['access-control-allow-origin'] = origin; vary.push('Origin'); }
  if (cors.maxAge !== undefined) out['access-control-max-age'] = cors.maxAge;
  out['access-control-allow-methods'] = methods.join(', ');
  const asked = [...new Set((h('access-control-request-headers') ?? '').split(',').map((s) => s.trim()).filter(Boolean))];
  if (asked.length) {
    out['access-control-allow-headers'] = asked.join(', ');
    vary.push('Access-Control-Request-Headers');
  }
  if (vary.length) out.vary = vary.join(', ');
  return { status: 200, headers: out };
}

const ALWAYS_EXPOSED = ['cache-control', 'content-language', 'content-type', 'expires', 'last-modified', 'pragma', 'etag',
  'x-timestamp', 'x-trans-id', 'x-openstack-request-id'];

/**
 * The CORS headers of an actual (non-preflight) answer to a request with an
 * Origin: none when the container does not allow it (strict mode), else
 * Access-Control-Allow-Origin and -Expose-Headers (the usual ones, the
 * answer's metadata headers, the container's list). `responseHeaders` are
 * the answer's own (names any case); what it already sets is kept.
 */
export function corsResponseHeaders(origin: string | undefined, cors: CorsInfo, responseHeaders: Record<string, unknown>): Record<string, string> {
  if (!origin || !originAllowed(cors, origin)) return {};
  const names = Object.keys(responseHeaders).map((k) => k.toLowerCase());
  const out: Record<string, string> = {};
  if (!names.includes('access-control-expose-headers')) {
    const expose = new Set(ALWAYS_EXPOSED);
    for (const n of names) if (n.startsWith('x-container-meta') || n.startsWith('x-object-meta')) expose.add(n);
    for (const e of (cors.exposeHeaders ?? '').split(' ')) if (e.trim()) expose.add(e.trim().toLowerCase());
    out['access-control-expose-headers'] = [...expose].join(', ');
  }
  if (!names.includes('access-control-allow-origin')) {
    if (cors.allowOrigin?.trim() === '*') out['access-control-allow-origin'] = '*';
    else {
      out['access-control-allow-origin'] = origin;
      const vary = responseHeaders.vary ?? responseHeaders.Vary;
      out.vary = vary ? `${String(vary)}, Origin` : 'Origin';
    }
  }
  return out;
}

// ---- the middleware

export function corsMiddleware(): SwiftMiddleware {
  return async (sr, next) => {
    if (sr.method === 'OPTIONS') {
      const methods = sr.object !== undefined ? OBJECT_METHODS : sr.container !== undefined ? CONTAINER_METHODS : ACCOUNT_METHODS;
      let cors: CorsInfo | null = null;
      if (sr.container !== undefined && sr.headers.origin) cors = corsInfo((await loadContainer(sr))?.metadata);
      const p = preflight(methods, cors, sr.headers as Record<string, string | string[] | undefined>);
      sr.reply.code(p.status).headers(p.headers).header('Content-Type', 'text/html; charset=UTF-8').header('Content-Length', '0');
      return '';
    }
    const origin = header(sr.headers, 'origin');
    if (!origin || sr.container === undefined) return next();
    const cors = corsInfo((await loadContainer(sr))?.metadata);
    try {
      const body = await next();
      sr.reply.headers(corsResponseHeaders(origin, cors, sr.reply.getHeaders() as Record<string, unknown>));
      return body;
    } catch (e) {
      if (e instanceof ApiError) Object.assign(e.headers, corsResponseHeaders(origin, cors, e.headers));
      throw e;
    }
  };
}
