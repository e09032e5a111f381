// Server rows as the API routes use them: loading with tenancy, the related
// rows a view needs (metadata, tags, group, host), and instance actions.
import type { FastifyRequest } from 'fastify';
import type { Transaction } from 'kysely';
import { notFound } from '../../common/errors.ts';
import { nowIso } from '../../common/ids.ts';
import type { Db } from '../../db/database.ts';
import type { Tables } from '../../db/tables.ts';
import type { Credentials } from '../../http/auth.ts';
import type { RouteContext } from '../../http/service.ts';
import type { HostRow, ServerRow } from '../schema.ts';
import type { ComputeContext } from './context.ts';
import { isComputeAdmin } from './policy.ts';

export type { HostRow, ServerRow };
type Executor = Db | Transaction<Tables>;

export const serverMissing = (id: string) => notFound(`Instance ${id} could not be found.`);

const loaded = new WeakMap<FastifyRequest, ServerRow>();

/**
 * The server of a route (`:server_id`), as the caller may see it: other
 * projects' servers do not exist for non-admins; deleted servers only when asked.
 */
export async function loadServer(ctx: ComputeContext, rc: RouteContext, opts: { deleted?: boolean } = {}): Promise<ServerRow> {
  const cached = loaded.get(rc.req);
  if (cached) return cached;
  const id = rc.params.server_id!;
  const row = await ctx.db.selectFrom('compute_servers').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row || (row.deleted_at !== null && !opts.deleted) || !canSeeServer(rc.cred, row)) throw serverMissing(id);
  loaded.set(rc.req, row);
  return row;
}

/** Forgets the row a request loaded (after the handler changed it). */
export const forgetServer = (rc: RouteContext) => loaded.delete(rc.req);

export const canSeeServer = (cred: Credentials | null, row: { project_id: string }): boolean =>
  !!cred && (isComputeAdmin(cred) || (cred.projectId !== null && cred.projectId === row.project_id));

/** The policy target of a server route: the server's project and user. */
export async function serverTarget(ctx: ComputeContext, rc: RouteContext, opts: { deleted?: boolean } = {}) {
  const s = await loadServer(ctx, rc, opts);
  return { project_id: s.project_id, user_id: s.user_id };
}

export async function reloadServer(db: Executor, id: string): Promise<ServerRow> {
  return db.selectFrom('compute_servers').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
}

export async function metadataOf(db: Executor, ids: string[]): Promise<Map<string, Record<string, string>>> {
  const out = new Map<string, Record<string, string>>(ids.map((id) => [id, {}]));
  if (!ids.length) return out;
  for (const chunk of chunks(ids)) {
    const rows = await db.selectFrom('compute_server_metadata').select(['server_id', 'key', 'value']).where('server_id', 'in', chunk).orderBy('key').execute();
    for (const r of rows) out.get(r.server_id)![r.key] = r.value;
  }
  return out;
}

export async function tagsOf(db: Executor, ids: string[]): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>(ids.map((id) => [id, []]));
  if (!ids.length) return out;
  for (const chunk of chunks(ids)) {
    const rows = await db.selectFrom('compute_server_tags').select(['server_id', 'tag']).where('server_id', 'in', chunk).orderBy('tag').execute();
    for (const r of rows) out.get(r.server_id)!.push(r.tag);
  }
  return out;
}

export async function hostsByName(db: Executor, names: Array<string | null>): Promise<Map<string, HostRow>> {
  const wanted = [...new Set(names.filter((n): n is string => !!n))];
  const out = new Map<string, HostRow>();
  if (!wanted.length) return out;
  for (const chunk of chunks(wanted)) {
    for (const h of await db.selectFrom('compute_hosts').selectAll().where('hostname', 'in', chunk).execute()) out.set(h.hostname, h);
  }
  return out;
}

/** The view's os-extended-volumes:volumes_attached of servers: their volumes in attach order. */
export async function volumesAttachedOf(db: Executor, ids: string[]): Promise<Map<string, Array<{ id: string; delete_on_termination: boolean }>>> {
  const out = new Map<string, Array<{ id: string; delete_on_termination: boolean }>>();
  for (let i = 0; i < ids.length; i += 500) {
    const rows = await db.selectFrom('compute_block_device_mappings').select(['server_id', 'volume_id', 'delete_on_termination'])
      .where('server_id', 'in', ids.slice(i, i + 500)).orderBy('created_at').orderBy('id').execute();
    for (const r of rows) out.set(r.server_id, [...(out.get(r.server_id) ?? []), { id: r.volume_id, delete_on_termination: r.delete_on_termination === 1 }]);
  }
  return out;
}

export function chunks<T>(xs: T[], n = 500): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n));
  return out;
}

/** A host is up when it reported within `downTime` seconds and is not forced down. */
export function hostIsUp(h: HostRow, downTimeSeconds: number, now = Date.now()): boolean {
  return h.forced_down === 0 && now - Date.parse(h.last_seen_at) <= downTimeSeconds * 1000;
}

