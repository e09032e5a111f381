// The legacy attach flow of Cinder's volume actions, as Nova drove it before
// the attachments API: os-reserve (available -> attaching; in-use too for a
// multiattach volume), os-unreserve, os-attach (an attachment row; the volume
// in-use and attached), os-begin_detaching / os-roll_detaching, os-detach and
// the admins' os-force_detach. These record state only, as Cinder's volume
// manager does (its drivers' attach hooks do nothing for file volumes); the
// data path (os-initialize_connection, os-terminate_connection) needs a
// backend and is refused until there is one.
import type { Kysely } from 'kysely';
import { ApiError } from '../common/errors.ts';
import { uuid } from '../common/ids.ts';
import type { RouteContext } from '../http/service.ts';
import { badRequest, invalidVolume, notFound } from './errors.ts';
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

/** Removes every attachment of a volume (a detach to `detached` by an admin, a delete). */
export async function dropAttachmentsOf(tx: VDb, volumeId: string): Promise<void> {
  await tx.deleteFrom('volume_attachments').where('volume_id', '=', volumeId).execute();
}

const UUID_RE = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

/** Runs one legacy attach action on a volume the caller may see; the caller checked the policy. */
export async function attachAction(db: VDb, rc: RouteContext, row: VolumeRow, name: string, args: Record<string, unknown>): Promise<void> {
  const now = new Date().toISOString();
  const id = row.id;
  const setStatus = async (tx: VDb, status: string, from: string[]) => {
    const r = await tx.updateTable('volume_volumes').set({ status, updated_at: now }).where('id', '=', id).where('status', 'in', from).executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  };
  /** in-use while any attachment is attached, else available (and detached). */
  const settle = async (tx: VDb) => {
    const left = await tx.selectFrom('volume_attachments').select('id').where('volume_id', '=', id).where('attach_status', '=', 'attached').executeTakeFirst();
    await tx.updateTable('volume_volumes').set(left ? { status: 'in-use', attach_status: 'attached', updated_at: now } : { status: 'available', attach_status: 'detached', updated_at: now })
      .where('id', '=', id).execute();
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
        const all = await tx.selectFrom('volume_attachments').select('id').where('volume_id', '=', id).execute();
        let target: string | undefined;
        if (attachmentId) {
          target = all.find((a) => a.id === attachmentId)?.id;
          if (!target) throw new ApiError('NotFound', `Volume attachment could not be found with filter: attachment_id = ${attachmentId}.`);
        } else if (all.length === 1) target = all[0]!.id;
        else if (all.length > 1) throw invalidVolume('Detach volume failed: More than one attachment, but no attachment_id provided.');
        if (target) await tx.deleteFrom('volume_attachments').where('id', '=', target).execute();
        await settle(tx);
      });
      return;
    }
    default:
      throw badRequest(`There is no such action: ${name}.`);
  }
}
