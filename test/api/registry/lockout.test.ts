// The token endpoint's logins are Keystone's: wrong passwords count towards
// the user's lockout, as failed POST /v3/auth/tokens do.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tenant, useCloud } from '../../harness.ts';
import { basic, raw } from './lib.ts';

const cloud = useCloud(undefined, { identity: { lockoutFailureAttempts: 2, lockoutDuration: 600 } });

test('two wrong passwords at the token endpoint lock the user out of it and of Keystone', async () => {
  const t = await tenant(cloud);
  const p = await cloud.call('GET', `/identity/v3/projects/${t.projectId}`, { token: cloud.adminToken });
  const name = p.body.project.name as string;
  const tokenWith = (secret: string) => raw(cloud, 'GET', `/v2/token?service=stratus&scope=repository:${name}/x:pull`, { headers: { Authorization: basic(name, secret) } });
  assert.equal((await tokenWith('secret-pw-1')).status, 200);
  for (let i = 0; i < 2; i++) assert.equal((await tokenWith('wrong')).status, 401);
  assert.equal((await tokenWith('secret-pw-1')).status, 401, 'locked out');
  await assert.rejects(cloud.login(name, 'secret-pw-1', t.projectId), /401/);
});
