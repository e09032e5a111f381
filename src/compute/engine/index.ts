// The compute engine: wires compute's controllers and its part of the fleet.
//
//   server-kind.ts     the `server` resource kind the fleet's agent API serves (placed, desired, reports)
//   lifecycle.ts       the state machine turning a report into the server's row (pure; a table test covers it)
//   desired.ts         the desired state of servers as agents receive it
//   server-volumes.ts  attached volumes: the specs' volumes, the hosts' reports of them, a deleted server's
//   requests.ts        the request channel (console output, snapshots) to a server's agent
//   scheduler-loop.ts  the scheduler's rounds (placement itself: scheduler.ts) and the reaper of unplaced deletes
//   heartbeat.ts       the watch that logs hosts going down and up
//   hosts.ts           compute_hosts as the fleet's host registry
//   agent-images.ts    the image routes compute adds to the agent API
//   baremetal.ts       the bare-metal driver: servers of kind baremetal driven through their nodes, in-process
//
// The compute API records intent in compute_servers (bumping `version`) and
// calls kick() (a server waits for a host) or notify(host) (a host's servers
// changed). Everything an agent needs is in the database, so any server
// replica can serve any agent; notify() only shortens the wait on this replica
// (the watch also re-reads every few seconds).
import type { Fleet } from '../../fleet/api.ts';
import { parseJsonList } from '../../common/json.ts';
import type { Engine, EngineDeps } from './interface.ts';
import { agentImageRoutes } from './agent-images.ts';
import { heartbeatWatch } from './heartbeat.ts';
import { computeHosts } from './hosts.ts';
import type { ServerRow } from '../schema.ts';
import { requestChannel } from './requests.ts';
import { BAREMETAL_NODE_KIND } from '../../baremetal/protocol.ts';
import { Scheduler, type SchedulerConfig } from './scheduler.ts';
import { schedulerLoop } from './scheduler-loop.ts';
import { serverKind } from './server-kind.ts';
import { desiredServers } from './desired.ts';
import { bumpServers, settleBootVolumes, settleMadeVolumes, failExports } from './server-volumes.ts';
import { baremetalDriver, type BaremetalDriver } from './baremetal.ts';

export type { AgentRequestKind, Engine } from './interface.ts';

export interface EngineConfig extends SchedulerConfig {
  /** How often the scheduler also runs without a kick, and the heartbeat watch runs, in ms. */
  periodicMs: number;
}

export const defaultEngineConfig: Omit<EngineConfig, keyof SchedulerConfig> = { periodicMs: 2000 };

