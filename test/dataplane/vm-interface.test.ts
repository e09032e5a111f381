// os-interface on a VM server end to end: an in-process server and agent with
// the network driver in its own host namespace (the VM driver runs qemu
// there), the stratus-tiny image, a VM server on one network; an interface
// attached to the running server is hot-plugged (the same qemu holds the new
// port's tap open, the port goes ACTIVE), and detached it is unplugged (qemu
// lets go of the tap, the port Nova made is deleted). A VM left by a failed
// step is destroyed in t.after().
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { VmDriver } from '../../src/agent/drivers/vm/driver.ts';
import { buildTinyImage } from '../../src/agent/drivers/vm/guest/tiny-image.ts';
import { READY_MARKER } from '../../src/agent/drivers/vm/guest/scripts.ts';
import { tapName } from '../../src/network/protocol.ts';
import { networkPlane } from './network-lib.ts';
import { processAlive, skipUnlessRoot, sleep, waitConsole } from './lib.ts';

const hasQemu = ['/usr/bin', '/usr/local/bin'].some((d) => existsSync(join(d, 'qemu-system-x86_64')));
const skip = skipUnlessRoot || (hasQemu ? false : 'qemu-system-x86_64 is not installed');
/** How long to wait for the guest under TCG on a loaded box; not a timing assertion. */
const BOOT_WAIT_MS = 300_000;

async function until<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 120_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const v = await fn();
    if (v) return v;
    await sleep(250);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** The taps qemu `pid` holds open (/proc/<pid>/fdinfo of its /dev/net/tun fds name them). */
async function tapsOf(pid: number): Promise<Set<string>> {
  const out = new Set<string>();
  for (const fd of await fsp.readdir(`/proc/${pid}/fdinfo`).catch(() => [] as string[])) {
    const m = /^iff:\s*(\S+)/m.exec(await fsp.readFile(`/proc/${pid}/fdinfo/${fd}`, 'utf8').catch(() => ''));
    if (m) out.add(m[1]!);
  }
  return out;
}

test('os-interface on a VM server: attach hot-plugs a NIC into the running qemu, detach unplugs it', { skip, timeout: 900_000 }, async (t) => {
  const servers: string[] = [];
  const tiny = await buildTinyImage();
  const { plane: p } = await networkPlane(t, 'vmif');
  t.after(async () => {
    const d = new VmDriver({ stateDir: p.stateDir, log: pino({ level: 'silent' }), fetchImage: async () => undefined });
    for (const id of servers) await d.destroy(id).catch(() => undefined);
  });
  const neutron = (method: string, path: string, body?: unknown) => p.api(method, `/network/v2.0${path}`, body);
  const img = await p.api('POST', '/image/v2/images', { name: 'stratus-tiny', container_format: 'bare', disk_format: 'qcow2', visibility: 'public', min_disk: 1, min_ram: 64 });
  assert.equal(img.status, 201);
  const up = await fetch(`${p.cloud.url}/image/v2/images/${img.body.id}/file`, {
    method: 'PUT', headers: { 'x-auth-token': p.token, 'content-type': 'application/octet-stream' }, body: new Uint8Array(await fsp.readFile(tiny.disk)),
  });
  assert.equal(up.status, 204);
  const fl = await p.api('POST', '/compute/v2.1/flavors', { flavor: { name: `vmif-${p.hostname}`, ram: 128, vcpus: 1, disk: 1 } });
  assert.equal(fl.status, 200, JSON.stringify(fl.body));

  const net = (await neutron('POST', '/networks', { network: { name: 'vmif' } })).body.network;
  assert.equal((await neutron('POST', '/subnets', { subnet: { network_id: net.id, cidr: '10.97.0.0/24', ip_version: 4 } })).status, 201);
  const id = await p.createServer({ name: 'vmif', imageRef: img.body.id, flavorRef: fl.body.flavor.id, networks: [{ uuid: net.id }] });
  servers.push(id);
  const s = await p.waitStatus(id, ['ACTIVE', 'ERROR'], 180_000);
  assert.equal(s.status, 'ACTIVE', JSON.stringify(s.fault ?? s));
  const pid = Number((await fsp.readFile(join(p.stateDir, 'vm', 'servers', id, 'qemu.pid'), 'utf8')).trim());
  assert.ok(processAlive(pid));
  const [first] = (await neutron('GET', `/ports?device_id=${id}`)).body.ports;
  assert.deepEqual([...(await tapsOf(pid))], [tapName(first.id)]);
  // the guest is up (it acknowledges an unplug)
  await waitConsole(p, id, new RegExp(READY_MARKER), BOOT_WAIT_MS);

  const att = await p.api('POST', `/compute/v2.1/servers/${id}/os-interface`, { interfaceAttachment: { net_id: net.id } });
  assert.equal(att.status, 200, JSON.stringify(att.body));
  const portId = att.body.interfaceAttachment.port_id as string;
  await until('qemu holding the attached port\'s tap', async () => (await tapsOf(pid)).has(tapName(portId)));
  await until('the port ACTIVE', async () => (await neutron('GET', `/ports/${portId}`)).body.port.status === 'ACTIVE');
  assert.ok((await tapsOf(pid)).has(tapName(first.id)), 'the first NIC stays');

  assert.equal((await p.api('DELETE', `/compute/v2.1/servers/${id}/os-interface/${portId}`)).status, 202);
  await until('qemu letting go of the tap', async () => !(await tapsOf(pid)).has(tapName(portId)));
  await until('the port deleted', async () => (await neutron('GET', `/ports/${portId}`)).status === 404);
  assert.ok(processAlive(pid), 'the same qemu');
  assert.deepEqual([...(await tapsOf(pid))], [tapName(first.id)]);

  assert.equal((await p.api('DELETE', `/compute/v2.1/servers/${id}`)).status, 204);
  await p.waitGone(id, 120_000);
  assert.equal(processAlive(pid), false, 'qemu is gone');
  await until('the ports deleted', async () => !(await neutron('GET', `/ports?device_id=${id}`)).body.ports.length);
  assert.equal((await neutron('DELETE', `/networks/${net.id}`)).status, 204);
});
