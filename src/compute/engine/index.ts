// The compute engine: the scheduler, the agent API hosts connect to, the
// lifecycle rules that turn agents' reports into server states, and the host
// heartbeat watch.
//
// The compute API records intent in compute_servers (bumping `version`) and
// calls kick() (a server waits for a host) or notify(host) (a host's servers
// changed). Agents long-poll /agent/v1/hosts/{host}/watch and report back;
// request() carries work beyond the desired state (console output, snapshots)
// to the agent through compute_server_requests, answered on the report call.
// Everything an agent needs is in the database, so any server replica can
// serve any agent; notify() only shortens the wait on this replica (the watch
// also re-reads every few seconds).
import { parseJsonList, parseJsonObject } from '../../common/json.ts';
import { randomBytes, createHash, timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApiError, conflict } from '../../common/errors.ts';
import { nowIso, uuid } from '../../common/ids.ts';
import type { Service } from '../../http/service.ts';
import type { ServerRow } from '../schema.ts';
import type { AgentRequestKind, Engine, EngineDeps as ComputeDeps } from './interface.ts';
import { AGENT_CREDENTIALS, agentRoutes, agentRules, type AgentApi } from './agent-api.ts';
import { desiredServers } from './desired.ts';
import { AGENT_TOKEN_HEADER, type DesiredServer, type HostInfo, type HostRegistration, type PendingRequest, type RequestReport, type ServerReport, type WatchRequest, type WatchResponse } from './protocol.ts';
import { hostIsUp, NO_VALID_HOST, Scheduler, type SchedulerConfig } from './scheduler.ts';
import { releaseConsumer } from '../../placement/service.ts';
import { Signals } from './signals.ts';

export interface EngineConfig extends SchedulerConfig {
  /** Seconds between agent heartbeats. */
  heartbeatInterval: number;
  /** How often the scheduler also runs without a kick, and the heartbeat watch runs, in ms. */
  periodicMs: number;
  /** Longest long poll, in seconds. */
  maxWatchWait: number;
}

export const defaultEngineConfig: Omit<EngineConfig, keyof SchedulerConfig> = { heartbeatInterval: 10, periodicMs: 2000, maxWatchWait: 30 };

