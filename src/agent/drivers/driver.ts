// What drivers do for the agent. The agent owns the loops (watch, one work
// queue per resource kind, reports); a driver serves some kinds of resources
// and says which (`serves`): the container driver serves `server` resources
// of server kind `container`, a VM driver will serve `vm` servers beside it,
// a network data plane `network` and `port`. One agent runs several drivers.
// Every step must be idempotent: any may be repeated after a crash. A driver
// throws ResourceFailure (errors.ts) when it knows a failure's class; any
// other error is taken as the host's (transient).
import type { DesiredServer, LiveMigrationProgress, LiveMigrationTarget, ServerVolumeObserved } from '../../compute/engine/protocol.ts';
import type { Logger } from 'pino';
import type { BaremetalConductor, Hypervisor } from '../../fleet/protocol.ts';
import type { VolumePoolStats } from '../../volume/protocol.ts';

/** What every driver of `server` resources is built with. */
export interface ServerDriverOptions {
  stateDir: string;
  log: Logger;
  /** Downloads an image's bytes to a file (the agent client's image download). */
  fetchImage(imageId: string, dest: string): Promise<void>;
  /** cgroup parent of every server: /<parent>/<server id>. */
  cgroupParent?: string;
  /** Console log cap in bytes; the sweep keeps the newest half when it is exceeded. */
  consoleCap?: number;
  /** How long a graceful stop or soft reboot waits before the server is stopped hard. */
  stopTimeoutMs?: number;
}

export interface Capacity { vcpus: number; memory_mb: number; disk_gb: number }

export interface Driver {
  readonly name: string;
  /** Resource kind -> the variants of it served (for `server`: server kinds); [] for a kind without variants. */
  readonly serves: Readonly<Record<string, readonly string[]>>;
  /** Checks the host, creates the state directories, removes leftovers of a crash. */
  start(): Promise<void>;
  /** Releases what the driver holds in the agent process (helper processes); what it runs keeps running. */
  stop(): Promise<void>;
  /** The host's capacity, when the driver places work on the host's CPUs, memory and disk. */
  capacity?(): Promise<Capacity>;
  /** The hypervisor, when the driver runs VMs (probed once at start). */
  hypervisor?(): Promise<Hypervisor>;
  /** The pools of a driver that serves `volume` (sent with the registration and each heartbeat). */
  volumePools?(hostname: string): Promise<VolumePoolStats[]>;
  /** A bare-metal conductor's endpoint (HostInfo.baremetal). */
  baremetal?(): BaremetalConductor;
}

export interface Observed {
  power_state: number;
  state: 'active' | 'stopped' | 'paused' | 'suspended';
  /** The volume attachments held (ServerObserved.volumes): attached or failed; a detached one is absent. */
  volumes?: ServerVolumeObserved[];
}

/** A driver of `server` resources. */
export interface ComputeDriver extends Driver {
  /** Ids of the servers this driver holds anything for on this host. */
  localServers(): Promise<string[]>;
  /** Makes the host match `desired` for one server; returns what it observes afterwards. */
  converge(desired: DesiredServer): Promise<Observed>;
  /** What the host holds for a server now, without changing anything; null when nothing. */
  observe(id: string, desiredPower?: string): Promise<Observed | null>;
  /** Removes everything of a server at once (no graceful shutdown: Nova destroys on delete): processes, mounts, namespaces, cgroups, files. Idempotent. */
  destroy(id: string): Promise<void>;
  consoleOutput(id: string, lines?: number): Promise<string>;
  /** Writes the server's disk as a new image (an OCI archive for containers) to `upload`. */
  snapshot(id: string, upload: (archive: AsyncIterable<Buffer>) => Promise<void>): Promise<void>;
  /** Periodic housekeeping (console caps, unused images); `inUse` are the servers the agent knows. */
  sweep(inUse: Set<string>): Promise<void>;
  /** Live migration, when the driver does it (the `live_migration_*` requests). */
  liveMigration?: LiveMigrationDriver;
}

/**
 * A live migration's steps on the two hosts (the control plane calls them in
 * this order through the request channel; each is idempotent where it can be
 * repeated). Destination: `prepare` runs the server waiting for its state and
 * says where it listens; source: `run` copies the disks then the memory to it
 * and returns once the guest is handed over (the source's copy stays paused);
 * destination: `finish` starts it there. `abort` (source) cancels a run, which
 * then fails and leaves the server running on the source; `recover` (source)
 * runs the source's copy again after a hand-over the destination could not
 * finish. `forceComplete` pauses the guest so that the copy converges.
 */
export interface LiveMigrationDriver {
  prepare(d: DesiredServer, o: { migration: string; listen: string }): Promise<LiveMigrationTarget>;
  run(id: string, o: { migration: string; target: LiveMigrationTarget }): Promise<LiveMigrationProgress>;
  progress(id: string): Promise<LiveMigrationProgress>;
  forceComplete(id: string): Promise<void>;
  abort(id: string): Promise<void>;
  finish(id: string, migration: string): Promise<void>;
  recover(id: string, migration: string): Promise<void>;
}
