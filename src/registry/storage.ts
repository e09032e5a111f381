// Where the registry keeps bytes: objects of the object store, in an
// internal container of the repository's project (hidden from Swift and S3
// listings). Keys:
//   blobs/<digest>            a blob, once per project
//   manifests/<digest>        a manifest's exact bytes, once per project
//   uploads/<id>/<n>          the n-th chunk of an upload session
// A completed upload is composed from its chunks (no copy of the bytes); a
// blob mounted from another project is a server-side copy (a reference).
import type { Readable } from 'node:stream';

export interface RegistryStorage {
  /** Stores a stream under key (replacing), all or nothing; the size written. */
  put(projectId: string, key: string, data: Readable): Promise<{ size: number }>;
  /** The bytes under key, optionally [start, end] inclusive; undefined when absent. */
  open(projectId: string, key: string, range?: { start: number; end: number }): Promise<Readable | undefined>;
  /** Size of the object under key; undefined when absent. */
  size(projectId: string, key: string): Promise<number | undefined>;
  /** Removes the object; absent is not an error. */
  delete(projectId: string, key: string): Promise<void>;
  /** Makes `target` the concatenation of `parts` (in order), sharing their bytes. */
  compose(projectId: string, target: string, parts: string[]): Promise<{ size: number }>;
  /** Makes toKey of toProject the same bytes as fromKey of fromProject (a reference, not a copy). */
  copy(fromProject: string, fromKey: string, toProject: string, toKey: string): Promise<void>;
  /** Objects under a prefix with their last-modified time (ms), for garbage collection. */
  list(projectId: string, prefix: string): Promise<Array<{ key: string; modified: number }>>;
}

export const blobKey = (digest: string) => `blobs/${digest}`;
export const manifestKey = (digest: string) => `manifests/${digest}`;
export const partKey = (upload: string, n: number) => `uploads/${upload}/${String(n).padStart(6, '0')}`;
