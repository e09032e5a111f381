// Version documents (GET /image, /image/versions), the schemas Glance serves at
// /v2/schemas/*, and /v2/info/import.
import type { FastifyRequest } from 'fastify';
import { PUBLIC } from '../../http/policy.ts';
import { route, type Route } from '../../http/service.ts';
import type { ImageContext } from '../context.ts';
import { imageSchema, imagesSchema, memberSchema, membersSchema } from '../schemas.ts';

export const PREFIX = '/image';

/**
 * Glance's version list as it answers without an image cache and without
 * multiple stores: v2.17 current, v2.0-v2.7, v2.9 and v2.15 supported. Every
 * entry points at the one v2 endpoint.
 */
export function versionsDocument(req: FastifyRequest): { versions: unknown[] } {
  const href = `${req.protocol}://${req.headers.host ?? 'localhost'}${PREFIX}/v2/`;
  const v = (id: string, status: string) => ({ id: `v${id}`, status, links: [{ rel: 'self', href }] });
  return {
    versions: [
      v('2.15', 'SUPPORTED'), v('2.9', 'SUPPORTED'), v('2.17', 'CURRENT'),
      ...['2.7', '2.6', '2.5', '2.4', '2.3', '2.2', '2.1', '2.0'].map((n) => v(n, 'SUPPORTED')),
    ],
  };
}

export function discoveryRoutes(ictx: ImageContext): Route[] {
  const schemas: Record<string, () => unknown> = {
    image: imageSchema,
    images: imagesSchema,
    member: memberSchema,
    members: membersSchema,
  };
  return [
    // Without a version in the path Glance answers 300 Multiple Choices.
    route({
      method: 'GET', path: '/', rule: PUBLIC, status: 300,
      handler: (rc) => versionsDocument(rc.req),
    }),
    route({
      method: 'GET', path: '/v2', rule: PUBLIC, status: 300,
      handler: (rc) => versionsDocument(rc.req),
    }),
    route({
      method: 'GET', path: '/versions', rule: PUBLIC,
      handler: (rc) => versionsDocument(rc.req),
    }),
    ...Object.entries(schemas).map(([name, build]): Route => (route({
      method: 'GET', path: `/v2/schemas/${name}`, rule: 'get_schemas',
      handler: () => build(),
    }))),
    route({
      method: 'GET', path: '/v2/info/import', rule: 'get_schemas',
      handler: () => ({
        'import-methods': { description: 'Import methods available.', type: 'array', value: [...ictx.config.importMethods] },
      }),
    }),
  ];
}
