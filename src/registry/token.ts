// The registry's bearer tokens (Docker's token flow): what GET /v2/token
// grants, signed so that any replica can check it without a database read.
// A token is `base64url(JSON claims).base64url(HMAC-SHA256)` under a key kept
// in the database (registry_keys, made once by whichever replica starts
// first). The claims name the user and, per repository name as the client
// wrote it, the project it resolved to and the actions granted; never a
// password or a Keystone secret. Tokens live a few minutes: a role removed in
// Keystone stops counting once they expire.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Db } from '../db/database.ts';

export type Action = 'pull' | 'push' | 'delete';
export const ACTIONS: readonly Action[] = ['pull', 'push', 'delete'];

export interface Grant {
  /** The repository name as the client wrote it (`<project>/<path>`). */
  name: string;
  projectId: string;
  actions: Action[];
}

export interface RegistryClaims {
  /** The user id; null for an anonymous token (pull of public repositories only). */
  sub: string | null;
  /** The user name, for logs. */
  user: string | null;
  iat: number;
  exp: number;
  access: Grant[];
  /** Projects whose repositories /v2/_catalog lists (granted scope registry:catalog:*). */
  catalog?: string[];
}

/** Seconds a token lives (the spec's clients want at least 60). */
export const TOKEN_TTL = 300;

export class TokenSigner {
  private key: Buffer | undefined;

  /** Loads the key, making it first when no replica has (one row, insert-if-absent). */
  async load(db: Db): Promise<void> {
    const secret = randomBytes(32).toString('base64url');
    await db.insertInto('registry_keys').values({ name: 'token', secret, created_at: new Date().toISOString() })
      .onConflict((oc) => oc.column('name').doNothing()).execute();
    const row = await db.selectFrom('registry_keys').select('secret').where('name', '=', 'token').executeTakeFirstOrThrow();
    this.key = Buffer.from(row.secret, 'base64url');
  }

  private mac(payload: string): Buffer {
    if (!this.key) throw new Error('registry token key not loaded');
    return createHmac('sha256', this.key).update(payload).digest();
  }

  sign(claims: RegistryClaims): string {
    const payload = Buffer.from(JSON.stringify(claims)).toString('base64url');
    return `${payload}.${this.mac(payload).toString('base64url')}`;
  }

  /** The claims of a valid, unexpired token; null for anything else. */
  verify(token: string, now = Date.now()): RegistryClaims | null {
    const dot = token.indexOf('.');
    if (dot <= 0 || token.length > 64 * 1024) return null;
    const payload = token.slice(0, dot);
    const given = Buffer.from(token.slice(dot + 1), 'base64url');
    const want = this.mac(payload);
    if (given.length !== want.length || !timingSafeEqual(given, want)) return null;
    let claims: RegistryClaims;
    try {
      claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as RegistryClaims;
    } catch {
      return null;
    }
    if (typeof claims.exp !== 'number' || claims.exp * 1000 <= now || !Array.isArray(claims.access)) return null;
    return claims;
  }
}

/** One `scope` parameter entry: `repository:<name>:<actions>` or `registry:catalog:*`. */
export interface ScopeRequest { type: string; name: string; actions: string[] }

/** Parses the scope parameters (each space-separated entries); malformed entries are ignored, as the spec lets a server grant less. */
export function parseScopes(values: string[]): ScopeRequest[] {
  const out: ScopeRequest[] = [];
  for (const v of values) {
    for (const entry of v.split(' ')) {
      if (!entry) continue;
      const first = entry.indexOf(':');
      const last = entry.lastIndexOf(':');
      if (first <= 0 || last <= first) continue;
      out.push({ type: entry.slice(0, first), name: entry.slice(first + 1, last), actions: entry.slice(last + 1).split(',').filter(Boolean) });
    }
  }
  return out;
}
