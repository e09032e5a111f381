// What every part of the bare-metal service shares: the database, the log,
// its settings, and the hooks to the rest of the process (the fleet's
// wake-ups, compute's events, Glance, the provisioning network's ports).
import type { ResourceChange } from '../http/events.ts';
import type { Logger } from 'pino';
import type { Db } from '../db/database.ts';
import type { Selectable } from 'kysely';
import type { BaremetalTables } from './schema.ts';

export type NodeRow = Selectable<BaremetalTables['baremetal_nodes']>;
export type PortRow = Selectable<BaremetalTables['baremetal_ports']>;
export type PortgroupRow = Selectable<BaremetalTables['baremetal_portgroups']>;
export type AllocationRow = Selectable<BaremetalTables['baremetal_allocations']>;

export interface BaremetalConfig {
  /** The provisioning network (name or id) the ramdisk boots on. */
  provisioningNetwork: string;
  /** Seconds after which a conductor not heard of is no longer alive (Ironic's heartbeat_timeout). */
  conductorTimeout: number;
  /** Seconds a conductor may be gone before its nodes move to another one. */
  takeoverAfter: number;
  /** The resource class of a node created without one (Ironic's default_resource_class; null: none). */
  defaultResourceClass: string | null;
}

export const DEFAULT_BAREMETAL_CONFIG: BaremetalConfig = {
  provisioningNetwork: 'baremetal', conductorTimeout: 60, takeoverAfter: 300, defaultResourceClass: null,
};

/** What the service reads of a Glance image to deploy it. */
export interface BaremetalImage {
  id: string; status: string; disk_format: string | null; checksum: string | null; os_hash_algo: string | null; os_hash_value: string | null;
}
export interface BaremetalImages { getImage(id: string): Promise<BaremetalImage | undefined> }

/**
 * The provisioning network's ports (a Neutron port per PXE NIC with the PXE
 * extra_dhcp_opts pointing at the conductor, bound to the conductor's host,
 * whose network data plane then serves its DHCP): the network service's
 * in-process baremetalPorts (src/network/baremetal-ports.ts), wired in
 * src/server; without one, operations carry `provisioning: null`.
 */
export interface ProvisioningPorts {
  /** A port on `network` (name or id) with `mac` and these DHCP options, bound to `host` (the conductor's), for `operation` (its id); its id and the network's. */
  create(o: { network: string; mac: string; nodeUuid: string; operation: string; dhcpOptions: Array<{ opt_name: string; opt_value: string; ip_version?: number }>; host?: string }): Promise<{ portId: string; networkId: string }>;
  /** Removes the port `operation` opened; one it adopted (a server's) only loses what the operation gave it; one another operation holds now stays. */
  remove(portId: string, operation: string): Promise<void>;
}

/** A node's provision or power state changed (compute's driver listens, as Nova's ironic driver polls). */
export interface NodeEvent {
  node: string; instance_uuid: string | null; provision_state: string; target_provision_state: string | null;
  power_state: string | null; last_error: string | null;
}

export interface BmContext {
  db: Db;
  log: Logger;
  config: BaremetalConfig;
  /** Wakes a conductor's watch. */
  notify(host: string | null): void;
  /** Tells listeners of a node's state change. */
  emit(e: NodeEvent): void;
  /** Publishes a node's change to the resource event stream (type `baremetal_node`); absent: no stream. */
  publish?: (c: ResourceChange) => void;
  images?: BaremetalImages;
  ports?: ProvisioningPorts;
}
