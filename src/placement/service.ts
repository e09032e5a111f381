// The placement service (OpenStack Placement) under /placement: its route
// table and policy, and the in-process interface the compute scheduler and
// engine use (never HTTP to ourselves).
//
// For other services (each takes the caller's transaction where it writes):
//   syncComputeProviders(db, hosts)       each compute host as a provider with its
//                                         VCPU/MEMORY_MB/DISK_GB inventories and status traits
//   providerStates(db, uuids?)            inventories, usage, traits, aggregates of providers
//   firstUnfit(state, resources)          the first class a provider cannot give, or null
//   claimOnProvider(tx, rp, items, ok)    claims for several consumers on one provider, checked
//                                         against its inventories under the provider's lock
//   releaseConsumer(tx, consumer)         removes what a consumer (a server) holds
//   moveConsumer(tx, from, to)            hands a consumer's allocations to another (a resize's migration)
//   removeProvider(tx, uuid)              a provider and everything on it (a host deleted)
//   usageOf(db, uuids)                    used amounts per provider and class
//   syncBaremetalProvider(db, node)       a bare-metal node as a provider (one unit of CUSTOM_<class>, its traits)
import type { Db } from '../db/database.ts';
import type { Service } from '../http/service.ts';
import { renderPlacementError } from './errors.ts';
import { gate, PREFIX, setup } from './http.ts';
import { placementRules } from './policy.ts';
import { allocationRoutes } from './routes/allocations.ts';
import { inventoryRoutes } from './routes/inventories.ts';
import { nameRoutes } from './routes/names.ts';
import { providerRoutes } from './routes/providers.ts';

export { syncComputeProviders, type ComputeHost } from './compute-hosts.ts';
export { customClassOf, removeBaremetalProvider, syncBaremetalProvider, type BaremetalNodeProvider } from './baremetal-nodes.ts';
export {
  capacityOf, claimOnProvider, firstUnfit, moveConsumer, providerStates, releaseConsumer, removeProvider, usageOf,
  type ClaimItem, type ProviderState, type Resources,
} from './store.ts';

export function createPlacement(db: Db): { service: Service } {
  const routes = [...allocationRoutes(db), ...providerRoutes(db), ...inventoryRoutes(db), ...nameRoutes(db)];
  return { service: { name: 'placement', prefix: PREFIX, routes, rules: placementRules, renderError: renderPlacementError, gate, setup } };
}
