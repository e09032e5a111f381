// Backups (Cinder v3 /backups): full and incremental backups of a volume (or
// of one of its snapshots) into the object store, restores into a new or an
// existing volume, export and import of a backup's record, the admin actions
// os-reset_status and os-force_delete, and the `backups`/`backup_gigabytes`
// quotas (quotas.ts counts the rows).
//
// Where the bytes go (Cinder's chunked driver, cinder/backup/chunkeddriver.py,
// in its shape): a backup is objects of the container `container` (default
// `volumebackups`) of the backup's project, named
// `volume_<volume>/<time>/az_<az>_backup_<id>-<n>` (chunk n, from 00001),
// `..._metadata` (the chunk list) and `..._sha256file` (the sha256 of each
// chunk). The volume's host reads the data (the spec's `backup`, protocol.ts),
// `backupChunkSize` bytes at a time (32 MiB), and PUTs each chunk zlib-compressed with the
// sha256 of its uncompressed bytes to /agent/v1/backups/{id}/chunks/{index};
// the server inflates it and checks the hash (a chunk that does not match
// fails the backup and is never stored), then writes the object (a row of
// volume_backup_chunks, `own`); the agent that restores it checks the hash
// again. An incremental backup names its parent (the
// volume's latest available backup) and the agent skips every chunk whose
// hash equals the parent's, so `object_count` counts only the changed chunks;
// when the agent reports the backup done, the chunks it did not send are the
// parent's (rows pointing at the parent's objects), the metadata and sha256
// objects are written and the backup is `available`. A restore hands the
// target volume's host the hashes (the spec's `restore`): it GETs each chunk
// (the object of whichever backup holds it), inflates it, checks the hash and
// writes it in place.
//
// Statuses: a backup is `creating` -> `available` (or `error` with
// `fail_reason`), `restoring` while restored from, `deleting` while its
// objects go. The volume is `backing-up` (a backup of the volume itself; the
// job is kept in `backup_job`) or `restoring-backup`, back to what its
// attachments say when the agent reports (`error_restoring` for a failed
// restore). A volume created from a backup (`backup_id`, 3.47) is made blank
// with the restore job, `creating` then `restoring-backup`. A backup's
// report finishes it whatever version the volume row is at (another write
// meanwhile changes nothing of the job). A failed backup's objects are
// removed; so are those of a backup whose volume is force-deleted
// (`abandonJob`: the backup `error`). The state lives in the rows and the
// specs: an agent that crashes mid-backup is handed the hashes of the chunks
// stored already (`stored_sha256`) and sends only the rest, a server that
// restarts finishes the deletes it had begun (`resumeDeletes`).
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createInflate } from 'node:zlib';
import type { Kysely } from 'kysely';
import { Type } from 'typebox';
import { ApiError } from '../common/errors.ts';
import { uuid } from '../common/ids.ts';
import { parseJsonObject } from '../common/json.ts';
import { AGENT_RULE } from '../fleet/api.ts';
import type { ResourceError } from '../fleet/protocol.ts';
import { objectOf } from '../http/body.ts';
import type { Credentials } from '../http/auth.ts';
import { isAdmin } from '../http/policy.ts';
import { route, type Route, type RouteContext } from '../http/service.ts';
import type { ContainerInfo, ObjectStore } from '../object/service.ts';
import { settleVolume } from './attach.ts';
import type { VolumeContext } from './context.ts';
import { badRequest, invalidVolume, notFound } from './errors.ts';
import { mv, type VolumeVersion } from './http.ts';
import { metadataOf, textOf } from './input.ts';
import { allTenants, applyFilters, applySort, one, paginate } from './list.ts';
import type { VolumeBackupJob, VolumeObserved, VolumePoolStats, VolumeRestoreJob } from './protocol.ts';
import { checkQuota } from './quotas.ts';
import type { VolumeTables } from './schema.ts';
import { cinderTime, links, parseBoolean } from './view.ts';

type VDb = Kysely<VolumeTables>;
type BackupRow = VolumeTables['volume_backups'];
type VolumeRow = VolumeTables['volume_volumes'];

const GIB = 2 ** 30;
export const DEFAULT_CONTAINER = 'volumebackups';
/** What export_record names as the service that wrote the backup (Tempest checks the `cinder.backup.drivers` prefix). */
const BACKUP_SERVICE = 'cinder.backup.drivers.swift.SwiftBackupDriver';

/** What a backup keeps of its volume besides the data (in its `_metadata` object). */
interface VolumeMeta { metadata: Record<string, string>; image_metadata: Record<string, string>; bootable: boolean }

/** The backup or restore a volume row holds (`backup_job`); `live`: a forced backup of an in-use volume (read through a snapshot). */
export interface BackupJob { kind: 'backup' | 'restore'; backup_id: string; live?: boolean }

export function jobOf(row: Pick<VolumeRow, 'backup_job'>): BackupJob | null {
  if (!row.backup_job) return null;
  const j = parseJsonObject(row.backup_job);
  return { kind: j.kind === 'restore' ? 'restore' : 'backup', backup_id: String(j.backup_id), live: j.live === true };
}

const chunkCount = (b: Pick<BackupRow, 'size' | 'chunk_size'>): number => Math.ceil((b.size * GIB) / Number(b.chunk_size));
const chunkName = (b: Pick<BackupRow, 'object_prefix'>, idx: number): string => `${b.object_prefix}-${String(idx + 1).padStart(5, '0')}`;

/** What a volume's host is handed for its `backup_job`: the spec's `backup` or `restore` (protocol.ts). */
export async function jobSpecOf(db: VDb, row: VolumeRow): Promise<{ backup?: VolumeBackupJob; restore?: VolumeRestoreJob }> {
  const job = jobOf(row);
  if (!job) return {};
  const b = await db.selectFrom('volume_backups').selectAll().where('id', '=', job.backup_id).executeTakeFirst();
  if (!b) return {};
  if (job.kind === 'backup') {
    if (row.status === 'creating' || b.status !== 'creating') return {};
    const parent = b.parent_id ? await hashesOf(db, b.parent_id) : null;
    // the chunks already stored (an agent that restarted mid-backup sends only the rest); each was checked on receipt
    const stored = await db.selectFrom('volume_backup_chunks').select(['idx', 'sha256']).where('backup_id', '=', b.id).execute();
    const storedSha: Array<string | null> = Array.from({ length: stored.length ? chunkCount(b) : 0 }, () => null);
    for (const c of stored) storedSha[c.idx] = c.sha256;
    return {
      backup: {
        backup_id: b.id, chunk_size: Number(b.chunk_size), snapshot_id: b.snapshot_id,
        live: !b.snapshot_id && !!job.live, parent_sha256: parent, ...(stored.length ? { stored_sha256: storedSha } : {}),
      },
    };
  }
  // a restore into a new volume waits for the volume to be made
  if (row.status !== 'restoring-backup') return {};
  return { restore: { backup_id: b.id, chunk_size: Number(b.chunk_size), size_bytes: b.size * GIB, sha256: await hashesOf(db, b.id) } };
}

