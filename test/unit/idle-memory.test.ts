import { mock, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { IdleMemory, type Collector } from '../../src/http/idle-memory.ts';

const MiB = 1024 * 1024;

test('collects once after the requests stop, and only when the heap grew', (t) => {
  // Mocked clock and timers: the test decides when time passes, so a busy machine cannot reorder it.
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
  const calls: unknown[] = [];
  let committed = 100 * MiB;
  const idle = new IdleMemory((o) => calls.push(o), { idleMs: 2000, minGrowthBytes: 4 * MiB, committed: () => committed });
  committed += 10 * MiB;
  for (let i = 0; i < 5; i++) {
    idle.noteActivity();
    t.mock.timers.tick(1500);
  }
  assert.equal(calls.length, 0, 'no collection while requests keep coming');
  t.mock.timers.tick(500);
  assert.deepEqual(calls, [{ type: 'major', flavor: 'last-resort', execution: 'sync' }], 'one memory-reducing collection once quiet for 2 s');
  t.mock.timers.tick(10_000);
  assert.equal(calls.length, 1, 'quiet time alone does not collect again');

  committed += 1 * MiB; // a trickle of requests that barely grows the heap
  idle.noteActivity();
  t.mock.timers.tick(5000);
  assert.equal(calls.length, 1, 'no collection for less growth than the threshold');

  committed += 5 * MiB;
  idle.noteActivity();
  t.mock.timers.tick(5000);
  assert.equal(calls.length, 2, 'the next burst that grows the heap is collected after');

  committed += 10 * MiB;
  idle.noteActivity();
  idle.stop();
  idle.noteActivity(); // a response completing during shutdown
  t.mock.timers.tick(5000);
  assert.equal(calls.length, 2, 'nothing after stop()');
});

test('collectNow collects at once, whatever the growth, and counts as the last collection', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
  const calls: unknown[] = [];
  let committed = 100 * MiB;
  const idle = new IdleMemory((o) => calls.push(o), { idleMs: 2000, minGrowthBytes: 4 * MiB, committed: () => committed });
  committed += 6 * MiB; // start-up
  idle.collectNow();
  assert.deepEqual(calls, [{ type: 'major', flavor: 'last-resort', execution: 'sync' }]);
  committed += 2 * MiB; // 8 MiB over the construction, 2 over the collection
  idle.noteActivity();
  t.mock.timers.tick(5000);
  assert.equal(calls.length, 1, 'growth is measured from the collectNow');
  idle.stop();
  idle.collectNow();
  assert.equal(calls.length, 1, 'nothing after stop()');
});

test('without a collector (Node run without --expose-gc) nothing is scheduled', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
  const committed = mock.fn(() => 0);
  const idle = new IdleMemory(undefined, { idleMs: 10, minGrowthBytes: -Infinity, committed });
  idle.noteActivity();
  t.mock.timers.tick(1000);
  assert.equal(committed.mock.callCount(), 1, 'only the constructor read the heap: no check ever ran');
});

test("V8's memory-reducing collection hands the pages of freed garbage back to the system", async () => {
  // The collector bin/stratus exposes with --expose-gc, reached here without the flag on the test runner.
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as Collector;
  // Old-generation garbage, as a burst of requests leaves it: ~40 MiB of objects that survived long enough to be promoted.
  // (Held in an object: a local that is never read again would be collected as dead at once.)
  const held: { burst: Array<{ i: number; s: string }> | null } = { burst: [] };
  for (let i = 0; i < 400_000; i++) held.burst!.push({ i, s: `request ${i} `.repeat(3) });
  gc({ type: 'major', flavor: 'last-resort', execution: 'sync' }); // promote it all
  const idle = new IdleMemory(gc, { idleMs: 20, minGrowthBytes: -Infinity });
  try {
    const before = { committed: getHeapStatistics().total_heap_size, rss: process.memoryUsage().rss };
    held.burst = null;
    idle.noteActivity();
    for (let i = 0; i < 200 && idle.collections === 0; i++) await sleep(25);
    assert.equal(idle.collections, 1);
    const after = { committed: getHeapStatistics().total_heap_size, rss: process.memoryUsage().rss };
    assert.ok(before.committed - after.committed > 20 * MiB, `committed heap ${before.committed / MiB} -> ${after.committed / MiB} MiB`);
    assert.ok(before.rss - after.rss > 20 * MiB, `RSS ${before.rss / MiB} -> ${after.rss / MiB} MiB`);
  } finally {
    idle.stop();
  }
});
