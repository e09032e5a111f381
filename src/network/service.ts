// The network service (Neutron v2.0) under /network: its route table, policy
// and error envelope. Routers, floating IPs and the data plane come later;
// they reference ports and subnets by id and take addresses through ipam.ts.
import type { Logger } from 'pino';
import type { Db } from '../db/database.ts';
import type { Service } from '../http/service.ts';
import { DEFAULT_NETWORK_CONFIG, type NetworkConfig, type NetworkContext } from './context.ts';
import { renderNeutronError } from './errors.ts';
import { discoveryRoutes, EXTENSIONS } from './extensions.ts';
import { networkDef, networkRoutes } from './networks.ts';
import { networkRules } from './policy.ts';
import { quotaRoutes } from './quotas.ts';
import { rbacRoutes } from './rbac.ts';
import { ipAvailabilityRoutes } from './ip-availability.ts';
import { Resources } from './resource.ts';
import { subnetDef, subnetRoutes } from './subnets.ts';
import { subnetPoolDef, subnetPoolRoutes, subnetPools } from './subnetpools.ts';
import { portDef, portRoutes } from './ports.ts';
import { addressGroupDef, groupDef, ruleDef, securityGroupRoutes } from './security-groups.ts';

export type { NetworkConfig } from './context.ts';

export function createNetworkService(o: { db: Db; log: Logger; config?: Partial<NetworkConfig> }): { service: Service } {
  const ctx: NetworkContext = { db: o.db, log: o.log, config: { ...DEFAULT_NETWORK_CONFIG, ...o.config } };
  const networks = new Resources(ctx, networkDef(ctx));
  const subnets = new Resources(ctx, subnetDef(ctx));
  const pools = new Resources(ctx, subnetPoolDef(ctx));
  const groups = new Resources(ctx, groupDef(ctx));
  const rules = new Resources(ctx, ruleDef());
  const addressGroups = new Resources(ctx, addressGroupDef(ctx));
  const ports = new Resources(ctx, portDef(ctx));
  const routes = [
    ...discoveryRoutes(EXTENSIONS),
    ...networkRoutes(ctx, networks),
    ...subnetRoutes(ctx, subnets, networks, subnetPools(ctx, pools)),
    ...subnetPoolRoutes(ctx, pools),
    ...portRoutes(ctx, ports, networks, groups),
    ...securityGroupRoutes(ctx, groups, rules, addressGroups),
    ...quotaRoutes(ctx),
    ...rbacRoutes(ctx, networks),
    ...ipAvailabilityRoutes(ctx),
  ];
  return { service: { name: 'network', prefix: '/network', routes, rules: networkRules, renderError: renderNeutronError } };
}
