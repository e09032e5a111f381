// The block-storage service (Cinder v3) under /volume: its route table (each
// route served under both `/v3/{project_id}/...` and the project-less
// `/v3/...`), policy, Cinder's fault envelope and microversions. API and
// database here; the volume hosts' agents make volumes and snapshots real
// through the fleet (kinds.ts: placement and reports; lifecycle.ts: the
// status machine).
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Db } from '../db/database.ts';
import type { ResourceKind } from '../fleet/kinds.ts';
import type { HostInfo } from '../fleet/protocol.ts';
import { PUBLIC } from '../http/policy.ts';
import { volumeKinds } from './kinds.ts';
import type { EventBus } from '../http/events.ts';
import { route, type Route, type Service } from '../http/service.ts';
import { deleteUnattached } from './attach.ts';
import { DEFAULT_VOLUME_CONFIG, type VolumeConfig, type VolumeContext, type VolumeImages } from './context.ts';
import { renderCinderError } from './errors.ts';
import { extensionRoutes } from './extensions.ts';
import { gate, setup, versionEntry } from './http.ts';
import { volumeRules } from './policy.ts';
import { messageRoutes } from './messages.ts';
import { poolRoutes } from './pools.ts';
import { encryptionRoutes } from './encryption.ts';
import { serviceRoutes, type VolumeHostState } from './services.ts';
import type { VolumePoolStats } from './protocol.ts';
import { qosRoutes } from './qos.ts';
import { quotaRoutes } from './quotas.ts';
import type { VolumeTables } from './schema.ts';
import { ensureDefaultType, typeRoutes } from './types.ts';
import { baseUrl } from './view.ts';
import { snapshotRoutes } from './snapshots.ts';
import { backupService } from './backups.ts';
import type { ObjectStore } from '../object/service.ts';
import { transferRoutes } from './transfers.ts';
import { volumeMaker, volumeRoutes } from './volumes.ts';
import type { Credentials } from '../http/auth.ts';
import { uploadingTo } from './images.ts';
import { attachmentRoutes } from './attachments.ts';
import { beginDetach, completeAttachment, createAttachment, deleteAttachment, moveAttachment, rollDetach } from './attach.ts';
import { MessageAction, MessageDetail, recordMessage } from './messages.ts';

export type { VolumeConfig } from './context.ts';

/** Each API route under `/v3/{project_id}` and under the project-less `/v3` (Cinder accepts both; 3.67 announces the latter). */
const bothForms = (routes: Route[]): Route[] =>
  routes.flatMap((r) => [{ ...r, path: `/v3/:project_id${r.path}` }, { ...r, path: `/v3${r.path}` }]);

/** What compute sees of a volume (Nova's checks before it attaches one). */
export interface VolumeBrief {
  id: string; project_id: string; name: string | null; size: number; status: string; attach_status: string;
  multiattach: boolean; readonly: boolean; availability_zone: string;
  /** Whether a server may boot from it (Cinder's bootable). */
  bootable: boolean;
}

/**
 * Compute's in-process way to Cinder's attachments (os-volume_attachments,
 * server deletes, and the server agents' reports): the same functions the
 * /attachments routes run (attach.ts), so both APIs share one state machine.
 */
