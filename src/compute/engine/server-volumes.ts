// Volumes attached to servers, on the engine's side (the API's side is
// api/volume-attachments.ts): a server's block device mappings
// (compute_block_device_mappings) resolved to the agent's ServerVolumeSpec
// once the volume's host has exported them, and what the server's host
// reports of them (ServerObserved.volumes) carried to Cinder's attachment
// (volume/service.ts ServerVolumes):
//
//   attaching --observed attached-->  attached (Cinder's attachment complete: the volume in-use)
//   attaching --observed failed-->    gone (the attachment rolled back: the volume available; a user message
//                                      on the volume, the instance action's event in Error)
//   attaching --the volume's backend failed its export-->  gone the same way
//   detaching --absent from a report of the current version-->  gone (the attachment and its export removed)
//   detaching --observed failed-->    attached again (the volume back in-use; the event in Error)
//
// A server gone (deleted) loses its attachments, and the volumes it held with
// delete_on_termination are deleted (releaseServerVolumes). A server offloaded
// or placed again (unshelve) takes its attachments along (moveServerVolumes).
import { PowerState } from '../schema.ts';
import type { Logger } from 'pino';
import { nowIso } from '../../common/ids.ts';
import type { Db } from '../../db/database.ts';
import { releaseClaim } from './release.ts';
import { badRequest } from '../../common/errors.ts';
import type { ServerVolumes } from '../../volume/service.ts';
import type { ServerObserved, ServerVolumeSpec } from './protocol.ts';

/** The metadata key a container's mount of a volume is asked with: `volume_mount:<volume_id>` = the path inside the container. */
export const VOLUME_MOUNT_KEY = 'volume_mount:';

/** The next free /dev/vdX of a server (its root disk's name counts as taken). */
export function nextDevice(taken: Iterable<string>, root: string | null): string {
  const used = new Set([...taken, root ?? '/dev/vda']);
  for (let i = 1; i < 26; i++) {
    const d = `/dev/vd${String.fromCharCode(97 + i)}`;
    if (!used.has(d)) return d;
  }
  throw badRequest("No free disk device names for prefix 'vd'");
}

/** The attached (or attaching) volumes of servers whose export is known, in attach order. */
export async function volumeSpecs(db: Db, volumes: ServerVolumes, servers: Array<{ id: string; kind: string }>, metadata: Map<string, Record<string, string>>): Promise<Map<string, ServerVolumeSpec[]>> {
  const out = new Map<string, ServerVolumeSpec[]>();
  if (!servers.length) return out;
  const kinds = new Map(servers.map((s) => [s.id, s.kind]));
  const bdms = await db.selectFrom('compute_block_device_mappings').selectAll().where('server_id', 'in', servers.map((s) => s.id))
    .where('status', 'in', ['attaching', 'attached']).orderBy('created_at').orderBy('id').execute();
  if (!bdms.length) return out;
  const exports = await volumes.exports(bdms.map((b) => b.attachment_id));
  const readOnly = new Map<string, boolean>();
  for (const b of bdms) {
    const e = exports.get(b.attachment_id);
    if (!e) continue;
    if (!readOnly.has(b.volume_id)) readOnly.set(b.volume_id, (await volumes.get(b.volume_id))?.readonly ?? false);
    const mount = kinds.get(b.server_id) === 'container' ? metadata.get(b.server_id)?.[`${VOLUME_MOUNT_KEY}${b.volume_id}`] : undefined;
    const spec: ServerVolumeSpec = {
      attachment_id: b.attachment_id, volume_id: b.volume_id, device: b.device_name, location: e.location, format: e.format,
      read_only: readOnly.get(b.volume_id)!, boot_index: b.boot_index,
      ...(mount ? { mount_path: mount } : {}),
    };
    out.set(b.server_id, [...(out.get(b.server_id) ?? []), spec]);
  }
  return out;
}

/** Bumps the version of servers (their specs changed) and returns their hosts. */
export async function bumpServers(db: Db, ids: string[]): Promise<string[]> {
  if (!ids.length) return [];
  const rows = await db.selectFrom('compute_servers').select(['id', 'host']).where('id', 'in', ids).where('deleted_at', 'is', null).execute();
  if (!rows.length) return [];
  await db.updateTable('compute_servers').set((eb) => ({ version: eb('version', '+', 1), updated_at: nowIso() })).where('id', 'in', rows.map((r) => r.id)).execute();
  return [...new Set(rows.map((r) => r.host).filter((h): h is string => !!h))];
}

