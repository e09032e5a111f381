// The request channel: work for a server's agent beyond the desired state
// (console output, snapshots). A request is a compute_server_requests row the
// host's watch hands out (PendingRequest) and the agent answers on its report
// call; the caller waits for the answer. In the database, so any replica may
// serve the agent; the waiter on this replica is woken at once. A request is
// about the server (kind `server`, on the server's host) unless `route` names
// another resource for it: a bare-metal server's console is its node's
// (`baremetal_node`), asked of the node's conductor. The fleet hands a
// request to a host that serves its kind (src/fleet/api.ts).
import { conflict } from '../../common/errors.ts';
import { nowIso, uuid } from '../../common/ids.ts';
import { parseJsonObject } from '../../common/json.ts';
import type { Db } from '../../db/database.ts';
import type { PendingRequest, RequestReport } from '../../fleet/protocol.ts';
import { SNAPSHOT_TASKS } from './lifecycle.ts';
import { SERVER_KIND, type ServerAction } from './protocol.ts';

export interface RequestChannel {
  /**
   * Asks the agent of a server and waits for the answer: 'console'
   * {length?: lines} -> {output}; 'snapshot' {image_id} (a queued image the
   * agent uploads an OCI archive into) -> {image_id}. Throws a 409 ApiError
   * when the server has no host, the agent fails, or it does not answer
   * within timeoutMs. `host`: asked of that host instead (a live
   * migration's destination, which does not hold the server yet).
   */
  request(serverId: string, action: ServerAction, args: Record<string, unknown>, timeoutMs: number, o?: { host?: string }): Promise<unknown>;
  pending(hostname: string): Promise<PendingRequest[]>;
  /** The agent's answer; returns the server whose state it changed (a snapshot's end), if any. */
  answer(hostname: string, q: RequestReport): Promise<string | null>;
  /** Expires requests nobody answered within an hour and forgets old answers. */
  expire(): Promise<void>;
  /** Wakes every waiter (they see the fleet stopping). */
  stop(): void;
}

/** Where a request goes when it is not the server's own: the resource it names and the host serving it. */
export interface RequestTarget { kind: string; resource_id: string; host: string | null }

export function requestChannel(db: Db, o: {
  notify(host: string): void; stopping(): boolean;
  /** The target of a request about this server when it is another resource (null: the server, on its host). */
  route?(server: { id: string; host: string | null; node: string | null }): Promise<RequestTarget | null>;
}): RequestChannel {
  const waiters = new Map<string, () => void>();
  return {
    async request(serverId, action, args, timeoutMs, ro = {}) {
      const s = await db.selectFrom('compute_servers').select(['id', 'host', 'node']).where('id', '=', serverId).where('deleted_at', 'is', null).executeTakeFirst();
      const target = s && o.route && !ro.host ? await o.route(s) : null;
      const host = ro.host ?? (target ? target.host : s?.host);
      if (!s || !host) throw conflict(`Instance ${serverId} is not running on a host.`);
      const id = uuid();
      const now = nowIso();
      await db.insertInto('compute_server_requests').values({
        id, server_id: serverId, host, kind: action, args: JSON.stringify(args), status: 'pending', result: null, created_at: now, updated_at: now,
        resource_kind: target?.kind ?? null, resource_id: target?.resource_id ?? null,
      }).execute();
      o.notify(host);
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const row = await db.selectFrom('compute_server_requests').select(['status', 'result']).where('id', '=', id).executeTakeFirst();
        if (row && row.status === 'done') return parseJsonObject(row.result);
        if (row && row.status === 'failed') throw conflict(String(parseJsonObject(row.result).message ?? `The ${action} request failed.`));
        if (!row || row.status !== 'pending' || Date.now() >= deadline || o.stopping()) {
          await db.updateTable('compute_server_requests').set({ status: 'expired', updated_at: nowIso() }).where('id', '=', id).where('status', '=', 'pending').execute();
          throw conflict(`The host of instance ${serverId} did not answer the ${action} request in time.`);
        }
        await new Promise<void>((resolve) => {
          const t = setTimeout(done, Math.min(1000, Math.max(0, deadline - Date.now())));
          function done() {
            clearTimeout(t);
            waiters.delete(id);
            resolve();
          }
          waiters.set(id, done);
        });
      }
    },

    async pending(hostname) {
      const rows = await db.selectFrom('compute_server_requests').select(['id', 'server_id', 'kind', 'args', 'resource_kind', 'resource_id'])
        .where('host', '=', hostname).where('status', '=', 'pending').execute();
      return rows.map((p) => ({ id: p.id, kind: p.resource_kind ?? SERVER_KIND, resource_id: p.resource_id ?? p.server_id, action: p.kind, args: parseJsonObject(p.args) }));
    },

    async answer(hostname, q) {
      const row = await db.selectFrom('compute_server_requests').selectAll().where('id', '=', q.id).executeTakeFirst();
      if (!row || row.host !== hostname || row.status !== 'pending') return null;
      const now = nowIso();
      await db.updateTable('compute_server_requests')
        .set({ status: q.ok ? 'done' : 'failed', result: JSON.stringify(q.ok ? q.result ?? {} : { message: q.error?.message ?? 'failed', code: q.error?.code ?? null }), updated_at: now })
        .where('id', '=', q.id).where('status', '=', 'pending').execute();
      let touched: string | null = null;
      if (row.kind === 'snapshot') {
        // the snapshot is over, one way or the other: the server leaves its image_* task state
        const s = await db.selectFrom('compute_servers').select(['id', 'task_state']).where('id', '=', row.server_id).executeTakeFirst();
        if (s && s.task_state && SNAPSHOT_TASKS.has(s.task_state)) {
          await db.updateTable('compute_servers').set({ task_state: null, updated_at: now }).where('id', '=', s.id).where('task_state', '=', s.task_state).execute();
          touched = s.id;
        }
      }
      waiters.get(q.id)?.();
      return touched;
    },

    async expire() {
      const stale = new Date(Date.now() - 3600_000).toISOString();
      await db.updateTable('compute_server_requests').set({ status: 'expired', updated_at: nowIso() })
        .where('status', '=', 'pending').where('created_at', '<', stale).execute();
      await db.deleteFrom('compute_server_requests').where('status', '!=', 'pending').where('updated_at', '<', stale).execute();
    },

    stop() {
      for (const w of [...waiters.values()]) w();
    },
  };
}
