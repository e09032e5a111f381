// The volume status state machine on the control plane's side: what a
// backend's report (protocol.ts, through kinds.ts) does to a volume row; the
// one path by which a volume leaves `creating`, `extending` or `deleting`:
//
//   creating  --present, size >= asked-->  available (version bumped: the host learns `created`)
//   creating  --error-->                   error
//   any other but deleting or error --data_missing-->  error (the data is lost: never re-made)
//   extending --present, size >= asked-->  settled from its attachments (available, in-use...), size = asked
//   extending --error-->                   error_extending (the size asked is dropped: quota gives it back)
//   deleting  --absent-->                  (row removed, with its snapshots' rows: a cascade)
//   deleting  --error-->                   error_deleting
//   uploading --uploaded = the image-->    settled from its attachments (upload cleared, version bumped)
//   uploading --error-->                   the same, and a user message (the image is killed by kinds.ts)
//   creating  --present, a restore job-->  restoring-backup (backups.ts moves it on, and backing-up)
//
// A snapshot (kind `volume_snapshot`, on its volume's host) the same way:
// creating -> available / error, deleting -> gone / error_deleting.
// A failed create or extend of a volume, and a failed create or delete of a
// snapshot, also leaves a user message (/messages) for its project.
//
// A report's `exports` (an attachment's export made by the backend: its
// location and format) are stored on the attachment rows (applyExports), and
// the servers of the attachments whose export changed are told (kinds.ts).
//
// A report for another version than the row's is stale and changes nothing;
// so is one that does not match the status (a report of `present` for a
// volume being deleted). `placeVolume` is the scheduler's step: it gives a
// `creating` volume its host and bumps the version, which puts it in that
// host's watch.
import type { Kysely } from 'kysely';
import type { ResourceError } from '../fleet/protocol.ts';
import { parseJsonObject } from '../common/json.ts';
import type { SnapshotObserved, SnapshotSpec, VolumeObserved, VolumeSource, VolumeSpec, VolumeUpload } from './protocol.ts';
import { parseVolumeHost, VolumeErrorCode } from './protocol.ts';
import type { VolumeTables } from './schema.ts';
import { MessageAction, MessageDetail, recordMessage } from './messages.ts';
import { failExports, setExports, settleVolume } from './attach.ts';
import { abandonJob } from './backups.ts';

type VDb = Kysely<VolumeTables>;
type Row = VolumeTables['volume_volumes'];

/** The spec a volume's host is handed (null before the volume has a host); `exports` from its attachments. */
export function specOf(row: Row, extraSpecs: Record<string, string>, exports: VolumeSpec['exports'] = [], job: Pick<VolumeSpec, 'backup' | 'restore'> = {}): VolumeSpec | null {
  const where = row.host ? parseVolumeHost(row.host) : null;
  if (!where) return null;
  return {
    project_id: row.project_id,
    state: row.status === 'deleting' ? 'absent' : 'present',
    size_gib: Math.max(row.size, row.requested_size ?? 0),
    backend: where.backend, pool: where.pool,
    source: sourceOf(row),
    created: row.status !== 'creating',
    extra_specs: extraSpecs, exports,
    ...(row.upload && row.status === 'uploading' ? { upload: { image_id: uploadOf(row)!.image_id, disk_format: uploadOf(row)!.disk_format } } : {}),
    ...job,
  };
}

function sourceOf(row: Row): VolumeSource {
  if (row.snapshot_id) return { type: 'snapshot', snapshot_id: row.snapshot_id };
  if (row.source_volid) return { type: 'volume', volume_id: row.source_volid };
  if (row.image_source) {
    const j = parseJsonObject(row.image_source);
    return { type: 'image', image_id: String(j.image_id), disk_format: String(j.disk_format) };
  }
  return { type: 'blank' };
}

/** The upload a volume row holds (os-volume_upload_image): the image, its format, and the status the volume goes back to. */
export function uploadOf(row: Pick<Row, 'upload'>): (VolumeUpload & { status: string }) | null {
  if (!row.upload) return null;
  const j = parseJsonObject(row.upload);
  return { image_id: String(j.image_id), disk_format: j.disk_format === 'qcow2' ? 'qcow2' : 'raw', status: String(j.status ?? 'available') };
}

