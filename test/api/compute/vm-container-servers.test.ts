// VM-isolated containers through the compute API (no agent: hosts registered
// by hand, as their agents would): `hw:isolation=vm` on the flavor or the
// image (or the flavor's older stratus:kind=vm-container) makes a container image's server a
// `vm-container` server, placed only on a host whose agent serves that kind,
// its ports taps; the same image with another flavor is a plain container; a
// disk image with that flavor is Nova's 400; the kind's descriptor decides
// its actions (pause accepted, suspend and createImage Nova's 409); a rebuild
// takes a container image and refuses a disk image; rows show kind and host.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useCloud, type Cloud } from '../../harness.ts';
import { create as createNet, neutron, type NetCall } from '../network/lib.ts';
import { PROTOCOL_VERSION } from '../../../src/fleet/protocol.ts';
import { tapName } from '../../../src/network/protocol.ts';
import { adminNova, agentCall, dockerArchive, image, type Nova, projectUser } from './lib.ts';

const VMC_HOST = `vmct-vmc-${process.pid}`;
const CTR_HOST = `vmct-ctr-${process.pid}`;
const KINDS = { network: [], port: [], security_group: [] };

let admin: Nova;
let alice: Nova;
let call: NetCall;
let diskImage: string;
let containerImage: string;
let vmcFlavor: string;
let ctrFlavor: string;

async function register(c: Cloud, host: string, server: string[]): Promise<void> {
  const r = await agentCall(c, 'PUT', host, {
    protocol: PROTOCOL_VERSION, kinds: { server, ...KINDS }, vcpus: 8, memory_mb: 8192, disk_gb: 100, version: '0.9.3', host_ip: '127.0.0.1',
    hypervisor: { type: 'QEMU', accel: 'tcg', version: '7.2.15' },
  });
  assert.equal(r.status, 200, await r.text());
}


