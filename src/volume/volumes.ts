// Volumes (Cinder v3): create, list/detail/summary, show, update, delete,
// metadata, the volume actions this cloud serves, availability zones and
// resource filters. The API records intent: a new volume is `creating` with
// no host until a volume backend takes it (protocol.ts; none exists yet, so
// volumes stay `creating` until an admin resets their status); an extend is
// `extending` with its size asked for, counted by quota at once.
import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import { Type } from 'typebox';
import { ApiError } from '../common/errors.ts';
import { uuid } from '../common/ids.ts';
import { objectOf } from '../http/body.ts';
import { isAdmin } from '../http/policy.ts';
import type { Credentials } from '../http/auth.ts';
import { route, type Route, type RouteContext } from '../http/service.ts';
import type { VolumeContext } from './context.ts';
import { abandonJob, restorableBackup, takeForRestore } from './backups.ts';
import { badRequest, invalidInput, invalidSnapshot, invalidVolume, notFound, policyDenied } from './errors.ts';
import { mv, since } from './http.ts';
import { parseVolumeHost } from './protocol.ts';
import { encryptionOf } from './encryption.ts';
import type { ImageRecord } from '../image/service.ts';
import { imageMetadataOf, uploadAction } from './images.ts';

const GIB = 2 ** 30;

/** A type with encryption specs makes no volume: no key manager serves volume keys here. */
const ENCRYPTED_TYPE = (name: string) => `Volume type ${name} has encryption specs: encrypted volumes are not supported by this cloud yet (no key manager).`;
import { allTenants, applyFilters, applySort, one, paginate, RESOURCE_FILTERS } from './list.ts';
import { metadataOf, sizeOf, textOf } from './input.ts';
import { ATTACH_ACTIONS, attachAction, attachmentsOf, dropAttachmentsOf } from './attach.ts';
import { checkQuota } from './quotas.ts';
import { destroySnapshots, SNAPSHOT_DELETABLE, snapshotsOf } from './snapshots.ts';
import { dropTransfersOf } from './transfers.ts';
import type { VolumeTables } from './schema.ts';
import { defaultTypeFor, findType, specTrue, typeSpecs } from './types.ts';
import { cinderTime, parseBoolean, summaryView, volumeView, type VolumeFacts, type VolumeRow } from './view.ts';

type VDb = Kysely<VolumeTables>;

/** The statuses a volume may be deleted from without force (Cinder's volume API). */
const DELETABLE = ['available', 'error', 'error_restoring', 'error_extending', 'error_managing'];
const DELETE_REFUSED = 'Volume status must be available or error or error_restoring or error_extending or error_managing and must not be migrating, attached, belong to a group, have snapshots, awaiting a transfer, or be disassociated from snapshots after volume transfer.';
/** The statuses os-reset_status accepts (Cinder's volume_status format). */
const RESET_STATUSES = new Set([
  'creating', 'available', 'deleting', 'error', 'error_deleting', 'error_managing', 'managing', 'attaching', 'in-use', 'detaching',
  'maintenance', 'restoring-backup', 'error_restoring', 'reserved', 'awaiting-transfer', 'backing-up', 'error_backing-up',
  'error_extending', 'downloading', 'uploading', 'retyping', 'extending',
]);
/** Volume actions Cinder has that this cloud does not serve yet: a clear 400 rather than a silent no-op. */
const NOT_YET = new Set([
  'os-initialize_connection', 'os-terminate_connection', 'os-migrate_volume', 'os-migrate_volume_completion',
  'os-force_detach', 'os-unmanage', 'revert',
  'os-reimage', 'os-extend_volume_completion', 'os-reset_status_snapshot',
]);

const CREATE_FIELDS = new Set([
  'name', 'description', 'display_name', 'display_description', 'volume_type', 'metadata', 'snapshot_id', 'source_volid',
  'consistencygroup_id', 'size', 'availability_zone', 'multiattach', 'image_id', 'imageRef', 'group_id', 'backup_id',
]);

/**
 * Cinder's volume create from its body's fields (`volume`), the caller's
 * project: the source (snapshot, volume, image) and the type checked, quota
 * taken, the row `creating` for the scheduler. Returns its id. The route's
 * create and compute's volumes made for a server (service.ts ServerVolumes)
 * both come here.
 */
