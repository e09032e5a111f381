// The metadata service end to end: two container servers on one network (a
// real server, the real in-process agent, runc) ask
// http://169.254.169.254/ from their own network namespaces, through the
// haproxy in the network's DHCP namespace and the agent's relay, and each gets
// its own uuid, name, user data and EC2 instance id; a guest's header naming
// another address changes nothing, and a packet from another server's address
// does not leave its port (anti-spoofing). A killed haproxy comes back; once
// the servers and the network are gone, no haproxy, socket or address is left.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../src/agent/exec.ts';
import { haproxyPid, metadataSocket, stopDnsmasq, stopHaproxy } from '../../src/agent/drivers/network/dhcp.ts';
import { dhcpNamespace, serverNamespace } from '../../src/network/protocol.ts';
import { sh, shOk } from './network-lib.ts';
import { skipUnlessRoot, sleep, startPlane, type Plane } from './lib.ts';

async function until<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const v = await fn();
    if (v) return v;
    await sleep(200);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** busybox wget of the metadata service from inside a server's network namespace. */
async function wget(serverId: string, path: string, headers: string[] = []): Promise<{ code: number; out: string }> {
  const r = await run('ip', ['netns', 'exec', serverNamespace(serverId), 'timeout', '10', '/bin/busybox', 'wget', '-q', '-O-',
    ...headers.flatMap((h) => ['--header', h]), `http://169.254.169.254${path}`]);
  return { code: r.code ?? -1, out: r.stdout };
}

async function wgetOk(serverId: string, path: string, headers: string[] = []): Promise<string> {
  const r = await wget(serverId, path, headers);
  assert.equal(r.code, 0, `wget ${path} from ${serverId}`);
  return r.out;
}

