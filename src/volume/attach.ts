// Attaching volumes. Cinder's attachments flow (3.27, what Nova drives, and
// what compute's os-volume_attachments calls in-process through service.ts):
// createAttachment (reserved; with a connector: attaching, and an export of
// the volume for the connector's host in the volume's spec, its version
// bumped), updateAttachment (a connector given later), completeAttachment
// (attached: the volume in-use), beginDetach/rollDetach, deleteAttachment
// (the row and its export go, the volume settles); setExports stores what the
// volume's backend made of the exports. Every change settles the volume's
// status from its attachment rows (settle). Then the legacy flow of Cinder's
// volume actions, as Nova drove it before the attachments API: os-reserve (available -> attaching; in-use too for a
// multiattach volume), os-unreserve, os-attach (an attachment row; the volume
// in-use and attached), os-begin_detaching / os-roll_detaching, os-detach and
// the admins' os-force_detach. These record state only, as Cinder's volume
// manager does (its drivers' attach hooks do nothing for file volumes); they
// make no export (their rows have no connector).
import type { Kysely } from 'kysely';
import { ApiError } from '../common/errors.ts';
import { uuid } from '../common/ids.ts';
import type { RouteContext } from '../http/service.ts';
import { badRequest, invalidVolume, notFound } from './errors.ts';
import { UUID_RE } from './input.ts';
import { parseVolumeHost, type VolumeExport, type VolumeExportObserved } from './protocol.ts';
import type { VolumeTables } from './schema.ts';
import type { VolumeRow } from './view.ts';

type VDb = Kysely<VolumeTables>;

export const ATTACH_ACTIONS = new Set(['os-reserve', 'os-unreserve', 'os-attach', 'os-begin_detaching', 'os-roll_detaching', 'os-detach', 'os-force_detach']);

/** The view's `attachments` entries of volumes (Cinder's: `id` is the volume's, `attachment_id` the attachment's). */
export async function attachmentsOf(db: VDb, volumeIds: string[]): Promise<Map<string, unknown[]>> {
  const out = new Map<string, unknown[]>(volumeIds.map((id) => [id, []]));
  if (!volumeIds.length) return out;
  const rows = await db.selectFrom('volume_attachments').selectAll().where('volume_id', 'in', volumeIds).where('attach_status', '=', 'attached')
    .orderBy('created_at').orderBy('id').execute();
  for (const a of rows) {
    out.get(a.volume_id)!.push({
      id: a.volume_id, attachment_id: a.id, volume_id: a.volume_id, server_id: a.instance_uuid, host_name: a.attached_host,
      device: a.mountpoint, attached_at: a.attach_time ? a.attach_time.replace(/Z$/, '').replace(/\.(\d{3})$/, '.$1000') : null,
    });
  }
  return out;
}

/**
 * Removes every attachment of a volume (a detach to `detached` by an admin,
 * a delete); their exports go with them: the volume's version is bumped when
 * one had a connector, so its host drops them.
 */
export async function dropAttachmentsOf(tx: VDb, volumeId: string, now = new Date().toISOString()): Promise<void> {
  const exported = await tx.selectFrom('volume_attachments').select('id').where('volume_id', '=', volumeId).where('connector', 'is not', null).executeTakeFirst();
  await tx.deleteFrom('volume_attachments').where('volume_id', '=', volumeId).execute();
  if (exported) await bumpVolume(tx, volumeId, now);
}


