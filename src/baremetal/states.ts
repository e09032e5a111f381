// The provision state machine of a node, as Ironic's (ironic/common/states.py
// and state_machine.py): states, the events that move them, the API's verbs
// (PUT /v1/nodes/{id}/states/provision `target`) and the conductor operation
// each transition starts. Pure: no database, no clock. The API asks
// `verbEvent` + `next` whether a verb may act; the conductor's reports move a
// node on with `onOperation`.
import type { NodeOperation } from './protocol.ts';

export const S = {
  enroll: 'enroll', verifying: 'verifying', manageable: 'manageable', available: 'available', active: 'active',
  deploying: 'deploying', deployWait: 'wait call-back', deployFail: 'deploy failed', deployHold: 'deploy hold',
  deleting: 'deleting', cleaning: 'cleaning', cleanWait: 'clean wait', cleanFail: 'clean failed', cleanHold: 'clean hold',
  error: 'error', inspecting: 'inspecting', inspectWait: 'inspect wait', inspectFail: 'inspect failed',
  adopting: 'adopting', adoptFail: 'adopt failed', rescue: 'rescue', rescuing: 'rescuing', rescueWait: 'rescue wait',
  rescueFail: 'rescue failed', unrescuing: 'unrescuing', unrescueFail: 'unrescue failed',
} as const;
export type ProvisionState = (typeof S)[keyof typeof S];

/** The API's verbs and the state-machine event each is (ironic VERBS). */
export const VERBS: Record<string, string> = {
  active: 'deploy', deploy: 'deploy', deleted: 'delete', undeploy: 'delete', manage: 'manage', provide: 'provide',
  inspect: 'inspect', abort: 'abort', clean: 'clean', adopt: 'adopt', rescue: 'rescue', unrescue: 'unrescue', rebuild: 'rebuild',
};

/** The microversion from which a verb is accepted (earlier: 406, as Ironic). */
export const VERB_SINCE: Record<string, string> = {
  manage: '1.4', provide: '1.4', inspect: '1.6', abort: '1.13', clean: '1.15', adopt: '1.17', rescue: '1.38', unrescue: '1.38',
  deploy: '1.73', undeploy: '1.73',
};

const T: Array<[ProvisionState, string, ProvisionState]> = [
  [S.available, 'deploy', S.deploying], [S.deploying, 'fail', S.deployFail], [S.deployFail, 'rebuild', S.deploying],
  [S.deployFail, 'deploy', S.deploying], [S.deploying, 'wait', S.deployWait], [S.deployWait, 'resume', S.deploying],
  [S.deployWait, 'fail', S.deployFail], [S.deployWait, 'abort', S.deployFail], [S.deploying, 'done', S.active],
  [S.active, 'rebuild', S.deploying], [S.active, 'delete', S.deleting], [S.deployWait, 'delete', S.deleting],
  [S.deployFail, 'delete', S.deleting], [S.deleting, 'fail', S.error], [S.deleting, 'clean', S.cleaning],
  [S.cleaning, 'done', S.available], [S.cleaning, 'fail', S.cleanFail], [S.cleanWait, 'fail', S.cleanFail],
  [S.cleanWait, 'abort', S.cleanFail], [S.cleaning, 'wait', S.cleanWait], [S.cleanWait, 'resume', S.cleaning],
  [S.cleanFail, 'manage', S.manageable], [S.manageable, 'provide', S.cleaning], [S.manageable, 'clean', S.cleaning],
  [S.cleaning, 'manage', S.manageable], [S.available, 'manage', S.manageable], [S.error, 'rebuild', S.deploying],
  [S.error, 'delete', S.deleting], [S.manageable, 'inspect', S.inspecting], [S.inspecting, 'done', S.manageable],
  [S.inspecting, 'fail', S.inspectFail], [S.inspecting, 'wait', S.inspectWait], [S.inspectWait, 'done', S.manageable],
  [S.inspectWait, 'fail', S.inspectFail], [S.inspectWait, 'abort', S.inspectFail], [S.inspectWait, 'resume', S.inspecting],
  [S.inspectFail, 'manage', S.manageable], [S.inspectFail, 'inspect', S.inspecting],
  [S.active, 'rescue', S.rescuing], [S.rescuing, 'done', S.rescue], [S.rescuing, 'wait', S.rescueWait],
  [S.rescueWait, 'resume', S.rescuing], [S.rescue, 'rescue', S.rescuing], [S.rescue, 'delete', S.deleting],
  [S.rescueWait, 'fail', S.rescueFail], [S.rescuing, 'fail', S.rescueFail], [S.rescueWait, 'abort', S.rescueFail],
  [S.rescueFail, 'rescue', S.rescuing], [S.rescueFail, 'unrescue', S.unrescuing], [S.rescueFail, 'delete', S.deleting],
  [S.rescueWait, 'delete', S.deleting], [S.rescue, 'unrescue', S.unrescuing], [S.unrescuing, 'done', S.active],
  [S.unrescuing, 'fail', S.unrescueFail], [S.unrescueFail, 'rescue', S.rescuing], [S.unrescueFail, 'unrescue', S.unrescuing],
  [S.unrescueFail, 'delete', S.deleting],
  [S.enroll, 'manage', S.verifying], [S.verifying, 'done', S.manageable], [S.verifying, 'fail', S.enroll],
  [S.manageable, 'adopt', S.adopting], [S.adopting, 'done', S.active], [S.adopting, 'fail', S.adoptFail],
  [S.adoptFail, 'adopt', S.adopting], [S.adoptFail, 'manage', S.manageable],
];
const TABLE = new Map<string, ProvisionState>(T.map(([from, ev, to]) => [`${from}\u0000${ev}`, to]));

