// The network service's address arithmetic: parsing and canonical forms,
// CIDRs, host ranges, pools less a gateway, and SLAAC's EUI-64 addresses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalIp, eui64, formatCidr, formatIp, hostRange, inCidr, parseCidr, parseIp, subtract } from '../../src/network/ipnet.ts';

test('addresses: IPv4 and IPv6 parse to numbers and print canonically (RFC 5952)', () => {
  assert.equal(parseIp('10.0.0.1')!.value, 0x0a000001n);
  assert.equal(canonicalIp('2001:0db8:0000:0000:0000:0000:0000:0001'), '2001:db8::1');
  assert.equal(canonicalIp('2001:db8:0:1:0:0:0:1'), '2001:db8:0:1::1');
  assert.equal(canonicalIp('::'), '::');
  assert.equal(canonicalIp('::ffff:1.2.3.4'), '::ffff:102:304');
  assert.equal(canonicalIp('fe80::1%eth0'), null);
  assert.equal(canonicalIp('10.0.0.256'), null);
  assert.equal(canonicalIp('nope'), null);
});

test('CIDRs: strict host bits, ranges, membership', () => {
  assert.equal(parseCidr('10.0.0.1/24'), null);
  assert.equal(formatCidr(parseCidr('10.0.0.1/24', false)!), '10.0.0.0/24');
  assert.equal(parseCidr('10.0.0.0/33'), null);
  assert.equal(parseCidr('fd00::/129'), null);
  const c = parseCidr('10.0.0.0/24')!;
  assert.ok(inCidr(c, parseIp('10.0.0.255')!.value));
  assert.ok(!inCidr(c, parseIp('10.0.1.0')!.value));
  const h = hostRange(c)!;
  assert.deepEqual([h.first, h.last], [parseIp('10.0.0.1')!.value, parseIp('10.0.0.254')!.value]);
  const v6 = hostRange(parseCidr('fd00::/64')!)!;
  assert.equal(v6.first, parseIp('fd00::1')!.value);
  assert.equal(v6.last, parseIp('fd00::ffff:ffff:ffff:ffff')!.value);
});

test('a pool less its gateway splits around it', () => {
  const r = [{ first: 1n, last: 10n }];
  assert.deepEqual(subtract(r, 1n), [{ first: 2n, last: 10n }]);
  assert.deepEqual(subtract(r, 5n), [{ first: 1n, last: 4n }, { first: 6n, last: 10n }]);
  assert.deepEqual(subtract(r, 11n), r);
});

test('EUI-64 from a MAC flips the universal/local bit and inserts ff:fe', () => {
  const p = parseCidr('2001:db8::/64')!;
  assert.equal(formatIp(6, eui64(p, 'fa:16:3e:12:34:56')), '2001:db8::f816:3eff:fe12:3456');
  assert.equal(formatIp(6, eui64(p, '00:00:00:00:00:01')), '2001:db8::200:ff:fe00:1');
});
