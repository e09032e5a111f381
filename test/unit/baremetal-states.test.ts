// The bare-metal provision state machine (src/baremetal/states.ts), pure: Ironic's transitions, the
// target states, and how a conductor's report of an operation moves a node on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { next, onOperation, operationFor, S, targetOf, VERBS } from '../../src/baremetal/states.ts';

test('the verbs move nodes as Ironic does', () => {
  assert.equal(next(S.enroll, VERBS.manage!), S.verifying);
  assert.equal(next(S.manageable, VERBS.provide!), S.cleaning);
  assert.equal(next(S.manageable, VERBS.inspect!), S.inspecting);
  assert.equal(next(S.manageable, VERBS.clean!), S.cleaning);
  assert.equal(next(S.available, VERBS.active!), S.deploying);
  assert.equal(next(S.available, VERBS.deploy!), S.deploying);
  assert.equal(next(S.active, VERBS.deleted!), S.deleting);
  assert.equal(next(S.active, VERBS.undeploy!), S.deleting);
  assert.equal(next(S.active, VERBS.rebuild!), S.deploying);
  assert.equal(next(S.active, VERBS.rescue!), S.rescuing);
  assert.equal(next(S.rescue, VERBS.unrescue!), S.unrescuing);
  assert.equal(next(S.manageable, VERBS.adopt!), S.adopting);
  assert.equal(next(S.cleanWait, VERBS.abort!), S.cleanFail);
  assert.equal(next(S.inspectWait, VERBS.abort!), S.inspectFail);
  assert.equal(next(S.deployFail, VERBS.deleted!), S.deleting);
  assert.equal(next(S.cleanFail, VERBS.manage!), S.manageable);
  // not actionable
  assert.equal(next(S.enroll, VERBS.provide!), null);
  assert.equal(next(S.available, VERBS.inspect!), null);
  assert.equal(next(S.manageable, VERBS.active!), null);
  assert.equal(next(S.active, VERBS.manage!), null);
  assert.equal(next(S.deploying, VERBS.abort!), null);
  assert.equal(next(S.cleaning, VERBS.abort!), null);
});

test('targets and operations of transitional states', () => {
  assert.equal(targetOf(S.deploying), S.active);
  assert.equal(targetOf(S.cleanWait), S.available);
  assert.equal(targetOf(S.verifying), S.manageable);
  assert.equal(targetOf(S.active), null);
  assert.equal(operationFor(S.deployWait), 'deploy');
  assert.equal(operationFor(S.deleting), 'tear_down');
  assert.equal(operationFor(S.verifying), 'verify');
  assert.equal(operationFor(S.available), null);
});

test('reports: boot phases wait, other phases resume, outcomes finish or fail', () => {
  assert.deepEqual(onOperation(S.deploying, 'running', 'pxe'), { state: S.deployWait, event: 'wait' });
  assert.equal(onOperation(S.deployWait, 'running', 'ramdisk'), null);
  assert.deepEqual(onOperation(S.deployWait, 'running', 'write_image'), { state: S.deploying, event: 'resume' });
  assert.equal(onOperation(S.deploying, 'running', 'write_image'), null);
  assert.deepEqual(onOperation(S.deployWait, 'succeeded', 'done'), { state: S.active, event: 'done' });
  assert.deepEqual(onOperation(S.deployWait, 'failed', 'write_image', 'checksum mismatch'), { state: S.deployFail, event: 'fail', error: 'checksum mismatch' });
  assert.deepEqual(onOperation(S.cleanWait, 'failed', 'erase'), { state: S.cleanFail, event: 'fail', error: 'The operation failed.' });
  assert.deepEqual(onOperation(S.inspectWait, 'succeeded', 'done'), { state: S.manageable, event: 'done' });
  assert.deepEqual(onOperation(S.verifying, 'failed', 'done', 'no BMC'), { state: S.enroll, event: 'fail', error: 'no BMC' });
  assert.deepEqual(onOperation(S.deleting, 'succeeded', 'done'), { state: S.cleaning, event: 'clean' });
  assert.deepEqual(onOperation(S.deleting, 'succeeded', 'done', undefined, { automatedClean: false }), { state: S.available, event: 'done' });
  assert.deepEqual(onOperation(S.deleting, 'failed', 'power_off', 'BMC gone'), { state: S.error, event: 'fail', error: 'BMC gone' });
  assert.deepEqual(onOperation(S.rescueWait, 'succeeded', 'done'), { state: S.rescue, event: 'done' });
  assert.deepEqual(onOperation(S.unrescuing, 'failed', 'reboot', 'x'), { state: S.unrescueFail, event: 'fail', error: 'x' });
});