const cloud: Cloud = useCloud(async (c) => {
  admin = await adminNova(c);
  alice = await projectUser(c);
  call = neutron(c);
  await register(c, VMC_HOST, ['container', 'vm', 'vm-container']);
  await register(c, CTR_HOST, ['container']);
  diskImage = await image(c, { name: 'vmct-disk', container_format: 'bare' }, Buffer.alloc(4096, 1));
  containerImage = await image(c, { name: 'vmct-busybox', container_format: 'docker' }, dockerArchive());
  // no disk: the VM's disk is made from the image
  vmcFlavor = (await admin.call('POST', '/flavors', { body: { flavor: { name: 'vmct.isolated', ram: 128, vcpus: 1, disk: 0 } } })).body.flavor.id as string;
  const spec = await admin.call('POST', `/flavors/${vmcFlavor}/os-extra_specs`, { body: { extra_specs: { 'stratus:kind': 'vm-container' } } });
  assert.equal(spec.status, 200, JSON.stringify(spec.body));
  ctrFlavor = (await admin.call('POST', '/flavors', { body: { flavor: { name: 'vmct.ctr', ram: 64, vcpus: 1, disk: 1 } } })).body.flavor.id as string;
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const db = () => cloud.server.database.db;

async function scheduled(id: string) {
  for (let i = 0; i < 400; i++) {
    const s = await db().selectFrom('compute_servers').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    if (s.task_state !== 'scheduling') return s;
    await sleep(25);
  }
  throw new Error(`server ${id} was never scheduled`);
}

async function handedSpec(host: string, id: string): Promise<any> {
  const r = await agentCall(cloud, 'POST', `${host}/watch`, { known: { server: {}, network: {}, port: {}, security_group: {} }, wait: 0 });
  assert.equal(r.status, 200);
  const body = await r.json() as { resources: Array<{ kind: string; id: string; spec: any }> };
  return body.resources.find((x) => x.kind === 'server' && x.id === id)?.spec;
}

async function server(body: Record<string, unknown>, active = false): Promise<{ id: string; host: string | null; kind: string }> {
  const r = await alice.call('POST', '/servers', { version: '2.37', body: { server: { name: 'vmct', imageRef: containerImage, flavorRef: vmcFlavor, networks: 'none', ...body } } });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  const id = r.body.server.id as string;
  const s = await scheduled(id);
  if (active) {
    const now = new Date().toISOString();
    await db().updateTable('compute_servers').set({ vm_state: 'active', task_state: null, power_state: 1, launched_at: now, updated_at: now }).where('id', '=', id).execute();
  }
  return { id, host: s.host, kind: s.kind };
}

test('a container image with a stratus:kind=vm-container flavor is a vm-container server on a host serving the kind; its port a tap', async () => {
  const net = await createNet(call, 'networks', 'network', { name: 'vmct-net' }, alice.token);
  await createNet(call, 'subnets', 'subnet', { network_id: net.id, cidr: '10.94.1.0/24', ip_version: 4 }, alice.token);
  // several, so that a host not serving the kind would have been picked by chance
  const made = [];
  for (let i = 0; i < 3; i++) made.push(await server({ networks: [{ uuid: net.id }] }));
  for (const s of made) {
    assert.equal(s.kind, 'vm-container');
    assert.equal(s.host, VMC_HOST, 'only the host serving vm-container servers takes them');
  }
  const [port] = (await call('GET', `/ports?device_id=${made[0]!.id}`)).body.ports as any[];
  assert.equal(port['binding:vif_type'], 'tap', 'a VM-isolated container\'s port is a tap on the network\'s bridge');
  const spec = await handedSpec(VMC_HOST, made[0]!.id);
  assert.equal(spec.kind, 'vm-container');
  assert.equal(spec.image.container_format, 'docker');
  assert.equal(spec.flavor.extraSpecs['stratus:kind'], 'vm-container');
  assert.deepEqual(spec.ports.map((p: any) => [p.id, p.device, p.index]), [[port.id, tapName(port.id), 0]]);
  // shown like any server: the flavor's extra spec names its kind (2.47+ embeds the flavor)
  const shown = await alice.call('GET', `/servers/${made[0]!.id}`, { version: '2.47' });
  assert.equal(shown.status, 200);
  assert.equal(shown.body.server.flavor.extra_specs['stratus:kind'], 'vm-container');
  assert.equal(shown.body.server.image.id, containerImage);

  // the same image with another flavor: a plain container
  const plain = await server({ flavorRef: ctrFlavor });
  assert.equal(plain.kind, 'container');
  for (const s of [...made, plain]) assert.equal((await alice.call('DELETE', `/servers/${s.id}`)).status, 204);
});

test('a disk image with the vm-container flavor is Nova\'s 400, so are volumes at boot', async () => {
  const r = await alice.call('POST', '/servers', { version: '2.37', body: { server: { name: 'vmct-bad', imageRef: diskImage, flavorRef: vmcFlavor, networks: 'none' } } });
  assert.equal(r.status, 400, JSON.stringify(r.body));
  assert.match(r.body.badRequest.message, /unacceptable: a vm-container server runs an image of container_format docker or oci, not bare/);
  const v = await alice.call('POST', '/servers', {
    version: '2.37', body: { server: { name: 'vmct-bad', imageRef: containerImage, flavorRef: vmcFlavor, networks: 'none',
      block_device_mapping_v2: [{ source_type: 'image', uuid: containerImage, boot_index: 0, destination_type: 'local' }, { source_type: 'blank', destination_type: 'volume', volume_size: 1, boot_index: -1 }] } },
  });
  assert.equal(v.status, 400, JSON.stringify(v.body));
  assert.equal(v.body.badRequest.message, 'Block device mappings of volumes are not supported for vm-container servers.');
});

test('the kind\'s descriptor decides its actions; a rebuild takes a container image only', async () => {
  const s = await server({}, true);
  const act = (body: unknown) => alice.call('POST', `/servers/${s.id}/action`, { body });
  for (const [name, body] of [['suspend', { suspend: null }], ['createImage', { createImage: { name: 'x' } }], ['shelve', { shelve: null }]] as const) {
    const r = await act(body);
    assert.equal(r.status, 409, `${name}: ${JSON.stringify(r.body)}`);
    assert.match(r.body.conflictingRequest.message, new RegExp(`'${name}'.*\\bvm-container server`));
  }
  assert.equal((await act({ pause: null })).status, 202);
  await db().updateTable('compute_servers').set({ vm_state: 'active', task_state: null }).where('id', '=', s.id).execute();
  const bad = await act({ rebuild: { imageRef: diskImage } });
  assert.equal(bad.status, 400, JSON.stringify(bad.body));
  assert.match(bad.body.badRequest.message, /unacceptable: a vm-container server/);
  const ok = await act({ rebuild: { imageRef: containerImage } });
  assert.equal(ok.status, 202, JSON.stringify(ok.body));
  assert.equal((await alice.call('DELETE', `/servers/${s.id}`)).status, 204);
});

test('hw:isolation=vm on the flavor or on the image makes a container image\'s server a vm-container; a disk image stays a VM; the spec takes only vm', async () => {
  const isolated = (await admin.call('POST', '/flavors', { body: { flavor: { name: 'vmct.hw-isolation', ram: 128, vcpus: 1, disk: 1 } } })).body.flavor.id as string;
  // Nova validates extra specs in its namespaces from 2.86: hw:isolation is known, with one value
  const bad = await admin.call('POST', `/flavors/${isolated}/os-extra_specs`, { version: '2.86', body: { extra_specs: { 'hw:isolation': 'yes' } } });
  assert.equal(bad.status, 400, JSON.stringify(bad.body));
  assert.equal(bad.body.badRequest.message, "Validation failed; value 'yes' for extra spec 'hw:isolation' is not one of: vm.");
  const spec = await admin.call('POST', `/flavors/${isolated}/os-extra_specs`, { version: '2.86', body: { extra_specs: { 'hw:isolation': 'vm' } } });
  assert.equal(spec.status, 200, JSON.stringify(spec.body));

  const byFlavor = await server({ flavorRef: isolated });
  assert.equal(byFlavor.kind, 'vm-container');
  assert.equal(byFlavor.host, VMC_HOST, 'only the host serving vm-container servers takes it');
  // a VM is isolated already: a disk image with that flavor is a plain VM
  const vm = await server({ imageRef: diskImage, flavorRef: isolated });
  assert.equal(vm.kind, 'vm');

  // the image's property does it with a flavor that says nothing
  const isolatedImage = await image(cloud, { name: 'vmct-busybox-isolated', container_format: 'docker', 'hw:isolation': 'vm' }, dockerArchive());
  const byImage = await server({ imageRef: isolatedImage, flavorRef: ctrFlavor });
  assert.equal(byImage.kind, 'vm-container');
  assert.equal(byImage.host, VMC_HOST);
  const spec2 = await handedSpec(VMC_HOST, byImage.id);
  assert.equal(spec2.kind, 'vm-container');

  // a plain container cannot be resized onto the isolating flavor: another kind of server
  const plain = await server({ flavorRef: ctrFlavor }, true);
  assert.equal(plain.kind, 'container');
  const resize = await alice.call('POST', `/servers/${plain.id}/action`, { body: { resize: { flavorRef: isolated } } });
  assert.equal(resize.status, 400, JSON.stringify(resize.body));
  assert.match(resize.body.badRequest.message, /No valid host/);
  for (const s of [byFlavor, vm, byImage, plain]) assert.equal((await alice.call('DELETE', `/servers/${s.id}`)).status, 204);
});
