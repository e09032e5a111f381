// Image records: loading and saving them, who may see them, and listing them
// with Glance's filters, sorting and marker pagination. The HTTP routes and the
// in-process interface other services use (service.ts) both sit on this.
import { randomUUID } from 'node:crypto';
import { badRequest, conflict } from '../common/errors.ts';
import type { Db } from '../db/database.ts';
import type { Credentials } from '../http/auth.ts';
import type { ImageTables } from './schema.ts';

export type ImageRow = ImageTables['image_images'];

/** An image's member row; status is pending, accepted or rejected. */
export type ImageMember = ImageTables['image_members'];

/**
 * An image as the image service keeps it (times are ISO strings with
 * milliseconds): the row with its flags as booleans, its properties parsed, and
 * its tags and members from their own tables.
 */
export type ImageRecord = Omit<ImageRow, 'protected' | 'os_hidden' | 'properties'> & {
  protected: boolean;
  os_hidden: boolean;
  /** Extra properties; values are strings (null only for schema properties that allow it). */
  properties: Record<string, string | null>;
  tags: string[];
  members: ImageMember[];
};

/** Glance's image_tag_quota, image_property_quota and image_member_quota defaults. */
export const QUOTAS = { tags: 128, properties: 128, members: 128 } as const;

export const isAdminCred = (c: Credentials): boolean => c.roles.has('admin');

/** Glance's is_image_visible: whether the caller may know the image exists. */
export function canSee(cred: Credentials, image: ImageRecord): boolean {
  if (image.status === 'deleted' || image.deleted_at) return false;
  if (isAdminCred(cred)) return true;
  if (image.owner === null) return true;
  if (image.visibility === 'public' || image.visibility === 'community') return true;
  if (cred.projectId === null) return false;
  if (image.owner === cred.projectId) return true;
  return image.visibility === 'shared' && image.members.some((m) => m.member_id === cred.projectId);
}

function toRecord(row: ImageRow, tags: string[], members: ImageMember[]): ImageRecord {
  let properties: Record<string, string | null> = {};
  try {
    properties = JSON.parse(row.properties) as Record<string, string | null>;
  } catch {
    properties = {};
  }
  return {
    id: row.id, name: row.name, status: row.status, visibility: row.visibility,
    protected: row.protected === 1, os_hidden: row.os_hidden === 1,
    checksum: row.checksum, os_hash_algo: row.os_hash_algo, os_hash_value: row.os_hash_value,
    size: row.size === null ? null : Number(row.size), virtual_size: row.virtual_size === null ? null : Number(row.virtual_size),
    disk_format: row.disk_format, container_format: row.container_format,
    min_disk: row.min_disk, min_ram: row.min_ram, owner: row.owner, properties,
    tags: [...tags].sort(), members, location: row.location,
    created_at: row.created_at, updated_at: row.updated_at, deleted_at: row.deleted_at,
  };
}

export function toRow(r: ImageRecord): ImageRow {
  return {
    id: r.id, name: r.name, status: r.status, visibility: r.visibility,
    protected: r.protected ? 1 : 0, os_hidden: r.os_hidden ? 1 : 0,
    checksum: r.checksum, os_hash_algo: r.os_hash_algo, os_hash_value: r.os_hash_value,
    size: r.size, virtual_size: r.virtual_size, disk_format: r.disk_format, container_format: r.container_format,
    min_disk: r.min_disk, min_ram: r.min_ram, owner: r.owner, properties: JSON.stringify(r.properties),
    location: r.location, created_at: r.created_at, updated_at: r.updated_at, deleted_at: r.deleted_at,
  };
}

const chunks = <T>(xs: T[], n: number): T[][] => {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n));
  return out;
};

/** Loads rows with their tags and members. */
async function hydrate(db: Db, rows: ImageRow[]): Promise<ImageRecord[]> {
  if (rows.length === 0) return [];
  const tags = new Map<string, string[]>();
  const members = new Map<string, ImageMember[]>();
  for (const part of chunks(rows.map((r) => r.id), 500)) {
    for (const t of await db.selectFrom('image_tags').selectAll().where('image_id', 'in', part).execute()) {
      (tags.get(t.image_id) ?? tags.set(t.image_id, []).get(t.image_id)!).push(t.tag);
    }
    for (const m of await db.selectFrom('image_members').selectAll().where('image_id', 'in', part).orderBy('created_at').execute()) {
      (members.get(m.image_id) ?? members.set(m.image_id, []).get(m.image_id)!).push(m);
    }
  }
  return rows.map((r) => toRecord(r, tags.get(r.id) ?? [], members.get(r.id) ?? []));
}

