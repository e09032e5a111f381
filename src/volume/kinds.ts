// The volume service's resource kinds on the fleet (protocol.ts is the wire
// contract): `volume` on the host of its `host@backend#pool`, and
// `volume_snapshot` on its volume's host. Versions are the rows' `version`
// (bumped by the API on create, extend and delete). Reports go through
// lifecycle.ts, the one path that moves a volume or snapshot on from
// `creating`, `extending` and `deleting`.
//
// Scheduling (the simple one, Cinder's capacity filter + weigher at its
// plainest): the volume hosts' pools (VolumePoolStats) arrive with their
// registration and heartbeats (HostInfo.volume_pools, protocol 2.3) and are
// kept in this process. At each watch round of a volume host, a `creating`
// volume without a host is placed: a volume from a snapshot or another volume
// on its source's host@backend#pool; any other on the pool with the most free
// space among those its type's extra specs fit (Cinder's capabilities filter,
// pools.ts: `volume_backend_name`, `storage_protocol`, `vendor_name`...),
// when that pool is on the watching host; when pools are known and none fits,
// the volume is `error` with Cinder's user message (lifecycle.ts). A host whose
// pools this replica has not heard of claims a volume only when no pool is known.
import { Type } from 'typebox';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { ResourceKind } from '../fleet/kinds.ts';
import type { HostInfo, Resource, ResourceReport } from '../fleet/protocol.ts';
import { applyExportFailure, applyExports, applySnapshotReport, applyVolumeReport, failScheduling, placeVolume, snapshotSpecOf, specOf, uploadOf } from './lifecycle.ts';
import { exportsOf } from './attach.ts';
import { jobSpecOf, type Backups } from './backups.ts';
import { poolFits } from './pools.ts';
import { parseVolumeHost, VOLUME_KIND, VOLUME_SNAPSHOT_KIND, volumeHost, type SnapshotObserved, type VolumeObserved, type VolumePoolStats } from './protocol.ts';
import type { VolumeTables } from './schema.ts';

type VDb = Kysely<VolumeTables>;

const VolumeObservedBody = Type.Object({
  state: Type.Union([Type.Literal('present'), Type.Literal('absent')]),
  size_gib: Type.Integer({ minimum: 0 }),
  location: Type.Union([Type.String({ maxLength: 4096 }), Type.Null()]),
  uploaded: Type.Optional(Type.String({ maxLength: 64 })),
  backed_up: Type.Optional(Type.String({ maxLength: 64 })),
  restored: Type.Optional(Type.String({ maxLength: 64 })),
  exports: Type.Optional(Type.Array(Type.Object({
    attachment_id: Type.String({ maxLength: 64 }), location: Type.String({ maxLength: 4096 }),
    // since 2.4; an export reported without it is raw
    format: Type.Optional(Type.Union([Type.Literal('raw'), Type.Literal('qcow2')])),
  }, { additionalProperties: false }), { maxItems: 64 })),
}, { additionalProperties: false });

const SnapshotObservedBody = Type.Object({
  state: Type.Union([Type.Literal('present'), Type.Literal('absent')]),
  location: Type.Union([Type.String({ maxLength: 4096 }), Type.Null()]),
}, { additionalProperties: false });

/** A host's pools as last heard, with when (ms). */
interface HeardPools { pools: VolumePoolStats[]; at: number }

/** Pools not heard of for this long are not placed on. */
const POOL_STALE_MS = 120_000;

export interface VolumeKinds {
  kinds: ResourceKind[];
  /** A host's registration or heartbeat (its pools, when it serves volumes). */
  heard(hostname: string, info: HostInfo): void;
  /** The pools last heard (scheduler-stats). */
  pools(): VolumePoolStats[];
  /** Every volume host heard of, with when (ms) and its pools, stale ones too (os-services: `down`). */
  hosts(): Array<{ hostname: string; at: number; up: boolean; pools: VolumePoolStats[] }>;
}