/** Runs one legacy attach action on a volume the caller may see; the caller checked the policy. */
export async function attachAction(db: VDb, rc: RouteContext, row: VolumeRow, name: string, args: Record<string, unknown>): Promise<void> {
  const now = new Date().toISOString();
  const id = row.id;
  const setStatus = async (tx: VDb, status: string, from: string[]) => {
    const r = await tx.updateTable('volume_volumes').set({ status, updated_at: now }).where('id', '=', id).where('status', 'in', from).executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  };
  /**
   * The volume's status from all its attachment rows, the attachments API's too (settleVolume). A detach
   * first brings a volume left in an attach error or maintenance back (Cinder's volume_detached); a volume
   * being uploaded, extended or deleted keeps its status until that ends (which settles it then).
   */
  const settle = async (tx: VDb, detach = false) => {
    if (detach) {
      await tx.updateTable('volume_volumes').set({ status: 'available', updated_at: now })
        .where('id', '=', id).where('status', 'in', ['error_attaching', 'error_detaching', 'maintenance']).execute();
    }
    await settleVolume(tx, id, now);
  };
  switch (name) {
    case 'os-reserve': {
      const from = row.multiattach ? ['available', 'in-use'] : ['available'];
      if (!(await setStatus(db, 'attaching', from))) throw invalidVolume(`Volume status must be ${from.join(' or ')} to reserve, but the status is ${row.status}.`);
      return;
    }
    case 'os-unreserve':
      await db.transaction().execute(async (tx) => {
        const cur = await tx.selectFrom('volume_volumes').select('status').where('id', '=', id).executeTakeFirst();
        if (cur?.status === 'attaching') await settle(tx);
      });
      return;
    case 'os-attach': {
      const instance = args.instance_uuid ?? null;
      const host = args.host_name ?? null;
      const mountpoint = args.mountpoint;
      const mode = args.mode ?? 'rw';
      if (instance !== null && (typeof instance !== 'string' || !UUID_RE.test(instance))) throw badRequest(`Invalid input for field/attribute instance_uuid. Value: ${JSON.stringify(instance)}. ${JSON.stringify(instance)} is not a 'uuid'`);
      if (host !== null && typeof host !== 'string') throw badRequest(`Invalid input for field/attribute host_name. Value: ${JSON.stringify(host)}. ${JSON.stringify(host)} is not of type 'string'`);
      if (instance === null && host === null) throw badRequest('Invalid request to attach volume to an invalid target');
      if (typeof mountpoint !== 'string' || mountpoint === '') throw badRequest(`Invalid input for field/attribute mountpoint. Value: ${JSON.stringify(mountpoint)}. 'mountpoint' is a required property`);
      if (mode !== 'rw' && mode !== 'ro') throw badRequest(`Invalid request to attach volume with an invalid mode. Attaching mode should be 'rw' or 'ro'`);
      if (row.status === 'maintenance') throw invalidVolume('The volume cannot be attached in maintenance mode.');
      if (row.readonly && mode !== 'ro') throw badRequest(`Invalid attaching mode '${mode}' for volume ${id}.`);
      await db.transaction().execute(async (tx) => {
        const cur = await tx.selectFrom('volume_volumes').selectAll().where('id', '=', id).executeTakeFirst();
        if (!cur) throw notFound.volume(id);
        const allowed = cur.multiattach ? ['attaching', 'available', 'in-use'] : ['attaching', 'available'];
        if (!allowed.includes(cur.status)) throw invalidVolume(cur.status === 'in-use' ? 'volume is already attached and multiple attachments are not enabled' : `Volume status must be available or attaching to attach, but it is ${cur.status}.`);
        if (instance) {
          const same = await tx.selectFrom('volume_attachments').select('id').where('volume_id', '=', id).where('instance_uuid', '=', instance as string).where('attach_status', '=', 'attached').executeTakeFirst();
          if (same) { await settle(tx); return; }
        }
        await tx.insertInto('volume_attachments').values({
          id: uuid(), volume_id: id, instance_uuid: instance as string | null, attached_host: host as string | null, mountpoint,
          attach_status: 'attached', attach_mode: mode as string, connector: null, connection_info: null, attach_time: now, created_at: now, updated_at: now,
          export_location: null, export_format: null,
        }).execute();
        await settle(tx);
      });
      return;
    }
    case 'os-begin_detaching':
      if (!(row.status === 'in-use' && row.attach_status === 'attached' && (await setStatus(db, 'detaching', ['in-use'])))) {
        throw invalidVolume("Unable to detach volume. Volume status must be 'in-use' and attach_status must be 'attached' to detach.");
      }
      return;
    case 'os-roll_detaching':
      await setStatus(db, 'in-use', ['detaching']);
      return;
    case 'os-detach':
    case 'os-force_detach': {
      if (name === 'os-detach' && row.status === 'maintenance') throw invalidVolume('The volume cannot be detached in maintenance mode.');
      const attachmentId = args.attachment_id ?? null;
      if (attachmentId !== null && typeof attachmentId !== 'string') throw badRequest(`Invalid input for field/attribute attachment_id. Value: ${JSON.stringify(attachmentId)}.`);
      await db.transaction().execute(async (tx) => {
        const all = await tx.selectFrom('volume_attachments').select(['id', 'connector']).where('volume_id', '=', id).execute();
        let target: string | undefined;
        if (attachmentId) {
          target = all.find((a) => a.id === attachmentId)?.id;
          if (!target) throw new ApiError('NotFound', `Volume attachment could not be found with filter: attachment_id = ${attachmentId}.`);
        } else if (all.length === 1) target = all[0]!.id;
        else if (all.length > 1) throw invalidVolume('Detach volume failed: More than one attachment, but no attachment_id provided.');
        if (target) {
          await tx.deleteFrom('volume_attachments').where('id', '=', target).execute();
          // an attachment of the attachments API takes its export with it
          if (all.find((a) => a.id === target)?.connector !== null) await bumpVolume(tx, id, now);
        }
        await settle(tx, true);
      });
      return;
    }
    default:
      throw badRequest(`There is no such action: ${name}.`);
  }
}

