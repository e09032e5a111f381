// Helpers of the network data-plane tests: "hosts" are network namespaces of
// their own (the driver's hostNetns: bridges, VXLAN, nft tables live there,
// never in the machine's root namespace), "servers" are plain namespaces
// named as the container driver names them (st-<id>), and specs are built
// here as the control plane would send them. Everything a test creates is
// recorded and removed by `cleanup()` (also after a failure), by name.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { startPlane, type Plane } from './lib.ts';
import { run, type RunResult } from '../../src/agent/exec.ts';
import { NetworkDriver, type NetworkDriverOptions } from '../../src/agent/drivers/network/driver.ts';
import { dnsmasqPid } from '../../src/agent/drivers/network/dhcp.ts';
import {
  bridgeName, dhcpNamespace, NETWORK_KIND, PORT_KIND, ROUTER_KIND, routerNamespace, SECURITY_GROUP_KIND, serverNamespace,
  type NetworkSpec, type PortSpec, type SecurityGroupRule, type SecurityGroupSpec,
} from '../../src/network/protocol.ts';

export const skipUnlessRoot = process.getuid?.() !== 0 ? 'data-plane tests run as root' : false;
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function sh(ns: string, cmd: string[], timeoutMs = 10_000): Promise<RunResult> {
  return run('nsenter', [`--net=/run/netns/${ns}`, ...cmd], { timeoutMs });
}