/** The image with this id, deleted ones included (they keep their id). */
export async function loadImage(db: Db, id: string): Promise<ImageRecord | undefined> {
  const row = await db.selectFrom('image_images').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) return undefined;
  return (await hydrate(db, [row]))[0];
}

/** Inserts a new image with its tags (members come later). */
export async function insertImage(db: Db, r: ImageRecord): Promise<void> {
  await db.transaction().execute(async (tx) => {
    await tx.insertInto('image_images').values(toRow(r)).execute();
    if (r.tags.length) await tx.insertInto('image_tags').values(r.tags.map((tag) => ({ image_id: r.id, tag }))).execute();
  });
}

/**
 * Writes an image's attributes (and its tags when they changed). With
 * `fromStatus`, only if the stored status still is that one: the status
 * machine's transitions are compare-and-set, so two uploads cannot both start.
 * Returns whether the row was written.
 */
export async function saveImage(db: Db, r: ImageRecord, opts: { fromStatus?: string; tags?: boolean } = {}): Promise<boolean> {
  return db.transaction().execute(async (tx) => {
    const { id: _id, created_at: _c, ...rest } = toRow(r);
    let q = tx.updateTable('image_images').set(rest).where('id', '=', r.id).where('deleted_at', 'is', null);
    if (opts.fromStatus !== undefined) q = q.where('status', '=', opts.fromStatus);
    const res = await q.executeTakeFirst();
    if (Number(res.numUpdatedRows) !== 1) return false;
    if (opts.tags) {
      await tx.deleteFrom('image_tags').where('image_id', '=', r.id).execute();
      if (r.tags.length) await tx.insertInto('image_tags').values(r.tags.map((tag) => ({ image_id: r.id, tag }))).execute();
    }
    return true;
  });
}

/** Compare-and-set of the status only (and the fields given). */
export async function setStatus(db: Db, id: string, from: string | string[], to: string, fields: Partial<ImageRow> = {}): Promise<boolean> {
  const froms = Array.isArray(from) ? from : [from];
  const res = await db.updateTable('image_images').set({ ...fields, status: to, updated_at: new Date().toISOString() })
    .where('id', '=', id).where('status', 'in', froms).where('deleted_at', 'is', null).executeTakeFirst();
  return Number(res.numUpdatedRows) === 1;
}

/** Soft-deletes the row (the id stays taken) and drops its tags and members. */
export async function markDeleted(db: Db, id: string): Promise<void> {
  const now = new Date().toISOString();
  await db.transaction().execute(async (tx) => {
    await tx.updateTable('image_images').set({ status: 'deleted', deleted_at: now, updated_at: now, location: null })
      .where('id', '=', id).execute();
    await tx.deleteFrom('image_tags').where('image_id', '=', id).execute();
    await tx.deleteFrom('image_members').where('image_id', '=', id).execute();
  });
}

export interface NewImageFields {
  id?: string;
  name?: string | null;
  visibility?: string;
  protected?: boolean;
  os_hidden?: boolean;
  disk_format?: string | null;
  container_format?: string | null;
  min_disk?: number;
  min_ram?: number;
  owner?: string | null;
  tags?: string[];
  /** Extra properties (strings). */
  properties?: Record<string, string | null>;
}

/** A new queued image record from validated fields. */
export function newImageRecord(f: NewImageFields, owner: string | null): ImageRecord {
  const now = new Date().toISOString();
  return {
    id: f.id ?? randomUUID(), name: f.name ?? null, status: 'queued', visibility: f.visibility ?? 'shared',
    protected: f.protected ?? false, os_hidden: f.os_hidden ?? false,
    checksum: null, os_hash_algo: null, os_hash_value: null, size: null, virtual_size: null,
    disk_format: f.disk_format ?? null, container_format: f.container_format ?? null,
    min_disk: f.min_disk ?? 0, min_ram: f.min_ram ?? 0, owner, properties: f.properties ?? {},
    tags: [...new Set(f.tags ?? [])].sort(), members: [], location: null,
    created_at: now, updated_at: now, deleted_at: null,
  };
}

