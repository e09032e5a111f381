// The reconciler of `baremetal_node` resources over the conductor
// (conductor.ts): each converge reports NodeObserved for the spec's version,
// with the error of a failed operation or a BMC that did not answer. A node
// no longer desired here is forgotten (its state removed; the machine is left
// as it is: another conductor may hold it now). It serves the `console`
// request (a bare-metal server's console log): the node's recorded serial
// console (console.ts).
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
    // compute's `console` request of a bare-metal server, about its node: the recorded serial console's tail
    async serve(r) {
      if (r.action !== 'console') throw new Error(`unknown ${BAREMETAL_NODE_KIND} request ${r.action}`);
      const length = typeof r.args.length === 'number' ? r.args.length : undefined;
      return { output: await conductor.consoleOutput(r.resource_id, length) };
    },
  };
};

export const baremetalReconcilers = { [BAREMETAL_NODE_KIND]: baremetalReconciler };
