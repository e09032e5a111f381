// Nova's server states: vm_state and task_state, and the API status they map to.
import { conflict } from '../../common/errors.ts';

export const VmState = {
  ACTIVE: 'active', BUILDING: 'building', PAUSED: 'paused', SUSPENDED: 'suspended', STOPPED: 'stopped', RESCUED: 'rescued',
  RESIZED: 'resized', SOFT_DELETED: 'soft-delete', DELETED: 'deleted', ERROR: 'error', SHELVED: 'shelved', SHELVED_OFFLOADED: 'shelved_offloaded',
} as const;

export const TaskState = {
  SCHEDULING: 'scheduling', BLOCK_DEVICE_MAPPING: 'block_device_mapping', SPAWNING: 'spawning', POWERING_OFF: 'powering-off', POWERING_ON: 'powering-on', REBOOTING: 'rebooting',
  REBOOT_PENDING: 'reboot_pending', REBOOT_STARTED: 'reboot_started', REBOOTING_HARD: 'rebooting_hard', REBOOT_PENDING_HARD: 'reboot_pending_hard',
  REBOOT_STARTED_HARD: 'reboot_started_hard', PAUSING: 'pausing', UNPAUSING: 'unpausing', SUSPENDING: 'suspending', RESUMING: 'resuming',
  REBUILDING: 'rebuilding', REBUILD_BLOCK_DEVICE_MAPPING: 'rebuild_block_device_mapping', REBUILD_SPAWNING: 'rebuild_spawning',
  IMAGE_SNAPSHOT: 'image_snapshot', IMAGE_SNAPSHOT_PENDING: 'image_snapshot_pending', IMAGE_PENDING_UPLOAD: 'image_pending_upload',
  IMAGE_UPLOADING: 'image_uploading', IMAGE_BACKUP: 'image_backup', DELETING: 'deleting', UPDATING_PASSWORD: 'updating_password', MIGRATING: 'migrating',
  RESIZE_PREP: 'resize_prep', RESIZE_MIGRATING: 'resize_migrating', RESIZE_MIGRATED: 'resize_migrated', RESIZE_FINISH: 'resize_finish',
  RESIZE_REVERTING: 'resize_reverting', SHELVING: 'shelving', SHELVING_IMAGE_PENDING_UPLOAD: 'shelving_image_pending_upload',
  SHELVING_IMAGE_UPLOADING: 'shelving_image_uploading', SHELVING_OFFLOADING: 'shelving_offloading', UNSHELVING: 'unshelving',
  RESCUING: 'rescuing', UNRESCUING: 'unrescuing',
} as const;

const T = TaskState;
const STATE_MAP: Record<string, Record<string, string>> = {
  active: {
    default: 'ACTIVE', [T.REBOOTING]: 'REBOOT', [T.REBOOT_PENDING]: 'REBOOT', [T.REBOOT_STARTED]: 'REBOOT', [T.REBOOTING_HARD]: 'HARD_REBOOT',
    [T.REBOOT_PENDING_HARD]: 'HARD_REBOOT', [T.REBOOT_STARTED_HARD]: 'HARD_REBOOT', [T.UPDATING_PASSWORD]: 'PASSWORD', [T.REBUILDING]: 'REBUILD',
    [T.REBUILD_BLOCK_DEVICE_MAPPING]: 'REBUILD', [T.REBUILD_SPAWNING]: 'REBUILD', [T.MIGRATING]: 'MIGRATING', [T.RESIZE_PREP]: 'RESIZE',
    [T.RESIZE_MIGRATING]: 'RESIZE', [T.RESIZE_MIGRATED]: 'RESIZE', [T.RESIZE_FINISH]: 'RESIZE',
  },
  building: { default: 'BUILD' },
  stopped: {
    default: 'SHUTOFF', [T.RESIZE_PREP]: 'RESIZE', [T.RESIZE_MIGRATING]: 'RESIZE', [T.RESIZE_MIGRATED]: 'RESIZE', [T.RESIZE_FINISH]: 'RESIZE',
    [T.REBUILDING]: 'REBUILD', [T.REBUILD_BLOCK_DEVICE_MAPPING]: 'REBUILD', [T.REBUILD_SPAWNING]: 'REBUILD',
  },
  resized: { default: 'VERIFY_RESIZE', [T.RESIZE_REVERTING]: 'REVERT_RESIZE' },
  paused: { default: 'PAUSED', [T.MIGRATING]: 'MIGRATING' },
  suspended: { default: 'SUSPENDED' },
  rescued: { default: 'RESCUE' },
  error: { default: 'ERROR', [T.REBUILDING]: 'REBUILD', [T.REBUILD_BLOCK_DEVICE_MAPPING]: 'REBUILD', [T.REBUILD_SPAWNING]: 'REBUILD' },
  deleted: { default: 'DELETED' },
  'soft-delete': { default: 'SOFT_DELETED' },
  shelved: { default: 'SHELVED' },
  shelved_offloaded: { default: 'SHELVED_OFFLOADED' },
};

/** The API status of a server (Nova's status_from_state). */
export function statusOf(vmState: string, taskState: string | null, deleted = false): string {
  if (deleted) return 'DELETED';
  const m = STATE_MAP[vmState];
  if (!m) return 'UNKNOWN';
  return (taskState !== null && m[taskState]) || m.default!;
}

/** The vm_states and task_states behind a set of statuses (Nova's task_and_vm_state_from_status). */
export function statesOf(statuses: string[]): { vmStates: string[]; taskStates: Array<string | 'default'> } {
  const wanted = new Set(statuses.map((s) => s.toLowerCase()));
  const vm = new Set<string>();
  const task = new Set<string>();
  for (const [state, map] of Object.entries(STATE_MAP)) {
    for (const [t, status] of Object.entries(map)) {
      if (wanted.has(status.toLowerCase())) {
        vm.add(state);
        task.add(t);
      }
    }
  }
  return { vmStates: [...vm].sort(), taskStates: [...task].sort() };
}

export const PROGRESS_STATUSES = new Set(['ACTIVE', 'BUILD', 'REBUILD', 'RESIZE', 'VERIFY_RESIZE', 'MIGRATING']);
export const FAULT_STATUSES = new Set(['ERROR', 'DELETED']);

/** Task states from which a hard reboot may start (Nova's ALLOW_REBOOT). */
export const ALLOW_REBOOT: Array<string | null> = [null, T.REBOOTING, T.REBOOT_PENDING, T.REBOOT_STARTED, T.RESUMING, T.REBOOTING_HARD,
  T.UNPAUSING, T.PAUSING, T.SUSPENDING];

/** Nova's InstanceInvalidState as the API renders it (409). */
export function invalidState(action: string, serverId: string, attr: string, state: string | null) {
  return conflict(`Cannot '${action}' instance ${serverId} while it is in ${attr} ${state === null ? 'None' : state}`);
}

/**
 * Nova's check_instance_state: vm_state in `vmStates` (any when null), task_state
 * in `taskStates` (any when null), and launched at least once when `mustHaveLaunched`.
 */
export function checkState(
  action: string,
  s: { id: string; vm_state: string; task_state: string | null; launched_at: string | null },
  vmStates: string[] | null,
  taskStates: Array<string | null> | null = [null],
  mustHaveLaunched = true,
): void {
  if (vmStates && !vmStates.includes(s.vm_state)) throw invalidState(action, s.id, 'vm_state', s.vm_state);
  if (taskStates && !taskStates.includes(s.task_state)) throw invalidState(action, s.id, 'task_state', s.task_state);
  if (mustHaveLaunched && !s.launched_at) throw invalidState(action, s.id, 'launched_at', null);
}
