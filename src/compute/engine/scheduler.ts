// The scheduler: places servers waiting in task_state 'scheduling' on hosts.
//
// Plan, then claim (Nomad's shape). Capacity is placement's: each compute
// host is a resource provider (uuid = host id) whose VCPU/MEMORY_MB/DISK_GB
// inventories are synced from compute_hosts every round; a server asks for
// the resources of its flavor (VCPU, MEMORY_MB, DISK_GB, overridden or added
// to by `resources:<CLASS>=<n>` extra specs, 0 removing a class) and for the
// traits its `trait:<NAME>=required|forbidden` specs name, as Nova's
// scheduler builds its placement request. The plan runs in memory over one
// snapshot of hosts, provider states and server groups: filters (host enabled
// and up; the kind of host the image needs and the flavor's `stratus:kind`
// extra spec; availability zone or forced host; earlier failed hosts; the
// provider's inventories and traits; server group affinity/anti-affinity;
// same_host and different_host hints), then weighers (free RAM, free vCPU,
// free disk: spread; soft affinity/anti-affinity). The claim is one
// transaction per host: placement locks the host's provider (a generation
// bump: a row lock on PostgreSQL; SQLite runs transactions one at a time),
// re-sums its usage, and for each planned server that still fits the server
// is placed with a conditional UPDATE ... WHERE version = <planned> AND
// task_state = 'scheduling' before its allocations are written. Concurrent
// schedulers (several replicas) can therefore never oversubscribe a host or
// place a server twice; a lost race leaves the server to the next round.
//
// A bare-metal server (kind `baremetal`) goes to a node instead, as Nova's
// scheduler with the ironic driver: the candidates are the nodes' resource
// providers (one unit of the node's CUSTOM_<class>, reserved while the node
// is not free), each under its conductor's host (which must be up and in the
// zone); the flavor's VCPU/MEMORY_MB/DISK_GB are not asked of a node, its
// custom class and traits are (none asked: a unit of any node's class). The
// claim is the same transaction on the node's provider; the server's host is
// the conductor's, its `node` the node's uuid. The retry filter skips the
// nodes a build failed on (failed_hosts holds node uuids for this kind).
import { PowerState } from '../schema.ts';
import { parseJsonList, parseJsonObject } from '../../common/json.ts';
import type { Selectable } from 'kysely';
import type { Logger } from 'pino';
import type { Db } from '../../db/database.ts';
import type { Tables } from '../../db/tables.ts';
import { nowIso } from '../../common/ids.ts';
import { capacityOf, claimOnProvider, firstUnfit, providerStates, syncComputeProviders, type ProviderState, type Resources } from '../../placement/service.ts';

type Server = Selectable<Tables['compute_servers']>;
type Host = Selectable<Tables['compute_hosts']>;

export interface SchedulerConfig {
  /** Seconds without a heartbeat after which a host is down (Nova's service_down_time). */
  serviceDownTime: number;
  /** Build attempts per server, the first included (Nova's scheduler max_attempts). */
  maxAttempts: number;
  /** Servers placed per round. */
  batchSize: number;
  /** Weigher multipliers (Nova's ram/cpu/disk_weight_multiplier: positive spreads, negative packs). */
  ramWeight: number;
  cpuWeight: number;
  diskWeight: number;
  softAffinityWeight: number;
  softAntiAffinityWeight: number;
}

export const defaultSchedulerConfig: SchedulerConfig = {
  serviceDownTime: 60, maxAttempts: 3, batchSize: 500, ramWeight: 1, cpuWeight: 1, diskWeight: 1, softAffinityWeight: 1, softAntiAffinityWeight: 1,
};

/** Task states of servers waiting for a host: a build, and the unshelve of an offloaded server. */
const WAITING = ['scheduling', 'unshelving'];

export const NO_VALID_HOST = 'No valid host was found. There are not enough hosts available.';

