// The nftables pieces of each resource kind (see nft.ts for the layout):
// the dispatch tables every resource shares, a network's conntrack zone, a
// port's anti-spoofing and mark chains (bridge family) and its egress and
// ingress chains (inet family), a security group's rule chains and the sets
// of its remote groups and address groups.
import type { PortSpec, SecurityGroupRule, SecurityGroupSpec } from '../../../network/protocol.ts';
import { linkLocal, parsePrefix, prefixSet, prefixText } from './addr.ts';
import type { ChainPiece, Pieces, SetPiece } from './nft.ts';

/** An id as part of an nft name (letters and digits only). */
export const nftKey = (id: string) => id.replace(/[^A-Za-z0-9]/g, '').slice(0, 40).toLowerCase();

export const MAX_PORTS = 0x7fff;
const markFrom = (index: number) => `0x${(index << 16).toString(16).padStart(8, '0')}`;
const markTo = (index: number) => `0x${index.toString(16).padStart(8, '0')}`;

export const portChains = (portId: string) => {
  const p = nftKey(portId);
  return { from: `f_${p}`, to: `t_${p}`, egress: `e_${p}`, ingress: `i_${p}` };
};
export const sgChains = (sgId: string) => ({ ingress: `sg_${nftKey(sgId)}_i`, egress: `sg_${nftKey(sgId)}_e` });
export const sgSetPrefix = (sgId: string) => [`r_${nftKey(sgId)}_`, `a_${nftKey(sgId)}_`];

/** The tables' skeleton: base chains and dispatch maps. */
export function basePieces(): Pieces {
  const chains: ChainPiece[] = [
    { family: 'bridge', name: 'prerouting', base: 'type filter hook prerouting priority -200; policy accept;', rules: ['iifname vmap @from_port'] },
    { family: 'bridge', name: 'forward', base: 'type filter hook forward priority -200; policy accept;', rules: ['oifname vmap @to_port'] },
    // before conntrack (-200): each network's bridge its own zone
    { family: 'inet', name: 'zone', base: 'type filter hook prerouting priority raw; policy accept;', rules: ['ct zone set iifname map @zones'] },
    { family: 'inet', name: 'egress', base: 'type filter hook forward priority -10; policy accept;', rules: ['meta mark and 0x7fff0000 vmap @egress'] },
    { family: 'inet', name: 'ingress', base: 'type filter hook forward priority 0; policy accept;', rules: ['meta mark and 0x0000ffff vmap @ingress'] },
  ];
  const sets: SetPiece[] = [
    { family: 'bridge', name: 'from_port', decl: 'type ifname : verdict;', elements: [], map: true },
    { family: 'bridge', name: 'to_port', decl: 'type ifname : verdict;', elements: [], map: true },
    { family: 'inet', name: 'zones', decl: 'typeof iifname : ct zone;', elements: [], map: true },
    { family: 'inet', name: 'egress', decl: 'type mark : verdict;', elements: [], map: true },
    { family: 'inet', name: 'ingress', decl: 'type mark : verdict;', elements: [], map: true },
  ];
  return { chains, sets, elems: [] };
}

export function zonePieces(bridge: string, zone: number): Pieces {
  return { chains: [], sets: [], elems: [{ family: 'inet', map: 'zones', key: bridge, value: String(zone) }] };
}

export function zoneElem(bridge: string) {
  return { family: 'inet' as const, map: 'zones', key: bridge };
}

const DHCP_CLIENT = 'udp sport 68 udp dport 67';
const DHCP_SERVER = 'udp sport 67 udp dport 68';
const DHCP6_CLIENT = 'meta nfproto ipv6 udp sport 546 udp dport 547';
const DHCP6_SERVER = 'meta nfproto ipv6 udp sport 547 udp dport 546';
const ND_OUT = 'icmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert, mld-listener-report, mld2-listener-report }';
const ND_IN = 'icmpv6 type { nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert, mld-listener-query }';

/**
 * A port with port security: anti-spoofing (only its MAC+IPs and its allowed
 * address pairs may send; ARP likewise), its marks, and its egress/ingress
 * chains: DHCP, DHCPv6 and neighbour discovery (router advertisements in,
 * never out) always, then its security groups'
 * chains, then drop. The groups' chains are only declared here (their rules
 * are the group's): a port converged before its groups drops all but DHCP/ND.
 */
