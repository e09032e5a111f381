// GET /os-migrations (admins): the migrations compute records (resizes, cold
// migrations, evacuations: server-moves.ts; live migrations: live-migration.ts),
// in Nova's shape per microversion: migration_type from 2.23 (and an
// in-progress live migration's links to its server migration), uuid and
// paging from 2.59, user_id and project_id from 2.80.
// /servers/{id}/migrations (2.23) lists a server's live migrations in
// progress with their progress in bytes, as Nova's; force_complete (2.22)
// and DELETE (abort, 2.24) act on one.
import { Type } from 'typebox';
import type { Selectable } from 'kysely';
import type { Tables } from '../../db/tables.ts';
import { badRequest, notFound } from '../../common/errors.ts';
import { parseJsonObject } from '../../common/json.ts';
import { route, type Route, type RouteContext } from '../../http/service.ts';
import { LIVE_IN_PROGRESS, MigrationType } from '../engine/migrations.ts';
import type { ComputeContext } from './context.ts';
import { links, mv, q, validate, versioned } from './http.ts';
import { abortLiveMigration, forceComplete, inProgress } from './live-migration.ts';
import { loadServer, serverTarget } from './servers-store.ts';

type Migration = Selectable<Tables['compute_migrations']>;

const ForceCompleteBody = Type.Object({ force_complete: Type.Null() }, { additionalProperties: false });

/** A server migration (GET /servers/{id}/migrations), in Nova's view: its progress in bytes. */
function serverMigrationView(rc: RouteContext, m: Migration): Record<string, unknown> {
  const v = mv(rc);
  const p = parseJsonObject(m.progress);
  const n = (k: string) => Number(p[k] ?? 0);
  return {
    id: Number(m.id), server_uuid: m.server_id, status: m.status,
    source_compute: m.source_compute, source_node: m.source_node, dest_compute: m.dest_compute, dest_node: m.dest_node, dest_host: m.dest_host,
    memory_total_bytes: n('memory_total'), memory_processed_bytes: n('memory_processed'), memory_remaining_bytes: n('memory_remaining'),
    disk_total_bytes: n('disk_total'), disk_processed_bytes: n('disk_processed'), disk_remaining_bytes: n('disk_remaining'),
    created_at: novaTime(m.created_at), updated_at: novaTime(m.updated_at),
    ...(v.ge('2.59') ? { uuid: m.uuid } : {}),
    ...(v.ge('2.80') ? { user_id: m.user_id, project_id: m.project_id } : {}),
  };
}

/** Nova's migration timestamps: naive ISO with microseconds. */
const novaTime = (iso: string | null) => (iso ? iso.replace(/Z$/, '').replace(/(\.\d{1,6})?$/, (m) => (m ? m.padEnd(7, '0') : '.000000')) : null);
/** Nova's flavors have integer ids behind their flavorid; a numeric flavor id stands for it here, another is null. */
const flavorNumber = (flavor: string): number | null => {
  try {
    const id = String((JSON.parse(flavor) as { id?: unknown }).id ?? '');
    return /^\d{1,9}$/.test(id) ? Number(id) : null;
  } catch {
    return null;
  }
};

