// Addresses as the data plane needs them: the IP version of a literal or a
// prefix, canonical prefixes, and sets of prefixes without overlaps (nft
// refuses overlapping intervals in one set, and prints a host prefix as the
// bare address).
import { isIPv4, isIPv6 } from 'node:net';

export interface Prefix { version: 4 | 6; net: bigint; len: number }

const BITS = { 4: 32, 6: 128 } as const;

function v4ToBig(a: string): bigint {
  return a.split('.').reduce((n, o) => (n << 8n) | BigInt(Number(o)), 0n);
}

function v6ToBig(a: string): bigint {
  let s = a;
  const v4tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4tail) {
    const n = v4ToBig(v4tail[1]!);
    s = s.slice(0, -v4tail[1]!.length) + `${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head, tail] = s.includes('::') ? s.split('::') as [string, string] : [s, null];
  const h = head ? head.split(':') : [];
  const t = tail === null ? [] : tail ? tail.split(':') : [];
  const groups = tail === null ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return groups.reduce((n, g) => (n << 16n) | BigInt(parseInt(g, 16)), 0n);
}

export function ipVersion(addr: string): 4 | 6 | null {
  return isIPv4(addr) ? 4 : isIPv6(addr) ? 6 : null;
}

/** Parses `a.b.c.d[/len]` or an IPv6 literal with optional length; null when it is neither. Host bits are cleared. */
export function parsePrefix(text: string): Prefix | null {
  const [addr, lenText] = text.split('/') as [string, string | undefined];
  const version = ipVersion(addr);
  if (!version) return null;
  const bits = BITS[version];
  const len = lenText === undefined ? bits : Number(lenText);
  if (!Number.isInteger(len) || len < 0 || len > bits) return null;
  const n = version === 4 ? v4ToBig(addr) : v6ToBig(addr);
  const mask = len === 0 ? 0n : ((1n << BigInt(len)) - 1n) << BigInt(bits - len);
  return { version, net: n & mask, len };
}

function bigToText(version: 4 | 6, n: bigint): string {
  if (version === 4) return [24n, 16n, 8n, 0n].map((s) => String((n >> s) & 0xffn)).join('.');
  const groups = [...Array(8)].map((_, i) => ((n >> BigInt(112 - 16 * i)) & 0xffffn).toString(16));
  // the longest run of zero groups (two or more) becomes '::', as inet_ntop writes it
  let best = -1, bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen) { best = i; bestLen = j - i; }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

/** The prefix as nft prints it: the bare address for a host prefix. */
export function prefixText(p: Prefix): string {
  const a = bigToText(p.version, p.net);
  return p.len === BITS[p.version] ? a : `${a}/${p.len}`;
}

function contains(a: Prefix, b: Prefix): boolean {
  if (a.version !== b.version || a.len > b.len) return false;
  const shift = BigInt(BITS[a.version] - a.len);
  return (a.net >> shift) === (b.net >> shift);
}

/** Canonical prefixes of one IP version, none inside another, sorted. Unparsable entries are dropped. */
export function prefixSet(texts: Iterable<string>, version: 4 | 6): string[] {
  // by start address, the wider first: prefixes nest or are disjoint, so one inside a kept prefix is
  // inside the last kept one (a single sweep; a member count of thousands stays cheap)
  const ps = [...texts].map(parsePrefix).filter((p): p is Prefix => !!p && p.version === version)
    .sort((a, b) => (a.net < b.net ? -1 : a.net > b.net ? 1 : a.len - b.len));
  const kept: Prefix[] = [];
  for (const p of ps) if (!kept.length || !contains(kept[kept.length - 1]!, p)) kept.push(p);
  return kept.map(prefixText).sort();
}

/** The EUI-64 link-local address of a MAC (what the kernel gives a port's IPv6 link). */
export function linkLocal(mac: string): string {
  const b = mac.split(':').map((h) => parseInt(h, 16));
  b[0] = b[0]! ^ 2;
  const iid = [b[0]!, b[1]!, b[2]!, 0xff, 0xfe, b[3]!, b[4]!, b[5]!];
  const g = [0, 1, 2, 3].map((i) => ((iid[2 * i]! << 8) | iid[2 * i + 1]!).toString(16));
  return bigToText(6, v6ToBig(`fe80::${g.join(':')}`));
}

/** The prefix length of a subnet CIDR. */
export function prefixLength(cidr: string): number {
  return parsePrefix(cidr)?.len ?? 0;
}