export function portPieces(portId: string, tap: string, index: number, p: PortSpec): Pieces {
  const c = portChains(portId);
  const setFrom = `meta mark set meta mark and 0x0000ffff or ${markFrom(index)}`;
  const byMac = new Map<string, string[]>();
  const add = (mac: string, ip: string) => byMac.set(mac.toLowerCase(), [...(byMac.get(mac.toLowerCase()) ?? []), ip]);
  for (const f of p.fixed_ips) add(p.mac_address, f.ip_address);
  for (const a of p.allowed_address_pairs) add(a.mac_address || p.mac_address, a.ip_address);
  if (!byMac.has(p.mac_address.toLowerCase())) byMac.set(p.mac_address.toLowerCase(), []);
  const spoof: string[] = [];
  for (const [mac, ips] of byMac) {
    const v4 = prefixSet(ips, 4);
    const v6 = prefixSet([...ips, linkLocal(mac)], 6);
    spoof.push(`ether saddr ${mac} ether type arp arp saddr ether ${mac} arp saddr ip { ${['0.0.0.0', ...v4].join(', ')} } accept`);
    if (v4.length) spoof.push(`ether saddr ${mac} ether type ip ip saddr { ${v4.join(', ')} } ${setFrom} accept`);
    spoof.push(`ether saddr ${mac} ether type ip ip saddr 0.0.0.0 ip daddr 255.255.255.255 ${DHCP_CLIENT} ${setFrom} accept`);
    spoof.push(`ether saddr ${mac} ether type ip6 ip6 saddr { ${v6.join(', ')} } ${setFrom} accept`);
    spoof.push(`ether saddr ${mac} ether type ip6 ip6 saddr :: icmpv6 type { nd-neighbor-solicit, mld2-listener-report } ${setFrom} accept`);
  }
  spoof.push('counter drop');
  const sgs = p.security_group_ids.map(sgChains);
  const chains: ChainPiece[] = [
    { family: 'bridge', name: c.from, rules: spoof },
    { family: 'bridge', name: c.to, rules: [`meta mark set meta mark and 0x7fff0000 or ${markTo(index)}`] },
    ...sgs.flatMap((s) => [
      { family: 'inet' as const, name: s.egress, rules: [], declareOnly: true },
      { family: 'inet' as const, name: s.ingress, rules: [], declareOnly: true },
    ]),
    {
      family: 'inet', name: c.egress,
      rules: [`${DHCP_CLIENT} accept`, `${DHCP_SERVER} drop`, `${DHCP6_CLIENT} accept`, `${DHCP6_SERVER} drop`, `${ND_OUT} accept`, 'icmpv6 type nd-router-advert drop', ...sgs.map((s) => `jump ${s.egress}`), 'counter drop'],
    },
    { family: 'inet', name: c.ingress, rules: [`${DHCP_SERVER} accept`, `${DHCP6_SERVER} accept`, `${ND_IN} accept`, ...sgs.map((s) => `jump ${s.ingress}`), 'counter drop'] },
  ];
  return {
    chains, sets: [],
    elems: [
      { family: 'bridge', map: 'from_port', key: tap, value: `jump ${c.from}` },
      { family: 'bridge', map: 'to_port', key: tap, value: `jump ${c.to}` },
      { family: 'inet', map: 'egress', key: markFrom(index), value: `jump ${c.egress}` },
      { family: 'inet', map: 'ingress', key: markTo(index), value: `jump ${c.ingress}` },
    ],
  };
}

export function portRemoval(portId: string, tap: string, index: number | null) {
  const c = portChains(portId);
  return {
    elems: [
      { family: 'bridge' as const, map: 'from_port', key: tap },
      { family: 'bridge' as const, map: 'to_port', key: tap },
      ...(index ? [{ family: 'inet' as const, map: 'egress', key: markFrom(index) }, { family: 'inet' as const, map: 'ingress', key: markTo(index) }] : []),
    ],
    chains: [
      { family: 'bridge' as const, name: c.from }, { family: 'bridge' as const, name: c.to },
      { family: 'inet' as const, name: c.egress }, { family: 'inet' as const, name: c.ingress },
    ],
    sets: [],
  };
}

