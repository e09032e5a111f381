// Compute's part of the resource event stream (src/http/events.ts): a
// server's change as an event, published from where compute records changes:
// the API's writes (create, update, delete, every action through
// applyIntent) and the engine's change listener (agents' reports, the
// scheduler), which sees the rows those wrote.
import type { Db } from '../../db/database.ts';
import type { EventBus, ResourceAction } from '../../http/events.ts';
import type { ServerRow } from '../schema.ts';
import { statusOf } from './state.ts';

/** Publishes servers' changes: by row, or by id (the rows read again); never throws. */
export type ServerEvents = (servers: Array<ServerRow | string>, action?: ResourceAction) => Promise<void>;

export function serverEvents(db: Db, bus: EventBus | null | undefined): ServerEvents {
  if (!bus) return async () => undefined;
  return async (servers, action) => {
    const ids = servers.filter((s): s is string => typeof s === 'string');
    const rows = servers.filter((s): s is ServerRow => typeof s !== 'string');
    // an event is told on a best-effort basis: a failed read never fails the write that was made
    if (ids.length) rows.push(...await db.selectFrom('compute_servers').selectAll().where('id', 'in', ids).execute().catch(() => []));
    bus.publish(...rows.map((r) => {
      const deleted = r.deleted_at !== null;
      return {
        type: 'server', id: r.id, project_id: r.project_id, name: r.name,
        action: deleted ? 'deleted' as const : action ?? 'updated' as const,
        status: statusOf(r.vm_state, r.task_state, deleted),
        detail: { task_state: r.task_state, vm_state: r.vm_state, power_state: r.power_state, kind: r.kind },
      };
    }));
  };
}
