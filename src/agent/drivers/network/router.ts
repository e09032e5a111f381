// A router on this host (Neutron's L3 agent, legacy mode, the Linux way): a
// namespace qrouter-<id> with forwarding on; per interface a veth whose host
// end tap<port> is on the network's bridge and whose other end qr-<port> holds
// the port's MAC, addresses and the network's MTU; the gateway likewise as
// qg-<port> on the external network's bridge, with its addresses, the
// floating IPs as /32 and the default route. NAT lives in one `ip` table of
// the driver's name inside the namespace, written as one `nft -f`
// transaction: prerouting/output DNAT (port forwardings, then floating IP ->
// fixed IP), postrouting SNAT (fixed IP -> its floating IP, ahead of the
// router's SNAT of everything else leaving qg, and of DNATed traffic that did
// not come in on qg, so that a floating IP answers its own subnet too).
//
// Like the rest of the driver: every converge reads the namespace (devices,
// addresses, routes, sysctls, the nft table) and changes only what differs,
// so a second converge changes nothing and drift is repaired. The security
// groups of the servers stay on the host's bridges, so they filter traffic
// after the router's DNAT.
import { join } from 'node:path';
import {
  routerGatewayName, routerInterfaceName, routerNamespace, tapName,
  type RouterObserved, type RouterSpec,
} from '../../../network/protocol.ts';
import { NetworkErrorCode } from '../../../network/protocol.ts';
import { shQuote } from '../../../common/text.ts';
import { transient, userError } from '../../errors.ts';
import { ipVersion, parsePrefix, prefixText } from './addr.ts';
import { exists, NETNS_DIR, type AddrInfo, type HostNet, type RouteInfo } from './host.ts';
import { parseState, plan, type ChainPiece } from './nft.ts';
import { convergeRadvd, radvdConfig, removeRadvd, type RadvdInterface } from './radvd.ts';

/** What the router code needs of the driver. */
export interface RouterHost {
  host: HostNet;
  /** The name of the NAT table inside the router's namespace. */
  table: string;
  /** `arping` is installed: a gratuitous ARP announces each new gateway address and floating IP. */
  arping: boolean;
  /** `conntrack` is installed: the connections of a floating IP that goes are forgotten (else they keep their NAT until they end). */
  conntrack: boolean;
  /** Where each router's radvd files go (<dir>/<router id>/, radvd.ts). */
  radvdDir: string;
  /** `radvd` is installed: routers advertise their IPv6 subnets with an ipv6_ra_mode (without it such a router fails, after the rest is converged). */
  radvd: boolean;
  /** The bridge (and MTU) of a network converged on this host; throws a transient network_missing otherwise. */
  networkBridge(networkId: string, what: string): Promise<{ bridge: string; mtu: number }>;
}

/** One veth of the router: `inner` in the namespace, `tap` on `bridge`; `ra`: the IPv6 prefixes it advertises. */
interface Leg { inner: string; tap: string; bridge: string; mtu: number; mac: string; addresses: string[]; ra: RadvdInterface['prefixes']; dns: string[] }

const SYSCTLS = ['net.ipv4.ip_forward', 'net.ipv6.conf.all.forwarding'];

const ipv4 = (a: string) => ipVersion(a) === 4;

function checkIp(a: string, what: string): string {
  if (!ipVersion(a)) throw userError(NetworkErrorCode.specInvalid, `bad ${what} ${JSON.stringify(a)}`);
  return a;
}

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
const PORT_ID = /^[0-9A-Za-z][0-9A-Za-z_-]{0,63}$/;

/** The spec's words end up in `ip -batch` lines: ids and MACs are checked first. */
function checkPort(portId: string, mac: string): string {
  if (!PORT_ID.test(portId)) throw userError(NetworkErrorCode.specInvalid, `bad port id ${JSON.stringify(portId)}`);
  if (!MAC.test(mac.toLowerCase())) throw userError(NetworkErrorCode.specInvalid, `bad MAC address ${JSON.stringify(mac)}`);
  return mac.toLowerCase();
}

function checkPrefixlen(ip: string, len: number): string {
  const p = parsePrefix(`${checkIp(ip, 'address')}/${len}`);
  if (!p) throw userError(NetworkErrorCode.specInvalid, `bad prefix length ${len} of ${ip}`);
  return `${ip}/${len}`;
}

