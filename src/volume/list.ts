// Cinder's list machinery for volumes (cinder/api/common.py and the v3
// volumes controller): the filters a project may use (resource_filters, 3.31),
// `~` like filters (3.34), time comparisons on created_at / updated_at (3.60),
// consumes_quota (3.65),
// metadata filters, `sort` / `sort_key` / `sort_dir`, `limit` / `marker` with
// the `<collection>_links` next link, and `with_count` (3.45).
import type { FastifyRequest } from 'fastify';
import { isAdmin } from '../http/policy.ts';
import type { RouteContext } from '../http/service.ts';
import { badRequest, invalidInput } from './errors.ts';
import type { VolumeVersion } from './http.ts';
import { baseUrl, parseBoolean } from './view.ts';

/** The filters a non-admin may use, per resource (Cinder's default resource_filters.json). */
export const RESOURCE_FILTERS: Record<string, string[]> = {
  volume: ['name', 'status', 'metadata', 'bootable', 'migration_status', 'availability_zone', 'group_id', 'size', 'created_at', 'updated_at', 'consumes_quota'],
  snapshot: ['name', 'status', 'volume_id', 'metadata', 'availability_zone', 'consumes_quota'],
  volume_type: ['is_public', 'extra_specs'],
  transfer: ['name', 'volume_id'],
  backup: ['name', 'status', 'volume_id'],
  message: ['resource_uuid', 'resource_type', 'event_id', 'request_id', 'message_level'],
  attachment: ['volume_id', 'status', 'instance_id', 'attach_status'],
};

/** What a list item is filtered and sorted on: attribute name -> value. */
export type Item = Record<string, unknown>;

const RESERVED = new Set(['sort', 'sort_key', 'sort_dir', 'limit', 'marker', 'offset', 'with_count', 'all_tenants', 'usage', 'is_public']);
const SORT_KEYS = new Set(['id', 'name', 'status', 'size', 'availability_zone', 'created_at', 'updated_at', 'bootable', 'volume_type', 'display_name']);
const TIME_OPS: Record<string, (a: number, b: number) => boolean> = {
  gt: (a, b) => a > b, gte: (a, b) => a >= b, lt: (a, b) => a < b, lte: (a, b) => a <= b, eq: (a, b) => a === b, neq: (a, b) => a !== b,
};

/** A query value given once (the last, as Cinder's webob does for a repeated parameter). */
export const one = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[v.length - 1] : v);

/** Whether a list asks for every project's items: an admin's `all_tenants` (present and not false; a bad value is Cinder's 400). */
export function allTenants(rc: RouteContext): boolean {
  const v = one((rc.query as Record<string, string | string[] | undefined>).all_tenants);
  return isAdmin(rc.cred!) && v !== undefined && parseBoolean('all_tenants', v || 'true');
}

function dictFilter(attr: string, raw: string): Record<string, string> {
  try {
    const v = JSON.parse(raw.replaceAll("'", '"')) as unknown;
    if (v && typeof v === 'object' && !Array.isArray(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, String(x)]));
  } catch { /* worded below */ }
  throw invalidInput(`Invalid filter ${attr}: ${raw} is not a dictionary.`);
}

/**
 * The items that pass the query's filters. `admin` may filter on anything;
 * others only on the resource's allowed filters (400 otherwise, as Cinder).
 */
export function applyFilters(query: Record<string, string | string[] | undefined>, items: Item[], o: { resource: string; admin: boolean; v: VolumeVersion }): Item[] {
  const allowed = new Set(RESOURCE_FILTERS[o.resource] ?? []);
  const filters: Array<[string, string, boolean]> = [];
  const invalid: string[] = [];
  for (const [rawKey, rawVal] of Object.entries(query)) {
    const val = one(rawVal);
    if (RESERVED.has(rawKey) || val === undefined) continue;
    if (rawKey === 'project_id' && o.admin) { filters.push(['project_id', val, false]); continue; }
    const like = rawKey.endsWith('~') && o.v.ge('3.34');
    let key = like ? rawKey.slice(0, -1) : rawKey;
    if (key === 'display_name') key = 'name';
    if (!o.admin && !allowed.has(key)) { invalid.push(rawKey); continue; }
    filters.push([key, val, like]);
  }
  if (invalid.length) throw badRequest(`Invalid filters ${invalid.join(',')} are found in query options.`);
  let out = items;
  for (const [key, val, like] of filters) {
    if (key === 'metadata' || key === 'glance_metadata') {
      const want = dictFilter(key, val);
      const field = key === 'metadata' ? 'metadata' : 'volume_image_metadata';
      out = out.filter((i) => Object.entries(want).every(([k, x]) => ((i[field] ?? {}) as Record<string, string>)[k] === x));
    } else if ((key === 'created_at' || key === 'updated_at') && o.v.ge('3.60') && /^[a-z]+:/.test(val)) {
      const conds = val.split(',').map((c) => {
        const m = /^(gt|gte|lt|lte|eq|neq):(.+)$/.exec(c.trim());
        const t = m ? Date.parse(m[2]!.endsWith('Z') || /[+-]\d\d:?\d\d$/.test(m[2]!) ? m[2]! : `${m[2]}Z`) : NaN;
        if (!m || Number.isNaN(t)) throw invalidInput(`Invalid filter ${key}: '${c}' is not <op>:<time> with op one of gt, gte, lt, lte, eq, neq.`);
        return [TIME_OPS[m[1]!]!, t] as const;
      });
      out = out.filter((i) => {
        const have = i[key] === null ? NaN : Date.parse(`${String(i[key])}Z`);
        return !Number.isNaN(have) && conds.every(([op, t]) => op(have, t));
      });
    } else if (key === 'consumes_quota') {
      const want = parseBoolean('consumes_quota', val);
      out = out.filter((i) => i.consumes_quota === want);
    } else if (key === 'bootable') {
      // from 3.2 a strict boolean; before, 'False'/'false'/'FALSE' is false and any other non-empty value true
      const want = o.v.ge('3.2') ? parseBoolean('bootable', val) : !['False', 'false', 'FALSE', ''].includes(val);
      out = out.filter((i) => i.bootable === want);
    } else if (key === 'size') {
      out = out.filter((i) => String(i.size) === val);
    } else if (like) {
      out = out.filter((i) => typeof i[key] === 'string' && (i[key] as string).toLowerCase().includes(val.toLowerCase()));
    } else {
      out = out.filter((i) => (i[key] === null || i[key] === undefined ? val === '' || val.toLowerCase() === 'none' : String(i[key]) === val));
    }
  }
  return out;
}

