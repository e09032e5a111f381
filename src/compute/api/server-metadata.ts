// /servers/{id}/metadata and /servers/{id}/tags (2.26).
import { sql } from 'kysely';
import { Type } from 'typebox';
import { badRequest, conflict, forbidden, notFound } from '../../common/errors.ts';
import { nowIso } from '../../common/ids.ts';
import { route, type Route, type RouteContext } from '../../http/service.ts';
import type { ComputeContext } from './context.ts';
import { endpoint, validate, versioned } from './http.ts';
import { isComputeAdmin } from './policy.ts';
import { projectLimits } from './quota.ts';
import { MetadataBody, metadataItem } from './servers.ts';
import { loadServer, metadataOf, serverTarget, tagsOf, type ServerRow } from './servers-store.ts';
import { checkState, invalidState, VmState } from './state.ts';

const CHANGEABLE = [VmState.ACTIVE, VmState.PAUSED, VmState.SUSPENDED, VmState.STOPPED];
const TAG_MAX = 50;
const TagsBody = Type.Object({ tags: Type.Array(Type.String({ minLength: 1, maxLength: 60, pattern: '^[^,/]*$' }), { maxItems: TAG_MAX }) }, { additionalProperties: false });

/** Nova's check for metadata changes: not locked (for non-admins), in a settled state, launched once. */
function checkChangeable(rc: RouteContext, s: ServerRow, action: string): void {
  if (s.locked && !isComputeAdmin(rc.cred)) throw conflict(`Instance ${s.id} is locked`);
  checkState(action, s, CHANGEABLE, null);
}

async function saveMetadata(ctx: ComputeContext, s: ServerRow, metadata: Record<string, string>, replace: boolean): Promise<Record<string, string>> {
  const current = (await metadataOf(ctx.db, [s.id])).get(s.id)!;
  const next = replace ? { ...metadata } : { ...current, ...metadata };
  const limit = (await projectLimits(ctx.db, s.project_id)).metadata_items;
  const n = Object.keys(next).length;
  if (limit >= 0 && n > limit) throw forbidden(`Quota exceeded for metadata_items: Requested ${n}, but already used 0 of ${limit} metadata_items`);
  await ctx.db.transaction().execute(async (tx) => {
    if (replace) await tx.deleteFrom('compute_server_metadata').where('server_id', '=', s.id).execute();
    for (const [key, value] of Object.entries(metadata)) {
      const r = await tx.updateTable('compute_server_metadata').set({ value }).where('server_id', '=', s.id).where('key', '=', key).executeTakeFirst();
      if (Number(r.numUpdatedRows) === 0) await tx.insertInto('compute_server_metadata').values({ server_id: s.id, key, value }).execute();
    }
    await tx.updateTable('compute_servers').set({ updated_at: nowIso(), version: sql`version + 1` }).where('id', '=', s.id).execute();
  });
  ctx.engine.notify(s.host);
  return Object.fromEntries(Object.entries(next).sort(([a], [b]) => (a < b ? -1 : 1)));
}

export function serverMetadataRoutes(ctx: ComputeContext): Route[] {
  const target = (rc: RouteContext) => serverTarget(ctx, rc);
  const base = '/v2.1/servers/:server_id/metadata';
  return [
    route({
      method: 'GET', path: base, rule: 'os_compute_api:server-metadata:index', target,
      async handler(rc) {
        const s = await loadServer(ctx, rc);
        return { metadata: (await metadataOf(ctx.db, [s.id])).get(s.id)! };
      },
    }),
    route({
      method: ['POST', 'PUT'], path: base, rule: 'os_compute_api:server-metadata:change', target,
      async handler(rc) {
        const body = validate(MetadataBody, rc.body);
        const s = await loadServer(ctx, rc);
        checkChangeable(rc, s, 'update_instance_metadata');
        return { metadata: await saveMetadata(ctx, s, body.metadata, rc.req.method === 'PUT') };
      },
    }),
    route({
      method: 'GET', path: `${base}/:key`, rule: 'os_compute_api:server-metadata:index', target,
      async handler(rc) {
        const s = await loadServer(ctx, rc);
        const md = (await metadataOf(ctx.db, [s.id])).get(s.id)!;
        const key = rc.params.key!;
        if (!(key in md)) throw notFound('Metadata item was not found');
        return { meta: { [key]: md[key] } };
      },
    }),
    route({
      method: 'PUT', path: `${base}/:key`, rule: 'os_compute_api:server-metadata:change', target,
      async handler(rc) {
        const meta = metadataItem(rc);
        const s = await loadServer(ctx, rc);
        checkChangeable(rc, s, 'update_instance_metadata');
        await saveMetadata(ctx, s, meta, false);
        return { meta };
      },
    }),
    route({
      method: 'DELETE', path: `${base}/:key`, rule: 'os_compute_api:server-metadata:change', target, status: 204,
      async handler(rc) {
        const s = await loadServer(ctx, rc);
        const key = rc.params.key!;
        const md = (await metadataOf(ctx.db, [s.id])).get(s.id)!;
        if (!(key in md)) throw notFound('Metadata item was not found');
        checkChangeable(rc, s, 'delete_instance_metadata');
        await ctx.db.transaction().execute(async (tx) => {
          await tx.deleteFrom('compute_server_metadata').where('server_id', '=', s.id).where('key', '=', key).execute();
          await tx.updateTable('compute_servers').set({ updated_at: nowIso(), version: sql`version + 1` }).where('id', '=', s.id).execute();
        });
        ctx.engine.notify(s.host);
      },
    }),
  ];
}

