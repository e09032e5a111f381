// Key sets shared by every replica through the database, one table each: the
// token keys and the credential keys (the /v3/credentials blobs at rest). A new
// key is staged first and becomes the encryption key only once every replica
// has had time to load it; older keys keep decrypting until rotated out.
import { createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import type { Db } from '../db/database.ts';
import { nowIso } from '../common/ids.ts';
import { keyHash } from './credential-cipher.ts';

export const KeyTable = { token: 'identity_token_keys', credential: 'identity_credential_keys' } as const;
export type KeyTable = (typeof KeyTable)[keyof typeof KeyTable];

/** Keys kept: the primary, the staged one and this many older ones. */
export const KEEP_KEYS = 3;

export interface Key {
  id: number;
  // A KeyObject, not a Buffer: the cipher then skips re-importing the key on every use.
  secret: KeyObject;
  /** Names the key without revealing it (stored beside what it encrypted). */
  hash: string;
  createdAt: number;
}

export class KeySet {
  private keys = new Map<number, Key>();
  private hashes = new Map<string, Key>();
  /** Bumped whenever a key is added or dropped, so caches of decoded tokens know to forget. */
  version = 0;
  private readonly promotionDelayMs: number;
  private readonly table: KeyTable;
  constructor(promotionDelayMs: number, table: KeyTable = KeyTable.token) {
    this.promotionDelayMs = promotionDelayMs;
    this.table = table;
  }

  async load(db: Db): Promise<void> {
    const rows = await db.selectFrom(this.table).selectAll().execute();
    const next = new Map<number, Key>();
    for (const r of rows) {
      const raw = Buffer.from(r.secret, 'base64');
      next.set(r.id, { id: r.id, secret: createSecretKey(raw), hash: keyHash(raw), createdAt: Date.parse(r.created_at) });
    }
    const same = next.size === this.keys.size && [...next.keys()].every((id) => this.keys.has(id));
    this.keys = next;
    this.hashes = new Map([...next.values()].map((k) => [k.hash, k]));
    if (!same) this.version++;
  }

  get(id: number): KeyObject | undefined {
    return this.keys.get(id)?.secret;
  }

  withHash(hash: string): Key | undefined {
    return this.hashes.get(hash);
  }

  /** The key new values are encrypted with: the newest one old enough for every replica to know. */
  primary(): Key {
    const ids = [...this.keys.keys()].sort((a, b) => b - a);
    if (ids.length === 0) throw new Error(`no keys in ${this.table}: run bootstrap`);
    const now = Date.now();
    const id = ids.find((i) => now - this.keys.get(i)!.createdAt >= this.promotionDelayMs) ?? ids[ids.length - 1]!;
    return this.keys.get(id)!;
  }

  get size(): number {
    return this.keys.size;
  }
}

/** Creates the first key when there is none (bootstrap). */
export async function ensureKey(db: Db, table: KeyTable = KeyTable.token): Promise<void> {
  const row = await db.selectFrom(table).select('id').limit(1).executeTakeFirst();
  if (!row) await insertKey(db, table, 1);
}

async function insertKey(db: Db, table: KeyTable, id: number): Promise<Key> {
  // Backdated so the very first key is usable at once.
  const createdAt = id === 1 ? new Date(0).toISOString() : nowIso();
  const raw = randomBytes(32);
  await db.insertInto(table).values({ id, secret: raw.toString('base64'), created_at: createdAt }).execute();
  return { id, secret: createSecretKey(raw), hash: keyHash(raw), createdAt: Date.parse(createdAt) };
}

/**
 * Stages a new key and drops the oldest beyond KEEP_KEYS + 1; returns the new
 * key's id. `reencrypt` runs in the same transaction with the new key, for a
 * set whose keys protect stored values (the credential keys): once it has
 * moved every value to the new key, no dropped key is still needed.
 */
export async function rotateKeys(db: Db, table: KeyTable = KeyTable.token, reencrypt?: (tx: Db, key: Key) => Promise<void>): Promise<number> {
  return db.transaction().execute(async (trx) => {
    const tx = trx as unknown as Db;
    const max = await tx.selectFrom(table).select((eb) => eb.fn.max('id').as('max')).executeTakeFirst();
    const next = Number(max?.max ?? 0) + 1;
    const key = await insertKey(tx, table, next);
    await reencrypt?.(tx, key);
    await tx.deleteFrom(table).where('id', '<=', next - (KEEP_KEYS + 1)).execute();
    return next;
  });
}