/** The secret agents present; created on first start, kept in DATA_DIR/agent-token (mode 0600). */
export function agentTokenFor(dataDir: string): string {
  const file = join(dataDir, 'agent-token');
  if (existsSync(file)) {
    const t = readFileSync(file, 'utf8').trim();
    if (t.length >= 32) return t;
  }
  const t = randomBytes(32).toString('base64url');
  writeFileSync(file, t + '\n', { mode: 0o600 });
  return t;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Task states an agent's report ends (the agent did the work they wait for). */
const AGENT_TASKS = new Set(['spawning', 'powering-off', 'powering-on', 'rebooting', 'reboot_pending', 'reboot_started', 'rebooting_hard',
  'reboot_pending_hard', 'reboot_started_hard', 'pausing', 'unpausing', 'suspending', 'resuming', 'rebuilding', 'rebuild_block_device_mapping',
  'rebuild_spawning']);
const SNAPSHOT_TASKS = new Set(['image_snapshot', 'image_snapshot_pending', 'image_pending_upload', 'image_uploading']);

export function createEngine(deps: ComputeDeps, overrides: Partial<EngineConfig> = {}): Engine {
  const { db, log } = deps;
  const cfg: EngineConfig = {
    ...defaultEngineConfig,
    ...(deps.config?.serviceDownTime ? { serviceDownTime: deps.config.serviceDownTime } : {}),
    ...overrides,
  } as EngineConfig;
  const scheduler = new Scheduler(db, log.child({ component: 'scheduler' }), cfg);
  Object.assign(cfg, scheduler.config, overrides);
  const signals = new Signals();
  const requestWaiters = new Map<string, () => void>();
  const listeners: Array<(rows: ServerRow[]) => Promise<void>> = [];
  let token: string | null = null;
  let tokenDigest: Buffer | null = null;
  let stopping = false;
  let timer: NodeJS.Timeout | null = null;
  let scheduling: Promise<void> | null = null;
  let again = false;
  const hostState = new Map<string, boolean>();
  const lastTouch = new Map<string, number>();

  // --- scheduler loop: one round at a time, again while kicked
  const runScheduler = (): Promise<void> => {
    if (scheduling) {
      again = true;
      return scheduling;
    }
    scheduling = (async () => {
      do {
        again = false;
        try {
          await reapUnplaced();
          const r = await scheduler.round();
          for (const h of r.placed.keys()) signals.bump(h);
          if (r.waiting >= cfg.batchSize || r.lost > 0) again = true;
        } catch (err) {
          log.error({ err }, 'scheduler round failed');
        }
      } while (again && !stopping);
    })().finally(() => {
      scheduling = null;
    });
    return scheduling;
  };

  /**
   * Servers being deleted that no agent will clean up: those no host holds
   * (the API does it too; this closes the race with a placement), and those on
   * a host that is down (Nova's local delete). They are soft-deleted here; a
   * host that comes back removes what it still holds when its agent resyncs.
   */
  const reapUnplaced = async () => {
    const rows = await db.selectFrom('compute_servers').select(['id', 'version', 'host']).where('task_state', '=', 'deleting')
      .where('deleted_at', 'is', null).execute();
    if (!rows.length) return;
    const hosts = await db.selectFrom('compute_hosts').selectAll().execute();
    const down = new Set(hosts.filter((h) => !hostIsUp(h, cfg.serviceDownTime)).map((h) => h.hostname));
    const known = new Set(hosts.map((h) => h.hostname));
    const reaped: string[] = [];
    for (const r of rows) {
      if (r.host !== null && known.has(r.host) && !down.has(r.host)) continue;
      const now = nowIso();
      const done = await db.transaction().execute(async (tx) => {
        let u = tx.updateTable('compute_servers')
          .set({ vm_state: 'deleted', task_state: null, power_state: 0, deleted_at: now, terminated_at: now, updated_at: now, version: r.version + 1 })
          .where('id', '=', r.id).where('version', '=', r.version);
        u = r.host === null ? u.where('host', 'is', null) : u.where('host', '=', r.host);
        const res = await u.executeTakeFirst();
        if (!Number(res.numUpdatedRows)) return false;
        await releaseConsumer(tx, r.id);
        await tx.deleteFrom('compute_server_group_members').where('server_id', '=', r.id).execute();
        return true;
      });
      if (done) {
        reaped.push(r.id);
        if (r.host) log.info({ server: r.id, host: r.host }, 'deleted a server whose host is down (local delete)');
      }
    }
    await changed(reaped);
  };

  const changed = async (ids: string[]) => {
    if (!ids.length || !listeners.length) return;
    const rows = await db.selectFrom('compute_servers').selectAll().where('id', 'in', ids).execute();
    for (const fn of listeners) await fn(rows).catch((err: Error) => log.warn({ err: err.message }, 'server change listener failed'));
  };

  // --- heartbeat watch: hosts that stopped reporting are down (os-services computes the state from last_seen_at)
  const watchHosts = async () => {
    const hosts = await db.selectFrom('compute_hosts').selectAll().execute();
    const now = Date.now();
    for (const h of hosts) {
      const up = hostIsUp(h, cfg.serviceDownTime, now);
      const before = hostState.get(h.hostname);
      if (before !== undefined && before !== up) {
        if (up) log.info({ host: h.hostname }, 'host is up');
        else log.warn({ host: h.hostname, lastSeen: h.last_seen_at }, 'host is down: its agent stopped reporting');
      }
      hostState.set(h.hostname, up);
    }
    // requests nobody will answer
    const stale = new Date(now - 3600_000).toISOString();
    await db.updateTable('compute_server_requests').set({ status: 'expired', updated_at: nowIso() })
      .where('status', '=', 'pending').where('created_at', '<', stale).execute();
    await db.deleteFrom('compute_server_requests').where('status', '!=', 'pending').where('updated_at', '<', stale).execute();
  };

  const periodic = () => {
    if (stopping) return;
    void runScheduler();
    void watchHosts().catch((err: Error) => log.error({ err: err.message }, 'host watch failed'));
  };

  // --- the agent API
  const api: AgentApi = {
    checkToken(given: string | undefined) {
      if (!tokenDigest) throw new ApiError('Unavailable', 'The agent API is not started.');
      if (!given || !timingSafeEqual(digest(given), tokenDigest)) throw new ApiError('Unauthorized', 'A valid agent token is required.');
    },

    async register(hostname: string, info: HostInfo): Promise<HostRegistration> {
      const now = nowIso();
      const kinds = JSON.stringify([...new Set(info.kinds)].sort());
      const fields = {
        kinds, vcpus: info.vcpus, memory_mb: info.memory_mb, disk_gb: info.disk_gb, agent_version: info.version,
        host_ip: info.host_ip ?? '', last_seen_at: now,
        ...(info.availability_zone ? { availability_zone: info.availability_zone } : {}),
        ...(info.cpu_allocation_ratio ? { cpu_allocation_ratio: info.cpu_allocation_ratio } : {}),
        ...(info.ram_allocation_ratio ? { ram_allocation_ratio: info.ram_allocation_ratio } : {}),
        ...(info.disk_allocation_ratio ? { disk_allocation_ratio: info.disk_allocation_ratio } : {}),
      };
      for (let attempt = 0; ; attempt++) {
        const existing = await db.selectFrom('compute_hosts').select(['id', 'service_id']).where('hostname', '=', hostname).executeTakeFirst();
        if (existing) {
          await db.updateTable('compute_hosts').set(fields).where('id', '=', existing.id).execute();
          return { host_id: existing.id, service_id: existing.service_id, heartbeat_interval: cfg.heartbeatInterval };
        }
        const row = {
          id: uuid(), hostname, service_id: uuid(), ...fields, availability_zone: info.availability_zone ?? deps.config?.defaultAvailabilityZone ?? 'nova',
          cpu_allocation_ratio: info.cpu_allocation_ratio ?? 16, ram_allocation_ratio: info.ram_allocation_ratio ?? 1.5,
          disk_allocation_ratio: info.disk_allocation_ratio ?? 1, status: 'enabled', disabled_reason: null, forced_down: 0,
          created_at: now,
        };
        try {
          await db.insertInto('compute_hosts').values(row).execute();
          log.info({ host: hostname, kinds: info.kinds }, 'host registered');
          return { host_id: row.id, service_id: row.service_id, heartbeat_interval: cfg.heartbeatInterval };
        } catch (err) {
          if (attempt > 2) throw err; // a concurrent first registration won: update it instead
        }
      }
    },

    async watch(hostname: string, req: WatchRequest): Promise<WatchResponse> {
      const host = await db.selectFrom('compute_hosts').select('id').where('hostname', '=', hostname).executeTakeFirst();
      if (!host) throw new ApiError('NotFound', `Host ${hostname} is not registered.`);
      // a watching agent is alive: its host is seen (at most one write every few seconds)
      if (Date.now() - (lastTouch.get(hostname) ?? 0) > 5000) {
        lastTouch.set(hostname, Date.now());
        await db.updateTable('compute_hosts').set({ last_seen_at: nowIso() }).where('id', '=', host.id).execute();
      }
      const known = req.known ?? {};
      const busy = new Set(req.requests ?? []);
      const deadline = Date.now() + Math.min(Math.max(req.wait ?? 0, 0), cfg.maxWatchWait) * 1000;
      for (;;) {
        const gen = signals.gen(hostname);
        const rows = await db.selectFrom('compute_servers').select(['id', 'version']).where('host', '=', hostname).where('deleted_at', 'is', null).execute();
        const present = new Set<string>();
        const changedIds: string[] = [];
        for (const r of rows) {
          present.add(r.id);
          if (known[r.id] !== r.version) changedIds.push(r.id);
        }
        const gone = Object.keys(known).filter((id) => !present.has(id));
        const pending = await db.selectFrom('compute_server_requests').select(['id', 'server_id', 'kind', 'args'])
          .where('host', '=', hostname).where('status', '=', 'pending').execute();
        const requests: PendingRequest[] = pending.filter((p) => !busy.has(p.id)).map((p) => ({ id: p.id, server_id: p.server_id, kind: p.kind, args: parseJsonObject(p.args) }));
        if (changedIds.length || gone.length || requests.length || Date.now() >= deadline || stopping) {
          const servers: DesiredServer[] = await desiredServers(db, deps.images, changedIds);
          return { servers, gone, requests };
        }
        await signals.wait(hostname, gen, Math.min(deadline - Date.now(), 3000));
      }
    },

    async report(hostname: string, servers: ServerReport[], requests: RequestReport[]): Promise<void> {
      const touched: string[] = [];
      const notifyHost = new Set<string>();
      let kick = false;
      for (const r of servers) {
        const row = await db.selectFrom('compute_servers').selectAll().where('id', '=', r.id).executeTakeFirst();
        if (!row || row.host !== hostname || row.deleted_at !== null) continue;
        const res = await applyReport(row, r, hostname);
        if (res.changed) touched.push(row.id);
        if (res.notify) notifyHost.add(hostname);
        if (res.kick) kick = true;
      }
      for (const q of requests) {
        const row = await db.selectFrom('compute_server_requests').selectAll().where('id', '=', q.id).executeTakeFirst();
        if (!row || row.host !== hostname || row.status !== 'pending') continue;
        const now = nowIso();
        await db.updateTable('compute_server_requests')
          .set({ status: q.ok ? 'done' : 'failed', result: JSON.stringify(q.ok ? q.result ?? {} : { message: q.message ?? 'failed' }), updated_at: now })
          .where('id', '=', q.id).where('status', '=', 'pending').execute();
        if (row.kind === 'snapshot') {
          // the snapshot is over, one way or the other: the server leaves its image_* task state
          const s = await db.selectFrom('compute_servers').select(['id', 'task_state']).where('id', '=', row.server_id).executeTakeFirst();
          if (s && s.task_state && SNAPSHOT_TASKS.has(s.task_state)) {
            await db.updateTable('compute_servers').set({ task_state: null, updated_at: now }).where('id', '=', s.id).where('task_state', '=', s.task_state).execute();
            touched.push(s.id);
          }
        }
        requestWaiters.get(q.id)?.();
      }
      for (const h of notifyHost) signals.bump(h);
      if (kick) void runScheduler();
      await changed(touched);
    },

    async image(id: string) {
      const img = await deps.images.getImage(id);
      if (!img) throw new ApiError('NotFound', `Image ${id} could not be found.`);
      return img;
    },

    openImage(id: string) {
      return deps.images.openImageData(id);
    },

    async uploadSnapshot(imageId: string, body: NodeJS.ReadableStream, size?: number) {
      const pending = await db.selectFrom('compute_server_requests').select(['id', 'args']).where('kind', '=', 'snapshot').where('status', '=', 'pending').execute();
      if (!pending.some((p) => parseJsonObject(p.args).image_id === imageId)) throw new ApiError('Forbidden', `No pending snapshot uploads to image ${imageId}.`);
      await deps.images.uploadImageData(imageId, body as import('node:stream').Readable, size);
    },
  };

  /** Turns one report into the server's state (Nova's compute manager and power-state sync). */
  const applyReport = async (row: ServerRow, r: ServerReport, hostname: string): Promise<{ changed: boolean; notify: boolean; kick: boolean }> => {
    const now = nowIso();
    const same = row.version === r.version;
    if (r.state === 'deleted') {
      if (row.task_state !== 'deleting') return { changed: false, notify: false, kick: false };
      const done = await db.transaction().execute(async (tx) => {
        const u = await tx.updateTable('compute_servers')
          .set({ vm_state: 'deleted', task_state: null, power_state: 0, deleted_at: now, terminated_at: now, updated_at: now, version: row.version + 1 })
          .where('id', '=', row.id).where('deleted_at', 'is', null).where('task_state', '=', 'deleting').executeTakeFirst();
        if (!Number(u.numUpdatedRows)) return false;
        await releaseConsumer(tx, row.id);
        await tx.deleteFrom('compute_server_group_members').where('server_id', '=', row.id).execute();
        return true;
      });
      return { changed: done, notify: done, kick: false };
    }
    if (r.state === 'build_failed') {
      if (!same || row.vm_state !== 'building') return { changed: false, notify: false, kick: false };
      const failed = [...new Set([...parseJsonList(row.failed_hosts), hostname])];
      const permanent = /\(permanent\)$/.test(r.message ?? '');
      const message = (r.message ?? 'build failed').replace(/ \(permanent\)$/, '');
      const exhausted = permanent || row.schedule_attempts >= cfg.maxAttempts;
      const moved = await db.transaction().execute(async (tx) => {
        const u = await tx.updateTable('compute_servers').set(exhausted
          ? {
            vm_state: 'error', task_state: null, host: null, power_state: 0, failed_hosts: JSON.stringify(failed), version: row.version + 1, updated_at: now,
            fault: JSON.stringify({
              code: 500,
              message: permanent ? `Build of instance ${row.id} aborted: ${message}` : `${NO_VALID_HOST.split('.')[0]}. Exceeded max scheduling attempts ${cfg.maxAttempts} for instance ${row.id}. Last exception: ${message}`,
              details: message, created: now,
            }),
          }
          : { task_state: 'scheduling', host: null, power_state: 0, failed_hosts: JSON.stringify(failed), version: row.version + 1, updated_at: now })
          .where('id', '=', row.id).where('version', '=', row.version).executeTakeFirst();
        if (!Number(u.numUpdatedRows)) return false;
        await releaseConsumer(tx, row.id);
        return true;
      });
      if (moved) log.warn({ server: row.id, host: hostname, err: message, rescheduled: !exhausted }, 'build failed on host');
      return { changed: moved, notify: moved, kick: moved && !exhausted };
    }
    const set: Record<string, unknown> = {};
    if (row.power_state !== r.power_state) set.power_state = r.power_state;
    let bump = false;
    if (same && !(row.task_state && SNAPSHOT_TASKS.has(row.task_state)) && row.task_state !== 'deleting') {
      if (row.task_state && AGENT_TASKS.has(row.task_state)) set.task_state = null;
      if (r.state === 'error') {
        set.vm_state = 'error';
        set.fault = JSON.stringify({ code: 500, message: r.message ?? 'error', details: r.message ?? '', created: now });
      } else if (row.task_state === null && row.vm_state !== 'building' && r.state === 'stopped' && row.desired_power !== 'stopped' && row.vm_state !== 'error') {
        // the server stopped by itself: Nova's power sync stops it (SHUTOFF), it does not restart it
        set.vm_state = 'stopped';
        set.desired_power = 'stopped';
        bump = true;
      } else if (row.vm_state !== 'error' || (row.task_state !== null && AGENT_TASKS.has(row.task_state))) {
        set.vm_state = r.state;
      }
      if (!row.launched_at && row.vm_state === 'building' && r.state !== 'error') set.launched_at = now;
    }
    for (const k of Object.keys(set)) if ((row as Record<string, unknown>)[k] === set[k]) delete set[k];
    if (!Object.keys(set).length) return { changed: false, notify: false, kick: false };
    set.updated_at = now;
    if (bump) set.version = row.version + 1;
    const u = await db.updateTable('compute_servers').set(set).where('id', '=', row.id).where('version', '=', row.version).where('deleted_at', 'is', null).executeTakeFirst();
    const ok = Number(u.numUpdatedRows) === 1;
    return { changed: ok, notify: ok && bump, kick: false };
  };

  const agentService: Service = {
    name: 'agent',
    prefix: '/agent',
    routes: agentRoutes(api),
    rules: agentRules,
    renderError: (err: ApiError) => ({ error: { code: err.status, title: err.title, message: err.message } }),
    authenticators: [{
      authenticate(req) {
        const given = req.headers[AGENT_TOKEN_HEADER];
        api.checkToken(typeof given === 'string' ? given : undefined);
        return AGENT_CREDENTIALS;
      },
    }],
    setup(app) {
      app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));
    },
  };

  return {
    agentService,
    get agentToken() {
      return token;
    },
    async start() {
      stopping = false;
      token = agentTokenFor(deps.dataDir);
      tokenDigest = digest(token);
      timer = setInterval(periodic, cfg.periodicMs);
      timer.unref?.();
      periodic();
    },
    async stop() {
      stopping = true;
      if (timer) clearInterval(timer);
      timer = null;
      signals.wakeAll();
      for (const w of requestWaiters.values()) w();
      await scheduling;
    },
    kick() {
      if (!stopping) void runScheduler();
    },
    notify(host: string | null) {
      if (host) signals.bump(host);
    },
    onServersChanged(fn) {
      listeners.push(fn);
    },
    async request(serverId: string, kind: AgentRequestKind, args: Record<string, unknown>, timeoutMs: number): Promise<unknown> {
      const s = await db.selectFrom('compute_servers').select(['id', 'host']).where('id', '=', serverId).where('deleted_at', 'is', null).executeTakeFirst();
      if (!s?.host) throw conflict(`Instance ${serverId} is not running on a host.`);
      const id = uuid();
      const now = nowIso();
      await db.insertInto('compute_server_requests').values({ id, server_id: serverId, host: s.host, kind, args: JSON.stringify(args), status: 'pending', result: null, created_at: now, updated_at: now }).execute();
      signals.bump(s.host);
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const row = await db.selectFrom('compute_server_requests').select(['status', 'result']).where('id', '=', id).executeTakeFirst();
        if (row && row.status === 'done') return parseJsonObject(row.result);
        if (row && row.status === 'failed') throw conflict(String(parseJsonObject(row.result).message ?? `The ${kind} request failed.`));
        if (!row || row.status !== 'pending' || Date.now() >= deadline || stopping) {
          await db.updateTable('compute_server_requests').set({ status: 'expired', updated_at: nowIso() }).where('id', '=', id).where('status', '=', 'pending').execute();
          throw conflict(`The host of instance ${serverId} did not answer the ${kind} request in time.`);
        }
        await new Promise<void>((resolve) => {
          const t = setTimeout(done, Math.min(1000, Math.max(0, deadline - Date.now())));
          function done() {
            clearTimeout(t);
            requestWaiters.delete(id);
            resolve();
          }
          requestWaiters.set(id, done);
        });
      }
    },
  };
}
