// Snapshots (Cinder v3): create from an available volume (counted against
// the snapshots and gigabytes quotas, per type too), list/detail with
// filters, sort and pagination, show, update, delete, metadata, the admin
// actions os-reset_status and os-force_delete, and os-update_snapshot_status.
// As volumes, a snapshot is `creating` until its volume's backend makes it;
// one of a volume without a host is deleted at once.
import type { Kysely } from 'kysely';
import { Type } from 'typebox';
import { uuid } from '../common/ids.ts';
import { objectOf } from '../http/body.ts';
import { isAdmin } from '../http/policy.ts';
import { route, type Route, type RouteContext } from '../http/service.ts';
import type { VolumeContext } from './context.ts';
import { badRequest, invalidSnapshot, invalidVolume, notFound } from './errors.ts';
import { mv, type VolumeVersion } from './http.ts';
import { metadataOf, textOf } from './input.ts';
import { allTenants, applyFilters, applySort, one, paginate } from './list.ts';
import { checkQuota } from './quotas.ts';
import type { VolumeTables } from './schema.ts';
import { cinderTime, parseBoolean } from './view.ts';

type VDb = Kysely<VolumeTables>;
type SnapshotRow = VolumeTables['volume_snapshots'];

const SNAPSHOT_IN_USE_FLAG_MSG = "Since microversion 3.66 the 'force' flag is invalid for this request.  For backward compatability, however, when the 'force' flag is passed with a value evaluating to True, it is silently ignored.";

/** The statuses a snapshot may be deleted from without force. */
export const SNAPSHOT_DELETABLE = ['available', 'error'];
/** os-update_snapshot_status: the statuses a snapshot may go to from its current one (Cinder's snapshot_actions). */
const UPDATE_STATUS_MAP: Record<string, string[]> = { creating: ['creating', 'available', 'error'], deleting: ['deleting', 'error_deleting'] };
const SNAPSHOT_STATUSES = new Set(['creating', 'available', 'deleting', 'error', 'error_deleting', 'backing-up', 'restoring', 'unmanaging']);

function snapshotView(v: VolumeVersion, r: SnapshotRow, metadata: Record<string, string>, extended: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = {
    id: r.id, volume_id: r.volume_id, name: r.name, description: r.description, status: r.status, size: r.size,
    created_at: cinderTime(r.created_at), updated_at: cinderTime(r.updated_at), metadata,
  };
  if (extended) {
    out['os-extended-snapshot-attributes:progress'] = r.progress;
    out['os-extended-snapshot-attributes:project_id'] = r.project_id;
  }
  if (v.ge('3.14')) out.group_snapshot_id = null;
  if (v.ge('3.41')) out.user_id = r.user_id;
  if (v.ge('3.65')) out.consumes_quota = true;
  return out;
}

/** Deletes a volume's snapshots with it (cascade) or refuses: a volume with snapshots is not deleted otherwise. */
export async function snapshotsOf(db: VDb, volumeId: string): Promise<SnapshotRow[]> {
  return db.selectFrom('volume_snapshots').selectAll().where('volume_id', '=', volumeId).execute();
}

/** Removes snapshot rows and their metadata (the backend holds nothing of them). */
export async function destroySnapshots(tx: VDb, ids: string[]): Promise<void> {
  if (!ids.length) return;
  await tx.deleteFrom('volume_snapshot_metadata').where('snapshot_id', 'in', ids).execute();
  await tx.deleteFrom('volume_snapshots').where('id', 'in', ids).execute();
}

