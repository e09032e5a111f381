// Two hosts on one machine for the data-plane tests that move servers
// between them (migrate.test.ts, live-migrate.test.ts): the first host's
// agent in-process (its bridges and qemu in a namespace of the test), the
// second made by `stratus host add-local`'s library (a real `stratus agent`
// in its own namespace), a tiny VM image (stratus-tiny under TCG), a flavor
// for it and a tenant network with a group that lets pings in. qemu processes
// are killed by the pids their hosts recorded, and everything either host made
// is removed in the test's after(), also when a step fails.
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { run } from '../../src/agent/exec.ts';
import { buildTinyImage } from '../../src/agent/drivers/vm/guest/tiny-image.ts';
import { addLocalHost, localHostLayout, removeLocalHost, removeNetworking, type LocalHost } from '../../src/cli/local-host.ts';
import { dhcpNamespace } from '../../src/network/protocol.ts';
import { sh } from './network-lib.ts';
import { CLI, processAlive, skipUnlessRoot, startPlane, type Plane } from './lib.ts';
import { until } from '../harness.ts';

const hasQemu = ['/usr/bin', '/usr/local/bin'].some((d) => existsSync(join(d, 'qemu-system-x86_64')));
export const skip = skipUnlessRoot || (hasQemu ? false : 'qemu-system-x86_64 is not installed');
/** How long to wait for the guest under TCG on a loaded box; not a timing assertion. */
export const BOOT_WAIT_MS = 300_000;

/** The pid a host's VM driver recorded for a server, if its qemu runs. */
export function qemuPid(stateDir: string, id: string): number | null {
  try {
    const pid = Number(readFileSync(join(stateDir, 'vm', 'servers', id, 'qemu.pid'), 'utf8').trim());
    return pid > 0 && processAlive(pid) ? pid : null;
  } catch {
    return null;
  }
}

export interface HostPair {
  /** The cloud and host A (in-process agent, networking in namespace `nsA`). */
  p: Plane;
  nsA: string;
  /** Host B's name and its agent's state dir. */
  nameB: string;
  stateB: string;
  tag: string;
  /** The underlay: `peerIp` is A's end (its VXLAN endpoint), `hostIp` B's. */
  layout: ReturnType<typeof localHostLayout>;
  /** Servers whose qemu processes after() kills (by the pids either host recorded) should a step fail. */
  track(id: string): void;
  /** Notes the qemu pids the hosts recorded for the tracked servers now. */
  notePids(): void;
  /** Every qemu pid noted. */
  pids: Set<number>;
  /** Stops host B's agent (after() does otherwise). */
  stopB(): Promise<void>;
  log: Logger;
}

export interface TwoHosts extends HostPair {
  /** The tiny VM image, a flavor for it, a tenant network (cidr given) and a security group letting ICMP in. */
  vmImage: string; vmFlavor: string; net: { id: string; name: string }; sgName: string;
  neutron(method: string, path: string, body?: unknown): Promise<{ status: number; body: any; headers: Headers }>;
  /** One ping from the network's DHCP namespace (wherever a host of the network holds it). */
  ping(ip: string): Promise<boolean>;
  dhcpNs: string;
}

/**
 * Host A and host B (`prefix` + a random tag as B's name; the underlay a /30
 * of `underlayNet`.x.0/24), `bArgs` for B's agent; both agents running and
 * registered. Everything either made goes in the test's after().
 */
