// The volume service's resource kinds on the agent protocol
// (src/fleet/protocol.ts, since 2.3; kinds.ts serves them, the agent's
// drivers/volume converges them): what the control plane hands the volume
// host's agent for each volume placed
// on it, and what the agent reports back. The watch hands an agent
// `{kind: 'volume', id, version, spec: VolumeSpec}`; `version` is the volume
// row's, bumped on every change the backend must act on (create, extend,
// delete). The agent converges its backend (a file on a reflink filesystem
// or a qcow2 chain today; Ceph RBD later) and reports VolumeObserved for that
// version; lifecycle.ts moves the volume's status on from it. Types and pure
// helpers only: the agent imports this file and nothing else of the service.
import type { StoragePoolStats } from '../fleet/protocol.ts';

export const VOLUME_KIND = 'volume';

/** Where a new volume's content comes from (an image: its bytes fetched through the agent's image download, converted from Glance's `disk_format`). */
export type VolumeSource =
  | { type: 'blank' }
  | { type: 'snapshot'; snapshot_id: string }
  | { type: 'volume'; volume_id: string }
  | { type: 'image'; image_id: string; disk_format: string };

/** What the volume should be on its host. */
export interface VolumeSpec {
  project_id: string;
  /** present: the data must exist with at least `size_gib`; absent: the data must be removed (the volume is being deleted). */
  state: 'present' | 'absent';
  /** GiB. Grows only (an extend); a backend never shrinks a volume. */
  size_gib: number;
  /** The backend on the host (the part of Cinder's `host@backend#pool` after `@`) and its pool. */
  backend: string;
  pool: string;
  /** Read once, at creation: a present volume is never re-made from its source. */
  source: VolumeSource;
  /**
   * The volume has been made (its status is no longer `creating`): data the
   * backend does not hold then is lost, reported as `data_missing` (the
   * volume turns `error`), never made again blank or from its source.
   */
  created: boolean;
  /** The volume type's extra specs a backend may act on (e.g. `volume_backend_name`, `multiattach`). */
  extra_specs: Record<string, string>;
  /**
   * Who must reach the data, one entry per attachment: the volume's own host
   * uses it in place (`local`: a file or block device path); another host gets
   * an NBD export from `qemu-storage-daemon` (no kernel target needed). Empty
   * while nothing is attached. Cinder's attachments (an attachment with a
   * connector on a host) fill it since 2.4.
   */
  exports: VolumeExport[];
  /**
   * An upload of the volume's data into a queued Glance image
   * (os-volume_upload_image): the agent converts the data to `disk_format`
   * and PUTs it to /agent/v1/images/{image_id}/file, then reports
   * `uploaded: image_id` for this version. Absent when none is asked.
   */
  upload?: VolumeUpload;
  /**
   * A backup of the volume's data to the object store (
   * src/volume/backups.ts): the agent reads the volume (or the snapshot
   * named, or a snapshot of its own for an attached volume), `chunk_size`
   * bytes at a time, and PUTs each chunk zlib-compressed to
   * /agent/v1/backups/{backup_id}/chunks/{index} with its sha256 (of the
   * uncompressed bytes) unless it equals the parent's at that index
   * (`parent_sha256`: an incremental backup sends only the changed chunks)
   * or the one the server holds already (`stored_sha256`: a backup resumed),
   * then reports `backed_up: backup_id` for this version.
   */
  backup?: VolumeBackupJob;
  /**
   * A restore of a backup into the volume: the agent GETs each
   * chunk from /agent/v1/backups/{backup_id}/chunks/{index}, inflates it,
   * checks its sha256 against `sha256[index]` and writes it at
   * index * chunk_size, `size_bytes` in all, then reports `restored: backup_id`.
   */
  restore?: VolumeRestoreJob;
}

export interface VolumeBackupJob {
  backup_id: string;
  chunk_size: number;
  /** A backup of this snapshot of the volume (Cinder's snapshot_id); null: of the volume itself. */
  snapshot_id: string | null;
  /** The volume is attached (a forced backup): read from a point-in-time snapshot the agent makes and removes. */
  live: boolean;
  /** An incremental backup: the sha256 of each chunk of its parent (hex, by index); null: a full backup. */
  parent_sha256: string[] | null;
  /**
   * The chunks the server holds of this backup already (their sha256 by index, null where none): an agent
   * that restarted mid-backup sends only the chunks that differ. Absent: none yet.
   */
  stored_sha256?: Array<string | null>;
}