export function volumeMaker(ctx: VolumeContext): (c: Credentials, vol: Record<string, unknown>) => Promise<string> {
  const db = ctx.vdb;
  const now = () => new Date().toISOString();
  /**
   * The image a volume is made from (imageRef): visible to the caller, active, in a format the backends
   * convert (raw or qcow2, container bare), as Cinder's create flow checks it. `needGib`: the size it needs.
   */
  async function imageToVolume(cred: Credentials, ref: string): Promise<{ record: ImageRecord; needGib: number }> {
    if (!ctx.images) throw invalidInput('Creating a volume from an image (imageRef) is not supported by this cloud: no image service.');
    const img = await ctx.images.getImage(ref);
    if (!img || img.deleted_at || !ctx.images.canSee(cred, img)) throw badRequest('Invalid image identifier or unable to access requested image.');
    if (img.status !== 'active') throw invalidInput(`Image ${img.id} is not active.`);
    if (img.disk_format !== 'raw' && img.disk_format !== 'qcow2') throw invalidInput(`Image ${img.id} has disk_format ${img.disk_format ?? 'none'}: volumes are made from raw or qcow2 images here.`);
    if (img.container_format && img.container_format !== 'bare') throw invalidInput(`Image ${img.id} has container_format ${img.container_format}: volumes are made from bare images here.`);
    const gib = (b: number | null) => (b ? Math.ceil(b / GIB) : 0);
    return { record: img, needGib: Math.max(1, gib(img.size), gib(img.virtual_size), img.min_disk) };
  }
  /** Cinder's checks of an image against the volume's size (its flow's _check_image_metadata). */
  function checkImageFits(image: { record: ImageRecord }, size: number): void {
    const img = image.record;
    const gib = (b: number) => Math.ceil(b / GIB);
    if (img.size && gib(img.size) > size) throw invalidInput(`Size of specified image ${gib(img.size)}GB is larger than volume size ${size}GB.`);
    if (img.virtual_size && gib(img.virtual_size) > size) throw invalidInput(`Image virtual size is ${gib(img.virtual_size)}GB and doesn't fit in a volume of size ${size}GB.`);
    if (img.min_disk > size) throw invalidInput(`Volume size ${size}GB cannot be smaller than the image minDisk size ${img.min_disk}GB.`);
  }

  async function makeVolume(c: Credentials, vol: Record<string, any>): Promise<string> {
    const name = textOf('name', vol.name) ?? textOf('display_name', vol.display_name) ?? null;
    const description = textOf('description', vol.description) ?? textOf('display_description', vol.display_description) ?? null;
    for (const [k, what] of [['consistencygroup_id', 'a consistency group'], ['group_id', 'a group']] as const) {
      if (vol[k] !== undefined && vol[k] !== null && vol[k] !== '') throw invalidInput(`Creating a volume from ${what} (${k}) is not supported by this cloud yet.`);
    }
    // multiattach comes from the type now; Cinder refuses the old flag when it asks for it
    if (typeof vol.multiattach === 'string' ? parseBoolean('multiattach', vol.multiattach) : !!vol.multiattach) {
      throw badRequest('multiattach parameters has been removed. The default behavior is to use multiattach enabled volume types. Contact your administrator to create a multiattach enabled volume type and use it to create multiattach volumes.');
    }
    // the source: a snapshot or another volume (the backend copies it; the row names it)
    const snapshotId = textOf('snapshot_id', vol.snapshot_id) || null;
    const sourceId = textOf('source_volid', vol.source_volid) || null;
    const imageRef = textOf('imageRef', vol.imageRef) || textOf('image_id', vol.image_id) || null;
    const backupId = textOf('backup_id', vol.backup_id) || null;
    if ([snapshotId, sourceId, imageRef, backupId].filter(Boolean).length > 1) throw invalidInput('Only one of snapshot_id, source_volid, imageRef and backup_id may be given.');
    const image = imageRef ? await imageToVolume(c, imageRef) : null;
    // from a backup (3.47): a blank volume the backup is restored into once made (backups.ts, lifecycle.ts)
    const backup = backupId ? await restorableBackup(db, c, backupId) : null;
    let source: { kind: 'snapshot' | 'volume'; size: number; typeId: string; az: string; bootable: number } | null = null;
    if (snapshotId) {
      const snap = await db.selectFrom('volume_snapshots').innerJoin('volume_volumes', 'volume_volumes.id', 'volume_snapshots.volume_id')
        .select(['volume_snapshots.project_id', 'volume_snapshots.status', 'volume_snapshots.size', 'volume_snapshots.volume_type_id', 'volume_volumes.availability_zone', 'volume_volumes.bootable'])
        .where('volume_snapshots.id', '=', snapshotId).executeTakeFirst();
      if (!snap || (!isAdmin(c) && snap.project_id !== c.projectId)) throw notFound.snapshot(snapshotId);
      if (snap.status !== 'available') throw invalidSnapshot(`Originating snapshot status must be 'available' to create a volume, but it is '${snap.status}'.`);
      source = { kind: 'snapshot', size: snap.size, typeId: snap.volume_type_id, az: snap.availability_zone, bootable: snap.bootable };
    } else if (sourceId) {
      const src = await db.selectFrom('volume_volumes').selectAll().where('id', '=', sourceId).executeTakeFirst();
      if (!src || (!isAdmin(c) && src.project_id !== c.projectId)) throw notFound.volume(sourceId);
      if (src.status !== 'available' && src.status !== 'in-use') throw invalidVolume(`Unable to create a volume from an originating source volume when its status is not 'available' or 'in-use' (it is '${src.status}').`);
      source = { kind: 'volume', size: src.size, typeId: src.volume_type_id, az: src.availability_zone, bootable: src.bootable };
    }
    if ((vol.size === undefined || vol.size === null) && !source && !image && !backup) throw invalidInput('Volume size is required when creating a volume from nothing (no snapshot, source volume or backup).');
    const size = vol.size === undefined || vol.size === null ? source?.size ?? backup?.size ?? image!.needGib : sizeOf('size', vol.size);
    if (image) checkImageFits(image, size);
    if (backup && size < backup.size) throw invalidInput(`Volume size ${size}GB cannot be smaller than the backup size ${backup.size}GB. It must be >= backup size.`);
    if (source && size < source.size) {
      throw invalidInput(source.kind === 'snapshot'
        ? `Volume size '${size}'GB cannot be smaller than the snapshot size ${source.size}GB. They must be >= original snapshot size.`
        : `Volume size '${size}'GB cannot be smaller than original volume size ${source.size}GB. They must be >= original volume size.`);
    }
    const metadata = vol.metadata === undefined || vol.metadata === null ? {} : metadataOf('metadata', vol.metadata);
    const typeName = textOf('volume_type', vol.volume_type);
    const type = typeName ? await findType(ctx, c, typeName)
      : source ? await db.selectFrom('volume_types').selectAll().where('id', '=', source.typeId).executeTakeFirstOrThrow()
      : await defaultTypeFor(ctx, c.projectId ?? '');
    if (source && type.id !== source.typeId) throw badRequest(`Invalid volume_type provided: ${typeName} (requested type is not compatible; recommend omitting the type argument).`);
    if (await encryptionOf(db, type.id)) throw badRequest(ENCRYPTED_TYPE(type.name));
    const specs = await typeSpecs(ctx, type.id);
    const az = textOf('availability_zone', vol.availability_zone) ?? source?.az ?? ctx.config.availabilityZone;
    if (source && az !== source.az) throw invalidInput(`Volume must be in the same availability zone as the ${source.kind === 'snapshot' ? 'snapshot' : 'source volume'}`);
    const typeZones = specs['RESKEY:availability_zones']?.split(',').map((z) => z.trim()).filter(Boolean);
    if (az !== ctx.config.availabilityZone || (typeZones?.length && !typeZones.includes(az))) throw badRequest(`Availability zone '${az}' is invalid.`);
    const id = uuid();
    const t = now();
    await db.transaction().execute(async (tx) => {
      await checkQuota(tx, c.projectId ?? '', { typeName: type.name, size, volumes: 1, gigabytes: size });
      // the source again, its status checked in the statement (as a snapshot does its volume): a delete
      // of the source meanwhile wins (its 404 or 400 here) or waits for this; never a clone of nothing
      if (snapshotId) {
        const locked = await tx.updateTable('volume_snapshots').set({ updated_at: t }).where('id', '=', snapshotId).where('status', '=', 'available').executeTakeFirst();
        if (Number(locked.numUpdatedRows) === 0) {
          const cur = await tx.selectFrom('volume_snapshots').select('status').where('id', '=', snapshotId).executeTakeFirst();
          if (!cur) throw notFound.snapshot(snapshotId);
          throw invalidSnapshot(`Originating snapshot status must be 'available' to create a volume, but it is '${cur.status}'.`);
        }
      } else if (sourceId) {
        const locked = await tx.updateTable('volume_volumes').set({ updated_at: t }).where('id', '=', sourceId).where('status', 'in', ['available', 'in-use']).executeTakeFirst();
        if (Number(locked.numUpdatedRows) === 0) {
          const cur = await tx.selectFrom('volume_volumes').select('status').where('id', '=', sourceId).executeTakeFirst();
          if (!cur) throw notFound.volume(sourceId);
          throw invalidVolume(`Unable to create a volume from an originating source volume when its status is not 'available' or 'in-use' (it is '${cur.status}').`);
        }
      }
      const backupJob = backup ? await takeForRestore(tx, backup.id) : null;
      await tx.insertInto('volume_volumes').values({
        id, project_id: c.projectId ?? '', user_id: c.userId, name, description, size, requested_size: null, backup_job: backupJob,
        status: 'creating', attach_status: 'detached', migration_status: null, availability_zone: az, volume_type_id: type.id,
        bootable: image ? 1 : source?.bootable ?? 0, multiattach: specTrue(specs.multiattach) ? 1 : 0, readonly: null, host: null,
        snapshot_id: snapshotId, source_volid: sourceId, version: 1, created_at: t, updated_at: t,
        image_source: image ? JSON.stringify({ image_id: image.record.id, disk_format: image.record.disk_format }) : null, upload: null,
      }).execute();
      // Cinder's volume_glance_metadata: the image's attributes and its properties
      if (image) for (const [key, value] of Object.entries(imageMetadataOf(image.record))) await tx.insertInto('volume_image_metadata').values({ volume_id: id, key, value }).execute();
      for (const [key, value] of Object.entries(metadata)) await tx.insertInto('volume_metadata').values({ volume_id: id, key, value }).execute();
      // a clone keeps its source's image properties
      if (sourceId) {
        for (const m of await tx.selectFrom('volume_image_metadata').selectAll().where('volume_id', '=', sourceId).execute()) {
          await tx.insertInto('volume_image_metadata').values({ volume_id: id, key: m.key, value: m.value }).execute();
        }
      }
    });
    return id;
  }

  return makeVolume;
}

