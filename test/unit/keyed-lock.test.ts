// The keyed lock: callers of one key run one at a time in arrival order,
// other keys run alongside, ALL_KEYS excludes every key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ALL_KEYS, KeyedLock } from '../../src/common/keyed-lock.ts';

/** A step that runs until released; records when it started. */
function step(log: string[], name: string) {
  let release!: () => void;
  const gate = new Promise<void>((r) => { release = r; });
  return { fn: async () => { log.push(name); await gate; return name; }, release };
}
const settle = () => new Promise<void>((r) => setImmediate(r));

test('one key: one at a time, in order; another key alongside; ALL_KEYS waits for all and holds all', async () => {
  const lock = new KeyedLock();
  const log: string[] = [];
  const a1 = step(log, 'a1'), a2 = step(log, 'a2'), b = step(log, 'b'), all = step(log, 'all'), c = step(log, 'c'), ab = step(log, 'ab');
  const p = [lock.run(['a'], a1.fn), lock.run(['a'], a2.fn), lock.run(['b'], b.fn), lock.run(ALL_KEYS, all.fn), lock.run(['c'], c.fn), lock.run(['a', 'b'], ab.fn)];
  await settle();
  assert.deepEqual(log, ['a1', 'b'], 'a2 waits for a1; b runs beside it');
  a1.release(); await settle();
  assert.deepEqual(log, ['a1', 'b', 'a2']);
  a2.release(); b.release(); await settle();
  assert.deepEqual(log, ['a1', 'b', 'a2', 'all'], 'c, though free, does not overtake the earlier ALL_KEYS');
  all.release(); await settle();
  assert.deepEqual(log, ['a1', 'b', 'a2', 'all', 'c', 'ab']);
  c.release(); ab.release();
  assert.deepEqual(await Promise.all(p), ['a1', 'a2', 'b', 'all', 'c', 'ab']);
  assert.equal(lock.busy, false);
});

test('a failing step releases its keys and its error reaches its caller', async () => {
  const lock = new KeyedLock();
  await assert.rejects(lock.run(['x'], async () => { throw new Error('boom'); }), /boom/);
  assert.equal(await lock.run(['x'], async () => 1), 1);
  assert.equal(lock.busy, false);
});
