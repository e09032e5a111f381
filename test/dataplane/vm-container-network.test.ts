// A runc container and a VM-isolated container on one tenant network, end to
// end through the compute API: an in-process server and agent with the
// network driver in its own host namespace (the VM-isolated container's qemu
// runs there, its port a tap on the network's bridge), the busybox image the
// plane imports, a flavor with stratus:kind=vm-container. Both go ACTIVE;
// the VM's guest leases its port's fixed IP by DHCP; the container pings the
// VM-isolated container and fetches its busybox httpd page (its host name);
// the VM-isolated container's user data fetches the container's page and
// pings it; a VM (stratus-tiny) on the same network answers both's pings; os-stop -> SHUTOFF and os-start -> ACTIVE; delete leaves no qemu
// or server directory. A VM left by a failed step is destroyed in t.after().
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { VmContainerDriver } from '../../src/agent/drivers/vm-container/driver.ts';
import { VmDriver } from '../../src/agent/drivers/vm/driver.ts';
import { buildTinyImage } from '../../src/agent/drivers/vm/guest/tiny-image.ts';
import { READY_MARKER } from '../../src/agent/drivers/vm/guest/scripts.ts';
import { serverNamespace, tapName } from '../../src/network/protocol.ts';
import { networkPlane, pingSoon, sh } from './network-lib.ts';
import { processAlive, skipUnlessRoot, sleep, waitConsole } from './lib.ts';

const hasQemu = ['/usr/bin', '/usr/local/bin'].some((d) => existsSync(join(d, 'qemu-system-x86_64')));
const skip = skipUnlessRoot || (hasQemu ? false : 'qemu-system-x86_64 is not installed');
/** How long to wait for the guest under TCG on a loaded box; not a timing assertion. */
const BOOT_WAIT_MS = 300_000;

