// What every compute route module is given.
import type { ServerNetworking } from '../../network/service.ts';
import type { BaremetalNodes } from '../../baremetal/service.ts';
import type { ServerVolumes } from '../../volume/service.ts';
import type { Logger } from 'pino';
import type { Db } from '../../db/database.ts';
import type { Engine } from '../engine/interface.ts';
import type { IdentityContext } from '../../identity/context.ts';
import type { ImageAccess } from './images-access.ts';
import type { ServerEvents } from './events.ts';
import type { ResourceChange } from '../../http/events.ts';

export interface ComputeConfig {
  /** The availability zone of hosts that name none (Nova's default_availability_zone). */
  defaultAvailabilityZone: string;
  /** Nova's [api] enable_instance_password: return adminPass on create and rebuild. */
  enableInstancePassword: boolean;
  /** How long os-getConsoleOutput waits for the agent, in ms. */
  consoleTimeoutMs: number;
  /** How long createImage waits for the agent's snapshot, in ms. */
  snapshotTimeoutMs: number;
  /** A host not heard from for this long is down (Nova's service_down_time), in seconds. */
  serviceDownTime: number;
  /**
   * Nova's shelved_offload_time: 0 offloads a server as soon as it is shelved
   * (Nova's default, and what Tempest's own default expects), -1 never (only
   * shelveOffload does). A positive time is taken as -1: no periodic offload yet.
   */
  shelvedOffloadTime: number;
  /** How often the engine's periodic pass runs (scheduling retries, the bare-metal driver, the host watch), in ms. */
  periodicMs: number;
}

export const defaultComputeConfig: ComputeConfig = {
  defaultAvailabilityZone: 'nova',
  enableInstancePassword: true,
  consoleTimeoutMs: 15_000,
  snapshotTimeoutMs: 600_000,
  serviceDownTime: 60,
  shelvedOffloadTime: 0,
  periodicMs: 2000,
};

export interface ComputeContext {
  db: Db;
  log: Logger;
  engine: Engine;
  images: ImageAccess;
  identity: IdentityContext;
  config: ComputeConfig;
  /** The network service's way to servers' ports; null: servers get no ports (networks recorded only). */
  network: ServerNetworking | null;
  /** The volume service's way to Cinder's attachments; null: volumes cannot be attached. */
  volumes: ServerVolumes | null;
  /** Publishes servers' changes to the resource event stream (src/http/events.ts). */
  serverEvents: ServerEvents;
  /** Publishes other resources' changes (key pairs) to that stream. */
  publish: (change: ResourceChange) => void;
  /** The bare-metal service's nodes (os-hypervisors lists them as Nova's ironic driver does); null: none. */
  baremetal: BaremetalNodes | null;
}
