// Cinder's microversions: `OpenStack-API-Version: volume 3.x` (3.0 when
// absent, `latest` for the highest), echoed in every answer of the v3 API
// with `Vary`; a version outside 3.0..MAX is a 406 naming the range, a
// malformed one a 400. A route's own `versions` range answers 404 outside it.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from '../common/errors.ts';
import type { Route, RouteContext } from '../http/service.ts';

export const PREFIX = '/volume';
export const MIN_VERSION = '3.0';
/**
 * The highest microversion served: every change up to it that touches the
 * resources served (volumes, metadata, types, availability zones, quotas,
 * limits, default types) is honoured. Resources not served yet (snapshots,
 * backups, attachments, groups, messages, transfers...) answer 404 at every
 * version; docs/architecture.md lists them. 3.68 (os-reimage) needs images
 * on a backend and is not claimed.
 */
export const MAX_VERSION = '3.67';

type Version = readonly [number, number];
const parse = (s: string): Version | null => {
  const m = /^(\d+)\.(\d+)$/.exec(s.trim());
  return m ? [Number(m[1]), Number(m[2])] : null;
};
const cmp = (a: Version, b: Version): number => (a[0] - b[0]) || (a[1] - b[1]);

/** A request's microversion, compared with 'X.Y' strings. */
export class VolumeVersion {
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

const versions = new WeakMap<FastifyRequest, VolumeVersion>();
const MIN = parse(MIN_VERSION)!;
const MAX = parse(MAX_VERSION)!;

export const mv = (rc: RouteContext): VolumeVersion => versions.get(rc.req) ?? new VolumeVersion(MIN);

function asked(req: FastifyRequest): string | null {
  const h = req.headers['openstack-api-version'];
  if (h === undefined) return null;
  for (const part of (Array.isArray(h) ? h.join(',') : h).split(',')) {
    const [service, ...rest] = part.trim().split(/\s+/);
    if (service?.toLowerCase() === 'volume' && rest.length) return rest.join(' ');
  }
  return null;
}

/** Routes of the version documents: no microversion, no header. */
const UNVERSIONED = new Set(['/', '/v3', '/v3/']);

/** Parses the microversion before authentication (as Cinder's wsgi layer) and gates the route's range. */
export function gate(req: FastifyRequest, route: Route): void {
  if (UNVERSIONED.has(route.path)) return;
  const a = asked(req);
  let v: Version = MIN;
  if (a !== null) {
    if (a.toLowerCase() === 'latest') v = MAX;
    else {
      const p = parse(a);
      if (!p) throw new ApiError('BadRequest', `API Version String ${a} is of invalid format. Must be of format MajorNum.MinorNum.`);
      if (cmp(p, MIN) < 0 || cmp(p, MAX) > 0) {
        throw new ApiError('NotAcceptable', `Version ${a} is not supported by the API. Minimum is ${MIN_VERSION} and maximum is ${MAX_VERSION}.`);
      }
      v = p;
    }
  }
  versions.set(req, new VolumeVersion(v));
  const r = route.versions;
  if (r && ((r.min && cmp(v, parse(r.min)!) < 0) || (r.max && cmp(v, parse(r.max)!) > 0))) {
    throw new ApiError('NotFound', `API version ${v[0]}.${v[1]} is not supported on this method.`);
  }
}

/** A route that exists from microversion `min` on (404 before, as in Cinder). */
export const since = (min: string, route: Route): Route => ({ ...route, versions: { ...route.versions, min } });

export function setup(app: FastifyInstance): void {
  app.addHook('onSend', async (req, reply, payload) => {
    const v = versions.get(req);
    if (v) {
      reply.header('OpenStack-API-Version', `volume ${v}`);
      reply.header('Vary', 'OpenStack-API-Version');
    }
    return payload;
  });
}

/** The v3 entry of the version documents (`GET /volume/` and `GET /volume/v3/`). */
export function versionEntry(base: string): unknown {
  return {
    id: 'v3.0', status: 'CURRENT', version: MAX_VERSION, min_version: MIN_VERSION, updated: '2026-12-06T00:00:00Z',
    links: [
      { href: 'https://docs.openstack.org/', type: 'text/html', rel: 'describedby' },
      { href: `${base}/v3/`, rel: 'self' },
    ],
    'media-types': [{ base: 'application/json', type: 'application/vnd.openstack.volume+json;version=3' }],
  };
}