/** Inserts a new image; an id already taken (deleted images included) is a 409. */
export async function createImageRecord(db: Db, rec: ImageRecord): Promise<ImageRecord> {
  if (await loadImage(db, rec.id)) throw conflict(`Image with identifier ${rec.id} already exists!`);
  try {
    await insertImage(db, rec);
  } catch (e) {
    if (await loadImage(db, rec.id)) throw conflict(`Image with identifier ${rec.id} already exists!`);
    throw e;
  }
  return rec;
}

// ---------------------------------------------------------------- listing

export const SORT_KEYS = ['name', 'status', 'container_format', 'disk_format', 'size', 'id', 'created_at', 'updated_at'] as const;
type SortKey = (typeof SORT_KEYS)[number];

/** Query parameters of GET /v2/images, as Glance reads them (repeatable ones as arrays). */
export type ImageListQuery = Record<string, string | string[] | undefined>;

export interface ImageListResult {
  images: ImageRecord[];
  /** Set when a full page was returned: the id to pass as `marker` for the next one. */
  nextMarker?: string;
}

const LIMIT_DEFAULT = 25;
const LIMIT_MAX = 1000;

const all = (q: ImageListQuery, k: string): string[] => {
  const v = q[k];
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
};
const one = (q: ImageListQuery, k: string): string | undefined => {
  const v = all(q, k);
  return v.length ? v[v.length - 1] : undefined;
};

/** "in:a,b" / "eq:a" / "a" (Glance's split_filter_op for name, id, status, formats). */
function splitOp(raw: string): { op: string; value: string } {
  const i = raw.indexOf(':');
  if (i > 0) {
    const op = raw.slice(0, i);
    if (['in', 'eq', 'neq', 'gt', 'gte', 'lt', 'lte', 'nin'].includes(op)) return { op, value: raw.slice(i + 1) };
  }
  return { op: 'eq', value: raw };
}

/** Splits "a,b,\"c,d\"" as Glance's split_filter_value_for_quotes does. */
function splitQuoted(value: string): string[] {
  const out: string[] = [];
  const re = /\s*(?:"((?:[^"\\]|\\.)*)"|([^,]*))\s*(?:,|$)/gy;
  let m: RegExpExecArray | null;
  while (re.lastIndex < value.length && (m = re.exec(value))) {
    out.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2]!.trim());
    if (m[0] === '') break;
  }
  return out;
}

function parseTime(raw: string, key: string): number {
  const t = Date.parse(raw);
  if (!/^\d{4}-\d{2}-\d{2}/.test(raw) || Number.isNaN(t)) throw badRequest(`Bad "${key}" query filter format. Use ISO 8601 DateTime notation.`);
  return t;
}

interface Sorting { keys: SortKey[]; dirs: Array<'asc' | 'desc'> }

function sortKey(k: string): SortKey {
  if (!(SORT_KEYS as readonly string[]).includes(k)) {
    throw badRequest(`Invalid sort key: ${k}. It must be one of the following: ${SORT_KEYS.join(', ')}.`);
  }
  return k as SortKey;
}
function sortDir(d: string): 'asc' | 'desc' {
  if (d !== 'asc' && d !== 'desc') throw badRequest(`Invalid sort direction: ${d}`);
  return d;
}