/** Finishes the server's open instance action event `event` (the newest), Success or Error with details. */
export async function finishVolumeEvent(db: Db, serverId: string, event: string, error?: string): Promise<void> {
  const open = await db.selectFrom('compute_instance_action_events as e').innerJoin('compute_instance_actions as a', 'a.id', 'e.action_id')
    .select(['e.id', 'e.action_id']).where('a.server_id', '=', serverId).where('e.event', '=', event).where('e.finish_time', 'is', null)
    .orderBy('e.id', 'desc').executeTakeFirst();
  if (!open) return;
  const now = nowIso();
  const said = error && error.length > 2000 ? `${error.slice(0, 2000)}…` : error;
  await db.updateTable('compute_instance_action_events').set({ finish_time: now, result: error ? 'Error' : 'Success', ...(said ? { details: said, traceback: said } : {}) })
    .where('id', '=', open.id).execute();
  await db.updateTable('compute_instance_actions').set({ finish_time: now, updated_at: now, message: error ? 'Error' : null }).where('id', '=', open.action_id).execute();
}

/**
 * What a report of `version` (the server's row at `rowVersion`) says of the
 * server's volumes. True when the server's spec changed (its version was
 * bumped: a failed attach dropped, a failed detach back).
 */
export async function applyVolumeObservations(db: Db, volumes: ServerVolumes, log: Logger, serverId: string, rowVersion: number, version: number, observed: ServerObserved): Promise<boolean> {
  if (!observed.volumes) return false;
  const bdms = await db.selectFrom('compute_block_device_mappings').selectAll().where('server_id', '=', serverId).execute();
  if (!bdms.length) return false;
  const seen = new Map(observed.volumes.map((v) => [v.attachment_id, v]));
  const now = nowIso();
  let bump = false;
  for (const b of bdms) {
    const o = seen.get(b.attachment_id);
    if (b.status === 'attaching' && o?.state === 'attached') {
      await volumes.complete(b.attachment_id);
      await db.updateTable('compute_block_device_mappings').set({ status: 'attached', updated_at: now }).where('id', '=', b.id).execute();
      await finishVolumeEvent(db, serverId, 'compute_attach_volume');
      log.info({ server: serverId, volume: b.volume_id }, 'volume attached');
    } else if (b.status === 'attaching' && o?.state === 'failed') {
      await failAttach(db, volumes, log, b, o.message || 'attaching the volume failed', true);
      bump = true;
    } else if (b.status === 'detaching' && o?.state === 'failed') {
      const message = o.message || 'detaching the volume failed';
      await volumes.rollDetach(b.attachment_id);
      await db.updateTable('compute_block_device_mappings').set({ status: 'attached', updated_at: now }).where('id', '=', b.id).execute();
      await finishVolumeEvent(db, serverId, 'compute_detach_volume', `Volume ${b.volume_id} could not be detached: ${message}`);
      log.warn({ server: serverId, volume: b.volume_id, err: message }, 'volume detach failed');
      bump = true;
    } else if (b.status === 'detaching' && !o && version === rowVersion) {
      await volumes.remove(b.attachment_id);
      await db.deleteFrom('compute_block_device_mappings').where('id', '=', b.id).execute();
      await finishVolumeEvent(db, serverId, 'compute_detach_volume');
      log.info({ server: serverId, volume: b.volume_id }, 'volume detached');
    }
  }
  return bump;
}

/**
 * A server placed on `host` (unshelved) or offloaded (null): each of its
 * volumes' attachments follows it (a new export for the new host), and its
 * mapping is attaching again until that host reports it attached.
 */
export async function moveServerVolumes(db: Db, volumes: ServerVolumes, serverId: string, host: string | null): Promise<void> {
  const bdms = await db.selectFrom('compute_block_device_mappings').selectAll().where('server_id', '=', serverId).where('status', 'in', ['attaching', 'attached']).execute();
  for (const b of bdms) {
    await volumes.move(b.attachment_id, host);
    await db.updateTable('compute_block_device_mappings').set({ status: 'attaching', updated_at: nowIso() }).where('id', '=', b.id).execute();
  }
}