/** The NAT chains of a router (nft family `ip`): what the spec asks for, in the order it must match. */
export function natChains(spec: RouterSpec): ChainPiece[] {
  const gw = spec.external_gateway;
  const qg = gw ? routerGatewayName(gw.port_id) : null;
  const dnat: string[] = [];
  const snat: string[] = [];
  if (qg) {
    for (const f of spec.port_forwardings) {
      if (!ipv4(f.floating_ip) || !ipv4(f.internal_ip)) continue;
      if (f.protocol !== 'tcp' && f.protocol !== 'udp') throw userError(NetworkErrorCode.specInvalid, `bad port forwarding protocol ${JSON.stringify(f.protocol)}`);
      for (const p of [f.external_port, f.internal_port]) if (!Number.isInteger(p) || p < 1 || p > 65535) throw userError(NetworkErrorCode.specInvalid, `bad port ${p}`);
      dnat.push(`ip daddr ${f.floating_ip} ${f.protocol} dport ${f.external_port} dnat to ${f.internal_ip}:${f.internal_port}`);
    }
    for (const f of spec.floating_ips) {
      if (!ipv4(f.floating_ip) || !ipv4(f.fixed_ip)) continue;
      dnat.push(`ip daddr ${f.floating_ip} dnat to ${f.fixed_ip}`);
      snat.push(`oifname "${qg}" ip saddr ${f.fixed_ip} snat to ${f.floating_ip}`);
    }
    const first4 = gw!.ip_addresses.find((a) => ipv4(a.ip_address));
    if (gw!.enable_snat && first4) {
      snat.push(`oifname "${qg}" snat to ${first4.ip_address}`);
      // hairpin: a floating IP reached from inside (its own subnet too) answers through the router
      snat.push(`iifname != "${qg}" ct status dnat snat to ${first4.ip_address}`);
    }
  }
  return [
    { family: 'ip', name: 'prerouting', base: 'type nat hook prerouting priority dstnat; policy accept;', rules: dnat },
    // the router's own traffic to a floating IP (and probes from inside the namespace)
    { family: 'ip', name: 'output', base: 'type nat hook output priority -100; policy accept;', rules: [...dnat] },
    { family: 'ip', name: 'postrouting', base: 'type nat hook postrouting priority srcnat; policy accept;', rules: snat },
  ];
}

/** The router's veths as the spec wants them (interfaces grouped by port), checked against the networks here. */
async function wantedLegs(rh: RouterHost, id: string, spec: RouterSpec): Promise<Leg[]> {
  const byPort = new Map<string, Leg & { network_id: string }>();
  for (const i of spec.interfaces) {
    const leg = byPort.get(i.port_id);
    if (leg && leg.network_id !== i.network_id) throw userError(NetworkErrorCode.specInvalid, `router port ${i.port_id} is on two networks`);
    const addr = checkPrefixlen(i.ip_address, i.prefixlen);
    const ra = !ipv4(i.ip_address) && i.ipv6_ra_mode && i.cidr ? [{ cidr: i.cidr, mode: i.ipv6_ra_mode }] : [];
    const dns = ra.length ? i.dns_nameservers ?? [] : [];
    if (leg) {
      if (!leg.addresses.includes(addr)) leg.addresses.push(addr);
      leg.ra.push(...ra);
      leg.dns.push(...dns);
      continue;
    }
    const { bridge, mtu } = await rh.networkBridge(i.network_id, `router ${id}`);
    const mac = checkPort(i.port_id, i.mac_address);
    byPort.set(i.port_id, { network_id: i.network_id, inner: routerInterfaceName(i.port_id), tap: tapName(i.port_id), bridge, mtu, mac, addresses: [addr], ra, dns });
  }
  const legs: Leg[] = [...byPort.values()];
  const gw = spec.external_gateway;
  if (gw) {
    const { bridge, mtu } = await rh.networkBridge(gw.network_id, `the gateway of router ${id}`);
    const addresses = gw.ip_addresses.map((a) => checkPrefixlen(a.ip_address, a.prefixlen));
    // floating IPs (also those only used by port forwardings) answer ARP on the gateway
    const fips = [...spec.floating_ips.map((f) => f.floating_ip), ...spec.port_forwardings.map((f) => f.floating_ip)].map((f) => checkIp(f, 'floating IP'));
    for (const f of fips) {
      const a = `${f}/${ipv4(f) ? 32 : 128}`;
      if (!addresses.includes(a) && !addresses.some((x) => x.split('/')[0] === f)) addresses.push(a);
    }
    const mac = checkPort(gw.port_id, gw.mac_address);
    legs.push({ inner: routerGatewayName(gw.port_id), tap: tapName(gw.port_id), bridge, mtu, mac, addresses, ra: [], dns: [] });
  }
  const names = new Set<string>();
  for (const l of legs) {
    if (names.has(l.inner)) throw userError(NetworkErrorCode.specInvalid, `router ${id}: two ports named ${l.inner}`);
    names.add(l.inner);
  }
  return legs;
}

