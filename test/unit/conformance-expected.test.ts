// The lists of Tempest tests expected to fail (conformance/expected/) are what CI
// accepts; docs/conformance.md must show exactly them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { documents, parseList, readLists, render } from '../../conformance/expected-doc.ts';

test('docs/conformance.md renders conformance/expected/*.txt as they are (node conformance/expected-doc.ts --write)', () => {
  const { current, wanted } = documents();
  assert.equal(current, wanted);
});

test('every list parses: one tempest test id and a reason a line, no id twice; the three CI services have one', () => {
  const lists = readLists();
  assert.deepEqual(lists.map((l) => l.service).filter((s) => ['compute', 'identity', 'image'].includes(s)), ['compute', 'identity', 'image']);
  // compute-vm runs compute's API tests and the scenario tests (conformance/tempest/compute-vm-tests.txt)
  const modules: Record<string, string[]> = { 'compute-vm': ['api.compute', 'scenario'] };
  for (const l of lists) {
    const of = modules[l.service] ?? [`api.${l.service}`];
    for (const e of l.entries) {
      assert.ok(of.some((m) => new RegExp(`^tempest\\.${m.replace('.', '\\.')}\\.[\\w.]+$`).test(e.id)), `${l.file}: ${e.id} is a test of tempest.${of.join(' or tempest.')}`);
      assert.ok(e.reason.length >= 10, `${l.file}: ${e.id} has a reason`);
    }
  }
});

test('a list line without a reason, or an id listed twice, is refused', () => {
  assert.throws(() => parseList('tempest.api.compute.a.B.test_c\n', 'x.txt'), /x\.txt:1: want/);
  assert.throws(() => parseList('# c\ntempest.api.compute.a.B.test_c  why\ntempest.api.compute.a.B.test_c  again\n', 'x.txt'), /x\.txt:3: .* listed twice/);
  assert.deepEqual(parseList('# comment\n\ntempest.api.compute.a.B.test_c   no network service\n', 'x.txt'),
    [{ id: 'tempest.api.compute.a.B.test_c', reason: 'no network service' }]);
});

test('the rendering groups tests by reason, in the order the list first gives each', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'stratus-expected-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'compute.txt'), 'tempest.api.compute.a.B.test_1  reason one\ntempest.api.compute.a.B.test_2  reason two\ntempest.api.compute.a.C.test_3  reason one\n');
  const text = render(readLists(dir));
  assert.match(text, /- reason one \(2\):\n {2}- `compute\.a\.B\.test_1`\n {2}- `compute\.a\.C\.test_3`\n- reason two \(1\):/);
});