/** An attach that failed (on the server's host, or its volume's export): the attachment and mapping go, the event is in Error. */
async function failAttach(db: Db, volumes: ServerVolumes, log: Logger, b: { id: string; server_id: string; volume_id: string; attachment_id: string }, message: string, userMessage: boolean): Promise<void> {
  await volumes.remove(b.attachment_id, userMessage ? {} : undefined);
  await db.deleteFrom('compute_block_device_mappings').where('id', '=', b.id).execute();
  await finishVolumeEvent(db, b.server_id, 'compute_attach_volume', `Volume ${b.volume_id} could not be attached: ${message}`);
  log.warn({ server: b.server_id, volume: b.volume_id, err: message }, 'volume attach failed, rolled back');
}

/**
 * The volume's backend could not export attachments (Cinder's side already
 * failed them, with a user message): the servers' attaching mappings go.
 * Returns the servers whose mappings went.
 */
export async function failExports(db: Db, volumes: ServerVolumes, log: Logger, failed: Array<{ attachmentId: string; message: string }>): Promise<string[]> {
  if (!failed.length) return [];
  const bdms = await db.selectFrom('compute_block_device_mappings').selectAll().where('attachment_id', 'in', failed.map((f) => f.attachmentId)).execute();
  for (const b of bdms) await failAttach(db, volumes, log, b, failed.find((f) => f.attachmentId === b.attachment_id)!.message, false);
  return [...new Set(bdms.map((b) => b.server_id))];
}

/** A server gone: its attachments go (the volumes available again), and the volumes it held with delete_on_termination are deleted. */
export async function releaseServerVolumes(db: Db, volumes: ServerVolumes, log: Logger, serverId: string): Promise<void> {
  const bdms = await db.selectFrom('compute_block_device_mappings').selectAll().where('server_id', '=', serverId).execute();
  for (const b of bdms) {
    await volumes.remove(b.attachment_id);
    await db.deleteFrom('compute_block_device_mappings').where('id', '=', b.id).execute();
    if (b.delete_on_termination && !(await volumes.deleteVolume(b.volume_id))) {
      log.warn({ server: serverId, volume: b.volume_id }, 'volume with delete_on_termination kept: it cannot be deleted now');
    }
  }
}

/**
 * Servers booting from a volume, placed and waiting in task
 * block_device_mapping: the one whose root (boot_index 0) is exported on its
 * host goes on to spawning (handed to the host); the one whose root mapping
 * is gone (its export failed) is ERROR, as Nova's build aborted while prepping
 * block devices, its claim released. Returns the hosts to wake.
 */
export async function settleBootVolumes(db: Db, volumes: ServerVolumes, log: Logger, serverIds?: string[]): Promise<string[]> {
  let qb = db.selectFrom('compute_servers').select(['id', 'host', 'version']).where('task_state', '=', 'block_device_mapping')
    .where('host', 'is not', null).where('deleted_at', 'is', null);
  if (serverIds) {
    if (!serverIds.length) return [];
    qb = qb.where('id', 'in', serverIds);
  }
  const waiting = await qb.execute();
  const hosts = new Set<string>();
  for (const s of waiting) {
    const root = await db.selectFrom('compute_block_device_mappings').select(['attachment_id']).where('server_id', '=', s.id).where('boot_index', '=', 0)
      .where('status', 'in', ['attaching', 'attached']).executeTakeFirst();
    const now = nowIso();
    if (root) {
      if (!(await volumes.exports([root.attachment_id])).has(root.attachment_id)) continue;
      const r = await db.updateTable('compute_servers').set({ task_state: 'spawning', version: s.version + 1, updated_at: now })
        .where('id', '=', s.id).where('version', '=', s.version).where('task_state', '=', 'block_device_mapping').executeTakeFirst();
      if (Number(r.numUpdatedRows)) hosts.add(s.host!);
      continue;
    }
    const message = `Build of instance ${s.id} aborted: Failure prepping block device.`;
    await db.transaction().execute(async (tx) => {
      const r = await tx.updateTable('compute_servers').set({
        vm_state: 'error', task_state: null, host: null, power_state: PowerState.NOSTATE, version: s.version + 1, updated_at: now,
        fault: JSON.stringify({ code: 500, message, details: message, created: now }),
      }).where('id', '=', s.id).where('version', '=', s.version).where('task_state', '=', 'block_device_mapping').executeTakeFirst();
      if (Number(r.numUpdatedRows)) await releaseClaim(tx, s.id);
    });
    log.warn({ server: s.id }, 'boot volume could not be exported: build aborted');
  }
  return [...hosts];
}