function checkTaggable(s: ServerRow, action: string): void {
  if (!CHANGEABLE.includes(s.vm_state as (typeof CHANGEABLE)[number])) throw invalidState(action, s.id, 'vm_state', s.vm_state);
}

function checkTag(tag: string): void {
  if (tag.length < 1 || tag.length > 60 || /[,/]/.test(tag)) {
    throw badRequest(`Invalid input for field/attribute tag. Value: ${tag}. '${tag}' does not match '^[^,/]*$' or is longer than 60 characters`);
  }
}

export function serverTagRoutes(ctx: ComputeContext): Route[] {
  const target = (rc: RouteContext) => serverTarget(ctx, rc);
  const base = '/v2.1/servers/:server_id/tags';
  const touch = async (s: ServerRow) => {
    await ctx.db.updateTable('compute_servers').set({ updated_at: nowIso() }).where('id', '=', s.id).execute();
  };
  const routes: Route[] = [
    route({
      method: 'GET', path: base, rule: 'os_compute_api:os-server-tags:index', target,
      async handler(rc) {
        const s = await loadServer(ctx, rc);
        return { tags: (await tagsOf(ctx.db, [s.id])).get(s.id)! };
      },
    }),
    route({
      method: 'PUT', path: base, rule: 'os_compute_api:os-server-tags:change', target,
      async handler(rc) {
        const body = validate(TagsBody, rc.body);
        const s = await loadServer(ctx, rc);
        checkTaggable(s, 'update tags');
        const tags = [...new Set(body.tags)];
        await ctx.db.transaction().execute(async (tx) => {
          await tx.deleteFrom('compute_server_tags').where('server_id', '=', s.id).execute();
          for (const tag of tags) await tx.insertInto('compute_server_tags').values({ server_id: s.id, tag }).execute();
        });
        await touch(s);
        return { tags: tags.sort() };
      },
    }),
    route({
      method: 'DELETE', path: base, rule: 'os_compute_api:os-server-tags:change', target, status: 204,
      async handler(rc) {
        const s = await loadServer(ctx, rc);
        checkTaggable(s, 'delete tags');
        await ctx.db.deleteFrom('compute_server_tags').where('server_id', '=', s.id).execute();
        await touch(s);
      },
    }),
    route({
      method: 'GET', path: `${base}/:tag`, rule: 'os_compute_api:os-server-tags:index', target, status: 204,
      async handler(rc) {
        const s = await loadServer(ctx, rc);
        const tag = rc.params.tag!;
        const row = await ctx.db.selectFrom('compute_server_tags').select('tag').where('server_id', '=', s.id).where('tag', '=', tag).executeTakeFirst();
        if (!row) throw notFound(`Server ${s.id} has no tag '${tag}'`);
      },
    }),
    route({
      method: 'PUT', path: `${base}/:tag`, rule: 'os_compute_api:os-server-tags:change', target,
      async handler(rc) {
        const s = await loadServer(ctx, rc);
        const tag = rc.params.tag!;
        checkTag(tag);
        checkTaggable(s, 'update tag');
        const tags = (await tagsOf(ctx.db, [s.id])).get(s.id)!;
        const location = `${endpoint(rc.req)}/servers/${s.id}/tags/${encodeURIComponent(tag)}`;
        if (tags.includes(tag)) {
          rc.reply.code(204).header('Location', location);
          return;
        }
        if (tags.length >= TAG_MAX) throw badRequest(`The number of tags exceeded the per-server limit ${TAG_MAX}`);
        await ctx.db.insertInto('compute_server_tags').values({ server_id: s.id, tag }).execute();
        await touch(s);
        rc.reply.code(201).header('Location', location);
      },
    }),
    route({
      method: 'DELETE', path: `${base}/:tag`, rule: 'os_compute_api:os-server-tags:change', target, status: 204,
      async handler(rc) {
        const s = await loadServer(ctx, rc);
        const tag = rc.params.tag!;
        checkTaggable(s, 'delete tag');
        const r = await ctx.db.deleteFrom('compute_server_tags').where('server_id', '=', s.id).where('tag', '=', tag).executeTakeFirst();
        if (Number(r.numDeletedRows) === 0) throw notFound(`Server ${s.id} has no tag '${tag}'`);
        await touch(s);
      },
    }),
  ];
  return routes.map((r) => versioned(r, '2.26'));
}
