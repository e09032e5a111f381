// The volume backend interface of the agent (one interface, one file per
// backend, one conformance suite: test/dataplane/volume-backend.test.ts).
// The volume reconciler (reconciler.ts) calls it with the ids and sizes of
// src/volume/protocol.ts; every call is idempotent and safe to repeat after a
// crash at any point: a create writes under a temporary name and renames, so a
// retry never replaces or deletes the data of a volume that exists.
//
// `file` (file.ts) is the default: raw files with reflink snapshots and clones
// on btrfs/XFS, qcow2 backing chains elsewhere. It is shaped for a network
// backend too: Ceph RBD (through QEMU's `rbd` block driver) maps each call to
// one RBD operation — create: `rbd create`, snapshot: `rbd snap create` +
// `protect`, clone: `rbd clone` of a protected snapshot (of a volume: a hidden
// snapshot first), extend: `rbd resize`, delete: `rbd rm` (refused while
// clones exist: `busy`), export: an `rbd:pool/image` location QEMU opens
// itself on any host (no NBD needed), stats: `ceph df` of the pool.
import type { VolumeExport, VolumeExportObserved, VolumePoolStats, VolumeSource } from '../../../volume/protocol.ts';

export interface VolumeData {
  /** GiB the data holds now. */
  size_gib: number;
  /** Where the data is (a path, an RBD image): for audits and attachments, never shown to users. */
  location: string;
}

export interface VolumeBackend {
  /** The backend's name (the `@backend` of `host@backend#pool`) and its driver kind (`file`, `rbd`). */
  readonly name: string;
  readonly driver: string;
  /** Checks the host, prepares the pool (e.g. a loop-mounted btrfs), finishes or rolls back work a crash interrupted. */
  start(): Promise<void>;
  /** Unmounts what start() mounted and nothing else is using (tests; the agent leaves pools mounted). */
  stop(): Promise<void>;
  /**
   * Makes volume `id` exist with at least `sizeGib`, from `source` when it
   * does not exist yet (a present volume is never re-made). Throws a
   * ResourceFailure `source_unavailable` when the source is missing (an
   * image: gone, unreadable, or not the disk_format Glance says).
   */
  create(id: string, sizeGib: number, source: VolumeSource): Promise<VolumeData>;
  /**
   * Hands `use` a file holding volume `id`'s data (or its snapshot
   * `o.snapshotId`'s) in `format` (a copy, removed after: an upload to an
   * image, a backup). RBD: `qemu-img convert` from `rbd:pool/image`.
   */
  copyTo<T>(id: string, format: 'raw' | 'qcow2', use: (path: string) => Promise<T>, o?: { snapshotId?: string }): Promise<T>;
  /**
   * Writes raw data into volume `id` (a restore of a backup): `fill` writes
   * a raw file at the path it is handed (at most the volume's size), which
   * the backend then writes over the volume's data and removes. RBD:
   * `qemu-img convert -n` into `rbd:pool/image`.
   */
  restoreInto(id: string, fill: (path: string) => Promise<void>): Promise<VolumeData>;
  /** Grows volume `id` to `sizeGib` (never shrinks: a smaller size is `refused`). */
  extend(id: string, sizeGib: number): Promise<VolumeData>;
  /** Removes volume `id` and its snapshots; nothing when it is already gone. */
  delete(id: string): Promise<void>;
  /** Makes snapshot `snapshotId`, a point-in-time copy of volume `volumeId` (constant time on reflink and RBD). */
  snapshot(volumeId: string, snapshotId: string): Promise<{ location: string }>;
  deleteSnapshot(volumeId: string, snapshotId: string): Promise<void>;
  /** What the backend holds of a volume now; null when nothing. */
  observe(id: string): Promise<VolumeData | null>;
  observeSnapshot(volumeId: string, snapshotId: string): Promise<{ location: string } | null>;
  /** Where an attaching host finds the data (`local` only today: a path QEMU or a loop device opens). */
  export(id: string, exp: VolumeExport): Promise<VolumeExportObserved>;
  /** The volumes and snapshots the backend holds (ids), for the agent's local() and audits. */
  list(): Promise<{ volumes: string[]; snapshots: Array<{ volume_id: string; id: string }> }>;
  /** Files (or images) that belong to no volume or snapshot: temporaries of interrupted work, unreferenced layers. */
  strays(): Promise<string[]>;
  /** The pools the backend serves with their capacity (the scheduler's input). */
  pools(host: string): Promise<VolumePoolStats[]>;
}