/** What the router's namespace holds: its links with addresses, routes (with a gateway), sysctls, and the NAT table. */
async function readRouter(host: HostNet, ns: string, table: string) {
  const n = shQuote(ns);
  const enter = `nsenter --net=${shQuote(`${NETNS_DIR}/${ns}`)}`;
  const [a, r4, r6, sys, nft] = await host.read([
    `ip -j -d -n ${n} addr show`, `ip -j -n ${n} -4 route show`, `ip -j -n ${n} -6 route show`,
    `${enter} sysctl -n ${SYSCTLS.join(' ')}`, `${enter} nft -j list table ip ${shQuote(table)}`,
  ]);
  const links = new Map((JSON.parse(a || '[]') as AddrInfo[]).map((l) => [l.ifname, l]));
  const routes = [...JSON.parse(r4 || '[]'), ...JSON.parse(r6 || '[]')] as RouteInfo[];
  return { links, routes, sysctls: sys.split('\n').map((x) => x.trim()), nft: parseState(nft) };
}

/** Converges one router in its namespace; returns what it observes and what it changed. */
export async function convergeRouter(rh: RouterHost, id: string, spec: RouterSpec): Promise<{ observed: RouterObserved; changes: string[] }> {
  const { host } = rh;
  const changes: string[] = [];
  const ns = routerNamespace(id);
  const legs = await wantedLegs(rh, id, spec);
  for (const r of spec.routes) {
    if (!parsePrefix(r.destination)) throw userError(NetworkErrorCode.specInvalid, `bad route destination ${JSON.stringify(r.destination)}`);
    checkIp(r.nexthop, 'route nexthop');
  }
  const chains = natChains(spec);
  // admin down: no advertisements (hosts then stop using the router)
  const ra = spec.admin_state_up ? radvdConfig(legs.map((l) => ({ name: l.inner, mtu: l.mtu, prefixes: l.ra, dns_nameservers: l.dns }))) : '';

  if (!(await exists(`${NETNS_DIR}/${ns}`))) {
    await host.runOk('sh', ['-c', 'ip netns add "$0" && ip -n "$0" link set lo up', ns], false);
    changes.push(`netns ${ns}`);
  }
  let seen = await readRouter(host, ns, rh.table);
  const up = spec.admin_state_up;

  // devices: stale ones first (a removed interface; deleting one end of a veth deletes both), then the host ends
  const wantInner = new Set(legs.map((l) => l.inner));
  const stale = [...seen.links.keys()].filter((n) => /^(qr|qg)-/.test(n) && !wantInner.has(n));
  await host.batch('ip', stale.map((n) => `link del dev ${n}`), ns);
  changes.push(...stale.map((n) => `${ns}: link del dev ${n}`));
  const hostLinks = await host.links();
  const hostLines: string[] = [];
  for (const l of legs) {
    let t = hostLinks.get(l.tap);
    // a host end without our end in the namespace (or not a veth) is made again
    if (t && (t.linkinfo?.info_kind !== 'veth' || !seen.links.has(l.inner))) {
      hostLines.push(`link del dev ${l.tap}`);
      t = undefined;
    }
    if (!t) hostLines.push(`link add ${l.tap} mtu ${l.mtu} type veth peer name ${l.inner} mtu ${l.mtu} address ${l.mac} netns ${ns}`);
    if (!t || t.master !== l.bridge || t.mtu !== l.mtu || !t.flags.includes('UP')) hostLines.push(`link set dev ${l.tap} master ${l.bridge} mtu ${l.mtu} up`);
  }
  await host.batch('ip', hostLines);
  changes.push(...hostLines);
  if (hostLines.length || stale.length) seen = await readRouter(host, ns, rh.table);

  // inside: forwarding, devices, addresses, routes
  const nsLines: string[] = [];
  const sysLines: string[] = [];
  SYSCTLS.forEach((k, i) => { if (seen.sysctls[i] !== '1') sysLines.push(`${k}=1`); });
  if (sysLines.length) {
    await host.runOk('nsenter', [`--net=${NETNS_DIR}/${ns}`, 'sysctl', '-qw', ...sysLines], false);
    changes.push(...sysLines.map((x) => `${ns}: sysctl ${x}`));
  }
  const lo = seen.links.get('lo');
  if (!lo?.flags.includes('UP')) nsLines.push('link set dev lo up');
  const announce: Array<{ dev: string; ip: string }> = [];
  const forget: string[] = [];
  for (const l of legs) {
    const d = seen.links.get(l.inner);
    if (!d) throw transient(NetworkErrorCode.hostFailure, `interface ${l.inner} is missing in ${ns}`);
    if (d.address !== l.mac || d.mtu !== l.mtu || d.flags.includes('UP') !== up) nsLines.push(`link set dev ${l.inner} address ${l.mac} mtu ${l.mtu} ${up ? 'up' : 'down'}`);
    const have = new Set((d.addr_info ?? []).filter((x) => x.scope !== 'link').map((x) => `${x.local}/${x.prefixlen}`));
    const want = new Set(l.addresses.map((x) => { const [ip, len] = x.split('/'); return `${ip}/${len}`; }));
    for (const x of have) {
      if (want.has(x)) continue;
      nsLines.push(`addr del ${x} dev ${l.inner}`);
      if (l.inner.startsWith('qg-')) forget.push(x.split('/')[0]!);
    }
    for (const x of want) {
      if (have.has(x)) continue;
      nsLines.push(`addr add ${x} dev ${l.inner}${x.includes(':') ? ' nodad' : ''}`);
      if (ipv4(x.split('/')[0]!) && l.inner.startsWith('qg-')) announce.push({ dev: l.inner, ip: x.split('/')[0]! });
    }
  }
  const routes: Array<{ dst: string; via: string }> = [];
  const gw = spec.external_gateway;
  if (gw?.gateway_ip) routes.push({ dst: 'default', via: checkIp(gw.gateway_ip, 'gateway IP') });
  for (const r of spec.routes) {
    const p = parsePrefix(r.destination)!;
    routes.push({ dst: p.len === 0 ? 'default' : prefixText(p), via: r.nexthop });
  }
  const key = (r: { dst: string; via?: string }) => `${r.dst} ${r.via}`;
  const haveRoutes = seen.routes.filter((r) => r.gateway).map((r) => ({ dst: r.dst, via: r.gateway! }));
  const wantKeys = new Set(routes.map(key));
  const haveKeys = new Set(haveRoutes.map(key));
  // first: taking a device down or an address away takes its routes with it
  nsLines.unshift(...haveRoutes.filter((r) => !wantKeys.has(key(r))).map((r) => `route del ${r.dst} via ${r.via}`));
  // a route needs its device up (admin down: none)
  if (up) for (const r of routes) if (!haveKeys.has(key(r))) nsLines.push(`route replace ${r.dst} via ${r.via}`);
  await host.batch('ip', nsLines, ns);
  changes.push(...nsLines.map((x) => `${ns}: ${x}`));

  // NAT: one transaction
  const nftLines = plan(rh.table, seen.nft, { chains, sets: [], elems: [] });
  await host.batch('nft', nftLines, ns);
  changes.push(...nftLines.map((x) => `${ns}: nft ${x}`));

  // connections NATed to or from an address that went (a floating IP moved away) end now
  if (rh.conntrack && forget.length) {
    await host.run('nsenter', [`--net=${NETNS_DIR}/${ns}`, 'sh', '-c', 'for a do conntrack -D -d "$a"; conntrack -D -q "$a"; done >/dev/null 2>&1; true', 'sh', ...forget], false);
    changes.push(...forget.map((a) => `${ns}: conntrack -D ${a}`));
  }

  // neighbours on the external network learn the new addresses' MAC now (best
  // effort; arping takes a second however few it sends: all at once)
  if (rh.arping && up && announce.length) {
    const script = 'for a do timeout 3 arping -q -U -c 1 -I "${a%% *}" "${a#* }" & done; wait';
    await host.run('nsenter', [`--net=${NETNS_DIR}/${ns}`, 'sh', '-c', script, 'sh', ...announce.map((a) => `${a.dev} ${a.ip}`)], false);
    changes.push(...announce.map((a) => `${ns}: arping ${a.ip}`));
  }
  // router advertisements last: they announce what is now in place
  if (ra && !rh.radvd) throw userError(NetworkErrorCode.specInvalid, 'radvd is not installed on this host: no router advertisements for the IPv6 subnets (Debian package radvd)');
  changes.push(...(await convergeRadvd(host, join(rh.radvdDir, id), ns, ra)));
  return { observed: { state: up ? 'active' : 'down' }, changes };
}

/** Removes a router: its radvd, its devices (both ends of each veth, at once), then its namespace with the NAT table. Idempotent. */
export async function destroyRouter(host: HostNet, id: string, radvdDir: string): Promise<void> {
  await removeRadvd(join(radvdDir, id));
  const ns = routerNamespace(id);
  if (!(await exists(`${NETNS_DIR}/${ns}`))) return;
  const [a] = await host.read([`ip -j -n ${shQuote(ns)} link show`]);
  const devs = (JSON.parse(a || '[]') as Array<{ ifname: string }>).map((l) => l.ifname).filter((n) => /^(qr|qg)-/.test(n));
  await host.batch('ip', devs.map((n) => `link del dev ${n}`), ns);
  await host.runOk('ip', ['netns', 'del', ns], false);
}
