// VM servers through the compute API (no agent: hosts registered by hand, as
// their agents would, so the scheduler places servers and their ports are
// bound there; the tests read what the hosts' agents are handed through the
// agent API's watch): a vm server's spec carries its ports in interface order
// and whether a config drive was asked for; its ports are taps (binding:vif_type
// `tap`), a container's veths (`bridge`); an action a kind cannot do is Nova's
// 409; a VM host's hypervisor shows in os-hypervisors; a flavor too small for
// the image is Nova's 400 and an image no host can run ends in ERROR
// (NoValidHost) with no claim on any host.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useCloud, type Cloud } from '../../harness.ts';
import { create as createNet, neutron, type NetCall } from '../network/lib.ts';
import { PROTOCOL_VERSION } from '../../../src/fleet/protocol.ts';
import { tapName } from '../../../src/network/protocol.ts';
import { adminNova, agentCall, dockerArchive, image, type Nova, projectUser, TempestSchemas } from './lib.ts';

const VM_HOST = `vmc-vm-${process.pid}`;
const CTR_HOST = `vmc-ctr-${process.pid}`;
const HYPERVISOR = { type: 'QEMU', accel: 'tcg', version: '7.2.15' } as const;
const KINDS = { network: [], port: [], security_group: [] };

let admin: Nova;
let alice: Nova;
let call: NetCall;
let diskImage: string;
let mandatoryDrive: string;
let containerImage: string;
let flavorId: string;
const schemas = new TempestSchemas();

/** Registers a host as its agent does (PUT /agent/v1/hosts/<name>). */
async function register(c: Cloud, host: string, server: string[], hypervisor?: Record<string, string>): Promise<void> {
  const r = await agentCall(c, 'PUT', host, {
    protocol: PROTOCOL_VERSION, kinds: { server, ...KINDS }, vcpus: 8, memory_mb: 8192, disk_gb: 100, version: '0.9.3', host_ip: '127.0.0.1',
    ...(hypervisor ? { hypervisor } : {}),
  });
  assert.equal(r.status, 200, await r.text());
}



