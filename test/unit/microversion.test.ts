import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Microversion, negotiate, outsideRange } from '../../src/http/microversion.ts';

test('negotiate: none asked is the lowest, latest the highest, a served X.Y itself', () => {
  assert.deepEqual(String((negotiate(null, '3.0', '3.67') as { ok: Microversion }).ok), '3.0');
  assert.deepEqual(String((negotiate(' Latest ', '3.0', '3.67') as { ok: Microversion }).ok), '3.67');
  assert.deepEqual(String((negotiate('3.10', '3.0', '3.67') as { ok: Microversion }).ok), '3.10');
});

test('negotiate: a malformed version (leading zeros, major 0, not X.Y) and one outside the range are told apart', () => {
  for (const bad of ['3.05', '0.5', '3', '3.x', '', '03.1']) assert.deepEqual(negotiate(bad, '3.0', '3.67'), { malformed: bad }, bad);
  assert.deepEqual(negotiate('3.68', '3.0', '3.67'), { unserved: '3.68' });
  assert.deepEqual(negotiate('2.99', '3.0', '3.67'), { unserved: '2.99' });
});

test('compare numerically (2.10 after 2.9); a route range is inclusive at both ends', () => {
  assert.ok(Microversion.of('2.10').ge('2.9'));
  assert.ok(Microversion.of('2.9').lt('2.10'));
  assert.equal(outsideRange(Microversion.of('2.9'), { min: '2.10' }), true);
  assert.equal(outsideRange(Microversion.of('2.10'), { min: '2.10', max: '2.10' }), false);
  assert.equal(outsideRange(Microversion.of('2.11'), { max: '2.10' }), true);
  assert.equal(outsideRange(Microversion.of('2.11')), false);
});
