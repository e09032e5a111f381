// The server's lifecycle state machine: what an agent's report about a server
// does to the server's row (Nova's compute manager and power-state sync). Pure:
// it reads the row and the report and returns the transition; the server kind
// (server-kind.ts) writes it, guarded by the row's version so a report never
// overwrites a newer intent.
import { PowerState } from '../schema.ts';
import { parseJsonList } from '../../common/json.ts';
import type { ResourceError } from '../../fleet/protocol.ts';
import type { ServerObserved } from './protocol.ts';
import { NO_VALID_HOST } from './scheduler.ts';

import type { ServerRow } from '../schema.ts';
export type { ServerRow };

export interface ServerReportIn {
  version: number;
  observed: ServerObserved;
  error?: ResourceError;
}

/** The row's fields a report may set. */
export type ServerUpdate = Partial<Pick<ServerRow, 'vm_state' | 'task_state' | 'power_state' | 'host' | 'failed_hosts' | 'fault' | 'desired_power'
  | 'launched_at' | 'version' | 'updated_at'>>;

export type Transition =
  /** Nothing to write. */
  | { kind: 'none' }
  /** The host is clean of a server being deleted: soft-delete the row, release its claims and group membership. */
  | { kind: 'deleted'; notify: true; kick: false }
  /**
   * Write `set` (only if the row still has the version read); `release` frees
   * the host's claim (a failed build); `notify` wakes the host's watch (the
   * version moved); `kick` wakes the scheduler (the server waits for a host).
   */
  | {
    kind: 'update'; set: ServerUpdate; release: boolean; notify: boolean; kick: boolean; buildFailed?: { rescheduled: boolean; message: string };
    /** The status the server's open resize migration takes with this write (finished, reverted, error). */
    migration?: 'finished' | 'reverted' | 'error';
  };

/** Task states an agent's report ends (the agent did the work they wait for). */
export const AGENT_TASKS: ReadonlySet<string> = new Set(['spawning', 'powering-off', 'powering-on', 'rebooting', 'reboot_pending', 'reboot_started',
  'rebooting_hard', 'reboot_pending_hard', 'reboot_started_hard', 'pausing', 'unpausing', 'suspending', 'resuming', 'rebuilding',
  'rebuild_block_device_mapping', 'rebuild_spawning', 'unshelving', 'resize_reverting', 'unrescuing']);
/**
 * Resize task states: the agent's report of the new flavor applied makes the
 * server VERIFY_RESIZE (vm_state resized). Not resize_migrating: a cold
 * migration's copy of the disk off the source, which the copy's end (the
 * snapshot request's answer) ends, not a report of the source's.
 */
export const RESIZE_TASKS: ReadonlySet<string> = new Set(['resize_prep', 'resize_migrated', 'resize_finish']);
/**
 * vm_states a report does not change while no task runs: the API's (a resize
 * waiting for confirmation, a shelved server stopped on its host, a rescued one).
 */
const HELD_STATES: ReadonlySet<string> = new Set(['resized', 'shelved', 'shelved_offloaded', 'rescued']);
/** Task states of a snapshot: they end with the snapshot request's answer, not with a report. */
export const SNAPSHOT_TASKS: ReadonlySet<string> = new Set(['image_snapshot', 'image_snapshot_pending', 'image_pending_upload', 'image_uploading']);

const NONE: Transition = { kind: 'none' };

/**
 * Turns one report from `hostname` (which holds the row) into a transition.
 * `maxAttempts` is the scheduler's limit of hosts tried per build; `now` the
 * time stamp written.
 */