/** Glance's _get_sorting_params: `sort=k:dir,...` or repeated sort_key/sort_dir. */
export function parseSorting(q: ImageListQuery): Sorting {
  const keys: SortKey[] = [];
  let dirs: Array<'asc' | 'desc'> = [];
  const sort = one(q, 'sort');
  if (sort !== undefined) {
    if (q.sort_key !== undefined || q.sort_dir !== undefined) throw badRequest('Old and new sorting syntax cannot be combined');
    for (const part of sort.trim().split(',')) {
      const [k, d] = part.split(':');
      keys.push(sortKey((k ?? '').trim()));
      dirs.push(sortDir(d === undefined || d.trim() === '' ? 'desc' : d.trim()));
    }
  } else {
    for (const k of all(q, 'sort_key')) keys.push(sortKey(k.trim()));
    for (const d of all(q, 'sort_dir')) dirs.push(sortDir(d.trim()));
    if (dirs.length > 1 && dirs.length !== keys.length) throw badRequest('Number of sort dirs does not match the number of sort keys');
  }
  if (!keys.length) keys.push('created_at');
  if (!dirs.length) dirs = ['desc'];
  // One direction given applies to every key; created_at and id break ties.
  if (dirs.length === 1 && keys.length > 1) dirs = keys.map(() => dirs[0]!);
  const fallback = dirs[0]!;
  for (const k of ['created_at', 'id'] as const) {
    if (!keys.includes(k)) {
      keys.push(k);
      dirs.push(fallback);
    }
  }
  return { keys, dirs };
}

