// What a compute driver does for the agent. The agent owns the loop (watch,
// schedule work, report); a driver converges one server at a time and must be
// idempotent: any step may be repeated after a crash.
import type { DesiredServer } from '../../compute/engine/protocol.ts';

export interface Observed {
  power_state: number;
  state: 'active' | 'stopped' | 'paused' | 'suspended';
}

export interface Capacity { vcpus: number; memory_mb: number; disk_gb: number }

export interface ComputeDriver {
  readonly kinds: string[];
  /** Checks the host, creates the state directories, removes leftovers of a crash. */
  start(): Promise<void>;
  capacity(): Promise<Capacity>;
  /** Ids of the servers this driver holds anything for on this host. */
  localServers(): Promise<string[]>;
  /** Makes the host match `desired` for one server; returns what it observes afterwards. */
  converge(desired: DesiredServer): Promise<Observed>;
  /** What the host holds for a server now, without changing anything; null when nothing. */
  observe(id: string, desiredPower?: string): Promise<Observed | null>;
  /** Removes everything of a server: processes, mounts, namespaces, cgroups, files. Idempotent. */
  destroy(id: string): Promise<void>;
  consoleOutput(id: string, lines?: number): Promise<string>;
  /** Writes the server's disk as a new image (an OCI archive for containers) to `upload`. */
  snapshot(id: string, upload: (archive: AsyncIterable<Buffer>) => Promise<void>): Promise<void>;
  /** Releases what the driver holds in the agent process (helper processes); servers keep running. */
  stop(): Promise<void>;
  /** Periodic housekeeping (console caps, unused images); `inUse` are the servers the agent knows. */
  sweep(inUse: Set<string>): Promise<void>;
}

/** A failure that is the image's or the request's fault, not the host's: retrying elsewhere will not help. */
export class PermanentError extends Error {}