/** The scheduler's step: a `creating` volume without a host gets `host@backend#pool`. False when it was not (any longer) waiting for one. */
export async function placeVolume(db: VDb, id: string, host: string): Promise<boolean> {
  if (!parseVolumeHost(host)) throw new Error(`not a host@backend#pool: ${host}`);
  const r = await db.updateTable('volume_volumes').set((eb) => ({ host, version: eb('version', '+', 1), updated_at: new Date().toISOString() }))
    .where('id', '=', id).where('status', '=', 'creating').where('host', 'is', null).executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

export type ReportOutcome = 'stale' | 'ignored' | 'available' | 'restoring' | 'error' | 'extended' | 'error_extending' | 'deleted' | 'error_deleting' | 'uploaded' | 'error_uploading';

/** Applies a backend's report for `version` of volume `id`. */
export async function applyVolumeReport(db: VDb, id: string, version: number, observed: VolumeObserved | null, error?: ResourceError): Promise<ReportOutcome> {
  return db.transaction().execute(async (tx) => {
    const row = await tx.selectFrom('volume_volumes').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row || row.version !== version) return 'stale';
    const now = new Date().toISOString();
    const set = async (s: Partial<Row>) => {
      await tx.updateTable('volume_volumes').set({ ...s, updated_at: now }).where('id', '=', id).where('version', '=', version).execute();
    };
    if (error?.code === VolumeErrorCode.dataMissing && !['creating', 'deleting', 'error'].includes(row.status)) {
      // Cinder has no message for data lost after the create; its nearest pair, create from backend storage: unknown error
      await set({ status: 'error', requested_size: null });
      await recordMessage(tx, { projectId: row.project_id, resourceType: 'VOLUME', resourceUuid: id, action: MessageAction.createVolumeFromBackend, detail: MessageDetail.unknownError });
      return 'error';
    }
    switch (row.status) {
      case 'creating':
        // made before, reset to creating by an admin (os-reset_status): nothing is being made
        if (row.launched_at) return 'ignored';
        if (error) {
          await set({ status: 'error' });
          // from an image: Cinder's copy image to volume (an image larger than the volume: its own detail)
          await recordMessage(tx, row.image_source ? {
            projectId: row.project_id, resourceType: 'VOLUME', resourceUuid: id, action: MessageAction.copyImageToVolume,
            detail: error.code === VolumeErrorCode.noSpace || error.code === VolumeErrorCode.refused ? MessageDetail.notEnoughSpaceForImage : MessageDetail.unknownError,
          } : {
            projectId: row.project_id, resourceType: 'VOLUME', resourceUuid: id, action: MessageAction.createVolumeFromBackend,
            detail: error.code === 'no_space' ? MessageDetail.noBackendAvailable : MessageDetail.unknownError,
          });
          return 'error';
        }
        if (observed?.state === 'present' && observed.size_gib >= row.size) {
          // made for a restore (POST /backups/{id}/restore without a volume): the backup's data goes in next (backups.ts)
          if (row.backup_job) { await set({ status: 'restoring-backup', launched_at: now, version: version + 1 }); return 'restoring'; }
          await set({ status: 'available', launched_at: now, version: version + 1 });
          return 'available';
        }
        return 'ignored';
      case 'extending': {
        if (error) {
          await set({ status: 'error_extending', requested_size: null });
          await recordMessage(tx, {
            projectId: row.project_id, resourceType: 'VOLUME', resourceUuid: id, action: MessageAction.extendVolume,
            detail: error.code === 'no_space' ? MessageDetail.noBackendAvailable : MessageDetail.unknownError,
          });
          return 'error_extending';
        }
        const asked = row.requested_size ?? row.size;
        if (observed?.state === 'present' && observed.size_gib >= asked) {
          // back to what its attachments say now (one may have gone or come meanwhile)
          await set({ status: 'available', size: asked, requested_size: null });
          await settleVolume(tx, id, now);
          return 'extended';
        }
        return 'ignored';
      }
      case 'uploading': {
        // back to what its attachments say now (available, or in-use for a forced upload, unless detached
        // meanwhile: a detach leaves an uploading volume's status alone); the image's end is the caller's (kinds.ts)
        const up = uploadOf(row);
        const back = async () => {
          await set({ status: 'available', upload: null, version: version + 1 });
          await settleVolume(tx, id, now);
        };
        if (error) {
          await back();
          await recordMessage(tx, { projectId: row.project_id, resourceType: 'VOLUME', resourceUuid: id, action: MessageAction.copyVolumeToImage, detail: MessageDetail.failedToUploadVolume });
          return 'error_uploading';
        }
        if (up && observed?.uploaded === up.image_id) { await back(); return 'uploaded'; }
        return 'ignored';
      }
      case 'deleting':
        if (error) { await set({ status: 'error_deleting' }); return 'error_deleting'; }
        if (observed?.state === 'absent') {
          const snaps = (await tx.selectFrom('volume_snapshots').select('id').where('volume_id', '=', id).execute()).map((x) => x.id);
          if (snaps.length) {
            await tx.deleteFrom('volume_snapshot_metadata').where('snapshot_id', 'in', snaps).execute();
            await tx.deleteFrom('volume_snapshots').where('id', 'in', snaps).execute();
          }
          await tx.deleteFrom('volume_metadata').where('volume_id', '=', id).execute();
          await tx.deleteFrom('volume_image_metadata').where('volume_id', '=', id).execute();
          await tx.deleteFrom('volume_attachments').where('volume_id', '=', id).execute();
          await tx.deleteFrom('volume_volumes').where('id', '=', id).where('version', '=', version).execute();
          return 'deleted';
        }
        return 'ignored';
      default:
        return 'ignored';
    }
  });
}

/**
 * Stores the exports a backend reports for `version` of volume `id` (where
 * each attachment's host finds the data). Returns the instances whose
 * attachments' exports changed; a stale report or one without `exports`
 * changes nothing.
 */
