// The one list machinery every Neutron collection answers through
// (neutron/api/v2/base.py's index): filters on any attribute (a repeated
// parameter is an OR), the tag filters, `fields`, sorting by `sort_key` /
// `sort_dir`, and `limit` / `marker` / `page_reverse` pagination with the
// `<collection>_links` next/previous links.
//
// It works on the views the caller may see, so filtering and sorting see
// exactly what a client would (computed attributes such as a network's
// `subnets` included).
import type { RouteContext } from '../http/service.ts';
import { badRequest, invalidAttr, type NeutronError } from './errors.ts';

export type View = Record<string, unknown>;

/** How a query value compares with an attribute. `none`: not filterable (and not sortable). */
export type AttrKind = 'string' | 'bool' | 'int' | 'list' | 'fixed_ips' | 'none';

export interface ListSpec {
  /** The collection name: the list's key and its links' prefix. */
  collection: string;
  attrs: Record<string, AttrKind>;
  /** The NotFound of a marker that names nothing the caller sees. */
  notFound(id: string): NeutronError;
}

const RESERVED = new Set(['fields', 'sort_key', 'sort_dir', 'limit', 'marker', 'page_reverse', 'tags', 'tags-any', 'not-tags', 'not-tags-any']);
/** Attributes every resource has. */
export const STANDARD_ATTRS: Record<string, AttrKind> = {
  id: 'string', project_id: 'string', tenant_id: 'string', description: 'string', revision_number: 'int',
  created_at: 'string', updated_at: 'string', tags: 'list',
};

