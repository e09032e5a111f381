// What a server holds beyond its row, released in the transaction that ends
// it on a host: its claim on the host's capacity (a failed build, a delete),
// and its server group membership (a delete). One place, for the scheduler's
// reaper and the lifecycle alike.
import { PowerState } from '../schema.ts';
import type { Transaction } from 'kysely';
import type { Tables } from '../../db/tables.ts';
import { nowIso } from '../../common/ids.ts';
import { releaseConsumer } from '../../placement/service.ts';
import { endOpenMigrations } from './migrations.ts';

type Tx = Transaction<Tables>;

/** Frees the server's claim on its host's capacity. */
export async function releaseClaim(tx: Tx, serverId: string): Promise<void> {
  await releaseConsumer(tx, serverId);
}

/**
 * Soft-deletes a server (read at `version`) if its row is still as the guard
 * says (that version, that host, being deleted), and releases what it held.
 * False when the row moved on.
 */
export async function softDelete(tx: Tx, id: string, version: number, guard: { sameVersion?: boolean; host?: string | null; deleting?: boolean }): Promise<boolean> {
  const now = nowIso();
  let u = tx.updateTable('compute_servers')
    .set({ vm_state: 'deleted', task_state: null, power_state: PowerState.NOSTATE, deleted_at: now, terminated_at: now, updated_at: now, version: version + 1 })
    .where('id', '=', id).where('deleted_at', 'is', null);
  if (guard.sameVersion) u = u.where('version', '=', version);
  if (guard.host !== undefined) u = guard.host === null ? u.where('host', 'is', null) : u.where('host', '=', guard.host);
  if (guard.deleting) u = u.where('task_state', '=', 'deleting');
  const res = await u.executeTakeFirst();
  if (!Number(res.numUpdatedRows)) return false;
  await releaseClaim(tx, id);
  // a resize or move never confirmed (or an evacuation not done, a live migration under way): the claim held by its migration goes too
  await endOpenMigrations(tx, { id, host: null }, 'error', { giveBack: false });
  await tx.deleteFrom('compute_server_group_members').where('server_id', '=', id).execute();
  return true;
}