/** The state `event` moves `from` to; null when the event is not actionable there. */
export function next(from: string, event: string): ProvisionState | null {
  return TABLE.get(`${from}\u0000${event}`) ?? null;
}

/** Ironic's target_provision_state while in a transitional state (the stable state it heads to). */
export function targetOf(state: string): ProvisionState | null {
  switch (state) {
    case S.deploying: case S.deployWait: case S.adopting: case S.unrescuing: return S.active;
    case S.deleting: return S.available;
    case S.cleaning: case S.cleanWait: return S.available;
    case S.inspecting: case S.inspectWait: case S.verifying: return S.manageable;
    case S.rescuing: case S.rescueWait: return S.rescue;
    default: return null;
  }
}

/** States whose operation waits on the ramdisk (the conductor reports a boot phase). */
const WAIT_OF: Partial<Record<string, ProvisionState>> = {
  [S.deploying]: S.deployWait, [S.cleaning]: S.cleanWait, [S.inspecting]: S.inspectWait, [S.rescuing]: S.rescueWait,
};
const ACTIVE_OF: Partial<Record<string, ProvisionState>> = Object.fromEntries(Object.entries(WAIT_OF).map(([a, w]) => [w, a]));

/** Failure states (Ironic's FAILURE_STATES). */
export const FAILURE_STATES: ReadonlySet<string> = new Set([S.deployFail, S.cleanFail, S.inspectFail, S.rescueFail, S.unrescueFail, S.adoptFail]);
/** States the node may be deleted in. */
export const DELETE_ALLOWED: ReadonlySet<string> = new Set([S.manageable, S.enroll, S.adoptFail, S.available]);
/** Transitional states in which a node may still be updated (Ironic's UPDATE_ALLOWED_STATES). */
export const UPDATE_ALLOWED: ReadonlySet<string> = new Set([S.deployFail, S.inspecting, S.inspectFail, S.inspectWait, S.cleanFail, S.error, S.verifying, S.adoptFail, S.rescueFail, S.unrescueFail]);
/** States with an operation the conductor is carrying out (the node is "locked" by it outside the wait states). */
export const BUSY: ReadonlySet<string> = new Set([S.verifying, S.deploying, S.cleaning, S.deleting, S.inspecting, S.rescuing, S.unrescuing, S.adopting]);
/** Wait states: the conductor waits on the ramdisk; abort is accepted there. */
export const WAITING: ReadonlySet<string> = new Set(Object.values(WAIT_OF) as string[]);

/** The kind of work a state asks of the conductor (null: none; the node is at rest). */
export type OperationType = NodeOperation['type'];
export function operationFor(state: string): OperationType | null {
  switch (state) {
    case S.verifying: return 'verify';
    case S.inspecting: case S.inspectWait: return 'inspect';
    case S.cleaning: case S.cleanWait: return 'clean';
    case S.deploying: case S.deployWait: return 'deploy';
    case S.deleting: return 'tear_down';
    case S.rescuing: case S.rescueWait: return 'rescue';
    case S.unrescuing: return 'unrescue';
    default: return null;
  }
}

/** Where a conductor's report of the running operation moves the node, and what to record. */
export interface Step {
  state: ProvisionState;
  /** The event applied (for node history). */
  event: string;
  /** A failure's last_error. */
  error?: string;
}

const BOOT_PHASES = new Set(['pxe', 'vmedia', 'ramdisk']);

/**
 * A report of the operation in progress: running in a boot phase puts the
 * node in its wait state (Ironic's `wait`), any other running phase back in
 * its active state (`resume`); succeeded is `done` (deleting goes on to
 * cleaning, unless automated cleaning is off: then available); failed is
 * `fail` with the message. Null: nothing changes.
 */
export function onOperation(state: string, status: 'running' | 'succeeded' | 'failed', phase: string, message?: string, o: { automatedClean?: boolean } = {}): Step | null {
  const base = ACTIVE_OF[state] ?? state;
  if (status === 'running') {
    if (BOOT_PHASES.has(phase) && WAIT_OF[base] && state !== WAIT_OF[base]) return { state: WAIT_OF[base]!, event: 'wait' };
    if (!BOOT_PHASES.has(phase) && ACTIVE_OF[state]) return { state: ACTIVE_OF[state]!, event: 'resume' };
    return null;
  }
  if (status === 'failed') {
    const to = next(base, 'fail') ?? next(state, 'fail');
    return to ? { state: to, event: 'fail', error: message ?? 'The operation failed.' } : null;
  }
  if (base === S.deleting) return o.automatedClean === false ? { state: S.available, event: 'done' } : { state: S.cleaning, event: 'clean' };
  const to = next(base, 'done');
  return to ? { state: to, event: 'done' } : null;
}
