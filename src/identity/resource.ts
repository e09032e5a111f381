// The routes every identity resource kept by id in one table has the same shape
// of: list the collection (its exact-match query filters), and load a member
// (404 when missing) to show, update or delete it. What differs per resource
// (its query, its patch rules, what goes with it on delete) is passed in.
import type { FastifyRequest } from 'fastify';
import type { Static, TSchema } from 'typebox';
import type { Target } from '../http/policy.ts';
import type { Route, RouteContext } from '../http/service.ts';
import { renderList, withListFilters } from './http.ts';

/** A select of the resource's rows that the list's filters can narrow (a Kysely query). */
export interface ListQuery<R> {
  where(column: any, op: '=', value: string | number): ListQuery<R>;
  execute(): Promise<R[]>;
}

export interface ResourceList<R> {
  rule: string;
  /** The key the answer holds the rows under, e.g. 'policies'. */
  key: string;
  /** What the rule is checked against (the member's target does not apply to the collection). */
  target?: (rc: RouteContext) => Target | Promise<Target>;
  /** The rows the caller may see, in the collection's order (may refuse a bad query parameter). */
  query(rc: RouteContext): ListQuery<R>;
  /** The `?column=value` filters the collection takes; `enabled` is read as Keystone's boolean. */
  filters: readonly string[];
}

export interface ResourceUpdate<R, B extends TSchema> {
  rule: string;
  schema: B;
  /** Checks of the patch alone, made before the resource is loaded (Keystone answers them before its 404). */
  check?(rc: RouteContext<Static<B>>): void | Promise<void>;
  /** Applies the patch to `current`, writes it, and returns the resource as now stored. */
  apply(rc: RouteContext<Static<B>>, current: R): Promise<R>;
}

export interface ResourceById<R, B extends TSchema = TSchema> {
  /** The collection's path, e.g. '/v3/policies'; the member's is `${collection}/:${param}`. */
  collection: string;
  param: string;
  /** The key the answer holds the resource under, e.g. 'policy'. */
  key: string;
  rules: { get: string; delete: string };
  /** What the member's rules are checked against, when more than the path's params. */
  target?: (rc: RouteContext) => Target | Promise<Target>;
  /** The resource, or a 404 of the caller's wording. */
  load(id: string): Promise<R>;
  render(req: FastifyRequest, row: R): unknown;
  /** Deletes what `load` found (and what goes with it). */
  remove(id: string, current: R): Promise<unknown>;
  /** GET on the collection, when it has the common shape. */
  list?: ResourceList<R>;
  /** PATCH on the member. */
  update?: ResourceUpdate<R, B>;
}

/** The resource's routes: list (when given), show, update (when given) and delete. */
export function resourceRoutes<R, B extends TSchema = TSchema>(r: ResourceById<R, B>): Route[] {
  const path = `${r.collection}/:${r.param}`;
  const routes: Route[] = [];
  const { list, update } = r;
  if (list) {
    routes.push({
      method: 'GET', path: r.collection, rule: list.rule, target: list.target,
      handler: async (rc) => renderList(rc.req, list.key, await withListFilters(list.query(rc), rc, list.filters).execute(), r.render),
    });
  }
  routes.push({
    method: 'GET', path, rule: r.rules.get, target: r.target,
    handler: async (rc) => ({ [r.key]: r.render(rc.req, await r.load(rc.params[r.param]!)) }),
  });
  if (update) {
    routes.push({
      method: 'PATCH', path, rule: update.rule, target: r.target, schema: { body: update.schema },
      async handler(rc) {
        // The body schema has validated the body before the handler runs (as route() types it).
        const typed = rc as RouteContext<Static<B>>;
        await update.check?.(typed);
        const next = await update.apply(typed, await r.load(rc.params[r.param]!));
        return { [r.key]: r.render(rc.req, next) };
      },
    });
  }
  routes.push({
    method: 'DELETE', path, rule: r.rules.delete, target: r.target, status: 204,
    async handler(rc) {
      const id = rc.params[r.param]!;
      await r.remove(id, await r.load(id));
    },
  });
  return routes;
}
