// The reconciler of `baremetal_node` resources over the conductor
// (conductor.ts): each converge reports NodeObserved for the spec's version,
// with the error of a failed operation or a BMC that did not answer. A node
// no longer desired here is forgotten (its state removed; the machine is left
// as it is: another conductor may hold it now).
import { BAREMETAL_NODE_KIND, type NodeSpec } from '../../../baremetal/protocol.ts';
import type { Reconciler, ReconcilerFactory } from '../../reconciler.ts';
import { BaremetalConductor } from './conductor.ts';

export const baremetalReconciler: ReconcilerFactory = (drivers, ctx): Reconciler => {
  const conductor = drivers.find((d): d is BaremetalConductor => d instanceof BaremetalConductor);
  if (!conductor) throw new Error(`no conductor serves ${BAREMETAL_NODE_KIND}`);
  if (ctx.requeue) conductor.requeue = ctx.requeue;
  return {
    kind: BAREMETAL_NODE_KIND,
    async reconcile(id, desired) {
      if (!desired) {
        await conductor.forget(id);
        return;
      }
      const { observed, error } = await conductor.converge(id, desired.spec as NodeSpec);
      ctx.report({ kind: BAREMETAL_NODE_KIND, id, version: desired.version, observed, ...(error ? { error } : {}) });
    },
    local: () => conductor.localNodes(),
  };
};

export const baremetalReconcilers = { [BAREMETAL_NODE_KIND]: baremetalReconciler };
