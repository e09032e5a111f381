// The /v3/credentials blobs at rest: AES-256-GCM under a credential key, as
// base64( iv | ciphertext | tag ), bound to the credential's id (the AAD) so a
// sealed blob moved onto another row does not open. Pure crypto, no database:
// the migration that encrypted the rows stored before uses it too.
import { createCipheriv, createDecipheriv, createHash, type KeyObject } from 'node:crypto';
import { pooledRandomBytes } from '../common/random.ts';

const IV_LEN = 12;
const TAG_LEN = 16;

export function sealBlob(key: KeyObject, credentialId: string, blob: string): string {
  const iv = pooledRandomBytes(IV_LEN);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(credentialId, 'utf8'));
  const body = Buffer.concat([cipher.update(blob, 'utf8'), cipher.final()]);
  return Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64');
}

/** Throws when the sealed blob is not this credential's under this key. */
export function openBlob(key: KeyObject, credentialId: string, sealed: string): string {
  const raw = Buffer.from(sealed, 'base64');
  if (raw.length < IV_LEN + TAG_LEN) throw new Error('sealed credential blob too short');
  const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, IV_LEN));
  decipher.setAAD(Buffer.from(credentialId, 'utf8'));
  decipher.setAuthTag(raw.subarray(raw.length - TAG_LEN));
  return Buffer.concat([decipher.update(raw.subarray(IV_LEN, raw.length - TAG_LEN)), decipher.final()]).toString('utf8');
}

/** Names a key without revealing it: the hex SHA-256 of its bytes (stored per row, as Keystone's credential key_hash). */
export const keyHash = (secret: Buffer): string => createHash('sha256').update(secret).digest('hex');
