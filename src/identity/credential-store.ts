// The /v3/credentials rows, with their blobs (EC2 and TOTP secrets) sealed at
// rest under the credential key set (credential-cipher.ts), as Keystone's
// credential provider keeps them: every row names the key it was sealed under
// by the key's hash. The set is shared through the database like the token
// keys; `stratus keys rotate --credential` stages a new key and re-seals every
// row under it in one transaction (Keystone's credential_rotate then
// credential_migrate), so the keys it drops are no longer used.
//
// The keys live in the same database as the rows: this keeps secrets out of
// anything that holds the credential rows without the key table (a query
// result, a log line, a partial export), not out of a full copy of the database.
import type { Db } from '../db/database.ts';
import { openBlob, sealBlob } from './credential-cipher.ts';
import { KeySet, KeyTable, rotateKeys, type Key } from './keys.ts';
import type { IdentityTables } from './schema.ts';

export type StoredCredential = IdentityTables['identity_credentials'];

/** A credential as the API sees it: the blob in clear. */
export interface Credential {
  id: string; user_id: string; project_id: string | null; type: string; blob: string; extra: string; created_at: string;
}

export class CredentialStore {
  // No promotion delay: a replica that meets a row sealed under a key it has
  // not loaded yet reloads the set (see key()).
  readonly keys = new KeySet(0, KeyTable.credential);
  private readonly db: Db;
  constructor(db: Db) {
    this.db = db;
  }

  load(): Promise<void> {
    return this.keys.load(this.db);
  }

  private async key(hash: string): Promise<Key> {
    let key = this.keys.withHash(hash);
    if (!key) {
      await this.load();
      key = this.keys.withHash(hash);
    }
    // A server fault (a key dropped while still in use, or a damaged row), not the caller's.
    if (!key) throw new Error(`credential key ${hash.slice(0, 12)} is unknown`);
    return key;
  }

  async open(row: StoredCredential): Promise<Credential> {
    const { encrypted_blob, key_hash, ...rest } = row;
    return { ...rest, blob: openBlob((await this.key(key_hash)).secret, row.id, encrypted_blob) };
  }

  openAll(rows: StoredCredential[]): Promise<Credential[]> {
    return Promise.all(rows.map((r) => this.open(r)));
  }

  /** The row to store for `c`, sealed under the primary key. */
  seal(c: Credential): StoredCredential {
    const { blob, ...rest } = c;
    const key = this.keys.primary();
    return { ...rest, encrypted_blob: sealBlob(key.secret, c.id, blob), key_hash: key.hash };
  }

  async get(id: string): Promise<Credential | undefined> {
    const row = await this.db.selectFrom('identity_credentials').selectAll().where('id', '=', id).executeTakeFirst();
    return row && this.open(row);
  }

  async insert(c: Credential): Promise<void> {
    await this.db.insertInto('identity_credentials').values(this.seal(c)).execute();
  }

  /** Stores `c` over the row with its id. */
  async update(c: Credential): Promise<void> {
    const { id, ...fields } = this.seal(c);
    await this.db.updateTable('identity_credentials').set(fields).where('id', '=', id).execute();
  }
}

/**
 * Stages a new credential key and re-seals every row under it, then drops the
 * keys beyond the kept set; returns the new key's id. A row that does not open
 * aborts the rotation (nothing is changed), so no key still in use is dropped.
 */
export function rotateCredentialKeys(db: Db): Promise<number> {
  return rotateKeys(db, KeyTable.credential, async (tx, next) => {
    const keys = new KeySet(0, KeyTable.credential);
    await keys.load(tx);
    const rows = await tx.selectFrom('identity_credentials').selectAll().where('key_hash', '!=', next.hash).execute();
    for (const r of rows) {
      const old = keys.withHash(r.key_hash);
      if (!old) throw new Error(`credential ${r.id} is sealed under an unknown key; nothing was rotated`);
      const blob = openBlob(old.secret, r.id, r.encrypted_blob);
      await tx.updateTable('identity_credentials').set({ encrypted_blob: sealBlob(next.secret, r.id, blob), key_hash: next.hash })
        .where('id', '=', r.id).execute();
    }
  });
}
