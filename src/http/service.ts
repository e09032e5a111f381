// A service is a route table under a path prefix, with its policy rules and its
// error envelope. Each route names its method, path, schemas and policy rule
// beside its handler, so a service's table reads as its API reference.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { TSchema } from 'typebox';
import type { ApiError } from '../common/errors.ts';
import type { Credentials } from './auth.ts';
import type { Rule, Target } from './policy.ts';

export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface RouteContext<Body = any> {
  req: FastifyRequest;
  reply: FastifyReply;
  /** The caller; null only on public routes called without a token. */
  cred: Credentials | null;
  params: Record<string, string>;
  query: Record<string, string | string[] | undefined>;
  body: Body;
  /** Checks a further rule (for targets known only once loaded); throws 403. */
  enforce(rule: string, target: Target): void;
}

export interface Route {
  method: HttpMethod | HttpMethod[];
  path: string;
  /** The policy rule (see the service's rules); PUBLIC needs no token. */
  rule: string;
  schema?: { body?: TSchema; querystring?: TSchema };
  /** Loads what the rule is checked against (params are always in the target). */
  target?: (ctx: RouteContext) => Target | Promise<Target>;
  /** Status of a successful answer; 200 unless said. */
  status?: number;
  handler(ctx: RouteContext): unknown;
}

export interface Service {
  name: string;
  prefix: string;
  routes: Route[];
  rules: Record<string, Rule>;
  renderError(err: ApiError): unknown;
  /** Setup inside the service's scope: content-type parsers, hooks. */
  setup?(app: FastifyInstance): void;
}