test('a container and a VM-isolated container on the same network reach each other and a VM', { skip, timeout: 900_000 }, async (t) => {
  const servers: string[] = [];
  const tiny = await buildTinyImage();
  const { plane: p } = await networkPlane(t, 'vmcn');
  t.after(async () => {
    const d = new VmContainerDriver({ stateDir: p.stateDir, log: pino({ level: 'silent' }), fetchImage: async () => undefined });
    const v = new VmDriver({ stateDir: p.stateDir, log: pino({ level: 'silent' }), fetchImage: async () => undefined });
    for (const id of servers) {
      await d.destroy(id).catch(() => undefined);
      await v.destroy(id).catch(() => undefined);
    }
  });
  const neutron = (method: string, path: string, body?: unknown) => p.api(method, `/network/v2.0${path}`, body);
  const fl = await p.api('POST', '/compute/v2.1/flavors', { flavor: { name: `vmc-${p.hostname}`, ram: 128, vcpus: 1, disk: 0 } });
  assert.equal(fl.status, 200, JSON.stringify(fl.body));
  const spec = await p.api('POST', `/compute/v2.1/flavors/${fl.body.flavor.id}/os-extra_specs`, { extra_specs: { 'stratus:kind': 'vm-container' } });
  assert.equal(spec.status, 200, JSON.stringify(spec.body));
  const net = (await neutron('POST', '/networks', { network: { name: 'mixed' } })).body.network;
  assert.equal((await neutron('POST', '/subnets', { subnet: { network_id: net.id, cidr: '10.96.0.0/24', ip_version: 4 } })).status, 201);

  // the runc container first: the VM-isolated one's user data reaches for its address
  const ctr = await p.createServer({ name: 'ctr', networks: [{ uuid: net.id }] });
  servers.push(ctr);
  const ctrShown = await p.waitStatus(ctr, ['ACTIVE', 'ERROR'], 120_000);
  assert.equal(ctrShown.status, 'ACTIVE', JSON.stringify(ctrShown.fault ?? ctrShown));
  const ctrIp = ctrShown.addresses.mixed[0].addr as string;
  // a VM (stratus-tiny) on the same network
  const img = await p.api('POST', '/image/v2/images', { name: 'stratus-tiny', container_format: 'bare', disk_format: 'qcow2', visibility: 'public', min_disk: 1, min_ram: 64 });
  assert.equal(img.status, 201);
  const up = await fetch(`${p.cloud.url}/image/v2/images/${img.body.id}/file`, {
    method: 'PUT', headers: { 'x-auth-token': p.token, 'content-type': 'application/octet-stream' }, body: new Uint8Array(await fsp.readFile(tiny.disk)),
  });
  assert.equal(up.status, 204);
  const vmFlavor = await p.api('POST', '/compute/v2.1/flavors', { flavor: { name: `vm-${p.hostname}`, ram: 128, vcpus: 1, disk: 1 } });
  assert.equal(vmFlavor.status, 200);
  const vm = await p.createServer({ name: 'vm', imageRef: img.body.id, flavorRef: vmFlavor.body.flavor.id, networks: [{ uuid: net.id }] });
  servers.push(vm);
  const vmShown = await p.waitStatus(vm, ['ACTIVE', 'ERROR'], 300_000);
  assert.equal(vmShown.status, 'ACTIVE', JSON.stringify(vmShown.fault ?? vmShown));
  const vmIp = vmShown.addresses.mixed[0].addr as string;
  const script = [
    '#!/bin/sh',
    // busybox nc with a request (the static busybox's wget crashes resolving)
    `for i in $(seq 90); do r=$(printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 ${ctrIp} 80 2>/dev/null | tail -n 1); [ -n "$r" ] && { echo "vmc-reached-ctr: $r"; break; }; sleep 1; done`,
    `ping -c 1 -W 2 ${ctrIp} >/dev/null && echo vmc-pinged-ctr`,
    `for i in $(seq 240); do ping -c 1 -W 1 ${vmIp} >/dev/null 2>&1 && { echo vmc-pinged-vm; break; }; sleep 1; done`,
  ].join('\n');
  const vmc = await p.createServer({ name: 'vmc', imageRef: p.imageId, flavorRef: fl.body.flavor.id, networks: [{ uuid: net.id }], user_data: Buffer.from(`${script}\n`).toString('base64') });
  servers.push(vmc);
  const shown = await p.waitStatus(vmc, ['ACTIVE', 'ERROR'], 300_000);
  assert.equal(shown.status, 'ACTIVE', JSON.stringify(shown.fault ?? shown));
  const vmcIp = shown.addresses.mixed[0].addr as string;
  assert.match(vmcIp, /^10\.96\.0\.\d+$/);
  const [port] = (await neutron('GET', `/ports?device_id=${vmc}`)).body.ports;
  assert.equal(port['binding:vif_type'], 'tap');
  assert.equal(port['binding:host_id'], p.hostname);
  const dir = join(p.stateDir, 'vm-container', 'servers', vmc);
  const pid = Number((await fsp.readFile(join(dir, 'qemu.pid'), 'utf8')).trim());
  assert.ok(processAlive(pid));
  const argv = (await fsp.readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
  assert.ok(argv.some((a) => a.includes(`ifname=${tapName(port.id)}`) ) && argv.some((a) => a.includes(`mac=${port.mac_address}`)), 'qemu opens the port\'s tap with its MAC');

  // the guest leased the port's fixed IP (dnsmasq's host entry for its MAC); the image's init is up
  await waitConsole(p, vmc, new RegExp(`eth0 leased ${vmcIp.replace(/\./g, '\\.')}/`), BOOT_WAIT_MS);
  await waitConsole(p, vmc, /stratus-init: vmc is up/, BOOT_WAIT_MS);
  // container -> VM-isolated container: ping, and its httpd's page (its host name)
  const ns = serverNamespace(ctr);
  assert.ok(await pingSoon(ns, vmcIp, 10), 'the container pings the VM-isolated container');
  // (busybox nc with a request: the host's static busybox wget may crash resolving in a namespace)
  let page = '';
  for (let i = 0; i < 20 && !page; i++) {
    const r = await sh(ns, ['/bin/sh', '-c', `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | /bin/busybox nc -w 3 ${vmcIp} 80`]);
    page = r.code === 0 ? r.stdout.split(/\r?\n\r?\n/).slice(1).join('').trim() : '';
    if (!page) await sleep(1000);
  }
  assert.equal(page, 'vmc', 'the container fetched the VM-isolated container\'s page');
  // VM-isolated container -> container (its user data): the container's page, and a ping
  const text = await waitConsole(p, vmc, /vmc-reached-ctr: ctr/, 120_000);
  assert.ok(text.includes('vmc-reached-ctr: ctr'));
  await waitConsole(p, vmc, /vmc-pinged-ctr/, 30_000);
  // both reach the VM once its guest is up
  await waitConsole(p, vm, new RegExp(READY_MARKER), BOOT_WAIT_MS);
  assert.ok(await pingSoon(ns, vmIp, 10), 'the container pings the VM');
  await waitConsole(p, vmc, /vmc-pinged-vm/, 120_000);

  // power: stop (the image's stop signal, then off) and start
  let r = await p.api('POST', `/compute/v2.1/servers/${vmc}/action`, { 'os-stop': null });
  assert.equal(r.status, 202);
  assert.equal((await p.waitStatus(vmc, ['SHUTOFF', 'ERROR'], 180_000)).status, 'SHUTOFF');
  assert.equal(processAlive(pid), false);
  r = await p.api('POST', `/compute/v2.1/servers/${vmc}/action`, { 'os-start': null });
  assert.equal(r.status, 202);
  assert.equal((await p.waitStatus(vmc, ['ACTIVE', 'ERROR'], 180_000)).status, 'ACTIVE');
  const pid2 = Number((await fsp.readFile(join(dir, 'qemu.pid'), 'utf8')).trim());
  assert.ok(pid2 !== pid && processAlive(pid2));

  for (const id of [vmc, ctr, vm]) assert.equal((await p.api('DELETE', `/compute/v2.1/servers/${id}`)).status, 204);
  for (const id of [vmc, ctr, vm]) await p.waitGone(id, 120_000);
  assert.equal(processAlive(pid2), false, 'qemu is gone');
  assert.equal(existsSync(dir), false, 'the server directory is gone');
});
