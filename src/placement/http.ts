// Placement's wire helpers: microversions (`OpenStack-API-Version: placement
// X.Y`, 1.0 when absent), the version headers, and the request id in the
// error envelope.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Route, RouteContext } from '../http/service.ts';
import { PlacementError, notFound } from './errors.ts';

export const PREFIX = '/placement';
export const MIN_VERSION = '1.0';
/**
 * The highest microversion served: what Debian's python3-osc-placement 4.0
 * negotiates (its MAX_VERSION_NO_GAP), so `openstack resource ...` works
 * unchanged.
 */
export const MAX_VERSION = '1.29';

type Version = readonly [number, number];
const parse = (s: string): Version | null => {
  const m = /^(\d+)\.(\d+)$/.exec(s.trim());
  return m ? [Number(m[1]), Number(m[2])] : null;
};
const cmp = (a: Version, b: Version): number => (a[0] - b[0]) || (a[1] - b[1]);

/** A request's microversion, compared with 'X.Y' strings. */
export class PlacementVersion {
  readonly v: Version;
  constructor(v: Version) {
    this.v = v;
  }
  ge(s: string): boolean {
    return cmp(this.v, parse(s)!) >= 0;
  }
  lt(s: string): boolean {
    return !this.ge(s);
  }
  toString(): string {
    return `${this.v[0]}.${this.v[1]}`;
  }
}

const versions = new WeakMap<FastifyRequest, PlacementVersion>();
const MIN = parse(MIN_VERSION)!;
const MAX = parse(MAX_VERSION)!;

export const version = (req: FastifyRequest): PlacementVersion => versions.get(req) ?? new PlacementVersion(MIN);
export const mv = (rc: RouteContext): PlacementVersion => version(rc.req);

function asked(req: FastifyRequest): string | null {
  const h = req.headers['openstack-api-version'];
  if (h === undefined) return null;
  for (const part of (Array.isArray(h) ? h.join(',') : h).split(',')) {
    const [service, ...rest] = part.trim().split(/\s+/);
    if (service?.toLowerCase() === 'placement' && rest.length) return rest.join(' ');
  }
  return null;
}

/** Placement's 406 carries the range it serves, which clients (osc-placement) negotiate down to. */
class VersionNotAcceptable extends PlacementError {
  constructor(v: string) {
    super('NotAcceptable', `Unacceptable version header: ${v}`);
  }
}

/** Parses the microversion (before authentication, as Placement's middleware does) and gates the route's range. */
export function gate(req: FastifyRequest, route: Route): void {
  const a = asked(req);
  let v: Version = MIN;
  if (a !== null) {
    if (a.toLowerCase() === 'latest') v = MAX;
    else {
      const p = parse(a);
      if (!p) throw new PlacementError('BadRequest', `invalid version string: ${a}`);
      if (cmp(p, MIN) < 0 || cmp(p, MAX) > 0) throw new VersionNotAcceptable(a);
      v = p;
    }
  }
  versions.set(req, new PlacementVersion(v));
  const r = route.versions;
  if (r && ((r.min && cmp(v, parse(r.min)!) < 0) || (r.max && cmp(v, parse(r.max)!) > 0))) throw notFound('The resource could not be found.');
}

/** A route that exists from microversion `min` on (404 before, as in Placement). */
export const since = (min: string, route: Route): Route => ({ ...route, versions: { min } });

export function setup(app: FastifyInstance): void {
  app.addHook('onSend', async (req, reply, payload) => {
    const v = versions.get(req);
    if (v) {
      reply.header('OpenStack-API-Version', `placement ${v}`);
      reply.header('Vary', 'openstack-api-version');
    }
    return payload;
  });
  // The error envelope names the request; `code` exists from 1.23; a 406 tells the range served.
  app.addHook('preSerialization', async (req, reply, payload: unknown) => {
    if (reply.statusCode < 400 || !payload || typeof payload !== 'object' || !Array.isArray((payload as { errors?: unknown }).errors)) return payload;
    const v = version(req);
    for (const e of (payload as { errors: Array<Record<string, unknown>> }).errors) {
      e.request_id = req.id;
      if (v.lt('1.23')) delete e.code;
      if (reply.statusCode === 406) Object.assign(e, { min_version: MIN_VERSION, max_version: MAX_VERSION });
    }
    return payload;
  });
}

/** The version document at the root (no token needed, any microversion). */
export function versionDocument(): unknown {
  return {
    versions: [{ id: 'v1.0', max_version: MAX_VERSION, min_version: MIN_VERSION, status: 'CURRENT', links: [{ rel: 'self', href: '' }] }],
  };
}
