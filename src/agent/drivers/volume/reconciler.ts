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
// A failure the backend classifies (no space, a missing source, a refusal)
// is reported and not retried until the version changes; any other is the
// host's (transient): retried with backoff and not reported, so a passing
// trouble never turns a volume to `error`.
import { createReadStream } from 'node:fs';
import { ErrorClass, type Resource } from '../../../fleet/protocol.ts';
import { HttpError } from '../../client.ts';
import { VOLUME_KIND, VOLUME_SNAPSHOT_KIND, VolumeErrorCode, type SnapshotObserved, type SnapshotSpec, type VolumeObserved, type VolumeSpec } from '../../../volume/protocol.ts';
import { toResourceError, userError } from '../../errors.ts';
import type { Reconciler, ReconcilerContext, ReconcilerFactory } from '../../reconciler.ts';
import type { Driver } from '../driver.ts';
import { VolumeDriver } from './driver.ts';

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
        const data = !have ? await backend.create(id, spec.size_gib, spec.source)
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
        const obs: VolumeObserved = {
          state: 'present', size_gib: data.size_gib, location: data.location, ...(exports.length ? { exports } : {}), ...(up ? { uploaded: up.image_id } : {}),
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
