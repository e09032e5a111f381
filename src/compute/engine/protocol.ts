// Compute's resource kind on the agent protocol (src/fleet/protocol.ts): the
// `server`. The watch hands an agent `{kind: 'server', id, version, spec:
// ServerSpec}`; the agent reports `observed: ServerObserved` (plus a
// structured error when converging failed) and answers the server requests
// (`console`, `snapshot`). Types only: the agent imports them.
import type { DesiredPower } from '../schema.ts';

export const SERVER_KIND = 'server';

/**
 * Requests a server's agent answers (PendingRequest.action). The
 * `live_migration_*` ones (since protocol 2.6) are a live migration's steps,
 * asked by the control plane of the source or the destination host
 * (docs/agent-protocol.md): prepare (destination), run, progress,
 * force_complete, abort and recover (source), finish (destination).
 */
export const ServerAction = {
  console: 'console', snapshot: 'snapshot',
  migrationPrepare: 'live_migration_prepare', migrationRun: 'live_migration_run', migrationProgress: 'live_migration_progress',
  migrationForceComplete: 'live_migration_force_complete', migrationAbort: 'live_migration_abort',
  migrationFinish: 'live_migration_finish', migrationRecover: 'live_migration_recover',
} as const;
export type ServerAction = (typeof ServerAction)[keyof typeof ServerAction];

export interface AgentImage {
  id: string; name: string | null; status: string;
  container_format: string | null; disk_format: string | null;
  size: number | null; checksum: string | null;
}

/** Everything an agent needs to converge one server. */
export interface ServerSpec {
  name: string;
  hostname: string;
  project_id: string;
  user_id: string;
  /** The server kind (`container`, later `vm`): which driver serves it. */
  kind: string;
  image: AgentImage | null;
  flavor: { id: string; name: string; vcpus: number; ram: number; disk: number; ephemeral: number; swap: number; extraSpecs: Record<string, string> };
  power: DesiredPower;
  reboot_seq: number;
  reboot_type: string | null;
  rebuild_seq: number;
  vm_state: string;
  task_state: string | null;
  /** The server is being deleted: tear everything down, then report `deleted`. */
  deleted: boolean;
  config_drive: ConfigDrive;
  /**
   * The server's ports in interface order (since protocol 2.2; absent from an
   * older server). A VM's driver gives each one a NIC on `device`, the tap the
   * network driver makes on the port's bridge; a container's ports are veths
   * the network driver moves into its namespace, so the container driver
   * ignores them.
   */
  ports?: ServerPortSpec[];
  /**
   * The volumes attached to the server, in attach order (since protocol 2.4;
   * absent from an older server). An entry appears once the volume's host has
   * exported it for this attachment (`location` known) and goes when it is
   * detached: the driver attaches what is listed and detaches what is not,
   * at boot and on a running server, and reports each in `observed.volumes`.
   */
  volumes?: ServerVolumeSpec[];
  /**
   * Present while the server is rescued (Nova's rescue; since protocol 2.4,
   * absent otherwise and from an older server): the driver restarts it from
   * `image` with the server's own disk kept beside it (a VM: `image` as an
   * overlay that is the first disk, its root disk the second; a container:
   * `image` as its root filesystem, throwaway, with its own root filesystem
   * at /mnt). Once absent again it restarts on its own disk and the rescue
   * disk is deleted.
   */
  rescue?: { image: AgentImage };
  /**
   * Present on a live migration's destination while the server arrives
   * there (since protocol 2.6): the driver keeps what the migration's
   * requests made (a qemu waiting for the incoming state) and starts or
   * stops nothing; the source keeps converging the server meanwhile.
   */
  incoming?: { migration: string };
}

/** live_migration_prepare's args: the server as the destination must run it, and the address its qemu listens on. */
export interface LiveMigrationPrepare { migration: string; version: number; spec: ServerSpec; listen: string }
/** What the destination listens on (live_migration_prepare's answer, live_migration_run's `target`). */
export interface LiveMigrationTarget {
  /** qemu's incoming migration URI (`tcp:host:port`). */
  migrate_uri: string;
  /** The destination's NBD server and the writable exports of its local disks (a block migration); null: shared storage. */
  nbd: { host: string; port: number; exports: string[] } | null;
}
/** A live migration's progress (live_migration_progress and live_migration_run's answers), in bytes, as Nova's migration shows it. */
export interface LiveMigrationProgress {
  /** qemu's migration status (setup, active, completed...), or `mirroring` while the disks are copied first. */
  status: string;
  memory_total: number; memory_processed: number; memory_remaining: number;
  disk_total: number; disk_processed: number; disk_remaining: number;
}

