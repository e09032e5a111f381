import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { capConsoleLog } from '../../src/agent/drivers/console-log.ts';

test('a console log over its cap keeps its newest half, from a line start; one under it is left alone', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'console-log-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'console.log');
  const lines = Array.from({ length: 100 }, (_, i) => `line ${String(i).padStart(3, '0')}\n`).join(''); // 9 bytes a line
  writeFileSync(file, lines);
  await capConsoleLog(file, 2000);
  assert.equal(readFileSync(file, 'utf8'), lines, 'under the cap');
  await capConsoleLog(file, 400);
  const kept = readFileSync(file, 'utf8');
  assert.ok(kept.length <= 200 && kept.length > 150, `${kept.length} bytes kept`);
  assert.match(kept, /^line \d{3}\n/);
  assert.ok(kept.endsWith('line 099\n'));
});