const PROTOCOLS: Record<string, number> = {
  icmp: 1, igmp: 2, tcp: 6, egp: 8, udp: 17, ipv6: 41, rsvp: 46, gre: 47, esp: 50, ah: 51,
  'ipv6-icmp': 58, icmpv6: 58, 'ipv6-encap': 41, 'ipv6-frag': 44, 'ipv6-nonxt': 59, 'ipv6-opts': 60, 'ipv6-route': 43,
  ospf: 89, pgm: 113, sctp: 132, udplite: 136, vrrp: 112, dccp: 33,
};

/** The nft match of one rule (without its verdict); null when the rule cannot match anything (a prefix of the other IP version). */
export function ruleMatch(sgId: string, r: SecurityGroupRule): string | null {
  const v6 = r.ethertype === 'IPv6';
  const fam = v6 ? 'ip6' : 'ip';
  const dir = r.direction === 'ingress' ? 'saddr' : 'daddr';
  const parts = [`meta nfproto ${v6 ? 'ipv6' : 'ipv4'}`];
  if (r.remote_ip_prefix) {
    const p = parsePrefix(r.remote_ip_prefix);
    if (!p || p.version !== (v6 ? 6 : 4)) return null;
    if (p.len > 0) parts.push(`${fam} ${dir} ${prefixText(p)}`);
  }
  const ver = v6 ? 6 : 4;
  if (r.remote_group_id) parts.push(`${fam} ${dir} @r_${nftKey(sgId)}_${nftKey(r.remote_group_id)}_${ver}`);
  if (r.remote_address_group_id) parts.push(`${fam} ${dir} @a_${nftKey(sgId)}_${nftKey(r.remote_address_group_id)}_${ver}`);
  const proto = r.protocol === null || r.protocol === 'any' || r.protocol === '' ? null : (/^\d+$/.test(r.protocol) ? Number(r.protocol) : PROTOCOLS[r.protocol.toLowerCase()]);
  if (proto === undefined) return null;
  if (proto !== null) {
    const icmp = proto === 1 || proto === 58;
    const l4 = icmp ? (v6 ? 58 : 1) : proto;
    parts.push(`meta l4proto ${l4}`);
    if (icmp) {
      const name = v6 ? 'icmpv6' : 'icmp';
      if (r.port_range_min !== null) parts.push(`${name} type ${r.port_range_min}`);
      if (r.port_range_min !== null && r.port_range_max !== null) parts.push(`${name} code ${r.port_range_max}`);
    } else if ([6, 17, 132, 33, 136].includes(proto) && (r.port_range_min !== null || r.port_range_max !== null)) {
      const lo = r.port_range_min ?? 1, hi = r.port_range_max ?? 65535;
      parts.push(`th dport ${lo === hi ? lo : `${lo}-${hi}`}`);
    }
  }
  return parts.join(' ');
}

/** A security group's chains and the member sets its rules name. */
export function sgPieces(sgId: string, sg: SecurityGroupSpec): Pieces {
  const c = sgChains(sgId);
  const head = sg.stateful ? ['ct state invalid drop', 'ct state established,related accept'] : [];
  const ingress = [...head], egress = [...head];
  const sets: SetPiece[] = [];
  const seen = new Set<string>();
  const set = (prefix: 'r' | 'a', ref: string, ver: 4 | 6, members: string[]) => {
    const name = `${prefix}_${nftKey(sgId)}_${nftKey(ref)}_${ver}`;
    if (seen.has(name)) return;
    seen.add(name);
    // intervals: members may be prefixes (allowed address pairs, address groups)
    sets.push({ family: 'inet', name, decl: `type ${ver === 4 ? 'ipv4_addr' : 'ipv6_addr'}; flags interval;`, elements: prefixSet(members, ver) });
  };
  for (const r of [...sg.rules].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))) {
    const m = ruleMatch(sgId, r);
    if (m === null) continue;
    const ver = r.ethertype === 'IPv6' ? 6 : 4;
    if (r.remote_group_id) set('r', r.remote_group_id, ver, sg.remote_groups[r.remote_group_id] ?? []);
    if (r.remote_address_group_id) set('a', r.remote_address_group_id, ver, sg.address_groups[r.remote_address_group_id] ?? []);
    (r.direction === 'ingress' ? ingress : egress).push(`${m} accept`);
  }
  return { chains: [{ family: 'inet', name: c.ingress, rules: ingress }, { family: 'inet', name: c.egress, rules: egress }], sets, elems: [] };
}
