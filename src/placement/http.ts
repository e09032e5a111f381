// Placement's wire helpers: microversions (`OpenStack-API-Version: placement
// X.Y`, 1.0 when absent), the version headers, and the request id in the
// error envelope.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Route, RouteContext } from '../http/service.ts';
import { PlacementError, notFound } from './errors.ts';
import { askedVersion, Microversion, negotiate, outsideRange } from '../http/microversion.ts';

export const PREFIX = '/placement';
export const MIN_VERSION = '1.0';
/**
 * The highest microversion served: what Debian's python3-osc-placement 4.0
 * negotiates (its MAX_VERSION_NO_GAP), so `openstack resource ...` works
 * unchanged.
 */
export const MAX_VERSION = '1.29';

/** A request's microversion, compared with 'X.Y' strings. */
export type PlacementVersion = Microversion;

const versions = new WeakMap<FastifyRequest, Microversion>();

export const version = (req: FastifyRequest): PlacementVersion => versions.get(req) ?? Microversion.of(MIN_VERSION);
export const mv = (rc: RouteContext): PlacementVersion => version(rc.req);

/** Placement's 406 carries the range it serves, which clients (osc-placement) negotiate down to. */
class VersionNotAcceptable extends PlacementError {
  constructor(v: string) {
    super('NotAcceptable', `Unacceptable version header: ${v}`);
  }
}

/** Parses the microversion (before authentication, as Placement's middleware does) and gates the route's range. */
export function gate(req: FastifyRequest, route: Route): void {
  const n = negotiate(askedVersion(req, 'placement'), MIN_VERSION, MAX_VERSION);
  if ('malformed' in n) throw new PlacementError('BadRequest', `invalid version string: ${n.malformed}`);
  if ('unserved' in n) throw new VersionNotAcceptable(n.unserved);
  versions.set(req, n.ok);
  if (outsideRange(n.ok, route.versions)) throw notFound('The resource could not be found.');
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