export function snapshotRoutes(ctx: VolumeContext): Route[] {
  const db = ctx.vdb;
  const now = () => new Date().toISOString();

  const metadataOfSnapshots = async (ids: string[]) => {
    const out = new Map<string, Record<string, string>>(ids.map((id) => [id, {}]));
    if (ids.length) for (const m of await db.selectFrom('volume_snapshot_metadata').selectAll().where('snapshot_id', 'in', ids).orderBy('key').execute()) out.get(m.snapshot_id)![m.key] = m.value;
    return out;
  };
  async function load(rc: RouteContext, id: string): Promise<SnapshotRow> {
    const c = rc.cred!;
    const row = await db.selectFrom('volume_snapshots').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row || (!isAdmin(c) && row.project_id !== c.projectId)) throw notFound.snapshot(id);
    return row;
  }
  const show = async (rc: RouteContext, id: string, extended = true) => {
    const row = await load(rc, id);
    return snapshotView(mv(rc), row, (await metadataOfSnapshots([row.id])).get(row.id)!, extended);
  };

  async function listed(rc: RouteContext, detail: boolean) {
    const c = rc.cred!;
    const v = mv(rc);
    const all = allTenants(rc);
    let q = db.selectFrom('volume_snapshots').innerJoin('volume_volumes', 'volume_volumes.id', 'volume_snapshots.volume_id')
      .selectAll('volume_snapshots').select('volume_volumes.availability_zone');
    if (!all) q = q.where('volume_snapshots.project_id', '=', c.projectId ?? '');
    const rows = await q.execute();
    const meta = await metadataOfSnapshots(rows.map((r) => r.id));
    const items = rows.map((r) => ({
      id: r.id, name: r.name, status: r.status, size: r.size, volume_id: r.volume_id, project_id: r.project_id,
      availability_zone: r.availability_zone, created_at: cinderTime(r.created_at), updated_at: cinderTime(r.updated_at),
      metadata: meta.get(r.id)!, consumes_quota: true, row: r,
    }));
    const filtered = applyFilters(rc.query, items, { resource: 'snapshot', admin: isAdmin(c), v });
    const sorted = applySort(rc.query, filtered);
    const { page, links } = paginate(rc.req, rc.query, sorted, { collection: 'snapshots', path: rc.req.url.split('?')[0]!.replace(/^\/volume/, ''), notFound: notFound.snapshot });
    const withCount = v.ge('3.45') && one(rc.query.with_count) !== undefined && parseBoolean('with_count', one(rc.query.with_count)!);
    return {
      snapshots: page.map((i) => snapshotView(v, i.row as SnapshotRow, i.metadata as Record<string, string>, detail)),
      ...(links ? { snapshots_links: links } : {}), ...(withCount ? { count: sorted.length } : {}),
    };
  }

  async function create(rc: RouteContext) {
    const c = rc.cred!;
    const body = objectOf(rc.body);
    const s = objectOf(body?.snapshot);
    if (!body || !s) throw badRequest(`Missing required element 'snapshot' in request body.`);
    // null passes Cinder's schema (uuid_allow_null) and is then no volume: 404
    if (s.volume_id === null) throw notFound.volume('None');
    if (typeof s.volume_id !== 'string') throw badRequest(`Invalid input for field/attribute volume_id. Value: ${JSON.stringify(s.volume_id)}. 'volume_id' is a required property`);
    const name = textOf('name', s.name) ?? textOf('display_name', s.display_name) ?? null;
    const description = textOf('description', s.description) ?? textOf('display_description', s.display_description) ?? null;
    const force = s.force === undefined || s.force === null ? null : typeof s.force === 'boolean' ? s.force : typeof s.force === 'string' ? parseBoolean('force', s.force) : undefined;
    if (force === undefined) throw badRequest(`Invalid value '${String(s.force)}' for force.`);
    // 3.66: in-use volumes are snapshotted without force; force=false is refused, force=true ignored
    const inUseAllowed = mv(rc).ge('3.66');
    if (inUseAllowed && force === false) throw badRequest(SNAPSHOT_IN_USE_FLAG_MSG);
    const metadata = s.metadata === undefined || s.metadata === null ? {} : metadataOf('metadata', s.metadata);
    const volume = await db.selectFrom('volume_volumes').selectAll().where('id', '=', s.volume_id).executeTakeFirst();
    if (!volume || (!isAdmin(c) && volume.project_id !== c.projectId)) throw notFound.volume(s.volume_id);
    if (volume.status.startsWith('maintenance')) throw invalidVolume(`Volume ${volume.id} status must not be maintenance.`);
    const allowed = force || inUseAllowed ? ['available', 'in-use'] : ['available'];
    if (!allowed.includes(volume.status)) throw invalidVolume(`Volume ${volume.id} status must be available, but current status is: ${volume.status}.`);
    const type = await db.selectFrom('volume_types').select('name').where('id', '=', volume.volume_type_id).executeTakeFirstOrThrow();
    const id = uuid();
    const t = now();
    await db.transaction().execute(async (tx) => {
      // quota first (its per-project lock before any row lock, the order every writer keeps), then the
      // volume's row, its status checked in the statement: a delete of the volume meanwhile wins, or waits for this
      await checkQuota(tx, volume.project_id, { typeName: type.name, size: 0, volumes: 0, gigabytes: volume.size, snapshots: 1 });
      const locked = await tx.updateTable('volume_volumes').set({ updated_at: t }).where('id', '=', volume.id).where('status', 'in', allowed).executeTakeFirst();
      if (Number(locked.numUpdatedRows) === 0) throw invalidVolume(`Volume ${volume.id} changed while its snapshot was asked; try again.`);
      await tx.insertInto('volume_snapshots').values({
        id, volume_id: volume.id, project_id: volume.project_id, user_id: c.userId, name, description, size: volume.size,
        status: 'creating', progress: '0%', volume_type_id: volume.volume_type_id, version: 1, created_at: t, updated_at: t,
      }).execute();
      for (const [key, value] of Object.entries(metadata)) await tx.insertInto('volume_snapshot_metadata').values({ snapshot_id: id, key, value }).execute();
    });
    return { snapshot: await show(rc, id, false) };
  }

  /** Deletes a snapshot: at once when its volume has no backend (no host), else `deleting` for the backend. */
  async function remove(row: SnapshotRow, force: boolean): Promise<void> {
    if (!force && !SNAPSHOT_DELETABLE.includes(row.status)) throw invalidSnapshot('Volume Snapshot status must be available or error and must not be part of a group.');
    const volume = await db.selectFrom('volume_volumes').select('host').where('id', '=', row.volume_id).executeTakeFirst();
    if (!volume?.host) return db.transaction().execute((tx) => destroySnapshots(tx, [row.id]));
    let q = db.updateTable('volume_snapshots').set((eb) => ({ status: 'deleting', version: eb('version', '+', 1), updated_at: now() })).where('id', '=', row.id);
    if (!force) q = q.where('status', 'in', SNAPSHOT_DELETABLE);
    const r = await q.executeTakeFirst();
    if (Number(r.numUpdatedRows) === 0) throw invalidSnapshot('Volume Snapshot status must be available or error and must not be part of a group.');
  }

  /**
   * os-update_snapshot_status (a backend's report in Cinder, open to the
   * snapshot's project): creating -> creating/available/error, deleting ->
   * deleting/error_deleting, with an optional progress 'N%'.
   */
  async function updateStatus(row: SnapshotRow, args: Record<string, unknown>): Promise<void> {
    const status = args.status;
    if (typeof status !== 'string' || !SNAPSHOT_STATUSES.has(status)) {
      throw badRequest(`Invalid input for field/attribute status. Value: ${JSON.stringify(status ?? null)}. ${status === undefined ? "'status' is a required property" : `${JSON.stringify(status)} is not one of the snapshot statuses`}`);
    }
    const progress = args.progress;
    if (progress !== undefined && progress !== null && typeof progress !== 'string') throw badRequest(`Invalid input for field/attribute progress. Value: ${JSON.stringify(progress)}. ${JSON.stringify(progress)} is not of type 'string', 'null'`);
    const allowed = UPDATE_STATUS_MAP[row.status];
    if (!allowed) throw badRequest(`Snapshot status ${row.status} not allowed for update_snapshot_status`);
    if (!allowed.includes(status)) throw badRequest(`Provided snapshot status ${status} not allowed for snapshot with status ${row.status}.`);
    const set: Partial<SnapshotRow> = { status, updated_at: now() };
    if (progress) {
      const n = /^(\d+)%$/.exec(progress);
      if (!n || Number(n[1]) > 100) throw badRequest('progress must be an integer percentage');
      set.progress = progress;
    }
    const r = await db.updateTable('volume_snapshots').set(set).where('id', '=', row.id).where('status', '=', row.status).executeTakeFirst();
    if (Number(r.numUpdatedRows) === 0) throw invalidSnapshot(`Snapshot ${row.id} changed while its status was updated; try again.`);
  }

  const metadataMap = async (id: string) => (await metadataOfSnapshots([id])).get(id)!;
  async function setMetadata(rc: RouteContext, id: string, metadata: Record<string, string>, replace: boolean) {
    const row = await load(rc, id);
    await db.transaction().execute(async (tx) => {
      if (replace) await tx.deleteFrom('volume_snapshot_metadata').where('snapshot_id', '=', row.id).execute();
      for (const [key, value] of Object.entries(metadata)) {
        await tx.deleteFrom('volume_snapshot_metadata').where('snapshot_id', '=', row.id).where('key', '=', key).execute();
        await tx.insertInto('volume_snapshot_metadata').values({ snapshot_id: row.id, key, value }).execute();
      }
      await tx.updateTable('volume_snapshots').set({ updated_at: now() }).where('id', '=', row.id).execute();
    });
    return metadataMap(row.id);
  }

  const MetaBody = Type.Object({ metadata: Type.Unknown() });
  const MetaItemBody = Type.Object({ meta: Type.Unknown() });

  return [
    route({ method: 'POST', path: '/snapshots', rule: 'volume:create_snapshot', status: 202, handler: create }),
    route({ method: 'GET', path: '/snapshots', rule: 'volume:get_all_snapshots', handler: (rc) => listed(rc, false) }),
    route({ method: 'GET', path: '/snapshots/detail', rule: 'volume:get_all_snapshots', handler: (rc) => listed(rc, true) }),
    route({ method: 'GET', path: '/snapshots/:snapshot_id', rule: 'volume:get_snapshot', handler: async (rc) => ({ snapshot: await show(rc, rc.params.snapshot_id!) }) }),
    route({
      method: 'PUT', path: '/snapshots/:snapshot_id', rule: 'volume:update_snapshot',
      async handler(rc) {
        const body = objectOf(rc.body);
        const s = objectOf(body?.snapshot);
        if (!body || !s) throw badRequest(`Missing required element 'snapshot' in request body.`);
        const allowed = new Set(['name', 'description', 'display_name', 'display_description']);
        const unknown = Object.keys(s).filter((k) => !allowed.has(k));
        if (unknown.length) throw badRequest(`Additional properties are not allowed ('${unknown.join("', '")}' ${unknown.length > 1 ? 'were' : 'was'} unexpected)`);
        if (Object.keys(s).length === 0) throw badRequest(`Invalid input for field/attribute snapshot. Value: {}. {} is not valid under any of the given schemas`);
        const row = await load(rc, rc.params.snapshot_id!);
        const set: Partial<SnapshotRow> = { updated_at: now() };
        const name = s.name !== undefined ? textOf('name', s.name) : textOf('display_name', s.display_name);
        const description = s.description !== undefined ? textOf('description', s.description) : textOf('display_description', s.display_description);
        if (name !== undefined) set.name = name;
        if (description !== undefined) set.description = description;
        await db.updateTable('volume_snapshots').set(set).where('id', '=', row.id).execute();
        return { snapshot: await show(rc, row.id, false) };
      },
    }),
    route({
      method: 'DELETE', path: '/snapshots/:snapshot_id', rule: 'volume:delete_snapshot', status: 202,
      handler: async (rc) => remove(await load(rc, rc.params.snapshot_id!), false),
    }),
    route({
      method: 'POST', path: '/snapshots/:snapshot_id/action', rule: 'volume:get_snapshot',
      async handler(rc) {
        const body = objectOf(rc.body);
        if (!body || Object.keys(body).length !== 1) throw badRequest('Malformed request body');
        const [name, raw] = Object.entries(body)[0]!;
        const args = objectOf(raw) ?? {};
        const row = await load(rc, rc.params.snapshot_id!);
        if (name === 'os-reset_status') {
          rc.enforce('volume_extension:snapshot_admin_actions:reset_status', {});
          if (typeof args.status !== 'string' || !SNAPSHOT_STATUSES.has(args.status.toLowerCase())) {
            throw badRequest(`Invalid input for field/attribute status. Value: ${String(args.status)}. '${String(args.status)}' is not a valid snapshot status.`);
          }
          await db.updateTable('volume_snapshots').set({ status: args.status.toLowerCase(), updated_at: now() }).where('id', '=', row.id).execute();
        } else if (name === 'os-force_delete') {
          rc.enforce('volume_extension:snapshot_admin_actions:force_delete', {});
          await remove(row, true);
        } else if (name === 'os-update_snapshot_status') {
          rc.enforce('snapshot_extension:snapshot_actions:update_snapshot_status', { project_id: row.project_id });
          await updateStatus(row, args);
        } else if (name === 'os-unmanage') {
          throw badRequest(`The snapshot action ${name} is not supported by this cloud yet.`);
        } else {
          throw badRequest(`There is no such action: ${name}. Verify the request body and Content-Type header and try again.`);
        }
        rc.reply.code(202);
        return undefined;
      },
    }),
    route({
      method: 'GET', path: '/snapshots/:snapshot_id/metadata', rule: 'volume:get_snapshot_metadata',
      handler: async (rc) => ({ metadata: await metadataMap((await load(rc, rc.params.snapshot_id!)).id) }),
    }),
    route({
      method: 'POST', path: '/snapshots/:snapshot_id/metadata', rule: 'volume:update_snapshot_metadata', schema: { body: MetaBody },
      handler: async (rc) => ({ metadata: await setMetadata(rc, rc.params.snapshot_id!, metadataOf('metadata', rc.body.metadata), false) }),
    }),
    route({
      method: 'PUT', path: '/snapshots/:snapshot_id/metadata', rule: 'volume:update_snapshot_metadata', schema: { body: MetaBody },
      handler: async (rc) => ({ metadata: await setMetadata(rc, rc.params.snapshot_id!, metadataOf('metadata', rc.body.metadata), true) }),
    }),
    route({
      method: 'GET', path: '/snapshots/:snapshot_id/metadata/:key', rule: 'volume:get_snapshot_metadata',
      async handler(rc) {
        const row = await load(rc, rc.params.snapshot_id!);
        const key = rc.params.key!;
        const m = await db.selectFrom('volume_snapshot_metadata').select('value').where('snapshot_id', '=', row.id).where('key', '=', key).executeTakeFirst();
        if (!m) throw notFound.snapshotMetadata(row.id, key);
        return { meta: { [key]: m.value } };
      },
    }),
    route({
      method: 'PUT', path: '/snapshots/:snapshot_id/metadata/:key', rule: 'volume:update_snapshot_metadata', schema: { body: MetaItemBody },
      async handler(rc) {
        const key = rc.params.key!;
        const meta = metadataOf('meta', rc.body.meta);
        if (Object.keys(meta).length > 1) throw badRequest('Request body contains too many items');
        if (!Object.hasOwn(meta, key)) throw badRequest('Request body and URI mismatch');
        await setMetadata(rc, rc.params.snapshot_id!, meta, false);
        return { meta };
      },
    }),
    route({
      method: 'DELETE', path: '/snapshots/:snapshot_id/metadata/:key', rule: 'volume:delete_snapshot_metadata',
      async handler(rc) {
        const row = await load(rc, rc.params.snapshot_id!);
        const key = rc.params.key!;
        const r = await db.deleteFrom('volume_snapshot_metadata').where('snapshot_id', '=', row.id).where('key', '=', key).executeTakeFirst();
        if (Number(r.numDeletedRows) === 0) throw notFound.snapshotMetadata(row.id, key);
        return undefined;
      },
    }),
  ];
}
