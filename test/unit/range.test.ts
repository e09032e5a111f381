// The one Range parser (src/http/range.ts), as swob reads Range headers:
// several ranges for Swift, one for S3, the registry and Glance.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRanges, singleRange } from '../../src/http/range.ts';

test('ranges: first-last, first-, -suffix, several, clipped to the size, end exclusive', () => {
  assert.deepEqual(parseRanges('bytes=0-4', 10), [{ start: 0, end: 5 }]);
  assert.deepEqual(parseRanges('bytes=5-', 10), [{ start: 5, end: 10 }]);
  assert.deepEqual(parseRanges('bytes=-3', 10), [{ start: 7, end: 10 }]);
  assert.deepEqual(parseRanges('bytes=-30', 10), [{ start: 0, end: 10 }]);
  assert.deepEqual(parseRanges('Bytes = 0-1, 8-20', 10), [{ start: 0, end: 2 }, { start: 8, end: 10 }]);
  // a satisfiable range among unsatisfiable ones is served
  assert.deepEqual(parseRanges('bytes=20-30,0-0', 10), [{ start: 0, end: 1 }]);
});

test('ranges: absent or not valid is the whole (null); valid but out of the size is unsatisfiable ([])', () => {
  for (const v of [undefined, '', 'items=0-1', 'bytes=', 'bytes=-', 'bytes=a-b', 'bytes=5-2']) assert.equal(parseRanges(v, 10), null, String(v));
  assert.equal(parseRanges(`bytes=${Array.from({ length: 51 }, (_, i) => `${i}-${i}`).join(',')}`, 100), null, 'more than 50 ranges are ignored');
  assert.deepEqual(parseRanges('bytes=10-', 10), []);
  assert.deepEqual(parseRanges('bytes=-0', 10), []);
  assert.deepEqual(parseRanges('bytes=0-', 0), []);
});

test('a single range: several are the whole, out of the size is unsatisfiable', () => {
  assert.deepEqual(singleRange('bytes=2-3', 10), { start: 2, end: 4 });
  assert.equal(singleRange('bytes=0-1,4-5', 10), null);
  assert.equal(singleRange('bytes=3-1', 10), null);
  assert.equal(singleRange(undefined, 10), null);
  assert.equal(singleRange('bytes=10-', 10), 'unsatisfiable');
});
