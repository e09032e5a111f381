// The data plane's prefix sets: nft refuses overlapping intervals in one set,
// so a set holds each address once, a prefix swallows what it contains, and
// a host prefix is written as nft prints it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { prefixSet } from '../../src/agent/drivers/network/addr.ts';

test('prefixSet drops prefixes inside others, duplicates and the other IP version', () => {
  const got = prefixSet(['10.0.0.5', '10.0.0.0/24', '10.0.1.7/32', '10.0.1.7', '192.168.0.0/16', '192.168.3.0/24', 'fd00::1', 'nonsense'], 4);
  assert.deepEqual(got, ['10.0.0.0/24', '10.0.1.7', '192.168.0.0/16']);
  assert.deepEqual(prefixSet(['fd00::/64', 'fd00::1', 'fd00:0:0:1::1/128', '10.0.0.1'], 6), ['fd00:0:0:1::1', 'fd00::/64']);
});

test('prefixSet keeps a wide prefix listed after what it contains', () => {
  assert.deepEqual(prefixSet(['10.1.2.3', '10.1.0.0/16', '10.2.0.0/16', '10.0.0.0/8'], 4), ['10.0.0.0/8']);
  assert.deepEqual(prefixSet(['10.1.255.255', '10.2.0.0', '10.1.0.0/16'], 4), ['10.1.0.0/16', '10.2.0.0']);
});

test('prefixSet of 10 000 members keeps every distinct address', () => {
  const members = Array.from({ length: 10000 }, (_, i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
  const got = prefixSet([...members, ...members.slice(0, 100)], 4);
  assert.equal(got.length, 10000);
  assert.deepEqual(new Set(got), new Set(members));
});
