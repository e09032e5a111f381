// `stratus object audit`: the object store's blobs checked against their
// records — bit rot (a blob whose bytes no longer match their checksums or
// MD5), orphan files (no record names them) and missing files (a live record
// without its file). It changes nothing.
import type { Logger } from 'pino';
import type { Db } from '../db/database.ts';
import { FileBackend } from './file-backend.ts';
import { replicaOwner } from './service.ts';
import { ObjectStore, type AuditReport } from './store.ts';

export async function auditObjects(o: { db: Db; log: Logger; dataDir: string; objectDir: string; verify?: boolean }): Promise<AuditReport> {
  const store = new ObjectStore({ db: o.db, backend: new FileBackend(o.objectDir), log: o.log, owner: replicaOwner(o.dataDir), reapInterval: 0 });
  return store.audit({ verify: o.verify });
}

/** The report as lines for a terminal. */
export function auditText(r: AuditReport): string {
  const lines = [`blobs checked: ${r.blobsChecked}`, `corrupt: ${r.corrupt.length}`, `orphan files: ${r.orphanFiles.length}`, `missing files: ${r.missingFiles.length}`];
  for (const c of r.corrupt) lines.push(`corrupt ${c.blob}: ${c.reason}${c.objects.length ? ` (${c.objects.join(', ')})` : ''}`);
  for (const id of r.orphanFiles) lines.push(`orphan ${id}`);
  for (const id of r.missingFiles) lines.push(`missing ${id}`);
  return lines.join('\n');
}