interface EmbeddedFlavor { vcpus: number; ram: number; disk: number; ephemeral?: number; swap?: number; extra_specs?: Record<string, string> }

/** What a server asks of placement: resources, and traits its host must (not) have. */
export interface PlacementRequest { resources: Resources; required: string[]; forbidden: string[] }

interface GroupInfo { policy: string; maxPerHost: number; hosts: Map<string, number> }

export function hostKinds(h: { kinds: string }): string[] {
  try {
    const v = JSON.parse(h.kinds) as unknown;
    if (Array.isArray(v)) return v.map(String);
  } catch { /* comma list */ }
  return h.kinds.split(',').map((s) => s.trim()).filter(Boolean);
}

export function hostIsUp(h: Host, downTimeSeconds: number, now = Date.now()): boolean {
  return h.forced_down === 0 && now - Date.parse(h.last_seen_at) <= downTimeSeconds * 1000;
}

/**
 * The placement request of a server's flavor, as Nova builds it: VCPU,
 * MEMORY_MB and DISK_GB (root + ephemeral + swap rounded up to GB), then each
 * `resources:<CLASS>=<n>` extra spec sets that class (0 drops it), and
 * `trait:<NAME>=required|forbidden` adds a trait. Malformed specs are ignored
 * (the flavor API refuses them at write).
 */
export function requestOf(s: { flavor: string; image_id?: string | null }): PlacementRequest {
  let f: EmbeddedFlavor;
  try {
    f = JSON.parse(s.flavor) as EmbeddedFlavor;
  } catch {
    f = { vcpus: 1, ram: 512, disk: 0 };
  }
  const resources: Resources = {
    // a server booted from a volume (no image) has no root disk on the host: its flavor's disk is not claimed, as Nova's
    VCPU: f.vcpus ?? 0, MEMORY_MB: f.ram ?? 0, DISK_GB: (s.image_id === null ? 0 : f.disk ?? 0) + (f.ephemeral ?? 0) + Math.ceil((f.swap ?? 0) / 1024),
  };
  const required: string[] = [];
  const forbidden: string[] = [];
  for (const [key, value] of Object.entries(f.extra_specs ?? {})) {
    const res = /^resources:([A-Z0-9_]+)$/.exec(key);
    if (res && /^\d+$/.test(value)) resources[res[1]!] = Number(value);
    const trait = /^trait:([A-Z0-9_]+)$/.exec(key);
    if (trait && value === 'required') required.push(trait[1]!);
    if (trait && value === 'forbidden') forbidden.push(trait[1]!);
  }
  for (const [rc, n] of Object.entries(resources)) if (!(n > 0)) delete resources[rc];
  return { resources, required, forbidden };
}

function flavorSpecs(s: { flavor: string }): Record<string, string> {
  try {
    return (JSON.parse(s.flavor) as EmbeddedFlavor).extra_specs ?? {};
  } catch {
    return {};
  }
}



const asList = (v: unknown): string[] => (v === undefined || v === null ? [] : Array.isArray(v) ? v.map(String) : [String(v)]);

/** Where a server goes: a host, and for a bare-metal server the node (its provider) under that host. */
export interface Placement { server: Server; host: Host; node?: string }

/** A bare-metal node as the scheduler sees it (the bare-metal service's, through compute's wiring). */
export interface SchedulableNode { uuid: string; conductor: string | null }

/** The kind of server scheduled onto bare-metal nodes rather than hosts. */
export const BAREMETAL = 'baremetal';

/** What a bare-metal server asks of a node: its custom classes (one unit of any node's class when none), and traits. */
export function nodeRequestOf(s: { flavor: string; image_id?: string | null }): PlacementRequest {
  const req = requestOf(s);
  const resources: Resources = {};
  for (const [rc, n] of Object.entries(req.resources)) if (rc.startsWith('CUSTOM_')) resources[rc] = n;
  return { ...req, resources };
}

