// Ironic's microversions: `X-OpenStack-Ironic-API-Version: 1.x` (or
// `OpenStack-API-Version: baremetal 1.x`), 1.1 when absent, `latest` for the
// highest; every answer carries the served range
// (X-OpenStack-Ironic-API-Minimum-Version / -Maximum-Version) and the version
// served, so ironicclient negotiates down from its own latest (1.78) on a
// 406. A version outside the range, or malformed, is Ironic's 406. A route's
// own `versions` range answers 404 outside it, as Ironic's controllers do.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from '../common/errors.ts';
import { Microversion, outsideRange } from '../http/microversion.ts';
import type { Route, RouteContext } from '../http/service.ts';

export const PREFIX = '/baremetal';
export const MIN_VERSION = '1.1';
/**
 * The highest microversion served: ironicclient 5.0's LAST_KNOWN_API_VERSION
 * (node history). docs/conformance.md lists what of 1.1..1.78 is not served.
 */
export const MAX_VERSION = '1.78';

const HEADER = 'x-openstack-ironic-api-version';
const versions = new WeakMap<FastifyRequest, Microversion>();

/** The request's microversion. */
export const mv = (rc: RouteContext): Microversion => versions.get(rc.req) ?? Microversion.of(MIN_VERSION);

/** True when the request's version is at least `v` ('1.x'). */
export const at = (rc: RouteContext, v: string): boolean => mv(rc).ge(v);

function asked(req: FastifyRequest): string | null {
  const legacy = req.headers[HEADER];
  if (legacy !== undefined) return (Array.isArray(legacy) ? legacy[legacy.length - 1]! : legacy).trim();
  const h = req.headers['openstack-api-version'];
  if (h === undefined) return null;
  for (const part of (Array.isArray(h) ? h.join(',') : h).split(',')) {
    const [name, ...rest] = part.trim().split(/\s+/);
    if (name?.toLowerCase() === 'baremetal' && rest.length) return rest.join(' ');
  }
  return null;
}

const rangeText = `The supported version range is: [${MIN_VERSION}, ${MAX_VERSION}].`;

export function gate(req: FastifyRequest, route: Route): void {
  const a = asked(req);
  let v: Microversion | null;
  if (a === null) v = Microversion.of(MIN_VERSION);
  else if (a.toLowerCase() === 'latest') v = Microversion.of(MAX_VERSION);
  else v = Microversion.parse(a);
  if (!v) throw new ApiError('NotAcceptable', 'Invalid value for X-OpenStack-Ironic-API-Version header');
  if (v.major !== 1) throw new ApiError('NotAcceptable', `Mutually exclusive versions requested. Version ${v} requested but not supported by this service. ${rangeText}`);
  if (v.lt(MIN_VERSION) || v.cmp(MAX_VERSION) > 0) throw new ApiError('NotAcceptable', `Version ${v} was requested but the minor version is not supported by this service. ${rangeText}`);
  versions.set(req, v);
  if (outsideRange(v, route.versions)) throw new ApiError('NotFound', 'The resource could not be found.');
}

/** A route that exists from microversion `min` on (404 before, as in Ironic). */
export const since = (min: string, route: Route): Route => ({ ...route, versions: { ...route.versions, min } });

export function setup(app: FastifyInstance): void {
  // ironicclient sends bodiless calls (DELETE .../maintenance, DELETE .../traits) as application/octet-stream;
  // a body of any other type is read as JSON when it is JSON, as Ironic's API reads it
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => {
    const s = String(body);
    if (!s.trim()) return done(null, undefined);
    try {
      done(null, JSON.parse(s));
    } catch {
      done(new ApiError('BadRequest', 'The request body is not valid JSON.'), undefined);
    }
  });
  app.addHook('onSend', async (req, reply, payload) => {
    reply.header('X-OpenStack-Ironic-API-Minimum-Version', MIN_VERSION);
    reply.header('X-OpenStack-Ironic-API-Maximum-Version', MAX_VERSION);
    const v = versions.get(req);
    if (v) {
      reply.header('X-OpenStack-Ironic-API-Version', String(v));
      reply.header('OpenStack-API-Version', `baremetal ${v}`);
      reply.header('Vary', 'X-OpenStack-Ironic-API-Version, OpenStack-API-Version');
    }
    return payload;
  });
}

/** The public base URL of the service as the client reached it (`http://host:port/baremetal`). */
export function baseUrl(req: FastifyRequest): string {
  const proto = (req.headers['x-forwarded-proto'] as string | undefined)?.split(',')[0]?.trim() ?? req.protocol;
  return `${proto}://${req.headers.host ?? 'localhost'}${PREFIX}`;
}

/** Ironic's links: self (versioned) and bookmark. */
export function links(base: string, resource: string, id: string): Array<{ href: string; rel: string }> {
  return [
    { href: `${base}/v1/${resource}/${id}`, rel: 'self' },
    { href: `${base}/${resource}/${id}`, rel: 'bookmark' },
  ];
}

/** The v1 entry of the version documents. */
export function versionEntry(base: string) {
  return { id: 'v1', links: [{ href: `${base}/v1/`, rel: 'self' }], status: 'CURRENT', min_version: MIN_VERSION, version: MAX_VERSION };
}