export function volumeRoutes(ctx: VolumeContext, o: {
  /** The objects of a backup that failed because its volume was force-deleted (Backups.purge), after the delete's commit. */
  purgeBackup?(backupId: string): Promise<void>;
} = {}): Route[] {
  const db = ctx.vdb;
  const now = () => new Date().toISOString();

  async function facts(rows: VolumeRow[]): Promise<VolumeFacts[]> {
    if (!rows.length) return [];
    const ids = rows.map((r) => r.id);
    const meta = new Map<string, Record<string, string>>(ids.map((id) => [id, {}]));
    for (const m of await db.selectFrom('volume_metadata').selectAll().where('volume_id', 'in', ids).orderBy('key').execute()) meta.get(m.volume_id)![m.key] = m.value;
    const image = new Map<string, Record<string, string>>(ids.map((id) => [id, {}]));
    for (const m of await db.selectFrom('volume_image_metadata').selectAll().where('volume_id', 'in', ids).orderBy('key').execute()) image.get(m.volume_id)![m.key] = m.value;
    const typeIds = [...new Set(rows.map((r) => r.volume_type_id))];
    const names = new Map((await db.selectFrom('volume_types').select(['id', 'name']).where('id', 'in', typeIds).execute()).map((t) => [t.id, t.name]));
    const attached = await attachmentsOf(db, ids);
    return rows.map((row) => ({ row, metadata: meta.get(row.id)!, imageMetadata: image.get(row.id)!, attachments: attached.get(row.id)!, typeName: names.get(row.volume_type_id) ?? row.volume_type_id }));
  }

  /** A volume the caller may see (its project's; any for an admin); 404 otherwise, as Cinder. */
  async function load(rc: RouteContext, id: string, tx: VDb = db): Promise<VolumeRow> {
    const c = rc.cred!;
    const row = await tx.selectFrom('volume_volumes').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row || (!isAdmin(c) && row.project_id !== c.projectId)) throw notFound.volume(id);
    return row;
  }
  const show = async (rc: RouteContext, id: string, extended = true) => volumeView(rc.req, rc.cred!, mv(rc), (await facts([await load(rc, id)]))[0]!, extended);

  /** The rows a list shows: the caller's project's; an admin's with all_tenants, every project's. */
  async function visibleRows(rc: RouteContext): Promise<VolumeRow[]> {
    const c = rc.cred!;
    const all = allTenants(rc);
    let q = db.selectFrom('volume_volumes').selectAll();
    if (!all) q = q.where('project_id', '=', c.projectId ?? '');
    return q.execute();
  }

  async function listed(rc: RouteContext, detail: boolean) {
    const v = mv(rc);
    const rows = await visibleRows(rc);
    const fs = await facts(rows);
    const items = fs.map((f) => ({
      id: f.row.id, name: f.row.name, status: f.row.status, size: f.row.size, availability_zone: f.row.availability_zone,
      bootable: !!f.row.bootable, migration_status: f.row.migration_status, group_id: null, project_id: f.row.project_id,
      created_at: cinderTime(f.row.created_at), updated_at: cinderTime(f.row.updated_at), volume_type: f.typeName,
      metadata: f.metadata, volume_image_metadata: f.imageMetadata, user_id: f.row.user_id, host: f.row.host, consumes_quota: true, f,
    }));
    const filtered = applyFilters(rc.query, items, { resource: 'volume', admin: isAdmin(rc.cred!), v });
    const sorted = applySort(rc.query, filtered);
    const { page, links } = paginate(rc.req, rc.query, sorted, { collection: 'volumes', path: rc.req.url.split('?')[0]!.replace(/^\/volume/, ''), notFound: notFound.volume });
    const volumes = page.map((i) => (detail ? volumeView(rc.req, rc.cred!, v, i.f as VolumeFacts) : summaryView(rc.req, (i.f as VolumeFacts).row)));
    const withCount = v.ge('3.45') && one(rc.query.with_count) !== undefined && parseBoolean('with_count', one(rc.query.with_count)!);
    return { volumes, ...(links ? { volumes_links: links } : {}), ...(withCount ? { count: sorted.length } : {}) };
  }

  const makeVolume = volumeMaker(ctx);

  async function create(rc: RouteContext) {
    const v = mv(rc);
    const body = objectOf(rc.body);
    const vol = objectOf(body?.volume);
    if (!body || !vol) throw badRequest(`Missing required element 'volume' in request body.`);
    const extra = Object.keys(body).filter((k) => k !== 'volume' && k !== 'OS-SCH-HNT:scheduler_hints');
    if (extra.length) throw badRequest(`Additional properties are not allowed ('${extra.join("', '")}' ${extra.length > 1 ? 'were' : 'was'} unexpected)`);
    if (v.ge('3.53')) {
      const unknown = Object.keys(vol).filter((k) => !CREATE_FIELDS.has(k));
      if (unknown.length) throw badRequest(`Additional properties are not allowed ('${unknown.join("', '")}' ${unknown.length > 1 ? 'were' : 'was'} unexpected)`);
    }
    // backup_id is read from 3.47 (Cinder ignores it before)
    return { volume: await show(rc, await makeVolume(rc.cred!, v.ge('3.47') ? vol : { ...vol, backup_id: undefined }), false) };
  }

  /**
   * Deletes a volume: at once when no backend holds it (no host, as Cinder),
   * else `deleting` for its backend. A volume with snapshots is refused unless
   * `cascade`, which takes them too (each deletable, unless forced).
   */
  async function remove(given: VolumeRow, force: boolean, cascade = false): Promise<void> {
    const failed = await db.transaction().execute(async (tx): Promise<string | null> => {
      // the row first (its lock on PostgreSQL, the write lock on SQLite), then what is checked:
      // a snapshot, attachment or status change made meanwhile is seen, never lost
      await tx.updateTable('volume_volumes').set({ updated_at: now() }).where('id', '=', given.id).execute();
      const row = await tx.selectFrom('volume_volumes').selectAll().where('id', '=', given.id).executeTakeFirst();
      if (!row) throw notFound.volume(given.id);
      if (row.attach_status === 'attached' || row.migration_status === 'migrating' || row.migration_status === 'starting') throw invalidVolume(DELETE_REFUSED);
      if (!force && !DELETABLE.includes(row.status)) throw invalidVolume(DELETE_REFUSED);
      // a backup of one of its snapshots (the volume's status unchanged) or any backup or restore in progress
      if (!force && row.backup_job) throw invalidVolume(`Volume ${row.id} has a backup or restore in progress.`);
      const snaps = await snapshotsOf(tx, row.id);
      if (snaps.length && !cascade) throw invalidVolume(DELETE_REFUSED);
      const stuck = snaps.find((x) => !SNAPSHOT_DELETABLE.includes(x.status));
      if (stuck && !force) throw invalidVolume(`Snapshot ${stuck.id} is in status ${stuck.status}: a cascade delete needs every snapshot available or error.`);
      await dropTransfersOf(tx, row.id);
      // forced: a backup being made of it fails, one being restored into it is available again
      const failed = await abandonJob(tx, row);
      if (row.host === null) {
        await destroySnapshots(tx, snaps.map((x) => x.id));
        await tx.deleteFrom('volume_metadata').where('volume_id', '=', row.id).execute();
        await tx.deleteFrom('volume_image_metadata').where('volume_id', '=', row.id).execute();
        await dropAttachmentsOf(tx, row.id);
        await tx.deleteFrom('volume_volumes').where('id', '=', row.id).execute();
        return failed;
      }
      if (snaps.length) {
        await tx.updateTable('volume_snapshots').set((eb) => ({ status: 'deleting', version: eb('version', '+', 1), updated_at: now() }))
          .where('volume_id', '=', row.id).execute();
      }
      await tx.updateTable('volume_volumes').set((eb) => ({ status: 'deleting', version: eb('version', '+', 1), updated_at: now() })).where('id', '=', row.id).execute();
      return failed;
    });
    if (failed) await o.purgeBackup?.(failed);
  }

  async function setMetadata(rc: RouteContext, id: string, metadata: Record<string, string>, replace: boolean): Promise<Record<string, string>> {
    const row = await load(rc, id);
    if (row.status === 'maintenance' || row.status === 'uploading') throw invalidVolume(`Volume status must not be ${row.status} to change its metadata.`);
    await db.transaction().execute(async (tx) => {
      if (replace) await tx.deleteFrom('volume_metadata').where('volume_id', '=', id).execute();
      for (const [key, value] of Object.entries(metadata)) {
        await tx.deleteFrom('volume_metadata').where('volume_id', '=', id).where('key', '=', key).execute();
        await tx.insertInto('volume_metadata').values({ volume_id: id, key, value }).execute();
      }
      await tx.updateTable('volume_volumes').set({ updated_at: now() }).where('id', '=', id).execute();
    });
    return metadataMap(id);
  }
  const imageMetadataMap = async (id: string) =>
    Object.fromEntries((await db.selectFrom('volume_image_metadata').select(['key', 'value']).where('volume_id', '=', id).orderBy('key').execute()).map((m) => [m.key, m.value]));
  const metadataMap = async (id: string) =>
    Object.fromEntries((await db.selectFrom('volume_metadata').select(['key', 'value']).where('volume_id', '=', id).orderBy('key').execute()).map((m) => [m.key, m.value]));
  /** 3.15: the metadata's ETag (a hash of its content), checked against If-Match on a replace. */
  const etag = async (m: Record<string, string>) => {
    return `"${createHash('md5').update(JSON.stringify(Object.entries(m).sort())).digest('hex')}"`;
  };

  async function action(rc: RouteContext) {
    const v = mv(rc);
    const body = objectOf(rc.body);
    if (!body || Object.keys(body).length !== 1) throw badRequest('Malformed request body');
    const [name, raw] = Object.entries(body)[0]!;
    const id = rc.params.volume_id!;
    const args = objectOf(raw) ?? {};
    switch (name) {
      case 'os-extend': {
        rc.enforce('volume:extend', {});
        const row = await load(rc, id);
        const newSize = sizeOf('new_size', args.new_size);
        const states = v.ge('3.42') ? ['available', 'in-use'] : ['available'];
        if (!states.includes(row.status)) {
          throw invalidVolume(`Volume ${id} status must be ${states.join(' or ')} to extend, but current status is: ${row.status}.`);
        }
        if (row.status === 'in-use') rc.enforce('volume:extend_attached_volume', {});
        if (newSize <= row.size) throw invalidInput(`New size for extend must be greater than current size. (current: ${row.size}, extended: ${newSize}).`);
        const type = await db.selectFrom('volume_types').select('name').where('id', '=', row.volume_type_id).executeTakeFirstOrThrow();
        await db.transaction().execute(async (tx) => {
          await checkQuota(tx, row.project_id, { typeName: type.name, size: newSize, volumes: 0, gigabytes: newSize - row.size });
          const r = await tx.updateTable('volume_volumes')
            .set((eb) => ({ status: 'extending', requested_size: newSize, version: eb('version', '+', 1), updated_at: now() }))
            .where('id', '=', id).where('status', '=', row.status).where('size', '=', row.size).executeTakeFirst();
          if (Number(r.numUpdatedRows) === 0) throw invalidVolume(`Volume ${id} changed while being extended; try again.`);
        });
        rc.reply.code(202);
        return undefined;
      }
      case 'os-reset_status': {
        rc.enforce('volume_extension:volume_admin_actions:reset_status', {});
        const row = await load(rc, id);
        const set: Partial<VolumeRow> = { updated_at: now() };
        if (args.status !== undefined) {
          if (typeof args.status !== 'string' || !RESET_STATUSES.has(args.status.toLowerCase())) throw badRequest(`Invalid input for field/attribute status. Value: ${String(args.status)}. '${String(args.status)}' is not a valid volume status.`);
          set.status = args.status.toLowerCase();
          if (set.status !== 'extending') set.requested_size = null;
        }
        if (args.attach_status !== undefined) {
          if (args.attach_status !== 'attached' && args.attach_status !== 'detached') throw invalidInput(`Must specify a valid attach status: ${String(args.attach_status)}`);
          set.attach_status = args.attach_status;
        }
        if (args.migration_status !== undefined) {
          if (args.migration_status !== null && typeof args.migration_status !== 'string') throw invalidInput('Must specify a valid migration status');
          set.migration_status = args.migration_status === 'none' ? null : args.migration_status;
        }
        if (set.status === undefined && set.attach_status === undefined && set.migration_status === undefined) throw badRequest('Must specify \'status\', \'attach_status\' or \'migration_status\' for update.');
        await db.transaction().execute(async (tx) => {
          await tx.updateTable('volume_volumes').set(set).where('id', '=', row.id).execute();
          // a volume reset to detached has no attachments left (as Cinder cleans them)
          if (set.attach_status === 'detached') await dropAttachmentsOf(tx, row.id);
        });
        rc.reply.code(202);
        return undefined;
      }
      case 'os-force_delete': {
        rc.enforce('volume_extension:volume_admin_actions:force_delete', {});
        await remove(await load(rc, id), true);
        rc.reply.code(202);
        return undefined;
      }
      case 'os-set_bootable': {
        rc.enforce('volume:set_bootable', {});
        const row = await load(rc, id);
        const b = args.bootable;
        const bootable = typeof b === 'boolean' ? b : typeof b === 'string' ? parseBoolean('bootable', b) : null;
        if (bootable === null) throw badRequest(`Invalid input for field/attribute bootable. Value: ${JSON.stringify(b)}. ${JSON.stringify(b)} is not a valid boolean.`);
        await db.updateTable('volume_volumes').set({ bootable: bootable ? 1 : 0, updated_at: now() }).where('id', '=', row.id).execute();
        return undefined;
      }
      case 'os-update_readonly_flag': {
        rc.enforce('volume_extension:volume_actions:update_readonly_flag', {});
        const row = await load(rc, id);
        const b = args.readonly;
        const readonly = typeof b === 'boolean' ? b : typeof b === 'string' ? parseBoolean('readonly', b) : null;
        if (readonly === null) throw badRequest(`Invalid input for field/attribute readonly. Value: ${JSON.stringify(b)}. ${JSON.stringify(b)} is not a valid boolean.`);
        if (row.status !== 'available') throw invalidVolume(`Volume ${id} status must be available to update readonly flag, but current status is: ${row.status}.`);
        await db.updateTable('volume_volumes').set({ readonly: readonly ? 1 : 0, updated_at: now() }).where('id', '=', row.id).execute();
        rc.reply.code(202);
        return undefined;
      }
      case 'os-retype': {
        rc.enforce('volume:retype', {});
        const row = await load(rc, id);
        const newType = args.new_type;
        if (typeof newType !== 'string' || newType === '') throw badRequest(`Invalid input for field/attribute new_type. Value: ${JSON.stringify(newType)}. 'new_type' is a required property`);
        const policy = args.migration_policy ?? 'never';
        if (policy !== 'never' && policy !== 'on-demand') throw invalidInput(`migration_policy must be 'on-demand' or 'never', passed: ${String(policy)}`);
        if (row.status !== 'available' && row.status !== 'in-use') throw invalidVolume(`Volume ${id} status must be available or in-use, but current status is: ${row.status}.`);
        if (row.migration_status === 'migrating' || row.migration_status === 'starting') throw invalidVolume(`Volume ${id} is already being migrated.`);
        const type = await findType(ctx, rc.cred!, newType);
        if (type.id === row.volume_type_id) throw invalidInput(`New volume_type same as original: ${newType}.`);
        if (await encryptionOf(db, type.id)) throw badRequest(ENCRYPTED_TYPE(type.name));
        const specs = await typeSpecs(ctx, type.id);
        const multi = specTrue(specs.multiattach);
        if (row.status === 'in-use' && !!row.multiattach !== multi) throw invalidInput('Retyping an in-use volume between multiattach and non-multiattach types is not supported.');
        // a volume a backend holds keeps its data where it is when the new type may live on that backend (its
        // volume_backend_name, if any, is the volume's): the type is all that changes, as a Cinder driver's
        // retype that needs no migration; another backend would need the data moved (migration: not served)
        const held = row.host === null ? null : parseVolumeHost(row.host);
        if (held && specs.volume_backend_name !== undefined && specs.volume_backend_name !== held.backend) {
          throw badRequest(`The volume action os-retype is not supported by this cloud yet for a volume that would move to another backend (${specs.volume_backend_name}).`);
        }
        await db.transaction().execute(async (tx) => {
          await checkQuota(tx, row.project_id, { typeName: type.name, size: 0, volumes: 0, gigabytes: 0, typeOnly: { volumes: 1, gigabytes: Math.max(row.size, row.requested_size ?? 0) } });
          const r = await tx.updateTable('volume_volumes').set({ volume_type_id: type.id, multiattach: multi ? 1 : 0, updated_at: now() })
            .where('id', '=', id).where('volume_type_id', '=', row.volume_type_id).where('status', '=', row.status).where((eb) => (row.host === null ? eb('host', 'is', null) : eb('host', '=', row.host))).executeTakeFirst();
          if (Number(r.numUpdatedRows) === 0) throw invalidVolume(`Volume ${id} changed while being retyped; try again.`);
          await tx.updateTable('volume_snapshots').set({ volume_type_id: type.id }).where('volume_id', '=', id).execute();
        });
        rc.reply.code(202);
        return undefined;
      }
      case 'os-volume_upload_image': {
        rc.enforce('volume_extension:volume_actions:upload_image', {});
        rc.reply.code(202);
        return uploadAction(ctx, rc, await load(rc, id), args);
      }
      case 'os-show_image_metadata': {
        rc.enforce('volume_extension:volume_image_metadata:show', {});
        const row = await load(rc, id);
        return { metadata: await imageMetadataMap(row.id) };
      }
      case 'os-set_image_metadata': {
        rc.enforce('volume_extension:volume_image_metadata:set', {});
        const row = await load(rc, id);
        const metadata = metadataOf('metadata', args.metadata);
        await db.transaction().execute(async (tx) => {
          for (const [key, value] of Object.entries(metadata)) {
            await tx.deleteFrom('volume_image_metadata').where('volume_id', '=', row.id).where('key', '=', key).execute();
            await tx.insertInto('volume_image_metadata').values({ volume_id: row.id, key, value }).execute();
          }
          await tx.updateTable('volume_volumes').set({ updated_at: now() }).where('id', '=', row.id).execute();
        });
        return { metadata: await imageMetadataMap(row.id) };
      }
      case 'os-unset_image_metadata': {
        rc.enforce('volume_extension:volume_image_metadata:remove', {});
        const row = await load(rc, id);
        if (typeof args.key !== 'string' || args.key.length < 1 || args.key.length > 255) throw badRequest(`Invalid input for field/attribute key. Value: ${JSON.stringify(args.key)}. 'key' is a required property`);
        const r = await db.deleteFrom('volume_image_metadata').where('volume_id', '=', row.id).where('key', '=', args.key).executeTakeFirst();
        if (Number(r.numDeletedRows) === 0) throw notFound.imageMetadata(row.id);
        return undefined;
      }
      default:
        if (ATTACH_ACTIONS.has(name)) {
          rc.enforce(name === 'os-force_detach' ? 'volume_extension:volume_admin_actions:force_detach' : `volume_extension:volume_actions:${name.slice(3)}`, {});
          await attachAction(db, rc, await load(rc, id), name, args);
          rc.reply.code(202);
          return undefined;
        }
        await load(rc, id);
        if (NOT_YET.has(name)) throw badRequest(`The volume action ${name} is not supported by this cloud yet.`);
        throw badRequest(`There is no such action: ${name}. Verify the request body and Content-Type header and try again.`);
    }
  }

  const MetaBody = Type.Object({ metadata: Type.Unknown() });
  const MetaItemBody = Type.Object({ meta: Type.Unknown() });

  return [
    route({ method: 'POST', path: '/volumes', rule: 'volume:create', status: 202, handler: create }),
    route({ method: 'GET', path: '/volumes', rule: 'volume:get_all', handler: (rc) => listed(rc, false) }),
    route({ method: 'GET', path: '/volumes/detail', rule: 'volume:get_all', handler: (rc) => listed(rc, true) }),
    since('3.12', route({
      method: 'GET', path: '/volumes/summary', rule: 'volume:get_all',
      async handler(rc) {
        const rows = await visibleRows(rc);
        const out: Record<string, unknown> = { total_size: rows.reduce((s, r) => s + r.size, 0), total_count: rows.length };
        if (mv(rc).ge('3.36')) {
          const meta: Record<string, string[]> = {};
          for (const f of await facts(rows)) for (const [k, val] of Object.entries(f.metadata)) if (!(meta[k] ??= []).includes(val)) meta[k].push(val);
          out.metadata = meta;
        }
        return { 'volume-summary': out };
      },
    })),
    route({ method: 'GET', path: '/volumes/:volume_id', rule: 'volume:get', handler: async (rc) => ({ volume: await show(rc, rc.params.volume_id!) }) }),
    route({
      method: 'PUT', path: '/volumes/:volume_id', rule: 'volume:update',
      async handler(rc) {
        const body = objectOf(rc.body);
        const vol = objectOf(body?.volume);
        if (!body || !vol) throw badRequest(`Missing required element 'volume' in request body.`);
        const allowed = new Set(['name', 'description', 'display_name', 'display_description', 'metadata']);
        const unknown = Object.keys(vol).filter((k) => !allowed.has(k));
        if (unknown.length) throw badRequest(`Additional properties are not allowed ('${unknown.join("', '")}' ${unknown.length > 1 ? 'were' : 'was'} unexpected)`);
        if (mv(rc).ge('3.53') && Object.keys(vol).length === 0) throw badRequest(`Invalid input for field/attribute volume. Value: {}. {} is not valid under any of the given schemas`);
        const row = await load(rc, rc.params.volume_id!);
        const set: Partial<VolumeRow> = { updated_at: now() };
        const name = vol.name !== undefined ? textOf('name', vol.name) : textOf('display_name', vol.display_name);
        const description = vol.description !== undefined ? textOf('description', vol.description) : textOf('display_description', vol.display_description);
        if (name !== undefined) set.name = name;
        if (description !== undefined) set.description = description;
        const metadata = vol.metadata === undefined ? undefined : metadataOf('metadata', vol.metadata);
        await db.transaction().execute(async (tx) => {
          await tx.updateTable('volume_volumes').set(set).where('id', '=', row.id).execute();
          if (metadata) {
            await tx.deleteFrom('volume_metadata').where('volume_id', '=', row.id).execute();
            for (const [key, value] of Object.entries(metadata)) await tx.insertInto('volume_metadata').values({ volume_id: row.id, key, value }).execute();
          }
        });
        return { volume: await show(rc, row.id, false) };
      },
    }),
    route({
      method: 'DELETE', path: '/volumes/:volume_id', rule: 'volume:delete', status: 202,
      async handler(rc) {
        const row = await load(rc, rc.params.volume_id!);
        const forceRaw = one(rc.query.force);
        const force = mv(rc).ge('3.23') && forceRaw !== undefined && parseBoolean('force', forceRaw);
        if (force && !isAdmin(rc.cred!)) throw policyDenied('volume:force_delete');
        const cascadeRaw = one(rc.query.cascade);
        await remove(row, force, cascadeRaw !== undefined && parseBoolean('cascade', cascadeRaw));
      },
    }),
    route({ method: 'POST', path: '/volumes/:volume_id/action', rule: 'volume:get', handler: action }),
    // metadata
    route({
      method: 'GET', path: '/volumes/:volume_id/metadata', rule: 'volume:get_volume_metadata',
      async handler(rc) {
        const row = await load(rc, rc.params.volume_id!);
        const m = await metadataMap(row.id);
        if (mv(rc).ge('3.15')) rc.reply.header('ETag', await etag(m));
        return { metadata: m };
      },
    }),
    route({
      method: 'POST', path: '/volumes/:volume_id/metadata', rule: 'volume:create_volume_metadata', schema: { body: MetaBody },
      handler: async (rc) => ({ metadata: await setMetadata(rc, rc.params.volume_id!, metadataOf('metadata', rc.body.metadata), false) }),
    }),
    route({
      method: 'PUT', path: '/volumes/:volume_id/metadata', rule: 'volume:update_volume_metadata', schema: { body: MetaBody },
      async handler(rc) {
        const id = rc.params.volume_id!;
        const metadata = metadataOf('metadata', rc.body.metadata);
        const ifMatch = rc.req.headers['if-match'];
        if (mv(rc).ge('3.15') && typeof ifMatch === 'string') {
          await load(rc, id);
          if (ifMatch !== await etag(await metadataMap(id))) throw new ApiError('PreconditionFailed', 'Update and delete to the metadata of the volume are not allowed: it was changed since it was read (If-Match).');
        }
        return { metadata: await setMetadata(rc, id, metadata, true) };
      },
    }),
    route({
      method: 'GET', path: '/volumes/:volume_id/metadata/:key', rule: 'volume:get_volume_metadata',
      async handler(rc) {
        const row = await load(rc, rc.params.volume_id!);
        const key = rc.params.key!;
        const m = await db.selectFrom('volume_metadata').select('value').where('volume_id', '=', row.id).where('key', '=', key).executeTakeFirst();
        if (!m) throw notFound.metadata(row.id, key);
        return { meta: { [key]: m.value } };
      },
    }),
    route({
      method: 'PUT', path: '/volumes/:volume_id/metadata/:key', rule: 'volume:update_volume_metadata', schema: { body: MetaItemBody },
      async handler(rc) {
        const key = rc.params.key!;
        const meta = metadataOf('meta', rc.body.meta);
        if (Object.keys(meta).length > 1) throw badRequest('Request body contains too many items');
        if (!Object.hasOwn(meta, key)) throw badRequest('Request body and URI mismatch');
        await setMetadata(rc, rc.params.volume_id!, meta, false);
        return { meta };
      },
    }),
    route({
      method: 'DELETE', path: '/volumes/:volume_id/metadata/:key', rule: 'volume:delete_volume_metadata',
      async handler(rc) {
        const row = await load(rc, rc.params.volume_id!);
        const key = rc.params.key!;
        if (row.status === 'maintenance' || row.status === 'uploading') throw invalidVolume(`Volume status must not be ${row.status} to change its metadata.`);
        const r = await db.deleteFrom('volume_metadata').where('volume_id', '=', row.id).where('key', '=', key).executeTakeFirst();
        if (Number(r.numDeletedRows) === 0) throw notFound.metadata(row.id, key);
        return undefined;
      },
    }),
    route({
      method: 'GET', path: '/os-availability-zone', rule: 'volume_extension:availability_zone_list',
      handler: () => ({ availabilityZoneInfo: [{ zoneName: ctx.config.availabilityZone, zoneState: { available: true } }] }),
    }),
    since('3.33', route({
      method: 'GET', path: '/resource_filters', rule: 'volume:get_all_resource_filters',
      handler(rc) {
        const which = one(rc.query.resource);
        const entries = Object.entries(RESOURCE_FILTERS).filter(([r]) => !which || r === which);
        return { resource_filters: entries.map(([resource, filters]) => ({ resource, filters })) };
      },
    })),
  ];
}
