// Another process writing the server's database: `stratus bootstrap
// --admin-password` run beside a live server (issue 9: the read cache kept the
// old password working and refused the new one).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { freshPostgres, useCloud } from '../../harness.ts';
import { V3 } from './lib.ts';

// On PostgreSQL the other process needs the database's URL: this file makes its own.
const pgBase = process.env.STRATUS_TEST_DATABASE;
const pgDatabase = pgBase ? await freshPostgres(pgBase) : undefined;
const cloud = useCloud(undefined, pgDatabase ? { database: pgDatabase.url } : {});
after(async () => { await pgDatabase?.drop(); });
const stratus = fileURLToPath(new URL('../../../bin/stratus', import.meta.url));

const passwordLogin = (password: string) => cloud.call('POST', `${V3}/auth/tokens`, {
  body: { auth: { identity: { methods: ['password'], password: { user: { name: 'admin', domain: { id: 'default' }, password } } } } },
});

test('a password reset by `stratus bootstrap` in another process takes effect on the running server at once', async () => {
  const old = cloud.adminPassword;
  // Twice, so the user is read once and then answered from whatever the server keeps.
  assert.equal((await passwordLogin(old)).status, 201);
  assert.equal((await passwordLogin(old)).status, 201);
  const fresh = 'reset-by-another-process-1';
  const database = pgDatabase ? ['--database', pgDatabase.url] : [];
  const { stdout } = await promisify(execFile)(stratus, ['bootstrap', '--data-dir', cloud.dataDir, ...database, '--admin-password', fresh]);
  assert.match(stdout, /^bootstrapped: admin user /);
  assert.equal((await passwordLogin(old)).status, 401, 'the old password is refused');
  assert.equal((await passwordLogin(fresh)).status, 201, 'the new password works');
});
