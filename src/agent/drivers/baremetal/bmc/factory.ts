// The BMC client for a node's BmcAccess: ipmitool for `ipmi`, Stratus's
// Redfish client for `redfish`. The conductor makes one per node from its spec.
import type { BmcAccess } from '../../../../baremetal/protocol.ts';
import type { BmcClient, BmcFactory } from '../bmc.ts';
import { IpmiBmc } from './ipmi.ts';
import { RedfishBmc } from './redfish.ts';

export const bmcClient: BmcFactory = (access: BmcAccess): BmcClient => {
  switch (access.type) {
    case 'ipmi': return new IpmiBmc(access);
    case 'redfish': return new RedfishBmc(access);
    default: throw new Error(`no BMC client for hardware type ${String((access as BmcAccess).type)}`);
  }
};