export function volumeKinds(o: {
  vdb: VDb; log: Logger; now?: () => number;
  /** The instances whose attachments' exports a report changed (their servers' specs list the volumes once exported). */
  exportsChanged?(instanceIds: string[]): Promise<void>;
  /** Attachments whose export the backend failed (their servers roll the attach back). */
  exportsFailed?(failed: Array<{ attachmentId: string; instance: string | null; message: string }>): Promise<void>;
  /** An upload to an image (os-volume_upload_image) the backend failed: the image is killed. */
  uploadFailed?(imageId: string): Promise<void>;
  /** A volume's create finished: available, or error (its backend failed it, or no pool fits). */
  created?(volumeId: string): Promise<void>;
  /** Backups (backups.ts): a report for a volume holding a backup or restore job. */
  backups?: Pick<Backups, 'report'>;
  /** A report changed a volume or snapshot (its status, or it is gone): for the resource event stream. */
  changed?(c: { type: 'volume' | 'volume_snapshot'; id: string; project_id: string; name: string | null; gone: boolean }): void;
}): VolumeKinds {
  const db = o.vdb;
  const now = o.now ?? Date.now;
  const heard = new Map<string, HeardPools>();

  const onHost = (hostname: string) => (h: string | null) => parseVolumeHost(h ?? '')?.host === hostname;


  /** Places the `creating` volumes without a host that belong on `hostname`. */
  async function schedule(hostname: string): Promise<void> {
    const waiting = await db.selectFrom('volume_volumes').select(['id', 'volume_type_id', 'snapshot_id', 'source_volid'])
      .where('status', '=', 'creating').where('host', 'is', null).orderBy('created_at').limit(100).execute();
    if (!waiting.length) return;
    const fresh = [...heard].filter(([, p]) => now() - p.at < POOL_STALE_MS);
    for (const v of waiting) {
      let target: string | null = null;
      if (v.snapshot_id || v.source_volid) {
        // in the source's backend: a reflink copy or a qcow2 overlay of it
        const srcVolume = v.snapshot_id
          ? (await db.selectFrom('volume_snapshots').select('volume_id').where('id', '=', v.snapshot_id).executeTakeFirst())?.volume_id
          : v.source_volid;
        const src = srcVolume ? await db.selectFrom('volume_volumes').select('host').where('id', '=', srcVolume).executeTakeFirst() : undefined;
        if (src?.host && parseVolumeHost(src.host)?.host === hostname) target = src.host;
      } else {
        const specs = (await extraSpecs([v.volume_type_id])).get(v.volume_type_id) ?? {};
        const backend = specs.volume_backend_name ?? null;
        const known = fresh.flatMap(([, p]) => p.pools);
        const pools = known.filter((p) => poolFits(p, specs))
          .sort((a, b) => b.free_capacity_gb - a.free_capacity_gb || a.name.localeCompare(b.name));
        if (pools.length) {
          if (parseVolumeHost(pools[0]!.name)?.host === hostname) target = pools[0]!.name;
        } else if (known.length) {
          // Cinder's NoValidBackend: no pool the type's extra specs fit
          if (await failScheduling(db, v.id)) {
            o.log.info({ volume: v.id }, 'no pool fits the volume type: volume in error');
            await o.created?.(v.id).catch((err: Error) => o.log.warn({ err: err.message, volume: v.id }, 'telling of a volume made failed'));
          }
        } else if (!fresh.some(([h]) => h !== hostname)) {
          // nothing heard of any pool (yet): the watching volume host takes it on its default pool
          target = volumeHost(hostname, backend ?? 'file', 'default');
        }
      }
      if (target && await placeVolume(db, v.id, target)) o.log.info({ volume: v.id, host: target }, 'volume placed');
    }
  }

  async function extraSpecs(typeIds: string[]): Promise<Map<string, Record<string, string>>> {
    const out = new Map<string, Record<string, string>>();
    if (!typeIds.length) return out;
    for (const r of await db.selectFrom('volume_type_extra_specs').selectAll().where('type_id', 'in', typeIds).execute()) {
      out.set(r.type_id, { ...(out.get(r.type_id) ?? {}), [r.key]: r.value });
    }
    return out;
  }

  const volumeKind: ResourceKind = {
    kind: VOLUME_KIND,
    observed: VolumeObservedBody,
    async placed(hostname) {
      await schedule(hostname);
      const rows = await db.selectFrom('volume_volumes').select(['id', 'host', 'version']).where('host', 'like', `${hostname}@%`).execute();
      return new Map(rows.filter((r) => onHost(hostname)(r.host)).map((r) => [r.id, r.version]));
    },
    async desired(ids, hostname) {
      if (!ids.length) return [];
      const rows = await db.selectFrom('volume_volumes').selectAll().where('id', 'in', ids).execute();
      const specs = await extraSpecs([...new Set(rows.map((r) => r.volume_type_id))]);
      const exports = await exportsOf(db, rows.map((r) => r.id), new Map(rows.map((r) => [r.id, r.host])));
      const out: Resource[] = [];
      for (const r of rows) {
        if (!onHost(hostname)(r.host)) continue;
        const spec = specOf(r, specs.get(r.volume_type_id) ?? {}, exports.get(r.id) ?? [], r.backup_job ? await jobSpecOf(db, r) : {});
        if (spec) out.push({ kind: VOLUME_KIND, id: r.id, version: r.version, spec });
      }
      return out;
    },
    async report(hostname, reports: ResourceReport[]) {
      for (const r of reports) {
        const row = await db.selectFrom('volume_volumes').select(['host', 'upload', 'status', 'project_id', 'name', 'backup_job']).where('id', '=', r.id).executeTakeFirst();
        if (!row || !onHost(hostname)(row.host)) continue;
        const failed = await applyExportFailure(db, r.id, r.version, r.error);
        if (failed.length) {
          o.log.warn({ volume: r.id, attachments: failed.map((f) => f.attachmentId), err: r.error!.message }, 'volume exports failed');
          await o.exportsFailed?.(failed.map((f) => ({ ...f, message: r.error!.message }))).catch((err: Error) => o.log.warn({ err: err.message, volume: r.id }, 'telling servers of failed exports failed'));
        }
        const servers = await applyExports(db, r.id, r.version, r.observed as VolumeObserved);
        if (servers.length) await o.exportsChanged?.(servers).catch((err: Error) => o.log.warn({ err: err.message, volume: r.id }, 'telling servers of exports failed'));
        // a backup or restore the volume holds: done or failed (before the volume's own report, which its end makes stale)
        if (row.backup_job && o.backups) {
          await o.backups.report(r.id, r.version, r.observed as VolumeObserved, r.error).catch((err: Error) => o.log.warn({ err: err.message, volume: r.id }, 'applying a backup report failed'));
          // its end moved the volume (backing-up/restoring-backup -> its status again): the event stream hears it
          const after = await db.selectFrom('volume_volumes').select('status').where('id', '=', r.id).executeTakeFirst();
          if (after && after.status !== row.status) o.changed?.({ type: 'volume', id: r.id, project_id: row.project_id, name: row.name, gone: false });
        }
        const outcome = await applyVolumeReport(db, r.id, r.version, r.observed as VolumeObserved, r.error);
        if (outcome !== 'stale' && outcome !== 'ignored') {
          o.log.info({ volume: r.id, host: hostname, outcome }, 'volume report');
          o.changed?.({ type: 'volume', id: r.id, project_id: row.project_id, name: row.name, gone: outcome === 'deleted' });
        }
        if (row.status === 'creating' && (outcome === 'available' || outcome === 'error')) {
          await o.created?.(r.id).catch((err: Error) => o.log.warn({ err: err.message, volume: r.id }, 'telling of a volume made failed'));
        }
        const up = uploadOf(row);
        if (outcome === 'error_uploading' && up) await o.uploadFailed?.(up.image_id).catch((err: Error) => o.log.warn({ err: err.message, image: up.image_id }, 'killing the image of a failed upload failed'));
      }
    },
  };

  const snapshotKind: ResourceKind = {
    kind: VOLUME_SNAPSHOT_KIND,
    observed: SnapshotObservedBody,
    async placed(hostname) {
      const rows = await db.selectFrom('volume_snapshots').innerJoin('volume_volumes', 'volume_volumes.id', 'volume_snapshots.volume_id')
        .select(['volume_snapshots.id as id', 'volume_snapshots.version as version', 'volume_volumes.host as host'])
        .where('volume_volumes.host', 'like', `${hostname}@%`).execute();
      return new Map(rows.filter((r) => onHost(hostname)(r.host)).map((r) => [r.id, r.version]));
    },
    async desired(ids, hostname) {
      if (!ids.length) return [];
      const rows = await db.selectFrom('volume_snapshots').selectAll().where('id', 'in', ids).execute();
      const out: Resource[] = [];
      for (const r of rows) {
        const v = await db.selectFrom('volume_volumes').select('host').where('id', '=', r.volume_id).executeTakeFirst();
        if (!v || !onHost(hostname)(v.host)) continue;
        const spec = snapshotSpecOf(r, v.host);
        if (spec) out.push({ kind: VOLUME_SNAPSHOT_KIND, id: r.id, version: r.version, spec });
      }
      return out;
    },
    async report(hostname, reports: ResourceReport[]) {
      for (const r of reports) {
        const row = await db.selectFrom('volume_snapshots').innerJoin('volume_volumes', 'volume_volumes.id', 'volume_snapshots.volume_id')
          .select(['volume_volumes.host as host', 'volume_snapshots.project_id as project_id', 'volume_snapshots.name as name']).where('volume_snapshots.id', '=', r.id).executeTakeFirst();
        if (!row || !onHost(hostname)(row.host)) continue;
        const outcome = await applySnapshotReport(db, r.id, r.version, r.observed as SnapshotObserved, r.error);
        if (outcome !== 'stale' && outcome !== 'ignored') {
          o.log.info({ snapshot: r.id, host: hostname, outcome }, 'snapshot report');
          o.changed?.({ type: 'volume_snapshot', id: r.id, project_id: row.project_id, name: row.name, gone: outcome === 'deleted' });
        }
      }
    },
  };

  return {
    kinds: [volumeKind, snapshotKind],
    heard(hostname, info) {
      if (!info.kinds[VOLUME_KIND]) { heard.delete(hostname); return; }
      heard.set(hostname, { pools: info.volume_pools ?? [], at: now() });
    },
    pools: () => [...heard.values()].filter((p) => now() - p.at < POOL_STALE_MS).flatMap((p) => p.pools),
    hosts: () => [...heard].map(([hostname, p]) => ({ hostname, at: p.at, up: now() - p.at < POOL_STALE_MS, pools: p.pools })),
  };
}