const values = (v: string | string[] | undefined): string[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

export function parseBool(attr: string, s: string): boolean {
  const l = s.toLowerCase();
  if (['true', '1', 't', 'yes', 'y', 'on'].includes(l)) return true;
  if (['false', '0', 'f', 'no', 'n', 'off'].includes(l)) return false;
  throw invalidAttr(attr, `'${s}' cannot be converted to boolean`);
}

function matches(kind: AttrKind, attr: string, have: unknown, want: string): boolean {
  switch (kind) {
    case 'bool': return have === parseBool(attr, want);
    case 'int': {
      const n = Number(want);
      if (!Number.isInteger(n)) throw invalidAttr(attr, `'${want}' is not an integer`);
      return have === n;
    }
    case 'list': return Array.isArray(have) && have.map(String).includes(want);
    case 'fixed_ips': {
      // fixed_ips=ip_address=10.0.0.5 / fixed_ips=subnet_id=... (what clients send)
      const m = /^(ip_address|subnet_id|ip_address_substr)=(.*)$/.exec(want);
      if (!m) throw invalidAttr(attr, `'${want}' is not of the form ip_address=X or subnet_id=X`);
      const ips = (have as Array<Record<string, string>>) ?? [];
      return ips.some((f) => (m[1] === 'ip_address_substr' ? f.ip_address!.includes(m[2]!) : f[m[1]!] === m[2]));
    }
    default: return have === null ? want === '' || want === 'None' : String(have) === want;
  }
}

function tagsOf(query: RouteContext['query'], key: string): string[][] {
  return values(query[key]).map((v) => v.split(',').filter((t) => t !== ''));
}

function compare(a: unknown, b: unknown): number {
  if (a === b) return 0;
  if (a === null || a === undefined) return -1;
  if (b === null || b === undefined) return 1;
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'boolean' && typeof b === 'boolean') return Number(a) - Number(b);
  const x = String(a), y = String(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** The views that pass the query's attribute and tag filters. */
export function applyFilters(spec: ListSpec, query: RouteContext['query'], views: View[]): View[] {
  let out = views;
  for (const [key, raw] of Object.entries(query)) {
    if (RESERVED.has(key)) continue;
    const kind = spec.attrs[key] ?? STANDARD_ATTRS[key];
    if (!kind || kind === 'none') throw badRequest(`[${key}] is invalid attribute for filtering`);
    const wanted = values(raw);
    out = out.filter((v) => wanted.some((w) => matches(kind, key, v[key], w)));
  }
  const has = (v: View, t: string) => (v.tags as string[] | undefined)?.includes(t) ?? false;
  for (const group of tagsOf(query, 'tags')) out = out.filter((v) => group.every((t) => has(v, t)));
  for (const group of tagsOf(query, 'tags-any')) out = out.filter((v) => group.some((t) => has(v, t)));
  for (const group of tagsOf(query, 'not-tags')) out = out.filter((v) => !group.every((t) => has(v, t)));
  for (const group of tagsOf(query, 'not-tags-any')) out = out.filter((v) => !group.some((t) => has(v, t)));
  return out;
}

/** Only the asked `fields` of a view (all of it when none are asked). */
export function selectFields(query: RouteContext['query'], view: View): View {
  const fields = values(query.fields).flatMap((f) => f.split(',')).filter((f) => f !== '');
  if (!fields.length) return view;
  return Object.fromEntries(fields.filter((f) => Object.hasOwn(view, f)).map((f) => [f, view[f]]));
}

type Order = Array<{ key: string; dir: 1 | -1 }>;

function sortOrder(spec: ListSpec, query: RouteContext['query']): Order {
  const keys = values(query.sort_key);
  const dirs = values(query.sort_dir);
  if (dirs.length && dirs.length !== keys.length) throw badRequest('The number of sort_keys and sort_dirs must be same');
  const order: Order = keys.map((key, i) => {
    const kind = spec.attrs[key] ?? STANDARD_ATTRS[key];
    if (!kind || kind === 'none' || kind === 'list' || kind === 'fixed_ips') throw badRequest(`Attribute '${key}' is not supported for sorting`);
    const dir = (dirs[i] ?? 'asc').toLowerCase();
    if (dir !== 'asc' && dir !== 'desc') throw badRequest(`Sort direction '${dirs[i]}' is invalid, it must be 'asc' or 'desc'`);
    return { key, dir: dir === 'asc' ? 1 : -1 };
  });
  // the id breaks ties, so pages never overlap
  if (!keys.includes('id')) order.push({ key: 'id', dir: 1 });
  return order;
}

const byOrder = (order: Order) => (a: View, b: View): number => {
  for (const { key, dir } of order) {
    const c = compare(a[key], b[key]);
    if (c) return c * dir;
  }
  return 0;
};

function parseLimit(raw: string | string[] | undefined): number {
  const s = values(raw).at(-1);
  if (s === undefined) return 0;
  const n = Number(s);
  if (!/^\d+$/.test(s) || !Number.isSafeInteger(n)) throw badRequest(`Limit must be an integer 0 or greater and not '${s}'`);
  return n;
}

/** The link to another page: this request's URL with the marker (and direction) replaced. */
function pageLink(rc: RouteContext, rel: 'next' | 'previous', marker: string, reverse: boolean): { rel: string; href: string } {
  const url = new URL(rc.req.url, `${rc.req.protocol}://${rc.req.headers.host ?? 'localhost'}`);
  url.searchParams.delete('marker');
  url.searchParams.delete('page_reverse');
  url.searchParams.append('marker', marker);
  if (reverse) url.searchParams.append('page_reverse', 'True');
  return { rel, href: url.toString() };
}

/**
 * The list answer `{<collection>: [...], <collection>_links?: [...]}` for the
 * views the caller may see.
 */
export function listAnswer(rc: RouteContext, spec: ListSpec, all: View[]): Record<string, unknown> {
  const q = rc.query;
  const filtered = applyFilters(spec, q, all);
  const reverse = /^true$/i.test(values(q.page_reverse).at(-1) ?? '');
  const order = sortOrder(spec, q);
  const effective: Order = reverse ? order.map((o) => ({ key: o.key, dir: (o.dir * -1) as 1 | -1 })) : order;
  const cmp = byOrder(effective);
  let items = [...filtered].sort(cmp);
  const markerId = values(q.marker).at(-1);
  if (markerId !== undefined) {
    const marker = all.find((v) => v.id === markerId);
    if (!marker) throw spec.notFound(markerId);
    items = items.filter((v) => cmp(v, marker) > 0);
  }
  const limit = parseLimit(q.limit);
  const out: Record<string, unknown> = {};
  const links: Array<{ rel: string; href: string }> = [];
  if (limit > 0) {
    const more = items.length > limit;
    items = items.slice(0, limit);
    if (reverse) items.reverse();
    const first = items[0]?.id as string | undefined;
    const last = items.at(-1)?.id as string | undefined;
    if (!reverse) {
      if (more && last) links.push(pageLink(rc, 'next', last, false));
      if (markerId !== undefined && first) links.push(pageLink(rc, 'previous', first, true));
    } else {
      if (markerId !== undefined && last) links.push(pageLink(rc, 'next', last, false));
      if (more && first) links.push(pageLink(rc, 'previous', first, true));
    }
  } else if (reverse) items.reverse();
  out[spec.collection] = items.map((v) => selectFields(q, v));
  if (links.length) out[`${spec.collection}_links`] = links;
  return out;
}
