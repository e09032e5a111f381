// The secret agents present (X-Stratus-Agent-Token): one for the whole cloud,
// kept in the database (fleet_secrets) so every replica accepts the same
// agents, and compared in constant time. Each replica also writes it to
// DATA_DIR/agent-token (mode 0600): the file the local agent of `stratus up`
// and `stratus agent --token-file` read.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nowIso } from '../common/ids.ts';
import type { Db } from '../db/database.ts';

const NAME = 'agent-token';
const MIN_LENGTH = 32;

/** DATA_DIR/agent-token's token, when it holds one. */
function fileToken(file: string): string | null {
  if (!existsSync(file)) return null;
  const t = readFileSync(file, 'utf8').trim();
  return t.length >= MIN_LENGTH ? t : null;
}

/**
 * The cloud's agent token. The first replica to start creates it; replicas
 * starting together each offer one and all keep the one stored first (insert
 * if absent, then read back). A token an older single server kept only in its
 * file is the one offered, so its agents keep working after the upgrade.
 */
export async function agentTokenFor(db: Db, dataDir: string): Promise<string> {
  const file = join(dataDir, NAME);
  const local = fileToken(file);
  const offered = local ?? randomBytes(32).toString('base64url');
  await db.insertInto('fleet_secrets').values({ name: NAME, secret: offered, created_at: nowIso() })
    .onConflict((oc) => oc.column('name').doNothing()).execute();
  const row = await db.selectFrom('fleet_secrets').select('secret').where('name', '=', NAME).executeTakeFirstOrThrow();
  if (row.secret !== local) writeFileSync(file, row.secret + '\n', { mode: 0o600 });
  return row.secret;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** A constant-time check of presented tokens against one secret. */
export function tokenChecker(token: string): (given: string | undefined) => boolean {
  const want = digest(token);
  return (given) => !!given && timingSafeEqual(digest(given), want);
}
