// The agent's nftables: one `bridge` and one `inet` table of its own (name
// `stratus` by default) in the host's network namespace. What each resource
// needs is declared as pieces (chains with their rules, sets with their
// elements, elements of the dispatch maps); `plan` compares them with what
// the kernel holds (one `nft -j list table` per family) and writes the one
// `nft -f` transaction that makes the kernel match: nothing when nothing
// differs, a chain rewritten (flush + rules, atomically) when it lost or
// changed a rule, a set updated element by element when only its members
// changed.
//
// Why two families (see /work/shared/notes/dataplane.md): on these kernels
// the bridge family has no conntrack, so stateful filtering happens in the
// inet family, reached by bridged IPv4/IPv6 through br_netfilter; there the
// ports are no longer visible (iif/oif are the bridge), so the bridge family
// marks each packet first: bits 16..30 = the index of the port it came from
// (set after the port's anti-spoofing passed), bits 0..15 = the port it goes
// to. The inet forward hook then runs the egress chain of the source port
// (priority -10) and the ingress chain of the destination port (priority 0),
// each selected by its mark through a verdict map. A conntrack zone per
// network (by bridge, in prerouting before conntrack) keeps overlapping tenant
// addresses apart.
import { createHash } from 'node:crypto';

/** `ip`: the NAT table of a router, in the router's own namespace (router.ts). */
export type Family = 'bridge' | 'inet' | 'ip';

/** A chain and its rules; `declareOnly`: make sure it exists, its rules are another resource's. */
export interface ChainPiece { family: Family; name: string; rules: string[]; base?: string; declareOnly?: boolean }
/** A named set, or a map (`map: true`; its elements are ElemPieces of their owners). */
export interface SetPiece { family: Family; name: string; decl: string; elements: string[]; map?: boolean }
export interface ElemPiece { family: Family; map: string; key: string; value: string }

export interface Pieces { chains: ChainPiece[]; sets: SetPiece[]; elems: ElemPiece[] }

export const emptyPieces = (): Pieces => ({ chains: [], sets: [], elems: [] });

/** What the kernel holds in our two tables. */
export interface NftState {
  tables: Set<Family>;
  chains: Map<string, { count: number; tag: string | null }>;
  sets: Map<string, Set<string>>;
  maps: Map<string, Map<string, string>>;
}

const k = (family: Family, name: string) => `${family} ${name}`;

/** A key of a map element as the kernel lists it. */
const keyText = (v: unknown): string => typeof v === 'number' ? `0x${v.toString(16).padStart(8, '0')}` : String(v);

function elemText(e: unknown): string {
  if (typeof e === 'string' || typeof e === 'number') return String(e);
  const o = e as Record<string, any>;
  if (o.prefix) return `${o.prefix.addr}/${o.prefix.len}`;
  if (o.range) return `${o.range[0]}-${o.range[1]}`;
  if (o.elem) return elemText(o.elem.val);
  return JSON.stringify(e);
}

function verdictText(v: unknown): string {
  if (typeof v === 'number') return String(v);
  if (typeof v === 'string') return v;
  const o = v as Record<string, any>;
  if (o.jump) return `jump ${o.jump.target}`;
  if (o.goto) return `goto ${o.goto.target}`;
  return Object.keys(o)[0] ?? JSON.stringify(v);
}

/** Reads `nft -j list table` outputs (one JSON document per line). */
export function parseState(outputs: string): NftState {
  const st: NftState = { tables: new Set(), chains: new Map(), sets: new Map(), maps: new Map() };
  for (const line of outputs.split('\n')) {
    if (!line.trim().startsWith('{')) continue;
    const doc = JSON.parse(line) as { nftables: Array<Record<string, any>> };
    for (const o of doc.nftables) {
      if (o.table) st.tables.add(o.table.family);
      else if (o.chain) st.chains.set(k(o.chain.family, o.chain.name), { count: 0, tag: null });
      else if (o.rule) {
        const c = st.chains.get(k(o.rule.family, o.rule.chain));
        if (!c) continue;
        if (c.count === 0) c.tag = typeof o.rule.comment === 'string' ? o.rule.comment : null;
        c.count++;
      } else if (o.set) st.sets.set(k(o.set.family, o.set.name), new Set((o.set.elem ?? []).map(elemText)));
      else if (o.map) {
        const m = new Map<string, string>();
        for (const [key, val] of o.map.elem ?? []) m.set(keyText(key), o.map.map === 'verdict' ? verdictText(val) : String(val));
        st.maps.set(k(o.map.family, o.map.name), m);
      }
    }
  }
  return st;
}

