// The network driver: the Linux data plane of tenant networks on one host
// (Neutron's linuxbridge agent + dhcp agent + security groups + L3 agent, in one).
//
// Per network: a Linux bridge brq<id>, for VXLAN a device vx-<vni> on it
// (MTU inside, static FDB toward every peer host: all-zeros entries for
// flooding plus one per remote MAC, no multicast, no learning), for flat the
// mapped host interface on it; a conntrack zone; DHCP (dhcp.ts) when this host
// serves it. A flat network whose physical network is mapped to a host bridge
// (`bridgeMappings`) uses that bridge instead and never changes it. Where a
// network's ports plug in is resolved once (`networkBridge`). Per port: the
// host side tap<id> on the bridge (a veth whose other end is `ifname` in the
// server's namespace /run/netns/st-<device_id>, configured with MAC,
// addresses, routes and MTU; or a tap a VM opens, owned by stratus-qemu
// when that user exists so a running qemu can open it), and, with port security,
// its nftables chains (rules.ts). Per security group: its rule chains and
// member sets. Per router: its namespace, veths and NAT (router.ts).
//
// State under <state>/network/ anchors what the driver holds (written before
// anything is created, removed last): networks/<id>.json (conntrack zone,
// bridge, MTU), ports/<id>.json (mark index, device, ip config),
// sgs/<id>.json, routers/<id>.json, dhcp/<id>/, radvd/<router id>/. `list` answers from them, not
// from the kernel: namespaces are machine-wide, and another agent's (a test's
// "host") routers must not look like ours.
// Every converge reads the kernel (links, addresses, routes, FDB, our nft
// tables, dnsmasq's pid) and changes only what differs, so a second converge
// changes nothing and a converge repairs drift; it returns what it changed.
// The server's namespace belongs to the server (the container driver deletes
// it): a port creates it when missing and never deletes it.
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import {
  bridgeName, NETWORK_KIND, NetworkErrorCode, PORT_KIND, ROUTER_KIND, SECURITY_GROUP_KIND, serverNamespace, tapName, vxlanName,
  type NetworkObserved, type NetworkSpec, type PortIpConfig, type PortObserved, type PortSpec, type RouterObserved, type RouterSpec,
  type SecurityGroupObserved, type SecurityGroupSpec, type Segmentation,
} from '../../../network/protocol.ts';
import { run, Spawner } from '../../exec.ts';
import { transient, userError } from '../../errors.ts';
import type { Driver } from '../driver.ts';
import { parsePrefix, prefixText } from './addr.ts';
import { convergeDhcp, destroyDhcp } from './dhcp.ts';
import { convergeRouter, destroyRouter, type RouterHost } from './router.ts';
import { exists, HostNet, NETNS_DIR, type AddrInfo, type LinkInfo, type RouteInfo } from './host.ts';
import { emptyPieces, parseState, plan, planRemoval, setsWithPrefix, type NftState, type Pieces } from './nft.ts';
import type { MetadataProxy } from '../../metadata-proxy.ts';
import { VM_USER, vmUserExists } from '../qemu-user.ts';
import { basePieces, MAX_PORTS, portPieces, portRemoval, sgChains, sgPieces, sgSetPrefix, zoneElem, zonePieces } from './rules.ts';

export interface NetworkDriverOptions {
  stateDir: string;
  log: Logger;
  /** The namespace holding bridges, VXLAN devices and our nft tables; null (default): the agent's own. */
  hostNetns?: string | null;
  /** This host's VXLAN endpoint (its underlay address); VXLAN networks fail without it. */
  underlayIp?: string | null;
  /** The underlay interface VXLAN sends through (optional: the route to each peer decides otherwise). */
  underlayDev?: string | null;
  /** flat networks: physical network name -> host interface put on the network's bridge. */
  physicalInterfaces?: Record<string, string>;
  /**
   * flat networks: physical network name -> an existing host bridge used as
   * the network's bridge (Neutron linuxbridge's bridge_mappings; e.g. the
   * all-in-one's br-ex). The driver plugs into it and never changes or deletes it.
   */
  bridgeMappings?: Record<string, string>;
  /** Name of our nft tables (bridge and inet). */
  table?: string;
  /** The metadata service's relay (dhcp.ts runs its haproxy in each DHCP namespace); none: no metadata service. */
  metadata?: MetadataProxy | null;
  /**
   * Whether a server is on this host (the container driver's, which owns the
   * servers' namespaces): a port that made its server's namespace, coming
   * before the server, removes it when it goes unless the server is here.
   */
  serverHere: (serverId: string) => Promise<boolean>;
}

export const NETWORK_KINDS = [NETWORK_KIND, PORT_KIND, SECURITY_GROUP_KIND, ROUTER_KIND] as const;
export type NetworkKind = (typeof NETWORK_KINDS)[number];

