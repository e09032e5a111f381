// The network service (Neutron v2.0) under /network: its route table, policy
// and error envelope, and the resource kinds the agents make real (kinds.ts).
// Routers and floating IPs reference ports and subnets by id and take their
// addresses through ipam.ts (their ports are `network:router_*` and
// `network:floatingip` ports).
import type { Logger } from 'pino';
import type { Db } from '../db/database.ts';
import type { Service } from '../http/service.ts';
import type { ResourceKind } from '../fleet/kinds.ts';
import { DEFAULT_NETWORK_CONFIG, type NetworkConfig, type NetworkContext } from './context.ts';
import { renderNeutronError } from './errors.ts';
import { discoveryRoutes, EXTENSIONS } from './extensions.ts';
import { networkKinds, type UpHosts, type HostAddresses } from './kinds.ts';
import { serverNetworking, type ServerNetworking } from './server-ports.ts';
import { baremetalPorts, type BaremetalPorts } from './baremetal-ports.ts';
import { networkDef, networkRoutes } from './networks.ts';
import { networkRules } from './policy.ts';
import { quotaRoutes } from './quotas.ts';
import { rbacRoutes } from './rbac.ts';
import { ipAvailabilityRoutes } from './ip-availability.ts';
import { Resources } from './resource.ts';
import { subnetDef, subnetRoutes } from './subnets.ts';
import { subnetPoolDef, subnetPoolRoutes, subnetPools } from './subnetpools.ts';
import { portDef, portRoutes } from './ports.ts';
import { routerDef, routerRoutes } from './routers.ts';
import { floatingIpDef, floatingIpRoutes } from './floating-ips.ts';
import { portForwardingRoutes } from './port-forwardings.ts';
import { autoTopology } from './auto-topology.ts';
import { addressGroupDef, groupDef, ruleDef, securityGroupRoutes } from './security-groups.ts';

export type { NetworkConfig } from './context.ts';
/** Compute's way to its servers' ports (the only in-process interface of the network service besides its kinds). */
export type { BaremetalBinding, BoundVifType, RequestedNetworks, ServerAddress, ServerNetworking } from './server-ports.ts';
/** What the config drive and the metadata service read of a server's ports (network_data.json, the port holding an address). */
export { serverMetadataNetworking, type ServerMetadataNetworking, type ServerPortInterface } from './server-ports.ts';
export type { NetworkData } from './metadata-network-data.ts';

export function createNetworkService(o: {
  db: Db; log: Logger; config?: Partial<NetworkConfig>;
  /** Where the network's resource kinds go (the agents make them real) and where hosts' VXLAN endpoints are found. */
  fleet?: { registerKind(kind: ResourceKind): void; hostAddresses: HostAddresses; upHosts: UpHosts };
}): { service: Service; servers: ServerNetworking; baremetalPorts: BaremetalPorts } {
  const ctx: NetworkContext = { db: o.db, log: o.log, config: { ...DEFAULT_NETWORK_CONFIG, ...o.config } };
  const networks = new Resources(ctx, networkDef(ctx));
  const subnets = new Resources(ctx, subnetDef(ctx));
  const pools = new Resources(ctx, subnetPoolDef(ctx));
  const groups = new Resources(ctx, groupDef(ctx));
  const rules = new Resources(ctx, ruleDef());
  const addressGroups = new Resources(ctx, addressGroupDef(ctx));
  const ports = new Resources(ctx, portDef(ctx));
  const routers = new Resources(ctx, routerDef(ctx));
  const fips = new Resources(ctx, floatingIpDef(ctx));
  if (o.fleet) for (const k of networkKinds({ db: o.db, log: o.log, hostAddresses: o.fleet.hostAddresses, upHosts: o.fleet.upHosts })) o.fleet.registerKind(k);
  const routes = [
    ...discoveryRoutes(EXTENSIONS),
    ...networkRoutes(ctx, networks),
    ...subnetRoutes(ctx, subnets, networks, subnetPools(ctx, pools)),
    ...subnetPoolRoutes(ctx, pools),
    ...portRoutes(ctx, ports, networks, groups),
    ...securityGroupRoutes(ctx, groups, rules, addressGroups),
    ...routerRoutes(ctx, routers, networks, ports, subnets),
    ...floatingIpRoutes(ctx, fips, networks, ports),
    ...portForwardingRoutes(ctx, fips, ports),
    ...quotaRoutes(ctx),
    ...rbacRoutes(ctx, networks),
    ...ipAvailabilityRoutes(ctx),
  ];
  const auto = autoTopology(ctx, routes);
  routes.push(...auto.routes);
  return {
    service: { name: 'network', prefix: '/network', routes, rules: networkRules, renderError: renderNeutronError },
    servers: serverNetworking(ctx, auto.topology),
    baremetalPorts: baremetalPorts(ctx),
  };
}
