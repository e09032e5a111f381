// conformance/tempest_results.py, as CI runs it on a Tempest run: a subunit
// stream written here (Debian's python3-subunit) read against a list of expected failures.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const SCRIPT = new URL('../../conformance/tempest_results.py', import.meta.url).pathname;
const PY_ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' };

type Status = 'success' | 'fail' | 'skip';

/** A subunit v2 stream of these results, each test started then ended with its status (and a traceback or skip reason). */
function stream(dir: string, results: Array<[string, Status]>): string {
  const path = join(dir, 'run.subunit');
  const r = spawnSync('/usr/bin/python3', ['-c', `
import json, subunit, sys
out = subunit.StreamResultToBytes(open(sys.argv[1], "wb"))
for test_id, status in json.load(sys.stdin):
    out.status(test_id=test_id, test_status="inprogress")
    detail = {"fail": "traceback", "skip": "reason"}.get(status)
    if detail:
        out.status(test_id=test_id, file_name=detail, file_bytes=("why " + test_id).encode(), mime_type="text/plain;charset=utf8", eof=True)
    out.status(test_id=test_id, test_status=status)
`, path], { input: JSON.stringify(results), env: PY_ENV, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return path;
}

function read(dir: string, subunit: string, list: string) {
  writeFileSync(join(dir, 'list.txt'), list);
  const r = spawnSync('/usr/bin/python3', [SCRIPT, subunit, join(dir, 'list.txt'), dir], { env: PY_ENV, encoding: 'utf8' });
  const lines = (name: string) => readFileSync(join(dir, name), 'utf8').split('\n').filter(Boolean);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, lines };
}

const ID = 'tempest.api.compute.t.C';

test('an unlisted failure fails; a listed one is expected and counted apart; a listed pass is reported, not failed', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'stratus-tempest-results-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const s = stream(dir, [
    [`${ID}.test_pass[id-1,smoke]`, 'success'],
    [`${ID}.test_listed_fail[id-2]`, 'fail'],
    [`${ID}.test_new_fail[id-3]`, 'fail'],
    [`${ID}.test_listed_pass[id-4]`, 'success'],
    [`${ID}.test_skip[id-5]`, 'skip'],
    [`setUpClass (${ID}Listed)`, 'fail'],
  ]);
  const r = read(dir, s, `# comment\n${ID}.test_listed_fail  no network service\n${ID}.test_listed_pass  was broken\n${ID}Listed.setUpClass  class set-up needs a network\n`);
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /\n2 passed, 1 failed, 1 skipped, 2 expected failures\n$/);
  assert.deepEqual(r.lines('failing.txt'), [`${ID}.test_new_fail`]);
  assert.deepEqual(r.lines('expected-failures.txt'), [`${ID}.test_listed_fail`, `${ID}Listed.setUpClass`]);
  assert.deepEqual(r.lines('now-passing.txt'), [`${ID}.test_listed_pass`]);
  assert.match(r.stdout, /1 listed tests now pass: remove them from /);
  assert.deepEqual(r.lines('skipped.txt'), [`${ID}.test_skip  why ${ID}.test_skip[id-5]`]);
  assert.ok(r.lines('failure-details.txt').includes(`=== ${ID}.test_listed_fail (expected)`));
});

test('only listed failures: the run passes', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'stratus-tempest-results-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const s = stream(dir, [[`${ID}.test_pass`, 'success'], [`${ID}.test_listed_fail`, 'fail']]);
  const r = read(dir, s, `${ID}.test_listed_fail  no network service\n`);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /^1 expected failures, as .*\n1 passed, 0 failed, 0 skipped, 1 expected failures\n$/);
});

test('a list line without a reason is refused (status 2); an empty stream fails', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'stratus-tempest-results-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const s = stream(dir, [[`${ID}.test_pass`, 'success']]);
  const bad = read(dir, s, `${ID}.test_pass\n`);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /list\.txt:1: want/);
  const empty = read(dir, stream(dir, []), '');
  assert.equal(empty.status, 1);
  assert.match(empty.stdout, /0 passed, 0 failed, 0 skipped, 0 expected failures\n$/);
});