/** The placement request of a node's claim: the custom classes asked, or the node's one class. */
function nodeClaim(s: Server, state: ProviderState | undefined): Resources {
  const want = nodeRequestOf(s).resources;
  if (Object.keys(want).length || !state) return want;
  const own = [...state.inventories.keys()].find((rc) => rc.startsWith('CUSTOM_'));
  return own ? { [own]: 1 } : {};
}
export interface Rejection { server: Server; reason: string }

export class Scheduler {
  private readonly db: Db;
  private readonly log: Logger;
  readonly config: SchedulerConfig;
  /** Called for each server once claimed on a host (its ports are bound there, as its kind plugs them). */
  private readonly placedOn: ((serverId: string, host: string, kind: string) => Promise<void>) | null;
  /** The bare-metal nodes (none: bare-metal servers find no valid host). */
  private readonly nodes: (() => Promise<SchedulableNode[]>) | null;
  constructor(db: Db, log: Logger, config: Partial<SchedulerConfig> = {}, placedOn?: (serverId: string, host: string, kind: string) => Promise<void>,
    nodes?: () => Promise<SchedulableNode[]>) {
    this.db = db;
    this.log = log;
    this.config = { ...defaultSchedulerConfig, ...config };
    this.placedOn = placedOn ?? null;
    this.nodes = nodes ?? null;
  }

  /** One round: plans and claims. Returns the hosts that got servers (to notify) and how many waited. */
  async round(): Promise<{ placed: Map<string, number>; failed: number; waiting: number; lost: number }> {
    const servers = await this.db.selectFrom('compute_servers').selectAll()
      .where('task_state', 'in', WAITING).where('deleted_at', 'is', null).where('host', 'is', null)
      .orderBy('created_at').orderBy('launch_index').limit(this.config.batchSize).execute();
    const placed = new Map<string, number>();
    if (!servers.length) {
      // Hosts appear in placement as they register, whether or not anything waits.
      await syncComputeProviders(this.db, await this.db.selectFrom('compute_hosts').selectAll().execute());
      return { placed, failed: 0, waiting: 0, lost: 0 };
    }
    const { placements, rejections } = await this.plan(servers);
    let lost = 0;
    // one claim per provider: a host's, or a node's
    const byProvider = new Map<string, Placement[]>();
    for (const p of placements) {
      const key = p.node ?? p.host.id;
      const list = byProvider.get(key) ?? [];
      list.push(p);
      byProvider.set(key, list);
    }
    for (const list of byProvider.values()) {
      const n = await this.claim(list[0]!.host, list.map((p) => p.server), list[0]!.node);
      lost += list.length - n;
      if (n) placed.set(list[0]!.host.hostname, (placed.get(list[0]!.host.hostname) ?? 0) + n);
    }
    for (const r of rejections) await this.fail(r.server, r.reason);
    return { placed, failed: rejections.length, waiting: servers.length, lost };
  }

