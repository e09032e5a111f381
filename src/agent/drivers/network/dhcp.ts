// A network's DHCP (and DNS for its hostnames) on this host: one dnsmasq per
// network, in its own namespace qdhcp-<network id>, on a veth whose other end
// is a port of the network's bridge (Neutron's dhcp agent, one namespace per
// network). Static entries only (--dhcp-range=...,static + a hosts file): a
// MAC not listed gets no lease. IPv6 (dnsmasqServes): DHCPv6-stateful
// subnets (and those with no IPv6 mode) likewise (the hosts file names the
// address by MAC), DHCPv6-stateless ones answer only for options (the
// client's address is its own, from the router's RA: radvd.ts); SLAAC
// subnets are not served here. dnsmasq sends no RAs. When the hosts, addn-hosts (names for DNS) or
// options files change, they are rewritten and dnsmasq restarted (not SIGHUP:
// see convergeDhcp). It is tracked by its pid file and restarted when dead.
//
// Names go into those files only when dnsmasqSafeName admits them (saneDhcp).
//
// Ports' extra DHCP options (Neutron's extra_dhcp_opt, Ironic's PXE options)
// as Neutron's dnsmasq driver writes them: the host entry sets a tag of the
// port's own, each option goes into the options file behind it (and behind
// `tag:ipxe`/`tag:!ipxe` when the option's name starts so; dnsmasq sets
// `ipxe` for clients sending option 175). While a port's boot file is one to
// fetch by TFTP (not a URL), dnsmasq serves TFTP from <dir>/tftp, which holds
// Debian ipxe's chain-loaders; clients get dnsmasq's address as next server.
//
// Files under <state>/network/dhcp/<network id>/: hosts, addn_hosts, opts,
// pid, args (the command line it runs with), log, tftp/.
//
// The metadata service (169.254.169.254) lives here too, as Neutron's
// isolated metadata does: the namespace's interface also holds
// 169.254.169.254/32, an haproxy listens there on port 80 and forwards to
// the agent's metadata proxy (src/agent/metadata-proxy.ts) on a unix
// socket (metadataSocket), setting the network and the guest's source address in headers
// that replace any the guest sent. Servers reach it by a host route via the
// DHCP port's address (kinds.ts for containers, option 121 here for DHCP
// clients). Files: haproxy.cfg, haproxy.pid, and the socket under /run. haproxy rather than a
// Node listener: Node cannot open a socket in another network namespace, and
// haproxy is what Neutron runs there (a packaged, small, event-driven proxy).
import { createHash } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import type { DhcpOption, DhcpSpec, NetworkSpec, SubnetSpec } from '../../../network/protocol.ts';
import { defaultHostname, dhcpIfName, dhcpNamespace, dnsmasqServes, tapName } from '../../../network/protocol.ts';
import { parsePrefix, prefixLength } from './addr.ts';
import { exists, NETNS_DIR, type HostNet } from './host.ts';
import type { MetadataProxy } from '../../metadata-proxy.ts';
import { METADATA_NETWORK_HEADER, METADATA_SOURCE_HEADER } from '../../../metadata/protocol.ts';

/** The metadata service's address (EC2's, then OpenStack's). */
export const METADATA_IP = '169.254.169.254';

export interface DhcpResult {
  changes: string[];
  /** Names not written to dnsmasq's files (see saneDhcp), for the caller to log. */
  refused: string[];
}

/** The domain dnsmasq answers in when a network's own is refused (Neutron's default). */
const DEFAULT_DOMAIN = 'openstacklocal.';

/**
 * Whether a name may go into dnsmasq's files and command line: nothing that
 * ends or splits a line or a field there (whitespace, a comma, '#', '/', a
 * control character). The API admits DNS names only (src/network/dns.ts);
 * this keeps a row stored before that, or written around it, out of the files.
 */
