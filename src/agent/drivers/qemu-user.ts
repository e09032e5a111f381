// The unprivileged user qemu drops to (-runas), shared by the VM driver
// (which creates it) and the network driver (which makes a VM port's tap
// owned by it, so a running qemu can open the tap when the NIC is hot-plugged:
// the owner of a persistent tap is set only when it is made).
import { run } from '../exec.ts';

export const VM_USER = 'stratus-qemu';

let known: Promise<boolean> | null = null;

/** Whether VM_USER exists on this host (asked until it does, then remembered). */
export function vmUserExists(): Promise<boolean> {
  if (!known) {
    const p = run('id', ['-u', VM_USER]).then((r) => r.code === 0, () => false);
    known = p;
    void p.then((ok) => { if (!ok && known === p) known = null; });
  }
  return known;
}
