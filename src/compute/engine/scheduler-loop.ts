// The scheduler loop: one round at a time (placement in scheduler.ts), again
// while kicked or while a round left work; each round first reaps the servers
// being deleted that no agent will clean up. Placed servers wake their hosts'
// watches.
import type { Logger } from 'pino';
import type { Db } from '../../db/database.ts';
import { softDelete } from './release.ts';
import { hostIsUp, type Scheduler } from './scheduler.ts';

export interface SchedulerLoop {
  /** Runs a round now, or once more after the one running. */
  kick(): Promise<void>;
  /** Waits for the round running, and runs no more. */
  stop(): Promise<void>;
}

export function schedulerLoop(o: {
  db: Db; log: Logger; scheduler: Scheduler; batchSize: number; serviceDownTime: number;
  notify(host: string): void; changed(ids: string[]): Promise<void>;
}): SchedulerLoop {
  const { db, log } = o;
  let running: Promise<void> | null = null;
  let again = false;
  let stopping = false;

  /**
   * Servers being deleted that no agent will clean up: those no host holds
   * (the API does it too; this closes the race with a placement), and those on
   * a host that is down (Nova's local delete). They are soft-deleted here; a
   * host that comes back removes what it still holds when its agent resyncs.
   */
  const reapUnplaced = async () => {
    const rows = await db.selectFrom('compute_servers').select(['id', 'version', 'host']).where('task_state', '=', 'deleting')
      .where('deleted_at', 'is', null).execute();
    if (!rows.length) return;
    const hosts = await db.selectFrom('compute_hosts').selectAll().execute();
    const down = new Set(hosts.filter((h) => !hostIsUp(h, o.serviceDownTime)).map((h) => h.hostname));
    const known = new Set(hosts.map((h) => h.hostname));
    const reaped: string[] = [];
    for (const r of rows) {
      if (r.host !== null && known.has(r.host) && !down.has(r.host)) continue;
      const done = await db.transaction().execute((tx) => softDelete(tx, r.id, r.version, { sameVersion: true, host: r.host }));
      if (done) {
        reaped.push(r.id);
        if (r.host) log.info({ server: r.id, host: r.host }, 'deleted a server whose host is down (local delete)');
      }
    }
    await o.changed(reaped);
  };

  const kick = (): Promise<void> => {
    if (stopping) return Promise.resolve();
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        try {
          await reapUnplaced();
          const r = await o.scheduler.round();
          for (const h of r.placed.keys()) o.notify(h);
          if (r.waiting >= o.batchSize || r.lost > 0) again = true;
        } catch (err) {
          log.error({ err }, 'scheduler round failed');
        }
      } while (again && !stopping);
    })().finally(() => {
      running = null;
    });
    return running;
  };

  return {
    kick,
    async stop() {
      stopping = true;
      await running;
    },
  };
}