async function hashesOf(db: VDb, backupId: string): Promise<string[]> {
  const rows = await db.selectFrom('volume_backup_chunks').select(['idx', 'sha256']).where('backup_id', '=', backupId).orderBy('idx').execute();
  return rows.map((r) => r.sha256);
}

/** Gives a volume its job back: the status it had (its attachments say which), or `failed` for a failed restore. */
async function releaseVolume(tx: VDb, backup: Pick<BackupRow, 'id' | 'snapshot_id'>, failed?: string): Promise<void> {
  const t = new Date().toISOString();
  const vols = await tx.selectFrom('volume_volumes').select(['id', 'status', 'backup_job']).where('backup_job', 'is not', null).execute();
  for (const v of vols) {
    const job = jobOf(v);
    if (job?.backup_id !== backup.id) continue;
    const set: Partial<VolumeRow> = { backup_job: null, updated_at: t };
    if (failed) set.status = failed;
    else if (v.status === 'backing-up' || v.status === 'restoring-backup') set.status = 'available';
    await tx.updateTable('volume_volumes').set((eb) => ({ ...set, version: eb('version', '+', 1) })).where('id', '=', v.id).execute();
    if (!failed) await settleVolume(tx, v.id, t);
  }
  await releaseSnapshot(tx, backup.snapshot_id);
}

async function releaseSnapshot(tx: VDb, snapshotId: string | null): Promise<void> {
  if (!snapshotId) return;
  await tx.updateTable('volume_snapshots').set({ status: 'available', updated_at: new Date().toISOString() }).where('id', '=', snapshotId).where('status', '=', 'backing-up').execute();
}

/** A backup being made turned `error` with its reason; false when it was not `creating` (any more). */
async function markFailed(tx: VDb, backupId: string, reason: string): Promise<boolean> {
  const u = await tx.updateTable('volume_backups').set({ status: 'error', fail_reason: reason.slice(0, 255), updated_at: new Date().toISOString() })
    .where('id', '=', backupId).where('status', '=', 'creating').executeTakeFirst();
  return Number(u.numUpdatedRows) === 1;
}

/**
 * A volume force-deleted while it holds a backup or restore (volumes.ts, in its delete's transaction): a
 * backup being made is `error` ("deleted during the backup"), a backup being restored from is available
 * again, and the job is dropped (the volume's status is the delete's). Returns the failed backup, whose
 * objects Backups.purge removes after the commit.
 */
export async function abandonJob(tx: VDb, row: Pick<VolumeRow, 'id' | 'backup_job'>): Promise<string | null> {
  const job = jobOf(row);
  if (!job) return null;
  await tx.updateTable('volume_volumes').set({ backup_job: null }).where('id', '=', row.id).execute();
  if (job.kind === 'restore') {
    await tx.updateTable('volume_backups').set({ status: 'available', updated_at: new Date().toISOString() }).where('id', '=', job.backup_id).where('status', '=', 'restoring').execute();
    return null;
  }
  const b = await tx.selectFrom('volume_backups').select(['id', 'snapshot_id']).where('id', '=', job.backup_id).executeTakeFirst();
  if (!b) return null;
  await releaseSnapshot(tx, b.snapshot_id);
  return (await markFailed(tx, b.id, `Volume ${row.id} was deleted during the backup.`)) ? b.id : null;
}

/** A backup the caller may see (its project's; any for an admin); Cinder's 404 otherwise. */
async function visibleBackup(db: VDb, c: Credentials, id: string): Promise<BackupRow> {
  const row = await db.selectFrom('volume_backups').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row || (!isAdmin(c) && row.project_id !== c.projectId)) throw new ApiError('NotFound', `Backup ${id} could not be found.`);
  return row;
}

/**
 * A backup to restore (POST /backups/{id}/restore, or a volume created from it, `backup_id`): the caller's,
 * available, and with every chunk listed (one made available by os-reset_status before its chunks were all
 * written restores nothing short).
 */
export async function restorableBackup(db: VDb, c: Credentials, id: string): Promise<BackupRow> {
  const b = await visibleBackup(db, c, id);
  if (b.status !== 'available') throw badRequest(`Invalid backup: Backup status must be available, but it is ${b.status}.`);
  const listed = await db.selectFrom('volume_backup_chunks').select((eb) => eb.fn.countAll<string>().as('n')).where('backup_id', '=', b.id).executeTakeFirstOrThrow();
  if (Number(listed.n) !== chunkCount(b)) throw badRequest(`Invalid backup: Backup ${b.id} is incomplete (${Number(listed.n)} of ${chunkCount(b)} chunks); it cannot be restored.`);
  return b;
}

/** A volume made from backup `backupId` (volumes.ts, in the transaction that writes the volume): the backup `restoring`, the job the volume row holds. */
export async function takeForRestore(tx: VDb, backupId: string): Promise<string> {
  const u = await tx.updateTable('volume_backups').set({ status: 'restoring', updated_at: new Date().toISOString() }).where('id', '=', backupId).where('status', '=', 'available').executeTakeFirst();
  if (Number(u.numUpdatedRows) === 0) throw badRequest('Invalid backup: Backup status must be available');
  return JSON.stringify({ kind: 'restore', backup_id: backupId } satisfies BackupJob);
}

/**
 * Why a chunk as the agent sent it (zlib) does not hold what its sha256 says, or null. Inflated as a stream
 * (the hash fed a piece at a time: the event loop is never held for a whole chunk), at most `max` bytes.
 */
async function chunkFault(z: Buffer, sha: string, max: number): Promise<string | null> {
  const h = createHash('sha256');
  let n = 0;
  try {
    await pipeline(Readable.from([z]), createInflate({ chunkSize: 256 * 1024 }), async (src: AsyncIterable<Buffer>) => {
      for await (const part of src) {
        n += part.length;
        if (n > max) throw new Error(`it inflates past the chunk size (${max} bytes)`);
        h.update(part);
      }
    });
  } catch (err) {
    return `is damaged: ${(err as Error).message}`;
  }
  return h.digest('hex') === sha ? null : 'does not match its sha256';
}