/** Nova's host_status of a server: UP, DOWN, MAINTENANCE, UNKNOWN, or '' when it has no host. */
export function hostStatus(s: ServerRow, h: HostRow | undefined, downTimeSeconds: number): string {
  if (!s.host || !h) return '';
  if (h.forced_down) return 'DOWN';
  if (!hostIsUp(h, downTimeSeconds)) return 'UNKNOWN';
  return h.status === 'disabled' ? 'MAINTENANCE' : 'UP';
}

// ---- instance actions

/** Which task state each recorded event waits on; the event is finished once the server leaves it. */
export const EVENT_TASK: Record<string, string> = {
  compute__do_build_and_run_instance: 'building',
  compute_stop_instance: 'powering-off',
  compute_start_instance: 'powering-on',
  compute_reboot_instance: 'rebooting',
  compute_pause_instance: 'pausing',
  compute_unpause_instance: 'unpausing',
  compute_suspend_instance: 'suspending',
  compute_resume_instance: 'resuming',
  compute_rebuild_instance: 'rebuilding',
  compute_snapshot_instance: 'image_snapshot_pending',
  compute_backup_instance: 'image_backup',
  compute_terminate_instance: 'deleting',
  compute_prep_resize: 'resize_prep',
  compute_revert_resize: 'resize_reverting',
  // confirm and offload are done when the API answers: finished at the next settle
  compute_confirm_resize: 'confirming',
  compute_shelve_offload_instance: 'shelving_offloading',
  compute_shelve_instance: 'shelving',
  compute_unshelve_instance: 'unshelving',
};

export interface ActionSpec {
  action: string;
  /** An event the agent's work finishes ('compute_*'), or an API event finished at once ('api_*'). */
  event?: string;
  message?: string | null;
}

/** Records an instance action (and its event) for a request, as Nova's _record_action_start does. */
export async function recordAction(db: Executor, s: { id: string; project_id: string }, cred: Credentials, requestId: string, spec: ActionSpec, host: string | null = null): Promise<void> {
  const now = nowIso();
  const done = spec.event?.startsWith('api_') ?? false;
  const a = await db.insertInto('compute_instance_actions').values({
    request_id: requestId, server_id: s.id, action: spec.action, project_id: s.project_id, user_id: cred.userId,
    start_time: now, finish_time: done ? now : null, message: spec.message ?? null, updated_at: now,
  }).returning('id').executeTakeFirstOrThrow();
  if (spec.event) {
    await db.insertInto('compute_instance_action_events').values({
      action_id: Number(a.id), event: spec.event, start_time: now, finish_time: done ? now : null,
      result: done ? 'Success' : null, traceback: null, host, details: null,
    }).execute();
  }
}

/**
 * Finishes the events of servers whose work is over: an event waiting on a
 * task state is done once the server has left that state (Error when the
 * server went to ERROR, Success otherwise). One query finds the open events
 * of all the servers given.
 */
export async function settleEvents(db: Db, servers: ServerRow | ServerRow[]): Promise<void> {
  const list = Array.isArray(servers) ? servers : [servers];
  if (!list.length) return;
  const byId = new Map(list.map((s) => [s.id, s]));
  for (const ids of chunks([...byId.keys()])) {
    const open = await db.selectFrom('compute_instance_action_events as e')
      .innerJoin('compute_instance_actions as a', 'a.id', 'e.action_id')
      .select(['e.id', 'e.event', 'e.action_id', 'a.server_id']).where('a.server_id', 'in', ids).where('e.finish_time', 'is', null).execute();
    for (const e of open) {
      const s = byId.get(e.server_id)!;
      const waits = EVENT_TASK[e.event];
      if (waits === undefined) continue;
      const stillRunning = s.deleted_at === null && (waits === 'building' ? s.vm_state === 'building'
        : waits === 'rebooting' ? s.task_state !== null && s.task_state.startsWith('reboot')
        : waits === 'image_snapshot_pending' || waits === 'image_backup' ? s.task_state !== null && s.task_state.startsWith('image_')
        : waits === 'shelving' ? s.task_state !== null && s.task_state.startsWith('shelving')
        // an offloaded server's unshelve goes through the scheduler and spawns
        : waits === 'unshelving' ? s.task_state === 'unshelving' || s.task_state === 'spawning'
        : waits === 'resize_prep' ? s.task_state !== null && ['resize_prep', 'resize_migrating', 'resize_migrated', 'resize_finish'].includes(s.task_state)
        : s.task_state === waits);
      if (stillRunning) continue;
      const finished = s.updated_at;
      const result = s.vm_state === 'error' ? 'Error' : 'Success';
      await db.updateTable('compute_instance_action_events').set({ finish_time: finished, result, host: s.host }).where('id', '=', e.id).where('finish_time', 'is', null).execute();
      const left = await db.selectFrom('compute_instance_action_events').select('id').where('action_id', '=', e.action_id).where('finish_time', 'is', null).executeTakeFirst();
      if (!left) await db.updateTable('compute_instance_actions').set({ finish_time: finished, updated_at: finished, message: result === 'Error' ? 'Error' : null }).where('id', '=', e.action_id).execute();
    }
  }
}