export interface Converged<O> { observed: O; changes: string[] }

type AnySpec = NetworkSpec | PortSpec | SecurityGroupSpec | RouterSpec;
type AnyObserved = NetworkObserved | PortObserved | SecurityGroupObserved | RouterObserved;

/** State files of each kind under <state>/network/. */
const STATE_DIRS = { [NETWORK_KIND]: 'networks', [PORT_KIND]: 'ports', [SECURITY_GROUP_KIND]: 'sgs', [ROUTER_KIND]: 'routers' } as const;
type StateKind = (typeof STATE_DIRS)[NetworkKind];

/**
 * What the driver holds of a network. `bridge` is where the network's ports
 * plug in on this host (`owned`: brq<id>, made and deleted here; else a mapped
 * host bridge); `mtu` the network's. Files of older versions lack them.
 */
interface NetworkState { zone: number; vxlan: string | null; physical: string | null; bridge?: string; owned?: boolean; mtu?: number }

/** The bridge of a network on this host, as ports, DHCP and routers plug into it. */
export interface NetworkBridge { bridge: string; mtu: number }
interface PortState {
  index: number; network_id: string; device_id: string; vif: PortSpec['vif']; ip_config: PortIpConfig;
  /** A veth port was plugged into its server's namespace (set once its inside is converged). */
  plugged?: boolean;
  /** The port made its server's namespace (it came before the server). */
  made_namespace?: boolean;
}

const ID = /^[0-9A-Za-z][0-9A-Za-z_-]{0,63}$/;
const MAX_ZONE = 0xffff;

/** resolv.conf for a server from the ip configs of its ports (first port first). */
export function resolvConf(configs: PortIpConfig[]): string {
  const ns = [...new Set(configs.flatMap((c) => c.dns_nameservers))].slice(0, 3);
  const search = [...new Set(configs.flatMap((c) => c.dns_search))];
  return [...ns.map((n) => `nameserver ${n}`), ...(search.length ? [`search ${search.join(' ')}`] : [])].join('\n') + '\n';
}

type NftGone = Parameters<typeof planRemoval>[2];
interface NftRequest { want: Pieces; gone?: NftGone; extra?: (st: NftState) => string[]; resolve: (lines: string[]) => void; reject: (err: unknown) => void }

export class NetworkDriver implements Driver {
  readonly name = 'network';
  readonly serves = { [NETWORK_KIND]: [], [PORT_KIND]: [], [SECURITY_GROUP_KIND]: [], [ROUTER_KIND]: [] };
  private readonly o: NetworkDriverOptions & { table: string };
  private readonly sp = new Spawner();
  private readonly host: HostNet;
  private readonly root: string;
  private readonly log: Logger;
  /** nft changes asked while a transaction runs: the next one takes them all (group commit). */
  private nftPending: NftRequest[] = [];
  private nftDraining = false;
  /** Index allocation runs one at a time. */
  private allocLock: Promise<unknown> = Promise.resolve();
  /** `arping` is installed (gratuitous ARP for floating IPs). */
  private arping = false;
  /** `conntrack` is installed (a router forgets the connections of a floating IP that goes). */
  private conntrack = false;
  /** `radvd` is installed (routers' IPv6 router advertisements). */
  private radvd = false;

  constructor(o: NetworkDriverOptions) {
    this.o = { ...o, table: o.table ?? 'stratus' };
    this.root = join(o.stateDir, 'network');
    this.log = o.log;
    this.host = new HostNet(this.sp, join(this.root, 'tmp'), o.hostNetns ?? null);
  }

  private dir(kind: StateKind | 'dhcp' | 'radvd') {
    return join(this.root, kind);
  }

  private file(kind: StateKind, id: string) {
    if (!ID.test(id)) throw userError(NetworkErrorCode.specInvalid, `bad id ${JSON.stringify(id)}`);
    return join(this.dir(kind), `${id}.json`);
  }