const cloud: Cloud = useCloud(async (c) => {
  admin = await adminNova(c);
  alice = await projectUser(c);
  call = neutron(c);
  await register(c, VM_HOST, ['container', 'vm'], HYPERVISOR);
  await register(c, CTR_HOST, ['container']);
  diskImage = await image(c, { name: 'vm-disk', container_format: 'bare' }, Buffer.alloc(4096, 1));
  mandatoryDrive = await image(c, { name: 'vm-cd', container_format: 'bare', img_config_drive: 'mandatory' }, Buffer.alloc(4096, 1));
  containerImage = await image(c, { name: 'ctr', container_format: 'docker' }, dockerArchive());
  flavorId = (await admin.call('POST', '/flavors', { body: { flavor: { name: 'vmc', ram: 64, vcpus: 1, disk: 1 } } })).body.flavor.id as string;
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const db = () => cloud.server.database.db;
const portsOf = async (serverId: string) => (await call('GET', `/ports?device_id=${serverId}`)).body.ports as any[];

/** What a host's agent is handed now: kind -> id -> {version, spec}. */
async function handed(host: string): Promise<Map<string, Map<string, { version: number; spec: any }>>> {
  const r = await agentCall(cloud, 'POST', `${host}/watch`, { known: { server: {}, network: {}, port: {}, security_group: {} }, wait: 0 });
  assert.equal(r.status, 200);
  const body = await r.json() as { resources: Array<{ kind: string; id: string; version: number; spec: any }> };
  const out = new Map<string, Map<string, { version: number; spec: any }>>();
  for (const x of body.resources) {
    if (!out.has(x.kind)) out.set(x.kind, new Map());
    out.get(x.kind)!.set(x.id, { version: x.version, spec: x.spec });
  }
  return out;
}

/** Waits for the in-process scheduler's decision (placed, or ERROR). */
async function scheduled(id: string) {
  for (let i = 0; i < 400; i++) {
    const s = await db().selectFrom('compute_servers').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    if (s.task_state !== 'scheduling') return s;
    await sleep(25);
  }
  throw new Error(`server ${id} was never scheduled`);
}

/** A server of alice's, placed; ACTIVE when asked (no agent builds it here: the row says what one would report). */
async function server(body: Record<string, unknown>, active = false): Promise<{ id: string; host: string | null }> {
  const r = await alice.call('POST', '/servers', { version: '2.37', body: { server: { name: 'vmc', imageRef: diskImage, flavorRef: flavorId, ...body } } });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  const id = r.body.server.id as string;
  const s = await scheduled(id);
  if (active) {
    // what its agent would report once it runs
    const now = new Date().toISOString();
    await db().updateTable('compute_servers').set({ vm_state: 'active', task_state: null, power_state: 1, launched_at: now, updated_at: now }).where('id', '=', id).execute();
  }
  return { id, host: s.host };
}

async function network(name: string, cidr: string): Promise<string> {
  const net = await createNet(call, 'networks', 'network', { name }, alice.token);
  await createNet(call, 'subnets', 'subnet', { network_id: net.id, cidr, ip_version: 4 }, alice.token);
  return net.id as string;
}

test('a vm server: its spec carries its ports in interface order and config_drive.requested; its ports are taps', async () => {
  const n1 = await network('vmc-a', '10.93.1.0/24');
  const n2 = await network('vmc-b', '10.93.2.0/24');
  const vm = await server({ networks: [{ uuid: n2 }, { uuid: n1 }] }, true);
  assert.equal(vm.host, VM_HOST, 'only the VM host serves vm servers');

  const ports = await portsOf(vm.id);
  const onN2 = ports.find((p) => p.network_id === n2);
  const onN1 = ports.find((p) => p.network_id === n1);
  for (const p of ports) {
    assert.equal(p['binding:host_id'], VM_HOST);
    assert.equal(p['binding:vif_type'], 'tap', 'a VM\'s port is a tap');
  }
  const mtu = (await call('GET', `/networks/${n1}`)).body.network.mtu as number;

  let h = await handed(VM_HOST);
  const spec = h.get('server')!.get(vm.id)!.spec;
  assert.equal(spec.kind, 'vm');
  // in the order asked: eth0 on n2, eth1 on n1
  assert.deepEqual(spec.ports, [
    { id: onN2.id, mac_address: onN2.mac_address, device: tapName(onN2.id), mtu, index: 0 },
    { id: onN1.id, mac_address: onN1.mac_address, device: tapName(onN1.id), mtu, index: 1 },
  ]);
  assert.equal(spec.config_drive.requested, false);
  // the network kind hands each as a tap on its network's bridge
  assert.deepEqual(h.get('port')!.get(onN2.id)!.spec.vif, { type: 'tap', ifname: 'eth0' });
  assert.deepEqual(h.get('port')!.get(onN1.id)!.spec.vif, { type: 'tap', ifname: 'eth1' });

  // an attached interface is a new NIC: a new version of the server, its port a tap at the next index
  const before = h.get('server')!.get(vm.id)!.version;
  const att = await alice.call('POST', `/servers/${vm.id}/os-interface`, { body: { interfaceAttachment: { net_id: n1 } } });
  assert.equal(att.status, 200, JSON.stringify(att.body));
  const added = att.body.interfaceAttachment.port_id as string;
  assert.equal((await call('GET', `/ports/${added}`)).body.port['binding:vif_type'], 'tap');
  h = await handed(VM_HOST);
  const after = h.get('server')!.get(vm.id)!;
  assert.ok(after.version > before);
  assert.deepEqual(after.spec.ports.map((p: any) => [p.id, p.index]), [[onN2.id, 0], [onN1.id, 1], [added, 2]]);
  assert.deepEqual(h.get('port')!.get(added)!.spec.vif, { type: 'tap', ifname: 'eth2' });
  // detached: gone from the spec, the others keep their NICs
  assert.equal((await alice.call('DELETE', `/servers/${vm.id}/os-interface/${onN2.id}`)).status, 202);
  h = await handed(VM_HOST);
  assert.deepEqual(h.get('server')!.get(vm.id)!.spec.ports.map((p: any) => [p.id, p.index]), [[onN1.id, 1], [added, 2]]);

  // a config drive asked for, or required by the image (img_config_drive=mandatory)
  const asked = await server({ networks: 'none', config_drive: true });
  const required = await server({ networks: 'none', imageRef: mandatoryDrive });
  h = await handed(VM_HOST);
  assert.equal(h.get('server')!.get(asked.id)!.spec.config_drive.requested, true);
  assert.equal(h.get('server')!.get(required.id)!.spec.config_drive.requested, true);
  assert.deepEqual(h.get('server')!.get(asked.id)!.spec.ports, []);

  // a container's ports are veths (binding:vif_type bridge); its spec names none
  const ctr = await server({ networks: [{ uuid: n1 }], imageRef: containerImage });
  assert.ok(ctr.host === VM_HOST || ctr.host === CTR_HOST);
  const [cp] = await portsOf(ctr.id);
  assert.equal(cp['binding:vif_type'], 'bridge');
  h = await handed(ctr.host!);
  assert.equal(h.get('server')!.get(ctr.id)!.spec.kind, 'container');
  assert.equal(h.get('server')!.get(ctr.id)!.spec.ports, undefined);
  assert.deepEqual(h.get('port')!.get(cp.id)!.spec.vif, { type: 'veth', ifname: 'eth0' });

  for (const id of [vm.id, asked.id, required.id, ctr.id]) assert.equal((await alice.call('DELETE', `/servers/${id}`)).status, 204);
});

test('an action a kind cannot do is Nova\'s 409 naming the action and the kind; unknown actions stay 400', async () => {
  const vm = await server({ networks: 'none' }, true);
  const ctr = await server({ networks: 'none', imageRef: containerImage }, true);
  const act = (id: string, body: unknown, version?: string, who = alice) => who.call('POST', `/servers/${id}/action`, { body, version });
  const adminOnly = ['os-migrateLive'];
  // (a VM live-migrates: live-migration.test.ts)
  const unsupported: Array<[string, unknown, string[]]> = [
    ['os-migrateLive', { 'os-migrateLive': { host: null, block_migration: 'auto' } }, ['container']],
    ['changePassword', { changePassword: { adminPass: 'x' } }, ['vm', 'container']],
  ];
  for (const [kind, id] of [['vm', vm.id], ['container', ctr.id]] as const) {
    for (const [name, body, kinds] of unsupported) {
      if (!kinds.includes(kind)) continue;
      if (adminOnly.includes(name)) {
        // Nova's policy first: a member may not ask at all
        const denied = await act(id, body, '2.96');
        assert.equal(denied.status, 403, `${kind} ${name}`);
        assert.match(denied.body.forbidden.message, /^Policy doesn't allow os_compute_api:/);
      }
      const r = await act(id, body, '2.96', adminOnly.includes(name) ? admin : alice);
      assert.equal(r.status, 409, `${kind} ${name}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.conflictingRequest.code, 409);
      assert.match(r.body.conflictingRequest.message, new RegExp(`'${name}'.*\\b${kind} server`), `${kind} ${name}`);
    }
    // what the kind does is accepted (the admin sees it as a stop)
    const stop = await act(id, { 'os-stop': null });
    assert.equal(stop.status, 202, `${kind}: ${JSON.stringify(stop.body)}`);
  }
  // an action Nova does not know is still its 400
  const unknown = await act(vm.id, { frobnicate: null });
  assert.equal(unknown.status, 400);
  assert.match(unknown.body.badRequest.message, /There is no such action: frobnicate/);
  // remote consoles go by the kind's consoles (Nova's 400): a container has no VNC console, a VM no SPICE one
  const vnc = await alice.call('POST', `/servers/${ctr.id}/remote-consoles`, { version: '2.6', body: { remote_console: { protocol: 'vnc', type: 'novnc' } } });
  assert.equal(vnc.status, 400);
  assert.match(vnc.body.badRequest.message, /Unavailable console type novnc/);
  const spice = await alice.call('POST', `/servers/${vm.id}/remote-consoles`, { version: '2.6', body: { remote_console: { protocol: 'spice', type: 'spice-html5' } } });
  assert.equal(spice.status, 400);
  assert.match(spice.body.badRequest.message, /Unavailable console type spice-html5/);
  for (const id of [vm.id, ctr.id]) assert.equal((await alice.call('DELETE', `/servers/${id}`)).status, 204);
});

test('os-hypervisors: a VM host shows its hypervisor (type, QEMU version as Nova encodes it, cpu_info); a container host as before', async () => {
  const list = await admin.call('GET', '/os-hypervisors/detail');
  assert.equal(list.status, 200);
  schemas.add('v2_1.hypervisors', 'list_hypervisors_detail', list);
  const byName = (body: any) => new Map<string, any>(body.hypervisors.map((h: any) => [h.hypervisor_hostname, h]));
  const vmh = byName(list.body).get(VM_HOST);
  const ctrh = byName(list.body).get(CTR_HOST);
  assert.equal(vmh.hypervisor_type, 'QEMU');
  assert.equal(vmh.hypervisor_version, 7002015);
  assert.equal(JSON.parse(vmh.cpu_info).arch, 'x86_64');
  assert.equal(JSON.parse(vmh.cpu_info).topology.cores, 8);
  assert.equal(ctrh.hypervisor_type, 'runc');
  assert.equal(ctrh.hypervisor_version, 9003, 'a container host: the agent\'s version');

  const show = await admin.call('GET', `/os-hypervisors/${vmh.id}`);
  schemas.add('v2_1.hypervisors', 'get_hypervisor', show);
  assert.equal(show.body.hypervisor.hypervisor_type, 'QEMU');
  const v228 = await admin.call('GET', `/os-hypervisors/${vmh.id}`, { version: '2.28' });
  schemas.add('v2_28.hypervisors', 'get_hypervisor', v228);
  assert.equal(v228.body.hypervisor.cpu_info.arch, 'x86_64');
  const v253 = await admin.call('GET', `/os-hypervisors/detail?hypervisor_hostname_pattern=${VM_HOST}`, { version: '2.53' });
  schemas.add('v2_53.hypervisors', 'list_hypervisors_detail', v253);
  const uuid = v253.body.hypervisors[0].id as string;
  assert.equal(v253.body.hypervisors[0].hypervisor_version, 7002015);
  const v288 = await admin.call('GET', `/os-hypervisors/${uuid}`, { version: '2.88' });
  assert.equal(v288.status, 200);
  assert.equal(v288.body.hypervisor.hypervisor_type, 'QEMU');
  assert.equal(v288.body.hypervisor.hypervisor_version, 7002015);
  assert.equal(v288.body.hypervisor.cpu_info, undefined);
  assert.equal(v288.body.hypervisor.vcpus, undefined);
  const plain = await admin.call('GET', '/os-hypervisors');
  schemas.add('v2_1.hypervisors', 'list_search_hypervisors', plain);
  assert.ok(byName(plain.body).has(VM_HOST));
  const stats = await admin.call('GET', '/os-hypervisors/statistics');
  schemas.add('v2_1.hypervisors', 'get_hypervisor_statistics', stats);
  assert.ok(stats.body.hypervisor_statistics.count >= 2);

  // KVM once the agent's probe finds it working; a host that stops running VMs shows what it runs
  const vm = await server({ networks: 'none' }, true);
  assert.equal(vm.host, VM_HOST);
  assert.equal((await admin.call('GET', `/servers/${vm.id}/diagnostics`, { version: '2.48' })).body.hypervisor, 'qemu');
  await register(cloud, VM_HOST, ['container', 'vm'], { type: 'KVM', accel: 'kvm', version: '8.0' });
  assert.equal((await admin.call('GET', `/os-hypervisors/${uuid}`, { version: '2.88' })).body.hypervisor.hypervisor_type, 'KVM');
  assert.equal((await admin.call('GET', `/servers/${vm.id}/diagnostics`, { version: '2.48' })).body.hypervisor, 'kvm', 'libvirt\'s virt_type');
  assert.equal((await alice.call('DELETE', `/servers/${vm.id}`)).status, 204);
  assert.equal((await admin.call('GET', `/os-hypervisors/${uuid}`, { version: '2.88' })).body.hypervisor.hypervisor_version, 8000000);
  await register(cloud, VM_HOST, ['container']);
  assert.equal((await admin.call('GET', `/os-hypervisors/${uuid}`, { version: '2.53' })).body.hypervisor.hypervisor_type, 'runc');
  await register(cloud, VM_HOST, ['container', 'vm'], HYPERVISOR);
  assert.equal((await admin.call('GET', `/os-hypervisors/${uuid}`, { version: '2.53' })).body.hypervisor.hypervisor_type, 'QEMU');
  // the hypervisor must be one the protocol knows
  const bad = await agentCall(cloud, 'PUT', VM_HOST, {
    protocol: PROTOCOL_VERSION, kinds: { server: ['vm'], ...KINDS }, vcpus: 8, memory_mb: 8192, disk_gb: 100, version: '0.9.3', hypervisor: { type: 'Xen', accel: 'tcg' },
  });
  assert.equal(bad.status, 400);
  schemas.check();
});

test('bad input: a flavor too small for the image is Nova\'s 400; an image no host runs ends in ERROR (NoValidHost) with no claim', async () => {
  const n1 = await network('vmc-bad', '10.93.3.0/24');
  const countServers = async () => (await alice.call('GET', '/servers')).body.servers.length as number;
  const countPorts = async () => ((await call('GET', `/ports?network_id=${n1}`)).body.ports as any[]).filter((p) => !p.device_owner.startsWith('network:')).length;
  const servers0 = await countServers();
  const bigDisk = await image(cloud, { name: 'big-disk', container_format: 'bare', min_disk: 5 }, Buffer.alloc(4096, 1));
  const bigRam = await image(cloud, { name: 'big-ram', container_format: 'bare', min_ram: 1024 }, Buffer.alloc(4096, 1));
  const create = (imageRef: string) => alice.call('POST', '/servers', { version: '2.37', body: { server: { name: 'bad', imageRef, flavorRef: flavorId, networks: [{ uuid: n1 }] } } });
  const disk = await create(bigDisk);
  assert.equal(disk.status, 400);
  assert.equal(disk.body.badRequest.message, `Flavor's disk is too small for requested image. Flavor disk is ${1024 ** 3} bytes, minimum required by image is ${5 * 1024 ** 3} bytes.`);
  const ram = await create(bigRam);
  assert.equal(ram.status, 400);
  assert.equal(ram.body.badRequest.message, 'Flavor\'s memory is too small for requested image.');
  // an image whose img_config_drive is neither optional nor mandatory
  const badDrive = await image(cloud, { name: 'bad-drive', container_format: 'bare', img_config_drive: 'always' }, Buffer.alloc(4096, 1));
  const drive = await create(badDrive);
  assert.equal(drive.status, 400);
  assert.equal(drive.body.badRequest.message, 'Image\'s config drive option \'always\' is invalid');
  assert.equal(await countServers(), servers0, 'no server made');
  assert.equal(await countPorts(), 0, 'no port made');

  // no host runs VMs now: a vm server goes to ERROR with Nova's NoValidHost fault, claims nothing on any host and
  // binds nothing (its ports stay unbound until it is deleted); deleting it deletes its made port and frees the given one
  await register(cloud, VM_HOST, ['container']);
  try {
    const given = await createNet(call, 'ports', 'port', { network_id: n1 }, alice.token);
    const r = await alice.call('POST', '/servers', { version: '2.37', body: { server: { name: 'nowhere', imageRef: diskImage, flavorRef: flavorId, networks: [{ uuid: n1 }, { port: given.id }] } } });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    const id = r.body.server.id as string;
    assert.equal((await scheduled(id)).vm_state, 'error');
    const s = (await alice.call('GET', `/servers/${id}`)).body.server;
    assert.equal(s.status, 'ERROR');
    assert.equal(s.fault.code, 500);
    assert.match(s.fault.message, /^No valid host was found/);
    for (const p of await portsOf(id)) assert.equal(p['binding:host_id'], '', 'bound to no host');
    const allocs = await cloud.call('GET', `/placement/allocations/${id}`, { token: cloud.adminToken });
    assert.deepEqual(allocs.body.allocations, {}, 'no claim on any host');
    assert.equal((await alice.call('DELETE', `/servers/${id}`)).status, 204);
    assert.deepEqual((await portsOf(id)).map((p) => p.id), []);
    const freed = (await call('GET', `/ports/${given.id}`)).body.port;
    assert.equal(freed.device_id, '');
    assert.equal(await countPorts(), 1, 'only the given port is left');
    assert.equal((await call('DELETE', `/ports/${given.id}`, { token: alice.token })).status, 204);
    assert.equal(await countPorts(), 0);
  } finally {
    await register(cloud, VM_HOST, ['container', 'vm'], HYPERVISOR);
  }
});
