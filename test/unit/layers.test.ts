// Layers only depend downward: routes -> services -> store/drivers. Checked on
// the import statements of every source file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, dirname } from 'node:path';

const SRC = resolve(import.meta.dirname, '../../src');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:import|export)[^'"]*?from\s+'(\.[^']+)'|import\(\s*'(\.[^']+)'\s*\)/g)) {
    out.push(relative(SRC, resolve(dirname(file), (m[1] ?? m[2])!)));
  }
  return out;
}

/** What each layer may never import. */
const FORBIDDEN: Array<{ from: RegExp; to: RegExp; why: string }> = [
  { from: /^common\//, to: /^(?!common\/)/, why: 'common is the bottom layer' },
  { from: /^http\//, to: /^(?!(common|http)\/)/, why: 'the HTTP layer knows no service' },
  { from: /^db\//, to: /^(?!(db\/|common\/|[a-z]+\/schema\.ts$))/, why: 'the database layer knows only schemas' },
  { from: /^agent\//, to: /(^|\/)(routes|api)\/|^http\/server|^server\//, why: 'drivers never import routes' },
  { from: /^fleet\//, to: /^(?!(common|http|fleet)\/)/, why: 'the fleet knows no service: services register their resource kinds with it' },
  { from: /^agent\//, to: /^fleet\/(?!protocol\.ts$)/, why: 'the agent knows the fleet only by its wire protocol' },
  { from: /^(?!cli\/)/, to: /^cli\//, why: 'nothing imports the CLI' },
  { from: /^(?!(cli|server)\/)/, to: /^server\//, why: 'only the CLI starts servers' },
];

test('source layers depend only downward', () => {
  const violations: string[] = [];
  for (const f of files(SRC)) {
    const from = relative(SRC, f);
    for (const to of imports(f)) {
      for (const rule of FORBIDDEN) {
        if (rule.from.test(from) && rule.to.test(to)) violations.push(`${from} -> ${to}: ${rule.why}`);
      }
    }
  }
  assert.deepEqual(violations, []);
});