export async function applyExports(db: VDb, id: string, version: number, observed: VolumeObserved | null): Promise<string[]> {
  if (!observed?.exports || observed.state !== 'present') return [];
  const exports = observed.exports;
  return db.transaction().execute(async (tx) => {
    const row = await tx.selectFrom('volume_volumes').select(['version', 'status']).where('id', '=', id).executeTakeFirst();
    if (!row || row.version !== version || row.status === 'deleting') return [];
    return setExports(tx, id, exports);
  });
}

/**
 * A backend's failure of `version` while attachments wait for their exports
 * (an export it cannot make, say NBD to another host): those attachments fail
 * (error_attaching, no export; the volume settles) with a user message each.
 * Returns them, for their servers to roll back.
 */
export async function applyExportFailure(db: VDb, id: string, version: number, error: ResourceError | undefined): Promise<Array<{ attachmentId: string; instance: string | null }>> {
  if (!error) return [];
  return db.transaction().execute(async (tx) => {
    const row = await tx.selectFrom('volume_volumes').select(['version', 'status', 'project_id']).where('id', '=', id).executeTakeFirst();
    if (!row || row.version !== version || !['reserved', 'attaching', 'in-use', 'detaching'].includes(row.status)) return [];
    const failed = await failExports(tx, id);
    for (const _ of failed) {
      await recordMessage(tx, { projectId: row.project_id, resourceType: 'VOLUME', resourceUuid: id, action: MessageAction.attachVolume, detail: MessageDetail.unknownError });
    }
    return failed.map((a) => ({ attachmentId: a.id, instance: a.instance_uuid }));
  });
}

type SnapshotRow = VolumeTables['volume_snapshots'];

/** The spec a snapshot's host (its volume's) is handed; null while the volume has no host. */
export function snapshotSpecOf(row: SnapshotRow, volumeHost: string | null): SnapshotSpec | null {
  const where = volumeHost ? parseVolumeHost(volumeHost) : null;
  if (!where) return null;
  return {
    volume_id: row.volume_id, project_id: row.project_id, state: row.status === 'deleting' ? 'absent' : 'present',
    size_gib: row.size, backend: where.backend, pool: where.pool,
  };
}

/** Applies a backend's report for `version` of snapshot `id`. */
export async function applySnapshotReport(db: VDb, id: string, version: number, observed: SnapshotObserved | null, error?: ResourceError): Promise<ReportOutcome> {
  return db.transaction().execute(async (tx) => {
    const row = await tx.selectFrom('volume_snapshots').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row || row.version !== version) return 'stale';
    const set = async (s: Partial<SnapshotRow>) => {
      await tx.updateTable('volume_snapshots').set({ ...s, updated_at: new Date().toISOString() }).where('id', '=', id).where('version', '=', version).execute();
    };
    if (row.status === 'creating') {
      if (error) {
        await set({ status: 'error' });
        await recordMessage(tx, { projectId: row.project_id, resourceType: 'SNAPSHOT', resourceUuid: id, action: MessageAction.snapshotCreate, detail: MessageDetail.snapshotCreateError });
        return 'error';
      }
      if (observed?.state === 'present') { await set({ status: 'available', progress: '100%' }); return 'available'; }
    } else if (row.status === 'deleting') {
      if (error) {
        await set({ status: 'error_deleting' });
        await recordMessage(tx, {
          projectId: row.project_id, resourceType: 'SNAPSHOT', resourceUuid: id, action: MessageAction.snapshotDelete,
          detail: error.code === 'busy' ? MessageDetail.snapshotIsBusy : MessageDetail.snapshotDeleteError,
        });
        return 'error_deleting';
      }
      if (observed?.state === 'absent') {
        await tx.deleteFrom('volume_snapshot_metadata').where('snapshot_id', '=', id).execute();
        await tx.deleteFrom('volume_snapshots').where('id', '=', id).execute();
        return 'deleted';
      }
    }
    return 'ignored';
  });
}

/**
 * The scheduler found no pool for a `creating` volume without a host (pools
 * are known, none fits its type): `error`, with Cinder's user message
 * (schedule allocate volume: no backend available). False when it was not
 * (any longer) waiting for a host.
 */
export async function failScheduling(db: VDb, id: string): Promise<boolean> {
  return db.transaction().execute(async (tx) => {
    const row = await tx.selectFrom('volume_volumes').select(['project_id', 'backup_job']).where('id', '=', id).where('status', '=', 'creating').where('host', 'is', null).executeTakeFirst();
    if (!row) return false;
    const r = await tx.updateTable('volume_volumes').set({ status: 'error', updated_at: new Date().toISOString() })
      .where('id', '=', id).where('status', '=', 'creating').where('host', 'is', null).executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) return false;
    // a volume made from a backup: the backup available again (the error volume holds no job, and deletes)
    await abandonJob(tx, { id, backup_job: row.backup_job });
    await recordMessage(tx, { projectId: row.project_id, resourceType: 'VOLUME', resourceUuid: id, action: MessageAction.scheduleAllocateVolume, detail: MessageDetail.noBackendAvailable });
    return true;
  });
}
