// A service is a route table under a path prefix, with its policy rules and its
// error envelope. Each route names its method, path, schemas and policy rule
// beside its handler, so a service's table reads as its API reference.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { IncomingMessage } from 'node:http';
import type { Static, TSchema } from 'typebox';
import type { ApiError } from '../common/errors.ts';
import type { Authenticator, Credentials } from './auth.ts';
import type { Rule, Target } from './policy.ts';

export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'OPTIONS' | 'COPY';

export type Params = Record<string, string>;
export type Query = Record<string, string | string[] | undefined>;

/** The schemas a route validates its input with; the handler sees the input typed from them. */
export interface RouteSchema {
  body?: TSchema;
  querystring?: TSchema;
}

/** The body type a handler sees: what its body schema describes; `unknown` without one. */
export type BodyOf<S> = S extends { body: infer B extends TSchema } ? Static<B> : unknown;
export type QueryOf<S> = S extends { querystring: infer Q extends TSchema } ? Static<Q> & Query : Query;

export interface RouteContext<Body = unknown, Q = Query> {
  req: FastifyRequest;
  reply: FastifyReply;
  /** The caller; null only on public routes called without credentials. */
  cred: Credentials | null;
  params: Params;
  query: Q;
  body: Body;
  /** Checks a further rule (for targets known only once loaded); throws 403. */
  enforce(rule: string, target: Target): void;
}

export interface Route<S extends RouteSchema = RouteSchema> {
  method: HttpMethod | HttpMethod[];
  path: string;
  /** The policy rule (see the service's rules); PUBLIC needs no credentials. */
  rule: string;
  schema?: S;
  /**
   * The API versions (microversions) the route exists in, inclusive; the
   * service's gate decides what a request outside them gets (Nova: 404).
   */
  versions?: { min?: string; max?: string };
  /** Loads what the rule is checked against (params are always in the target). */
  target?: (ctx: RouteContext<BodyOf<S>, QueryOf<S>>) => Target | Promise<Target>;
  /** Status of a successful answer; 200 unless said. */
  status?: number;
  handler(ctx: RouteContext<BodyOf<S>, QueryOf<S>>): unknown;
}

/**
 * Declares a route whose handler sees its body and query typed from its
 * schemas (validated before the handler runs), e.g.
 * `route({ method: 'POST', path: '/x', rule, schema: { body: T }, handler: (rc) => rc.body.name })`.
 */
export function route<const S extends RouteSchema = {}>(r: Route<S>): Route {
  return r as unknown as Route;
}

export interface Service {
  name: string;
  prefix: string;
  routes: Route[];
  rules: Record<string, Rule>;
  /** The service's error body for `err` (`req`: the request that failed, for services that name it in the body). */
  renderError(err: ApiError, req?: FastifyRequest): unknown;
  /** The 403 message of a policy refusal in the service's words (Nova names the rule); a generic one by default. */
  policyRefusal?(rule: string): string;
  /**
   * Who may call: tried in order, the first that recognises the request's
   * credentials names the caller. Default: Keystone tokens (X-Auth-Token).
   */
  authenticators?: Authenticator[];
  /**
   * Runs before authentication on every route, public ones included: API
   * version negotiation and the route's `versions` range. Throws to refuse.
   */
  gate?(req: FastifyRequest, route: Route): void;
  /**
   * Requests this service serves beyond its prefix (S3: requests signed for
   * the server's root, virtual-hosted buckets): the URL under its prefix to
   * route `req` to, or null. `owned` is true when another service's prefix (or
   * a probe) holds the path. The URL the client sent stays the request's
   * `originalUrl`, so a signature is checked against it.
   */
  reroute?(req: IncomingMessage, owned: boolean): string | null;
  /** Setup inside the service's scope: content-type parsers, hooks. */
  setup?(app: FastifyInstance): void;
}
