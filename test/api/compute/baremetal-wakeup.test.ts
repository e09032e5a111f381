// The bare-metal driver's wake-ups (src/compute/engine/baremetal.ts kick):
// a wake-up for a host runs a pass when that host conducts a node, also one
// the driver's last pass did not see conduct any (a conductor that took a
// node over since). The engine's periodic pass is made rare here (an hour),
// so only the wake-up can start the build.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { until, useCloud } from '../../harness.ts';
import { ironic, provisioningNetwork, TestConductor } from '../baremetal/lib.ts';
import { adminNova, type Nova } from './lib.ts';

let old: TestConductor;
let imageId: string;
let nv: Nova;
const cloud = useCloud(async (c) => {
  old = new TestConductor(c, 'bm-wake-old');
  await old.register(['ipmi', 'redfish'], { address: '172.31.6.1', http_port: 8091, tftp: false });
  nv = await adminNova(c);
  await provisioningNetwork(c, 'bm-wake', '172.31.6.0/24');
  const img = await c.call('POST', '/image/v2/images', { token: c.adminToken, body: { name: 'bm-wake-disk', disk_format: 'raw', container_format: 'bare', visibility: 'public' } });
  imageId = img.body.id;
  const up = await fetch(`${c.url}/image/v2/images/${imageId}/file`, { method: 'PUT', headers: { 'X-Auth-Token': c.adminToken, 'Content-Type': 'application/octet-stream' }, body: Buffer.alloc(4096, 7) });
  assert.equal(up.status, 204);
}, { compute: { periodicMs: 3600_000 } });
const bm = () => ironic(cloud);
const node = async (n: string) => (await bm()('GET', `/v1/nodes/${n}`)).body;
const verb = (n: string, body: Record<string, unknown>) => bm()('PUT', `/v1/nodes/${n}/states/provision`, { body });


test('a server placed on a node that moved to a new conductor: the wake-up for that conductor deploys it at once', async () => {
  const r = await bm()('POST', '/v1/nodes', { body: { driver: 'ipmi', name: 'bmw-1', resource_class: 'bm-wake', driver_info: { ipmi_address: '192.0.2.60', ipmi_password: 'pw' }, properties: { cpus: 4, memory_mb: 8192, local_gb: 50 } } });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  const id = r.body.uuid as string;
  assert.equal((await bm()('POST', '/v1/ports', { body: { node_uuid: id, address: '52:54:00:d1:00:01' } })).status, 201);
  assert.equal((await verb(id, { target: 'manage' })).status, 202);
  await old.finish(id, 'succeeded');
  assert.equal((await verb(id, { target: 'provide' })).status, 202);
  await old.finish(id, 'succeeded');
  assert.equal((await node(id)).provision_state, 'available');
  // the old conductor gone for long, a new one takes the node over (no change of the node's states: no node event)
  const fresh = new TestConductor(cloud, 'bm-wake-new');
  await fresh.register(['ipmi', 'redfish'], { address: '172.31.6.2', http_port: 8091, tftp: false });
  await cloud.server.database.db.updateTable('baremetal_conductors').set({ last_seen_at: new Date(Date.now() - 3600_000).toISOString() }).where('hostname', '=', old.hostname).execute();
  await fresh.watch();
  assert.equal((await node(id)).conductor, fresh.hostname);

  const f = await nv.call('POST', '/flavors', { body: { flavor: { name: 'bm-wake', ram: 512, vcpus: 1, disk: 10 } } });
  assert.equal(f.status, 200, JSON.stringify(f.body));
  await nv.call('POST', `/flavors/${f.body.flavor.id}/os-extra_specs`, {
    body: { extra_specs: { 'resources:CUSTOM_BM_WAKE': '1', 'resources:VCPU': '0', 'resources:MEMORY_MB': '0', 'resources:DISK_GB': '0' } },
  });
  const s = await nv.call('POST', '/servers', { body: { server: { name: 'bm-wake', flavorRef: f.body.flavor.id, imageRef: imageId, networks: 'none' } }, version: '2.96' });
  assert.equal(s.status, 202, JSON.stringify(s.body));
  // placed on the node: the scheduler wakes the new conductor's host, and the driver deploys
  const n = await until('the node deploying', async () => { const x = await node(id); return x.provision_state === 'deploying' ? x : null; });
  assert.equal(n.instance_uuid, s.body.server.id);
  assert.equal((await fresh.spec(id)).spec.operation?.type, 'deploy');
});
