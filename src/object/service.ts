// The object service: the store (records in SQL, bytes in the backend) and
// the Swift v1 API under /object. Other services and APIs (S3, the OCI
// registry, Glance's object store) use the store through this module's
// exports only: `ObjectService.store` and the types re-exported below.
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import type { Db } from '../db/database.ts';
import type { Service } from '../http/service.ts';
import type { ObjectBackend } from './backend.ts';
import { FileBackend } from './file-backend.ts';
import { ObjectStore } from './store.ts';
import { swiftRoutes, swiftSetup } from './swift/api.ts';
import { renderSwiftError } from './swift/errors.ts';
import { infoRoutes } from './swift/info.ts';
import { swiftMiddleware } from './swift/pipeline.ts';

export type {
  AccountInfo, AuditReport, ComposeOptions, ContainerEntry, ContainerInfo, CopyOptions, ListOptions, Meta, MetaChange,
  ObjectAttributes, ObjectEntry, ObjectInfo, PutOptions, Segment, StoreErrorReason, WriteConditions,
} from './store.ts';
export { MAX_OBJECT_SIZE, ObjectStore, ObjectStoreError, swiftTimestamp, timestampDate } from './store.ts';
export type { ObjectBackend } from './backend.ts';
export { putSegmented, type SegmentedPutOptions } from './segmented.ts';

export interface ObjectConfig {
  /** Where the file backend keeps blobs (default DATA_DIR/objects). */
  objectDir?: string;
  /** fsync of every write (default on; only tests of logic turn it off). */
  fsync?: boolean;
  /** Seconds between sweeps of expired objects. */
  reapInterval?: number;
}

export interface ObjectService {
  /** The in-process interface every API that keeps bytes uses. */
  store: ObjectStore;
  /** The Swift API (/object). */
  service: Service;
  /** Crash recovery, then the expiry sweeps. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** This replica's name for its pending blobs: host and data directory, stable across restarts. */
export function replicaOwner(dataDir: string): string {
  return `${hostname().replace(/[^A-Za-z0-9._-]/g, '_')}-${createHash('sha256').update(resolve(dataDir)).digest('hex').slice(0, 12)}`;
}

export function createObjectService(o: { db: Db; log: Logger; dataDir: string; config?: ObjectConfig; backend?: ObjectBackend }): ObjectService {
  const backend = o.backend ?? new FileBackend(resolve(o.config?.objectDir ?? join(o.dataDir, 'objects')), { fsync: o.config?.fsync });
  const store = new ObjectStore({ db: o.db, backend, log: o.log, owner: replicaOwner(o.dataDir), reapInterval: o.config?.reapInterval });
  const ctx = { store, log: o.log };
  return {
    store,
    service: {
      name: 'object', prefix: '/object', routes: [...swiftRoutes(ctx, swiftMiddleware(ctx)), ...infoRoutes()], rules: {},
      renderError: renderSwiftError, setup: swiftSetup,
    },
    start: () => store.start(),
    stop: () => store.stop(),
  };
}
