// Intent on a server row, shared by the server actions: Nova's lock and
// state guards, and the conditional write that records an action, bumps the
// row's version and wakes the agent of the server's host.
import { sql, type Transaction } from 'kysely';
import type { Tables } from '../../db/tables.ts';
import { conflict } from '../../common/errors.ts';
import { nowIso } from '../../common/ids.ts';
import type { Credentials } from '../../http/auth.ts';
import type { RouteContext } from '../../http/service.ts';
import type { ComputeContext } from './context.ts';
import { isComputeAdmin } from './policy.ts';
import { recordAction, reloadServer, type ServerRow } from './servers-store.ts';

/** What a state-changing action records on the row. */
export interface Intent {
  action: string;
  event: string;
  /** The task the row takes (null: the action is done at once, e.g. confirmResize). */
  taskState: string | null;
  /** The vm_states the row must still be in (Nova's expected_vm_state), beside the task state it was checked in. */
  expectedVmState?: readonly string[];
  desiredPower?: string;
  reboot?: 'SOFT' | 'HARD';
  rebuild?: Record<string, unknown>;
}

export const locked = (s: ServerRow) => conflict(`Instance ${s.id} is locked`);
export const notReady = (s: ServerRow) => conflict(`Instance ${s.id} is not ready`);

export function checkLock(cred: Credentials, s: ServerRow): void {
  if (s.locked && !isComputeAdmin(cred)) throw locked(s);
}

/**
 * Applies an intent if the row is still in the task state it was checked in
 * (Nova's expected_task_state) and, when the intent names them, one of its
 * expected vm_states; bumps the version, records the instance action and
 * wakes the agent of the host the server was on. `inTx` runs in the same
 * transaction once the row changed (claims, migration records; a conditional
 * write there is the guard of what the row does not hold); what it throws
 * undoes the whole intent. `rc` null: a step the cloud takes itself within
 * an action already recorded (a shelve's offload), no action recorded.
 */
export async function applyIntent(ctx: ComputeContext, rc: RouteContext | null, s: ServerRow, intent: Intent, extra: Record<string, unknown> = {},
  inTx?: (tx: Transaction<Tables>) => Promise<void>): Promise<void> {
  const now = nowIso();
  const set: Record<string, unknown> = { task_state: intent.taskState, updated_at: now, version: sql`version + 1`, ...extra };
  if (intent.desiredPower) set.desired_power = intent.desiredPower;
  if (intent.reboot) {
    set.reboot_seq = sql`reboot_seq + 1`;
    set.reboot_type = intent.reboot;
  }
  if (intent.rebuild) {
    set.rebuild_seq = sql`rebuild_seq + 1`;
    Object.assign(set, intent.rebuild);
  }
  const changed = await ctx.db.transaction().execute(async (tx) => {
    let u = tx.updateTable('compute_servers').set(set as any).where('id', '=', s.id).where('deleted_at', 'is', null);
    u = s.task_state === null ? u.where('task_state', 'is', null) : u.where('task_state', '=', s.task_state);
    if (intent.expectedVmState) u = u.where('vm_state', 'in', intent.expectedVmState);
    const r = await u.executeTakeFirst();
    if (Number(r.numUpdatedRows) === 0) return false;
    await inTx?.(tx);
    if (rc) await recordAction(tx, s, rc.cred!, rc.req.id, { action: intent.action, event: intent.event }, s.host);
    return true;
  });
  if (!changed) {
    const fresh = await reloadServer(ctx.db, s.id);
    const q = (x: string | null) => (x === null ? 'None' : `'${x}'`);
    if (fresh.task_state === s.task_state && intent.expectedVmState && !intent.expectedVmState.includes(fresh.vm_state)) {
      throw conflict(`Conflict updating instance ${s.id}. Expected: {'vm_state': [${intent.expectedVmState.map(q).join(', ')}]}. Actual: {'vm_state': ${q(fresh.vm_state)}}`);
    }
    throw conflict(`Conflict updating instance ${s.id}. Expected: {'task_state': [${q(s.task_state)}]}. Actual: {'task_state': ${q(fresh.task_state)}}`);
  }
  ctx.engine.notify(s.host);
  await ctx.serverEvents([s.id]);
}

