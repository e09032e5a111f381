// A network's DHCP (and DNS for its hostnames) on this host: one dnsmasq per
// network, in its own namespace qdhcp-<network id>, on a veth whose other end
// is a port of the network's bridge (Neutron's dhcp agent, one namespace per
// network). Static entries only (--dhcp-range=...,static + a hosts file): a
// MAC not listed gets no lease. When the hosts, addn-hosts (names for DNS) or
// options files change, they are rewritten and dnsmasq restarted (not SIGHUP:
// see convergeDhcp). It is tracked by its pid file and restarted when dead.
//
// Files under <state>/network/dhcp/<network id>/: hosts, addn_hosts, opts,
// pid, args (the command line it runs with), log.
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import type { DhcpSpec, NetworkSpec, SubnetSpec } from '../../../network/protocol.ts';
import { dhcpIfName, dhcpNamespace, tapName } from '../../../network/protocol.ts';
import { parsePrefix, prefixLength } from './addr.ts';
import { exists, NETNS_DIR, type HostNet } from './host.ts';

export interface DhcpResult { changes: string[] }

const V4_MASK = (len: number) => [24, 16, 8, 0].map((s) => String(((len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0) >>> s) & 0xff)).join('.');

function dhcpSubnets(spec: NetworkSpec): SubnetSpec[] {
  return spec.subnets.filter((s) => s.enable_dhcp && (s.ip_version === 4 || s.ipv6_address_mode === 'dhcpv6-stateful' || s.ipv6_address_mode === 'dhcpv6-stateless'));
}

const tagOf = (i: number) => `s${i}`;

/** dnsmasq's command line for a network (without the namespace wrapper). */
export function dnsmasqArgs(dir: string, spec: NetworkSpec, dhcp: DhcpSpec): string[] {
  const args = [
    '--conf-file=/dev/null', '--no-hosts', '--no-resolv', '--strict-order', '--bind-interfaces', `--interface=${dhcpIfName(dhcp.port_id)}`, '--except-interface=lo',
    `--pid-file=${join(dir, 'pid')}`, `--dhcp-hostsfile=${join(dir, 'hosts')}`, `--addn-hosts=${join(dir, 'addn_hosts')}`, `--dhcp-optsfile=${join(dir, 'opts')}`,
    `--log-facility=${join(dir, 'log')}`, '--leasefile-ro', '--dhcp-authoritative', '--user=root', '--group=root',
    `--domain=${dhcp.dns_domain.replace(/\.$/, '')}`, `--local=/${dhcp.dns_domain.replace(/\.$/, '')}/`,
  ];
  dhcpSubnets(spec).forEach((s, i) => {
    const p = parsePrefix(s.cidr);
    if (!p) return;
    const net = s.cidr.split('/')[0]!;
    args.push(s.ip_version === 4
      ? `--dhcp-range=set:${tagOf(i)},${net},static,${V4_MASK(p.len)},${dhcp.lease_seconds}s`
      : `--dhcp-range=set:${tagOf(i)},${net},static,${p.len},${dhcp.lease_seconds}s`);
  });
  return args;
}

export function hostsFile(spec: NetworkSpec, dhcp: DhcpSpec): string {
  const subnets = dhcpSubnets(spec);
  const lines: string[] = [];
  for (const h of dhcp.hosts) {
    const i = subnets.findIndex((s) => s.id === h.subnet_id);
    if (i < 0) continue;
    const ip = h.ip_address.includes(':') ? `[${h.ip_address}]` : h.ip_address;
    lines.push(`${h.mac_address},set:${tagOf(i)},${ip},${h.hostname},${dhcp.lease_seconds}`);
  }
  return lines.sort().join('\n') + '\n';
}

export function addnHostsFile(dhcp: DhcpSpec): string {
  const domain = dhcp.dns_domain.replace(/\.$/, '');
  return dhcp.hosts.map((h) => `${h.ip_address}\t${h.hostname}.${domain} ${h.hostname}`).sort().join('\n') + '\n';
}

export function optsFile(spec: NetworkSpec, dhcp: DhcpSpec): string {
  const lines: string[] = [];
  dhcpSubnets(spec).forEach((s, i) => {
    const t = `tag:${tagOf(i)}`;
    const own = dhcp.fixed_ips.find((f) => f.subnet_id === s.id)?.ip_address;
    if (s.ip_version === 4) {
      const dns = s.dns_nameservers.length ? s.dns_nameservers : own ? [own] : [];
      if (dns.length) lines.push(`${t},option:dns-server,${dns.join(',')}`);
      const routes = s.host_routes.filter((r) => parsePrefix(r.destination)?.version === 4);
      if (routes.length) {
        // option 121 replaces the router option for clients that take it: the default route goes in too
        const all = [...routes.map((r) => `${r.destination},${r.nexthop}`), ...(s.gateway_ip ? [`0.0.0.0/0,${s.gateway_ip}`] : [])];
        lines.push(`${t},option:classless-static-route,${all.join(',')}`);
      }
      lines.push(s.gateway_ip ? `${t},option:router,${s.gateway_ip}` : `${t},option:router`);
      lines.push(`${t},option:mtu,${spec.mtu}`);
    } else {
      const dns = s.dns_nameservers.length ? s.dns_nameservers : own ? [own] : [];
      if (dns.length) lines.push(`${t},option6:dns-server,${dns.map((d) => `[${d}]`).join(',')}`);
    }
  });
  return lines.join('\n') + '\n';
}

