// Token wire format: base64url( version | key id | iv | AES-256-GCM(JSON payload) | tag ).
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { pooledRandomBytes } from '../../common/random.ts';
import type { KeySet } from '../keys.ts';
import type { TokenData } from './token.ts';

const VERSION = 1;
const IV_LEN = 12;
const TAG_LEN = 16;
const HEADER = 1 + 4;

export function encodeToken(data: TokenData, keys: KeySet): string {
  const { id, secret } = keys.primary();
  const iv = pooledRandomBytes(IV_LEN);
  const header = Buffer.alloc(HEADER);
  header.writeUInt8(VERSION, 0);
  header.writeUInt32BE(id, 1);
  const cipher = createCipheriv('aes-256-gcm', secret, iv);
  cipher.setAAD(header);
  const body = Buffer.concat([cipher.update(JSON.stringify(data), 'utf8'), cipher.final()]);
  return Buffer.concat([header, iv, body, cipher.getAuthTag()]).toString('base64url');
}

/** Returns the payload, or null when the token is malformed, forged or its key is gone. */
export function decodeToken(token: string, keys: KeySet): TokenData | null {
  if (token.length > 8192 || !/^[A-Za-z0-9_-]+$/.test(token)) return null;
  const raw = Buffer.from(token, 'base64url');
  if (raw.length < HEADER + IV_LEN + TAG_LEN + 2 || raw.readUInt8(0) !== VERSION) return null;
  const secret = keys.get(raw.readUInt32BE(1));
  if (!secret) return null;
  try {
    const decipher = createDecipheriv('aes-256-gcm', secret, raw.subarray(HEADER, HEADER + IV_LEN));
    decipher.setAAD(raw.subarray(0, HEADER));
    decipher.setAuthTag(raw.subarray(raw.length - TAG_LEN));
    const plain = Buffer.concat([decipher.update(raw.subarray(HEADER + IV_LEN, raw.length - TAG_LEN)), decipher.final()]);
    return JSON.parse(plain.toString('utf8')) as TokenData;
  } catch {
    return null;
  }
}

const CACHE_SIZE = 4096;
const caches = new WeakMap<KeySet, { version: number; tokens: Map<string, TokenData> }>();

/**
 * decodeToken with a bounded cache: a token presented again (every API call
 * carries one) is not decrypted again. Only authentic payloads are cached, and
 * the cache empties when the key set changes. Expiry and revocation are
 * checked by the caller on every use.
 */
export function decodeTokenCached(token: string, keys: KeySet): TokenData | null {
  let cache = caches.get(keys);
  if (!cache || cache.version !== keys.version) {
    cache = { version: keys.version, tokens: new Map() };
    caches.set(keys, cache);
  }
  const hit = cache.tokens.get(token);
  if (hit) return hit;
  const data = decodeToken(token, keys);
  if (data) {
    if (cache.tokens.size >= CACHE_SIZE) cache.tokens.clear();
    cache.tokens.set(token, data);
  }
  return data;
}
