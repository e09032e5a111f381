// Cinder's attachments API (3.27; os-complete 3.44; mode 3.54): what Nova
// drives to attach a volume to a server, served on the state machine of
// attach.ts (which compute's os-volume_attachments also runs in-process).
// An attachment with a connector puts an export of the volume in its spec for
// the connector's `host` (`local` on the volume's own host, else `nbd`); the
// backend reports where the export is, and `connection_info` shows it with
// Stratus's own driver_volume_type (`stratus_local`: a path on the host, or
// `nbd`: an NBD URL), `location` null until the backend has made it.
import { isAdmin } from '../http/policy.ts';
import { objectOf } from '../http/body.ts';
import { route, type Route, type RouteContext } from '../http/service.ts';
import {
  attachmentNotFound, completeAttachment, createAttachment, deleteAttachment, exportProtocol, updateAttachment, type AttachmentRow,
} from './attach.ts';
import type { VolumeContext } from './context.ts';
import { badRequest, notFound } from './errors.ts';
import { UUID_RE } from './input.ts';
import { mv, since } from './http.ts';
import { allTenants, applyFilters, applySort, paginate } from './list.ts';
import { cinderTime } from './view.ts';


/** Cinder's connection_info of an attachment with a connector: how its host reaches the data. */
export function connectionInfo(a: AttachmentRow, volumeHost: string | null): Record<string, unknown> | null {
  if (a.connector === null || !a.attached_host) return null;
  const protocol = exportProtocol(volumeHost, a.attached_host);
  return {
    driver_volume_type: protocol === 'local' ? 'stratus_local' : 'nbd',
    data: {
      volume_id: a.volume_id, access_mode: a.attach_mode, host: a.attached_host,
      location: a.export_location, format: a.export_format ?? null, export_status: a.export_location ? 'ready' : 'pending',
    },
  };
}

const summary = (a: AttachmentRow) => ({ id: a.id, status: a.attach_status, instance: a.instance_uuid, volume_id: a.volume_id });
const detail = (a: AttachmentRow, volumeHost: string | null) => ({
  ...summary(a), attached_at: cinderTime(a.attach_time), detached_at: null, attach_mode: a.attach_mode, connection_info: connectionInfo(a, volumeHost),
});

function connectorOf(v: unknown): Record<string, unknown> | null {
  if (v === undefined || v === null) return null;
  const c = objectOf(v);
  if (!c) throw badRequest(`Invalid input for field/attribute connector. Value: ${JSON.stringify(v)}. ${JSON.stringify(v)} is not of type 'object'`);
  return c;
}