/** One volume attachment as the server's host makes it (Nova's block device mapping, resolved). */
export interface ServerVolumeSpec {
  /** Cinder's attachment id: the key of the attachment in reports. */
  attachment_id: string;
  volume_id: string;
  /**
   * The device name Nova shows (`/dev/vdb`). A VM's disk is a virtio-blk on
   * its own PCIe root port with `serial` = the volume id's first 20
   * characters (what the guest's /dev/disk/by-id shows, as with Nova); a
   * container gets a block device node at this path inside it.
   */
  device: string;
  /** The volume backend's export (VolumeExportObserved): a path on this host (`local`) or `nbd://host:port/name`. */
  location: string;
  /** The data's format at `location`. */
  format: 'raw' | 'qcow2';
  read_only: boolean;
  /**
   * A container only: mount the volume's filesystem at this path inside it
   * (the server's metadata `volume_mount:<volume_id>=<path>` asks for it);
   * absent: the device node only. A VM ignores it.
   */
  mount_path?: string;
  /** 0 for a boot volume (boot from volume), else null. */
  boot_index: number | null;
}

/** What the host made of one attachment (ServerObserved.volumes). */
export interface ServerVolumeObserved {
  attachment_id: string;
  /** `attached`: the server sees the volume; `failed`: attaching or detaching failed (the message says why, for the user). */
  state: 'attached' | 'failed';
  message?: string;
}

export interface ServerPortSpec {
  id: string;
  mac_address: string;
  /** The host-side device of the port (network/protocol.ts tapName). */
  device: string;
  mtu: number;
  /** The interface index: the guest's ethN, also the NIC's PCI slot order. */
  index: number;
}

/** A server's spec with its identity, as drivers take it. */
export interface DesiredServer extends ServerSpec {
  id: string;
  /** The resource's version: changes whenever anything in the spec changes. */
  version: number;
}

export interface ConfigDrive {
  /**
   * The user asked for a config drive (`config_drive: true`, or the image's
   * `img_config_drive=mandatory`); since protocol 2.2. A VM gets the `config-2`
   * disk only then; a container always has the files (they cost nothing).
   */
  requested?: boolean;
  meta_data: Record<string, unknown>;
  /** Base64, as the user gave it; null when none. */
  user_data: string | null;
  network_data: Record<string, unknown>;
  vendor_data: Record<string, unknown>;
}

/**
 * What the host holds for a server: `absent` when nothing (a failed build was
 * rolled back), `deleted` once a server being deleted is gone.
 */
export const ServerObservedState = ['active', 'stopped', 'paused', 'suspended', 'absent', 'deleted'] as const;
export type ServerObservedState = (typeof ServerObservedState)[number];

export interface ServerObserved {
  /** Nova's power state (PowerState). */
  power_state: number;
  state: ServerObservedState;
  /**
   * The spec's volumes as the host holds them (since 2.4): one entry per
   * attachment still attached or failed; a detached one is simply absent. Always sent by a 2.4 agent, empty when nothing is attached (the server finishes no detach on a report without it).
   */
  volumes?: ServerVolumeObserved[];
}

/** Error codes the server kind's drivers use (ResourceError.code). */
export const ServerErrorCode = {
  /** The image cannot be used (format, digests, config). */
  imageInvalid: 'image_invalid',
  /** The server has no image and the driver needs one. */
  imageMissing: 'image_missing',
  /** The flavor or the image config asks for what the driver cannot give. */
  specInvalid: 'spec_invalid',
  /** No driver on the host serves the server's kind. */
  kindUnsupported: 'kind_unsupported',
  /** Any other failure of the host (a command failed, a download was cut). */
  hostFailure: 'host_failure',
} as const;
