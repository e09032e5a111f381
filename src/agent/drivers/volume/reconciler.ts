// The reconcilers of the volume kinds (`volume`, `volume_snapshot`) over the
// volume driver's backends. A converge is level-triggered: a present volume
// that exists is only grown (never re-made from its source), an absent one is
// removed, and the observed state is reported for the spec's version. A
// resource that is no longer desired at all is left alone (its data is never
// removed by a missing spec — only an explicit `absent` deletes); the sweep
// logs what the backends hold that nothing placed here, as the audit does.
// A volume the control plane says was made (spec `created`) whose data the
// backend does not hold is lost: reported as `data_missing` (the volume turns
// `error`), never made again blank or from its source.
// A spec with an `upload` (os-volume_upload_image) has the volume's data
// converted to the image's format and uploaded into the queued image once per
// version; the report then names the image (`uploaded`).
// A spec with a `backup` has the data sent, chunk by chunk, to the server's
// object store (src/volume/backups.ts; only chunks that changed since the
// parent's for an incremental backup), a `restore` has a backup's chunks
// written back, each checked against its sha256; the report then names the
// backup (`backed_up`, `restored`).
// A failure the backend classifies (no space, a missing source, a refusal)
// is reported and not retried until the version changes; any other is the
// host's (transient): retried with backoff and not reported, so a passing
// trouble never turns a volume to `error`.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { promisify } from 'node:util';
import { deflate, inflate, type ZlibOptions } from 'node:zlib';
import { ErrorClass, type Resource } from '../../../fleet/protocol.ts';
import { HttpError } from '../../client.ts';
import { VOLUME_KIND, VOLUME_SNAPSHOT_KIND, VolumeErrorCode, type SnapshotObserved, type SnapshotSpec, type VolumeBackupJob, type VolumeObserved, type VolumeRestoreJob, type VolumeSpec } from '../../../volume/protocol.ts';
import { toResourceError, userError } from '../../errors.ts';
import type { Reconciler, ReconcilerContext, ReconcilerFactory } from '../../reconciler.ts';
import type { Driver } from '../driver.ts';
import { VolumeDriver } from './driver.ts';
import type { VolumeBackend, VolumeData } from './backend.ts';

const deflateAsync = (b: Buffer): Promise<Buffer> => promisify(deflate)(b, { level: 1 }) as Promise<Buffer>;
const inflateAsync = promisify(inflate) as (b: Buffer, o: ZlibOptions) => Promise<Buffer>;
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** A refusal of the server's (4xx: the backup is no longer creating or restoring, a chunk refused): no retry helps. */
const refusedOn4xx = (what: string) => (err: unknown): never => {
  if (err instanceof HttpError && err.status >= 400 && err.status < 500) throw userError(VolumeErrorCode.refused, `${what}: ${err.message}`);
  throw err;
};

/**
 * A backup (the spec's `backup`): the volume's data (or its snapshot's; an
 * attached volume's through a snapshot of our own, removed after) read
 * `chunk_size` bytes at a time; each chunk whose sha256 differs from the
 * parent's is sent zlib-compressed. Returns the chunks sent.
 */
async function backUp(ctx: ReconcilerContext, backend: VolumeBackend, id: string, job: VolumeBackupJob): Promise<number> {
  const chunks = ctx.backupChunks;
  if (!chunks) throw userError(VolumeErrorCode.refused, 'This agent sends no backups.');
  const temp = !job.snapshot_id && job.live ? `backup-${job.backup_id}` : null;
  if (temp) await backend.snapshot(id, temp);
  let sent = 0;
  // a chunk of zeros (most of a sparse volume): its hash and stream made once
  const zeros = Buffer.alloc(job.chunk_size);
  const zeroSha = sha256(zeros);
  let zeroZ: Buffer | undefined;
  try {
    await backend.copyTo(id, 'raw', async (path) => {
      const fh = await open(path, 'r');
      try {
        const buf = Buffer.alloc(job.chunk_size);
        for (let i = 0; ; i++) {
          let n = 0;
          while (n < job.chunk_size) {
            const r = await fh.read(buf, n, job.chunk_size - n, i * job.chunk_size + n);
            if (r.bytesRead === 0) break;
            n += r.bytesRead;
          }
          if (n === 0) break;
          const data = buf.subarray(0, n);
          const zero = n === job.chunk_size && data.equals(zeros);
          const hash = zero ? zeroSha : sha256(data);
          // the parent's (an incremental), or stored already (a backup resumed after a restart)
          if (job.parent_sha256?.[i] === hash || job.stored_sha256?.[i] === hash) continue;
          const z = zero ? (zeroZ ??= await deflateAsync(zeros)) : await deflateAsync(data);
          await chunks.put(job.backup_id, i, hash, z).catch(refusedOn4xx(`Chunk ${i} of backup ${job.backup_id}`));
          sent++;
        }
      } finally {
        await fh.close();
      }
    }, { snapshotId: job.snapshot_id ?? temp ?? undefined });
  } finally {
    if (temp) await backend.deleteSnapshot(id, temp).catch((err: Error) => ctx.log.warn({ volume: id, err: err.message }, 'removing the snapshot of a backup failed'));
  }
  return sent;
}

