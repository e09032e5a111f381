// Shared pieces of the bare-metal routes: Ironic's timestamps and boolean
// parsing, finding a node by uuid or name as the caller may see it, node
// history, the placement provider kept in step, and Ironic's pagination
// (limit / marker / sort_key / sort_dir with a `next` link) and `fields`.
import type { FastifyRequest } from 'fastify';
import { nowIso, uuid as newUuid } from '../common/ids.ts';
import { parseJsonList } from '../common/json.ts';
import type { Credentials } from '../http/auth.ts';
import type { RouteContext } from '../http/service.ts';
import { removeBaremetalProvider, syncBaremetalProvider } from '../placement/service.ts';
import type { BmContext, NodeRow } from './context.ts';
import { E } from './errors.ts';
import { at, baseUrl } from './http.ts';
import { seesNode } from './policy.ts';
import { S } from './states.ts';

/** Ironic's timestamps: ISO 8601 with +00:00. */
export const iso = (t: string | null | undefined): string | null => (t ? t.replace(/Z$/, '+00:00') : null);

const TRUE = ['1', 't', 'true', 'on', 'y', 'yes'];
const FALSE = ['0', 'f', 'false', 'off', 'n', 'no'];
/** oslo's bool_from_string(strict=True), Ironic's 400 otherwise. */
export function parseBool(v: unknown, name = 'value'): boolean {
  if (typeof v === 'boolean') return v;
  const s = String(v).trim().toLowerCase();
  if (TRUE.includes(s)) return true;
  if (FALSE.includes(s)) return false;
  throw E.invalid(`Unrecognized value '${String(v)}' for ${name}, acceptable values are: '0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'`);
}

export const one = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[v.length - 1] : v);

export const UUID_RE = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;
export const isUuid = (s: string): boolean => UUID_RE.test(s);
/** A uuid in its canonical (dashed, lower-case) form. */
export const canonUuid = (s: string): string => {
  const h = s.replaceAll('-', '').toLowerCase();
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
};
/** Ironic's logical names (1.10: RFC 3986 unreserved characters). */
export const NAME_RE = /^[A-Za-z0-9\-._~]{1,255}$/;

/** A node by uuid or name (404 when none, or the caller may not see it). */
export async function findNode(ctx: BmContext, ident: string, cred: Credentials | null): Promise<NodeRow> {
  const q = ctx.db.selectFrom('baremetal_nodes').selectAll();
  const row = isUuid(ident) ? await q.where('uuid', '=', canonUuid(ident)).executeTakeFirst() : await q.where('name', '=', ident).executeTakeFirst();
  if (!row || (cred && !seesNode(cred, row))) throw E.nodeNotFound(ident);
  return row;
}

export async function nodeTraits(ctx: BmContext, uuids: string[]): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  if (!uuids.length) return out;
  for (const r of await ctx.db.selectFrom('baremetal_node_traits').selectAll().where('node_uuid', 'in', uuids).orderBy('trait').execute()) {
    out.set(r.node_uuid, [...(out.get(r.node_uuid) ?? []), r.trait]);
  }
  return out;
}

/** A node history record (Ironic's node_history: failures as ERROR, state changes as INFO). */
export async function recordHistory(ctx: BmContext, node: string, e: { event: string; eventType: string; severity?: 'INFO' | 'WARNING' | 'ERROR'; user?: string | null; conductor?: string | null }): Promise<void> {
  await ctx.db.insertInto('baremetal_node_history').values({
    uuid: newUuid(), node_uuid: node, event: e.event.slice(0, 4000), event_type: e.eventType, severity: e.severity ?? 'INFO',
    user: e.user ?? null, conductor: e.conductor ?? null, created_at: nowIso(),
  }).execute();
}

/** Whether a node's unit is reserved in placement (Nova's ironic driver: not available, in maintenance, or with an instance). */
export const reservedInPlacement = (n: NodeRow): boolean =>
  n.provision_state !== S.available || !!n.maintenance || !!n.instance_uuid || !!n.retired;

/** Keeps the node's resource provider in step with its row. */
export async function syncPlacement(ctx: BmContext, uuid: string): Promise<void> {
  const n = await ctx.db.selectFrom('baremetal_nodes').selectAll().where('uuid', '=', uuid).executeTakeFirst();
  if (!n) {
    await removeBaremetalProvider(ctx.db, uuid);
    return;
  }
  const traits = (await nodeTraits(ctx, [uuid])).get(uuid) ?? [];
  await syncBaremetalProvider(ctx.db, { uuid, resourceClass: n.resource_class, reserved: reservedInPlacement(n), traits });
}

/**
 * A node's change on the resource event stream (docs/events.md): its provision
 * state as the status, power state, target and maintenance in the detail; scoped
 * to its owner's project (the admin sees all). No secret and no last_error.
 */
export function publishNode(ctx: BmContext, n: { uuid: string; name: string | null; owner: string | null; provision_state: string; target_provision_state: string | null; power_state: string | null; target_power_state?: string | null; maintenance: unknown }, action: 'created' | 'updated' | 'deleted'): void {
  ctx.publish?.({
    type: 'baremetal_node', id: n.uuid, project_id: n.owner || null, name: n.name, action,
    status: action === 'deleted' ? 'deleted' : n.provision_state,
    detail: { power_state: n.power_state, target_power_state: n.target_power_state ?? null, target_provision_state: n.target_provision_state, maintenance: !!n.maintenance },
  });
}