export function createEngine(deps: EngineDeps & { fleet: Fleet }, overrides: Partial<EngineConfig> = {}): Engine {
  const { db, log, fleet } = deps;
  const cfg: EngineConfig = {
    ...defaultEngineConfig,
    ...(deps.config?.serviceDownTime ? { serviceDownTime: deps.config.serviceDownTime } : {}),
    ...(deps.config?.periodicMs ? { periodicMs: deps.config.periodicMs } : {}),
    ...overrides,
  } as EngineConfig;
  const nodes = deps.baremetal;
  const scheduler = new Scheduler(db, log.child({ component: 'scheduler' }), cfg, deps.bindPorts?.bind(deps),
    nodes ? async () => (await nodes.list()).map((n) => ({ uuid: n.uuid, conductor: n.conductor })) : undefined);
  Object.assign(cfg, scheduler.config, overrides);
  const listeners: Array<(rows: ServerRow[]) => Promise<void>> = [];
  let stopping = false;
  let timer: NodeJS.Timeout | null = null;

  const changed = async (ids: string[]) => {
    if (!ids.length || !listeners.length) return;
    const rows = await db.selectFrom('compute_servers').selectAll().where('id', 'in', ids).execute();
    for (const fn of listeners) await fn(rows).catch((err: Error) => log.warn({ err: err.message }, 'server change listener failed'));
  };
  // bare-metal servers: no agent, their driver here (woken with their conductor's host, and periodically)
  let driver: BaremetalDriver | null = null;
  const notify = (host: string) => {
    fleet.notify(host);
    driver?.kick(host);
  };

  const loop = schedulerLoop({ db, log, scheduler, batchSize: cfg.batchSize, serviceDownTime: cfg.serviceDownTime, notify, changed });
  const kick = () => {
    if (!stopping) void loop.kick();
  };
  if (nodes) driver = baremetalDriver({ db, log, nodes, network: deps.network ?? null, maxAttempts: cfg.maxAttempts, changed, kickScheduler: kick });
  const requests = requestChannel(db, {
    notify, stopping: () => stopping || fleet.stopping,
    // a bare-metal server's requests (its console) are its node's, answered by the node's conductor
    route: nodes ? async (s) => {
      if (!s.node) return null;
      const n = await nodes.get(s.node);
      return { kind: BAREMETAL_NODE_KIND, resource_id: s.node, host: n?.conductor ?? null };
    } : undefined,
  });
  const heartbeat = heartbeatWatch(db, log, { serviceDownTime: cfg.serviceDownTime });

  fleet.setHosts(computeHosts(db, log, { defaultAvailabilityZone: deps.config?.defaultAvailabilityZone }));
  fleet.registerKind(serverKind({ db, log, images: deps.images, requests, maxAttempts: cfg.maxAttempts, notify, kick, changed, volumes: deps.volumes }));
  // a volume exported for a server's attachment (or its export gone): the server's spec lists it now
  deps.volumes?.onExportsChanged(async (ids) => {
    for (const h of await settleBootVolumes(db, deps.volumes!, log, ids)) notify(h);
    for (const h of await bumpServers(db, ids)) notify(h);
  });
  // an export the volume's backend could not make: the attach is rolled back
  const volumes = deps.volumes;
  volumes?.onExportsFailed(async (failed) => {
    const servers = await failExports(db, volumes, log, failed);
    await settleBootVolumes(db, volumes, log, servers);
    for (const h of await bumpServers(db, servers)) notify(h);
  });
  // a volume made for a server's mapping (image, snapshot or blank to volume) finished: attached, or the build aborted
  const settleMade = (volumeId?: string) => volumes
    ? settleMadeVolumes(db, volumes, log, volumeId).then((schedule) => {
      if (schedule) kick();
    }, (err: Error) => log.warn({ err: err.message }, 'settling the volumes made for servers failed'))
    : Promise.resolve();
  volumes?.onCreated((id) => settleMade(id));
  fleet.addRoutes(agentImageRoutes(db, deps.images, deps.volumes));

  const periodic = () => {
    if (stopping) return;
    kick();
    void settleMade();
    driver?.kick();
    void heartbeat().catch((err: Error) => log.error({ err: err.message }, 'host watch failed'));
    void requests.expire().catch((err: Error) => log.error({ err: err.message }, 'request expiry failed'));
  };

  return {
    async start() {
      stopping = false;
      timer = setInterval(periodic, cfg.periodicMs);
      timer.unref?.();
      periodic();
    },
    async stop() {
      stopping = true;
      if (timer) clearInterval(timer);
      timer = null;
      requests.stop();
      await loop.stop();
      await driver?.stop();
    },
    kick,
    notify(host) {
      if (host) notify(host);
    },
    onServersChanged(fn) {
      listeners.push(fn);
    },
    async selectDestination(s, o) {
      // the source host as a host the server already failed on (the retry filter); a forced host as a build's requested one
      const failed = [...new Set([...parseJsonList(s.failed_hosts), ...(s.host ? [s.host] : [])])];
      const { placements } = await scheduler.plan([{ ...s, failed_hosts: JSON.stringify(failed), requested_host: o.force ?? null }]);
      const h = placements[0]?.host;
      return h ? { id: h.id, hostname: h.hostname, host_ip: h.host_ip ?? null } : null;
    },
    request: (serverId, kind, args, timeoutMs, o) => requests.request(serverId, kind, args, timeoutMs, o),
    desiredOn: async (serverId, hostname) => (await desiredServers(db, deps.images, [serverId], deps.volumes, hostname))[0] ?? null,
  };
}