  /** Filters and weighs hosts for each server, in memory; servers placed earlier in the batch count. */
  async plan(servers: Server[]): Promise<{ placements: Placement[]; rejections: Rejection[] }> {
    const hosts = await this.db.selectFrom('compute_hosts').selectAll().orderBy('hostname').execute();
    await syncComputeProviders(this.db, hosts);
    const nodes = this.nodes && servers.some((s) => s.kind === BAREMETAL) ? await this.nodes() : [];
    const states = await providerStates(this.db, [...hosts.map((h) => h.id), ...nodes.map((n) => n.uuid)]);
    const groups = await this.loadGroups(servers);
    const hostsOfServers = await this.loadHintHosts(servers);
    const now = Date.now();
    const placements: Placement[] = [];
    const rejections: Rejection[] = [];
    const cfg = this.config;

    for (const s of servers) {
      if (s.kind === BAREMETAL) {
        const p = this.planNode(s, hosts, nodes, states, now);
        if (p) placements.push(p);
        else rejections.push({ server: s, reason: NO_VALID_HOST });
        continue;
      }
      const want = requestOf(s);
      // a flavor may require a kind of host (extra spec stratus:kind = container | vm | baremetal)
      const flavorKind = flavorSpecs(s)['stratus:kind'] ?? null;
      const failedHosts = new Set(parseJsonList(s.failed_hosts));
      const hints = parseJsonObject(s.scheduler_hints);
      const forced = s.requested_host ?? null;
      const group = s.server_group_id ? groups.get(s.server_group_id) : undefined;
      const sameHost = asList(hints.same_host).map((id) => hostsOfServers.get(id)).filter((h): h is string => !!h);
      const differentHost = new Set(asList(hints.different_host).map((id) => hostsOfServers.get(id)).filter((h): h is string => !!h));
      const reasons = new Set<string>();
      const candidates = hosts.filter((h) => {
        const why = ((): string | null => {
          if (h.status !== 'enabled') return 'ComputeFilter';
          if (!hostIsUp(h, cfg.serviceDownTime, now)) return 'ComputeFilter';
          if (!hostKinds(h).includes(s.kind)) return 'KindFilter';
          if (flavorKind && !hostKinds(h).includes(flavorKind)) return 'FlavorKindFilter';
          if (forced && h.hostname !== forced) return 'ForcedHost';
          if (s.availability_zone && h.availability_zone !== s.availability_zone) return 'AvailabilityZoneFilter';
          if (failedHosts.has(h.hostname)) return 'RetryFilter';
          const state = states.get(h.id);
          if (!state) return 'PlacementFilter';
          const short = firstUnfit(state, want.resources);
          if (short) return short;
          if (!want.required.every((t) => state.traits.has(t)) || want.forbidden.some((t) => state.traits.has(t))) return 'TraitFilter';
          if (group?.policy === 'affinity' && group.hosts.size && !group.hosts.has(h.hostname)) return 'ServerGroupAffinityFilter';
          if (group?.policy === 'anti-affinity' && (group.hosts.get(h.hostname) ?? 0) >= group.maxPerHost) return 'ServerGroupAntiAffinityFilter';
          if (sameHost.length && !sameHost.includes(h.hostname)) return 'SameHostFilter';
          if (differentHost.has(h.hostname)) return 'DifferentHostFilter';
          return null;
        })();
        if (why) reasons.add(why);
        return why === null;
      });
      if (!candidates.length) {
        rejections.push({ server: s, reason: NO_VALID_HOST });
        this.log.info({ server: s.id, filteredBy: [...reasons] }, 'no valid host');
        continue;
      }
      const best = this.weigh(candidates, states, want.resources, group);
      placements.push({ server: s, host: best });
      const used = states.get(best.id)!.usage;
      for (const [rc, n] of Object.entries(want.resources)) used.set(rc, (used.get(rc) ?? 0) + n);
      if (group) group.hosts.set(best.hostname, (group.hosts.get(best.hostname) ?? 0) + 1);
    }
    return { placements, rejections };
  }