test('metadata service: each server sees its own data through the DHCP namespace proxy; nothing left after delete', { skip: skipUnlessRoot, timeout: 300_000 }, async (t) => {
  const hostNs = `nm${randomBytes(3).toString('hex')}-host`;
  let plane: Plane | null = null;
  let networkId: string | null = null;
  t.after(async () => {
    // after a failure the network may still be up: its daemons go by their pid files
    if (plane && networkId) {
      const dir = join(plane.stateDir, 'network', 'dhcp', networkId);
      await stopHaproxy(dir);
      await stopDnsmasq(dir);
    }
    await plane?.cleanup();
    for (const ns of [hostNs, ...(networkId ? [dhcpNamespace(networkId)] : [])]) if (existsSync(`/run/netns/${ns}`)) await run('ip', ['netns', 'del', ns]);
  });
  await run('ip', ['netns', 'add', hostNs]);
  await sh(hostNs, ['ip', 'link', 'set', 'lo', 'up']);
  plane = await startPlane({ agent: 'inproc', network: { hostNetns: hostNs } });
  const p = plane;
  const neutron = (method: string, path: string, body?: unknown) => p.api(method, `/network/v2.0${path}`, body);

  const net = (await neutron('POST', '/networks', { network: { name: 'md' } })).body.network;
  networkId = net.id as string;
  assert.equal((await neutron('POST', '/subnets', { subnet: { network_id: net.id, cidr: '10.96.0.0/24', ip_version: 4 } })).status, 201);
  const names = ['alpha', 'beta'];
  const userData = names.map((n) => `#cloud-config\nhostname: ${n}\n`);
  const ids: string[] = [];
  for (const [i, name] of names.entries()) {
    ids.push(await p.createServer({ name, networks: [{ uuid: net.id }], user_data: Buffer.from(userData[i]!).toString('base64'), metadata: { role: name } }));
  }
  const servers: any[] = [];
  for (const id of ids) servers.push(await p.waitStatus(id, ['ACTIVE']));
  const ipOf = (s: any) => s.addresses.md[0].addr as string;
  for (const id of ids) {
    await until(`port of ${id} ACTIVE`, async () => (await neutron('GET', `/ports?device_id=${id}`)).body.ports[0]?.status === 'ACTIVE');
  }
  const dhcpDir = join(p.stateDir, 'network', 'dhcp', net.id);
  const firstPid = await until('the metadata haproxy running', () => haproxyPid(dhcpDir));
  // the container's route to the metadata address goes through the DHCP port
  const dhcpPort = (await neutron('GET', `/ports?network_id=${net.id}&device_owner=network:dhcp`)).body.ports[0];
  const route = await shOk(serverNamespace(ids[0]!), ['ip', 'route', 'show', '169.254.169.254']);
  assert.match(route, new RegExp(`via ${dhcpPort.fixed_ips[0].ip_address.replaceAll('.', '\\.')}`));

  const ec2Ids: string[] = [];
  for (const [i, id] of ids.entries()) {
    const md = JSON.parse(await until(`meta_data.json from ${names[i]}`, async () => (await wget(id, '/openstack/latest/meta_data.json')).out || null, 30_000));
    assert.equal(Object.keys(md)[0], 'uuid');
    assert.equal(md.uuid, id);
    assert.equal(md.name, names[i]);
    assert.deepEqual(md.meta, { role: names[i] });
    assert.equal(await wgetOk(id, '/openstack/latest/user_data'), userData[i]);
    const nd = JSON.parse(await wgetOk(id, '/openstack/latest/network_data.json'));
    assert.equal(nd.links.length, 1);
    assert.equal(nd.networks[0].network_id, net.id);
    const ec2 = await wgetOk(id, '/latest/meta-data/instance-id');
    assert.match(ec2, /^i-[0-9a-f]{8}$/);
    ec2Ids.push(ec2);
    assert.equal(await wgetOk(id, '/latest/meta-data/local-ipv4'), ipOf(servers[i]));
    assert.equal(await wgetOk(id, '/latest/user-data'), userData[i]);
    // what the guest says of itself is not heard: haproxy sets who asks
    const spoofed = JSON.parse(await wgetOk(id, '/openstack/latest/meta_data.json', [`X-Stratus-Metadata-Source: ${ipOf(servers[1 - i])}`, `X-Forwarded-For: ${ipOf(servers[1 - i])}`]));
    assert.equal(spoofed.uuid, id);
    assert.equal((await wget(id, '/openstack/latest/nothing-here')).code, 1);
  }
  assert.notEqual(ec2Ids[0], ec2Ids[1]);

  // a packet from beta's address out of alpha's port is dropped (anti-spoofing). Beta's address sits on
  // alpha's lo (the agent keeps eth0 to the spec) and the DHCP namespace is told beta's address is at
  // alpha's MAC, so without anti-spoofing alpha would be answered as beta.
  const a = serverNamespace(ids[0]!);
  const betaIp = ipOf(servers[1]);
  const alphaMac = (await neutron('GET', `/ports?device_id=${ids[0]}`)).body.ports[0].mac_address as string;
  const qdhcp = dhcpNamespace(net.id);
  const nsIf = `ns-${(dhcpPort.id as string).slice(0, 11)}`;
  await shOk(a, ['ip', 'addr', 'add', `${betaIp}/32`, 'dev', 'lo']);
  await shOk(qdhcp, ['ip', 'neigh', 'replace', betaIp, 'lladdr', alphaMac, 'dev', nsIf, 'nud', 'permanent']);
  const GET = `require('http').get({host:'169.254.169.254',path:'/openstack/latest/meta_data.json',localAddress:process.argv[1],timeout:3000},(r)=>{let d='';r.on('data',(c)=>d+=c);r.on('end',()=>{process.stdout.write(d);process.exit(0)})}).on('timeout',()=>process.exit(3)).on('error',()=>process.exit(4));`;
  const own = await run('ip', ['netns', 'exec', a, process.execPath, '-e', GET, ipOf(servers[0])], { timeoutMs: 15_000 });
  assert.equal(JSON.parse(own.stdout).uuid, ids[0], 'the same request from alpha\'s own address is answered');
  const spoof = await run('ip', ['netns', 'exec', a, process.execPath, '-e', GET, betaIp], { timeoutMs: 15_000 });
  assert.equal(spoof.code, 3, `a request from beta's address out of alpha's port was not dropped: ${spoof.code} ${spoof.stdout}`);
  await shOk(a, ['ip', 'addr', 'del', `${betaIp}/32`, 'dev', 'lo']);
  await shOk(qdhcp, ['ip', 'neigh', 'del', betaIp, 'dev', nsIf]);

  // the password: posted once, read back, a second post refused
  const post = await run('ip', ['netns', 'exec', a, 'timeout', '10', '/bin/busybox', 'wget', '-q', '-O-', '--post-data', 'c2VjcmV0', 'http://169.254.169.254/openstack/latest/password']);
  assert.equal(post.code, 0);
  assert.equal(await wgetOk(ids[0]!, '/openstack/latest/password'), 'c2VjcmV0');
  assert.equal(await wgetOk(ids[1]!, '/openstack/latest/password'), '');
  const again = await run('ip', ['netns', 'exec', a, 'timeout', '10', '/bin/busybox', 'wget', '-q', '-O-', '--post-data', 'other', 'http://169.254.169.254/openstack/latest/password']);
  assert.notEqual(again.code, 0);

  // a dead haproxy is started again by the agent's periodic pass
  process.kill(firstPid, 'SIGKILL');
  const secondPid = await until('haproxy restarted', async () => {
    const pid = await haproxyPid(dhcpDir);
    return pid && pid !== firstPid ? pid : null;
  });
  assert.equal(JSON.parse(await until('metadata after the restart', async () => (await wget(ids[1]!, '/openstack/latest/meta_data.json')).out || null, 30_000)).uuid, ids[1]);

  for (const id of ids) assert.equal((await p.api('DELETE', `/compute/v2.1/servers/${id}`)).status, 204);
  for (const id of ids) await p.waitGone(id);
  await until('the DHCP namespace gone from the host', async () => !existsSync(`/run/netns/${dhcpNamespace(net.id)}`));
  assert.equal(await haproxyPid(dhcpDir), null);
  const cmdline = await readFile(`/proc/${secondPid}/cmdline`, 'utf8').catch(() => '');
  assert.ok(!cmdline.includes('haproxy'), 'haproxy still running');
  assert.ok(!existsSync(metadataSocket(dhcpDir)), 'metadata socket left');
  assert.ok(!existsSync(dhcpDir), 'DHCP directory left');
  assert.equal((await neutron('DELETE', `/networks/${net.id}`)).status, 204);
});