/** After a change to a node: its provider follows, its conductor wakes, listeners hear of it. */
export async function afterChange(ctx: BmContext, uuid: string, o: { event?: boolean; created?: boolean } = {}): Promise<void> {
  await syncPlacement(ctx, uuid).catch((err: Error) => ctx.log.warn({ err: err.message, node: uuid }, 'placement sync of a node failed'));
  const n = await ctx.db.selectFrom('baremetal_nodes').selectAll().where('uuid', '=', uuid).executeTakeFirst();
  if (!n) return;
  ctx.notify(n.conductor);
  publishNode(ctx, n, o.created ? 'created' : 'updated');
  if (o.event !== false) {
    ctx.emit({ node: n.uuid, instance_uuid: n.instance_uuid, provision_state: n.provision_state, target_provision_state: n.target_provision_state, power_state: n.power_state, last_error: n.last_error });
  }
}

export const userOf = (rc: RouteContext): string | null => rc.cred?.userId ?? null;

// ---- lists

export interface ListQuery {
  limit: number | null;
  marker: string | undefined;
  sortKey: string;
  sortDir: 'asc' | 'desc';
}

const MAX_LIMIT = 1000;

export function listQuery(rc: RouteContext, sortable: ReadonlySet<string>): ListQuery {
  const q = rc.query as Record<string, string | string[] | undefined>;
  const l = one(q.limit);
  let limit: number | null = MAX_LIMIT;
  if (l !== undefined && l !== '') {
    const n = Number(l);
    if (!Number.isInteger(n) || n < 0) throw E.invalid(`Limit must be positive integer: ${l}`);
    if (n > 0) limit = Math.min(n, MAX_LIMIT);
  }
  const sortKey = one(q.sort_key) ?? 'id';
  if (sortKey !== 'id' && !sortable.has(sortKey)) throw E.invalid(`The sort_key value ${sortKey} is an invalid field for sorting`);
  const dir = (one(q.sort_dir) ?? 'asc').toLowerCase();
  if (dir !== 'asc' && dir !== 'desc') throw E.invalid(`Invalid sort direction: ${dir}. Acceptable values are 'asc' or 'desc'`);
  return { limit, marker: one(q.marker), sortKey, sortDir: dir };
}

/**
 * One page of `items` (already filtered) by Ironic's rules: sorted on the
 * key (then creation order), after the marker, `limit` long, and the `next`
 * URL when more may follow.
 */
export function page<T extends { uuid: string; created_at: string }>(
  rc: RouteContext, items: T[], lq: ListQuery, o: { resource: string; notFound: (m: string) => Error; keyOf?: (t: T, k: string) => unknown },
): { items: T[]; next?: string } {
  const key = (t: T) => (lq.sortKey === 'id' ? t.created_at : (o.keyOf ? o.keyOf(t, lq.sortKey) : (t as Record<string, unknown>)[lq.sortKey]));
  const cmp = (a: T, b: T) => {
    const x = key(a), y = key(b);
    let c = x === y ? 0 : x === null || x === undefined ? -1 : y === null || y === undefined ? 1 : String(x) < String(y) ? -1 : 1;
    if (typeof x === 'number' && typeof y === 'number') c = x - y;
    if (c === 0) c = a.created_at === b.created_at ? (a.uuid < b.uuid ? -1 : a.uuid > b.uuid ? 1 : 0) : a.created_at < b.created_at ? -1 : 1;
    return lq.sortDir === 'asc' ? c : -c;
  };
  const sorted = [...items].sort(cmp);
  let start = 0;
  if (lq.marker) {
    const i = sorted.findIndex((t) => t.uuid === lq.marker);
    if (i < 0) throw o.notFound(lq.marker);
    start = i + 1;
  }
  const limit = lq.limit ?? sorted.length;
  const slice = sorted.slice(start, start + limit);
  if (lq.limit && slice.length === lq.limit && start + limit < sorted.length) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(rc.query as Record<string, string | string[] | undefined>)) {
      if (k === 'marker' || k === 'limit' || v === undefined) continue;
      for (const x of Array.isArray(v) ? v : [v]) params.append(k, x);
    }
    params.set('limit', String(lq.limit));
    params.set('marker', slice[slice.length - 1]!.uuid);
    return { items: slice, next: `${baseUrl(rc.req)}/v1/${o.resource}?${params.toString()}` };
  }
  return { items: slice };
}

/** The `fields` asked (1.8+), checked against what the resource has (Ironic's 400 naming the bad ones). */
export function fieldsOf(rc: RouteContext, valid: ReadonlySet<string>): string[] | null {
  const f = one((rc.query as Record<string, string | string[] | undefined>).fields);
  if (f === undefined) return null;
  if (!at(rc, '1.8')) throw E.notAcceptable();
  const fields = f.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = fields.filter((x) => !valid.has(x));
  if (bad.length) throw E.invalid(`Field(s) "${bad.join(', ')}" are not valid`);
  return fields;
}

/** Keeps only `fields` of a view (links always stay, as Ironic). */
export function pick(view: Record<string, unknown>, fields: string[] | null): Record<string, unknown> {
  if (!fields) return view;
  const out: Record<string, unknown> = {};
  for (const f of [...fields, 'links']) if (f in view) out[f] = view[f];
  return out;
}

export const traitsList = (s: string | null | undefined): string[] => parseJsonList(s);

export const reqBase = (req: FastifyRequest): string => baseUrl(req);