// ---- the attachments flow (3.27)

export type AttachmentRow = VolumeTables['volume_attachments'];

/** How an attachment's host reaches the volume: in place on the volume's own host, else NBD. */
export const exportProtocol = (volumeHost: string | null, host: string): 'local' | 'nbd' =>
  parseVolumeHost(volumeHost ?? '')?.host === host ? 'local' : 'nbd';

/**
 * The volume's status and attach_status from its attachment rows: in-use while
 * one is attached (detaching when the only ones left are being detached),
 * attaching/reserved while one is on its way, else available and detached.
 * A volume in another status (deleting, error, maintenance...) keeps it.
 */
export async function settleVolume(tx: VDb, volumeId: string, now = new Date().toISOString()): Promise<void> {
  const cur = await tx.selectFrom('volume_volumes').select('status').where('id', '=', volumeId).executeTakeFirst();
  if (!cur || !['available', 'reserved', 'attaching', 'in-use', 'detaching'].includes(cur.status)) return;
  const rest = (await tx.selectFrom('volume_attachments').select('attach_status').where('volume_id', '=', volumeId).execute()).map((r) => r.attach_status);
  const has = (s: string) => rest.includes(s);
  const status = has('attached') ? 'in-use' : has('detaching') ? 'detaching' : has('attaching') ? 'attaching' : has('reserved') ? 'reserved' : 'available';
  const attach = has('attached') || has('detaching') ? 'attached' : has('attaching') || has('reserved') ? 'attaching' : 'detached';
  await tx.updateTable('volume_volumes').set({ status, attach_status: attach, updated_at: now }).where('id', '=', volumeId).execute();
}

const bumpVolume = (tx: VDb, volumeId: string, now: string) =>
  tx.updateTable('volume_volumes').set((eb) => ({ version: eb('version', '+', 1), updated_at: now })).where('id', '=', volumeId).execute();

/** The host a connector names (os-brick's connector `host`); a connector without one is Cinder's 400. */
export function connectorHost(connector: Record<string, unknown>): string {
  const h = connector.host;
  if (typeof h !== 'string' || h === '' || h.length > 255) throw badRequest('Invalid input received: Connector doesn\'t have required information: host');
  return h;
}

export const attachmentNotFound = (id: string) => new ApiError('NotFound', `VolumeAttachment ${id} could not be found.`);

/**
 * Cinder's attachment_create: reserves the volume for `instanceUuid` (a
 * multiattach volume in any attached state, any other only when available)
 * and, with a connector, makes it `attaching` with an export for the
 * connector's host. Refusals are Cinder's (InvalidVolume 400).
 */
