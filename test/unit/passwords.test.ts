import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hashPassword, verifyPassword } from '../../src/identity/passwords.ts';
import { hashSecret, secretMatches } from '../../src/identity/tokens/issue.ts';

test('argon2id hashes verify the right password only, with a fresh salt each time', async () => {
  const a = await hashPassword('correct horse');
  const b = await hashPassword('correct horse');
  assert.match(a, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
  assert.notEqual(a, b);
  assert.equal(await verifyPassword('correct horse', a), true);
  assert.equal(await verifyPassword('correct horse!', a), false);
  assert.equal(await verifyPassword('correct horse', 'garbage'), false);
});

test('high-entropy secrets are compared by hash', () => {
  const h = hashSecret('s3cret');
  assert.doesNotMatch(h, /s3cret/);
  assert.equal(secretMatches('s3cret', h), true);
  assert.equal(secretMatches('s3cret2', h), false);
});