  async start(): Promise<void> {
    const bins = ['ip', 'bridge', 'nft', 'dnsmasq', 'nsenter', 'sysctl', 'timeout', ...(this.o.metadata ? ['haproxy'] : [])];
    const r = await run('sh', ['-c', 'for b do command -v "$b" >/dev/null || echo "$b"; done', 'sh', ...bins]);
    const missing = r.stdout.split('\n').filter(Boolean);
    if (missing.length) throw new Error(`the network driver needs ${missing.join(', ')} (Debian packages: iproute2 nftables dnsmasq-base util-linux procps coreutils haproxy)`);
    for (const d of ['networks', 'ports', 'sgs', 'routers', 'dhcp', 'radvd', 'tmp'] as const) await fsp.mkdir(join(this.root, d), { recursive: true, mode: 0o700 });
    // bridged IPv4/IPv6 through the inet hooks (where conntrack is): the security groups need it; the
    // sysctls exist once br_netfilter is loaded (a fresh host may not have it yet)
    if (!(await exists('/proc/sys/net/bridge'))) await run('modprobe', ['br_netfilter']);
    await this.host.runOk('sysctl', ['-qw', 'net.bridge.bridge-nf-call-iptables=1', 'net.bridge.bridge-nf-call-ip6tables=1']);
    await this.applyNft(emptyPieces());
    this.arping = (await run('sh', ['-c', 'command -v arping'])).code === 0;
    this.conntrack = (await run('sh', ['-c', 'command -v conntrack'])).code === 0;
    this.radvd = (await run('sh', ['-c', 'command -v radvd'])).code === 0;
  }

  async stop(): Promise<void> {
    await this.o.metadata?.close();
    this.sp.close();
  }