const tagOf = (c: ChainPiece) => `st:${createHash('sha256').update(`${c.base ?? ''}\n${c.rules.join('\n')}`).digest('hex').slice(0, 16)}`;
const q = (key: string) => /^0x[0-9a-f]+$/.test(key) ? key : `"${key}"`;

/** The transaction that makes the kernel hold `want` (empty when it already does). */
export function plan(table: string, st: NftState, want: Pieces): string[] {
  const out: string[] = [];
  for (const fam of new Set([...want.chains.map((c) => c.family), ...want.sets.map((s) => s.family), ...want.elems.map((e) => e.family)])) {
    if (!st.tables.has(fam)) out.push(`add table ${fam} ${table}`);
  }
  for (const s of want.sets) {
    const have = st.sets.get(k(s.family, s.name)) ?? st.maps.get(k(s.family, s.name));
    if (!have) {
      out.push(`add ${s.map ? 'map' : 'set'} ${s.family} ${table} ${s.name} { ${s.decl} }`);
      if (s.elements.length) out.push(`add element ${s.family} ${table} ${s.name} { ${s.elements.join(', ')} }`);
      continue;
    }
    if (!(have instanceof Set)) continue;
    const want2 = new Set(s.elements);
    const gone = [...have].filter((e) => !want2.has(e));
    const added = s.elements.filter((e) => !have.has(e));
    if (gone.length) out.push(`delete element ${s.family} ${table} ${s.name} { ${gone.join(', ')} }`);
    if (added.length) out.push(`add element ${s.family} ${table} ${s.name} { ${added.join(', ')} }`);
  }
  for (const c of want.chains) {
    const have = st.chains.get(k(c.family, c.name));
    if (c.declareOnly) {
      if (!have) out.push(`add chain ${c.family} ${table} ${c.name}`);
      continue;
    }
    const tag = tagOf(c);
    if (have && have.count === c.rules.length && (c.rules.length === 0 || have.tag === tag)) continue;
    // flushed even when it was missing: another transaction may have made it meanwhile
    out.push(`add chain ${c.family} ${table} ${c.name}${c.base ? ` { ${c.base} }` : ''}`, `flush chain ${c.family} ${table} ${c.name}`);
    c.rules.forEach((r, i) => out.push(`add rule ${c.family} ${table} ${c.name} ${r}${i === 0 ? ` comment "${tag}"` : ''}`));
  }
  for (const e of want.elems) {
    const have = st.maps.get(k(e.family, e.map))?.get(e.key);
    if (have === e.value) continue;
    if (have !== undefined) out.push(`delete element ${e.family} ${table} ${e.map} { ${q(e.key)} }`);
    out.push(`add element ${e.family} ${table} ${e.map} { ${q(e.key)} : ${e.value} }`);
  }
  return out;
}

/** The transaction that removes pieces (map elements first, then chains, then sets); only what exists. */
export function planRemoval(table: string, st: NftState, gone: { chains: Array<{ family: Family; name: string }>; sets: Array<{ family: Family; name: string }>; elems: Array<{ family: Family; map: string; key: string }> }): string[] {
  const out: string[] = [];
  for (const e of gone.elems) if (st.maps.get(k(e.family, e.map))?.has(e.key)) out.push(`delete element ${e.family} ${table} ${e.map} { ${q(e.key)} }`);
  for (const c of gone.chains) if (st.chains.has(k(c.family, c.name))) out.push(`flush chain ${c.family} ${table} ${c.name}`);
  for (const c of gone.chains) if (st.chains.has(k(c.family, c.name))) out.push(`delete chain ${c.family} ${table} ${c.name}`);
  for (const s of gone.sets) if (st.sets.has(k(s.family, s.name))) out.push(`delete set ${s.family} ${table} ${s.name}`);
  return out;
}

/** The chains (of a family) whose names start with `prefix`, as the kernel holds them. */
export function chainsWithPrefix(st: NftState, family: Family, prefix: string): string[] {
  return [...st.chains.keys()].filter((key) => key.startsWith(`${family} ${prefix}`)).map((key) => key.slice(family.length + 1));
}

export function setsWithPrefix(st: NftState, family: Family, prefix: string): string[] {
  return [...st.sets.keys()].filter((key) => key.startsWith(`${family} ${prefix}`)).map((key) => key.slice(family.length + 1));
}
