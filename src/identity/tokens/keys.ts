// The token key set, shared by every replica through the database. A new key is
// staged first and becomes the encryption key only once every replica has had
// time to load it; older keys keep decrypting until rotated out.
import { createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import type { Db } from '../../db/database.ts';
import { nowIso } from '../../common/ids.ts';

/** Keys kept: the primary, the staged one and this many older ones. */
export const KEEP_KEYS = 3;

export class KeySet {
  // KeyObjects, not Buffers: the cipher then skips re-importing the key on every token.
  private keys = new Map<number, { secret: KeyObject; createdAt: number }>();
  /** Bumped whenever a key is added or dropped, so caches of decoded tokens know to forget. */
  version = 0;
  private readonly promotionDelayMs: number;
  constructor(promotionDelayMs: number) {
    this.promotionDelayMs = promotionDelayMs;
  }

  async load(db: Db): Promise<void> {
    const rows = await db.selectFrom('identity_token_keys').selectAll().execute();
    const next = new Map<number, { secret: KeyObject; createdAt: number }>();
    for (const r of rows) next.set(r.id, { secret: createSecretKey(Buffer.from(r.secret, 'base64')), createdAt: Date.parse(r.created_at) });
    const same = next.size === this.keys.size && [...next.keys()].every((id) => this.keys.has(id));
    this.keys = next;
    if (!same) this.version++;
  }

  get(id: number): KeyObject | undefined {
    return this.keys.get(id)?.secret;
  }

  /** The key new tokens are encrypted with: the newest one old enough for every replica to know. */
  primary(): { id: number; secret: KeyObject } {
    const ids = [...this.keys.keys()].sort((a, b) => b - a);
    if (ids.length === 0) throw new Error('no token keys: run bootstrap');
    const now = Date.now();
    const id = ids.find((i) => now - this.keys.get(i)!.createdAt >= this.promotionDelayMs) ?? ids[ids.length - 1]!;
    return { id, secret: this.keys.get(id)!.secret };
  }

  get size(): number {
    return this.keys.size;
  }
}

/** Creates the first key when there is none (bootstrap). */
export async function ensureKey(db: Db): Promise<void> {
  const row = await db.selectFrom('identity_token_keys').select('id').limit(1).executeTakeFirst();
  if (!row) await insertKey(db, 1);
}

async function insertKey(db: Db, id: number): Promise<void> {
  // Backdated so the very first key is usable at once.
  const createdAt = id === 1 ? new Date(0).toISOString() : nowIso();
  await db.insertInto('identity_token_keys').values({ id, secret: randomBytes(32).toString('base64'), created_at: createdAt }).execute();
}

/** Stages a new key and drops the oldest beyond KEEP_KEYS + 1; returns the new key's id. */
export async function rotateKeys(db: Db): Promise<number> {
  return db.transaction().execute(async (tx) => {
    const max = await tx.selectFrom('identity_token_keys').select((eb) => eb.fn.max('id').as('max')).executeTakeFirst();
    const next = Number(max?.max ?? 0) + 1;
    await insertKey(tx as unknown as Db, next);
    await tx.deleteFrom('identity_token_keys').where('id', '<=', next - (KEEP_KEYS + 1)).execute();
    return next;
  });
}