  /** A free node for a bare-metal server (its unit counted as used for the rest of the batch), or null. */
  private planNode(s: Server, hosts: Host[], nodes: SchedulableNode[], states: Map<string, ProviderState>, now: number): Placement | null {
    const want = nodeRequestOf(s);
    const failed = new Set(parseJsonList(s.failed_hosts));
    const forced = s.requested_host ?? null;
    const reasons = new Set<string>();
    for (const n of nodes) {
      const host = n.conductor ? hosts.find((h) => h.hostname === n.conductor) : undefined;
      const state = states.get(n.uuid);
      const claim = nodeClaim(s, state);
      const why = ((): string | null => {
        if (!host || host.status !== 'enabled' || !hostIsUp(host, this.config.serviceDownTime, now)) return 'ComputeFilter';
        if (forced && host.hostname !== forced && n.uuid !== forced) return 'ForcedHost';
        if (s.availability_zone && host.availability_zone !== s.availability_zone) return 'AvailabilityZoneFilter';
        if (failed.has(n.uuid)) return 'RetryFilter';
        if (!state || !Object.keys(claim).length) return 'PlacementFilter';
        const short = firstUnfit(state, claim);
        if (short) return short;
        if (!want.required.every((t) => state.traits.has(t)) || want.forbidden.some((t) => state.traits.has(t))) return 'TraitFilter';
        return null;
      })();
      if (why) {
        reasons.add(why);
        continue;
      }
      for (const [rc, k] of Object.entries(claim)) state!.usage.set(rc, (state!.usage.get(rc) ?? 0) + k);
      return { server: s, host: host!, node: n.uuid };
    }
    this.log.info({ server: s.id, filteredBy: [...reasons] }, 'no valid bare-metal node');
    return null;
  }

  private weigh(hosts: Host[], states: Map<string, ProviderState>, need: Resources, group: GroupInfo | undefined): Host {
    if (hosts.length === 1) return hosts[0]!;
    const cfg = this.config;
    const norm = (vals: number[]) => {
      const min = Math.min(...vals);
      const max = Math.max(...vals);
      return vals.map((v) => (max === min ? 0 : (v - min) / (max - min)));
    };
    const free = (rc: string) => norm(hosts.map((h) => {
      const s = states.get(h.id)!;
      const inv = s.inventories.get(rc);
      return (inv ? capacityOf(inv) : 0) - (s.usage.get(rc) ?? 0) - (need[rc] ?? 0);
    }));
    const freeRam = free('MEMORY_MB');
    const freeCpu = free('VCPU');
    const freeDisk = free('DISK_GB');
    const members = norm(hosts.map((h) => group?.hosts.get(h.hostname) ?? 0));
    let best = 0;
    let bestScore = -Infinity;
    hosts.forEach((_h, i) => {
      let score = cfg.ramWeight * freeRam[i]! + cfg.cpuWeight * freeCpu[i]! + cfg.diskWeight * freeDisk[i]!;
      if (group?.policy === 'soft-affinity') score += cfg.softAffinityWeight * members[i]! * 10;
      if (group?.policy === 'soft-anti-affinity') score -= cfg.softAntiAffinityWeight * members[i]! * 10;
      if (score > bestScore) {
        bestScore = score;
        best = i;
      }
    });
    return hosts[best]!;
  }

  private async loadGroups(servers: Server[]): Promise<Map<string, GroupInfo>> {
    const ids = [...new Set(servers.map((s) => s.server_group_id).filter((g): g is string => !!g))];
    const out = new Map<string, GroupInfo>();
    if (!ids.length) return out;
    const rows = await this.db.selectFrom('compute_server_groups').select(['id', 'policy', 'rules']).where('id', 'in', ids).execute();
    for (const g of rows) {
      const max = Number(parseJsonObject(g.rules).max_server_per_host ?? 1);
      out.set(g.id, { policy: g.policy, maxPerHost: Number.isInteger(max) && max > 0 ? max : 1, hosts: new Map() });
    }
    const members = await this.db.selectFrom('compute_server_group_members as m')
      .innerJoin('compute_servers as s', 's.id', 'm.server_id')
      .select(['m.group_id', 's.host']).where('m.group_id', 'in', ids).where('s.deleted_at', 'is', null).where('s.host', 'is not', null).execute();
    for (const m of members) {
      const g = out.get(m.group_id);
      if (g && m.host) g.hosts.set(m.host, (g.hosts.get(m.host) ?? 0) + 1);
    }
    return out;
  }