export async function startTwoHosts(t: TestContext, o: { prefix: string; bArgs?: string[]; underlayNet?: string }): Promise<HostPair> {
  const tag = randomBytes(3).toString('hex');
  const nsA = `${o.prefix}${tag}-a`;
  const nameB = `${o.prefix}${tag}`;
  const underlay = `${o.underlayNet ?? '10.251'}.${Math.floor(Math.random() * 256)}.${4 * Math.floor(Math.random() * 64)}/30`;
  const stateB = mkdtempSync(join(tmpdir(), `${o.prefix}${tag}-b-`));
  const layout = localHostLayout(nameB, { underlay, stateDir: stateB });
  const log = pino({ level: process.env.STRATUS_TEST_LOG ?? 'silent' });
  let plane: Plane | null = null;
  let hostB: LocalHost | null = null;
  const ids = new Set<string>();
  const pids = new Set<number>();
  const notePids = () => {
    for (const dir of [plane?.stateDir, stateB]) {
      for (const id of ids) {
        const pid = dir ? qemuPid(dir, id) : null;
        if (pid) pids.add(pid);
      }
    }
  };
  t.after(async () => {
    notePids();
    await hostB?.stop().catch(() => undefined);
    await removeLocalHost({ name: nameB, stateDir: stateB, log }).catch((err) => console.error('remove-local:', err));
    // what host A's agent made in its namespace (DHCP namespaces and dnsmasq are outside it) when the test failed half-way
    await plane?.stopAgent().catch(() => undefined);
    if (plane && existsSync(`/run/netns/${nsA}`)) await removeNetworking(plane.stateDir, nsA, log).catch((err) => console.error('host A networking:', err));
    for (const pid of pids) if (processAlive(pid)) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    await plane?.cleanup();
    if (existsSync(`/run/netns/${nsA}`)) await run('ip', ['netns', 'del', nsA]);
    rmSync(stateB, { recursive: true, force: true });
  });
  await run('ip', ['netns', 'add', nsA]);
  await sh(nsA, ['ip', 'link', 'set', 'lo', 'up']);
  // host A's VXLAN endpoint is its end of the underlay, which exists once host B does
  plane = await startPlane({ agent: 'none', network: { hostNetns: nsA, underlayIp: layout.peerIp } });
  const p = plane;
  hostB = await addLocalHost({
    name: nameB, server: [p.cloud.url], tokenFile: join(p.dataDir, 'agent-token'), underlay, stateDir: stateB, peerNetns: nsA,
    cli: CLI, log, execArgv: ['--disable-warning=ExperimentalWarning'], agentArgs: ['--log-level', process.env.STRATUS_TEST_LOG ?? 'warn', ...(o.bArgs ?? [])],
  });
  await p.startAgent('inproc');
  const db = p.cloud.server.database.db;
  await until('host B registered', async () => db.selectFrom('compute_hosts').select('hostname').where('hostname', '=', nameB).executeTakeFirst());
  return {
    p, nsA, nameB, stateB, tag, layout, pids, notePids, track: (id) => ids.add(id), log,
    stopB: async () => {
      await hostB?.stop();
      hostB = null;
    },
  };
}

/**
 * startTwoHosts (B's name must sort after A's `dp-…`, so the network's DHCP
 * stays on A while A holds a port of it), and the tiny VM image, a flavor
 * for it, a network on `cidr` and a group letting pings in.
 */
export async function twoHosts(t: TestContext, o: { prefix: string; cidr: string; bArgs?: string[] }): Promise<TwoHosts> {
  const tiny = await buildTinyImage();
  const pair = await startTwoHosts(t, o);
  const { p, tag } = pair;
  const img = await p.api('POST', '/image/v2/images', { name: 'stratus-tiny', container_format: 'bare', disk_format: 'qcow2', visibility: 'public', min_disk: 1, min_ram: 64 });
  assert.equal(img.status, 201);
  const up = await fetch(`${p.cloud.url}/image/v2/images/${img.body.id}/file`, {
    method: 'PUT', headers: { 'x-auth-token': p.token, 'content-type': 'application/octet-stream' }, body: new Uint8Array(await fsp.readFile(tiny.disk)),
  });
  assert.equal(up.status, 204);
  const fl = await p.api('POST', '/compute/v2.1/flavors', { flavor: { name: `${o.prefix}-${tag}`, ram: 128, vcpus: 1, disk: 1 } });
  const neutron = (method: string, path: string, body?: unknown) => p.api(method, `/network/v2.0${path}`, body);
  const net = (await neutron('POST', '/networks', { network: { name: o.prefix } })).body.network;
  assert.equal((await neutron('POST', '/subnets', { subnet: { network_id: net.id, cidr: o.cidr, ip_version: 4 } })).status, 201);
  // pings come from outside the server's groups: a group that lets them in
  const sg = (await neutron('POST', '/security-groups', { security_group: { name: `${o.prefix}-ping-${tag}` } })).body.security_group;
  assert.equal((await neutron('POST', '/security-group-rules', { security_group_rule: { security_group_id: sg.id, direction: 'ingress', protocol: 'icmp', ethertype: 'IPv4' } })).status, 201);
  const dhcpNs = dhcpNamespace(net.id);
  return {
    ...pair,
    vmImage: img.body.id, vmFlavor: fl.body.flavor.id, net, sgName: sg.name, neutron, dhcpNs,
    ping: async (ip) => existsSync(`/run/netns/${dhcpNs}`) && (await sh(dhcpNs, ['/bin/busybox', 'ping', '-c', '1', '-W', '2', ip], 10_000)).code === 0,
  };
}
