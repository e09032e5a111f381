// Identity wire helpers: Keystone's error envelope, links and query parsing.
import type { FastifyRequest } from 'fastify';
import { ApiError, badRequest, conflict } from '../common/errors.ts';
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

/**
 * Keystone's common list filters (?name=, ?domain_id=, ?enabled=) as where
 * clauses on a list query; `columns` names the ones the collection has.
 */
export function withListFilters<Q extends { where(column: any, op: '=', value: string | number): Q }>(
  q: Q, rc: RouteContext, columns: ReadonlyArray<'name' | 'domain_id' | 'enabled'>,
): Q {
  for (const column of columns) {
    if (column === 'enabled') {
      const enabled = queryBool(rc, column);
      if (enabled !== undefined) q = q.where(column, '=', enabled ? 1 : 0);
    } else {
      const value = queryString(rc, column);
      if (value !== undefined) q = q.where(column, '=', value);
    }
  }
  return q;
}

export const duplicate = (kind: string, field: string, value: string) =>
  conflict(`Conflict occurred attempting to store ${kind} - Duplicate entry found with ${field} ${value}.`);

/** True when a database error is a uniqueness violation (SQLite or PostgreSQL). */
export function isUniqueViolation(e: unknown): boolean {
  const err = e as { code?: string; errcode?: string; message?: string };
  return err?.code === '23505' || /UNIQUE constraint failed|PRIMARY KEY|duplicate key/i.test(err?.message ?? '');
}

/** Splits a request entity into known columns and Keystone's free-form "extra" attributes. */
export function splitExtra(entity: Record<string, unknown>, known: readonly string[]): Record<string, unknown> {
  const extra: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(entity)) if (!known.includes(k)) extra[k] = v;
  return extra;
}

export const bool = (n: number): boolean => n === 1;
export { ApiError };
