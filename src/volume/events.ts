// Cinder's part of the resource event stream (src/http/events.ts): the API's
// writes on volumes, snapshots and backups, and how each is shown from its table.
// Backends' reports (a volume becoming available, going away) are published
// by the volume kinds (kinds.ts `changed`).
import type { Kysely } from 'kysely';
import type { WriteWatch } from '../http/events.ts';

export function volumeWriteWatch(db: Kysely<any>): WriteWatch {
  return {
    collections: { volumes: { type: 'volume', key: 'volume' }, snapshots: { type: 'volume_snapshot', key: 'snapshot' }, backups: { type: 'volume_backup', key: 'backup' } },
    async describe(type, id) {
      const table = type === 'volume' ? 'volume_volumes' : type === 'volume_snapshot' ? 'volume_snapshots' : type === 'volume_backup' ? 'volume_backups' : null;
      if (!table) return null;
      const row = await db.selectFrom(table).select(['project_id', 'name', 'status']).where('id', '=', id).executeTakeFirst();
      return row ? { project_id: row.project_id, name: row.name, status: row.status } : null;
    },
  };
}
