// Nova's migrations as compute records them (compute_migrations): the one
// definition of their types and of which statuses are still open — a
// migration that holds a placement claim (its `uuid` the consumer of the
// source host's allocations) and whose server's move is not settled. Every
// query about open migrations (the source keeping a moved server, a report
// ending a resize, a delete or a reset releasing claims, the janitor, the
// API's refusals) reads it from here.
import type { ExpressionBuilder, Transaction } from 'kysely';
import type { Tables } from '../../db/tables.ts';
import { nowIso } from '../../common/ids.ts';
import { moveConsumer, releaseConsumer } from '../../placement/service.ts';

export const MigrationType = { resize: 'resize', migration: 'migration', live: 'live-migration', evacuation: 'evacuation' } as const;
export type MigrationType = (typeof MigrationType)[keyof typeof MigrationType];

/**
 * A resize's or cold migration's statuses while it is open: migrating (the
 * agent applies a resize, or the source copies the disk), post-migrating (the
 * destination builds the copy), finished (VERIFY_RESIZE), reverting; then
 * confirmed, reverted or error. The source keeps a moved server through all of them.
 */
const MOVE_OPEN = ['migrating', 'post-migrating', 'finished', 'reverting'] as const;
/** A resize's or cold migration's statuses before it is finished or reverted: what an agent's report or an undo ends. */
export const MOVE_IN_FLIGHT = ['migrating', 'post-migrating'] as const;
/**
 * A live migration's statuses while it is open (Nova's): queued (recorded),
 * preparing (the destination makes the server ready), running (disks, then
 * memory, copied), post-migrating (handed over, started on the destination),
 * cancelling (an abort asked); then completed, cancelled or error.
 */
export const LIVE_OPEN = ['queued', 'preparing', 'running', 'post-migrating', 'cancelling'] as const;
/** A live migration in progress as Nova lists them (GET /servers/{id}/migrations, os-migrations' links): not one being cancelled. */
export const LIVE_IN_PROGRESS = ['queued', 'preparing', 'running', 'post-migrating'] as const;
/** The statuses a live migration may be aborted in (Nova's: running; queued and preparing from 2.65). */
export const LIVE_ABORTABLE = ['queued', 'preparing', 'running'] as const;

/** Open statuses per type: an evacuation is open until its new host reports the rebuild (done, or failed). */
const OPEN_STATUSES: Readonly<Record<MigrationType, readonly string[]>> = {
  resize: MOVE_OPEN, migration: MOVE_OPEN, 'live-migration': LIVE_OPEN, evacuation: ['accepted'],
};

/** A where-clause of open migrations of the given types (all: every type), on `compute_migrations` or its alias `m`. */
export function openMigration(eb: ExpressionBuilder<any, any>, types: readonly MigrationType[] = Object.values(MigrationType), alias = ''): ReturnType<ExpressionBuilder<any, any>['or']> {
  const c = (n: string) => (alias ? `${alias}.${n}` : n);
  return eb.or(types.map((t) => eb.and([eb(c('migration_type'), '=', t), eb(c('status'), 'in', [...OPEN_STATUSES[t]])])));
}

/**
 * A move undone before its server settled on the destination: the claim the
 * server took there released, the source's given back to it by the migration
 * (Nova's revert of move_allocations).
 */
export async function returnClaims(tx: Transaction<Tables>, serverId: string, migrationUuid: string): Promise<void> {
  await releaseConsumer(tx, serverId);
  await moveConsumer(tx, migrationUuid, serverId);
}

/**
 * The open migrations of a server whose state an admin reset (os-resetState,
 * `giveBack`) or which is deleted: each ends in `status` and what it holds
 * goes. Deleted: every migration's claim is released (the server's own goes
 * beside). Reset: an evacuation's or a finished move's claim (the old
 * host's) is released; a move or live migration still on its source (`host`
 * the row's) gives the source's claim back to the server, its claim on the
 * destination released. Returns the migrations ended.
 */
export async function endOpenMigrations(tx: Transaction<Tables>, server: { id: string; host: string | null }, status: string, o: { giveBack: boolean }): Promise<Array<{ uuid: string; migration_type: string; source_compute: string | null; dest_compute: string | null }>> {
  const open = await tx.selectFrom('compute_migrations').select(['id', 'uuid', 'migration_type', 'status', 'source_compute', 'dest_compute'])
    .where('server_id', '=', server.id).where((eb) => openMigration(eb)).execute();
  for (const m of open) {
    await tx.updateTable('compute_migrations').set({ status, updated_at: nowIso() }).where('id', '=', m.id).execute();
    const onSource = o.giveBack && server.host !== null && server.host === m.source_compute && m.source_compute !== m.dest_compute
      && (m.migration_type === MigrationType.live || (MOVE_IN_FLIGHT as readonly string[]).includes(m.status));
    if (onSource) await returnClaims(tx, server.id, m.uuid);
    else await releaseConsumer(tx, m.uuid);
  }
  return open;
}
