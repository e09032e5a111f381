// Cinder's microversions: `OpenStack-API-Version: volume 3.x` (3.0 when
// absent, `latest` for the highest), echoed in every answer of the v3 API
// with `Vary`; a version outside 3.0..MAX is a 406 naming the range, a
// malformed one a 400. A route's own `versions` range answers 404 outside it.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from '../common/errors.ts';
import type { Route, RouteContext } from '../http/service.ts';
import { askedVersion, Microversion, negotiate, outsideRange } from '../http/microversion.ts';

export const PREFIX = '/volume';
export const MIN_VERSION = '3.0';
/**
 * The highest microversion served: every change up to it that touches the
 * resources served (volumes, metadata, types, availability zones, quotas,
 * limits, default types, snapshots, messages, transfers, QoS specs, backups) is
 * honoured (the attachments API from 3.27, os-complete 3.44, its mode 3.54).
 * Resources not served yet (groups, manage/unmanage...) answer 404 at
 * every version;
 * docs/architecture.md lists them. 3.68 (os-reimage) needs images on a
 * backend and is not claimed.
 */
export const MAX_VERSION = '3.67';

/** A request's microversion, compared with 'X.Y' strings. */
export type VolumeVersion = Microversion;

const versions = new WeakMap<FastifyRequest, Microversion>();

export const mv = (rc: RouteContext): VolumeVersion => versions.get(rc.req) ?? Microversion.of(MIN_VERSION);

/** Routes of the version documents: no microversion, no header. */
const UNVERSIONED = new Set(['/', '/v3', '/v3/']);

/** Parses the microversion before authentication (as Cinder's wsgi layer) and gates the route's range. */
export function gate(req: FastifyRequest, route: Route): void {
  if (UNVERSIONED.has(route.path)) return;
  // Cinder's router does not fold a trailing slash (GET /volumes/ is no list, but a show of no id: 404)
  if (req.url.split('?')[0]!.endsWith('/')) throw new ApiError('NotFound', 'The resource could not be found.');
  const n = negotiate(askedVersion(req, 'volume'), MIN_VERSION, MAX_VERSION);
  if ('malformed' in n) throw new ApiError('BadRequest', `API Version String ${n.malformed} is of invalid format. Must be of format MajorNum.MinorNum.`);
  if ('unserved' in n) throw new ApiError('NotAcceptable', `Version ${n.unserved} is not supported by the API. Minimum is ${MIN_VERSION} and maximum is ${MAX_VERSION}.`);
  versions.set(req, n.ok);
  if (outsideRange(n.ok, route.versions)) throw new ApiError('NotFound', `API version ${n.ok} is not supported on this method.`);
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
