// The reconcilers of the network kinds (`network`, `port`, `security_group`,
// `router`) over the network driver, one per kind as the agent runs them (one
// work queue each): the agent (main.ts) runs `{ ...RECONCILERS,
// ...networkReconcilers }` with the driver in its driver list. A converge
// reports the kind's observed state; a failure is reported with its class
// and, when transient (a port or router before its network), thrown so the queue retries with backoff. Every pass converges (nothing
// changes when nothing drifted), so the agent's periodic pass (every sixth sweep) repairs drift.
import type { Resource } from '../../../fleet/protocol.ts';
import { NETWORK_KIND, PORT_KIND, ROUTER_KIND, SECURITY_GROUP_KIND, type NetworkSpec, type PortSpec, type RouterSpec, type SecurityGroupSpec } from '../../../network/protocol.ts';
import { ErrorClass } from '../../../fleet/protocol.ts';
import { toResourceError } from '../../errors.ts';
import type { Reconciler, ReconcilerContext, ReconcilerFactory } from '../../reconciler.ts';
import type { Driver } from '../driver.ts';
import { NetworkDriver, type NetworkKind } from './driver.ts';

function reconcilerOf(kind: NetworkKind): ReconcilerFactory {
  return (drivers: Driver[], ctx: ReconcilerContext): Reconciler => {
    const driver = drivers.find((d): d is NetworkDriver => d instanceof NetworkDriver);
    if (!driver) throw new Error(`no network driver serves ${kind}`);
    const gone = kind === PORT_KIND ? { state: 'deleted', device: null } : { state: 'deleted' };
    return {
      kind,
      // a re-check reads the kernel (links, namespaces, the nft ruleset) with processes per resource:
      // at every sweep, a thousand ports' re-checks alone would keep a host's CPUs busy; drift is
      // repaired at every sixth sweep (a minute at the default ten seconds), changes at once as always
      recheckEvery: 6,
      local: () => driver.list(kind),
      async reconcile(id: string, res: Resource | undefined) {
        if (!res) {
          await driver.destroy(kind, id);
          return;
        }
        const spec = res.spec as NetworkSpec | PortSpec | SecurityGroupSpec | RouterSpec;
        try {
          const r = await driver.converge(kind, id, spec);
          ctx.report({ kind, id, version: res.version, observed: spec.deleted ? gone : (r.observed as unknown as Record<string, unknown>) });
        } catch (err) {
          const error = toResourceError(err);
          ctx.log.warn({ kind, id, err: error.message, class: error.class, code: error.code }, 'converge failed');
          ctx.report({ kind, id, version: res.version, observed: kind === PORT_KIND ? { state: 'down', device: null } : { state: 'down' }, error });
          if (error.class === ErrorClass.transient) throw err;
        }
      },
    };
  };
}

export const networkReconcilers: Readonly<Record<string, ReconcilerFactory>> = {
  [NETWORK_KIND]: reconcilerOf(NETWORK_KIND),
  [PORT_KIND]: reconcilerOf(PORT_KIND),
  [SECURITY_GROUP_KIND]: reconcilerOf(SECURITY_GROUP_KIND),
  [ROUTER_KIND]: reconcilerOf(ROUTER_KIND),
};