/**
 * The volumes made for servers' mappings at create (image, snapshot or blank
 * to volume; mappings `creating`), all or the one `volumeId`: an available
 * one is attached (reserved until the server is placed), one in error aborts
 * the build (the server ERROR with Nova's fault; the volumes stay with their
 * mappings until the server is deleted). A server held in
 * block_device_mapping with no mapping left `creating` goes to scheduling.
 * True when some server is to be scheduled.
 */
export async function settleMadeVolumes(db: Db, volumes: ServerVolumes, log: Logger, volumeId?: string): Promise<boolean> {
  let qb = db.selectFrom('compute_block_device_mappings').selectAll().where('status', '=', 'creating');
  if (volumeId) qb = qb.where('volume_id', '=', volumeId);
  const pending = await qb.execute();
  const servers = new Set<string>();
  for (const b of pending) {
    const v = await volumes.get(b.volume_id);
    if (v?.status === 'creating') continue;
    servers.add(b.server_id);
    const now = nowIso();
    if (v?.status === 'available') {
      const claimed = await db.updateTable('compute_block_device_mappings').set({ status: 'reserved', updated_at: now }).where('id', '=', b.id).where('status', '=', 'creating').executeTakeFirst();
      if (!Number(claimed.numUpdatedRows)) continue;
      try {
        const { attachmentId } = await volumes.attach({ volumeId: b.volume_id, serverId: b.server_id, host: null, device: b.device_name });
        await db.updateTable('compute_block_device_mappings').set({ attachment_id: attachmentId, status: 'attaching', updated_at: nowIso() }).where('id', '=', b.id).execute();
        continue;
      } catch (err) {
        await db.updateTable('compute_block_device_mappings').set({ status: 'error', updated_at: nowIso() }).where('id', '=', b.id).execute();
        await abortBuild(db, b.server_id, `Build of instance ${b.server_id} aborted: Volume ${b.volume_id} could not be attached: ${(err as Error).message}`);
        log.warn({ server: b.server_id, volume: b.volume_id, err: (err as Error).message }, 'a volume made for a server could not be attached');
        continue;
      }
    }
    // error, or gone
    await db.updateTable('compute_block_device_mappings').set({ status: 'error', updated_at: now }).where('id', '=', b.id).where('status', '=', 'creating').execute();
    await abortBuild(db, b.server_id, `Build of instance ${b.server_id} aborted: Volume ${b.volume_id} did not finish being created. And its status is ${v?.status ?? 'deleted'}.`);
    log.warn({ server: b.server_id, volume: b.volume_id, status: v?.status ?? 'deleted' }, 'a volume made for a server failed: build aborted');
  }
  let schedule = false;
  for (const id of servers) {
    const left = await db.selectFrom('compute_block_device_mappings').select('id').where('server_id', '=', id).where('status', '=', 'creating').executeTakeFirst();
    if (left) continue;
    const r = await db.updateTable('compute_servers').set((eb) => ({ task_state: 'scheduling', version: eb('version', '+', 1), updated_at: nowIso() }))
      .where('id', '=', id).where('task_state', '=', 'block_device_mapping').where('host', 'is', null).where('vm_state', '=', 'building').where('deleted_at', 'is', null).executeTakeFirst();
    if (Number(r.numUpdatedRows)) schedule = true;
  }
  return schedule;
}

/** A server's build aborted before it was scheduled: ERROR with Nova's fault. */
async function abortBuild(db: Db, serverId: string, message: string): Promise<void> {
  const now = nowIso();
  await db.updateTable('compute_servers').set((eb) => ({
    vm_state: 'error', task_state: null, version: eb('version', '+', 1), updated_at: now,
    fault: JSON.stringify({ code: 500, message, details: message, created: now }),
  })).where('id', '=', serverId).where('vm_state', '=', 'building').where('host', 'is', null).where('deleted_at', 'is', null).execute();
}