export function applyReport(row: ServerRow, r: ServerReportIn, hostname: string, o: { maxAttempts: number; now: string }): Transition {
  const { now } = o;
  const same = row.version === r.version;
  if (r.observed.state === 'deleted') {
    return row.task_state === 'deleting' ? { kind: 'deleted', notify: true, kick: false } : NONE;
  }
  if (r.error && row.vm_state === 'building' && row.task_state !== 'deleting') {
    // a build that failed on this host (the agent rolled it back): try another host, unless retrying cannot help
    if (!same) return NONE;
    const failed = [...new Set([...parseJsonList(row.failed_hosts), hostname])];
    const message = r.error.message || 'build failed';
    const retryable = r.error.class === 'transient';
    const exhausted = !retryable || row.schedule_attempts >= o.maxAttempts;
    const base = { host: null, power_state: PowerState.NOSTATE, failed_hosts: JSON.stringify(failed), version: row.version + 1, updated_at: now };
    if (!exhausted) {
      return { kind: 'update', set: { ...base, task_state: 'scheduling' }, release: true, notify: true, kick: true, buildFailed: { rescheduled: true, message } };
    }
    const fault = retryable
      ? { code: 500, message: `${NO_VALID_HOST.split('.')[0]}. Exceeded max scheduling attempts ${o.maxAttempts} for instance ${row.id}. Last exception: ${message}` }
      : { code: r.error.class === 'user' ? 400 : 500, message: `Build of instance ${row.id} aborted: ${message}` };
    return {
      kind: 'update',
      set: { ...base, vm_state: 'error', task_state: null, fault: JSON.stringify({ ...fault, details: message, created: now }) },
      release: true, notify: true, kick: false, buildFailed: { rescheduled: false, message },
    };
  }
  const set: ServerUpdate = {};
  if (row.power_state !== r.observed.power_state) set.power_state = r.observed.power_state;
  let bump = false;
  let migration: 'finished' | 'reverted' | 'error' | undefined;
  const state = r.observed.state;
  if (same && !(row.task_state && SNAPSHOT_TASKS.has(row.task_state)) && row.task_state !== 'deleting') {
    const resizing = row.task_state !== null && RESIZE_TASKS.has(row.task_state);
    const reverting = row.task_state === 'resize_reverting';
    if (row.task_state && (AGENT_TASKS.has(row.task_state) || resizing || row.task_state === 'rescuing')) set.task_state = null;
    if (r.error) {
      set.vm_state = 'error';
      set.fault = JSON.stringify({ code: r.error.class === 'user' ? 400 : 500, message: r.error.message || 'error', details: r.error.message, created: now });
      if (resizing || reverting) migration = 'error';
    } else if (state === 'absent') {
      // nothing on the host and no error: nothing to say about the server's state
      if (resizing || reverting) delete set.task_state;
    } else if (resizing) {
      // the host runs the server on its new flavor: VERIFY_RESIZE until the user confirms or reverts
      set.vm_state = 'resized';
      migration = 'finished';
    } else if (row.task_state === 'resize_migrating' || row.task_state === 'migrating') {
      // the source stops the server for the copy of its disk, or a live migration pauses it at its hand-over: the power state only, the vm_state is the move's
    } else if (row.task_state === 'rescuing') {
      // the host runs the server from its rescue image (spec.rescue): RESCUE until the user unrescues it
      if (state === 'active') set.vm_state = 'rescued';
      else delete set.task_state;
    } else if (row.task_state === null && HELD_STATES.has(row.vm_state)) {
      // a resized or shelved server's vm_state is the API's to change
    } else if (row.task_state === null && row.vm_state !== 'building' && state === 'stopped' && row.desired_power !== 'stopped' && row.vm_state !== 'error') {
      // the server stopped by itself: Nova's power sync stops it (SHUTOFF), it does not restart it
      set.vm_state = 'stopped';
      set.desired_power = 'stopped';
      bump = true;
    } else if (row.vm_state !== 'error' || (row.task_state !== null && AGENT_TASKS.has(row.task_state))) {
      set.vm_state = state;
      if (reverting) migration = 'reverted';
    }
    if (!row.launched_at && row.vm_state === 'building' && !r.error && state !== 'absent') set.launched_at = now;
  }
  for (const k of Object.keys(set) as Array<keyof ServerUpdate>) if (row[k] === set[k]) delete set[k];
  if (!Object.keys(set).length) return NONE;
  set.updated_at = now;
  if (bump) set.version = row.version + 1;
  return { kind: 'update', set, release: false, notify: bump, kick: false, ...(migration ? { migration } : {}) };
}
