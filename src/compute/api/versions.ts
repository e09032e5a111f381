// GET /compute/ (every version), /compute/v2.1/ and /compute/v2/ (one version).
import type { FastifyRequest } from 'fastify';
import { PUBLIC } from '../../http/policy.ts';
import { route, type Route } from '../../http/service.ts';
import { hostUrl, MAX_VERSION, MIN_VERSION, PREFIX } from './http.ts';

const VERSIONS = {
  'v2.0': {
    id: 'v2.0', status: 'DEPRECATED', version: '', min_version: '', updated: '2025-07-04T12:00:00Z',
    media: 'application/vnd.openstack.compute+json;version=2', path: 'v2',
  },
  'v2.1': {
    id: 'v2.1', status: 'CURRENT', version: MAX_VERSION, min_version: MIN_VERSION, updated: '2013-07-23T11:33:21Z',
    media: 'application/vnd.openstack.compute+json;version=2.1', path: 'v2.1',
  },
} as const;
type VersionId = keyof typeof VERSIONS;

const describedBy = { rel: 'describedby', type: 'text/html', href: 'http://docs.openstack.org/' };

function one(req: FastifyRequest, id: VersionId) {
  const v = VERSIONS[id];
  return {
    version: {
      id: v.id, status: v.status, version: v.version, min_version: v.min_version, updated: v.updated,
      links: [{ rel: 'self', href: `${hostUrl(req)}${PREFIX}/${v.path}/` }, describedBy],
      'media-types': [{ base: 'application/json', type: v.media }],
    },
  };
}

export function versionRoutes(): Route[] {
  return [
    route({
      method: 'GET', path: '/', rule: PUBLIC,
      handler: (rc) => ({
        versions: (Object.keys(VERSIONS) as VersionId[]).map((id) => {
          const v = VERSIONS[id];
          return {
            id: v.id, status: v.status, version: v.version, min_version: v.min_version, updated: v.updated,
            links: [{ rel: 'self', href: `${hostUrl(rc.req)}${PREFIX}/${v.path}/` }],
          };
        }),
      }),
    }),
    route({ method: 'GET', path: '/v2.1', rule: PUBLIC, handler: (rc) => one(rc.req, 'v2.1') }),
    route({ method: 'GET', path: '/v2', rule: PUBLIC, handler: (rc) => one(rc.req, 'v2.0') }),
  ];
}