export async function createAttachment(db: VDb, o: {
  volumeId: string; instanceUuid: string | null; connector: Record<string, unknown> | null; mode: 'rw' | 'ro'; mountpoint?: string | null;
}): Promise<AttachmentRow> {
  const host = o.connector ? connectorHost(o.connector) : null;
  return db.transaction().execute(async (tx) => {
    const now = new Date().toISOString();
    // the row first: its lock on PostgreSQL, the write lock on SQLite, so two reservations never both see it available
    await tx.updateTable('volume_volumes').set({ updated_at: now }).where('id', '=', o.volumeId).execute();
    const v = await tx.selectFrom('volume_volumes').selectAll().where('id', '=', o.volumeId).executeTakeFirst();
    if (!v) throw notFound.volume(o.volumeId);
    if (v.status === 'maintenance') throw invalidVolume('The volume cannot be attached in maintenance mode.');
    const allowed = v.multiattach ? ['available', 'in-use', 'reserved', 'attaching', 'downloading'] : ['available', 'downloading'];
    if (!allowed.includes(v.status)) {
      throw invalidVolume(`Volume ${v.id} status must be ${v.multiattach ? 'available or in-use or downloading' : 'available or downloading'} to reserve, but the current status is ${v.status}.`);
    }
    if (v.readonly && o.mode !== 'ro') throw badRequest(`Invalid attaching mode '${o.mode}' for volume ${v.id}.`);
    if (o.instanceUuid) {
      const same = await tx.selectFrom('volume_attachments').select('id').where('volume_id', '=', v.id).where('instance_uuid', '=', o.instanceUuid).executeTakeFirst();
      if (same) throw invalidVolume(`Volume ${v.id} is already attached to instance ${o.instanceUuid}.`);
    }
    const row: AttachmentRow = {
      id: uuid(), volume_id: v.id, instance_uuid: o.instanceUuid, attached_host: host, mountpoint: o.mountpoint ?? null,
      attach_status: host ? 'attaching' : 'reserved', attach_mode: o.mode, connector: o.connector ? JSON.stringify(o.connector) : null,
      connection_info: null, attach_time: null, created_at: now, updated_at: now, export_location: null, export_format: null,
    };
    await tx.insertInto('volume_attachments').values(row).execute();
    if (host) await bumpVolume(tx, v.id, now);
    await settleVolume(tx, v.id, now);
    return row;
  });
}

async function loadAttachment(tx: VDb, id: string): Promise<AttachmentRow> {
  const a = await tx.selectFrom('volume_attachments').selectAll().where('id', '=', id).executeTakeFirst();
  if (!a) throw attachmentNotFound(id);
  return a;
}

/** Cinder's attachment_update: the connector (the attaching host) given; the export follows the host. */
export async function updateAttachment(db: VDb, id: string, connector: Record<string, unknown>, mountpoint?: string | null): Promise<AttachmentRow> {
  const host = connectorHost(connector);
  return db.transaction().execute(async (tx) => {
    const now = new Date().toISOString();
    const a = await loadAttachment(tx, id);
    if (a.attach_status !== 'reserved' && a.attach_status !== 'attaching') {
      throw invalidVolume(`Volume attachment ${id} status must be reserved or attaching to be updated, but it is ${a.attach_status}.`);
    }
    const moved = a.attached_host !== host;
    await tx.updateTable('volume_attachments').set({
      connector: JSON.stringify(connector), attached_host: host, attach_status: 'attaching', updated_at: now,
      ...(mountpoint !== undefined ? { mountpoint } : {}), ...(moved ? { export_location: null, export_format: null } : {}),
    }).where('id', '=', id).execute();
    if (moved) await bumpVolume(tx, a.volume_id, now);
    await settleVolume(tx, a.volume_id, now);
    return loadAttachment(tx, id);
  });
}

/**
 * The attachment's server moved (unshelved on a host, or offloaded: null):
 * the connector follows it, the export with it (the volume's version bumped),
 * and the attachment is `attaching` again (`reserved` without a host) until
 * the new host reports it attached, as Nova's attachment_update at unshelve.
 */