export function attachmentRoutes(ctx: VolumeContext): Route[] {
  const db = ctx.vdb;

  /** An attachment of a volume the caller may see (another project's: 404), with its volume's host. */
  async function load(rc: RouteContext, id: string): Promise<{ a: AttachmentRow; host: string | null; projectId: string }> {
    const a = await db.selectFrom('volume_attachments').selectAll().where('id', '=', id).executeTakeFirst();
    const v = a ? await db.selectFrom('volume_volumes').select(['project_id', 'host']).where('id', '=', a.volume_id).executeTakeFirst() : undefined;
    if (!a || !v || (!isAdmin(rc.cred!) && v.project_id !== rc.cred!.projectId)) throw attachmentNotFound(id);
    return { a, host: v.host, projectId: v.project_id };
  }

  async function list(rc: RouteContext, withDetail: boolean) {
    const c = rc.cred!;
    const v = mv(rc);
    const all = allTenants(rc);
    let q = db.selectFrom('volume_attachments').innerJoin('volume_volumes', 'volume_volumes.id', 'volume_attachments.volume_id')
      .selectAll('volume_attachments').select(['volume_volumes.host as volume_host', 'volume_volumes.project_id as project_id']);
    if (!all) q = q.where('volume_volumes.project_id', '=', c.projectId ?? '');
    const rows = await q.orderBy('volume_attachments.created_at', 'desc').orderBy('volume_attachments.id', 'desc').execute();
    let items = rows.map((r) => ({
      id: r.id, volume_id: r.volume_id, instance_id: r.instance_uuid, status: r.attach_status, attach_status: r.attach_status,
      created_at: cinderTime(r.created_at), project_id: r.project_id, row: r,
    }));
    items = applySort(rc.query, applyFilters(rc.query, items, { resource: 'attachment', admin: isAdmin(c), v })) as typeof items;
    const p = paginate(rc.req, rc.query, items, { collection: 'attachments', path: rc.req.url.split('?')[0]!.replace(/^\/volume/, ''), notFound: attachmentNotFound });
    items = p.page as typeof items;
    return {
      attachments: items.map((i) => (withDetail ? detail(i.row, i.row.volume_host) : summary(i.row))),
      ...(p.links ? { attachments_links: p.links } : {}),
    };
  }

  return [
    since('3.27', route({
      method: 'POST', path: '/attachments', rule: 'volume:attachment_create',
      async handler(rc) {
        const body = objectOf(objectOf(rc.body)?.attachment);
        if (!body) throw badRequest("Invalid input for field/attribute attachment. 'attachment' is a required property");
        const volumeId = body.volume_uuid;
        if (typeof volumeId !== 'string' || !UUID_RE.test(volumeId)) throw badRequest(`Invalid input for field/attribute volume_uuid. Value: ${JSON.stringify(volumeId ?? null)}. 'volume_uuid' must be a uuid`);
        const instance = body.instance_uuid ?? null;
        if (instance !== null && (typeof instance !== 'string' || !UUID_RE.test(instance))) throw badRequest(`Invalid input for field/attribute instance_uuid. Value: ${JSON.stringify(instance)}. ${JSON.stringify(instance)} is not a 'uuid'`);
        const connector = connectorOf(body.connector);
        let mode: 'rw' | 'ro' = 'rw';
        if (body.mode !== undefined) {
          if (mv(rc).lt('3.54')) throw badRequest("Invalid input for field/attribute attachment. Additional properties are not allowed ('mode' was unexpected)");
          if (body.mode !== 'rw' && body.mode !== 'ro') throw badRequest(`Invalid input for field/attribute mode. Value: ${JSON.stringify(body.mode)}. ${JSON.stringify(body.mode)} is not one of ['rw', 'ro']`);
          mode = body.mode;
        }
        const v = await db.selectFrom('volume_volumes').select(['project_id', 'host']).where('id', '=', volumeId).executeTakeFirst();
        if (!v || (!isAdmin(rc.cred!) && v.project_id !== rc.cred!.projectId)) throw notFound.volume(volumeId);
        const a = await createAttachment(db, { volumeId, instanceUuid: instance as string | null, connector, mode });
        return { attachment: detail(a, v.host) };
      },
    })),
    since('3.27', route({ method: 'GET', path: '/attachments', rule: 'volume:attachment_get_all', handler: (rc) => list(rc, false) })),
    since('3.27', route({ method: 'GET', path: '/attachments/detail', rule: 'volume:attachment_get_all', handler: (rc) => list(rc, true) })),
    since('3.27', route({
      method: 'GET', path: '/attachments/:attachment_id', rule: 'volume:attachment_get',
      async handler(rc) {
        const { a, host } = await load(rc, rc.params.attachment_id!);
        return { attachment: detail(a, host) };
      },
    })),
    since('3.27', route({
      method: 'PUT', path: '/attachments/:attachment_id', rule: 'volume:attachment_update',
      async handler(rc) {
        const body = objectOf(objectOf(rc.body)?.attachment);
        if (!body) throw badRequest("Invalid input for field/attribute attachment. 'attachment' is a required property");
        const connector = connectorOf(body.connector);
        if (!connector) throw badRequest("Invalid input for field/attribute attachment. 'connector' is a required property");
        const { host } = await load(rc, rc.params.attachment_id!);
        const a = await updateAttachment(db, rc.params.attachment_id!, connector, typeof connector.mountpoint === 'string' ? connector.mountpoint : undefined);
        return { attachment: detail(a, host) };
      },
    })),
    since('3.44', route({
      method: 'POST', path: '/attachments/:attachment_id/action', rule: 'volume:attachment_complete', status: 204,
      async handler(rc) {
        const body = objectOf(rc.body);
        if (!body || Object.keys(body).length !== 1) throw badRequest('Malformed request body');
        const name = Object.keys(body)[0]!;
        if (name !== 'os-complete') throw badRequest(`There is no such action: ${name}`);
        await load(rc, rc.params.attachment_id!);
        await completeAttachment(db, rc.params.attachment_id!);
      },
    })),
    since('3.27', route({
      method: 'DELETE', path: '/attachments/:attachment_id', rule: 'volume:attachment_delete',
      async handler(rc) {
        const { a } = await load(rc, rc.params.attachment_id!);
        await deleteAttachment(db, a.id);
        // Cinder answers with the volume's attachments left
        const left = await db.selectFrom('volume_attachments').selectAll().where('volume_id', '=', a.volume_id).orderBy('created_at').execute();
        return { attachments: left.map(summary) };
      },
    })),
  ];
}
