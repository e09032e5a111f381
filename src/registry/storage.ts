// Where the registry keeps bytes: objects of the object store, in an
// internal container of the repository's project (hidden from Swift and S3
// listings). Keys:
//   blobs/<digest>            a blob, once per project
//   manifests/<digest>        a manifest's exact bytes, once per project
//   uploads/<id>/<n>          the n-th chunk of an upload session
// A completed upload is composed from its chunks (no copy of the bytes); a
// blob mounted from another project is a server-side copy (a reference).
import type { Readable } from 'node:stream';
import { MAX_OBJECT_SIZE, ObjectStoreError, putSegmented, timestampDate, type ContainerInfo, type ObjectStore } from '../object/service.ts';

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

/** The internal container (per project) holding the registry's objects. */
export const REGISTRY_CONTAINER = 'registry';

/** Bytes per object a put writes; a larger stream is several objects composed (an object holds at most MAX_OBJECT_SIZE). */
export const SEGMENT = Math.min(1024 * 1024 * 1024, MAX_OBJECT_SIZE);

/** The registry's bytes in the object store: one internal container per project. */
export class ObjectRegistryStorage implements RegistryStorage {
  private readonly store: ObjectStore;
  private readonly segment: number;
  private readonly containers = new Map<string, Promise<ContainerInfo>>();

  constructor(store: ObjectStore, o: { segment?: number } = {}) {
    this.store = store;
    this.segment = o.segment ?? SEGMENT;
  }

  private container(projectId: string): Promise<ContainerInfo> {
    let c = this.containers.get(projectId);
    if (!c) {
      c = this.store.createContainer(projectId, REGISTRY_CONTAINER, { internal: true }).then((r) => r.container);
      c.catch(() => this.containers.delete(projectId));
      this.containers.set(projectId, c);
    }
    return c;
  }

  /** Runs `op` on the project's container, once more with a fresh one if it vanished meanwhile. */
  private async inContainer<T>(projectId: string, op: (c: ContainerInfo) => Promise<T>): Promise<T> {
    try {
      return await op(await this.container(projectId));
    } catch (e) {
      if (!(e instanceof ObjectStoreError) || e.reason !== 'ContainerNotFound') throw e;
      this.containers.delete(projectId);
      return op(await this.container(projectId));
    }
  }

  /** The object store's segmented put (a layer may exceed one object's 5 GiB). */
  async put(projectId: string, key: string, data: Readable) {
    const o = await this.inContainer(projectId, (c) => putSegmented(this.store, c, key, data, { segment: this.segment, contentType: 'application/octet-stream' }));
    return { size: o.size };
  }

  async open(projectId: string, key: string, range?: { start: number; end: number }) {
    // the store's ranges end exclusive
    return (await this.store.openObject(await this.container(projectId), key, range && { start: range.start, end: range.end + 1 }))?.stream;
  }

  async size(projectId: string, key: string) {
    return (await this.store.headObject(await this.container(projectId), key))?.size;
  }

  async delete(projectId: string, key: string) {
    await this.store.deleteObject(await this.container(projectId), key);
  }

  async compose(projectId: string, target: string, parts: string[]) {
    const o = await this.inContainer(projectId, (c) => this.store.composeObject(
      { container: c, name: target }, parts.map((name) => ({ container: c, name })),
      { etag: target.slice(target.lastIndexOf(':') + 1), contentType: 'application/octet-stream', removeParts: true },
    ));
    return { size: o.size };
  }

  async copy(fromProject: string, fromKey: string, toProject: string, toKey: string) {
    const from = await this.container(fromProject);
    await this.inContainer(toProject, (to) => this.store.copyObject({ container: from, name: fromKey }, { container: to, name: toKey }));
  }

  async list(projectId: string, prefix: string) {
    const c = await this.container(projectId);
    const out: Array<{ key: string; modified: number }> = [];
    let marker: string | undefined;
    for (;;) {
      const page = await this.store.listObjects(c, { prefix, marker, limit: 1000 });
      for (const e of page) if (e.kind === 'object') out.push({ key: e.name, modified: timestampDate(e.timestamp).getTime() });
      if (page.length < 1000) return out;
      marker = page[page.length - 1]!.name;
    }
  }
}
