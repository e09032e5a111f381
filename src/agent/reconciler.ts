// A reconciler converges the resources of one kind on this host, one resource
// at a time (the agent's work queue for the kind calls it per id). It reads
// the latest desired state the agent holds, acts through its drivers, reports
// what it observes through `report`, and throws when the step should be
// retried (with backoff).
import type { Logger } from 'pino';
import type { PendingRequest, Resource, ResourceReport } from '../fleet/protocol.ts';
import type { Driver } from './drivers/driver.ts';

export interface ReconcilerContext {
  log: Logger;
  hostname: string;
  report(r: ResourceReport): void;
  /** Uploads image bytes into a queued image (snapshots). */
  uploadImage(imageId: string, archive: AsyncIterable<Buffer>): Promise<void>;
  /** The chunks of volume backups (src/volume/backups.ts): sent while backing up, fetched while restoring. */
  backupChunks?: {
    put(backupId: string, index: number, sha256: string, data: Buffer): Promise<void>;
    get(backupId: string, index: number): Promise<Buffer>;
  };
  /** Converges a resource of this kind again soon (a driver heard something: a bare-metal ramdisk called back). */
  requeue?(id: string): void;
}

export interface Reconciler {
  readonly kind: string;
  /** Converges one resource to `desired`; undefined: it is no longer placed here, remove what is left. */
  reconcile(id: string, desired: Resource | undefined): Promise<void>;
  /** Ids of the resources of this kind the host holds (anything not desired is removed). */
  local(): Promise<string[]>;
  /** Work beyond the desired state about one of its resources. */
  serve?(req: PendingRequest): Promise<Record<string, unknown>>;
  /** Periodic housekeeping; `known` are the ids the agent holds desired state for. */
  sweep?(known: Set<string>): Promise<void>;
  /**
   * The agent re-converges every desired resource of the kind at every Nth
   * sweep (default 1: each); a kind whose re-check costs processes per
   * resource (reads of links, namespaces, the nft ruleset) takes a larger N.
   */
  readonly recheckEvery?: number;
}

/** Builds the reconciler of a kind from the drivers that serve it. */
export type ReconcilerFactory = (drivers: Driver[], ctx: ReconcilerContext) => Reconciler;
