// The network driver's hands: every command runs through the agent's one
// long-lived /bin/sh (exec.ts's Spawner), in the host's network namespace
// (the root one in production; tests give each "host" a namespace of its
// own). Changes are batched: one `ip -batch` per namespace per converge, one
// `nft -f` transaction, one `bridge -batch`; reads gather several commands'
// JSON in one shell.
import { randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { shQuote } from '../../../common/text.ts';
import { CommandError, type Spawner } from '../../exec.ts';

export const NETNS_DIR = '/run/netns';

export interface LinkInfo {
  ifname: string;
  address?: string;
  mtu: number;
  flags: string[];
  master?: string;
  operstate?: string;
  linkinfo?: { info_kind?: string; info_data?: Record<string, unknown> };
}

export interface AddrInfo extends LinkInfo { addr_info?: Array<{ family: string; local: string; prefixlen: number; scope: string }> }
export interface RouteInfo { dst: string; gateway?: string; dev?: string; protocol?: string }
export interface FdbEntry { mac: string; dst?: string; ifname?: string; flags?: string[] }

export class HostNet {
  private readonly sp: Spawner;
  private readonly tmpDir: string;
  /** The namespace holding bridges and the nft tables; null: the agent's own. */
  readonly netns: string | null;

  constructor(sp: Spawner, tmpDir: string, netns: string | null) {
    this.sp = sp;
    this.tmpDir = tmpDir;
    this.netns = netns;
  }

  /** `cmd args` as run in the host namespace. */
  private inHost(cmd: string, args: string[]): [string, string[]] {
    return this.netns ? ['nsenter', [`--net=${NETNS_DIR}/${this.netns}`, cmd, ...args]] : [cmd, args];
  }

  run(cmd: string, args: string[], host = true) {
    const [c, a] = host ? this.inHost(cmd, args) : [cmd, args];
    return this.sp.run(c, a);
  }

  async runOk(cmd: string, args: string[], host = true) {
    const r = await this.run(cmd, args, host);
    if (r.code !== 0) throw new CommandError(cmd, args, r);
    return r;
  }

  private tmp(tag: string) {
    return join(this.tmpDir, `${tag}-${randomBytes(6).toString('hex')}`);
  }

  /** Runs shell command lines (in the host namespace) and returns each one's stdout; a failing read yields ''. */
  async read(lines: string[]): Promise<string[]> {
    const file = this.tmp('read');
    const sep = `@@${randomBytes(4).toString('hex')}@@`;
    const script = lines.map((l) => `${l} 2>/dev/null; echo; echo ${sep}`).join('\n');
    const [c, a] = this.inHost('sh', ['-c', `{ ${script.replace(/\n/g, '; ')}; } >"$0"`, file]);
    try {
      const r = await this.sp.run(c, a);
      if (r.code !== 0) throw new CommandError('sh', ['-c', 'read'], r);
      const out = await fsp.readFile(file, 'utf8');
      return out.split(`${sep}\n`).slice(0, lines.length).map((s) => s.trim());
    } finally {
      await fsp.rm(file, { force: true });
    }
  }

  /** Runs a batch file through `tool` (`ip -batch`, `bridge -batch`, `nft -f`), in the host namespace or `netns`; nothing when empty. */
  async batch(tool: 'ip' | 'bridge' | 'nft', lines: string[], netns?: string): Promise<void> {
    if (!lines.length) return;
    const file = this.tmp(tool);
    await fsp.writeFile(file, lines.join('\n') + '\n');
    try {
      const args = tool === 'nft' ? ['-f', file] : [...(netns && tool === 'ip' ? ['-n', netns] : []), '-batch', file];
      // another namespace: `ip -n`, or the tool entered into it
      const r = !netns ? await this.run(tool, args) : tool === 'ip' ? await this.sp.run('ip', args) : await this.sp.run('nsenter', [`--net=${NETNS_DIR}/${netns}`, tool, ...args]);
      if (r.code !== 0) throw new CommandError(tool, args, { ...r, stderr: `${r.stderr} [batch: ${lines.join(' ; ').slice(0, 600)}]` });
    } finally {
      await fsp.rm(file, { force: true });
    }
  }

  async links(): Promise<Map<string, LinkInfo>> {
    const [text] = await this.read(['ip -j -d link show']);
    return new Map((JSON.parse(text || '[]') as LinkInfo[]).map((l) => [l.ifname, l]));
  }

  /** The named links that exist (one read; a dump of every link costs as much as the host has ports). */
  async linksNamed(names: string[]): Promise<Map<string, LinkInfo>> {
    const texts = await this.read(names.map((n) => `ip -j -d link show dev ${shQuote(n)}`));
    return new Map(texts.flatMap((t) => JSON.parse(t || '[]') as LinkInfo[]).map((l) => [l.ifname, l]));
  }

  /** Reads of one interface inside a namespace (not the host's): its addresses and routes. */
  async inside(netns: string, ifname: string): Promise<{ link: AddrInfo | null; routes: RouteInfo[] }> {
    const ns = shQuote(netns), dev = shQuote(ifname);
    const [a, r4, r6] = await this.read([`ip -j -n ${ns} addr show dev ${dev}`, `ip -j -n ${ns} -4 route show dev ${dev}`, `ip -j -n ${ns} -6 route show dev ${dev}`]);
    const link = (JSON.parse(a || '[]') as AddrInfo[])[0] ?? null;
    return { link, routes: [...JSON.parse(r4 || '[]'), ...JSON.parse(r6 || '[]')] as RouteInfo[] };
  }

  async fdb(dev: string): Promise<FdbEntry[]> {
    const [text] = await this.read([`bridge -j fdb show dev ${shQuote(dev)}`]);
    return JSON.parse(text || '[]') as FdbEntry[];
  }

  /** The nft listing of our tables (missing tables list as nothing). */
  async nftState(table: string): Promise<string> {
    return (await this.read([`nft -j list table bridge ${table}`, `nft -j list table inet ${table}`])).join('\n');
  }
}

export async function exists(p: string): Promise<boolean> {
  return fsp.lstat(p).then(() => true, () => false);
}
