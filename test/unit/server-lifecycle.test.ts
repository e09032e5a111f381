// The server's lifecycle state machine (src/compute/engine/lifecycle.ts) as a
// table: a row's state × an agent's report -> the transition (fields written,
// whether the host's watch and the scheduler are woken).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyReport, type ServerReportIn, type ServerRow, type Transition } from '../../src/compute/engine/lifecycle.ts';
import type { ServerObserved } from '../../src/compute/engine/protocol.ts';
import type { ResourceError } from '../../src/fleet/protocol.ts';

const NOW = '2026-01-01T00:00:00.000Z';
const ID = '11111111-2222-3333-4444-555555555555';
const HOST = 'host-a';

function row(over: Partial<ServerRow> = {}): ServerRow {
  return {
    id: ID, name: 's', project_id: 'p', user_id: 'u', image_id: 'img', flavor_id: 'f', flavor: '{}', kind: 'container', key_name: null, key_data: null,
    user_data: null, availability_zone: null, hostname: 's', description: null, host: HOST, vm_state: 'active', task_state: null, power_state: 1,
    desired_power: 'running', reboot_seq: 0, reboot_type: null, rebuild_seq: 0, locked: 0, locked_reason: null, config_drive: '', access_ipv4: '',
    access_ipv6: '', fault: null, server_group_id: null, reservation_id: 'r', launch_index: 0, schedule_attempts: 1, failed_hosts: '[]', version: 5,
    launched_at: '2025-12-31T00:00:00.000Z', terminated_at: null, created_at: NOW, updated_at: NOW, deleted_at: null, locked_by: null, trusted_certs: null,
    scheduler_hints: '{}', security_groups: '[]', requested_networks: null, requested_host: null,
    ...over,
  } as ServerRow;
}

const obs = (state: ServerObserved['state'], power_state: number): ServerObserved => ({ state, power_state });
const err = (cls: ResourceError['class'], message = 'boom', code = 'host_failure'): ResourceError => ({ class: cls, code, message });
const rep = (version: number, observed: ServerObserved, error?: ResourceError): ServerReportIn => ({ version, observed, ...(error ? { error } : {}) });

const building = { vm_state: 'building', task_state: 'spawning', power_state: 0, launched_at: null } as const;

interface Case {
  name: string;
  row: Partial<ServerRow>;
  report: ServerReportIn;
  want: Transition;
}

const none: Transition = { kind: 'none' };

