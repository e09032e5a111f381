// Glance's part of the resource event stream (src/http/events.ts): the API's
// writes on images (create, update, data upload, delete), each shown from its
// row; a deleted image (kept with status deleted) is gone.
import type { Kysely } from 'kysely';
import type { WriteWatch } from '../http/events.ts';

export function imageWriteWatch(db: Kysely<any>): WriteWatch {
  return {
    collections: { images: { type: 'image', key: null } },
    async describe(type, id) {
      if (type !== 'image') return null;
      const row = await db.selectFrom('image_images').select(['owner', 'name', 'status', 'visibility', 'deleted_at']).where('id', '=', id).executeTakeFirst();
      if (!row || row.deleted_at !== null) return null;
      // published for its owner's project (and admins): another project does not hear of a public image's changes
      return { project_id: row.owner, name: row.name, status: row.status };
    },
  };
}
