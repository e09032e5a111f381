// /v3/credentials blobs at rest: sealed under the credential key set, still
// served in clear, and still readable after `stratus keys rotate --credential`
// run as another process beside the live server.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { freshPostgres, useCloud } from '../../harness.ts';
import { findEc2Credential } from '../../../src/identity/routes/credentials.ts';
import { fixtures, type UserWithToken } from './delegation-fixtures.ts';
import { V3 } from './lib.ts';

// On PostgreSQL the other process needs the database's URL: this file makes its own.
const pgBase = process.env.STRATUS_TEST_DATABASE;
const pgDatabase = pgBase ? await freshPostgres(pgBase) : undefined;
let alice: UserWithToken;
let project: string;
const cloud = useCloud(async (c) => {
  const fx = fixtures(c);
  project = await fx.project();
  alice = await fx.userOn(project);
}, pgDatabase ? { database: pgDatabase.url } : {});
after(async () => { await pgDatabase?.drop(); });

const stratus = fileURLToPath(new URL('../../../bin/stratus', import.meta.url));
const rows = () => cloud.server.database.db.selectFrom('identity_credentials').selectAll().execute();

test('credential secrets are sealed at rest, served in clear, and survive key rotation by another process', async () => {
  const ec2 = await cloud.call('POST', `${V3}/users/${alice.id}/credentials/OS-EC2`, { token: alice.token, body: { tenant_id: project } });
  assert.equal(ec2.status, 201, JSON.stringify(ec2.body));
  const { access, secret } = ec2.body.credential;
  const totpSecret = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';
  const totp = await cloud.call('POST', `${V3}/credentials`, { token: alice.token, body: { credential: { user_id: alice.id, type: 'totp', blob: totpSecret } } });
  assert.equal(totp.status, 201, JSON.stringify(totp.body));
  const totpId: string = totp.body.credential.id;

  const noPlaintext = async (when: string) => {
    const stored = JSON.stringify(await rows());
    for (const s of [secret, totpSecret]) assert.ok(!stored.includes(s), `${when}: a secret is in the credentials table`);
  };
  const readable = async (when: string) => {
    assert.equal((await cloud.call('GET', `${V3}/credentials/${totpId}`, { token: alice.token })).body.credential?.blob, totpSecret, when);
    const shown = await cloud.call('GET', `${V3}/users/${alice.id}/credentials/OS-EC2/${access}`, { token: alice.token });
    assert.equal(shown.body.credential?.secret, secret, when);
    const listed = await cloud.call('GET', `${V3}/credentials?user_id=${alice.id}&type=totp`, { token: alice.token });
    assert.deepEqual(listed.body.credentials.map((c: { blob: string }) => c.blob), [totpSecret], when);
    // What EC2/S3 signature checks read.
    assert.equal((await findEc2Credential(cloud.server.identity.context.credentials, access))?.secret, secret, when);
  };
  await noPlaintext('after create');
  await readable('after create');
  const before = new Set((await rows()).map((r) => r.key_hash));
  assert.equal(before.size, 1);

  const database = pgDatabase ? ['--database', pgDatabase.url] : [];
  const { stdout } = await promisify(execFile)(stratus, ['keys', 'rotate', '--credential', '--data-dir', cloud.dataDir, ...database]);
  assert.match(stdout, /^credential key 2 is primary/);
  const after = new Set((await rows()).map((r) => r.key_hash));
  assert.equal(after.size, 1);
  assert.notDeepEqual(after, before, 'every row is re-encrypted under the new key');
  await noPlaintext('after rotation');
  // The server has not loaded the new key yet: it does when a row names it.
  await readable('after rotation');

  // An update re-seals: the blob changes, the new one is sealed too.
  const newTotp = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
  const patched = await cloud.call('PATCH', `${V3}/credentials/${totpId}`, { token: alice.token, body: { credential: { blob: newTotp } } });
  assert.equal(patched.status, 200, JSON.stringify(patched.body));
  assert.ok(!JSON.stringify(await rows()).includes(newTotp));
  assert.equal((await cloud.call('GET', `${V3}/credentials/${totpId}`, { token: alice.token })).body.credential.blob, newTotp);
});
