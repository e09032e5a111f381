// IP address arithmetic for subnets and IPAM: IPv4 and IPv6 addresses as
// bigints, CIDRs, ranges, and the EUI-64 address SLAAC derives from a MAC.
import { isIPv4, isIPv6 } from 'node:net';

export type IpVersion = 4 | 6;
export interface Cidr { version: IpVersion; network: bigint; prefix: number }
export interface Range { first: bigint; last: bigint }

const bits = (v: IpVersion): number => (v === 4 ? 32 : 128);

function ipVersionOf(s: string): IpVersion | null {
  return isIPv4(s) ? 4 : isIPv6(s) && !s.includes('%') ? 6 : null;
}

/** An address as a bigint; null when it is not an IPv4 or IPv6 address. */
export function parseIp(s: string): { version: IpVersion; value: bigint } | null {
  const version = ipVersionOf(s);
  if (version === 4) return { version, value: s.split('.').reduce((a, o) => (a << 8n) | BigInt(Number(o)), 0n) };
  if (version !== 6) return null;
  let text = s.toLowerCase();
  // an embedded IPv4 tail (::ffff:1.2.3.4) as two groups
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const n = parseIp(v4[1]!)!.value;
    text = text.slice(0, -v4[1]!.length) + `${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') as [string, string] : [text, null];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === null ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return { version, value: groups.reduce((a, g) => (a << 16n) | BigInt(parseInt(g, 16)), 0n) };
}

/** The canonical text of an address (RFC 5952 for IPv6). */
export function formatIp(version: IpVersion, value: bigint): string {
  if (version === 4) return [24n, 16n, 8n, 0n].map((s) => Number((value >> s) & 0xffn)).join('.');
  const groups = Array.from({ length: 8 }, (_, i) => Number((value >> BigInt(112 - i * 16)) & 0xffffn));
  // the longest run (of two or more) of zero groups becomes '::'
  let best = -1, bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) { best = i; bestLen = j - i; }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

export const canonicalIp = (s: string): string | null => {
  const p = parseIp(s);
  return p ? formatIp(p.version, p.value) : null;
};

/** A CIDR whose host bits are zero; null when it is not one (Neutron refuses '10.0.0.1/24' as a subnet). */
export function parseCidr(s: string, strict = true): Cidr | null {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(s);
  if (!m) return null;
  const ip = parseIp(m[1]!);
  const prefix = Number(m[2]);
  if (!ip || prefix > bits(ip.version)) return null;
  const mask = hostMask(ip.version, prefix);
  if (strict && (ip.value & mask) !== 0n) return null;
  return { version: ip.version, network: ip.value & ~mask & allOnes(ip.version), prefix };
}

const allOnes = (v: IpVersion): bigint => (1n << BigInt(bits(v))) - 1n;
const hostMask = (v: IpVersion, prefix: number): bigint => (1n << BigInt(bits(v) - prefix)) - 1n;

export const formatCidr = (c: Cidr): string => `${formatIp(c.version, c.network)}/${c.prefix}`;
export const cidrRange = (c: Cidr): Range => ({ first: c.network, last: c.network | hostMask(c.version, c.prefix) });
export const inCidr = (c: Cidr, v: bigint): boolean => v >= c.network && v <= (c.network | hostMask(c.version, c.prefix));
export const rangesOverlap = (a: Range, b: Range): boolean => a.first <= b.last && b.first <= a.last;

/**
 * The usable host range of a CIDR, as Neutron's defaults count it: IPv4 leaves
 * out the network and broadcast addresses (but not of a /31 or /32); IPv6
 * leaves out only the subnet-router anycast address (the first).
 */
export function hostRange(c: Cidr): Range | null {
  const r = cidrRange(c);
  if (c.version === 4) return c.prefix >= 31 ? r : { first: r.first + 1n, last: r.last - 1n };
  return c.prefix === 128 ? r : { first: r.first + 1n, last: r.last };
}

/** Ranges minus one address: what a default allocation pool is (the host range minus the gateway). */
export function subtract(ranges: Range[], v: bigint): Range[] {
  return ranges.flatMap((r) => {
    if (v < r.first || v > r.last) return [r];
    const out: Range[] = [];
    if (v > r.first) out.push({ first: r.first, last: v - 1n });
    if (v < r.last) out.push({ first: v + 1n, last: r.last });
    return out;
  });
}

/** The modified EUI-64 address of a MAC in a /64 prefix (RFC 4291 appendix A), as SLAAC makes it. */
export function eui64(prefix: Cidr, mac: string): bigint {
  const b = mac.split(':').map((x) => parseInt(x, 16));
  const iid = [b[0]! ^ 0x02, b[1]!, b[2]!, 0xff, 0xfe, b[3]!, b[4]!, b[5]!].reduce((a, o) => (a << 8n) | BigInt(o), 0n);
  return (prefix.network & ~((1n << 64n) - 1n)) | iid;
}

export const isMac = (s: string): boolean => /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(s);