  /** Hosts of the servers named in same_host / different_host hints. */
  private async loadHintHosts(servers: Server[]): Promise<Map<string, string>> {
    const ids = new Set<string>();
    for (const s of servers) {
      const hints = parseJsonObject(s.scheduler_hints);
      for (const id of [...asList(hints.same_host), ...asList(hints.different_host)]) ids.add(id);
    }
    const out = new Map<string, string>();
    if (!ids.size) return out;
    const rows = await this.db.selectFrom('compute_servers').select(['id', 'host']).where('id', 'in', [...ids]).where('deleted_at', 'is', null).execute();
    for (const r of rows) if (r.host) out.set(r.id, r.host);
    return out;
  }

  /** Claims `servers` on `host` (or on its bare-metal `node`) in one transaction; returns how many were placed. */
  async claim(host: Host, servers: Server[], node?: string): Promise<number> {
    const placed = await this.claimOn(host, servers, node);
    // before the agent hears of the server (the caller notifies it): its ports are on the host as soon as it is
    for (const s of placed) await this.placedOn?.(s.id, host.hostname, s.kind).catch((err: Error) => this.log.warn({ server: s.id, err: err.message }, 'binding the server\'s ports failed'));
    return placed.length;
  }

  private async claimOn(host: Host, servers: Server[], node?: string): Promise<Server[]> {
    const now = nowIso();
    return this.db.transaction().execute(async (tx) => {
      const h = await tx.selectFrom('compute_hosts').selectAll().where('id', '=', host.id).executeTakeFirst();
      if (!h) return [];
      let provider = h.id;
      let resources = (s: Server): Resources => requestOf(s).resources;
      if (node) {
        // a node's provider: one unit of its class (the bare-metal service keeps its inventory)
        provider = node;
        const state = (await providerStates(tx, [node])).get(node);
        resources = (s) => nodeClaim(s, state);
      } else await syncComputeProviders(tx, [h]);
      const items = servers.map((s) => ({ item: s, consumer: s.id, owner: { project_id: s.project_id, user_id: s.user_id }, resources: resources(s) }));
      if (node && items.some((i) => !Object.keys(i.resources).length)) return [];
      const placed = await claimOnProvider(tx, provider, items, async (s) => {
        const r = await tx.updateTable('compute_servers')
          .set({
            // a server booting from a volume waits for its root's export on this host (Nova's block_device_mapping; server-volumes.ts)
            host: h.hostname, task_state: s.image_id || s.disk_image ? 'spawning' : 'block_device_mapping', version: s.version + 1, schedule_attempts: s.schedule_attempts + 1,
            availability_zone: s.availability_zone ?? h.availability_zone, updated_at: now, node: node ?? null,
          })
          .where('id', '=', s.id).where('version', '=', s.version).where('task_state', 'in', WAITING).where('deleted_at', 'is', null)
          .executeTakeFirst();
        return Number(r.numUpdatedRows) === 1;
      });
      return placed;
    });
  }

  /** A server no host can take: ERROR with Nova's NoValidHost fault. */
  async fail(s: Server, message: string, details = ''): Promise<boolean> {
    const now = nowIso();
    if (s.task_state === 'unshelving') {
      // Nova's unshelve without a host: the server stays SHELVED_OFFLOADED (the instance action says why)
      const r = await this.db.updateTable('compute_servers').set({ task_state: null, version: s.version + 1, updated_at: now })
        .where('id', '=', s.id).where('version', '=', s.version).where('task_state', '=', 'unshelving').where('deleted_at', 'is', null).executeTakeFirst();
      this.log.info({ server: s.id, details }, 'unshelve found no host');
      return Number(r.numUpdatedRows) === 1;
    }
    const r = await this.db.updateTable('compute_servers')
      .set({
        vm_state: 'error', task_state: null, host: null, node: null, power_state: PowerState.NOSTATE, version: s.version + 1, updated_at: now,
        fault: JSON.stringify({ code: 500, message, details: details || message, created: now }),
      })
      .where('id', '=', s.id).where('version', '=', s.version).where('task_state', '=', 'scheduling').where('deleted_at', 'is', null)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }
}
