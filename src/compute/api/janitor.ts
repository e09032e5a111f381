// Finishes what an API process started and could not see through: a snapshot
// (createImage/createBackup, or a shelve's) whose agent never answered — the
// process that waited may have restarted — leaves the server in an image_* or
// shelving task state and its image queued. Once the request is older than the
// snapshot timeout, the request expires, the server leaves the task state and
// the empty image goes. Likewise a move to another host (cold migration, a
// resize elsewhere) whose copy the process that ran it never finished: once it
// is older than the stop wait and the snapshot timeout, it is undone; so is a
// live migration older than any of its runs could take (live-migration.ts).
import { nowIso } from '../../common/ids.ts';
import { STOP_WAIT_MS, undoMove } from './server-moves.ts';
import { abandonLiveMigrations } from './live-migration.ts';
import { MigrationType } from '../engine/migrations.ts';
import type { ComputeContext } from './context.ts';
import { TaskState } from './state.ts';

const IMAGE_TASKS = [TaskState.IMAGE_SNAPSHOT_PENDING, TaskState.IMAGE_SNAPSHOT, TaskState.IMAGE_PENDING_UPLOAD, TaskState.IMAGE_UPLOADING, TaskState.IMAGE_BACKUP];

export async function expireSnapshots(ctx: ComputeContext, now = Date.now()): Promise<number> {
  const cutoff = new Date(now - ctx.config.snapshotTimeoutMs).toISOString();
  const stale = await ctx.db.selectFrom('compute_server_requests').selectAll()
    .where('kind', '=', 'snapshot').where('status', '=', 'pending').where('created_at', '<', cutoff).execute();
  for (const r of stale) {
    const expired = await ctx.db.updateTable('compute_server_requests').set({ status: 'expired', updated_at: nowIso() })
      .where('id', '=', r.id).where('status', '=', 'pending').executeTakeFirst();
    if (Number(expired.numUpdatedRows) === 0) continue;
    await ctx.db.updateTable('compute_servers').set({ task_state: null, updated_at: nowIso() })
      .where('id', '=', r.server_id).where('task_state', 'in', IMAGE_TASKS).execute();
    // a shelve that never got its snapshot: the server stays as it was
    await ctx.db.updateTable('compute_servers').set({ task_state: null, shelved_image_id: null, updated_at: nowIso() })
      .where('id', '=', r.server_id).where('task_state', '=', TaskState.SHELVING).execute();
    let imageId: string | undefined;
    try {
      imageId = (JSON.parse(r.args) as { image_id?: string }).image_id;
    } catch {
      imageId = undefined;
    }
    if (!imageId) continue;
    try {
      const { status } = (await ctx.images.getRecord(imageId)) ?? { status: 'gone' };
      if (status === 'queued' || status === 'saving' || status === 'killed') await ctx.images.deleteById(imageId);
    } catch (err) {
      ctx.log.warn({ err, image: imageId }, 'removing the image of an expired snapshot failed');
    }
    ctx.log.warn({ server: r.server_id, image: imageId }, 'a snapshot got no answer from its host in time; it was abandoned');
  }
  return stale.length;
}

/** Moves to another host still copying long after any copy could have ended (their process restarted): undone, the server back where it was. */
export async function abandonMoves(ctx: ComputeContext, now = Date.now()): Promise<number> {
  const cutoff = new Date(now - ctx.config.snapshotTimeoutMs - STOP_WAIT_MS - 60_000).toISOString();
  const stale = await ctx.db.selectFrom('compute_migrations as m').innerJoin('compute_servers as s', 's.id', 'm.server_id').selectAll('s')
    .select(['m.uuid as migration_uuid']).where('m.status', '=', 'migrating').where('m.migration_type', 'in', [MigrationType.migration, MigrationType.resize])
    .where('s.task_state', '=', TaskState.RESIZE_MIGRATING).where('m.created_at', '<', cutoff).execute();
  for (const r of stale) {
    const { migration_uuid: migration, ...row } = r;
    ctx.log.warn({ server: row.id, migration }, 'a move\'s copy never finished; it was undone');
    await undoMove(ctx, row, migration);
  }
  return stale.length + await abandonLiveMigrations(ctx, now);
}