export async function shOk(ns: string, cmd: string[]): Promise<string> {
  const r = await sh(ns, cmd);
  if (r.code !== 0) throw new Error(`${cmd.join(' ')} in ${ns}: exit ${r.code}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** One ICMP echo from a namespace; true when answered. */
export async function ping(ns: string, ip: string, from?: string): Promise<boolean> {
  const r = await sh(ns, ['/bin/busybox', 'ping', '-c', '1', '-W', '1', ...(from ? ['-I', from] : []), ip]);
  return r.code === 0;
}

/** Pings until answered (ARP/FDB warm-up) up to `tries`; false when never. */
export async function pingSoon(ns: string, ip: string, tries = 3): Promise<boolean> {
  for (let i = 0; i < tries; i++) if (await ping(ns, ip)) return true;
  return false;
}

// reply `@peer`: the client's address as the listener sees it (NAT tests)
const LISTENER = `const s=require('net').createServer(c=>c.end((process.argv[2]==='@peer'?c.remoteAddress.replace(/^::ffff:/,''):process.argv[2])+'\\n'));s.listen(Number(process.argv[1]),()=>process.stdout.write('up\\n'));`;
const CLIENT = `const c=require('net').connect({host:process.argv[1],port:Number(process.argv[2]),timeout:1500});let d='';c.on('data',x=>d+=x);c.on('end',()=>{process.stdout.write(d);process.exit(0)});c.on('timeout',()=>process.exit(3));c.on('error',()=>process.exit(4));`;

export interface Env {
  prefix: string;
  stateDirs: string[];
  namespaces: string[];
  drivers: NetworkDriver[];
  children: ChildProcess[];
  host(name: string, underlayIp?: string, o?: Partial<NetworkDriverOptions>): Promise<NetworkDriver & { ns: string }>;
  /** A plain namespace standing for a server (the container driver's name). */
  server(): Promise<{ id: string; ns: string }>;
  listen(ns: string, port: number, reply: string): Promise<void>;
  cleanup(): Promise<void>;
}

/** TCP connect from a namespace; the reply line, or null when it timed out or was refused. */
export async function connect(ns: string, ip: string, port: number): Promise<string | null> {
  const r = await sh(ns, [process.execPath, '-e', CLIENT, ip, String(port)]);
  return r.code === 0 ? r.stdout.trim() : null;
}

export function env(): Env {
  const prefix = `nt${randomBytes(2).toString('hex')}`;
  const e: Env = {
    prefix, stateDirs: [], namespaces: [], drivers: [], children: [],
    async host(name, underlayIp = '192.0.2.1', o = {}) {
      const ns = `${prefix}-${name}`;
      await run('ip', ['netns', 'add', ns]);
      e.namespaces.push(ns);
      await sh(ns, ['ip', 'link', 'set', 'lo', 'up']);
      const stateDir = mkdtempSync(join(tmpdir(), `${prefix}-${name}-`));
      e.stateDirs.push(stateDir);
      // the tests' servers count as on the host: the namespaces their first ports made stay (cleanup removes them)
      const d = new NetworkDriver({ stateDir, hostNetns: ns, underlayIp, log: pino({ level: process.env.STRATUS_TEST_LOG ?? 'silent' }), serverHere: async () => true, ...o }) as NetworkDriver & { ns: string };
      d.ns = ns;
      e.drivers.push(d);
      await d.start();
      return d;
    },
    async server() {
      const id = randomUUID();
      const ns = serverNamespace(id);
      e.namespaces.push(ns);
      return { id, ns };
    },
    async listen(ns, port, reply) {
      const child = spawn('nsenter', [`--net=/run/netns/${ns}`, process.execPath, '-e', LISTENER, String(port), reply], { stdio: ['ignore', 'pipe', 'inherit'] });
      e.children.push(child);
      await new Promise<void>((resolve, reject) => {
        child.stdout!.once('data', () => resolve());
        child.once('exit', (c) => reject(new Error(`listener exited ${c}`)));
      });
    },
    async cleanup() {
      for (const c of e.children) if (c.exitCode === null && c.signalCode === null) process.kill(c.pid!, 'SIGKILL');
      for (const d of e.drivers) {
        for (const kind of [ROUTER_KIND, PORT_KIND, SECURITY_GROUP_KIND, NETWORK_KIND] as const) {
          for (const id of await d.list(kind).catch(() => [] as string[])) await d.destroy(kind, id).catch(() => undefined);
        }
        await d.removeTables().catch(() => undefined);
        await d.stop();
      }
      for (const ns of e.namespaces) if (existsSync(`/run/netns/${ns}`)) await run('ip', ['netns', 'del', ns]);
      for (const dir of e.stateDirs) await fsp.rm(dir, { recursive: true, force: true });
    },
  };
  return e;
}

// ---- specs

export function networkSpec(o: { cidr?: string; vni?: number; physical?: string; gateway?: string | null; dhcp?: { ip: string; hosts: Array<{ port_id: string; mac: string; ip: string; hostname: string }> } | null; peers?: Array<{ underlay_ip: string; macs: string[] }> } = {}): NetworkSpec {
  const cidr = o.cidr ?? '10.50.0.0/24';
  return {
    project_id: 'p1', name: 'net', admin_state_up: true,
    segmentation: o.physical ? { type: 'flat', vni: null, physical_network: o.physical } : { type: 'vxlan', vni: o.vni ?? 1000 + Math.floor(Math.random() * 100000), physical_network: null },
    mtu: o.physical ? 1500 : 1450,
    subnets: [{
      id: 'sub-1', name: 'sub', cidr, ip_version: 4, gateway_ip: o.gateway === undefined ? null : o.gateway, enable_dhcp: !!o.dhcp,
      dns_nameservers: [], host_routes: [], allocation_pools: [], ipv6_ra_mode: null, ipv6_address_mode: null,
    }],
    vxlan_peers: o.peers ?? [],
    dhcp: o.dhcp ? {
      port_id: randomUUID(), mac_address: randomMac(), fixed_ips: [{ subnet_id: 'sub-1', ip_address: o.dhcp.ip }],
      hosts: o.dhcp.hosts.map((h) => ({ port_id: h.port_id, mac_address: h.mac, ip_address: h.ip, subnet_id: 'sub-1', hostname: h.hostname })),
      dns_domain: 'openstacklocal.', lease_seconds: 86400,
    } : null,
    deleted: false,
  };
}

export function randomMac(): string {
  return `fa:16:3e:${[...randomBytes(3)].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;
}

export function portSpec(networkId: string, serverId: string, ip: string | null, o: Partial<PortSpec> & { prefixlen?: number; configure?: boolean } = {}): PortSpec {
  const { prefixlen = 24, configure = true, ...rest } = o;
  return {
    project_id: 'p1', network_id: networkId, mac_address: randomMac(), fixed_ips: ip ? [{ subnet_id: 'sub-1', ip_address: ip }] : [], mtu: 1450,
    admin_state_up: true, device_id: serverId, device_owner: 'compute:nova', vif: { type: 'veth', ifname: 'eth0' },
    port_security_enabled: true, security_group_ids: [], allowed_address_pairs: [],
    ip_config: { addresses: ip && configure ? [{ subnet_id: 'sub-1', ip_address: ip, prefixlen, ip_version: 4 }] : [], gateway4: null, gateway6: null, routes: [], dns_nameservers: [], dns_search: [] },
    deleted: false,
    ...rest,
  };
}

let ruleSeq = 0;
export function rule(direction: 'ingress' | 'egress', o: Partial<SecurityGroupRule> = {}): SecurityGroupRule {
  return {
    id: `r${String(++ruleSeq).padStart(4, '0')}`, direction, ethertype: 'IPv4', protocol: null, port_range_min: null, port_range_max: null,
    remote_ip_prefix: null, remote_group_id: null, remote_address_group_id: null, ...o,
  };
}

export function sgSpec(rules: SecurityGroupRule[], o: Partial<SecurityGroupSpec> = {}): SecurityGroupSpec {
  return { project_id: 'p1', name: 'sg', stateful: true, rules, remote_groups: {}, address_groups: {}, deleted: false, ...o };
}

/** What a host namespace still holds of the driver: bridges, taps, vxlan devices, our nft tables' chains; DHCP and router namespaces. */
export async function hostLeftovers(hostNs: string, networkIds: string[] = [], routerIds: string[] = []): Promise<string[]> {
  const out: string[] = [];
  const links = JSON.parse(await shOk(hostNs, ['ip', '-j', 'link', 'show'])) as Array<{ ifname: string }>;
  for (const l of links) if (/^(brq|tap|vx-)/.test(l.ifname)) out.push(`link ${l.ifname}`);
  const tables = await sh(hostNs, ['nft', 'list', 'tables']);
  for (const line of tables.stdout.split('\n').filter(Boolean)) out.push(line.trim());
  for (const id of networkIds) {
    if (existsSync(`/run/netns/${dhcpNamespace(id)}`)) out.push(`netns ${dhcpNamespace(id)}`);
    if (links.some((l) => l.ifname === bridgeName(id))) out.push(`bridge of ${id}`);
  }
  for (const id of routerIds) if (existsSync(`/run/netns/${routerNamespace(id)}`)) out.push(`netns ${routerNamespace(id)}`);
  return out;
}

export { dnsmasqPid };

/**
 * A whole plane (server and in-process agent) whose network driver keeps its
 * bridges and nft tables in a fresh host namespace; plane and namespace go
 * when the test ends, also after a failure.
 */
export async function networkPlane(t: { after(fn: () => Promise<void>): void }, tag: string): Promise<{ plane: Plane; hostNs: string }> {
  const hostNs = `${tag}${randomBytes(3).toString('hex')}-host`;
  let plane: Plane | null = null;
  t.after(async () => {
    await plane?.cleanup();
    if (existsSync(`/run/netns/${hostNs}`)) await run('ip', ['netns', 'del', hostNs]);
  });
  await run('ip', ['netns', 'add', hostNs]);
  await sh(hostNs, ['ip', 'link', 'set', 'lo', 'up']);
  plane = await startPlane({ agent: 'inproc', network: { hostNetns: hostNs } });
  return { plane, hostNs };
}