/** The live dnsmasq of a network: its pid when the pid file names a running dnsmasq with our pid file. */
export async function dnsmasqPid(dir: string): Promise<number | null> {
  const pid = Number((await fsp.readFile(join(dir, 'pid'), 'utf8').catch(() => '')).trim());
  if (!pid) return null;
  const cmdline = await fsp.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  const stat = await fsp.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return cmdline.includes(`--pid-file=${join(dir, 'pid')}`) && state !== 'Z' ? pid : null;
}

async function writeIfChanged(file: string, text: string): Promise<boolean> {
  if ((await fsp.readFile(file, 'utf8').catch(() => null)) === text) return false;
  await fsp.writeFile(`${file}.tmp`, text, { mode: 0o644 });
  await fsp.rename(`${file}.tmp`, file);
  return true;
}

export async function stopDnsmasq(dir: string): Promise<void> {
  const pid = await dnsmasqPid(dir);
  if (!pid) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch { /* gone */ }
  for (let i = 0; i < 50 && (await dnsmasqPid(dir)); i++) await new Promise((r) => setTimeout(r, 20));
  if (await dnsmasqPid(dir)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch { /* gone */ }
  }
}

/**
 * Converges the DHCP server of a network on this host: namespace, veth on the
 * bridge with the DHCP port's MAC and addresses, files, dnsmasq.
 */
export async function convergeDhcp(host: HostNet, dir: string, networkId: string, spec: NetworkSpec, dhcp: DhcpSpec, bridge: string, links: Map<string, { master?: string; flags: string[]; mtu: number }>): Promise<DhcpResult> {
  const changes: string[] = [];
  const ns = dhcpNamespace(networkId);
  await fsp.mkdir(dir, { recursive: true, mode: 0o755 });
  if (!(await exists(`${NETNS_DIR}/${ns}`))) {
    await host.runOk('ip', ['netns', 'add', ns], false);
    changes.push(`netns ${ns}`);
  }
  const tap = tapName(dhcp.port_id);
  const inner = dhcpIfName(dhcp.port_id);
  const hostLines: string[] = [];
  const t = links.get(tap);
  if (!t) {
    hostLines.push(`link add ${tap} mtu ${spec.mtu} type veth peer name ${inner} mtu ${spec.mtu} address ${dhcp.mac_address} netns ${ns}`);
    changes.push(`veth ${tap}`);
  }
  if (!t || t.master !== bridge || !t.flags.includes('UP') || t.mtu !== spec.mtu) hostLines.push(`link set dev ${tap} master ${bridge} mtu ${spec.mtu} up`);
  await host.batch('ip', hostLines);
  if (t && hostLines.length) changes.push(`veth ${tap} settings`);

  // inside the namespace
  const seen = await host.inside(ns, inner);
  const lo = await host.inside(ns, 'lo');
  const nsLines: string[] = [];
  if (!lo.link?.flags.includes('UP')) nsLines.push('link set dev lo up');
  const l = seen.link;
  if (!l || l.address !== dhcp.mac_address || l.mtu !== spec.mtu || !l.flags.includes('UP')) nsLines.push(`link set dev ${inner} address ${dhcp.mac_address} mtu ${spec.mtu} up`);
  const want = new Set<string>();
  for (const f of dhcp.fixed_ips) {
    const s = spec.subnets.find((x) => x.id === f.subnet_id);
    if (s) want.add(`${f.ip_address}/${prefixLength(s.cidr)}`);
  }
  const have = new Set((l?.addr_info ?? []).filter((a) => a.scope !== 'link').map((a) => `${a.local}/${a.prefixlen}`));
  for (const a of want) if (!have.has(a)) nsLines.push(`addr add ${a} dev ${inner}${a.includes(':') ? ' nodad' : ''}`);
  for (const a of have) if (!want.has(a)) nsLines.push(`addr del ${a} dev ${inner}`);
  await host.batch('ip', nsLines, ns);
  if (nsLines.length) changes.push(`dhcp interface ${inner}`);

  const files = await Promise.all([
    writeIfChanged(join(dir, 'hosts'), hostsFile(spec, dhcp)),
    writeIfChanged(join(dir, 'addn_hosts'), addnHostsFile(dhcp)),
    writeIfChanged(join(dir, 'opts'), optsFile(spec, dhcp)),
  ]);
  const args = dnsmasqArgs(dir, spec, dhcp);
  const argsChanged = await writeIfChanged(join(dir, 'args'), args.join('\n') + '\n');
  let pid = await dnsmasqPid(dir);
  // Debian 12's dnsmasq 2.90 segfaults on SIGHUP once it has handed out a
  // lease (seen here with these options): a changed file restarts it instead.
  // Leases are static (--leasefile-ro), so a restart loses nothing.
  if (pid && (argsChanged || files.some(Boolean))) {
    await stopDnsmasq(dir);
    pid = null;
    changes.push('dnsmasq stopped');
  }
  if (!pid) {
    await fsp.rm(join(dir, 'pid'), { force: true });
    await host.runOk('nsenter', [`--net=${NETNS_DIR}/${ns}`, 'dnsmasq', ...args], false);
    changes.push('dnsmasq started');
  }
  return { changes };
}

/** Stops dnsmasq and removes the namespace (its veth goes with it) and the files. */
export async function destroyDhcp(host: HostNet, dir: string, networkId: string): Promise<void> {
  await stopDnsmasq(dir);
  const ns = dhcpNamespace(networkId);
  if (await exists(`${NETNS_DIR}/${ns}`)) await host.runOk('ip', ['netns', 'del', ns], false);
  await fsp.rm(dir, { recursive: true, force: true });
}