/** A restore (the spec's `restore`): every chunk fetched, inflated, checked against its sha256 and written in place. */
async function restore(ctx: ReconcilerContext, backend: VolumeBackend, id: string, job: VolumeRestoreJob): Promise<VolumeData> {
  const chunks = ctx.backupChunks;
  if (!chunks) throw userError(VolumeErrorCode.refused, 'This agent restores no backups.');
  const zeros = Buffer.alloc(job.chunk_size);
  const zeroSha = sha256(zeros);
  return backend.restoreInto(id, async (path) => {
    const fh = await open(path, 'w', 0o600);
    try {
      for (let i = 0; i < job.sha256.length; i++) {
        // a whole chunk of zeros stays a hole of the sparse file: nothing to fetch
        if (job.sha256[i] === zeroSha && (i + 1) * job.chunk_size <= job.size_bytes) continue;
        const z = await chunks.get(job.backup_id, i).catch(refusedOn4xx(`Chunk ${i} of backup ${job.backup_id}`));
        const data = await inflateAsync(z, { maxOutputLength: job.chunk_size }).catch((err: Error) => {
          throw userError(VolumeErrorCode.sourceUnavailable, `Chunk ${i} of backup ${job.backup_id} is damaged: ${err.message}`);
        });
        if (sha256(data) !== job.sha256[i]) throw userError(VolumeErrorCode.sourceUnavailable, `Chunk ${i} of backup ${job.backup_id} does not match its sha256.`);
        // zeros stay a hole of the sparse file
        if (!data.equals(zeros.subarray(0, data.length))) await fh.write(data, 0, data.length, i * job.chunk_size);
      }
      await fh.truncate(job.size_bytes);
    } finally {
      await fh.close();
    }
  });
}

function driverOf(drivers: Driver[], kind: string): VolumeDriver {
  const d = drivers.find((x): x is VolumeDriver => x instanceof VolumeDriver);
  if (!d) throw new Error(`no volume driver serves ${kind}`);
  return d;
}

/** Runs a converge; reports a classified failure, rethrows a transient one (the queue retries). */
async function guarded(ctx: ReconcilerContext, kind: string, id: string, version: number, failed: Record<string, unknown>, work: () => Promise<Record<string, unknown>>): Promise<void> {
  let observed: Record<string, unknown>;
  try {
    observed = await work();
  } catch (err) {
    const error = toResourceError(err);
    ctx.log.warn({ kind, id, err: error.message, class: error.class, code: error.code }, 'converge failed');
    if (error.class === ErrorClass.transient) throw err;
    ctx.report({ kind, id, version, observed: failed, error });
    return;
  }
  ctx.report({ kind, id, version, observed });
}

