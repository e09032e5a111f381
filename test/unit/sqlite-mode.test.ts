// The SQLite database holds password hashes and token keys: its files are the owner's only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { migrate, openDatabase } from '../../src/db/database.ts';

const mode = (path: string) => statSync(path).mode & 0o777;

test('a new SQLite database and its -wal and -shm files are created 0600, whatever the umask allows', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'stratus-sqlite-mode-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const old = process.umask(0o022);
  t.after(() => process.umask(old));
  const path = join(dir, 'stratus.db');
  const d = await openDatabase(path);
  try {
    await migrate(d.db);
    for (const file of [path, `${path}-wal`, `${path}-shm`]) {
      assert.ok(existsSync(file), `${file} exists while the database is open`);
      assert.equal(mode(file).toString(8), '600', file);
    }
  } finally {
    await d.close();
  }
});

test('a database file left 0644 (and its -wal) is narrowed to 0600 when opened', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'stratus-sqlite-mode-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'stratus.db');
  const first = await openDatabase(path);
  await migrate(first.db);
  await first.close();
  chmodSync(path, 0o644);
  writeFileSync(`${path}-wal`, '');
  chmodSync(`${path}-wal`, 0o644);
  const again = await openDatabase(path);
  try {
    await migrate(again.db);
    assert.equal(mode(path).toString(8), '600');
    assert.equal(mode(`${path}-wal`).toString(8), '600');
  } finally {
    await again.close();
  }
});
