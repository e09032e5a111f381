// Identity wire helpers: Keystone's error envelope, links, list and query parsing, and the
// update and uniqueness rules the resource routes share.
import type { FastifyInstance, FastifyRequest, FastifySchemaValidationError } from 'fastify';
import type { TSchema } from 'typebox';
import { ApiError, badRequest, conflict } from '../common/errors.ts';
import { parseJson } from '../common/json.ts';
import type { RouteContext } from '../http/service.ts';

export const PREFIX = '/identity';

export function renderIdentityError(err: ApiError): unknown {
  return { error: { code: err.status, title: err.title, message: err.message } };
}

export function baseUrl(req: FastifyRequest): string {
  return `${req.protocol}://${req.headers.host ?? 'localhost'}${PREFIX}`;
}

/** The v3 URL of a path, for `links.self`. */
export const v3Url = (req: FastifyRequest, path: string) => `${baseUrl(req)}/v3${path}`;

export const selfLink = (req: FastifyRequest, path: string) => ({ self: v3Url(req, path) });

/** Collection links: self is the request URL; Keystone does not paginate by default. */
export function listLinks(req: FastifyRequest): { self: string; previous: null; next: null } {
  return { self: `${baseUrl(req)}${req.url.slice(PREFIX.length)}`, previous: null, next: null };
}

/** A collection body as Keystone answers a list: `{ <key>: [rendered rows], links }`. */
export function renderList<K extends string, R, T>(
  req: FastifyRequest, key: K, rows: readonly R[], render: (req: FastifyRequest, row: R) => T,
): Record<K, T[]> & { links: ReturnType<typeof listLinks> } {
  return { [key]: rows.map((r) => render(req, r)), links: listLinks(req) } as Record<K, T[]> & { links: ReturnType<typeof listLinks> };
}

export function queryString(ctx: RouteContext, name: string): string | undefined {
  const v = ctx.query[name];
  return Array.isArray(v) ? v[v.length - 1] : v;
}

/** Keystone's boolean query values: true/false/1/0/yes/no; a bare `?x` is true. */
export function queryBool(ctx: RouteContext, name: string): boolean | undefined {
  const v = queryString(ctx, name);
  if (v === undefined) return undefined;
  const s = v.toLowerCase();
  if (s === '' || s === 'true' || s === '1' || s === 'yes') return true;
  if (s === 'false' || s === '0' || s === 'no') return false;
  throw badRequest(`Invalid value for query parameter ${name}: expected a boolean.`);
}

/** Exact-match list filters (`?column=value`) as where clauses; each query parameter names its column. */
export function withQueryFilters<Q extends { where(column: any, op: '=', value: string): Q }>(
  q: Q, rc: RouteContext, columns: readonly string[],
): Q {
  for (const column of columns) {
    const value = queryString(rc, column);
    if (value !== undefined) q = q.where(column, '=', value);
  }
  return q;
}

/**
 * A collection's list filters as where clauses on its list query: `?column=value`
 * for each of `columns`, the collection's; `enabled` is Keystone's boolean.
 */
export function withListFilters<Q extends { where(column: any, op: '=', value: string | number): Q }>(
  q: Q, rc: RouteContext, columns: readonly string[],
): Q {
  if (columns.includes('enabled')) {
    const enabled = queryBool(rc, 'enabled');
    if (enabled !== undefined) q = q.where('enabled', '=', enabled ? 1 : 0);
  }
  return withQueryFilters(q, rc, columns.filter((c) => c !== 'enabled'));
}

export const duplicate = (kind: string, field: string, value: string) =>
  conflict(`Conflict occurred attempting to store ${kind} - Duplicate entry found with ${field} ${value}.`);

/** Splits a request entity into known columns and Keystone's free-form "extra" attributes. */
export function splitExtra(entity: object, known: readonly string[]): Record<string, unknown> {
  const extra: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(entity)) if (!known.includes(k)) extra[k] = v;
  return extra;
}

/** The attributes an entity's "extra" column keeps (Keystone's free-form extra attributes). */
export const extraOf = (stored: string): Record<string, unknown> => parseJson<Record<string, unknown>>(stored, {});

/** An update's "extra" attributes laid over the stored ones, as the column keeps them. */
export function mergeExtra(stored: string, entity: object, known: readonly string[]): string {
  return JSON.stringify({ ...extraOf(stored), ...splitExtra(entity, known) });
}

/** An update's nullable text field: absent keeps the stored value; null is stored as ''. */
export const patchText = (given: string | null | undefined, current: string): string => (given === undefined ? current : given ?? '');

/** An update's boolean field as its 0/1 column: absent keeps the stored value. */
export const patchFlag = (given: boolean | undefined, current: number): number => (given === undefined ? current : given ? 1 : 0);

/** An update may repeat an entity's id and domain but not change them (Keystone: 400). */
export function assertSameIdAndDomain(
  kind: string, patch: { id?: unknown; domain_id?: unknown }, current: { id: string; domain_id: string },
): void {
  if (patch.id !== undefined && patch.id !== current.id) throw badRequest(`Cannot change ${kind} ID`);
  if (patch.domain_id !== undefined && patch.domain_id !== current.domain_id) throw badRequest('Cannot change Domain ID');
}

/** How a body schema's first violation reads: `field` is where, from the body's root ('auth/identity'). */
export type BodyErrors = (field: string, error: FastifySchemaValidationError) => ApiError;
const bodyErrors = new WeakMap<TSchema, BodyErrors>();

/**
 * Names how violations of a route's body schema read, where Keystone words
 * them itself (the auth request) rather than as the server's generic
 * "Invalid input for request body"; keystoneBodyErrors() applies it.
 */
export function withBodyErrors<S extends TSchema>(schema: S, render: BodyErrors): S {
  bodyErrors.set(schema, render);
  return schema;
}

/** In the identity service's scope: routes whose body schema has its own wording use it. */
export function keystoneBodyErrors(app: FastifyInstance): void {
  app.addHook('onRoute', (opts) => {
    const body = (opts.schema as { body?: TSchema } | undefined)?.body;
    const render = body && bodyErrors.get(body);
    if (!render) return;
    opts.schemaErrorFormatter = (errors, dataVar) => {
      const e = errors[0]!;
      if (dataVar !== 'body') return new Error(`${dataVar}${e.instancePath} ${e.message}`);
      const missing = e.keyword === 'required' ? `/${(e.params as { missingProperty: string }).missingProperty}` : '';
      return render(`${e.instancePath}${missing}`.slice(1), e);
    };
  });
}

export { ApiError };
