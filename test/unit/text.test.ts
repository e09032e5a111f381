import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { shQuote, tailLines } from '../../src/common/text.ts';

test("console tails follow Nova's _tail_log: a trailing newline is an empty last line", () => {
  const log = 'one\ntwo\nthree\nfour\n';
  assert.equal(tailLines(log, 3), 'three\nfour\n');
  assert.equal(tailLines(log, 3).split('\n').length, 3, 'what Tempest counts');
  assert.equal(tailLines(log, 1), '');
  assert.equal(tailLines(log, 0), '');
  assert.equal(tailLines(log, 100), log);
  assert.equal(tailLines('no newline', 2), 'no newline');
});

test('shQuote: sh reads back exactly the word it was given', () => {
  for (const word of ['plain', "it's", 'a b', '$HOME', '`x`', '"q"', "''", '', 'back\\slash', 'new\nline']) {
    const r = spawnSync('/bin/sh', ['-c', `printf %s ${shQuote(word)}`], { encoding: 'utf8' });
    assert.equal(r.stdout, word);
  }
});
