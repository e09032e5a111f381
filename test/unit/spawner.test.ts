// The agent's command runner (src/agent/exec.ts Spawner): a command past its
// deadline is killed with everything below it, and reported as a failure.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Spawner } from '../../src/agent/exec.ts';

/** True while `pid` is a live process (a zombie counts as gone). */
function alive(pid: number): boolean {
  try {
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^[ZX]$/.test(st.slice(st.lastIndexOf(')') + 2).split(' ')[0]!);
  } catch {
    return false;
  }
}

/** Waits (up to 10 s) for `pid` to end; false if it is still alive then. */
async function gone(pid: number): Promise<boolean> {
  for (let i = 0; i < 200 && alive(pid); i++) await new Promise((r) => setTimeout(r, 50));
  return !alive(pid);
}

test('a command past its deadline is killed, with its children, and reported', { timeout: 20_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'spawner-test-'));
  const sp = new Spawner(join(dir, 'runner'));
  try {
    const pids = join(dir, 'pids');
    // a command that never ends on its own, with a child of its own that never ends either
    const r = await sp.run('sh', ['-c', 'sleep 1000000 & echo $$ $! >"$0"; echo started >&2; wait', pids], { timeoutSec: 0.3 });
    assert.equal(r.signal, 'SIGKILL');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /^timed out after 0\.3 s: started/);
    const [shell, sleeper] = readFileSync(pids, 'utf8').trim().split(' ').map(Number);
    assert.ok(shell! > 0 && sleeper! > 0);
    // the job's shell waited for the command before reporting it
    assert.equal(alive(shell!), false, 'the command is gone');
    // its child was killed too (no longer anyone's child to wait for: looked at until gone, bounded)
    assert.ok(await gone(sleeper!), 'its child is gone');
    assert.deepEqual(readdirSync(join(dir, 'runner')), [], 'no stderr file left');
    // the runner still runs the next command
    const ok = await sp.run('sh', ['-c', 'exit 3']);
    assert.equal(ok.code, 3);
    assert.equal(ok.signal, null);
  } finally {
    sp.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a command within its deadline is not touched', async () => {
  const sp = new Spawner();
  try {
    const r = await sp.run('sh', ['-c', 'echo oops >&2; exit 4'], { timeoutSec: 60 });
    assert.deepEqual(r, { code: 4, signal: null, stdout: '', stderr: 'oops' });
  } finally {
    sp.close();
  }
});