function compare(a: unknown, b: unknown): number {
  if (a === b) return 0;
  if (a === null || a === undefined) return -1;
  if (b === null || b === undefined) return 1;
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  return String(a) < String(b) ? -1 : 1;
}

/** Sorts by `sort=k1:dir,k2` or `sort_key`/`sort_dir` (default created_at desc), always with id last for a stable order. */
export function applySort(query: Record<string, string | string[] | undefined>, items: Item[]): Item[] {
  const sort = one(query.sort), sortKey = one(query.sort_key), sortDir = one(query.sort_dir);
  if (sort && (sortKey || sortDir)) throw badRequest("The 'sort_key' and 'sort_dir' parameters are deprecated and cannot be used with the 'sort' parameter.");
  let keys: Array<[string, 'asc' | 'desc']>;
  if (sort) {
    keys = sort.split(',').map((p) => {
      const [k, d = 'desc'] = p.trim().split(':');
      return [k!.trim(), d.trim().toLowerCase() as 'asc' | 'desc'];
    });
  } else {
    const ks = (sortKey ?? 'created_at').split(','), ds = (sortDir ?? 'desc').split(',');
    keys = ks.map((k, i) => [k.trim(), (ds[i] ?? ds[ds.length - 1] ?? 'desc').trim().toLowerCase() as 'asc' | 'desc']);
  }
  for (const [k, d] of keys) {
    if (!SORT_KEYS.has(k)) throw invalidInput(`Invalid sort key: ${k}`);
    if (d !== 'asc' && d !== 'desc') throw invalidInput(`Invalid sort direction: ${d}`);
  }
  if (!keys.some(([k]) => k === 'id')) keys.push(['id', keys[0]?.[1] ?? 'desc']);
  return [...items].sort((a, b) => {
    for (const [k, d] of keys) {
      const key = k === 'display_name' ? 'name' : k;
      const c = compare(a[key], b[key]);
      if (c) return d === 'asc' ? c : -c;
    }
    return 0;
  });
}

/**
 * `limit`/`marker`/`offset` on sorted items; the next link whenever the page
 * is full, the last one included (Cinder's `_get_collection_links`: the page
 * after it is then empty, without a link).
 */
export function paginate(req: FastifyRequest, query: Record<string, string | string[] | undefined>, items: Item[], o: { collection: string; path: string; notFound(id: string): Error }): { page: Item[]; links?: unknown[] } {
  const limitRaw = one(query.limit), marker = one(query.marker), offsetRaw = one(query.offset);
  let start = 0;
  if (marker !== undefined) {
    const i = items.findIndex((x) => x.id === marker);
    if (i < 0) throw o.notFound(marker);
    start = i + 1;
  }
  if (offsetRaw !== undefined) {
    const off = Number(offsetRaw);
    if (!/^\d+$/.test(offsetRaw) || off > 2147483647) throw badRequest(`offset param must be an integer`);
    start += off;
  }
  if (limitRaw === undefined) return { page: items.slice(start) };
  if (!/^\d+$/.test(limitRaw)) throw badRequest('limit param must be an integer');
  const limit = Math.min(Number(limitRaw), 1000);
  const page = items.slice(start, start + limit);
  if (page.length < limit || page.length === 0) return { page };
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (k !== 'marker' && v !== undefined) for (const x of Array.isArray(v) ? v : [v]) params.append(k, x);
  params.set('marker', String(page[page.length - 1]!.id));
  return { page, links: [{ rel: 'next', href: `${baseUrl(req)}${o.path}?${params}` }] };
}
