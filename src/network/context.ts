// What every part of the network service shares: the database, the logger and
// the service's settings.
import type { Logger } from 'pino';
import type { Db } from '../db/database.ts';

export interface NetworkConfig {
  /** The VXLAN VNIs project networks are given, inclusive (Neutron's ml2_type_vxlan vni_ranges). */
  vniRange: [number, number];
  /** The MTU of a VXLAN network: 1500 less the 50 bytes of VXLAN over IPv4. */
  vxlanMtu: number;
  /** The MTU of a flat network. */
  flatMtu: number;
  /** The first three octets of every generated MAC (Neutron's base_mac). */
  macPrefix: string;
  /** The availability zone networks report. */
  availabilityZone: string;
  /** The subnet of an auto-allocated topology when there is no default IPv4 subnet pool. */
  autoAllocatedCidr: string;
}

export const DEFAULT_NETWORK_CONFIG: NetworkConfig = {
  vniRange: [1, 65535], vxlanMtu: 1450, flatMtu: 1500, macPrefix: 'fa:16:3e', availabilityZone: 'nova',
  autoAllocatedCidr: '10.0.0.0/24',
};

export interface NetworkContext {
  db: Db;
  log: Logger;
  config: NetworkConfig;
}
