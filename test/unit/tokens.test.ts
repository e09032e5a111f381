import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DatabaseSync } from 'node:sqlite';
import { Kysely } from 'kysely';
import { sqliteDialect } from '../../src/db/sqlite.ts';
import { migrate, type Db } from '../../src/db/database.ts';
import { KeySet, ensureKey, rotateKeys, KEEP_KEYS } from '../../src/identity/keys.ts';
import { decodeToken, encodeToken } from '../../src/identity/tokens/codec.ts';
import { Revocations } from '../../src/identity/tokens/revocations.ts';
import type { TokenData } from '../../src/identity/tokens/token.ts';

async function memoryDb(): Promise<Db> {
  void DatabaseSync;
  const db = new Kysely<any>({ dialect: sqliteDialect(':memory:') }) as Db;
  await migrate(db);
  return db;
}

const sample = (over: Partial<TokenData> = {}): TokenData => ({
  user: { id: 'u1', name: 'alice', domain: { id: 'default', name: 'Default' } },
  methods: ['password'],
  issuedAt: Date.now() - 10,
  expiresAt: Date.now() + 3600_000,
  auditIds: ['audit-1'],
  project: { id: 'p1', name: 'demo', domain: { id: 'default', name: 'Default' } },
  roles: [{ id: 'r1', name: 'member' }],
  ...over,
});

test('a token round-trips; a tampered or foreign token does not', async () => {
  const db = await memoryDb();
  await ensureKey(db);
  const keys = new KeySet(0);
  await keys.load(db);
  const data = sample();
  const token = encodeToken(data, keys);
  assert.deepEqual(decodeToken(token, keys), data);
  assert.doesNotMatch(token, /alice|demo/, 'the payload is encrypted, not just encoded');
  const raw = Buffer.from(token, 'base64url');
  raw[raw.length - 20]! ^= 1;
  assert.equal(decodeToken(raw.toString('base64url'), keys), null);
  assert.equal(decodeToken('not-a-token', keys), null);
  assert.equal(decodeToken('', keys), null);
  const otherDb = await memoryDb();
  await ensureKey(otherDb);
  const otherKeys = new KeySet(0);
  await otherKeys.load(otherDb);
  assert.equal(decodeToken(token, otherKeys), null, 'a token from another cloud is rejected');
});

test('rotation stages a key, promotes it after the delay, and keeps old tokens valid until rotated out', async () => {
  const db = await memoryDb();
  await ensureKey(db);
  const keys = new KeySet(60_000);
  await keys.load(db);
  const before = encodeToken(sample(), keys);
  const staged = await rotateKeys(db);
  await keys.load(db);
  assert.equal(keys.primary().id, 1, 'a freshly staged key is not used yet');
  assert.notEqual(staged, 1);
  const immediate = new KeySet(0);
  await immediate.load(db);
  assert.equal(immediate.primary().id, staged, 'once old enough the staged key encrypts');
  assert.ok(decodeToken(before, immediate), 'tokens of the previous key still validate');
  for (let i = 0; i < KEEP_KEYS + 1; i++) await rotateKeys(db);
  await immediate.load(db);
  assert.equal(immediate.size, KEEP_KEYS + 1);
  assert.equal(decodeToken(before, immediate), null, 'a rotated-out key no longer validates');
});

test('revocation events match on every given field and only tokens issued before them', async () => {
  const db = await memoryDb();
  const rev = new Revocations(3600_000);
  const t = sample({ issuedAt: Date.now() - 1000 });
  assert.equal(rev.isRevoked(t), false);
  await rev.revoke(db, { userId: 'u1', projectId: 'other' });
  assert.equal(rev.isRevoked(t), false, 'a user+project event does not hit another project');
  await rev.revoke(db, { userId: 'u1', projectId: 'p1' });
  assert.equal(rev.isRevoked(t), true);
  assert.equal(rev.isRevoked({ ...t, issuedAt: Date.now() + 1000 }), false, 'tokens issued after the event stay valid');

  const rev2 = new Revocations(3600_000);
  await rev2.sync(db);
  assert.equal(rev2.isRevoked(t), true, 'another replica learns the event from the database');

  const fresh = new Revocations(3600_000);
  const db2 = await memoryDb();
  await fresh.revoke(db2, { domainId: 'default' });
  assert.equal(fresh.isRevoked(t), true, 'a domain event hits tokens of users in that domain');
  const chained = sample({ auditIds: ['a2', 'chain-root'] });
  const root = sample({ auditIds: ['chain-root'] });
  const rev3 = new Revocations(3600_000);
  await rev3.revoke(await memoryDb(), { auditChainId: 'chain-root' });
  assert.equal(rev3.isRevoked(chained), true, 'revoking a chain hits rescoped tokens');
  assert.equal(rev3.isRevoked(root), true);
});

test('the decode cache answers a token again, and forgets it when its key is rotated out', async () => {
  const { decodeTokenCached } = await import('../../src/identity/tokens/codec.ts');
  const db = await memoryDb();
  await ensureKey(db);
  const keys = new KeySet(0);
  await keys.load(db);
  const token = encodeToken(sample(), keys);
  const first = decodeTokenCached(token, keys);
  assert.ok(first);
  assert.equal(decodeTokenCached(token, keys), first, 'the second decode is the cached payload');
  const raw = Buffer.from(token, 'base64url');
  raw[raw.length - 1]! ^= 1;
  assert.equal(decodeTokenCached(raw.toString('base64url'), keys), null, 'a forged token is not answered from the cache');
  for (let i = 0; i < KEEP_KEYS + 1; i++) await rotateKeys(db);
  await keys.load(db);
  assert.equal(decodeTokenCached(token, keys), null, 'after its key is dropped the token no longer decodes');
});