const cases: Case[] = [
  {
    name: 'build done: ACTIVE, task cleared, launched',
    row: building, report: rep(5, obs('active', 1)),
    want: { kind: 'update', set: { power_state: 1, task_state: null, vm_state: 'active', launched_at: NOW, updated_at: NOW }, release: false, notify: false, kick: false },
  },
  {
    name: 'build failed, transient, attempts left: back to scheduling on another host, claim released, scheduler kicked',
    row: building, report: rep(5, obs('absent', 0), err('transient', 'disk on fire')),
    want: {
      kind: 'update', set: { host: null, power_state: 0, failed_hosts: JSON.stringify([HOST]), version: 6, updated_at: NOW, task_state: 'scheduling' },
      release: true, notify: true, kick: true, buildFailed: { rescheduled: true, message: 'disk on fire' },
    },
  },
  {
    name: 'build failed, transient, attempts exhausted: ERROR with No valid host',
    row: { ...building, schedule_attempts: 3, failed_hosts: '["host-b","host-c"]' }, report: rep(5, obs('absent', 0), err('transient', 'disk on fire')),
    want: {
      kind: 'update',
      set: {
        host: null, power_state: 0, failed_hosts: JSON.stringify(['host-b', 'host-c', HOST]), version: 6, updated_at: NOW, vm_state: 'error', task_state: null,
        fault: JSON.stringify({ code: 500, message: `No valid host was found. Exceeded max scheduling attempts 3 for instance ${ID}. Last exception: disk on fire`, details: 'disk on fire', created: NOW }),
      },
      release: true, notify: true, kick: false, buildFailed: { rescheduled: false, message: 'disk on fire' },
    },
  },
  {
    name: 'build failed, permanent: ERROR at once (first attempt), no reschedule',
    row: building, report: rep(5, obs('absent', 0), err('permanent', 'image x: bad manifest', 'image_invalid')),
    want: {
      kind: 'update',
      set: {
        host: null, power_state: 0, failed_hosts: JSON.stringify([HOST]), version: 6, updated_at: NOW, vm_state: 'error', task_state: null,
        fault: JSON.stringify({ code: 500, message: `Build of instance ${ID} aborted: image x: bad manifest`, details: 'image x: bad manifest', created: NOW }),
      },
      release: true, notify: true, kick: false, buildFailed: { rescheduled: false, message: 'image x: bad manifest' },
    },
  },
  {
    name: 'build failed, user error: ERROR with a 400 fault, no reschedule',
    row: building, report: rep(5, obs('absent', 0), err('user', 'bad spec', 'spec_invalid')),
    want: {
      kind: 'update',
      set: {
        host: null, power_state: 0, failed_hosts: JSON.stringify([HOST]), version: 6, updated_at: NOW, vm_state: 'error', task_state: null,
        fault: JSON.stringify({ code: 400, message: `Build of instance ${ID} aborted: bad spec`, details: 'bad spec', created: NOW }),
      },
      release: true, notify: true, kick: false, buildFailed: { rescheduled: false, message: 'bad spec' },
    },
  },
  { name: 'build failure of an older version (the server moved on): nothing', row: building, report: rep(4, obs('absent', 0), err('transient')), want: none },
  {
    name: 'delete done: the row is soft-deleted',
    row: { task_state: 'deleting', version: 7 }, report: rep(7, obs('deleted', 0)), want: { kind: 'deleted', notify: true, kick: false },
  },
  { name: '"deleted" for a server not being deleted: nothing', row: {}, report: rep(5, obs('deleted', 0)), want: none },
  {
    name: 'a report while deleting changes the power state only',
    row: { task_state: 'deleting', version: 7 }, report: rep(7, obs('stopped', 4)),
    want: { kind: 'update', set: { power_state: 4, updated_at: NOW }, release: false, notify: false, kick: false },
  },
  {
    name: 'a container that stopped by itself: SHUTOFF, desired power stopped, version bumped (no restart)',
    row: {}, report: rep(5, obs('stopped', 4)),
    want: { kind: 'update', set: { power_state: 4, vm_state: 'stopped', desired_power: 'stopped', updated_at: NOW, version: 6 }, release: false, notify: true, kick: false },
  },
  {
    name: 'stop done: SHUTOFF, task cleared',
    row: { task_state: 'powering-off', desired_power: 'stopped' }, report: rep(5, obs('stopped', 4)),
    want: { kind: 'update', set: { power_state: 4, task_state: null, vm_state: 'stopped', updated_at: NOW }, release: false, notify: false, kick: false },
  },
  {
    name: 'a stale report (older version) during a stop: the power state only, the task stays',
    row: { task_state: 'powering-off', desired_power: 'stopped', version: 6 }, report: rep(5, obs('active', 3)),
    want: { kind: 'update', set: { power_state: 3, updated_at: NOW }, release: false, notify: false, kick: false },
  },
  { name: 'a report that says what the row says: nothing', row: {}, report: rep(5, obs('active', 1)), want: none },
  {
    name: 'a failed reboot: ERROR with the fault, task cleared',
    row: { task_state: 'rebooting' }, report: rep(5, obs('active', 1), err('transient', 'runc failed')),
    want: {
      kind: 'update', set: { task_state: null, vm_state: 'error', fault: JSON.stringify({ code: 500, message: 'runc failed', details: 'runc failed', created: NOW }), updated_at: NOW },
      release: false, notify: false, kick: false,
    },
  },
  {
    name: 'an ERROR server stays ERROR on a plain report',
    row: { vm_state: 'error' }, report: rep(5, obs('active', 1)), want: none,
  },
  {
    name: 'during a snapshot the report leaves the task (the request ends it)',
    row: { task_state: 'image_uploading' }, report: rep(5, obs('paused', 3)),
    want: { kind: 'update', set: { power_state: 3, updated_at: NOW }, release: false, notify: false, kick: false },
  },
  // resize (one host): the agent's report of the new flavor applied makes VERIFY_RESIZE; what a resized server reports changes nothing
  {
    name: 'resize applied (running): VERIFY_RESIZE (vm_state resized), migration finished',
    row: { task_state: 'resize_prep' }, report: rep(5, obs('active', 1)),
    want: { kind: 'update', set: { task_state: null, vm_state: 'resized', updated_at: NOW }, release: false, notify: false, kick: false, migration: 'finished' },
  },
  {
    name: 'resize applied (stopped server): VERIFY_RESIZE, still shut down',
    row: { vm_state: 'stopped', desired_power: 'stopped', power_state: 4, task_state: 'resize_prep' }, report: rep(5, obs('stopped', 4)),
    want: { kind: 'update', set: { task_state: null, vm_state: 'resized', updated_at: NOW }, release: false, notify: false, kick: false, migration: 'finished' },
  },
  {
    name: 'resize: a report of an older version changes nothing',
    row: { task_state: 'resize_prep' }, report: rep(4, obs('active', 1)),
    want: none,
  },
  {
    name: 'resize failed on the host: ERROR with the fault, migration error',
    row: { task_state: 'resize_prep' }, report: rep(5, obs('active', 1), err('transient', 'no memory')),
    want: {
      kind: 'update', set: { task_state: null, vm_state: 'error', fault: JSON.stringify({ code: 500, message: 'no memory', details: 'no memory', created: NOW }), updated_at: NOW },
      release: false, notify: false, kick: false, migration: 'error',
    },
  },
  {
    name: 'resize: nothing on the host (no error) leaves the resize waiting',
    row: { task_state: 'resize_prep' }, report: rep(5, obs('absent', 0)),
    want: { kind: 'update', set: { power_state: 0, updated_at: NOW }, release: false, notify: false, kick: false },
  },
  {
    name: 'a resized server\'s reports keep VERIFY_RESIZE',
    row: { vm_state: 'resized' }, report: rep(5, obs('active', 1)),
    want: none,
  },
  {
    name: 'revert applied: back to ACTIVE, migration reverted',
    row: { vm_state: 'resized', task_state: 'resize_reverting' }, report: rep(5, obs('active', 1)),
    want: { kind: 'update', set: { task_state: null, vm_state: 'active', updated_at: NOW }, release: false, notify: false, kick: false, migration: 'reverted' },
  },
  // shelve: a shelved server stopped on its host stays SHELVED; unshelve ends with the agent's report
  {
    name: 'a shelved server stopped on its host stays SHELVED (not stopped by itself)',
    row: { vm_state: 'shelved', desired_power: 'stopped' }, report: rep(5, obs('stopped', 4)),
    want: { kind: 'update', set: { power_state: 4, updated_at: NOW }, release: false, notify: false, kick: false },
  },
  {
    name: 'unshelve where it was shelved: ACTIVE once running',
    row: { vm_state: 'shelved', task_state: 'unshelving', power_state: 4 }, report: rep(5, obs('active', 1)),
    want: { kind: 'update', set: { power_state: 1, task_state: null, vm_state: 'active', updated_at: NOW }, release: false, notify: false, kick: false },
  },
  {
    name: 'unshelve of an offloaded server (placed again, spawning): ACTIVE once running',
    row: { vm_state: 'shelved_offloaded', task_state: 'spawning', power_state: 0 }, report: rep(5, obs('active', 1)),
    want: { kind: 'update', set: { power_state: 1, task_state: null, vm_state: 'active', updated_at: NOW }, release: false, notify: false, kick: false },
  },
];

for (const c of cases) {
  test(`applyReport: ${c.name}`, () => {
    assert.deepEqual(applyReport(row(c.row), c.report, HOST, { maxAttempts: 3, now: NOW }), c.want);
  });
}
