// Garbage collection: what no manifest holds goes.
//   - a blob that no manifest of any repository of its project references
//     (config, layer), once older than the grace period (a push uploads
//     blobs before the manifest naming them; a manifest push touches the
//     blobs it names, so a collection racing with it re-checks and keeps
//     them), with its links;
//   - the bytes of a manifest no repository of the project keeps any more;
//   - upload sessions untouched for a day, and chunks of no session.
// Manifests themselves are kept until deleted (tagged or not: an index needs
// its untagged children). Runs at start and periodically in the server
// (service.ts), and on demand (`stratus registry gc`).
import { sql } from 'kysely';
import type { RegistryCore } from './core.ts';
import { blobKey } from './storage.ts';

export interface GcOptions {
  /** Blobs and objects younger than this are kept (ms); default one hour. */
  graceMs?: number;
  /** Upload sessions untouched for this long are removed (ms); default one day. */
  uploadMaxAgeMs?: number;
  now?: number;
}

export interface GcResult { blobs: number; manifests: number; uploads: number; chunks: number }

export const DEFAULT_GRACE_MS = 60 * 60 * 1000;
export const UPLOAD_MAX_AGE_MS = 24 * 60 * 60 * 1000;

export async function collectGarbage(core: RegistryCore, o: GcOptions = {}): Promise<GcResult> {
  const now = o.now ?? Date.now();
  const cutoff = new Date(now - (o.graceMs ?? DEFAULT_GRACE_MS)).toISOString();
  const uploadCutoff = new Date(now - (o.uploadMaxAgeMs ?? UPLOAD_MAX_AGE_MS)).toISOString();
  const { db, storage } = core;
  const result: GcResult = { blobs: 0, manifests: 0, uploads: 0, chunks: 0 };

  for (const up of await db.selectFrom('registry_uploads').select(['id', 'project_id', 'parts']).where('updated_at', '<=', uploadCutoff).execute()) {
    await core.dropUpload(up);
    result.uploads++;
  }

  const unreferenced = (eb: any) => eb.not(eb.exists(
    eb.selectFrom('registry_manifest_refs as r').innerJoin('registry_repositories as p', 'p.id', 'r.repository_id')
      .select(sql.lit(1).as('one')).whereRef('p.project_id', '=', 'b.project_id').whereRef('r.child', '=', 'b.digest'),
  ));
  const garbage = await db.selectFrom('registry_blobs as b').select(['b.project_id', 'b.digest'])
    .where('b.created_at', '<=', cutoff).where(unreferenced).execute();
  for (const g of garbage) {
    // the row goes only if still unreferenced at this moment (a manifest may have just named it)
    const r = await db.deleteFrom('registry_blobs as b').where('b.project_id', '=', g.project_id).where('b.digest', '=', g.digest).where(unreferenced).executeTakeFirst();
    if (Number(r.numDeletedRows) === 0) continue;
    const repos = db.selectFrom('registry_repositories').select('id').where('project_id', '=', g.project_id);
    await db.deleteFrom('registry_repository_blobs').where('digest', '=', g.digest).where('repository_id', 'in', repos).execute();
    await storage.delete(g.project_id, blobKey(g.digest));
    result.blobs++;
  }

  // objects: manifests no repository keeps, chunks of no session
  const projects = await db.selectFrom('registry_repositories').select('project_id').distinct().execute();
  for (const { project_id: projectId } of projects) {
    const kept = new Set((await db.selectFrom('registry_manifests as m').innerJoin('registry_repositories as p', 'p.id', 'm.repository_id')
      .select('m.digest').where('p.project_id', '=', projectId).execute()).map((r) => r.digest));
    for (const o of await storage.list(projectId, 'manifests/')) {
      if (o.modified > Date.parse(cutoff)) continue;
      const digest = o.key.slice('manifests/'.length);
      if (kept.has(digest)) continue;
      await storage.delete(projectId, o.key);
      result.manifests++;
    }
    const sessions = new Set((await db.selectFrom('registry_uploads').select('id').where('project_id', '=', projectId).execute()).map((r) => r.id));
    for (const o of await storage.list(projectId, 'uploads/')) {
      if (o.modified > Date.parse(cutoff)) continue;
      const id = o.key.split('/')[1]!;
      if (sessions.has(id)) continue;
      await storage.delete(projectId, o.key);
      result.chunks++;
    }
  }
  return result;
}