export async function moveAttachment(db: VDb, id: string, host: string | null): Promise<void> {
  await db.transaction().execute(async (tx) => {
    const now = new Date().toISOString();
    const a = await tx.selectFrom('volume_attachments').selectAll().where('id', '=', id).executeTakeFirst();
    if (!a || a.attach_status === 'detaching' || (a.attached_host === host && a.connector !== null) || (host === null && a.connector === null)) return;
    await tx.updateTable('volume_attachments').set({
      connector: host ? JSON.stringify({ host }) : null, attached_host: host, attach_status: host ? 'attaching' : 'reserved',
      export_location: null, export_format: null, updated_at: now,
    }).where('id', '=', id).execute();
    await bumpVolume(tx, a.volume_id, now);
    await settleVolume(tx, a.volume_id, now);
  });
}

/** Cinder's attachment_complete (os-complete): attached, the volume in-use. */
export async function completeAttachment(db: VDb, id: string): Promise<void> {
  await db.transaction().execute(async (tx) => {
    const now = new Date().toISOString();
    const a = await loadAttachment(tx, id);
    if (a.attach_status === 'attached') return;
    if (a.attach_status !== 'attaching' && a.attach_status !== 'reserved') {
      throw invalidVolume(`Volume attachment ${id} status must be attaching to complete, but it is ${a.attach_status}.`);
    }
    await tx.updateTable('volume_attachments').set({ attach_status: 'attached', attach_time: now, updated_at: now }).where('id', '=', id).execute();
    await settleVolume(tx, a.volume_id, now);
  });
}

/** A detach begun (os-begin_detaching of the attachment): `detaching`; the export stays until the attachment goes. */
export async function beginDetach(db: VDb, id: string): Promise<void> {
  await db.transaction().execute(async (tx) => {
    const a = await loadAttachment(tx, id);
    if (a.attach_status === 'detaching') return;
    await tx.updateTable('volume_attachments').set({ attach_status: 'detaching', updated_at: new Date().toISOString() }).where('id', '=', id).execute();
    await settleVolume(tx, a.volume_id);
  });
}

/** A detach that failed: attached again. */
export async function rollDetach(db: VDb, id: string): Promise<void> {
  await db.transaction().execute(async (tx) => {
    const a = await tx.selectFrom('volume_attachments').selectAll().where('id', '=', id).executeTakeFirst();
    if (!a || a.attach_status !== 'detaching') return;
    await tx.updateTable('volume_attachments').set({ attach_status: 'attached', updated_at: new Date().toISOString() }).where('id', '=', id).execute();
    await settleVolume(tx, a.volume_id);
  });
}

/** Cinder's attachment_delete: the row goes, with its export (the volume's version bumped); the volume settles. Null when there was none. */
export async function deleteAttachment(db: VDb, id: string): Promise<AttachmentRow | null> {
  return db.transaction().execute(async (tx) => {
    const now = new Date().toISOString();
    const a = await tx.selectFrom('volume_attachments').selectAll().where('id', '=', id).executeTakeFirst();
    if (!a) return null;
    await tx.deleteFrom('volume_attachments').where('id', '=', id).execute();
    if (a.connector !== null) await bumpVolume(tx, a.volume_id, now);
    await settleVolume(tx, a.volume_id, now);
    return a;
  });
}

/**
 * The volume's backend failed a version that asked for exports (a permanent
 * error: transient ones are retried by the agent, not reported): each
 * attachment still waiting for its export is `error_attaching`, its connector
 * (and so its export) dropped, the volume settled. Returns them.
 */
export async function failExports(tx: VDb, volumeId: string): Promise<AttachmentRow[]> {
  const now = new Date().toISOString();
  const waiting = await tx.selectFrom('volume_attachments').selectAll().where('volume_id', '=', volumeId).where('connector', 'is not', null)
    .where('export_location', 'is', null).where('attach_status', 'in', ['reserved', 'attaching']).execute();
  if (!waiting.length) return [];
  await tx.updateTable('volume_attachments').set({ attach_status: 'error_attaching', connector: null, updated_at: now })
    .where('id', 'in', waiting.map((a) => a.id)).execute();
  await bumpVolume(tx, volumeId, now);
  await settleVolume(tx, volumeId, now);
  return waiting;
}