export function migrationRoutes(ctx: ComputeContext): Route[] {
  return [
  route({
    method: 'GET', path: '/v2.1/os-migrations', rule: 'os_compute_api:os-migrations:index',
    async handler(rc) {
      const v = mv(rc);
      let qb = ctx.db.selectFrom('compute_migrations').selectAll();
      const status = q(rc, 'status');
      if (status) qb = qb.where('status', '=', status);
      const server = q(rc, 'instance_uuid');
      if (server) qb = qb.where('server_id', '=', server);
      const source = q(rc, 'source_compute');
      if (source) qb = qb.where('source_compute', '=', source);
      const host = q(rc, 'host');
      if (host) qb = qb.where((eb) => eb.or([eb('source_compute', '=', host), eb('dest_compute', '=', host)]));
      const type = q(rc, 'migration_type');
      if (type && v.ge('2.23')) qb = qb.where('migration_type', '=', type);
      if (v.ge('2.80')) {
        const user = q(rc, 'user_id');
        if (user) qb = qb.where('user_id', '=', user);
        const project = q(rc, 'project_id');
        if (project) qb = qb.where('project_id', '=', project);
      }
      let limit: number | undefined;
      if (v.ge('2.59')) {
        const since = q(rc, 'changes-since');
        if (since) {
          if (Number.isNaN(Date.parse(since))) throw badRequest(`Invalid input for query parameters changes-since. Value: ${since}. '${since}' is not a 'date-time'`);
          qb = qb.where('updated_at', '>=', new Date(since).toISOString());
        }
        const rawLimit = q(rc, 'limit');
        if (rawLimit !== undefined) {
          if (!/^\d+$/.test(rawLimit)) throw badRequest(`Invalid input for query parameters limit. Value: ${rawLimit}. '${rawLimit}' does not match '^[0-9]*$'`);
          limit = Number(rawLimit);
        }
        const marker = q(rc, 'marker');
        if (marker) {
          const m = await ctx.db.selectFrom('compute_migrations').select('id').where('uuid', '=', marker).executeTakeFirst();
          if (!m) throw badRequest(`Marker ${marker} could not be found.`);
          qb = qb.where('id', '<', m.id);
        }
      }
      qb = qb.orderBy('created_at', 'desc').orderBy('id', 'desc');
      if (limit !== undefined) qb = qb.limit(limit);
      const rows = await qb.execute();
      return {
        migrations: rows.map((m) => ({
          id: Number(m.id), status: m.status, instance_uuid: m.server_id,
          source_node: m.source_node, source_compute: m.source_compute, dest_node: m.dest_node, dest_compute: m.dest_compute, dest_host: m.dest_host,
          old_instance_type_id: flavorNumber(m.old_flavor), new_instance_type_id: flavorNumber(m.new_flavor),
          created_at: novaTime(m.created_at), updated_at: novaTime(m.updated_at),
          ...(v.ge('2.23') ? { migration_type: m.migration_type } : {}),
          // an in-progress live migration links to its server migration (Nova's)
          ...(v.ge('2.23') && m.migration_type === MigrationType.live && (LIVE_IN_PROGRESS as readonly string[]).includes(m.status) ? {
            links: links(rc.req, `servers/${m.server_id}/migrations`, Number(m.id)),
          } : {}),
          ...(v.ge('2.59') ? { uuid: m.uuid } : {}),
          ...(v.ge('2.80') ? { user_id: m.user_id, project_id: m.project_id } : {}),
        })),
      };
    },
  }),
  versioned(route({
    method: 'GET', path: '/v2.1/servers/:server_id/migrations', rule: 'os_compute_api:servers:migrations:index',
    target: (rc) => serverTarget(ctx, rc),
    async handler(rc) {
      const s = await loadServer(ctx, rc);
      return { migrations: (await inProgress(ctx, s.id)).map((m) => serverMigrationView(rc, m)) };
    },
  }), '2.23'),
  versioned(route({
    method: 'GET', path: '/v2.1/servers/:server_id/migrations/:migration_id', rule: 'os_compute_api:servers:migrations:show',
    target: (rc) => serverTarget(ctx, rc),
    async handler(rc) {
      const s = await loadServer(ctx, rc);
      const id = rc.params.migration_id;
      const [m] = /^\d{1,9}$/.test(id) ? await inProgress(ctx, s.id, Number(id)) : [];
      if (!m) throw notFound(`In-progress live migration ${id} is not found for server ${s.id}.`);
      return { migration: serverMigrationView(rc, m) };
    },
  }), '2.23'),
  versioned(route({
    method: 'POST', path: '/v2.1/servers/:server_id/migrations/:migration_id/action', rule: 'os_compute_api:servers:migrations:force_complete',
    target: (rc) => serverTarget(ctx, rc),
    async handler(rc) {
      validate(ForceCompleteBody, rc.body);
      const s = await loadServer(ctx, rc);
      await forceComplete(ctx, rc, s, rc.params.migration_id);
      rc.reply.code(202);
    },
  }), '2.22'),
  versioned(route({
    method: 'DELETE', path: '/v2.1/servers/:server_id/migrations/:migration_id', rule: 'os_compute_api:servers:migrations:delete',
    target: (rc) => serverTarget(ctx, rc),
    async handler(rc) {
      const s = await loadServer(ctx, rc);
      await abortLiveMigration(ctx, rc, s, rc.params.migration_id);
      rc.reply.code(202);
    },
  }), '2.24'),
  ];
}
