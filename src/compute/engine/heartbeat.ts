// The heartbeat watch: a host whose agent stopped registering and watching is
// down (os-services computes the state from last_seen_at; the scheduler skips
// it); this logs each host's transitions as they happen.
import type { Logger } from 'pino';
import type { Db } from '../../db/database.ts';
import { hostIsUp } from './scheduler.ts';

export function heartbeatWatch(db: Db, log: Logger, o: { serviceDownTime: number }): () => Promise<void> {
  const state = new Map<string, boolean>();
  return async () => {
    const hosts = await db.selectFrom('compute_hosts').selectAll().execute();
    const now = Date.now();
    for (const h of hosts) {
      const up = hostIsUp(h, o.serviceDownTime, now);
      const before = state.get(h.hostname);
      if (before !== undefined && before !== up) {
        if (up) log.info({ host: h.hostname }, 'host is up');
        else log.warn({ host: h.hostname, lastSeen: h.last_seen_at }, 'host is down: its agent stopped reporting');
      }
      state.set(h.hostname, up);
    }
  };
}