export interface ServerVolumes {
  /** A volume by id, whatever its project (the caller checks it); null when none. */
  get(volumeId: string): Promise<VolumeBrief | null>;
  /**
   * Cinder's attachment_create with a connector for `host` (the server's): the volume `attaching`, an export made for that
   * host; without a host (a server offloaded) only reserved. Cinder's errors (ApiError) on refusal.
   */
  attach(o: { volumeId: string; serverId: string; host: string | null; device: string; readOnly?: boolean }): Promise<{ attachmentId: string }>;
  /** The server moved to `host` (null: offloaded): the attachment's connector and export follow it. */
  move(attachmentId: string, host: string | null): Promise<void>;
  /** The server holds the volume: attached, the volume in-use. */
  complete(attachmentId: string): Promise<void>;
  beginDetach(attachmentId: string): Promise<void>;
  rollDetach(attachmentId: string): Promise<void>;
  /** The attachment goes (detached, the server gone, or an attach that failed: `failure` leaves a user message on the volume). */
  remove(attachmentId: string, failure?: { requestId?: string }): Promise<void>;
  /** The backends' exports of attachments: attachment id -> where and in which format its host finds the data. */
  exports(attachmentIds: string[]): Promise<Map<string, { location: string; format: 'raw' | 'qcow2' }>>;
  /** Deletes a volume a server held with delete_on_termination (when it can be deleted: available or error, no snapshots). */
  deleteVolume(volumeId: string): Promise<boolean>;
  /** Called with the servers whose attachments' exports changed (their specs list the volumes once exported). */
  onExportsChanged(fn: (serverIds: string[]) => Promise<void>): void;
  /** Whether a volume is `uploading` into the image (os-volume_upload_image): the agents' upload of its bytes is taken then. */
  uploading(imageId: string): Promise<boolean>;
  /**
   * Cinder's volume create in `cred`'s project for a server's block device mapping (Nova's volume from an image, a
   * snapshot or blank: `imageRef`, `snapshot_id`, `size`, `name`...): its id, `creating`. Cinder's errors (ApiError).
   */
  create(cred: Credentials, volume: Record<string, unknown>): Promise<string>;
  /** Called with a volume whose create finished (available or error). */
  onCreated(fn: (volumeId: string) => Promise<void>): void;
  /** Called with the attachments whose export the volume's backend failed (already error_attaching, the volume settled). */
  onExportsFailed(fn: (failed: Array<{ attachmentId: string; serverId: string | null; message: string }>) => Promise<void>): void;
}

export interface VolumeService {
  /** Compute's way to attachments. */
  servers: ServerVolumes;
  service: Service;
  /** Makes what must exist before the first request (the default volume type). */
  start(): Promise<void>;
}