/** The backup service's side of the volume service: its routes, the agent's chunk routes, and what reports do. */
export interface Backups {
  routes: Route[];
  agentRoutes: Route[];
  /** A report for a volume holding a job: finishes or fails it. Before the volume's own report is applied. */
  report(volumeId: string, version: number, observed: VolumeObserved | null, error?: ResourceError): Promise<void>;
  /** Finishes the deletes a stopped server had begun. */
  resumeDeletes(): Promise<void>;
  /** Removes the objects of a backup that failed (abandonJob's, after its transaction). */
  purge(backupId: string): Promise<void>;
}

export function backupService(ctx: VolumeContext, o: {
  objects?: ObjectStore;
  /** Cinder's volume create (volumes.ts), for a restore into a new volume. */
  makeVolume(c: NonNullable<RouteContext['cred']>, vol: Record<string, unknown>): Promise<string>;
  /** The volume hosts' pools as last heard (kinds.ts): a forced backup of an attached volume needs one that snapshots it. */
  pools?: () => VolumePoolStats[];
}): Backups {
  const db = ctx.vdb;
  const now = () => new Date().toISOString();
  const store = (): ObjectStore => {
    if (!o.objects) throw new ApiError('Unavailable', 'Service cinder-backup could not be found: this cloud has no object store.');
    return o.objects;
  };
  const containerOf = async (b: Pick<BackupRow, 'object_project_id' | 'container'>): Promise<ContainerInfo> =>
    (await store().createContainer(b.object_project_id, b.container)).container;

  const load = (rc: RouteContext, id: string): Promise<BackupRow> => visibleBackup(db, rc.cred!, id);

  async function dependents(ids: string[]): Promise<Set<string>> {
    if (!ids.length) return new Set();
    const rows = await db.selectFrom('volume_backups').select('parent_id').where('parent_id', 'in', ids).where('status', '!=', 'deleting').execute();
    return new Set(rows.map((r) => r.parent_id!));
  }

  function view(rc: RouteContext, v: VolumeVersion, b: BackupRow, dependent: boolean): Record<string, unknown> {
    const out: Record<string, unknown> = {
      id: b.id, name: b.name, description: b.description, status: b.status, fail_reason: b.fail_reason,
      availability_zone: b.availability_zone, volume_id: b.volume_id, snapshot_id: b.snapshot_id, size: b.size,
      object_count: b.object_count, container: b.container, created_at: cinderTime(b.created_at), updated_at: cinderTime(b.updated_at),
      links: links(rc.req, b.project_id, 'backups', b.id), is_incremental: !!b.is_incremental, has_dependent_backups: dependent,
      data_timestamp: cinderTime(b.data_timestamp),
    };
    if (v.ge('3.18') && isAdmin(rc.cred!)) out['os-backup-project-attr:project_id'] = b.project_id;
    if (v.ge('3.43')) out.metadata = parseJsonObject(b.metadata);
    if (v.ge('3.56')) out.user_id = b.user_id;
    if (v.ge('3.64')) out.encryption_key_id = null;
    return out;
  }
  const brief = (rc: RouteContext, v: VolumeVersion, b: BackupRow) => ({
    id: b.id, links: links(rc.req, b.project_id, 'backups', b.id), name: b.name, ...(v.ge('3.43') ? { metadata: parseJsonObject(b.metadata) } : {}),
  });

  async function listed(rc: RouteContext, detail: boolean) {
    const c = rc.cred!;
    const v = mv(rc);
    let q = db.selectFrom('volume_backups').selectAll();
    if (!allTenants(rc)) q = q.where('project_id', '=', c.projectId ?? '');
    const rows = await q.execute();
    const deps = await dependents(rows.map((r) => r.id));
    const items = rows.map((r) => ({
      id: r.id, name: r.name, status: r.status, volume_id: r.volume_id, project_id: r.project_id, size: r.size,
      availability_zone: r.availability_zone, created_at: cinderTime(r.created_at), updated_at: cinderTime(r.updated_at), row: r,
    }));
    const filtered = applyFilters(rc.query, items, { resource: 'backup', admin: isAdmin(c), v });
    const sorted = applySort(rc.query, filtered);
    const { page, links: next } = paginate(rc.req, rc.query, sorted, {
      collection: 'backups', path: rc.req.url.split('?')[0]!.replace(/^\/volume/, ''), notFound: (id) => new ApiError('NotFound', `Backup ${id} could not be found.`),
    });
    const withCount = v.ge('3.45') && one(rc.query.with_count) !== undefined && parseBoolean('with_count', one(rc.query.with_count)!);
    return {
      backups: page.map((i) => {
        const r = i.row as BackupRow;
        return detail ? view(rc, v, r, deps.has(r.id)) : { id: r.id, name: r.name, links: links(rc.req, r.project_id, 'backups', r.id) };
      }),
      ...(next ? { backups_links: next } : {}), ...(withCount ? { count: sorted.length } : {}),
    };
  }

  const boolOf = (k: string, x: unknown): boolean => {
    if (x === undefined || x === null) return false;
    if (typeof x === 'boolean') return x;
    if (typeof x === 'string') return parseBoolean(k, x);
    throw badRequest(`Invalid input for field/attribute ${k}. Value: ${JSON.stringify(x)}. ${JSON.stringify(x)} is not of type 'boolean', 'string'`);
  };

  async function create(rc: RouteContext) {
    const c = rc.cred!;
    const v = mv(rc);
    const body = objectOf(rc.body);
    const b = objectOf(body?.backup);
    if (!body || !b) throw badRequest(`Missing required element 'backup' in request body.`);
    if (typeof b.volume_id !== 'string') throw badRequest(`Invalid input for field/attribute volume_id. Value: ${JSON.stringify(b.volume_id ?? null)}. 'volume_id' is a required property`);
    const name = textOf('name', b.name) ?? null;
    const description = textOf('description', b.description) ?? null;
    const container = textOf('container', b.container) || DEFAULT_CONTAINER;
    if (container.includes('/')) throw badRequest(`Invalid input received: container ${container} may not contain '/'.`);
    const incremental = boolOf('incremental', b.incremental);
    const force = boolOf('force', b.force);
    const snapshotId = textOf('snapshot_id', b.snapshot_id) || null;
    const metadata = v.ge('3.43') && b.metadata !== undefined && b.metadata !== null ? metadataOf('metadata', b.metadata) : {};
    const az = v.ge('3.51') ? textOf('availability_zone', b.availability_zone) ?? null : null;
    if (az && az !== ctx.config.availabilityZone) throw badRequest(`Invalid input received: Service cinder-backup could not be found in availability zone ${az}.`);
    const volume = await db.selectFrom('volume_volumes').selectAll().where('id', '=', b.volume_id).executeTakeFirst();
    if (!volume || (!isAdmin(c) && volume.project_id !== c.projectId)) throw notFound.volume(b.volume_id);
    let snapshot: VolumeTables['volume_snapshots'] | undefined;
    if (snapshotId) {
      snapshot = await db.selectFrom('volume_snapshots').selectAll().where('id', '=', snapshotId).executeTakeFirst();
      if (!snapshot || snapshot.volume_id !== volume.id) throw notFound.snapshot(snapshotId);
      if (snapshot.status !== 'available') throw badRequest(`Invalid snapshot: Snapshot to be backed up must be available, but the current status is "${snapshot.status}".`);
    } else {
      if (volume.status === 'in-use' && !force) throw invalidVolume(`Volume to be backed up must be available or in-use, but the current status is "in-use".`.replace('.', ' (in-use needs force).'));
      if (!['available', 'in-use'].includes(volume.status)) throw invalidVolume(`Volume to be backed up must be available or in-use, but the current status is "${volume.status}".`);
    }
    if (!volume.host) throw invalidVolume(`Volume ${volume.id} is on no backend.`);
    if (volume.backup_job) throw invalidVolume(`Volume ${volume.id} has a backup or restore in progress.`);
    const live = !snapshot && volume.status === 'in-use';
    // an attached volume is read through a point-in-time snapshot: a pool of qcow2 chains (no reflink) takes none
    // while a server writes the volume, so the backup is refused here rather than failing after the 202
    const pool = live ? o.pools?.().find((p) => p.name === volume.host) : undefined;
    if (pool && pool.driver === 'file' && !pool.reflink) {
      throw invalidVolume(`Volume ${volume.id} is in-use on pool ${volume.host}, whose backend (qcow2 chains) cannot take a point-in-time copy of an attached volume: detach it, or back up a snapshot taken while it was detached.`);
    }
    store();
    let parent: BackupRow | undefined;
    if (incremental) {
      // Cinder's parent: the latest available backup of the volume (by data_timestamp)
      parent = await db.selectFrom('volume_backups').selectAll().where('volume_id', '=', volume.id).where('status', '=', 'available')
        .where('chunk_size', '=', ctx.config.backupChunkSize).orderBy('data_timestamp', 'desc').limit(1).executeTakeFirst();
      if (!parent) throw badRequest('Invalid backup: No backups available to do an incremental backup.');
      if (parent.size !== (snapshot?.size ?? volume.size)) throw badRequest(`Invalid backup: The parent backup ${parent.id} is of a volume of ${parent.size} GiB; the volume has ${volume.size} GiB now: make a full backup.`);
    }
    const id = uuid();
    const t = now();
    const stamp = t.replace(/[-:T]/g, '').slice(0, 14);
    const dataTimestamp = snapshot ? snapshot.created_at : t;
    const job: BackupJob = { kind: 'backup', backup_id: id, live };
    const size = snapshot?.size ?? volume.size;
    await db.transaction().execute(async (tx) => {
      await checkQuota(tx, volume.project_id, { backups: 1, backupGigabytes: size });
      const set: Partial<VolumeRow> = { backup_job: JSON.stringify(job), updated_at: t };
      if (!snapshot) set.status = 'backing-up';
      const r = await tx.updateTable('volume_volumes').set((eb) => ({ ...set, version: eb('version', '+', 1) }))
        .where('id', '=', volume.id).where('version', '=', volume.version).where('backup_job', 'is', null).executeTakeFirst();
      if (Number(r.numUpdatedRows) === 0) throw invalidVolume(`Volume ${volume.id} changed while its backup was asked; try again.`);
      await tx.insertInto('volume_backups').values({
        id, project_id: volume.project_id, user_id: c.userId, volume_id: volume.id, snapshot_id: snapshotId, name, description,
        status: 'creating', fail_reason: null, container, availability_zone: volume.availability_zone, size, chunk_size: ctx.config.backupChunkSize,
        object_count: 0, object_prefix: `volume_${volume.id}/${stamp}/az_${volume.availability_zone}_backup_${id}`, object_project_id: volume.project_id,
        is_incremental: parent ? 1 : 0, parent_id: parent?.id ?? null, metadata: JSON.stringify(metadata),
        data_timestamp: dataTimestamp, created_at: t, updated_at: t,
      }).execute();
      if (snapshot) await tx.updateTable('volume_snapshots').set({ status: 'backing-up', updated_at: t }).where('id', '=', snapshot.id).execute();
    });
    await containerOf({ object_project_id: volume.project_id, container });
    const row = await db.selectFrom('volume_backups').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    return { backup: brief(rc, v, row) };
  }

  /**
   * Removes the objects a backup wrote (its chunks, and its metadata objects unless another record shares its
   * prefix), keeping those another backup still lists, then its chunk rows.
   */
  async function dropObjects(b: BackupRow): Promise<void> {
    const own = (await db.selectFrom('volume_backup_chunks').select('object').where('backup_id', '=', b.id).where('own', '=', 1).execute()).map((r) => r.object);
    // objects another backup still lists (an imported record of the same backup, an incremental's parent chunks) stay
    const kept = new Set<string>();
    for (let i = 0; i < own.length; i += 500) {
      const rows = await db.selectFrom('volume_backup_chunks').select('object').where('backup_id', '!=', b.id).where('object', 'in', own.slice(i, i + 500)).execute();
      for (const r of rows) kept.add(r.object);
    }
    const prefixShared = await db.selectFrom('volume_backups').select('id').where('id', '!=', b.id).where('object_project_id', '=', b.object_project_id)
      .where('container', '=', b.container).where('object_prefix', '=', b.object_prefix).executeTakeFirst();
    const c = await store().getContainer(b.object_project_id, b.container);
    if (c) {
      for (const name of [...own.filter((o) => !kept.has(o)), ...(prefixShared ? [] : [`${b.object_prefix}_metadata`, `${b.object_prefix}_sha256file`])]) await store().deleteObject(c, name);
    }
    await db.deleteFrom('volume_backup_chunks').where('backup_id', '=', b.id).execute();
  }

  /** The objects of a backup, then its rows; `error_deleting` when the object store refuses. */
  async function reap(b: BackupRow): Promise<void> {
    try {
      await dropObjects(b);
      await db.deleteFrom('volume_backups').where('id', '=', b.id).where('status', '=', 'deleting').execute();
      ctx.log.info({ backup: b.id }, 'backup deleted');
    } catch (err) {
      ctx.log.warn({ backup: b.id, err: (err as Error).message }, 'backup delete failed');
      await db.updateTable('volume_backups').set({ status: 'error_deleting', updated_at: now() }).where('id', '=', b.id).execute().catch(() => undefined);
    }
  }

  async function remove(b: BackupRow, force: boolean): Promise<void> {
    if (!force && !['available', 'error'].includes(b.status)) throw badRequest('Invalid backup: Backup status must be available or error');
    if (force && ['deleting', 'restoring'].includes(b.status)) throw badRequest(`Invalid backup: Backup status must not be ${b.status} to force delete.`);
    if ((await dependents([b.id])).size) throw badRequest('Invalid backup: Incremental backups exist for this backup.');
    await db.transaction().execute(async (tx) => {
      const r = await tx.updateTable('volume_backups').set({ status: 'deleting', updated_at: now() }).where('id', '=', b.id).where('status', '=', b.status).executeTakeFirst();
      if (Number(r.numUpdatedRows) === 0) throw badRequest(`Invalid backup: Backup ${b.id} changed while its delete was asked; try again.`);
      if (b.status === 'creating') await releaseVolume(tx, b);
    });
    void reap({ ...b, status: 'deleting' });
  }

  async function restore(rc: RouteContext) {
    const c = rc.cred!;
    const body = objectOf(rc.body);
    const r = objectOf(body?.restore);
    if (!body || !r) throw badRequest(`Missing required element 'restore' in request body.`);
    const volumeId = textOf('volume_id', r.volume_id) || null;
    const name = textOf('name', r.name) ?? null;
    const b = await restorableBackup(db, c, rc.params.backup_id!);
    let target: VolumeRow;
    if (volumeId) {
      const v = await db.selectFrom('volume_volumes').selectAll().where('id', '=', volumeId).executeTakeFirst();
      if (!v || (!isAdmin(c) && v.project_id !== c.projectId)) throw notFound.volume(volumeId);
      // an available volume whose snapshot is being backed up holds that job: a restore would overwrite it
      if (v.status !== 'available' || v.backup_job) throw invalidVolume(`Volume to be restored to must be available`);
      if (v.size < b.size) throw invalidVolume(`volume size ${v.size} is too small to restore backup of size ${b.size}.`);
      if (!v.host) throw invalidVolume(`Volume ${v.id} is on no backend.`);
      await db.transaction().execute(async (tx) => {
        const job = await takeForRestore(tx, b.id);
        const w = await tx.updateTable('volume_volumes').set((eb) => ({ status: 'restoring-backup', backup_job: job, version: eb('version', '+', 1), updated_at: now() }))
          .where('id', '=', v.id).where('version', '=', v.version).where('status', '=', 'available').where('backup_job', 'is', null).executeTakeFirst();
        if (Number(w.numUpdatedRows) === 0) throw invalidVolume(`Volume ${v.id} changed while the restore was asked; try again.`);
      });
      target = v;
    } else {
      // Cinder's restore into a new volume: a volume made from the backup (its size, the default type, the caller's project)
      const id = await o.makeVolume(c, { size: b.size, name: name ?? `restore_backup_${b.id}`, description: `auto-created_from_restore_from_backup`, backup_id: b.id });
      target = await db.selectFrom('volume_volumes').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    }
    rc.reply.code(202);
    return { restore: { backup_id: b.id, volume_id: target.id, volume_name: target.name ?? '' } };
  }

  /** export_record: the backup's row and its chunk list, base64 JSON (Cinder's backup_url is its serialized record). */
  async function exportRecord(rc: RouteContext) {
    const b = await load(rc, rc.params.backup_id!);
    if (b.status !== 'available') throw badRequest('Invalid backup: Backup status must be available and not restoring.');
    const chunks = await db.selectFrom('volume_backup_chunks').select(['idx', 'object', 'sha256', 'length']).where('backup_id', '=', b.id).orderBy('idx').execute();
    const record = { ...b, chunk_size: Number(b.chunk_size), chunks: chunks.map((x) => ({ ...x, length: Number(x.length) })) };
    return { 'backup-record': { backup_service: BACKUP_SERVICE, backup_url: Buffer.from(JSON.stringify(record)).toString('base64') } };
  }

  async function importRecord(rc: RouteContext) {
    const body = objectOf(rc.body);
    const r = objectOf(body?.['backup-record']);
    if (!body || !r) throw badRequest(`Missing required element 'backup-record' in request body.`);
    if (typeof r.backup_service !== 'string' || typeof r.backup_url !== 'string') throw badRequest('Incorrect request body format: backup_service and backup_url are required strings.');
    if (r.backup_service !== BACKUP_SERVICE) throw new ApiError('NotFound', `Service ${r.backup_service} could not be found.`);
    let rec: Record<string, unknown>;
    try {
      rec = JSON.parse(Buffer.from(r.backup_url, 'base64').toString('utf8')) as Record<string, unknown>;
      if (!rec || typeof rec !== 'object' || Array.isArray(rec)) throw new Error('not an object');
    } catch {
      throw badRequest('Invalid backup: Can\'t parse backup record.');
    }
    const str = (k: string) => (typeof rec[k] === 'string' ? rec[k] as string : null);
    const id = str('id'), projectId = str('project_id'), prefix = str('object_prefix'), container = str('container'), volumeId = str('volume_id');
    const size = rec.size, chunkSize = rec.chunk_size, chunks = rec.chunks;
    if (!id || !projectId || !prefix || !container || !volumeId || typeof size !== 'number' || typeof chunkSize !== 'number' || !Number.isInteger(size) || !Number.isInteger(chunkSize) || chunkSize <= 0 || !Array.isArray(chunks)) {
      throw badRequest('Invalid backup: Can\'t parse backup record.');
    }
    const list = chunks.map((x) => objectOf(x));
    if (list.some((x) => !x || typeof x.idx !== 'number' || typeof x.object !== 'string' || typeof x.sha256 !== 'string' || typeof x.length !== 'number') || list.length !== Math.ceil((size * GIB) / chunkSize)) {
      throw badRequest('Invalid backup: Can\'t parse backup record.');
    }
    if (await db.selectFrom('volume_backups').select('id').where('id', '=', id).executeTakeFirst()) throw badRequest(`Invalid backup: Backup already exists in database.`);
    const objectProject = str('object_project_id') ?? projectId;
    const c = await store().getContainer(objectProject, container);
    if (!c || !(await store().headObject(c, `${prefix}_metadata`))) throw badRequest(`Invalid backup: The backup's objects are not in container ${container}.`);
    const t = now();
    await db.transaction().execute(async (tx) => {
      await tx.insertInto('volume_backups').values({
        // the importer's, as Cinder's import_record (its objects stay where they are)
        id, project_id: rc.cred!.projectId ?? projectId, user_id: rc.cred!.userId, object_project_id: objectProject, volume_id: volumeId, snapshot_id: str('snapshot_id'),
        name: str('name'), description: str('description'), status: 'available', fail_reason: null, container,
        availability_zone: str('availability_zone') ?? ctx.config.availabilityZone, size, chunk_size: chunkSize,
        object_count: typeof rec.object_count === 'number' ? rec.object_count : 0, object_prefix: prefix,
        // imported alone: its chunks are all listed, whoever wrote them
        is_incremental: 0, parent_id: null, metadata: typeof rec.metadata === 'string' ? rec.metadata : '{}',
        data_timestamp: str('data_timestamp') ?? t, created_at: t, updated_at: t,
      }).execute();
      for (const x of list) await tx.insertInto('volume_backup_chunks').values({ backup_id: id, idx: x!.idx as number, object: x!.object as string, sha256: x!.sha256 as string, length: x!.length as number, own: 1 }).execute();
    });
    const row = await db.selectFrom('volume_backups').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    rc.reply.code(201);
    return { backup: { id: row.id, links: links(rc.req, row.project_id, 'backups', row.id), name: row.name } };
  }

  /**
   * The agent's chunk of a backup in `creating` (zlib, with the sha256 of its uncompressed bytes), checked, then
   * written to the object store. A chunk that does not hold what its hash says fails the backup (400); one
   * that arrives after the backup stopped being made is refused (409), its object removed if the backup's are.
   */
  async function putChunk(rc: RouteContext) {
    const b = await db.selectFrom('volume_backups').selectAll().where('id', '=', rc.params.backup_id!).executeTakeFirst();
    if (!b) throw new ApiError('NotFound', `Backup ${rc.params.backup_id} could not be found.`);
    if (b.status !== 'creating') throw new ApiError('Conflict', `Backup ${b.id} is ${b.status}, not creating.`);
    const idx = Number(rc.params.index);
    if (!/^\d+$/.test(rc.params.index!) || idx >= chunkCount(b)) throw new ApiError('BadRequest', `Backup ${b.id} has no chunk ${rc.params.index}.`);
    const sha = String(rc.req.headers['x-stratus-sha256'] ?? '');
    if (!/^[0-9a-f]{64}$/.test(sha)) throw new ApiError('BadRequest', 'X-Stratus-Sha256: the sha256 (hex) of the uncompressed chunk is required.');
    const data = await readBody(rc.body, Number(b.chunk_size) + 1024 * 1024);
    const fault = await chunkFault(data, sha, Number(b.chunk_size));
    if (fault) {
      await failBackup(b, `Chunk ${idx} as sent ${fault}.`);
      throw new ApiError('BadRequest', `Chunk ${idx} of backup ${b.id} ${fault}: the backup failed.`);
    }
    const name = chunkName(b, idx);
    const c = await containerOf(b);
    await store().putObject(c, name, Readable.from([data]), { size: data.length, contentType: 'application/octet-stream' });
    // listed only while the backup is still being made (the row locked: a failure or delete meanwhile waits or wins)
    const listed = await db.transaction().execute(async (tx) => {
      const u = await tx.updateTable('volume_backups').set({ updated_at: now() }).where('id', '=', b.id).where('status', '=', 'creating').executeTakeFirst();
      if (Number(u.numUpdatedRows) === 0) return false;
      await tx.deleteFrom('volume_backup_chunks').where('backup_id', '=', b.id).where('idx', '=', idx).execute();
      await tx.insertInto('volume_backup_chunks').values({ backup_id: b.id, idx, object: name, sha256: sha, length: data.length, own: 1 }).execute();
      return true;
    });
    if (!listed) {
      const cur = await db.selectFrom('volume_backups').select('status').where('id', '=', b.id).executeTakeFirst();
      // failed or deleted meanwhile: its objects go (this one may have come after they went)
      if (!cur || ['error', 'deleting', 'error_deleting'].includes(cur.status)) await store().deleteObject(c, name);
      throw new ApiError('Conflict', `Backup ${b.id} is ${cur?.status ?? 'deleted'}, not creating.`);
    }
    rc.reply.code(204);
  }

  /** A chunk of a backup being restored (compressed, as stored): the object of whichever backup holds it. */
  async function getChunk(rc: RouteContext) {
    const b = await db.selectFrom('volume_backups').selectAll().where('id', '=', rc.params.backup_id!).executeTakeFirst();
    if (!b) throw new ApiError('NotFound', `Backup ${rc.params.backup_id} could not be found.`);
    if (b.status !== 'restoring') throw new ApiError('Conflict', `Backup ${b.id} is ${b.status}, not restoring.`);
    const idx = Number(rc.params.index);
    const ch = /^\d+$/.test(rc.params.index!) ? await db.selectFrom('volume_backup_chunks').selectAll().where('backup_id', '=', b.id).where('idx', '=', idx).executeTakeFirst() : undefined;
    if (!ch) throw new ApiError('NotFound', `Backup ${b.id} has no chunk ${rc.params.index}.`);
    const c = await store().getContainer(b.object_project_id, b.container);
    const obj = c ? await store().openObject(c, ch.object) : null;
    if (!obj) throw new ApiError('NotFound', `The object ${ch.object} of backup ${b.id} is missing from container ${b.container}.`);
    rc.reply.header('content-type', 'application/octet-stream');
    rc.reply.header('content-length', String(obj.object.size));
    rc.reply.header('x-stratus-sha256', ch.sha256);
    return rc.reply.send(obj.stream);
  }

  /** The agent sent every changed chunk: the rest are the parent's, the metadata objects are written, the backup is available. */
  async function finishBackup(volumeId: string, b: BackupRow): Promise<void> {
    const n = chunkCount(b);
    const own = await db.selectFrom('volume_backup_chunks').selectAll().where('backup_id', '=', b.id).execute();
    const byIdx = new Map(own.map((r) => [r.idx, r]));
    const inherited = b.parent_id ? await db.selectFrom('volume_backup_chunks').selectAll().where('backup_id', '=', b.parent_id).execute() : [];
    const parentBy = new Map(inherited.map((r) => [r.idx, r]));
    const chunks: Array<{ idx: number; object: string; sha256: string; length: number; own: number }> = [];
    for (let i = 0; i < n; i++) {
      const mine = byIdx.get(i);
      const from = mine ?? parentBy.get(i);
      if (!from) return failBackup(b, `Chunk ${i} was neither sent nor in the parent backup.`);
      chunks.push({ idx: i, object: from.object, sha256: from.sha256, length: Number(from.length), own: mine ? 1 : 0 });
    }
    const c = await containerOf(b);
    // the volume's own metadata, bootable flag and image metadata go with the backup (Cinder's volume_meta), for a restore to apply
    const vmeta = await db.selectFrom('volume_metadata').select(['key', 'value']).where('volume_id', '=', b.volume_id).execute();
    const imeta = await db.selectFrom('volume_image_metadata').select(['key', 'value']).where('volume_id', '=', b.volume_id).execute();
    const vrow = await db.selectFrom('volume_volumes').select('bootable').where('id', '=', b.volume_id).executeTakeFirst();
    const volumeMeta: VolumeMeta = {
      metadata: Object.fromEntries(vmeta.map((m) => [m.key, m.value])), image_metadata: Object.fromEntries(imeta.map((m) => [m.key, m.value])), bootable: !!vrow?.bootable,
    };
    const meta = { version: '1.0.0', backup_id: b.id, volume_meta: volumeMeta, volume_id: b.volume_id, backup_name: b.name, backup_description: b.description, created_at: b.created_at, parent_id: b.parent_id, chunk_size: Number(b.chunk_size), compression: 'zlib', objects: chunks.map(({ own: _, ...x }) => x) };
    await store().putObject(c, `${b.object_prefix}_metadata`, Readable.from([Buffer.from(JSON.stringify(meta))]), { contentType: 'application/json' });
    const shaFile = { backup_id: b.id, volume_id: b.volume_id, chunk_size: Number(b.chunk_size), sha256s: chunks.map((x) => x.sha256) };
    await store().putObject(c, `${b.object_prefix}_sha256file`, Readable.from([Buffer.from(JSON.stringify(shaFile))]), { contentType: 'application/json' });
    await db.transaction().execute(async (tx) => {
      const u = await tx.updateTable('volume_backups').set({ status: 'available', object_count: own.length, updated_at: now() }).where('id', '=', b.id).where('status', '=', 'creating').executeTakeFirst();
      if (Number(u.numUpdatedRows) === 1) {
        for (const x of chunks) if (!x.own) await tx.insertInto('volume_backup_chunks').values({ backup_id: b.id, ...x }).execute();
      }
      // whatever version the volume is at now (a write meanwhile bumped it): the job is done
      await releaseVolume(tx, b);
    });
    ctx.log.info({ backup: b.id, volume: volumeId, objects: own.length, chunks: n }, 'backup made');
  }

  /** The volume metadata a backup's `_metadata` object keeps; null when it has none. */
  async function volumeMetaOf(b: BackupRow): Promise<VolumeMeta | null> {
    const c = await store().getContainer(b.object_project_id, b.container);
    const obj = c ? await store().openObject(c, `${b.object_prefix}_metadata`) : null;
    if (!obj) return null;
    const text = (await readBody(obj.stream, 64 * 1024 * 1024)).toString('utf8');
    const m = objectOf(JSON.parse(text) as unknown)?.volume_meta;
    const vm = objectOf(m);
    if (!vm) return null;
    const strings = (x: unknown): Record<string, string> => Object.fromEntries(Object.entries(objectOf(x) ?? {}).filter(([, v]) => typeof v === 'string') as Array<[string, string]>);
    return { metadata: strings(vm.metadata), image_metadata: strings(vm.image_metadata), bootable: vm.bootable === true };
  }

  /** A restore's target gets the backed-up volume's metadata (keys merged), image metadata and bootable flag, as Cinder's restore does. */
  async function applyVolumeMeta(tx: VDb, volumeId: string, m: VolumeMeta): Promise<void> {
    for (const [key, value] of Object.entries(m.metadata)) {
      await tx.deleteFrom('volume_metadata').where('volume_id', '=', volumeId).where('key', '=', key).execute();
      await tx.insertInto('volume_metadata').values({ volume_id: volumeId, key, value }).execute();
    }
    for (const [key, value] of Object.entries(m.image_metadata)) {
      await tx.deleteFrom('volume_image_metadata').where('volume_id', '=', volumeId).where('key', '=', key).execute();
      await tx.insertInto('volume_image_metadata').values({ volume_id: volumeId, key, value }).execute();
    }
    if (m.bootable) await tx.updateTable('volume_volumes').set({ bootable: 1 }).where('id', '=', volumeId).execute();
  }

  /** A backup that will not be finished: `error` with its reason, its volume given back, the objects it had written removed. */
  async function failBackup(b: BackupRow, reason: string): Promise<void> {
    const failed = await db.transaction().execute(async (tx) => {
      const f = await markFailed(tx, b.id, reason);
      await releaseVolume(tx, b);
      return f;
    });
    if (!failed) return;
    ctx.log.warn({ backup: b.id, reason }, 'backup failed');
    await purge(b.id);
  }

  /** The objects a failed backup had written, and its chunk rows (the row stays, `error` with its reason). */
  async function purge(backupId: string): Promise<void> {
    const b = await db.selectFrom('volume_backups').selectAll().where('id', '=', backupId).executeTakeFirst();
    if (b?.status !== 'error') return;
    await dropObjects(b).catch((err: Error) => ctx.log.warn({ backup: b.id, err: err.message }, 'removing a failed backup\'s objects failed'));
  }

  async function report(volumeId: string, version: number, observed: VolumeObserved | null, error?: ResourceError): Promise<void> {
    const row = await db.selectFrom('volume_volumes').selectAll().where('id', '=', volumeId).executeTakeFirst();
    if (!row) return;
    const job = jobOf(row);
    if (!job) return;
    const b = await db.selectFrom('volume_backups').selectAll().where('id', '=', job.backup_id).executeTakeFirst();
    if (job.kind === 'backup') {
      // a job whose backup is gone or no longer being made holds the volume for nothing: given back
      if (!b || b.status !== 'creating') return db.transaction().execute((tx) => releaseVolume(tx, b ?? { id: job.backup_id, snapshot_id: null }));
      // every chunk sent, for whichever version (another write to the volume row meanwhile changes nothing of the job's)
      if (observed?.backed_up === job.backup_id) return finishBackup(volumeId, b);
      if (error && row.version === version) return failBackup(b, error.message);
      return;
    }
    if (row.version !== version) return;
    // a restore: into a new volume whose create failed (the volume's own report makes it error), or done, or failed
    const backBackup = (tx: VDb) => tx.updateTable('volume_backups').set({ status: 'available', updated_at: now() }).where('id', '=', job.backup_id).where('status', '=', 'restoring').execute();
    if (row.status === 'creating') {
      if (error) await db.transaction().execute(async (tx) => { await backBackup(tx); await tx.updateTable('volume_volumes').set({ backup_job: null }).where('id', '=', volumeId).execute(); });
      return;
    }
    if (row.status !== 'restoring-backup') return;
    if (error) {
      await db.transaction().execute(async (tx) => { await backBackup(tx); await releaseVolume(tx, { id: job.backup_id, snapshot_id: null }, 'error_restoring'); });
      ctx.log.warn({ backup: job.backup_id, volume: volumeId, err: error.message }, 'restore failed');
    } else if (observed?.restored === job.backup_id) {
      const meta = b ? await volumeMetaOf(b).catch((err: Error) => { ctx.log.warn({ backup: b.id, err: err.message }, 'reading a backup\'s metadata object failed'); return null; }) : null;
      await db.transaction().execute(async (tx) => {
        if (meta) await applyVolumeMeta(tx, volumeId, meta);
        await backBackup(tx);
        await releaseVolume(tx, { id: job.backup_id, snapshot_id: null });
      });
      ctx.log.info({ backup: job.backup_id, volume: volumeId }, 'backup restored');
    }
  }

  const MetaBody = Type.Object({ backup: Type.Unknown() });
  const routes: Route[] = [
    route({ method: 'POST', path: '/backups', rule: 'backup:create', status: 202, handler: create }),
    route({ method: 'GET', path: '/backups', rule: 'backup:get_all', handler: (rc) => listed(rc, false) }),
    route({ method: 'GET', path: '/backups/detail', rule: 'backup:get_all', handler: (rc) => listed(rc, true) }),
    route({
      method: 'POST', path: '/backups/import_record', rule: 'backup:backup-import', handler: importRecord,
    }),
    route({
      method: 'GET', path: '/backups/:backup_id', rule: 'backup:get',
      async handler(rc) {
        const b = await load(rc, rc.params.backup_id!);
        return { backup: view(rc, mv(rc), b, (await dependents([b.id])).size > 0) };
      },
    }),
    route({
      method: 'PUT', path: '/backups/:backup_id', rule: 'backup:update', schema: { body: MetaBody }, versions: { min: '3.9' },
      async handler(rc) {
        const v = mv(rc);
        const u = objectOf(rc.body.backup);
        if (!u) throw badRequest(`Missing required element 'backup' in request body.`);
        const allowed = new Set(['name', 'description', ...(v.ge('3.43') ? ['metadata'] : [])]);
        const unknown = Object.keys(u).filter((k) => !allowed.has(k));
        if (unknown.length) throw badRequest(`Additional properties are not allowed ('${unknown.join("', '")}' ${unknown.length > 1 ? 'were' : 'was'} unexpected)`);
        const b = await load(rc, rc.params.backup_id!);
        const set: Partial<BackupRow> = { updated_at: now() };
        const name = textOf('name', u.name), description = textOf('description', u.description);
        if (name !== undefined) set.name = name;
        if (description !== undefined) set.description = description;
        if (u.metadata !== undefined) set.metadata = JSON.stringify(u.metadata === null ? {} : metadataOf('metadata', u.metadata));
        await db.updateTable('volume_backups').set(set).where('id', '=', b.id).execute();
        return { backup: brief(rc, v, await load(rc, b.id)) };
      },
    }),
    route({
      method: 'DELETE', path: '/backups/:backup_id', rule: 'backup:delete', status: 202,
      handler: async (rc) => remove(await load(rc, rc.params.backup_id!), false),
    }),
    route({ method: 'POST', path: '/backups/:backup_id/restore', rule: 'backup:restore', status: 202, handler: restore }),
    route({ method: 'GET', path: '/backups/:backup_id/export_record', rule: 'backup:export-import', handler: exportRecord }),
    route({
      method: 'POST', path: '/backups/:backup_id/action', rule: 'backup:get',
      async handler(rc) {
        const body = objectOf(rc.body);
        if (!body || Object.keys(body).length !== 1) throw badRequest('Malformed request body');
        const [name, raw] = Object.entries(body)[0]!;
        const args = objectOf(raw) ?? {};
        const b = await load(rc, rc.params.backup_id!);
        if (name === 'os-reset_status') {
          rc.enforce('volume_extension:backup_admin_actions:reset_status', {});
          const status = typeof args.status === 'string' ? args.status.toLowerCase() : '';
          if (!['available', 'error'].includes(status)) throw badRequest(`Invalid input for field/attribute status. Value: ${String(args.status)}. '${String(args.status)}' is not one of ['available', 'error']`);
          await db.transaction().execute(async (tx) => {
            await tx.updateTable('volume_backups').set({ status, updated_at: now() }).where('id', '=', b.id).execute();
            // a backup reset while the volume waits on it: the volume is given back
            if (b.status === 'creating' || b.status === 'restoring') await releaseVolume(tx, b);
          });
        } else if (name === 'os-force_delete') {
          rc.enforce('volume_extension:backup_admin_actions:force_delete', {});
          await remove(b, true);
        } else {
          throw badRequest(`There is no such action: ${name}. Verify the request body and Content-Type header and try again.`);
        }
        rc.reply.code(202);
        return undefined;
      },
    }),
  ];
  const agentRoutes: Route[] = [
    { method: 'PUT', path: '/v1/backups/:backup_id/chunks/:index', rule: AGENT_RULE, handler: putChunk },
    { method: 'GET', path: '/v1/backups/:backup_id/chunks/:index', rule: AGENT_RULE, handler: getChunk },
  ];
  return {
    routes, agentRoutes, report, purge,
    async resumeDeletes() {
      for (const b of await db.selectFrom('volume_backups').selectAll().where('status', '=', 'deleting').execute()) await reap(b);
    },
  };
}

/** A request body (a stream for application/octet-stream, or a Buffer) read whole, at most `max` bytes. */
async function readBody(body: unknown, max: number): Promise<Buffer> {
  if (Buffer.isBuffer(body)) {
    if (body.length > max) throw new ApiError('PayloadTooLarge', `A chunk is at most ${max} bytes.`);
    return body;
  }
  const s = body as NodeJS.ReadableStream | undefined;
  if (!s || typeof (s as { pipe?: unknown }).pipe !== 'function') throw new ApiError('BadRequest', 'Send the chunk as application/octet-stream.');
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of s as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > max) throw new ApiError('PayloadTooLarge', `A chunk is at most ${max} bytes.`);
    parts.push(c);
  }
  return Buffer.concat(parts);
}
