// A port's extra DHCP options on the network's dnsmasq, as Ironic sets them
// for PXE: a client that is not iPXE gets the TFTP boot file (`tag:!ipxe,67`)
// and fetches it by TFTP from dnsmasq (Debian ipxe's undionly.kpxe); a client
// sending option 175 (iPXE) gets the HTTP script URL (`tag:ipxe,67`); a port
// without options gets neither; removing the options turns TFTP off.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync, rmSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { env, networkSpec, portSpec, randomMac, sh, skipUnlessRoot } from './network-lib.ts';
import { IPXE_DIR } from '../../src/agent/drivers/network/dhcp.ts';

const skip = skipUnlessRoot || (!existsSync(join(IPXE_DIR, 'undionly.kpxe')) && 'Debian ipxe is not installed');

test('extra DHCP options: PXE boot file by TFTP, the iPXE script URL for iPXE clients', { skip, timeout: 120_000 }, async (t) => {
  const e = env();
  const scratch = mkdtempSync(join(tmpdir(), `${e.prefix}-bmdhcp-`));
  t.after(async () => {
    await e.cleanup();
    rmSync(scratch, { recursive: true, force: true });
  });
  const script = join(scratch, 'lease.sh');
  writeFileSync(script, '#!/bin/sh\n[ "$1" = bound ] && echo "LEASE ip=$ip siaddr=$siaddr boot_file=$boot_file bootfile=$bootfile tftp=$tftp"\nexit 0\n', { mode: 0o755 });
  const lease = async (ns: string, ipxe: boolean) => (await sh(ns, [
    '/bin/busybox', 'udhcpc', '-i', 'eth0', '-n', '-q', '-f', '-t', '4', '-T', '1', '-O', 'bootfile', '-O', 'tftp', ...(ipxe ? ['-x', '0xaf:01'] : []), '-s', script,
  ], 20_000)).stdout;

  const h = await e.host('h1');
  const net = randomUUID();
  const bm = await e.server(), other = await e.server();
  const pBm = randomUUID(), pOther = randomUUID();
  const macBm = randomMac(), macOther = randomMac();
  const opts = [
    { opt_name: 'tag:ipxe,67', opt_value: 'http://10.61.0.1:6385/boot.ipxe', ip_version: 4 as const },
    { opt_name: 'tag:!ipxe,67', opt_value: 'undionly.kpxe', ip_version: 4 as const },
  ];
  const base = networkSpec({ cidr: '10.61.0.0/24', dhcp: { ip: '10.61.0.2', hosts: [] } });
  const specWith = (o: typeof opts) => ({
    ...base, dhcp: { ...base.dhcp!, hosts: [
      { port_id: pBm, mac_address: macBm, ip_address: '10.61.0.21', subnet_id: 'sub-1', hostname: 'bm', ...(o.length ? { extra_dhcp_opts: o } : {}) },
      { port_id: pOther, mac_address: macOther, ip_address: '10.61.0.22', subnet_id: 'sub-1', hostname: 'other' },
    ] },
  });
  await h.converge('network', net, specWith(opts));
  await h.converge('port', pBm, portSpec(net, bm.id, '10.61.0.21', { mac_address: macBm, configure: false, port_security_enabled: false }));
  await h.converge('port', pOther, portSpec(net, other.id, '10.61.0.22', { mac_address: macOther, configure: false, port_security_enabled: false }));
  const dir = join(e.stateDirs[0]!, 'network', 'dhcp', net);

  await t.test('a PXE client (no option 175) gets undionly.kpxe and the TFTP server, and fetches the file', async () => {
    const out = await lease(bm.ns, false);
    assert.match(out, /LEASE ip=10\.61\.0\.21 /, out);
    assert.match(out, /bootfile=undionly\.kpxe|boot_file=undionly\.kpxe/, out);
    const siaddr = /siaddr=(\S*)/.exec(out)?.[1];
    assert.equal(siaddr, '10.61.0.2', out);
    await sh(bm.ns, ['ip', 'addr', 'add', '10.61.0.21/24', 'dev', 'eth0']);
    const dest = join(scratch, 'undionly.kpxe');
    const r = await sh(bm.ns, ['/bin/busybox', 'tftp', '-g', '-r', 'undionly.kpxe', '-l', dest, siaddr!], 20_000);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(readFileSync(dest), readFileSync(join(IPXE_DIR, 'undionly.kpxe')));
    await sh(bm.ns, ['ip', 'addr', 'flush', 'dev', 'eth0']);
  });

  await t.test('an iPXE client (option 175) gets the HTTP script URL', async () => {
    const out = await lease(bm.ns, true);
    assert.match(out, /bootfile=http:\/\/10\.61\.0\.1:6385\/boot\.ipxe/, out);
  });

  await t.test('a port without options gets no boot file', async () => {
    const out = await lease(other.ns, false);
    assert.match(out, /LEASE ip=10\.61\.0\.22 /, out);
    assert.doesNotMatch(out, /kpxe|boot\.ipxe/, out);
  });

  await t.test('options removed: no boot file, TFTP off and its root gone', async () => {
    const r = await h.converge('network', net, specWith([]));
    assert.ok(r.changes.includes('dnsmasq started'), r.changes.join('; '));
    assert.ok(!readFileSync(join(dir, 'args'), 'utf8').includes('--enable-tftp'));
    assert.ok(!existsSync(join(dir, 'tftp')));
    assert.doesNotMatch(await lease(bm.ns, false), /kpxe/);
  });

  for (const p of [pBm, pOther]) await h.destroy('port', p);
  await h.destroy('network', net);
  await h.removeTables();
});