const volumeReconciler: ReconcilerFactory = (drivers, ctx): Reconciler => {
  const driver = driverOf(drivers, VOLUME_KIND);
  let sweeps = 0;
  /** Uploads done (`id version image`): a re-check before the control plane moves on does not upload again. */
  const uploaded = new Set<string>();
  /**
   * Backups done (`id backup`: a backup is made once, whatever version the volume is at: a write to the
   * volume's row meanwhile does not send it again) and restores done (`id version backup`).
   */
  const backedUp = new Set<string>();
  const restored = new Set<string>();
  return {
    kind: VOLUME_KIND,
    // a re-check stats files (qcow2: a qemu-img per volume): every sixth sweep
    recheckEvery: 6,
    local: async () => [],
    async reconcile(id: string, res: Resource | undefined) {
      if (!res) return;
      const spec = res.spec as VolumeSpec;
      const backend = driver.backend(spec.backend);
      const gone: VolumeObserved = { state: 'absent', size_gib: 0, location: null };
      await guarded(ctx, VOLUME_KIND, id, res.version, gone as unknown as Record<string, unknown>, async () => {
        if (!backend) throw userError(VolumeErrorCode.refused, `No volume backend ${spec.backend} on host ${ctx.hostname}.`);
        if (spec.state === 'absent') {
          await backend.delete(id);
          return gone as unknown as Record<string, unknown>;
        }
        const have = await backend.observe(id);
        if (!have && spec.created) throw userError(VolumeErrorCode.dataMissing, `The data of volume ${id} is missing from backend ${spec.backend} on host ${ctx.hostname}; it is not made again.`);
        let data = !have ? await backend.create(id, spec.size_gib, spec.source)
          : have.size_gib < spec.size_gib ? await backend.extend(id, spec.size_gib) : have;
        const exports = [];
        for (const e of spec.exports) exports.push(await backend.export(id, e));
        // os-volume_upload_image: the data, in the image's format, PUT into the queued image
        const up = spec.upload;
        if (up && !uploaded.has(`${id} ${res.version} ${up.image_id}`)) {
          await backend.copyTo(id, up.disk_format, async (path) => {
            await ctx.uploadImage(up.image_id, createReadStream(path)).catch((err: unknown) => {
              // the image no longer takes data (deleted, or not queued any more): no retry helps
              if (err instanceof HttpError && err.status >= 400 && err.status < 500) throw userError(VolumeErrorCode.refused, `Upload to image ${up.image_id}: ${err.message}`);
              throw err;
            });
          });
          uploaded.add(`${id} ${res.version} ${up.image_id}`);
          ctx.log.info({ volume: id, image: up.image_id }, 'volume uploaded to image');
        }
        // a backup to the object store, chunk by chunk; a restore of one
        const bk = spec.backup;
        if (bk && !backedUp.has(`${id} ${bk.backup_id}`)) {
          const sent = await backUp(ctx, backend, id, bk);
          backedUp.add(`${id} ${bk.backup_id}`);
          ctx.log.info({ volume: id, backup: bk.backup_id, sent, incremental: !!bk.parent_sha256 }, 'volume backed up');
        }
        const rs = spec.restore;
        if (rs && !restored.has(`${id} ${res.version} ${rs.backup_id}`)) {
          data = await restore(ctx, backend, id, rs);
          restored.add(`${id} ${res.version} ${rs.backup_id}`);
          ctx.log.info({ volume: id, backup: rs.backup_id }, 'backup restored into volume');
        }
        const obs: VolumeObserved = {
          state: 'present', size_gib: data.size_gib, location: data.location, ...(exports.length ? { exports } : {}), ...(up ? { uploaded: up.image_id } : {}),
          ...(bk ? { backed_up: bk.backup_id } : {}), ...(rs ? { restored: rs.backup_id } : {}),
        };
        return obs as unknown as Record<string, unknown>;
      });
    },
    async sweep(known: Set<string>) {
      // every 30th sweep (five minutes at the default ten seconds): the audit reads every file
      if (sweeps++ % 30 !== 29) return;
      const a = await driver.audit(known, new Set(), new Set());
      if (a.volumes.length || a.strays.length) ctx.log.warn({ volumes: a.volumes.map((v) => v.id), strays: a.strays }, 'volume backends hold data nothing placed here (stratus volume audit)');
    },
  };
};

const snapshotReconciler: ReconcilerFactory = (drivers, ctx): Reconciler => {
  const driver = driverOf(drivers, VOLUME_SNAPSHOT_KIND);
  return {
    kind: VOLUME_SNAPSHOT_KIND,
    recheckEvery: 6,
    local: async () => [],
    async reconcile(id: string, res: Resource | undefined) {
      if (!res) return;
      const spec = res.spec as SnapshotSpec;
      const backend = driver.backend(spec.backend);
      const gone: SnapshotObserved = { state: 'absent', location: null };
      await guarded(ctx, VOLUME_SNAPSHOT_KIND, id, res.version, gone as unknown as Record<string, unknown>, async () => {
        if (!backend) throw userError(VolumeErrorCode.refused, `No volume backend ${spec.backend} on host ${ctx.hostname}.`);
        if (spec.state === 'absent') {
          await backend.deleteSnapshot(spec.volume_id, id);
          return gone as unknown as Record<string, unknown>;
        }
        const s = await backend.snapshot(spec.volume_id, id);
        return { state: 'present', location: s.location } satisfies SnapshotObserved as unknown as Record<string, unknown>;
      });
    },
  };
};

export const volumeReconcilers: Readonly<Record<string, ReconcilerFactory>> = {
  [VOLUME_KIND]: volumeReconciler,
  [VOLUME_SNAPSHOT_KIND]: snapshotReconciler,
};
