// What the rest of compute sees of the engine: the Engine the API records
// intent through, and what the engine is built from. Types only, depending on
// nothing above the engine, so the API and the engine do not import each other
// (src/compute/service.ts wires them together).
import type { Logger } from 'pino';
import type { Db } from '../../db/database.ts';
import type { ImageService } from '../../image/service.ts';
import type { ServerRow } from '../schema.ts';
import type { ServerAction, ServerSpec } from './protocol.ts';
import type { Resource } from '../../fleet/protocol.ts';
import type { ServerVolumes } from '../../volume/service.ts';
import type { BaremetalNodes } from '../../baremetal/service.ts';
import type { ServerNetworking } from '../../network/service.ts';

export type AgentRequestKind = ServerAction;

/** What the engine is built from: compute's own dependencies, less what only the API uses. */
export interface EngineDeps {
  db: Db;
  log: Logger;
  dataDir: string;
  images: ImageService;
  config?: { serviceDownTime?: number; defaultAvailabilityZone?: string; periodicMs?: number };
  /** Binds a placed server's ports to its host (the network service); none: servers have no ports. */
  bindPorts?(serverId: string, host: string, kind: string): Promise<void>;
  /** Cinder's attachments (the volume service); none: servers have no volumes. */
  volumes?: ServerVolumes;
  /** The bare-metal service's nodes (Nova's ironic driver's Ironic); none: bare-metal servers find no valid host. */
  baremetal?: BaremetalNodes;
  /** The servers' ports (the bare-metal driver binds them to the nodes' NICs); none: servers have no ports. */
  network?: ServerNetworking | null;
}

export interface Engine {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Wakes the scheduler: a server waits for a host. */
  kick(): void;
  /** Wakes the agent watching `host`: its servers' desired state changed (version bumped). */
  notify(host: string | null): void;
  /**
   * Asks the agent of a server for work beyond its desired state, and waits for
   * the answer: 'console' {length?: lines} -> {output}; 'snapshot' {image_id}
   * (a queued image the agent uploads an OCI archive into) -> {image_id}.
   * Throws a 409 ApiError when the server has no host, the agent fails, or it
   * does not answer within timeoutMs. `host`: asked of that host (a live
   * migration's destination) instead of the server's.
   */
  request(serverId: string, kind: AgentRequestKind, args: Record<string, unknown>, timeoutMs: number, o?: { host?: string }): Promise<unknown>;
  /**
   * The scheduler's choice of a host for a server moving off its own (a cold
   * migration): its filters and weighers over the hosts up now, the server's
   * own host and `exclude` left out, `force` (a host name) the only one
   * considered. Null: none fits (Nova's NoValidHost). Plans only: the caller
   * claims on the host's provider.
   */
  selectDestination(s: ServerRow, o: { force?: string | null }): Promise<{ id: string; hostname: string; host_ip: string | null } | null>;
  /** The server's desired state as `hostname`'s agent gets it (a live migration's destination: the spec it prepares); null when the server is gone. */
  desiredOn(serverId: string, hostname: string): Promise<Resource<ServerSpec> | null>;
  /** Called with the rows an agent's report changed (e.g. to finish instance action events). */
  onServersChanged(fn: (rows: ServerRow[]) => Promise<void>): void;
}
