// /servers/{id}/os-volume_attachments (Nova's volume attachments): a server's
// volumes as Nova's block device mappings (compute_block_device_mappings),
// each backed by a Cinder attachment made in-process (volume/service.ts
// ServerVolumes, the state machine of Cinder's attachments API). Attach
// creates the attachment with the server's host as connector, so the volume's
// host exports it; the server's spec lists the volume once exported, its
// host attaches it and reports it, and the engine completes the attachment
// (engine/server-volumes.ts). Detach marks the mapping detaching: the spec
// drops it, the host detaches it, and its report finishes the detach.
// Microversions: tag 2.49 (shown 2.70), delete_on_termination 2.79 (updated
// with PUT 2.85), multiattach volumes 2.60, attachment_id and bdm_uuid
// instead of id on list and show 2.89. Swapping a volume for another is a 409
// (no driver does it: kinds.ts).
import { Type } from 'typebox';
import { sql } from 'kysely';
import { badRequest, conflict, notFound, ApiError } from '../../common/errors.ts';
import { nowIso, uuid } from '../../common/ids.ts';
import { route, type Route, type RouteContext } from '../../http/service.ts';
import { conflictOnDuplicate } from '../../db/unique.ts';
import type { ServerVolumes } from '../../volume/service.ts';
import { kindOf, kindSupports } from '../kinds.ts';
import type { ComputeContext } from './context.ts';
import { mv, q, validate } from './http.ts';
import { isComputeAdmin } from './policy.ts';
import { checkLock } from './action-intent.ts';
import { unexpectedField } from './servers.ts';
import { nextDevice } from '../engine/server-volumes.ts';
import { loadServer, recordAction, serverTarget, type ServerRow } from './servers-store.ts';
import { checkState, VmState } from './state.ts';

const Uuid = Type.String({ pattern: '^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$' });
/** Nova's device name pattern (api/validation/parameter_types). */
const DEVICE_RE = /(^\/dev\/x{0,1}[a-z]{0,1}d{0,1})([a-z]+)[0-9]*$/;
const AttachBody = Type.Object({
  volumeAttachment: Type.Object({
    volumeId: Uuid,
    device: Type.Optional(Type.Union([Type.String({ pattern: DEVICE_RE.source }), Type.Null()])),
    tag: Type.Optional(Type.String({ minLength: 1, maxLength: 60, pattern: '^[^,/]*$' })),
    delete_on_termination: Type.Optional(Type.Boolean()),
  }, { additionalProperties: false }),
}, { additionalProperties: false });
const UpdateBody = Type.Object({
  volumeAttachment: Type.Object({
    volumeId: Uuid,
    // 2.85: the attachment's other fields may be given, unchanged
    device: Type.Optional(Type.Union([Type.String(), Type.Null()])),
    tag: Type.Optional(Type.Union([Type.String(), Type.Null()])),
    delete_on_termination: Type.Optional(Type.Boolean()),
    id: Type.Optional(Type.String()),
    serverId: Type.Optional(Type.String()),
    attachment_id: Type.Optional(Type.String()),
    bdm_uuid: Type.Optional(Type.String()),
  }, { additionalProperties: false }),
}, { additionalProperties: false });

type Bdm = { id: string; server_id: string; volume_id: string; attachment_id: string; device_name: string; tag: string | null; delete_on_termination: number; boot_index: number | null; status: string };

/** The states Nova attaches and detaches volumes in (compute API's check_instance_state); an offloaded server from 2.20. */
const ATTACHABLE = [VmState.ACTIVE, VmState.PAUSED, VmState.STOPPED, VmState.SUSPENDED, VmState.RESIZED, VmState.SOFT_DELETED, VmState.SHELVED];
const attachable = (rc: RouteContext) => (mv(rc).ge('2.20') ? [...ATTACHABLE, VmState.SHELVED_OFFLOADED] : ATTACHABLE);

