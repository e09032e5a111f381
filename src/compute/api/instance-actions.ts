// /servers/{id}/os-instance-actions: what was done to a server, by whom, and
// (for admins, or everyone from 2.51) the events of each action.
import { createHash } from 'node:crypto';
import { route, type Route, type RouteContext } from '../../http/service.ts';
import { badRequest, notFound } from '../../common/errors.ts';
import type { ComputeContext } from './context.ts';
import { mv, naiveTime, pageParams, parseTime, q, strictQuery } from './http.ts';
import { isComputeAdmin } from './policy.ts';
import { loadServer, serverTarget, settleEvents } from './servers-store.ts';

type ActionRow = { id: number; request_id: string; server_id: string; action: string; project_id: string; user_id: string; start_time: string; finish_time: string | null; message: string | null; updated_at: string | null };

function viewAction(rc: RouteContext, a: ActionRow) {
  const out: Record<string, unknown> = {
    action: a.action, instance_uuid: a.server_id, message: a.message, project_id: a.project_id, request_id: a.request_id,
    start_time: naiveTime(a.start_time), user_id: a.user_id,
  };
  if (mv(rc).ge('2.58')) out.updated_at = naiveTime(a.updated_at ?? a.finish_time ?? a.start_time);
  return out;
}

export function instanceActionRoutes(ctx: ComputeContext): Route[] {
  // Deleted servers keep their actions from 2.21.
  const target = (rc: RouteContext) => serverTarget(ctx, rc, { deleted: mv(rc).ge('2.21') });
  return [
    route({
      method: 'GET', path: '/v2.1/servers/:server_id/os-instance-actions', rule: 'os_compute_api:os-instance-actions:list', target,
      async handler(rc) {
        const v = mv(rc);
        const s = await loadServer(ctx, rc, { deleted: v.ge('2.21') });
        await settleEvents(ctx.db, s);
        if (v.ge('2.75')) strictQuery(rc, v.ge('2.66') ? ['limit', 'marker', 'changes-since', 'changes-before'] : ['limit', 'marker', 'changes-since']);
        let qb = ctx.db.selectFrom('compute_instance_actions').selectAll().where('server_id', '=', s.id).orderBy('start_time', 'desc').orderBy('id', 'desc');
        if (v.ge('2.58')) {
          const since = q(rc, 'changes-since');
          const before = v.ge('2.66') ? q(rc, 'changes-before') : undefined;
          const a = since ? parseTime('changes-since', since) : undefined;
          const b = before ? parseTime('changes-before', before) : undefined;
          if (a && b && b < a) throw badRequest('The value of changes-since must be less than or equal to changes-before.');
          if (a) qb = qb.where('updated_at', '>=', a);
          if (b) qb = qb.where('updated_at', '<=', b);
        }
        let rows = (await qb.execute()) as ActionRow[];
        if (v.ge('2.58')) {
          const { limit, marker } = pageParams(rc);
          if (marker !== undefined) {
            const i = rows.findIndex((r) => r.request_id === marker);
            if (i < 0) throw badRequest(`Marker ${marker} could not be found.`);
            rows = rows.slice(i + 1);
          }
          rows = rows.slice(0, limit);
        }
        return { instanceActions: rows.map((a) => viewAction(rc, a)) };
      },
    }),
    route({
      method: 'GET', path: '/v2.1/servers/:server_id/os-instance-actions/:request_id', rule: 'os_compute_api:os-instance-actions:list', target,
      async handler(rc) {
        const v = mv(rc);
        const s = await loadServer(ctx, rc, { deleted: v.ge('2.21') });
        await settleEvents(ctx.db, s);
        const a = await ctx.db.selectFrom('compute_instance_actions').selectAll().where('server_id', '=', s.id).where('request_id', '=', rc.params.request_id!)
          .orderBy('id', 'desc').executeTakeFirst() as ActionRow | undefined;
        if (!a) throw notFound(`Action for request_id ${rc.params.request_id} on instance ${s.id} not found`);
        const out = viewAction(rc, a);
        const admin = isComputeAdmin(rc.cred);
        if (admin || v.ge('2.51')) {
          const events = await ctx.db.selectFrom('compute_instance_action_events').selectAll().where('action_id', '=', a.id).orderBy('start_time').orderBy('id').execute();
          out.events = events.map((e) => {
            const ev: Record<string, unknown> = { event: e.event, start_time: naiveTime(e.start_time), finish_time: naiveTime(e.finish_time), result: e.result };
            if (admin) ev.traceback = e.traceback;
            if (v.ge('2.62')) {
              ev.hostId = e.host ? createHash('sha224').update(`${s.project_id}${e.host}`).digest('hex') : '';
              if (admin) ev.host = e.host ?? '';
            }
            if (v.ge('2.84') && admin) ev.details = e.details;
            return ev;
          });
        }
        return { instanceAction: out };
      },
    }),
  ];
}