export interface VolumeRestoreJob {
  backup_id: string;
  chunk_size: number;
  /** The bytes the backup holds (its volume's size when backed up). */
  size_bytes: number;
  /** The sha256 of each chunk's uncompressed bytes (hex, by index). */
  sha256: string[];
}

export interface VolumeUpload { image_id: string; disk_format: 'raw' | 'qcow2' }

export interface VolumeExport {
  attachment_id: string;
  /** The host of the server the volume is attached to. */
  host: string;
  protocol: 'local' | 'nbd';
  /** Read-only attachments get a read-only export. */
  read_only: boolean;
}

/** What the backend made of one export: where the attaching host finds the data (Cinder's connection_info). */
export interface VolumeExportObserved {
  attachment_id: string;
  /** `local`: a path on the volume's host; `nbd`: nbd://host:port/name. */
  location: string;
  /** The format a reader sees at `location` (since 2.4): `qcow2` for a qcow2-chain volume read in place, else `raw`. */
  format: 'raw' | 'qcow2';
}

/**
 * A backend pool's capacity, reported by the volume host (as Cinder's
 * scheduler-stats pools): what the scheduler places volumes by, as
 * inventories of placement's DISK_GB kind on a provider per pool.
 */
/** A volume host's pool as its agent registers it (the type is the fleet's: HostInfo carries it). */
export type VolumePoolStats = StoragePoolStats;

/** What the agent sees of a volume after converging it to a version. */
export interface VolumeObserved {
  state: 'present' | 'absent';
  /** The size the data has now, GiB (0 when absent). */
  size_gib: number;
  /** Where the data lives on the backend (a path, an RBD image name), for audits; never shown to users. */
  location: string | null;
  /** The exports made of the spec's `exports` (absent: none yet). */
  exports?: VolumeExportObserved[];
  /** The image the spec's `upload` filled (this version's). */
  uploaded?: string;
  /** The backup the spec's `backup` sent every chunk of (this version's). */
  backed_up?: string;
  /** The backup the spec's `restore` wrote back (this version's). */
  restored?: string;
}

export const VOLUME_SNAPSHOT_KIND = 'volume_snapshot';

/** A snapshot, handed to the host of its volume (it lives in the same backend: a reflink copy or a qcow2 layer). */
export interface SnapshotSpec {
  volume_id: string;
  project_id: string;
  /** present: the point-in-time copy must exist; absent: it must be removed. */
  state: 'present' | 'absent';
  /** The volume's size when the snapshot was asked, GiB. */
  size_gib: number;
  backend: string;
  pool: string;
}

export interface SnapshotObserved {
  state: 'present' | 'absent';
  location: string | null;
}

/** The error codes a volume backend reports (ResourceError.code), acted on by code, never by message. */
export const VolumeErrorCode = {
  /** No room in the pool for the size asked. */
  noSpace: 'no_space',
  /** The source (snapshot, volume, image) is missing or unreadable. */
  sourceUnavailable: 'source_unavailable',
  /** The backend refused the operation (e.g. shrinking). */
  refused: 'refused',
  /** The data is still in use (an export open): the delete waits. */
  busy: 'busy',
  /** A volume made before (spec `created`) has no data on the backend: lost, never re-made. */
  dataMissing: 'data_missing',
} as const;
export type VolumeErrorCode = (typeof VolumeErrorCode)[keyof typeof VolumeErrorCode];

/** Cinder's `host@backend#pool` from its parts, and back. */
export const volumeHost = (host: string, backend: string, pool: string): string => `${host}@${backend}#${pool}`;
export function parseVolumeHost(s: string): { host: string; backend: string; pool: string } | null {
  const h = splitVolumeHost(s);
  return h && h.backend !== null && h.pool !== null ? { host: h.host, backend: h.backend, pool: h.pool } : null;
}
/**
 * The parts of `host`, `host@backend` or `host@backend#pool` (Cinder's
 * extract_host takes all three forms: os-services and capabilities name a
 * host or a backend); null when it is none of them.
 */
export function splitVolumeHost(s: string): { host: string; backend: string | null; pool: string | null } | null {
  const m = /^([^@#]+)(?:@([^@#]+)(?:#([^@#]+))?)?$/.exec(s);
  return m ? { host: m[1]!, backend: m[2] ?? null, pool: m[3] ?? null } : null;
}