export function createVolumeService(o: {
  db: Db; log: Logger; config?: Partial<VolumeConfig>;
  /** Glance in process (volumes from and to images); absent: both refused. */
  images?: VolumeImages;
  /** Where the volume kinds go (the volume hosts' agents make them real) and where hosts' registrations are heard (their pools). */
  fleet?: {
    registerKind(kind: ResourceKind): void; onRegister(listener: (hostname: string, info: HostInfo) => void): void; addRoutes?(routes: Route[]): void;
    /** Wakes a host's watch (absent: the hosts see a change at their watch's next recheck). */
    notify?(host: string): void;
  };
  /** The object store, where backups go (backups.ts); absent: backups are refused. */
  objects?: ObjectStore;
  /** The resource event stream: backends' reports of volumes and snapshots (the API's writes: src/volume/events.ts). */
  events?: EventBus;
}): VolumeService {
  const ctx: VolumeContext = {
    db: o.db, vdb: o.db as unknown as Kysely<VolumeTables>, log: o.log, config: { ...DEFAULT_VOLUME_CONFIG, ...o.config }, images: o.images,
  };
  const exportListeners: Array<(ids: string[]) => Promise<void>> = [];
  const createdListeners: Array<(id: string) => Promise<void>> = [];
  const makeVolume = volumeMaker(ctx);
  const backups = backupService(ctx, { objects: o.objects, makeVolume, pools: () => pools() });
  const failureListeners: Array<(failed: Array<{ attachmentId: string; serverId: string | null; message: string }>) => Promise<void>> = [];
  let pools: () => VolumePoolStats[] = () => [];
  let hosts: () => VolumeHostState[] = () => [];
  // A change a volume host acts on (a volume or snapshot made, extended, deleted, exported, uploaded; a `creating`
  // volume is placed at a volume host's watch round) wakes the volume hosts' watches at once, as Cinder's API casts
  // to its volume service, instead of waiting for their next recheck (the fleet's recheckMs, 3 s).
  const wakeVolumeHosts = (): void => {
    for (const h of hosts()) o.fleet?.notify?.(h.hostname);
  };
  if (o.fleet) {
    const vk = volumeKinds({
      vdb: ctx.vdb, log: o.log, backups,
      async exportsChanged(ids) {
        for (const fn of exportListeners) await fn(ids);
      },
      async created(id) {
        for (const fn of createdListeners) await fn(id);
      },
      changed(c) {
        if (!o.events) return;
        if (c.gone) {
          o.events.publish({ type: c.type, id: c.id, project_id: c.project_id, name: c.name, action: 'deleted', status: 'deleted' });
          return;
        }
        const table = c.type === 'volume' ? 'volume_volumes' : 'volume_snapshots';
        void ctx.vdb.selectFrom(table).select('status').where('id', '=', c.id).executeTakeFirst().then((r) => {
          if (r) o.events!.publish({ type: c.type, id: c.id, project_id: c.project_id, name: c.name, action: 'updated', status: r.status });
        }, () => undefined);
      },
      async exportsFailed(failed) {
        for (const fn of failureListeners) await fn(failed.map((f) => ({ attachmentId: f.attachmentId, serverId: f.instance, message: f.message })));
      },
      // as Cinder, the image of a failed upload goes; one the data did reach (an agent that crashed before its
      // report, whose retry found the image no longer queued) stays
      async uploadFailed(imageId) {
        const img = await o.images?.getImage(imageId);
        if (img && !img.deleted_at && img.status !== 'active') await o.images!.deleteImage(imageId);
      },
    });
    for (const k of vk.kinds) o.fleet.registerKind(k);
    // the volume hosts' agents send and fetch backups' chunks here
    o.fleet.addRoutes?.(backups.agentRoutes);
    o.fleet.onRegister((h, info) => vk.heard(h, info));
    pools = () => vk.pools();
    hosts = () => vk.hosts();
  }
  const routes: Route[] = [
    route({
      method: 'GET', path: '/', rule: PUBLIC,
      handler: (rc) => {
        rc.reply.code(300);
        return { versions: [versionEntry(baseUrl(rc.req))] };
      },
    }),
    // `/v3/` too (the server ignores a trailing slash)
    route({ method: 'GET', path: '/v3', rule: PUBLIC, handler: (rc) => ({ versions: [versionEntry(baseUrl(rc.req))] }) }),
    ...bothForms([...volumeRoutes(ctx, { purgeBackup: (id) => backups.purge(id) }), ...snapshotRoutes(ctx), ...transferRoutes(ctx), ...backups.routes, ...typeRoutes(ctx), ...encryptionRoutes(ctx), ...qosRoutes(ctx), ...quotaRoutes(ctx), ...messageRoutes(ctx), ...attachmentRoutes(ctx), ...poolRoutes(() => pools()), ...serviceRoutes(ctx, () => hosts()), ...extensionRoutes()]),
  ];
  const vdb = ctx.vdb;
  // Compute's attachment steps change a volume's status (reserved, attaching, in-use, detaching, available)
  // outside Cinder's routes: each is published here, as the API's writes and the backends' reports are.
  const publishVolume = async (volumeId: string | null | undefined): Promise<void> => {
    if (!o.events || !volumeId) return;
    const r = await vdb.selectFrom('volume_volumes').select(['project_id', 'name', 'status']).where('id', '=', volumeId).executeTakeFirst();
    if (r) o.events.publish({ type: 'volume', id: volumeId, project_id: r.project_id, name: r.name, action: 'updated', status: r.status });
  };
  const volumeOf = async (attachmentId: string): Promise<string | undefined> =>
    (await vdb.selectFrom('volume_attachments').select('volume_id').where('id', '=', attachmentId).executeTakeFirst())?.volume_id;
  /** Runs an attachment step, then publishes its volume's status (read after the step). */
  const published = async (attachmentId: string, step: () => Promise<void>): Promise<void> => {
    const volumeId = await volumeOf(attachmentId);
    await step();
    await publishVolume(volumeId).catch(() => undefined);
  };
  const servers: ServerVolumes = {
    async get(id) {
      const r = await vdb.selectFrom('volume_volumes').selectAll().where('id', '=', id).executeTakeFirst();
      return r ? {
        id: r.id, project_id: r.project_id, name: r.name, size: r.size, status: r.status, attach_status: r.attach_status,
        multiattach: !!r.multiattach, readonly: !!r.readonly, availability_zone: r.availability_zone, bootable: !!r.bootable,
      } : null;
    },
    async attach(a) {
      const row = await createAttachment(vdb, { volumeId: a.volumeId, instanceUuid: a.serverId, connector: a.host ? { host: a.host } : null, mode: a.readOnly ? 'ro' : 'rw', mountpoint: a.device });
      wakeVolumeHosts();
      await publishVolume(a.volumeId).catch(() => undefined);
      return { attachmentId: row.id };
    },
    move: async (id, host) => {
      await moveAttachment(vdb, id, host);
      wakeVolumeHosts();
    },
    complete: (id) => published(id, () => completeAttachment(vdb, id)),
    beginDetach: (id) => published(id, () => beginDetach(vdb, id)),
    rollDetach: (id) => published(id, () => rollDetach(vdb, id)),
    async remove(id, failure) {
      const gone = await deleteAttachment(vdb, id);
      wakeVolumeHosts();
      await publishVolume(gone?.volume_id).catch(() => undefined);
      if (gone && failure) {
        const v = await vdb.selectFrom('volume_volumes').select('project_id').where('id', '=', gone.volume_id).executeTakeFirst();
        if (v) await recordMessage(vdb, { projectId: v.project_id, resourceType: 'VOLUME', resourceUuid: gone.volume_id, action: MessageAction.attachVolume, detail: MessageDetail.unknownError, requestId: failure.requestId });
      }
    },
    async exports(ids) {
      const out = new Map<string, { location: string; format: 'raw' | 'qcow2' }>();
      if (!ids.length) return out;
      const rows = await vdb.selectFrom('volume_attachments').select(['id', 'export_location', 'export_format']).where('id', 'in', ids).where('export_location', 'is not', null).execute();
      for (const r of rows) out.set(r.id, { location: r.export_location!, format: r.export_format === 'qcow2' ? 'qcow2' : 'raw' });
      return out;
    },
    deleteVolume: async (id) => {
      const deleting = await deleteUnattached(vdb, id);
      if (deleting) wakeVolumeHosts();
      return deleting;
    },
    uploading: (imageId) => uploadingTo(vdb, imageId),
    onExportsChanged(fn) {
      exportListeners.push(fn);
    },
    onExportsFailed(fn) {
      failureListeners.push(fn);
    },
    create: async (cred, volume) => {
      const id = await makeVolume(cred, volume);
      wakeVolumeHosts();
      return id;
    },
    onCreated(fn) {
      createdListeners.push(fn);
    },
  };
  return {
    servers,
    service: {
      name: 'volume', prefix: '/volume', routes, rules: volumeRules, renderError: renderCinderError, gate,
      setup(app) {
        setup(app);
        // every write the API answered 2xx: a change for a volume host, or nothing to it (one watch round)
        app.addHook('onResponse', async (req, reply) => {
          if (req.method !== 'GET' && req.method !== 'HEAD' && reply.statusCode < 300) wakeVolumeHosts();
        });
      },
    },
    async start() {
      await ensureDefaultType(ctx);
      // deletes of backups a stopped server had begun
      void backups.resumeDeletes().catch((err: Error) => o.log.warn({ err: err.message }, 'resuming backup deletes failed'));
    },
  };
}
