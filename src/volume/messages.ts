// User messages (Cinder's /messages, 3.3; pagination 3.5): failures a user
// should see, recorded when a backend reports that an operation failed
// (lifecycle.ts), worded with Cinder's action and detail texts and event ids
// (`VOLUME_<resource>_<action>_<detail>`). Kept 30 days.
import type { Kysely } from 'kysely';
import { uuid } from '../common/ids.ts';
import { isAdmin } from '../http/policy.ts';
import { route, type Route, type RouteContext } from '../http/service.ts';
import type { VolumeContext } from './context.ts';
import { notFound } from './errors.ts';
import { mv, since } from './http.ts';
import { allTenants, applyFilters, applySort, paginate } from './list.ts';
import type { VolumeTables } from './schema.ts';
import { baseUrl, cinderTime } from './view.ts';

type VDb = Kysely<VolumeTables>;
type MessageRow = VolumeTables['volume_messages'];

/** Cinder's message actions (message_field.Action) this cloud records. */
export const MessageAction = {
  scheduleAllocateVolume: ['001', 'schedule allocate volume'],
  attachVolume: ['002', 'attach volume'],
  copyVolumeToImage: ['003', 'copy volume to image'],
  copyImageToVolume: ['005', 'copy image to volume'],
  extendVolume: ['007', 'extend volume'],
  createVolumeFromBackend: ['008', 'create volume from backend storage'],
  snapshotCreate: ['009', 'create snapshot'],
  snapshotDelete: ['010', 'delete snapshot'],
} as const;
/** Cinder's message details (message_field.Detail) this cloud records. */
export const MessageDetail = {
  unknownError: ['001', 'An unknown error occurred.'],
  noBackendAvailable: ['003', 'Could not find any available weighted backend.'],
  failedToUploadVolume: ['004', 'Failed to upload volume to image at backend.'],
  notEnoughSpaceForImage: ['007', 'Image used for creating volume exceeds available space.'],
  snapshotCreateError: ['013', 'Snapshot failed to create.'],
  snapshotIsBusy: ['015', 'Snapshot is busy.'],
  snapshotDeleteError: ['016', 'Snapshot failed to delete.'],
} as const;
type Pair = readonly [string, string];
const ACTIONS = new Map<string, string>(Object.values(MessageAction).map(([id, text]) => [id, text]));
const DETAILS = new Map<string, string>(Object.values(MessageDetail).map(([id, text]) => [id, text]));

const TTL_MS = 30 * 24 * 3600 * 1000;

/** Records a user message for a project (in the caller's transaction). */
export async function recordMessage(tx: VDb, o: { projectId: string; resourceType: 'VOLUME' | 'SNAPSHOT'; resourceUuid: string; action: Pair; detail: Pair; requestId?: string }): Promise<void> {
  const now = Date.now();
  await tx.insertInto('volume_messages').values({
    id: uuid(), project_id: o.projectId, request_id: o.requestId ?? `req-${uuid()}`, resource_type: o.resourceType, resource_uuid: o.resourceUuid,
    action_id: o.action[0], detail_id: o.detail[0], message_level: 'ERROR',
    created_at: new Date(now).toISOString(), expires_at: new Date(now + TTL_MS).toISOString(),
  }).execute();
}

const eventId = (m: MessageRow) => `VOLUME_${m.resource_type}_${m.action_id}_${m.detail_id}`;

function view(rc: RouteContext, m: MessageRow): Record<string, unknown> {
  return {
    id: m.id, event_id: eventId(m),
    user_message: `${ACTIONS.get(m.action_id) ?? m.action_id}:${DETAILS.get(m.detail_id) ?? MessageDetail.unknownError[1]}`,
    message_level: m.message_level, created_at: cinderTime(m.created_at), guaranteed_until: cinderTime(m.expires_at),
    request_id: m.request_id, resource_type: m.resource_type, ...(m.resource_uuid ? { resource_uuid: m.resource_uuid } : {}),
    links: [
      { href: `${baseUrl(rc.req)}/v3/${m.project_id}/messages/${m.id}`, rel: 'self' },
      { href: `${baseUrl(rc.req)}/${m.project_id}/messages/${m.id}`, rel: 'bookmark' },
    ],
  };
}

export function messageRoutes(ctx: VolumeContext): Route[] {
  const db = ctx.vdb;
  const live = () => new Date().toISOString();
  async function load(rc: RouteContext, id: string): Promise<MessageRow> {
    const c = rc.cred!;
    const m = await db.selectFrom('volume_messages').selectAll().where('id', '=', id).where('expires_at', '>', live()).executeTakeFirst();
    if (!m || (!isAdmin(c) && m.project_id !== c.projectId)) throw notFound.message(id);
    return m;
  }
  return [
    since('3.3', route({
      method: 'GET', path: '/messages', rule: 'message:get_all',
      async handler(rc) {
        const c = rc.cred!;
        const v = mv(rc);
        const all = allTenants(rc);
        let q = db.selectFrom('volume_messages').selectAll().where('expires_at', '>', live());
        if (!all) q = q.where('project_id', '=', c.projectId ?? '');
        const rows = await q.execute();
        let items = rows.map((m) => ({ id: m.id, created_at: cinderTime(m.created_at), resource_uuid: m.resource_uuid, resource_type: m.resource_type, event_id: eventId(m), request_id: m.request_id, message_level: m.message_level, row: m }));
        items = applySort(rc.query, applyFilters(rc.query, items, { resource: 'message', admin: isAdmin(c), v })) as typeof items;
        let links: unknown[] | undefined;
        if (v.ge('3.5')) {
          const p = paginate(rc.req, rc.query, items, { collection: 'messages', path: rc.req.url.split('?')[0]!.replace(/^\/volume/, ''), notFound: notFound.message });
          items = p.page as typeof items;
          links = p.links;
        }
        return { messages: items.map((i) => view(rc, i.row)), ...(links ? { messages_links: links } : {}) };
      },
    })),
    since('3.3', route({ method: 'GET', path: '/messages/:message_id', rule: 'message:get', handler: async (rc) => ({ message: view(rc, await load(rc, rc.params.message_id!)) }) })),
    since('3.3', route({
      method: 'DELETE', path: '/messages/:message_id', rule: 'message:delete', status: 204,
      async handler(rc) {
        const m = await load(rc, rc.params.message_id!);
        await db.deleteFrom('volume_messages').where('id', '=', m.id).execute();
      },
    })),
  ];
}
