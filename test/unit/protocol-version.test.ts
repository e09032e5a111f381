// The agent protocol's versioning rule (src/fleet/version.ts): an agent one
// minor version older than the server keeps working (rolling upgrades:
// servers first); a different major, two minors behind, or newer than the
// server is refused with a message that says what is accepted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PROTOCOL_VERSION } from '../../src/fleet/protocol.ts';
import { protocolRefusal } from '../../src/fleet/version.ts';

test('the server accepts its own version and the minor before it', () => {
  assert.equal(protocolRefusal(PROTOCOL_VERSION), null);
  assert.equal(protocolRefusal('2.3', '2.3'), null);
  assert.equal(protocolRefusal('2.2', '2.3'), null, 'one minor older keeps working');
  assert.equal(protocolRefusal('2.0', '2.1'), null);
});

test('anything else is refused, saying why and what is accepted', () => {
  const cases: Array<[string | undefined, string, RegExp]> = [
    ['2.1', '2.3', /more than one minor version behind.*accepted: 2\.2 or 2\.3.*upgrade the agent/],
    ['2.4', '2.3', /newer than this server's 2\.3.*upgrade the server first/],
    ['1.9', '2.0', /different major.*accepted: 2\.0\).*upgrade the agent/],
    ['3.0', '2.0', /different major.*upgrade the server first/],
    [undefined, '2.0', /no known protocol version \(none given\)/],
    ['2', '2.0', /no known protocol version \("2"\)/],
    ['latest', '2.0', /no known protocol version/],
  ];
  for (const [agent, server, why] of cases) assert.match(protocolRefusal(agent, server) ?? 'accepted', why, `${agent} against ${server}`);
});