function compareValues(a: unknown, b: unknown): number {
  if (a === b) return 0;
  // NULL sorts first ascending, as SQLite and MySQL order it.
  if (a === null || a === undefined) return -1;
  if (b === null || b === undefined) return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

function comparator(s: Sorting): (a: ImageRecord, b: ImageRecord) => number {
  return (a, b) => {
    for (let i = 0; i < s.keys.length; i++) {
      const k = s.keys[i]!;
      const c = compareValues(a[k], b[k]);
      if (c !== 0) return s.dirs[i] === 'asc' ? c : -c;
    }
    return 0;
  };
}

const BOOL_FILTERS = ['protected', 'os_hidden'] as const;
/** Filters on image columns; every other unknown parameter filters on an extra property. */
const COLUMN_FILTERS = new Set([
  'name', 'id', 'status', 'container_format', 'disk_format', 'owner', 'checksum', 'os_hash_value', 'os_hash_algo',
  'size', 'virtual_size', 'min_disk', 'min_ram', 'created_at', 'updated_at', 'protected', 'os_hidden',
]);
const NOT_FILTERS = new Set(['limit', 'marker', 'sort', 'sort_key', 'sort_dir', 'member_status', 'visibility', 'tag']);

function matchesOp(actual: unknown, raw: string, key: string): boolean {
  const { op, value } = splitOp(raw);
  if (key === 'created_at' || key === 'updated_at') {
    const t = parseTime(value, key);
    const a = Date.parse(String(actual));
    switch (op) {
      case 'eq': return a === t;
      case 'neq': return a !== t;
      case 'gt': return a > t;
      case 'gte': return a >= t;
      case 'lt': return a < t;
      case 'lte': return a <= t;
      default: throw badRequest(`Unable to filter by unknown operator '${op}'.`);
    }
  }
  if (['name', 'id', 'status', 'container_format', 'disk_format'].includes(key)) {
    if (op === 'in') return splitQuoted(value).includes(String(actual));
    if (op === 'eq') return actual !== null && String(actual) === value;
    throw badRequest(`Unable to filter by unknown operator '${op}'.`);
  }
  return actual !== null && actual !== undefined && String(actual) === raw;
}

/**
 * Lists the images the caller may see, as Glance's GET /v2/images does:
 * filters, `member_status`, `visibility` (community images only when asked
 * for or owned), hidden images only with os_hidden=true, sorting, limit and
 * marker. Throws ApiError 400 on a bad parameter.
 */
export async function listImages(db: Db, cred: Credentials, q: ImageListQuery): Promise<ImageListResult> {
  const admin = isAdminCred(cred);
  const project = cred.projectId;

  const visibility = one(q, 'visibility');
  if (visibility !== undefined && !['community', 'public', 'private', 'shared', 'all'].includes(visibility)) {
    throw badRequest(`Invalid visibility value: ${visibility}`);
  }
  if (q['changes-since'] !== undefined) throw badRequest('The "changes-since" filter is no longer available on v2.');
  const memberStatus = one(q, 'member_status') ?? 'accepted';
  if (!['pending', 'accepted', 'rejected', 'all'].includes(memberStatus)) throw badRequest(`Invalid status: ${memberStatus}`);
  const bools: Partial<Record<(typeof BOOL_FILTERS)[number], boolean>> = {};
  for (const k of BOOL_FILTERS) {
    const v = one(q, k);
    if (v === undefined) continue;
    const s = v.toLowerCase();
    if (s !== 'true' && s !== 'false') throw badRequest(`Invalid value '${v}' for '${k}' filter. Valid values are 'true' or 'false'.`);
    bools[k] = s === 'true';
  }
  bools.os_hidden ??= false;
  let limit = LIMIT_DEFAULT;
  const rawLimit = one(q, 'limit');
  if (rawLimit !== undefined) {
    if (!/^-?\d+$/.test(rawLimit.trim())) throw badRequest('limit param must be an integer');
    limit = parseInt(rawLimit, 10);
    if (limit < 0) throw badRequest('limit param must be positive');
  }
  limit = Math.min(limit, LIMIT_MAX);
  const sorting = parseSorting(q);
  const ranges: Array<{ key: string; min: boolean; value: number }> = [];
  const filters: Array<[string, string]> = [];
  for (const [k, v] of Object.entries(q)) {
    if (v === undefined || NOT_FILTERS.has(k) || k === 'changes-since') continue;
    const value = Array.isArray(v) ? v[v.length - 1]! : v;
    if (k.endsWith('_min') || k.endsWith('_max')) {
      const n = Number(value);
      if (value.trim() === '' || !Number.isInteger(n)) throw badRequest('Unable to filter on a range with a non-numeric value.');
      ranges.push({ key: k.slice(0, -4), min: k.endsWith('_min'), value: n });
      continue;
    }
    if ((BOOL_FILTERS as readonly string[]).includes(k)) continue;
    filters.push([k, value]);
  }
  const tags = all(q, 'tag').map((t) => t.trim());

  let sql = db.selectFrom('image_images').selectAll().where('deleted_at', 'is', null).where('status', '!=', 'killed')
    .where('os_hidden', '=', bools.os_hidden ? 1 : 0);
  if (bools.protected !== undefined) sql = sql.where('protected', '=', bools.protected ? 1 : 0);
  if (!admin) {
    sql = sql.where((eb) => eb.or([
      eb('visibility', 'in', ['public', 'community']),
      ...(project === null ? [] : [
        eb('owner', '=', project),
        eb.and([
          eb('visibility', '=', 'shared'),
          eb('id', 'in', (() => {
            let m = eb.selectFrom('image_members').select('image_id').where('member_id', '=', project);
            if (memberStatus !== 'all') m = m.where('status', '=', memberStatus);
            return m;
          })()),
        ]),
      ]),
    ]));
  }
  if (visibility !== undefined) {
    if (visibility !== 'all') sql = sql.where('visibility', '=', visibility);
  } else if (project === null) {
    sql = sql.where('visibility', '!=', 'community');
  } else {
    sql = sql.where((eb) => eb.or([eb('visibility', '!=', 'community'), eb('owner', '=', project)]));
  }
  for (const tag of tags) {
    sql = sql.where('id', 'in', (eb) => eb.selectFrom('image_tags').select('image_id').where('tag', '=', tag));
  }
  const rows = await sql.execute();

  let images = await hydrate(db, rows);
  images = images.filter((img) => {
    for (const r of ranges) {
      const actual = (img as unknown as Record<string, unknown>)[r.key];
      if (typeof actual !== 'number') return false;
      if (r.min ? actual < r.value : actual > r.value) return false;
    }
    for (const [k, v] of filters) {
      const actual = COLUMN_FILTERS.has(k) ? (img as unknown as Record<string, unknown>)[k] : img.properties[k];
      if (!matchesOp(actual, v, k)) return false;
    }
    return true;
  });
  const cmp = comparator(sorting);
  images.sort(cmp);

  const marker = one(q, 'marker');
  if (marker !== undefined) {
    const m = await loadImage(db, marker);
    if (!m || !canSee(cred, m)) throw badRequest(`No image found with ID ${marker}`);
    images = images.filter((img) => cmp(img, m) > 0);
  }
  const page = images.slice(0, limit);
  const result: ImageListResult = { images: page };
  if (page.length > 0 && page.length === limit && images.length >= limit) result.nextMarker = page[page.length - 1]!.id;
  return result;
}
