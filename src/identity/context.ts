// What every identity route module is given.
import type { Logger } from 'pino';
import type { Db } from '../db/database.ts';
import type { CatalogCache } from './catalog.ts';
import type { CredentialStore } from './credential-store.ts';
import type { IdentityReadCache } from './read-cache.ts';
import type { KeySet } from './keys.ts';
import type { Revocations } from './tokens/revocations.ts';

export interface IdentityConfig {
  /** Token lifetime in seconds (Keystone's [token] expiration). */
  tokenExpiration: number;
  /** How long past expiry a token still validates with allow_expired=1, in seconds. */
  allowExpiredWindow: number;
  /** Failed password attempts before a user is locked out; 0 turns lockout off. */
  lockoutFailureAttempts: number;
  /** Lockout length in seconds. */
  lockoutDuration: number;
  /** Days a password stays valid; 0 means forever. */
  passwordExpiresDays: number;
  /** A self-service password change may not reuse any of the user's last N passwords; 0 turns it off. */
  uniqueLastPasswordCount: number;
  /** How often revocations, keys and the catalog are re-read from the database, in ms. */
  syncIntervalMs: number;
}

export const defaultIdentityConfig: IdentityConfig = {
  tokenExpiration: 3600,
  allowExpiredWindow: 172800,
  lockoutFailureAttempts: 0,
  lockoutDuration: 1800,
  passwordExpiresDays: 0,
  uniqueLastPasswordCount: 0,
  syncIntervalMs: 1000,
};

export interface IdentityContext {
  db: Db;
  log: Logger;
  config: IdentityConfig;
  /** The token keys. */
  keys: KeySet;
  /** The /v3/credentials rows, sealed at rest under their own key set. */
  credentials: CredentialStore;
  revocations: Revocations;
  catalog: CatalogCache;
  cache: IdentityReadCache;
}
