// `stratus up`'s bare-metal provisioning network, made once through the
// network API: `baremetal`, shared, flat on the physical network mapped onto
// br-bm, one subnet with DHCP from .10 and no gateway; a second start (the
// marker) or a network of that name already there: nothing made.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { startCloud, type Cloud } from '../../harness.ts';
import { createProvisioningNetwork } from '../../../src/cli/default-networks.ts';
import { neutron, type NetCall } from './lib.ts';

let cloud: Cloud;
let call: NetCall;
before(async () => {
  cloud = await startCloud();
  call = neutron(cloud);
});
after(async () => {
  await cloud?.close();
});

test('the provisioning network on the first start, once', async () => {
  const o = { url: cloud.url, adminPassword: cloud.adminPassword, dataDir: cloud.dataDir, log: pino({ level: 'silent' }), physicalNetwork: 'baremetal', cidr: '172.24.8.0/24', host: '172.24.8.1' };
  assert.equal(await createProvisioningNetwork(o), true);
  assert.ok(existsSync(join(cloud.dataDir, 'baremetal-network-created')));
  const nets = (await call('GET', '/networks?name=baremetal')).body.networks;
  assert.equal(nets.length, 1);
  const n = nets[0];
  assert.equal(n.shared, true);
  assert.equal(n['provider:network_type'], 'flat');
  assert.equal(n['provider:physical_network'], 'baremetal');
  const s = (await call('GET', `/subnets?network_id=${n.id}`)).body.subnets[0];
  assert.equal(s.cidr, '172.24.8.0/24');
  assert.equal(s.gateway_ip, null);
  assert.equal(s.enable_dhcp, true);
  assert.deepEqual(s.allocation_pools, [{ start: '172.24.8.10', end: '172.24.8.250' }]);
  assert.equal(await createProvisioningNetwork(o), false, 'once');
  assert.equal((await call('GET', '/networks?name=baremetal')).body.networks.length, 1);
});
