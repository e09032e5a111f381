// A real busybox container (the container driver, runc) on a tenant network:
// its port's veth lands in the container's namespace, a server on the same
// network fetches its HTTP page once the security group opens port 80, and
// the container driver's destroy takes the veth with the namespace.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { ContainerDriver } from '../../src/agent/drivers/container/driver.ts';
import type { DesiredServer } from '../../src/compute/engine/protocol.ts';
import { busyboxTar, cleanStateDir } from './lib.ts';
import { env, hostLeftovers, networkSpec, pingSoon, portSpec, rule, sgSpec, sh, skipUnlessRoot } from './network-lib.ts';
import { tapName } from '../../src/network/protocol.ts';

test('a busybox container on a tenant network serves HTTP to its neighbour through its security group', { skip: skipUnlessRoot, timeout: 240_000 }, async (t) => {
  const e = env();
  const stateDir = mkdtempSync(join(tmpdir(), `${e.prefix}-ctr-`));
  const containers = new ContainerDriver({
    stateDir, log: pino({ level: 'silent' }),
    fetchImage: async (_id, dest) => fsp.writeFile(dest, await busyboxTar()),
  });
  const serverId = randomUUID();
  t.after(async () => {
    await containers.destroy(serverId).catch(() => undefined);
    await containers.stop();
    await cleanStateDir(stateDir);
    await e.cleanup();
  });
  await containers.start();
  const h = await e.host('h1');
  const net = randomUUID();
  await h.converge('network', net, networkSpec({ cidr: '10.80.0.0/24' }));
  const sgWeb = randomUUID(), sgOut = randomUUID();
  await h.converge('security_group', sgWeb, sgSpec([rule('ingress', { protocol: 'icmp' })]));
  await h.converge('security_group', sgOut, sgSpec([rule('egress')]));

  const d: DesiredServer = {
    id: serverId, version: 1, name: 'web', hostname: 'web-1', project_id: 'p1', user_id: 'u1', kind: 'container',
    image: { id: randomUUID(), name: 'busybox', status: 'active', container_format: 'docker', disk_format: 'raw', size: null, checksum: null },
    flavor: { id: 'f', name: 'f', vcpus: 1, ram: 64, disk: 0, ephemeral: 0, swap: 0, extraSpecs: {} },
    power: 'running', reboot_seq: 0, reboot_type: null, rebuild_seq: 0, vm_state: 'building', task_state: 'spawning', deleted: false,
    config_drive: { meta_data: {}, user_data: null, network_data: {}, vendor_data: {} },
  };
  const obs = await containers.converge(d);
  assert.equal(obs.state, 'active');
  const web = randomUUID();
  await h.converge('port', web, portSpec(net, serverId, '10.80.0.11', { security_group_ids: [sgWeb] }));
  const client = await e.server();
  await h.converge('port', randomUUID(), portSpec(net, client.id, '10.80.0.12', { security_group_ids: [sgOut] }));

  const get = async () => (await sh(client.ns, ['timeout', '5', '/bin/busybox', 'wget', '-qO-', 'http://10.80.0.11/'])).stdout.trim();
  assert.ok(await pingSoon(client.ns, '10.80.0.11'), 'icmp allowed');
  assert.equal(await get(), '', 'port 80 closed by the security group');
  await h.converge('security_group', sgWeb, sgSpec([rule('ingress', { protocol: 'icmp' }), rule('ingress', { protocol: 'tcp', port_range_min: 80, port_range_max: 80 })]));
  assert.match(await get(), /web-1/, 'the container answers with its hostname');

  // the server goes first (as Nova deletes): its namespace takes the veth with it; the port's destroy then finds nothing left
  await containers.destroy(serverId);
  const links = JSON.parse((await sh(h.ns, ['ip', '-j', 'link', 'show'])).stdout) as Array<{ ifname: string }>;
  assert.ok(!links.some((l) => l.ifname === tapName(web)), 'the veth went with the container');
  await h.destroy('port', web);
  for (const p of await h.list('port')) await h.destroy('port', p);
  for (const g of [sgWeb, sgOut]) await h.destroy('security_group', g);
  await h.destroy('network', net);
  await h.removeTables();
  assert.deepEqual(await hostLeftovers(h.ns, [net]), []);
});
