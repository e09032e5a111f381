import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ALL_KEYS, KeyedLock } from '../../src/common/keyed-lock.ts';

/** A promise and the functions that settle it. */
function deferred<T = void>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => { resolve = res; reject = rej; });
  return { promise, resolve, reject };
}

test('work under one key runs one at a time, in order, also after a failure; other keys are not held up', async () => {
  const lock = new KeyedLock();
  const events: string[] = [];
  const first = deferred();
  const second = deferred();
  const a1 = lock.run('a', async () => { events.push('a1 start'); await first.promise; events.push('a1 end'); return 1; });
  const a2 = lock.run('a', async () => { events.push('a2 start'); await second.promise; throw new Error('a2 failed'); });
  const a3 = lock.run('a', async () => { events.push('a3 run'); return 3; });
  // another key runs while 'a' is held
  assert.equal(await lock.run('b', async () => { events.push('b run'); return 'b'; }), 'b');
  assert.deepEqual(events, ['a1 start', 'b run']);
  assert.equal(lock.busy('a'), true);
  first.resolve();
  assert.equal(await a1, 1);
  second.resolve();
  await assert.rejects(a2, /a2 failed/);
  assert.equal(await a3, 3);
  assert.deepEqual(events, ['a1 start', 'b run', 'a1 end', 'a2 start', 'a3 run']);
  // the chain is forgotten once empty
  await new Promise((r) => setImmediate(r));
  assert.equal(lock.busy('a'), false);
  assert.equal(lock.busy('b'), false);
});

/** A step that runs until released; records when it started. */
function step(log: string[], name: string) {
  let release!: () => void;
  const gate = new Promise<void>((r) => { release = r; });
  return { fn: async () => { log.push(name); await gate; return name; }, release };
}
const settle = () => new Promise<void>((r) => setImmediate(r));

test('several keys at once; ALL_KEYS waits for every holder, holds every key, and is not overtaken', async () => {
  const lock = new KeyedLock();
  const log: string[] = [];
  const a1 = step(log, 'a1'), a2 = step(log, 'a2'), b = step(log, 'b'), all = step(log, 'all'), c = step(log, 'c'), ab = step(log, 'ab');
  const p = [lock.run('a', a1.fn), lock.run(['a'], a2.fn), lock.run('b', b.fn), lock.run(ALL_KEYS, all.fn), lock.run('c', c.fn), lock.run(['a', 'b'], ab.fn)];
  await settle();
  assert.deepEqual(log, ['a1', 'b'], 'a2 waits for a1; b runs beside it');
  assert.equal(lock.busy('c'), true, 'c waits behind ALL_KEYS');
  a1.release(); await settle();
  assert.deepEqual(log, ['a1', 'b', 'a2']);
  a2.release(); b.release(); await settle();
  assert.deepEqual(log, ['a1', 'b', 'a2', 'all'], 'c, though free, does not overtake the earlier ALL_KEYS');
  all.release(); await settle();
  assert.deepEqual(log, ['a1', 'b', 'a2', 'all', 'c', 'ab']);
  c.release(); ab.release();
  assert.deepEqual(await Promise.all(p), ['a1', 'a2', 'b', 'all', 'c', 'ab']);
  assert.equal(lock.busy(), false);
});
