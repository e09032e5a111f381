// Builds the one HTTP server that hosts every service under its own prefix.
import Fastify, { LogController, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { ApiError, ErrorCode, type ErrorCodeName } from '../common/errors.ts';
import { holdsNul, NUL_REFUSED, urlHoldsNul } from './body.ts';
import { keystoneTokens, type Credentials, type TokenValidator } from './auth.ts';
import type { IdleMemory } from './idle-memory.ts';
import { compileRouteSchema } from './json-schema.ts';
import { Metrics } from './metrics.ts';
import { Policy, PUBLIC, type Target } from './policy.ts';
import type { HttpMethod, Route, RouteContext, Service } from './service.ts';
import { routeUpgrades } from './websocket.ts';

export interface ServerOptions {
  logger: Logger;
  /** Keystone token validation: the authenticator of every service that names none of its own. */
  authenticate: TokenValidator;
  services: Service[];
  tls?: { cert: string | Buffer; key: string | Buffer };
  bodyLimit?: number;
  /** False until the process can serve (bootstrap done); /healthz answers 503 until then. */
  isReady?: () => boolean;
  /** Told of every API response (not the /healthz and /metrics probes, which must not keep it from running). */
  idleMemory?: IdleMemory;
}

function codeForStatus(status: number): ErrorCodeName {
  const found = (Object.keys(ErrorCode) as ErrorCodeName[]).find((k) => ErrorCode[k].status === status);
  return found ?? (status >= 500 ? 'Internal' : 'BadRequest');
}

/** Turns whatever was thrown into an ApiError; anything unexpected is a 500 with no detail. */
function toApiError(err: unknown, log: { error(o: object, m: string): void }): ApiError {
  if (err instanceof ApiError) return err;
  const e = err as FastifyError & { validation?: unknown; validationContext?: string };
  if (e && e.validation) {
    const where = e.validationContext === 'body' ? 'request body' : e.validationContext ?? 'request';
    return new ApiError('BadRequest', `Invalid input for ${where}: ${e.message.replace(/^(body|querystring|params)\/?/, '')}`);
  }
  if (e && typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    const msg = e.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || e instanceof SyntaxError
      ? 'Malformed request body: the body is not valid JSON.'
      : e.message;
    return new ApiError(codeForStatus(e.statusCode), msg);
  }
  log.error({ err }, 'unexpected error');
  return new ApiError('Internal', 'An unexpected error prevented the server from fulfilling your request.');
}

/**
 * How deep a request body may nest arrays and objects. OpenStack bodies nest a
 * handful of levels; what handles a body afterwards (validation, error
 * previews, Glance's Python-style reprs) recurses, and 5,000 levels overflow
 * its stack.
 */
export const MAX_BODY_DEPTH = 100;

/** Whether JSON text nests deeper than `max`: one pass over the characters, no recursion. */
export function nestsDeeperThan(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // a backslash escapes the next character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}

/**
 * The body parser of every JSON media type a service accepts: an empty body is
 * no body; malformed JSON, or JSON nested deeper than MAX_BODY_DEPTH, is the
 * service's 400.
 */
export function parseJsonBody(_req: unknown, body: string | Buffer, done: (err: Error | null, body?: unknown) => void): void {
  const text = String(body);
  if (text.trim() === '') return done(null, undefined);
  if (nestsDeeperThan(text, MAX_BODY_DEPTH)) {
    return done(new ApiError('BadRequest', `Malformed request body: the body nests arrays and objects deeper than ${MAX_BODY_DEPTH} levels.`), undefined);
  }
  try {
    done(null, JSON.parse(text));
  } catch {
    done(new ApiError('BadRequest', 'Malformed request body: the body is not valid JSON.'), undefined);
  }
}

const methodsOf = (route: Pick<Route, 'method'>): HttpMethod[] => (Array.isArray(route.method) ? route.method : [route.method]);

/**
 * The methods a route is registered for: a GET answers HEAD too (Keystone and
 * Glance answer HEAD on every GET), unless the service declares its own HEAD
 * at that path. One route with both methods, rather than Fastify's
 * exposeHeadRoutes, which registers a second route (~5 KiB of heap) per GET;
 * headOnSend below does what that route's own hook did.
 */
function routeMethods(route: Pick<Route, 'method' | 'path'>, declaredHeads: ReadonlySet<string>): HttpMethod[] {
  const methods = methodsOf(route);
  if (methods.includes('GET') && !methods.includes('HEAD') && !declaredHeads.has(route.path)) return [...methods, 'HEAD'];
  return methods;
}

/**
 * A HEAD answer carries what the GET would send but no body: a stream (an
 * image download) is closed, not read through; no body at all says
 * Content-Length 0. A string or buffer keeps its length, and Node sends no
 * body for HEAD.
 */
function headOnSend(req: FastifyRequest, reply: FastifyReply, payload: unknown, done: (err: null, payload: unknown) => void): void {
  if (req.method !== 'HEAD') return done(null, payload);
  if (payload === undefined || payload === null) {
    if (!reply.hasHeader('content-length') && reply.statusCode !== 204 && reply.statusCode !== 304) reply.header('content-length', '0');
    return done(null, null);
  }
  if (typeof (payload as Readable).pipe === 'function') {
    (payload as Readable).destroy();
    return done(null, null);
  }
  done(null, payload);
}

/** Routes serialize with JSON.stringify: a response schema would need a serializer compiler this server does not load. */
function noResponseSchemas({ url }: { url: string }): never {
  throw new Error(`route ${url}: response schemas are not supported`);
}

const PROBES = ['/healthz', '/metrics'];

/** Whether `path` is `prefix` or under it. */
const under = (path: string, prefix: string): boolean =>
  path === prefix || (path.startsWith(prefix) && (path[prefix.length] === '/' || prefix.endsWith('/')));

/**
 * Fastify's rewriteUrl over the services' `reroute`: each service that
 * reroutes is asked, in order, whether it takes the request (telling it
 * whether another prefix owns the path); the first answer wins, else the URL
 * is routed as sent.
 */
function rerouter(services: Service[]): (req: IncomingMessage) => string {
  const prefixes = [...services.map((s) => s.prefix).filter((p) => p !== '' && p !== '/'), ...PROBES];
  const rerouting = services.filter((s) => s.reroute);
  return (req) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    for (const s of rerouting) {
      const owned = prefixes.some((p) => p !== s.prefix && under(path, p));
      const to = s.reroute!(req, owned);
      if (to !== null) return to;
    }
    return url;
  };
}

export function buildServer(opts: ServerOptions): FastifyInstance {
  const metrics = new Metrics();
  const app = Fastify({
    loggerInstance: opts.logger,
    // One log line per request comes from our onResponse hook instead.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'request_id' }),
    requestIdHeader: false,
    genReqId: () => `req-${randomUUID()}`,
    bodyLimit: opts.bodyLimit ?? 1024 * 1024,
    // Path parameters may be long: Glance tags and member ids go up to 255 characters.
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 1024 },
    ...(opts.tls ? { https: { cert: opts.tls.cert, key: opts.tls.key } } : {}),
    exposeHeadRoutes: false,
    // Our own compilers (src/http/json-schema.ts) instead of Fastify's
    // defaults, which load a second ajv with ajv-formats and
    // fast-json-stringify's compiler (~110 modules, 2 MiB of heap) for
    // nothing this server uses.
    schemaController: { compilersFactory: { buildValidator: () => compileRouteSchema, buildSerializer: () => noResponseSchemas } },
    ...(opts.services.some((s) => s.reroute) ? { rewriteUrl: rerouter(opts.services) } : {}),
  } as any) as unknown as FastifyInstance;

  // Swift's server-side copy method (no body)
  app.addHttpMethod('COPY');

  // Clients send Content-Type: application/json with empty bodies (DELETE, actions): that is no body.
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser(/^application\/([\w.+-]*\+)?json/, { parseAs: 'string' }, parseJsonBody);

  app.addHook('onRequest', async (req, reply) => {
    reply.header('X-OpenStack-Request-Id', req.id);
  });
  const probes = new Set(['/healthz', '/metrics']);
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    if (!probes.has(route)) opts.idleMemory?.noteActivity();
    metrics.observe(req.method, route, reply.statusCode, reply.elapsedTime / 1000);
    req.log.info({ method: req.method, route, status: reply.statusCode, ms: Math.round(reply.elapsedTime * 10) / 10 }, 'request');
  });

  app.addHook('onSend', headOnSend);

  // The probes answer HEAD too, like every GET route.
  app.route({ method: ['GET', 'HEAD'], url: '/healthz', handler: async (_req, reply) => {
    if (opts.isReady && !opts.isReady()) return reply.code(503).send({ status: 'starting' });
    return { status: 'ok' };
  } });
  app.route({ method: ['GET', 'HEAD'], url: '/metrics', handler: async (_req, reply) => {
    reply.type('text/plain; version=0.0.4');
    return metrics.render();
  } });

  const keystone = keystoneTokens(opts.authenticate);
  for (const service of opts.services) {
    const policy = new Policy(service.rules);
    const authenticators = service.authenticators ?? [keystone];
    const declaredHeads = new Set(service.routes.filter((r) => methodsOf(r).includes('HEAD')).map((r) => r.path));
    app.register(async (scope) => {
      // No text column stores a NUL on PostgreSQL: refused on every service as its own 400, on
      // both databases, before any schema or handler sees the request.
      scope.addHook('preValidation', async (req) => {
        if (urlHoldsNul(req.url) || holdsNul(req.body)) throw new ApiError('BadRequest', NUL_REFUSED);
      });
      service.setup?.(scope);
      scope.setErrorHandler(async (err, req, reply) => {
        const apiErr = toApiError(err, req.log);
        reply.code(apiErr.status).headers(apiErr.headers);
        return service.renderError(apiErr, req);
      });
      // a service at the root (the dashboard's page at `/`) does not answer for every unknown path
      if (service.prefix !== '') scope.setNotFoundHandler(async (req, reply) => {
        const apiErr = new ApiError('NotFound', `The resource could not be found.`);
        reply.code(404);
        req.log.debug({ url: req.url }, 'no route');
        return service.renderError(apiErr, req);
      });
      for (const route of service.routes) {
        if (!policy.has(route.rule)) throw new Error(`route ${route.path} names unknown rule ${route.rule}`);
        scope.route({
          method: routeMethods(route, declaredHeads),
          url: route.path,
          schema: route.schema,
          ...(service.gate ? { onRequest: async (req: FastifyRequest) => service.gate!(req, route) } : {}),
          handler: async (req, reply) => {
            let cred: Credentials | null = null;
            for (const a of authenticators) {
              cred = await a.authenticate(req);
              if (cred) break;
            }
            if (!cred && route.rule !== PUBLIC) throw new ApiError('Unauthorized', 'The request you have made requires authentication.');
            const ctx: RouteContext = {
              req,
              reply,
              cred,
              params: (req.params ?? {}) as Record<string, string>,
              query: (req.query ?? {}) as Record<string, string | string[] | undefined>,
              body: req.body,
              enforce(rule: string, target: Target) {
                if (!policy.allows(rule, cred, target)) throw new ApiError('Forbidden', service.policyRefusal?.(rule) ?? 'You are not authorized to perform the requested action.');
              },
            };
            if (route.rule !== PUBLIC) {
              const target = { ...ctx.params, ...(route.target ? await route.target(ctx) : {}) };
              ctx.enforce(route.rule, target);
            }
            const result = await route.handler(ctx);
            if (reply.sent) return reply;
            if (route.status && reply.statusCode === 200) reply.code(route.status);
            if (result === undefined) return reply.send();
            return result;
          },
        });
      }
    }, { prefix: service.prefix });
  }
  routeUpgrades(app);
  return app;
}
