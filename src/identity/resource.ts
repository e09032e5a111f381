// The show and delete routes every identity resource kept by id in one table
// has the same shape of: load it (404 when missing), then render it or delete it.
import type { FastifyRequest } from 'fastify';
import type { Target } from '../http/policy.ts';
import type { Route, RouteContext } from '../http/service.ts';

export interface ResourceById<R> {
  /** The collection's path, e.g. '/v3/policies'; the member's is `${collection}/:${param}`. */
  collection: string;
  param: string;
  /** The key the answer holds the resource under, e.g. 'policy'. */
  key: string;
  rules: { get: string; delete: string };
  /** What both rules are checked against, when more than the path's params. */
  target?: (rc: RouteContext) => Target | Promise<Target>;
  /** The resource, or a 404 of the caller's wording. */
  load(id: string): Promise<R>;
  render(req: FastifyRequest, row: R): unknown;
  /** Deletes what `load` found (and what goes with it). */
  remove(id: string, current: R): Promise<unknown>;
}

export function showAndDeleteRoutes<R>(r: ResourceById<R>): Route[] {
  const path = `${r.collection}/:${r.param}`;
  return [
    {
      method: 'GET', path, rule: r.rules.get, target: r.target,
      handler: async (rc) => ({ [r.key]: r.render(rc.req, await r.load(rc.params[r.param]!)) }),
    },
    {
      method: 'DELETE', path, rule: r.rules.delete, target: r.target, status: 204,
      async handler(rc) {
        const id = rc.params[r.param]!;
        await r.remove(id, await r.load(id));
      },
    },
  ];
}
