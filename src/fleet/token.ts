// The secret agents present (X-Stratus-Agent-Token): created on first start,
// kept in DATA_DIR/agent-token (mode 0600), compared in constant time.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export function agentTokenFor(dataDir: string): string {
  const file = join(dataDir, 'agent-token');
  if (existsSync(file)) {
    const t = readFileSync(file, 'utf8').trim();
    if (t.length >= 32) return t;
  }
  const t = randomBytes(32).toString('base64url');
  writeFileSync(file, t + '\n', { mode: 0o600 });
  return t;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** A constant-time check of presented tokens against one secret. */
export function tokenChecker(token: string): (given: string | undefined) => boolean {
  const want = digest(token);
  return (given) => !!given && timingSafeEqual(digest(given), want);
}