const bdmMissing = (volumeId: string) => notFound(`No volume Block Device Mapping with id ${volumeId}.`);

export function volumeAttachmentRoutes(ctx: ComputeContext): Route[] {
  const target = (rc: RouteContext) => serverTarget(ctx, rc);
  const volumes = (): ServerVolumes => {
    if (!ctx.volumes) throw badRequest('Block storage is not available: this cloud runs compute without the volume service.');
    return ctx.volumes;
  };
  const bdmsOf = (serverId: string): Promise<Bdm[]> =>
    ctx.db.selectFrom('compute_block_device_mappings').selectAll().where('server_id', '=', serverId).orderBy('created_at').orderBy('id').execute();
  const view = (rc: RouteContext, b: Bdm, create = false) => {
    const v = mv(rc);
    const out: Record<string, unknown> = {};
    if (create || v.lt('2.89')) out.id = b.volume_id;
    Object.assign(out, { serverId: b.server_id, volumeId: b.volume_id, device: b.device_name });
    if (v.ge('2.70')) out.tag = b.tag;
    if (v.ge('2.79')) out.delete_on_termination = b.delete_on_termination === 1;
    if (!create && v.ge('2.89')) Object.assign(out, { attachment_id: b.attachment_id, bdm_uuid: b.id });
    return out;
  };
  const checkKind = (s: ServerRow, action: string) => {
    if (!kindSupports(s.kind, action)) throw conflict(`Cannot '${action}' instance ${s.id}: a ${s.kind} server does not support ${action}.`);
  };
  /** A change of the server's volumes: its spec's version, and its agent woken. */
  const bump = async (s: ServerRow) => {
    await ctx.db.updateTable('compute_servers').set({ version: sql`version + 1`, updated_at: nowIso() }).where('id', '=', s.id).execute();
    if (s.host) ctx.engine.notify(s.host);
  };
  const findBdm = async (s: ServerRow, volumeId: string): Promise<Bdm> => {
    const b = (await bdmsOf(s.id)).find((x) => x.volume_id === volumeId);
    if (!b) throw bdmMissing(volumeId);
    return b;
  };

  return [
    route({
      method: 'GET', path: '/v2.1/servers/:server_id/os-volume_attachments', rule: 'os_compute_api:os-volumes-attachments:index', target,
      async handler(rc) {
        const s = await loadServer(ctx, rc);
        let list = await bdmsOf(s.id);
        const offset = Number(q(rc, 'offset') ?? 0);
        const limitRaw = q(rc, 'limit');
        if (!Number.isInteger(offset) || offset < 0) throw badRequest(`Invalid input for query parameters offset. Value: ${q(rc, 'offset')}.`);
        if (limitRaw !== undefined && (!/^\d+$/.test(limitRaw))) throw badRequest(`Invalid input for query parameters limit. Value: ${limitRaw}.`);
        list = list.slice(offset, limitRaw !== undefined ? offset + Number(limitRaw) : undefined);
        return { volumeAttachments: list.map((b) => view(rc, b)) };
      },
    }),
    route({
      method: 'GET', path: '/v2.1/servers/:server_id/os-volume_attachments/:volume_id', rule: 'os_compute_api:os-volumes-attachments:show', target,
      async handler(rc) {
        const s = await loadServer(ctx, rc);
        return { volumeAttachment: view(rc, await findBdm(s, rc.params.volume_id!)) };
      },
    }),
    route({
      method: 'POST', path: '/v2.1/servers/:server_id/os-volume_attachments', rule: 'os_compute_api:os-volumes-attachments:create', target,
      async handler(rc) {
        const body = validate(AttachBody, rc.body ?? {}).volumeAttachment;
        const v = mv(rc);
        if (body.tag !== undefined && v.lt('2.49')) throw unexpectedField('tag', 'volumeAttachment');
        if (body.delete_on_termination !== undefined && v.lt('2.79')) throw unexpectedField('delete_on_termination', 'volumeAttachment');
        const s = await loadServer(ctx, rc);
        checkLock(rc.cred!, s);
        checkState('attach_volume', s, attachable(rc), [null], false);
        checkKind(s, 'attach_volume');
        const vols = volumes();
        const volumeId = body.volumeId.toLowerCase();
        const vol = await vols.get(volumeId);
        if (!vol || (!isComputeAdmin(rc.cred) && vol.project_id !== rc.cred!.projectId)) throw notFound(`Volume ${volumeId} could not be found.`);
        if (vol.multiattach && v.lt('2.60')) throw badRequest('Multiattach volumes are only supported starting with compute API version 2.60.');
        const bdms = await bdmsOf(s.id);
        if (bdms.some((b) => b.volume_id === volumeId)) throw badRequest(`Invalid volume: volume ${volumeId} already attached`);
        // an offloaded server has no host: the attachment is only reserved until the unshelve places it
        if (!s.host && s.vm_state !== VmState.SHELVED_OFFLOADED) throw conflict(`Cannot 'attach_volume' instance ${s.id} while it is in vm_state ${s.vm_state}: it has no host`);
        // the mapping first, as Nova reserves its block device mapping before Cinder's attachment: the
        // unique (server, device) and (server, volume) keep two attaches at once from sharing either
        const root = kindOf(s.kind).rootDeviceName ?? '/dev/vda';
        const inUse = (d: string) => badRequest(`The supplied device path (${d}) is in use.`);
        const now = nowIso();
        const id = uuid();
        let bdm: (Bdm & { created_at: string; updated_at: string }) | null = null;
        for (let attempt = 0; !bdm; attempt++) {
          const taken = (await bdmsOf(s.id)).map((b) => b.device_name);
          if (body.device && (taken.includes(body.device) || body.device === root)) throw inUse(body.device);
          const row = {
            id, server_id: s.id, volume_id: volumeId, attachment_id: id, device_name: body.device ?? nextDevice(taken, root), tag: body.tag ?? null,
            delete_on_termination: body.delete_on_termination ? 1 : 0, boot_index: null, status: 'reserved', created_at: now, updated_at: now,
          };
          const clash = conflict('a mapping of this server holds the device or the volume');
          try {
            await conflictOnDuplicate(ctx.db.insertInto('compute_block_device_mappings').values(row).execute(), () => clash);
            bdm = row;
          } catch (err) {
            if (err !== clash) throw err;
            if ((await bdmsOf(s.id)).some((b) => b.volume_id === volumeId)) throw badRequest(`Invalid volume: volume ${volumeId} already attached`);
            if (body.device || attempt >= 3) throw inUse(row.device_name);
          }
        }
        try {
          const { attachmentId } = await vols.attach({ volumeId, serverId: s.id, host: s.host, device: bdm.device_name, readOnly: vol.readonly });
          bdm = { ...bdm, attachment_id: attachmentId, status: 'attaching' };
          const made = bdm;
          await ctx.db.transaction().execute(async (tx) => {
            await tx.updateTable('compute_block_device_mappings').set({ attachment_id: made.attachment_id, status: 'attaching', updated_at: nowIso() }).where('id', '=', id).execute();
            await recordAction(tx, s, rc.cred!, rc.req.id, { action: 'attach_volume', event: 'compute_attach_volume' }, s.host);
          });
        } catch (err) {
          if (bdm.attachment_id !== id) await vols.remove(bdm.attachment_id);
          await ctx.db.deleteFrom('compute_block_device_mappings').where('id', '=', id).execute();
          // Cinder's refusal (a volume in use, in maintenance...) is Nova's 400 with its message
          if (err instanceof ApiError && err.status === 400) throw badRequest(err.message);
          throw err;
        }
        await bump(s);
        return { volumeAttachment: view(rc, bdm, true) };
      },
    }),
    route({
      method: 'PUT', path: '/v2.1/servers/:server_id/os-volume_attachments/:volume_id', rule: 'os_compute_api:os-volumes-attachments:update', target, status: 202,
      async handler(rc) {
        const body = validate(UpdateBody, rc.body ?? {}).volumeAttachment;
        const v = mv(rc);
        const oldId = rc.params.volume_id!;
        const s = await loadServer(ctx, rc);
        const newId = body.volumeId.toLowerCase();
        const swap = v.lt('2.85') || newId !== oldId.toLowerCase();
        if (!swap) {
          for (const k of ['device', 'tag', 'id', 'serverId', 'attachment_id', 'bdm_uuid'] as const) {
            if (body[k] === undefined) continue;
            const b = await findBdm(s, oldId);
            const cur: Record<string, unknown> = { device: b.device_name, tag: b.tag, id: b.volume_id, serverId: b.server_id, attachment_id: b.attachment_id, bdm_uuid: b.id };
            if (body[k] !== cur[k]) throw badRequest(`The ${k} can not be updated.`);
          }
        } else {
          for (const k of ['device', 'tag', 'delete_on_termination', 'id', 'serverId', 'attachment_id', 'bdm_uuid'] as const) {
            if (body[k] !== undefined && v.lt('2.85')) throw unexpectedField(k, 'volumeAttachment');
          }
        }
        if (swap) rc.enforce('os_compute_api:os-volumes-attachments:swap', { project_id: s.project_id });
        checkLock(rc.cred!, s);
        const b = await findBdm(s, oldId);
        if (swap) {
          checkState('swap_volume', s, [VmState.ACTIVE, VmState.PAUSED, VmState.RESIZED], [null], false);
          checkKind(s, 'swap_volume');
          return undefined;
        }
        if (body.delete_on_termination !== undefined) {
          await ctx.db.updateTable('compute_block_device_mappings').set({ delete_on_termination: body.delete_on_termination ? 1 : 0, updated_at: nowIso() })
            .where('id', '=', b.id).execute();
        }
        return undefined;
      },
    }),
    route({
      method: 'DELETE', path: '/v2.1/servers/:server_id/os-volume_attachments/:volume_id', rule: 'os_compute_api:os-volumes-attachments:delete', target, status: 202,
      async handler(rc) {
        const s = await loadServer(ctx, rc);
        const volumeId = rc.params.volume_id!.toLowerCase();
        checkLock(rc.cred!, s);
        checkState('detach_volume', s, attachable(rc), [null], false);
        checkKind(s, 'detach_volume');
        const vols = volumes();
        const vol = await vols.get(volumeId);
        if (!vol || (!isComputeAdmin(rc.cred) && vol.project_id !== rc.cred!.projectId)) throw notFound(`Volume ${volumeId} could not be found.`);
        const b = await findBdm(s, volumeId);
        if (b.boot_index === 0) throw badRequest('Cannot detach a root device volume');
        if (!s.host && b.status !== 'detaching') {
          // offloaded: no host holds it, the attachment goes at once
          await vols.remove(b.attachment_id);
          await ctx.db.transaction().execute(async (tx) => {
            await tx.deleteFrom('compute_block_device_mappings').where('id', '=', b.id).execute();
            await recordAction(tx, s, rc.cred!, rc.req.id, { action: 'detach_volume', event: 'api_detach_volume' });
          });
          return;
        }
        if (b.status !== 'attached') throw badRequest("Invalid volume: Unable to detach volume. Volume status must be 'in-use' and attach_status must be 'attached' to detach.");
        await vols.beginDetach(b.attachment_id);
        await ctx.db.transaction().execute(async (tx) => {
          await tx.updateTable('compute_block_device_mappings').set({ status: 'detaching', updated_at: nowIso() }).where('id', '=', b.id).execute();
          await recordAction(tx, s, rc.cred!, rc.req.id, { action: 'detach_volume', event: 'compute_detach_volume' }, s.host);
        });
        await bump(s);
      },
    }),
  ];
}
