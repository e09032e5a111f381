import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startCloud } from '../../harness.ts';

test('password history: a self-service change may not reuse the last N passwords; an admin reset may', async (t) => {
  const cloud = await startCloud({ identity: { uniqueLastPasswordCount: 2 } });
  t.after(() => cloud.close());
  const created = await cloud.call('POST', '/identity/v3/users', { token: cloud.adminToken, body: { user: { name: 'hist', password: 'first-pw-1' } } });
  assert.equal(created.status, 201);
  const id = created.body.user.id;
  const change = (original: string, password: string) =>
    cloud.call('POST', `/identity/v3/users/${id}/password`, { body: { user: { original_password: original, password } } });
  assert.equal((await change('first-pw-1', 'second-pw-2')).status, 204);
  assert.equal((await change('second-pw-2', 'second-pw-2')).status, 400, 'the current password is refused');
  const reuse = await change('second-pw-2', 'first-pw-1');
  assert.equal(reuse.status, 400, 'the previous password is refused');
  assert.doesNotMatch(JSON.stringify(reuse.body), /first-pw-1/);
  assert.equal((await change('second-pw-2', 'third-pw-3')).status, 204);
  assert.equal((await change('third-pw-3', 'first-pw-1')).status, 204, 'older than the last 2: allowed again');
  const reset = await cloud.call('PATCH', `/identity/v3/users/${id}`, { token: cloud.adminToken, body: { user: { password: 'first-pw-1' } } });
  assert.equal(reset.status, 200, 'an admin reset is not held to the history');
});
