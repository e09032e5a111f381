// Keystone's version discovery documents, which keystoneauth and gophercloud parse.
import type { FastifyRequest } from 'fastify';
import { PUBLIC } from '../../http/policy.ts';
import type { Route } from '../../http/service.ts';
import { baseUrl } from '../http.ts';

export function v3Version(req: FastifyRequest) {
  return {
    id: 'v3.14',
    status: 'stable',
    updated: '2020-04-07T00:00:00Z',
    links: [{ rel: 'self', href: `${baseUrl(req)}/v3/` }],
    'media-types': [{ base: 'application/json', type: 'application/vnd.openstack.identity-v3+json' }],
  };
}

export function discoveryRoutes(): Route[] {
  return [
    {
      method: 'GET', path: '/', rule: PUBLIC,
      handler(rc) {
        rc.reply.code(300);
        return { versions: { values: [v3Version(rc.req)] } };
      },
    },
    { method: 'GET', path: '/v3', rule: PUBLIC, handler: (rc) => ({ version: v3Version(rc.req) }) },
  ];
}
