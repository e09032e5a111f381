import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Kysely } from 'kysely';
import { Migrator, type Migration } from 'kysely/migration';
import { sqliteDialect } from '../../src/db/sqlite.ts';
import { migrate, type Db } from '../../src/db/database.ts';
import { migrations } from '../../src/db/migrations.ts';
import { CredentialStore, rotateCredentialKeys } from '../../src/identity/credential-store.ts';
import { openBlob, sealBlob } from '../../src/identity/credential-cipher.ts';
import { KEEP_KEYS } from '../../src/identity/keys.ts';
import { createSecretKey, randomBytes } from 'node:crypto';

const ENCRYPTION = '0003_identity_credential_encryption';

test('a database made before credential encryption: the upgrade seals every stored blob and the store opens it', async () => {
  const db = new Kysely<any>({ dialect: sqliteDialect(':memory:') }) as Db;
  const before = Object.fromEntries(Object.entries(migrations).filter(([name]) => name !== ENCRYPTION));
  const old = new Migrator({ db, provider: { getMigrations: async (): Promise<Record<string, Migration>> => before } });
  const r = await old.migrateToLatest();
  assert.equal(r.error, undefined);
  const raw = db as unknown as Kysely<any>;
  const blob = JSON.stringify({ access: 'AKIA-old', secret: 'stored-in-the-clear' });
  await raw.insertInto('identity_credentials').values({ id: 'c1', user_id: 'u', project_id: 'p', type: 'ec2', blob, extra: '{}', created_at: '2026-01-01T00:00:00Z' }).execute();

  assert.deepEqual(await migrate(db), [ENCRYPTION], 'the new migration runs after other services\' later-numbered ones');
  const row = await db.selectFrom('identity_credentials').selectAll().where('id', '=', 'c1').executeTakeFirstOrThrow();
  assert.ok(!JSON.stringify(row).includes('stored-in-the-clear'), 'no plaintext secret in the row');
  assert.ok(!('blob' in row), 'the plaintext column is gone');
  assert.match(row.key_hash, /^[0-9a-f]{64}$/);
  const store = new CredentialStore(db);
  await store.load();
  assert.equal(store.keys.primary().hash, row.key_hash);
  assert.equal((await store.get('c1'))?.blob, blob);
});

test('rotation re-seals every row under the new key; dropped keys are no longer needed', async () => {
  const db = new Kysely<any>({ dialect: sqliteDialect(':memory:') }) as Db;
  await migrate(db);
  const store = new CredentialStore(db);
  await store.load();
  const c = { id: 'c1', user_id: 'u', project_id: null, type: 'totp', blob: 'JBSWY3DPEHPK3PXP', extra: '{}', created_at: '2026-01-01T00:00:00Z' };
  await store.insert(c);
  const first = store.keys.primary().hash;
  for (let i = 0; i < KEEP_KEYS + 2; i++) await rotateCredentialKeys(db);
  const row = await db.selectFrom('identity_credentials').selectAll().executeTakeFirstOrThrow();
  assert.notEqual(row.key_hash, first);
  assert.ok(!row.encrypted_blob.includes(c.blob));
  const keys = await db.selectFrom('identity_credential_keys').select('id').execute();
  assert.equal(keys.length, KEEP_KEYS + 1, 'older keys are dropped');
  // The store still holds the first key set: it reloads when a row names a key it does not know.
  assert.deepEqual(await store.get('c1'), c);
  assert.equal(store.keys.primary().hash, row.key_hash);
  // A row sealed under a key a stale server still uses stays readable and is moved by the next rotation.
  const stale = store.seal({ ...c, id: 'c2' });
  await rotateCredentialKeys(db);
  await db.insertInto('identity_credentials').values(stale).execute();
  assert.equal((await store.get('c2'))?.blob, c.blob);
  await rotateCredentialKeys(db);
  const hashes = new Set((await db.selectFrom('identity_credentials').select('key_hash').execute()).map((r) => r.key_hash));
  assert.equal(hashes.size, 1, 'every row is under the newest key');
});

test('a sealed blob opens only for its own credential id and key', () => {
  const key = createSecretKey(randomBytes(32));
  const sealed = sealBlob(key, 'c1', 'secret');
  assert.equal(openBlob(key, 'c1', sealed), 'secret');
  assert.throws(() => openBlob(key, 'c2', sealed), 'moved onto another row');
  assert.throws(() => openBlob(createSecretKey(randomBytes(32)), 'c1', sealed), 'another key');
  assert.notEqual(sealBlob(key, 'c1', 'secret'), sealed, 'a fresh IV every time');
});