export function dnsmasqSafeName(name: string): boolean {
  return name !== '' && !/[\s,#/\u0000-\u001f\u007f-\u009f]/.test(name);
}

/**
 * The DHCP spec with every name dnsmasqSafeName refuses left out: a host's
 * bad hostname becomes its default `host-<ip>` (it keeps its lease), a bad
 * dns_domain becomes `openstacklocal.`; `refused` says what was left out.
 */
export function saneDhcp(dhcp: DhcpSpec): { dhcp: DhcpSpec; refused: string[] } {
  const refused: string[] = [];
  const hosts = dhcp.hosts.map((h) => {
    if (dnsmasqSafeName(h.hostname)) return h;
    refused.push(`port ${h.port_id} hostname ${JSON.stringify(h.hostname)}`);
    return { ...h, hostname: defaultHostname(h.ip_address) };
  });
  let domain = dhcp.dns_domain;
  if (!dnsmasqSafeName(domain)) {
    refused.push(`dns_domain ${JSON.stringify(domain)}`);
    domain = DEFAULT_DOMAIN;
  }
  return { dhcp: refused.length ? { ...dhcp, hosts, dns_domain: domain } : dhcp, refused };
}

const V4_MASK = (len: number) => [24, 16, 8, 0].map((s) => String(((len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0) >>> s) & 0xff)).join('.');

function dhcpSubnets(spec: NetworkSpec): SubnetSpec[] {
  return spec.subnets.filter(dnsmasqServes);
}

const tagOf = (i: number) => `s${i}`;
/** The dnsmasq tag of a port with extra DHCP options (set by its host entry). */
const portTag = (portId: string) => `port-${portId}`;

/** The options that name a file to fetch by TFTP (when the value is not a URL). */
const BOOTFILE_OPTS = ['67', 'bootfile-name'];
/** The files a TFTP root holds: Debian `ipxe`'s chain-loaders. */
export const IPXE_DIR = '/usr/lib/ipxe';
export const TFTP_FILES = ['undionly.kpxe', 'ipxe.efi', 'snponly.efi'];

/** An option as dnsmasq's opts file takes it, or null when it cannot go there (a line break, a comma in a tag). */
export function formatDhcpOption(tag: string, o: DhcpOption): string | null {
  if (/[\r\n\u0000]/.test(o.opt_name + o.opt_value)) return null;
  // Neutron's dnsmasq driver: `tag:<t>,` ahead of the option is one more tag to match
  const m = /^(?:tag:([^,]*),)?(.*)$/.exec(o.opt_name.trim())!;
  const extra = m[1];
  const name = m[2]!.trim();
  if (!name || name.includes(',') || (extra !== undefined && !extra)) return null;
  const option = /^\d+$/.test(name) ? name : `${o.ip_version === 6 ? 'option6' : 'option'}:${name}`;
  return [`tag:${tag}`, ...(extra !== undefined ? [`tag:${extra}`] : []), option, ...(o.opt_value === '' ? [] : [o.opt_value])].join(',');
}

/** Whether any port's options make a PXE client fetch its boot file by TFTP (dnsmasq then serves TFTP). */
export function wantsTftp(dhcp: DhcpSpec): boolean {
  return dhcp.hosts.some((h) => (h.extra_dhcp_opts ?? []).some((o) => {
    const name = o.opt_name.replace(/^tag:[^,]*,/, '').trim();
    return o.ip_version === 4 && BOOTFILE_OPTS.includes(name) && !o.opt_value.includes('://');
  }));
}

/** dnsmasq's command line for a network (without the namespace wrapper). */
export function dnsmasqArgs(dir: string, spec: NetworkSpec, given: DhcpSpec): string[] {
  const { dhcp } = saneDhcp(given);
  const args = [
    '--conf-file=/dev/null', '--no-hosts', '--no-resolv', '--strict-order', '--bind-interfaces', `--interface=${dhcpIfName(dhcp.port_id)}`, '--except-interface=lo',
    `--pid-file=${join(dir, 'pid')}`, `--dhcp-hostsfile=${join(dir, 'hosts')}`, `--addn-hosts=${join(dir, 'addn_hosts')}`, `--dhcp-optsfile=${join(dir, 'opts')}`,
    `--log-facility=${join(dir, 'log')}`, '--leasefile-ro', '--dhcp-authoritative', '--user=root', '--group=root',
    `--domain=${dhcp.dns_domain.replace(/\.$/, '')}`, `--local=/${dhcp.dns_domain.replace(/\.$/, '')}/`,
    // iPXE asks with option 175 (v4) or the user class iPXE (v6): ports' options may match `tag:ipxe`/`tag:!ipxe` (as Neutron's)
    '--dhcp-match=set:ipxe,175', '--dhcp-userclass=set:ipxe6,iPXE',
  ];
  if (wantsTftp(dhcp)) args.push('--enable-tftp', `--tftp-root=${join(dir, 'tftp')}`);
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

export function hostsFile(spec: NetworkSpec, given: DhcpSpec): string {
  const { dhcp } = saneDhcp(given);
  const subnets = dhcpSubnets(spec);
  const lines: string[] = [];
  for (const h of dhcp.hosts) {
    const i = subnets.findIndex((s) => s.id === h.subnet_id);
    // a DHCPv6-stateless client makes its address itself (SLAAC) and only asks for options
    if (i < 0 || subnets[i]!.ipv6_address_mode === 'dhcpv6-stateless') continue;
    const ip = h.ip_address.includes(':') ? `[${h.ip_address}]` : h.ip_address;
    const own = h.extra_dhcp_opts?.length ? `,set:${portTag(h.port_id)}` : '';
    lines.push(`${h.mac_address},set:${tagOf(i)}${own},${ip},${h.hostname},${dhcp.lease_seconds}`);
  }
  return lines.sort().join('\n') + '\n';
}

export function addnHostsFile(given: DhcpSpec): string {
  const { dhcp } = saneDhcp(given);
  const domain = dhcp.dns_domain.replace(/\.$/, '');
  return dhcp.hosts.map((h) => `${h.ip_address}\t${h.hostname}.${domain} ${h.hostname}`).sort().join('\n') + '\n';
}

export function optsFile(spec: NetworkSpec, given: DhcpSpec, metadata = false): string {
  const { dhcp } = saneDhcp(given);
  const lines: string[] = [];
  dhcpSubnets(spec).forEach((s, i) => {
    const t = `tag:${tagOf(i)}`;
    const own = dhcp.fixed_ips.find((f) => f.subnet_id === s.id)?.ip_address;
    if (s.ip_version === 4) {
      const dns = s.dns_nameservers.length ? s.dns_nameservers : own ? [own] : [];
      if (dns.length) lines.push(`${t},option:dns-server,${dns.join(',')}`);
      const routes = s.host_routes.filter((r) => parsePrefix(r.destination)?.version === 4);
      // the metadata service, through this namespace (a host route of the subnet's own to it wins)
      if (metadata && own && !routes.some((r) => r.destination === `${METADATA_IP}/32`)) routes.push({ destination: `${METADATA_IP}/32`, nexthop: own });
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
      lines.push(`${t},option6:domain-search,${dhcp.dns_domain.replace(/\.$/, '')}`);
    }
  });
  // each port's extra options, for the IP versions it has an address of (Neutron's per-port options)
  const subnets = dhcpSubnets(spec);
  const done = new Set<string>();
  for (const h of dhcp.hosts) {
    const v = subnets.find((s) => s.id === h.subnet_id)?.ip_version;
    if (!v || done.has(`${h.port_id}|${v}`)) continue;
    done.add(`${h.port_id}|${v}`);
    for (const o of h.extra_dhcp_opts ?? []) {
      if (o.ip_version !== v) continue;
      const line = formatDhcpOption(portTag(h.port_id), o);
      if (line) lines.push(line);
    }
  }
  return lines.join('\n') + '\n';
}

/** The pid in `pidFile` when that process is alive (not a zombie) and its command line holds `marker`. */
export async function livePid(pidFile: string, marker: string): Promise<number | null> {
  const pid = Number((await fsp.readFile(pidFile, 'utf8').catch(() => '')).trim());
  if (!pid) return null;
  const cmdline = await fsp.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  const stat = await fsp.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return cmdline.includes(marker) && state !== 'Z' ? pid : null;
}

/** Stops what `find` names (TERM, then KILL when it lingers). */
export async function stopPid(find: () => Promise<number | null>): Promise<void> {
  const pid = await find();
  if (!pid) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch { /* gone */ }
  for (let i = 0; i < 50 && (await find()); i++) await new Promise((r) => setTimeout(r, 20));
  if (await find()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch { /* gone */ }
  }
}

/** The live dnsmasq of a network: its pid when the pid file names a running dnsmasq with our pid file. */
export const dnsmasqPid = (dir: string): Promise<number | null> => livePid(join(dir, 'pid'), `--pid-file=${join(dir, 'pid')}`);

/** The live metadata haproxy of a network (its pid file names a running haproxy of our config). */
export const haproxyPid = (dir: string): Promise<number | null> => livePid(join(dir, 'haproxy.pid'), join(dir, 'haproxy.cfg'));

/** The agent's metadata socket of a network. */
/**
 * The agent's socket haproxy forwards to. haproxy takes at most 97 bytes of a
 * unix socket path, more than a data directory's path leaves room for, so it is
 * a short name under /run keyed by the network's directory (one per agent and
 * network).
 */
export const METADATA_SOCKET_DIR = '/run/stratus-metadata';
export const metadataSocket = (dir: string) => join(METADATA_SOCKET_DIR, `${createHash('sha256').update(dir).digest('hex').slice(0, 24)}.sock`);

/** haproxy's configuration for a network's metadata: 169.254.169.254:80 to the agent's socket, the guest's identity set by haproxy alone. */
export function haproxyConfig(dir: string, networkId: string): string {
  return [
    'global',
    '    daemon',
    `    pidfile ${join(dir, 'haproxy.pid')}`,
    '    maxconn 1024',
    'defaults',
    '    mode http',
    '    timeout connect 5s',
    '    timeout client 30s',
    '    timeout server 35s',
    '    timeout http-request 10s',
    'listen metadata',
    `    bind ${METADATA_IP}:80`,
    // set-header replaces every header of that name the guest sent
    `    http-request set-header ${METADATA_SOURCE_HEADER} %[src]`,
    `    http-request set-header ${METADATA_NETWORK_HEADER} ${networkId}`,
    `    server agent unix@${metadataSocket(dir)}`,
    '',
  ].join('\n');
}

export async function writeIfChanged(file: string, text: string): Promise<boolean> {
  if ((await fsp.readFile(file, 'utf8').catch(() => null)) === text) return false;
  await fsp.writeFile(`${file}.tmp`, text, { mode: 0o644 });
  await fsp.rename(`${file}.tmp`, file);
  return true;
}

export const stopDnsmasq = (dir: string): Promise<void> => stopPid(() => dnsmasqPid(dir));
export const stopHaproxy = (dir: string): Promise<void> => stopPid(() => haproxyPid(dir));

/** The metadata proxy of a network: the agent's socket listening, haproxy running with the current config. */
async function convergeMetadata(host: HostNet, dir: string, networkId: string, proxy: MetadataProxy): Promise<string[]> {
  const changes: string[] = [];
  await fsp.mkdir(METADATA_SOCKET_DIR, { recursive: true, mode: 0o700 });
  if (await proxy.ensure(networkId, metadataSocket(dir))) changes.push('metadata socket listening');
  const cfgChanged = await writeIfChanged(join(dir, 'haproxy.cfg'), haproxyConfig(dir, networkId));
  let pid = await haproxyPid(dir);
  if (pid && cfgChanged) {
    await stopHaproxy(dir);
    pid = null;
    changes.push('metadata haproxy stopped');
  }
  if (!pid) {
    await fsp.rm(join(dir, 'haproxy.pid'), { force: true });
    await host.runOk('nsenter', [`--net=${NETNS_DIR}/${dhcpNamespace(networkId)}`, 'haproxy', '-f', join(dir, 'haproxy.cfg')], false);
    changes.push('metadata haproxy started');
  }
  return changes;
}

/**
 * Converges the DHCP server of a network on this host: namespace, veth on the
 * bridge with the DHCP port's MAC and addresses, files, dnsmasq; with
 * `metadata`, the metadata address, haproxy and the agent's socket.
 */
export async function convergeDhcp(host: HostNet, dir: string, networkId: string, spec: NetworkSpec, given: DhcpSpec, bridge: string, links: Map<string, { master?: string; flags: string[]; mtu: number }>, metadata?: MetadataProxy | null): Promise<DhcpResult> {
  const changes: string[] = [];
  const { dhcp, refused } = saneDhcp(given);
  const ns = dhcpNamespace(networkId);
  await fsp.mkdir(dir, { recursive: true, mode: 0o755 });
  if (!(await exists(`${NETNS_DIR}/${ns}`))) {
    await host.runOk('ip', ['netns', 'add', ns], false);
    // the DHCP port takes no router advertisements (as Neutron's): its addresses are the port's, not
    // what a SLAAC prefix would add (which the next converge would take away again); set before its veth comes in
    await host.runOk('nsenter', [`--net=${NETNS_DIR}/${ns}`, 'sysctl', '-qw', 'net.ipv6.conf.default.accept_ra=0', 'net.ipv6.conf.all.accept_ra=0'], false);
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
  if (metadata) want.add(`${METADATA_IP}/32`);
  const have = new Set((l?.addr_info ?? []).filter((a) => a.scope !== 'link').map((a) => `${a.local}/${a.prefixlen}`));
  for (const a of want) if (!have.has(a)) nsLines.push(`addr add ${a} dev ${inner}${a.includes(':') ? ' nodad' : ''}`);
  for (const a of have) if (!want.has(a)) nsLines.push(`addr del ${a} dev ${inner}`);
  await host.batch('ip', nsLines, ns);
  if (nsLines.length) changes.push(`dhcp interface ${inner}`);

  const files = await Promise.all([
    writeIfChanged(join(dir, 'hosts'), hostsFile(spec, dhcp)),
    writeIfChanged(join(dir, 'addn_hosts'), addnHostsFile(dhcp)),
    writeIfChanged(join(dir, 'opts'), optsFile(spec, dhcp, !!metadata)),
  ]);
  if (wantsTftp(dhcp)) changes.push(...(await ensureTftpRoot(join(dir, 'tftp'))));
  else if (await exists(join(dir, 'tftp'))) await fsp.rm(join(dir, 'tftp'), { recursive: true, force: true });
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
  if (metadata) changes.push(...(await convergeMetadata(host, dir, networkId, metadata)));
  else if (await exists(join(dir, 'haproxy.cfg'))) {
    await stopHaproxy(dir);
    await fsp.rm(join(dir, 'haproxy.cfg'), { force: true });
    changes.push('metadata haproxy removed');
  }
  return { changes, refused };
}

/** The TFTP root of a network's dnsmasq: Debian ipxe's chain-loaders (those installed), copied when missing or changed. */
async function ensureTftpRoot(root: string): Promise<string[]> {
  await fsp.mkdir(root, { recursive: true, mode: 0o755 });
  const changes: string[] = [];
  for (const f of TFTP_FILES) {
    const src = join(IPXE_DIR, f);
    const st = await fsp.stat(src).catch(() => null);
    if (!st) continue;
    const have = await fsp.stat(join(root, f)).catch(() => null);
    if (have && have.size === st.size && have.mtimeMs === st.mtimeMs) continue;
    await fsp.copyFile(src, join(root, `${f}.tmp`));
    await fsp.utimes(join(root, `${f}.tmp`), st.atime, st.mtime);
    await fsp.rename(join(root, `${f}.tmp`), join(root, f));
    changes.push(`tftp ${f}`);
  }
  return changes;
}

/** Stops dnsmasq and the metadata proxy, and removes the namespace (its veth goes with it) and the files. */
export async function destroyDhcp(host: HostNet, dir: string, networkId: string, metadata?: MetadataProxy | null): Promise<void> {
  await stopDnsmasq(dir);
  await stopHaproxy(dir);
  await metadata?.remove(networkId);
  const ns = dhcpNamespace(networkId);
  if (await exists(`${NETNS_DIR}/${ns}`)) await host.runOk('ip', ['netns', 'del', ns], false);
  await fsp.rm(dir, { recursive: true, force: true });
}