  /** Ids of what the driver holds for a kind (anything not desired is destroyed by the agent). */
  async list(kind: NetworkKind): Promise<string[]> {
    const d = this.dir(STATE_DIRS[kind]);
    return (await fsp.readdir(d).catch(() => [] as string[])).filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -5)).filter((n) => ID.test(n)).sort();
  }

  async converge(kind: typeof NETWORK_KIND, id: string, spec: NetworkSpec): Promise<Converged<NetworkObserved>>;
  async converge(kind: typeof PORT_KIND, id: string, spec: PortSpec): Promise<Converged<PortObserved>>;
  async converge(kind: typeof SECURITY_GROUP_KIND, id: string, spec: SecurityGroupSpec): Promise<Converged<SecurityGroupObserved>>;
  async converge(kind: typeof ROUTER_KIND, id: string, spec: RouterSpec): Promise<Converged<RouterObserved>>;
  async converge(kind: NetworkKind, id: string, spec: AnySpec): Promise<Converged<AnyObserved>>;
  async converge(kind: NetworkKind, id: string, spec: AnySpec): Promise<Converged<AnyObserved>> {
    if (spec.deleted) {
      await this.destroy(kind, id);
      return { observed: kind === PORT_KIND ? { state: 'deleted', device: null } : { state: 'deleted' }, changes: [] };
    }
    if (kind === NETWORK_KIND) return this.convergeNetwork(id, spec as NetworkSpec);
    if (kind === PORT_KIND) return this.convergePort(id, spec as PortSpec);
    if (kind === ROUTER_KIND) return this.convergeRouter(id, spec as RouterSpec);
    return this.convergeSecurityGroup(id, spec as SecurityGroupSpec);
  }

  /** Removes everything of one resource. Idempotent. */
  async destroy(kind: NetworkKind, id: string): Promise<void> {
    if (kind === NETWORK_KIND) return this.destroyNetwork(id);
    if (kind === PORT_KIND) return this.destroyPort(id);
    if (kind === ROUTER_KIND) return this.destroyRouter(id);
    return this.destroySecurityGroup(id);
  }

  /** What a server's resolv.conf should say, from its ports here; null when it has none. */
  async serverResolvConf(serverId: string): Promise<string | null> {
    const ports: PortState[] = [];
    for (const id of await this.list(PORT_KIND)) {
      const st = await this.readJson<PortState>('ports', id);
      if (st?.device_id === serverId) ports.push(st);
    }
    if (!ports.length) return null;
    ports.sort((a, b) => (a.vif.ifname < b.vif.ifname ? -1 : 1));
    return resolvConf(ports.map((p) => p.ip_config));
  }

  // ---- state files

  private async readJson<T>(kind: StateKind, id: string): Promise<T | null> {
    const text = await fsp.readFile(this.file(kind, id), 'utf8').catch(() => null);
    return text === null ? null : (JSON.parse(text) as T);
  }

  private async writeJson(kind: StateKind, id: string, value: unknown): Promise<void> {
    const f = this.file(kind, id);
    const text = JSON.stringify(value) + '\n';
    if ((await fsp.readFile(f, 'utf8').catch(() => null)) === text) return;
    await fsp.writeFile(`${f}.tmp`, text, { mode: 0o600 });
    await fsp.rename(`${f}.tmp`, f);
  }

  /** The lowest number in 1..max that no state file of `kind` holds under `field`. */
  private allocate(kind: 'networks' | 'ports', field: 'zone' | 'index', max: number, id: string, make: (n: number) => unknown): Promise<void> {
    const step = this.allocLock.then(async () => {
      if (await this.readJson(kind, id)) return;
      const used = new Set<number>();
      for (const other of await this.list(kind === 'networks' ? NETWORK_KIND : PORT_KIND)) {
        const st = await this.readJson<Record<string, number>>(kind, other);
        if (st) used.add(st[field]!);
      }
      let n = 1;
      while (used.has(n)) n++;
      if (n > max) throw transient(NetworkErrorCode.hostFailure, `no free ${field} on this host (${max} in use)`);
      await this.writeJson(kind, id, make(n));
    });
    this.allocLock = step.catch(() => undefined);
    return step;
  }

  // ---- nftables

  /**
   * Makes our tables hold `want` (plus the skeleton), removing `gone` first;
   * returns the commands run for this request. Requests made while a
   * transaction runs wait and then go together: one read of the tables, one
   * `nft -f` (reading a table costs as much as the table holds, so one
   * transaction per port would make n ports cost n^2). A batch the kernel
   * refuses is applied again one request at a time, so a bad request fails
   * alone.
   */
  private applyNft(want: Pieces, gone?: NftGone, extra?: (st: NftState) => string[]): Promise<string[]> {
    return new Promise((resolve, reject) => {
      this.nftPending.push({ want, gone, extra, resolve, reject });
      if (!this.nftDraining) void this.drainNft();
    });
  }

  private async drainNft(): Promise<void> {
    this.nftDraining = true;
    try {
      while (this.nftPending.length) {
        const batch = this.nftPending.splice(0);
        try {
          const lines = await this.nftTransaction(batch);
          batch.forEach((r, i) => r.resolve(lines[i]));
        } catch (err) {
          if (batch.length === 1) { batch[0].reject(err); continue; }
          for (const r of batch) await this.nftTransaction([r]).then(([l]) => r.resolve(l), r.reject);
        }
      }
    } finally {
      this.nftDraining = false;
    }
  }

  /** One read of our tables and one transaction for the requests; each one's commands. */
  private async nftTransaction(batch: NftRequest[]): Promise<string[][]> {
    const st = parseState(await this.host.nftState(this.o.table));
    const base = plan(this.o.table, st, basePieces());
    const each = batch.map((r) => [...(r.gone ? planRemoval(this.o.table, st, r.gone) : []), ...plan(this.o.table, st, r.want), ...(r.extra ? r.extra(st) : [])]);
    // in the order asked, each request's own order kept (a chain is flushed before it is deleted)
    await this.host.batch('nft', [...base, ...each.flat()]);
    return each.map((l, i) => (i === 0 ? [...base, ...l] : l).map((x) => `nft ${x}`));
  }

  // ---- networks

  private async convergeNetwork(id: string, spec: NetworkSpec): Promise<Converged<NetworkObserved>> {
    const changes: string[] = [];
    const seg = spec.segmentation;
    if (seg.type === 'vxlan' && (!seg.vni || seg.vni < 1 || seg.vni > 0xffffff)) throw userError(NetworkErrorCode.specInvalid, `bad VNI ${seg.vni}`);
    if (seg.type === 'vxlan' && !this.o.underlayIp) throw userError(NetworkErrorCode.specInvalid, 'this host has no VXLAN endpoint (underlay address)');
    const { bridge, owned, physical } = this.resolveBridge(id, seg);

    await this.allocate('networks', 'zone', MAX_ZONE, id, (zone) => ({ zone, vxlan: null, physical: null } satisfies NetworkState));
    const st = (await this.readJson<NetworkState>('networks', id))!;
    const vx = seg.type === 'vxlan' ? vxlanName(seg.vni!) : null;
    // a device of an earlier spec (another VNI, interface or bridge) goes first; only the network's
    // own devices are read (a dump of every link costs as much as the host has ports)
    const dhcpTap = spec.dhcp ? tapName(spec.dhcp.port_id) : null;
    const links = await this.host.linksNamed([...new Set([bridge, st.bridge ?? bridgeName(id), vx, st.vxlan, physical, st.physical, dhcpTap].filter((n): n is string => !!n))]);
    const lines: string[] = [];
    const oldBridge = st.bridge ?? bridgeName(id);
    if (st.vxlan && st.vxlan !== vx && links.has(st.vxlan)) lines.push(`link del dev ${st.vxlan}`);
    if (st.physical && st.physical !== physical && links.get(st.physical)?.master === oldBridge) lines.push(`link set dev ${st.physical} nomaster`);
    if (oldBridge !== bridge && st.owned !== false && links.has(oldBridge)) lines.push(`link del dev ${oldBridge}`);
    if (oldBridge !== bridge) await this.applyNft(emptyPieces(), { chains: [], sets: [], elems: [zoneElem(oldBridge)] });
    await this.writeJson('networks', id, { zone: st.zone, vxlan: vx, physical: physical ?? null, bridge, owned, mtu: spec.mtu } satisfies NetworkState);

    const up = spec.admin_state_up ? 'up' : 'down';
    const isUp = (l: LinkInfo) => l.flags.includes('UP') === spec.admin_state_up;
    const b = links.get(bridge);
    if (owned) {
      if (!b) lines.push(`link add name ${bridge} mtu ${spec.mtu} type bridge`);
      if (!b || b.mtu !== spec.mtu || !isUp(b)) lines.push(`link set dev ${bridge} mtu ${spec.mtu} ${up}`);
    } else if (b?.linkinfo?.info_kind !== 'bridge') {
      throw transient(NetworkErrorCode.hostFailure, `bridge ${bridge} of physical network ${seg.physical_network} is missing on this host`);
    }
    if (vx) {
      let v = links.get(vx);
      const data = v?.linkinfo?.info_data ?? {};
      if (v && (v.linkinfo?.info_kind !== 'vxlan' || data.id !== seg.vni || data.local !== this.o.underlayIp || data.learning !== false)) {
        lines.push(`link del dev ${vx}`);
        v = undefined;
      }
      if (!v) lines.push(`link add ${vx} mtu ${spec.mtu} type vxlan id ${seg.vni} local ${this.o.underlayIp} dstport 4789 nolearning${this.o.underlayDev ? ` dev ${this.o.underlayDev}` : ''}`);
      if (!v || v.master !== bridge || v.mtu !== spec.mtu || !v.flags.includes('UP')) lines.push(`link set dev ${vx} master ${bridge} mtu ${spec.mtu} up`);
    }
    if (physical) {
      const p = links.get(physical);
      if (!p) throw transient(NetworkErrorCode.hostFailure, `interface ${physical} of physical network ${seg.physical_network} is missing`);
      if (p.master !== bridge || !p.flags.includes('UP')) lines.push(`link set dev ${physical} master ${bridge} up`);
    }
    await this.host.batch('ip', lines);
    changes.push(...lines);

    if (vx) changes.push(...(await this.convergeFdb(vx, spec)));

    // a mapped bridge stays in the host's zone: it may carry the host's own
    // traffic (the all-in-one's br-ex), whose replies must meet their connections
    changes.push(...(owned
      ? await this.applyNft(zonePieces(bridge, st.zone))
      : await this.applyNft(emptyPieces(), { chains: [], sets: [], elems: [zoneElem(bridge)] })));

    const dhcpDir = join(this.dir('dhcp'), id);
    if (spec.dhcp) {
      // the DHCP port's link as read, unless the batch above changed bridges under it
      const fresh = lines.length ? await this.host.linksNamed([dhcpTap!]) : links;
      const dhcp = await convergeDhcp(this.host, dhcpDir, id, spec, spec.dhcp, bridge, fresh, this.o.metadata);
      changes.push(...dhcp.changes);
      if (dhcp.refused.length) this.log.warn({ network: id, refused: dhcp.refused }, 'names unsafe for dnsmasq not written (their defaults instead)');
    } else if (await exists(dhcpDir)) {
      await destroyDhcp(this.host, dhcpDir, id, this.o.metadata);
      changes.push('dhcp removed');
    }
    if (changes.length) this.log.debug({ network: id, changes }, 'network converged');
    return { observed: { state: spec.admin_state_up ? 'active' : 'down' }, changes };
  }

  /**
   * Where a network's ports plug in on this host: for a flat network on a
   * bridge-mapped physical network, the mapped host bridge (not ours: never
   * changed or deleted); otherwise the network's own brq<id>, carrying its
   * VXLAN device or the interface its physical network is mapped to.
   */
  private resolveBridge(id: string, seg: Segmentation): { bridge: string; owned: boolean; physical: string | null } {
    if (seg.type !== 'flat') return { bridge: bridgeName(id), owned: true, physical: null };
    const name = seg.physical_network ?? '';
    const mapped = Object.hasOwn(this.o.bridgeMappings ?? {}, name) ? this.o.bridgeMappings![name]! : null;
    if (mapped) return { bridge: mapped, owned: false, physical: null };
    const physical = Object.hasOwn(this.o.physicalInterfaces ?? {}, name) ? this.o.physicalInterfaces![name]! : null;
    if (!physical) throw userError(NetworkErrorCode.specInvalid, `physical network ${seg.physical_network} is not mapped to a bridge or an interface on this host`);
    return { bridge: bridgeName(id), owned: true, physical };
  }

  /**
   * The bridge of a network converged on this host (what its ports, DHCP
   * server and router interfaces plug into) and its MTU; a transient
   * `network_missing` while the network is not (yet) set up here.
   */
  async networkBridge(networkId: string, what: string, alsoRead: string[] = []): Promise<NetworkBridge & { links: Map<string, LinkInfo> }> {
    const st = await this.readJson<NetworkState>('networks', networkId);
    if (!st) throw transient(NetworkErrorCode.networkMissing, `network ${networkId} of ${what} is not set up on this host yet`);
    const bridge = st.bridge ?? bridgeName(networkId);
    // the caller's own links in the same read
    const links = await this.host.linksNamed([bridge, ...alsoRead]);
    const b = links.get(bridge);
    if (!b) throw transient(NetworkErrorCode.networkMissing, `bridge ${bridge} of network ${networkId} is missing`);
    return { bridge, mtu: st.mtu ?? b.mtu, links };
  }

  /** Static FDB of the VXLAN device: flooding to every peer, each remote MAC to its host. */
  private async convergeFdb(vx: string, spec: NetworkSpec): Promise<string[]> {
    const have = (await this.host.fdb(vx)).filter((e) => e.dst !== undefined && !(e.flags ?? []).includes('master'));
    const want: Array<{ mac: string; dst: string }> = [];
    for (const p of spec.vxlan_peers) {
      want.push({ mac: '00:00:00:00:00:00', dst: p.underlay_ip });
      for (const mac of p.macs) want.push({ mac: mac.toLowerCase(), dst: p.underlay_ip });
    }
    const key = (e: { mac: string; dst?: string }) => `${e.mac} ${e.dst}`;
    const haveKeys = new Set(have.map(key));
    const wantKeys = new Set(want.map(key));
    const lines: string[] = [];
    for (const e of have) if (!wantKeys.has(key(e))) lines.push(`fdb del ${e.mac} dev ${vx} dst ${e.dst}`);
    for (const e of want) {
      if (haveKeys.has(key(e))) continue;
      lines.push(e.mac === '00:00:00:00:00:00' ? `fdb append ${e.mac} dev ${vx} dst ${e.dst}` : `fdb replace ${e.mac} dev ${vx} dst ${e.dst} self permanent`);
    }
    await this.host.batch('bridge', lines);
    return lines;
  }

  private async destroyNetwork(id: string): Promise<void> {
    const st = await this.readJson<NetworkState>('networks', id);
    await destroyDhcp(this.host, join(this.dir('dhcp'), id), id, this.o.metadata);
    const bridge = st?.bridge ?? bridgeName(id);
    const links = await this.host.links();
    const lines: string[] = [];
    if (st?.vxlan && links.has(st.vxlan)) lines.push(`link del dev ${st.vxlan}`);
    if (st?.physical && links.get(st.physical)?.master === bridge) lines.push(`link set dev ${st.physical} nomaster`);
    // a mapped host bridge is the host's, not the network's
    if (st?.owned !== false && links.has(bridge)) lines.push(`link del dev ${bridge}`);
    await this.host.batch('ip', lines);
    await this.applyNft(emptyPieces(), { chains: [], sets: [], elems: [zoneElem(bridge)] });
    await fsp.rm(this.file('networks', id), { force: true });
  }

  // ---- ports

  private async convergePort(id: string, spec: PortSpec): Promise<Converged<PortObserved>> {
    const changes: string[] = [];
    const tap = tapName(id);
    const { bridge, links } = await this.networkBridge(spec.network_id, `port ${id}`, [tap]);
    if (!/^[a-zA-Z][a-zA-Z0-9_.-]{0,14}$/.test(spec.vif.ifname) && spec.vif.type === 'veth') throw userError(NetworkErrorCode.specInvalid, `bad interface name ${spec.vif.ifname}`);

    await this.allocate('ports', 'index', MAX_PORTS, id, (index) => ({ index, network_id: spec.network_id, device_id: spec.device_id, vif: spec.vif, ip_config: spec.ip_config } satisfies PortState));
    const prev = (await this.readJson<PortState>('ports', id))!;
    const hostLines: string[] = [];
    let t = links.get(tap);
    const kind = spec.vif.type === 'veth' ? 'veth' : 'tun';
    // another kind of device, or a veth into another server or under another name: made again
    if (t && (t.linkinfo?.info_kind !== kind || prev.device_id !== spec.device_id || prev.vif.ifname !== spec.vif.ifname || prev.vif.type !== spec.vif.type)) {
      await this.host.batch('ip', [`link del dev ${tap}`]);
      changes.push(`link del dev ${tap}`);
      t = undefined;
    }
    const samePlug = prev.device_id === spec.device_id && prev.vif.ifname === spec.vif.ifname && prev.vif.type === spec.vif.type;
    if (prev.device_id !== spec.device_id) await this.releaseNamespace(prev);
    const state: PortState = {
      index: prev.index, network_id: spec.network_id, device_id: spec.device_id, vif: spec.vif, ip_config: spec.ip_config,
      plugged: samePlug && prev.plugged === true, made_namespace: prev.device_id === spec.device_id && prev.made_namespace === true,
    };
    await this.writeJson('ports', id, state);
    const ns = serverNamespace(spec.device_id);
    // what the server's end is when it is made in this pass (nothing to read inside)
    let made: 'veth' | 'namespace' | null = null;
    if (spec.vif.type === 'veth') {
      if (!(await exists(`${NETNS_DIR}/${ns}`))) {
        // A port plugged before whose namespace is gone: the container driver removed it with its
        // server (whose ports compute deletes after it), or the host rebooted (the container driver
        // makes it again when it starts the server, and a later pass plugs the port).
        if (state.plugged) return { observed: { state: 'down', device: null }, changes };
        // Not plugged yet: the port came first (it goes in now, the container starts in the namespace),
        // or its server went before it came; the port remembers it made the namespace, and takes it
        // away when it goes unless the server is here (destroyPort).
        state.made_namespace = true;
        await this.writeJson('ports', id, state);
        // in the same batch as the veth going into it (its loopback comes up with the inside's lines)
        hostLines.push(`netns add ${ns}`);
        made = 'namespace';
      }
      if (!t) {
        hostLines.push(`link add ${tap} mtu ${spec.mtu} type veth peer name ${spec.vif.ifname} mtu ${spec.mtu} address ${spec.mac_address} netns ${ns}`);
        made ??= 'veth';
      }
    } else if (!t) hostLines.push(`tuntap add dev ${tap} mode tap${(await vmUserExists()) ? ` user ${VM_USER}` : ''}`);
    const up = spec.admin_state_up ? 'up' : 'down';
    if (!t || t.master !== bridge || t.mtu !== spec.mtu || t.flags.includes('UP') !== spec.admin_state_up) hostLines.push(`link set dev ${tap} master ${bridge} mtu ${spec.mtu} ${up}`);
    await this.host.batch('ip', hostLines);
    changes.push(...hostLines);
    if (spec.vif.type === 'veth') {
      changes.push(...(await this.convergeInside(ns, spec, made)));
      if (!state.plugged) await this.writeJson('ports', id, { ...state, plugged: true } satisfies PortState);
    }

    changes.push(...(spec.port_security_enabled
      ? await this.applyNft(portPieces(id, tap, prev.index, spec))
      : await this.applyNft({ chains: [], sets: [], elems: [] }, portRemoval(id, tap, prev.index))));
    if (changes.length) this.log.debug({ port: id, changes }, 'port converged');
    // after a batch that succeeded the device is as it set it; otherwise as read
    const present = hostLines.length > 0 || t !== undefined;
    const isUp = hostLines.length > 0 ? spec.admin_state_up : t?.flags.includes('UP') === true;
    return { observed: { state: present && isUp && spec.admin_state_up ? 'active' : 'down', device: present ? tap : null }, changes };
  }

  /**
   * The server's end of a veth: MAC, MTU, addresses, default routes and host
   * routes. `made`: the veth (or its namespace too) was made in this pass, so
   * its state is known (MAC and MTU from the add, down, no address or route)
   * without reading it.
   */
  private async convergeInside(ns: string, spec: PortSpec, made: 'veth' | 'namespace' | null): Promise<string[]> {
    const dev = spec.vif.ifname;
    const seen: { link: AddrInfo | null; routes: RouteInfo[] } = made
      ? { link: { ifname: dev, address: spec.mac_address.toLowerCase(), mtu: spec.mtu, flags: [], addr_info: [] }, routes: [] }
      : await this.host.inside(ns, dev);
    const l = seen.link;
    if (!l) throw transient(NetworkErrorCode.hostFailure, `interface ${dev} is missing in ${ns}`);
    const lines: string[] = made === 'namespace' ? ['link set dev lo up'] : [];
    const up = spec.admin_state_up;
    if (l.address !== spec.mac_address.toLowerCase() || l.mtu !== spec.mtu || l.flags.includes('UP') !== up) lines.push(`link set dev ${dev} address ${spec.mac_address} mtu ${spec.mtu} ${up ? 'up' : 'down'}`);
    const want = new Set(spec.ip_config.addresses.map((a) => `${a.ip_address}/${a.prefixlen}`));
    const have = new Set((l.addr_info ?? []).filter((a) => a.scope !== 'link').map((a) => `${a.local}/${a.prefixlen}`));
    for (const a of have) if (!want.has(a)) lines.push(`addr del ${a} dev ${dev}`);
    for (const a of want) if (!have.has(a)) lines.push(`addr add ${a} dev ${dev}${a.includes(':') ? ' nodad' : ''}`);
    const routes: Array<{ dst: string; via: string }> = [];
    const c = spec.ip_config;
    if (c.gateway4) routes.push({ dst: 'default', via: c.gateway4 });
    if (c.gateway6) routes.push({ dst: 'default', via: c.gateway6 });
    for (const r of c.routes) {
      const p = parsePrefix(r.destination);
      if (p) routes.push({ dst: p.len === 0 ? 'default' : prefixText(p), via: r.nexthop });
    }
    const key = (r: { dst: string; via?: string }) => `${r.dst} ${r.via}`;
    const haveRoutes = seen.routes.filter((r) => r.gateway).map((r) => ({ dst: r.dst, via: r.gateway! }));
    const wantKeys = new Set(routes.map(key));
    const haveKeys = new Set(haveRoutes.map(key));
    for (const r of haveRoutes) if (!wantKeys.has(key(r))) lines.push(`route del ${r.dst} via ${r.via} dev ${dev}`);
    if (up) for (const r of routes) if (!haveKeys.has(key(r))) lines.push(`route replace ${r.dst} via ${r.via} dev ${dev}`);
    await this.host.batch('ip', lines, ns);
    return lines.map((x) => `${ns}: ${x}`);
  }

  private async destroyPort(id: string): Promise<void> {
    const st = await this.readJson<PortState>('ports', id);
    const tap = tapName(id);
    await this.applyNft({ chains: [], sets: [], elems: [] }, portRemoval(id, tap, st?.index ?? null));
    const links = await this.host.linksNamed([tap]);
    if (links.has(tap)) await this.host.batch('ip', [`link del dev ${tap}`]);
    if (st) await this.releaseNamespace(st);
    await fsp.rm(this.file('ports', id), { force: true });
  }

  /** Removes the server namespace a port made, unless its server is on this host (whose driver then owns it). */
  private async releaseNamespace(st: PortState): Promise<void> {
    if (!st.made_namespace || (await this.o.serverHere(st.device_id))) return;
    const ns = serverNamespace(st.device_id);
    if (await exists(`${NETNS_DIR}/${ns}`)) await this.host.runOk('ip', ['netns', 'del', ns], false);
  }

  // ---- security groups

  private async convergeSecurityGroup(id: string, spec: SecurityGroupSpec): Promise<Converged<SecurityGroupObserved>> {
    await this.writeJson('sgs', id, {});
    const pieces = sgPieces(id, spec);
    const wanted = new Set(pieces.sets.map((s) => s.name));
    const changes = await this.applyNft(pieces, undefined, (st) => sgSetPrefix(id).flatMap((p) => setsWithPrefix(st, 'inet', p))
      .filter((name) => !wanted.has(name)).map((name) => `delete set inet ${this.o.table} ${name}`));
    return { observed: { state: 'active' }, changes };
  }

  private async destroySecurityGroup(id: string): Promise<void> {
    const c = sgChains(id);
    const chains = [{ family: 'inet' as const, name: c.ingress }, { family: 'inet' as const, name: c.egress }];
    // emptied first (a port still naming the group then drops what it allowed), removed once no port jumps to it
    await this.applyNft({ chains: chains.map((x) => ({ ...x, rules: [] })), sets: [], elems: [] });
    try {
      await this.applyNft({ chains: [], sets: [], elems: [] }, { chains, sets: [], elems: [] },
        (st) => sgSetPrefix(id).flatMap((p) => setsWithPrefix(st, 'inet', p)).map((name) => `delete set inet ${this.o.table} ${name}`));
    } catch (err) {
      throw transient(NetworkErrorCode.hostFailure, `security group ${id} is still used by a port here`, err);
    }
    await fsp.rm(this.file('sgs', id), { force: true });
  }

  // ---- routers

  private routerHost(): RouterHost {
    return {
      host: this.host, table: this.o.table, arping: this.arping, conntrack: this.conntrack, radvdDir: this.dir('radvd'), radvd: this.radvd,
      networkBridge: (n, what) => this.networkBridge(n, what),
    };
  }

  private async convergeRouter(id: string, spec: RouterSpec): Promise<Converged<RouterObserved>> {
    // the anchor first: a router the agent loses track of mid-way is still listed, so destroyed
    await this.writeJson('routers', id, {});
    const r = await convergeRouter(this.routerHost(), id, spec);
    if (r.changes.length) this.log.debug({ router: id, changes: r.changes }, 'router converged');
    return r;
  }

  private async destroyRouter(id: string): Promise<void> {
    // the id checked first: it names directories removed here
    const file = this.file('routers', id);
    await destroyRouter(this.host, id, this.dir('radvd'));
    await fsp.rm(file, { force: true });
  }

  /** Takes the skeleton and every resource out of the kernel (tests, and a host leaving the cloud); state files stay. */
  async removeTables(): Promise<void> {
    await this.host.run('nft', ['delete', 'table', 'bridge', this.o.table]);
    await this.host.run('nft', ['delete', 'table', 'inet', this.o.table]);
  }
}