/** The exports a volume's spec lists: one per attachment with a connector (its host). */
export async function exportsOf(tx: VDb, volumeIds: string[], hostOf: Map<string, string | null>): Promise<Map<string, VolumeExport[]>> {
  const out = new Map<string, VolumeExport[]>(volumeIds.map((id) => [id, []]));
  if (!volumeIds.length) return out;
  const rows = await tx.selectFrom('volume_attachments').select(['id', 'volume_id', 'attached_host', 'attach_mode'])
    .where('volume_id', 'in', volumeIds).where('connector', 'is not', null).orderBy('created_at').orderBy('id').execute();
  for (const a of rows) {
    if (!a.attached_host) continue;
    out.get(a.volume_id)!.push({ attachment_id: a.id, host: a.attached_host, protocol: exportProtocol(hostOf.get(a.volume_id) ?? null, a.attached_host), read_only: a.attach_mode === 'ro' });
  }
  return out;
}

/**
 * Stores what the volume's backend made of its exports (a report of the
 * volume's current version). Returns the instances whose attachment's export
 * changed (their servers' specs change with it).
 */
export async function setExports(tx: VDb, volumeId: string, observed: VolumeExportObserved[]): Promise<string[]> {
  const rows = await tx.selectFrom('volume_attachments').select(['id', 'instance_uuid', 'export_location', 'export_format'])
    .where('volume_id', '=', volumeId).where('connector', 'is not', null).execute();
  const byId = new Map(observed.map((e) => [e.attachment_id, e]));
  const changed: string[] = [];
  for (const a of rows) {
    const e = byId.get(a.id);
    const location = e?.location ?? null;
    const format = e ? e.format ?? 'raw' : null;
    if (a.export_location === location && a.export_format === format) continue;
    await tx.updateTable('volume_attachments').set({ export_location: location, export_format: format, updated_at: new Date().toISOString() }).where('id', '=', a.id).execute();
    if (a.instance_uuid) changed.push(a.instance_uuid);
  }
  return changed;
}

/**
 * Deletes a volume a server held with delete_on_termination, once detached:
 * as a user's delete would (at once without a host, else `deleting` for its
 * backend), only when available or error and without snapshots or transfer
 * (Nova logs and keeps the volume otherwise). False when it was not deleted.
 */
export async function deleteUnattached(db: VDb, id: string): Promise<boolean> {
  return db.transaction().execute(async (tx) => {
    const now = new Date().toISOString();
    await tx.updateTable('volume_volumes').set({ updated_at: now }).where('id', '=', id).execute();
    const v = await tx.selectFrom('volume_volumes').selectAll().where('id', '=', id).executeTakeFirst();
    // a volume still `creating` that no backend took yet (a server's create undone) goes too
    if (!v || !(['available', 'error'].includes(v.status) || (v.status === 'creating' && v.host === null)) || v.attach_status === 'attached') return false;
    if (await tx.selectFrom('volume_snapshots').select('id').where('volume_id', '=', id).executeTakeFirst()) return false;
    if (await tx.selectFrom('volume_transfers').select('id').where('volume_id', '=', id).executeTakeFirst()) return false;
    if (await tx.selectFrom('volume_attachments').select('id').where('volume_id', '=', id).executeTakeFirst()) return false;
    if (v.host === null) {
      await tx.deleteFrom('volume_metadata').where('volume_id', '=', id).execute();
      await tx.deleteFrom('volume_image_metadata').where('volume_id', '=', id).execute();
      await tx.deleteFrom('volume_volumes').where('id', '=', id).execute();
    } else {
      await tx.updateTable('volume_volumes').set((eb) => ({ status: 'deleting', version: eb('version', '+', 1), updated_at: now })).where('id', '=', id).execute();
    }
    return true;
  });
}
