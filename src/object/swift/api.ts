// The Swift v1 API under /object: one route per path shape (account,
// container, object) with the PUBLIC rule, since Swift decides access itself
// (ACLs, anonymous reads of public containers, signed URLs): the route parses
// the raw path (object names keep their slashes, trailing ones included),
// then runs the middleware pipeline around the core handlers.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { PUBLIC } from '../../http/policy.ts';
import type { HttpMethod, Route, RouteContext } from '../../http/service.ts';
import { accountRequest } from './account.ts';
import { containerRequest } from './container.ts';
import { swiftStatus } from './errors.ts';
import { objectRequest } from './object.ts';
import { parseQuery, projectOfAccount, splitSwiftPath, type SwiftContext, type SwiftMiddleware, type SwiftRequest } from './request.ts';

const METHODS: HttpMethod[] = ['GET', 'HEAD', 'PUT', 'POST', 'DELETE', 'COPY', 'OPTIONS'];

/** Where the service's prefix ends in the raw URL (the route sees the URL as sent). */
const PREFIX = '/object';

const CONTENT_TYPE = Symbol('swift content type');

/** The Content-Type a Swift request was sent with (the server never parses Swift bodies; the header is set aside before Fastify's parsers). */
export function requestContentType(req: FastifyRequest): string | undefined {
  return (req as unknown as Record<symbol, string | undefined>)[CONTENT_TYPE];
}

/**
 * The service scope's setup: every request body reaches the handler as the
 * raw stream (no parser, no 1 MiB limit: objects stream to the store), and
 * every answer carries Swift's transaction id.
 */
export function swiftSetup(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, payload, done) => done(null, payload));
  app.addHook('onRequest', async (req, reply) => {
    const ct = req.headers['content-type'];
    if (ct !== undefined) {
      (req as unknown as Record<symbol, string | undefined>)[CONTENT_TYPE] = Array.isArray(ct) ? ct[0] : ct;
      // Fastify would refuse a Content-Type it cannot parse (415); Swift stores any
      delete req.headers['content-type'];
    }
    const txId = `tx${req.id.replace(/^req-/, '').replaceAll('-', '').slice(0, 21)}-${Math.floor(Date.now() / 1000).toString(16).padStart(10, '0')}`;
    reply.header('X-Trans-Id', txId).header('X-Openstack-Request-Id', txId);
  });
  app.addHook('onSend', async (_req, reply, payload) => {
    if (reply.statusCode >= 400 && typeof payload === 'string' && payload.startsWith('<html>')) reply.header('Content-Type', 'text/html; charset=UTF-8');
    // swob gives every answer a Content-Type (204s included), and Tempest checks it on every one
    else if (!reply.hasHeader('content-type')) reply.header('Content-Type', 'text/html; charset=UTF-8');
    return payload;
  });
}

/** The core: authorization is in each handler (access.ts), after the middleware. */
function core(sr: SwiftRequest): Promise<unknown> {
  if (sr.object !== undefined) return objectRequest(sr);
  if (sr.container !== undefined) return containerRequest(sr);
  return accountRequest(sr);
}

export function swiftRoutes(ctx: SwiftContext, middleware: SwiftMiddleware[]): Route[] {
  const handle = async (rc: RouteContext): Promise<unknown> => {
    const url = rc.req.url;
    const q = url.indexOf('?');
    const rawPath = (q < 0 ? url : url.slice(0, q)).slice(PREFIX.length);
    const path = splitSwiftPath(rawPath);
    const project = projectOfAccount(path.account);
    // an account outside the AUTH_ reseller prefix is no account of ours
    if (!project) throw swiftStatus(rc.cred ? 403 : 401);
    const sr: SwiftRequest = {
      req: rc.req, reply: rc.reply, ctx, method: rc.req.method, account: path.account, project,
      container: path.container, object: path.object, query: parseQuery(url), headers: rc.req.headers,
      contentType: requestContentType(rc.req), cred: rc.cred,
    };
    let i = 0;
    const next = (): Promise<unknown> => {
      const m = middleware[i++];
      return m ? m(sr, next) : core(sr);
    };
    return next();
  };
  return [
    { method: METHODS, path: '/v1/*', rule: PUBLIC, handler: handle },
    { method: METHODS, path: '/v1.0/*', rule: PUBLIC, handler: handle },
  ];
}
