// The compute service (Nova v2.1) under /compute: its route table (one module
// per resource under api/), its policy, and the engine (scheduler, the
// `server` kind on the fleet's agent API) it records intent for.
import type { ServerNetworking } from '../network/service.ts';
import type { ServerVolumes } from '../volume/service.ts';
import { moveServerVolumes, releaseServerVolumes } from './engine/server-volumes.ts';
import { givenPorts } from './api/server-ports.ts';
import type { Logger } from 'pino';
import type { Db } from '../db/database.ts';
import type { Fleet } from '../fleet/api.ts';
import type { Service } from '../http/service.ts';
import type { IdentityContext } from '../identity/context.ts';
import type { ImageService } from '../image/service.ts';
import { adminExtraRoutes } from './api/admin-extras.ts';
import { aggregateRoutes } from './api/aggregates.ts';
import { defaultComputeConfig, type ComputeConfig, type ComputeContext } from './api/context.ts';
import { flavorRoutes, seedDefaultFlavors } from './api/flavors.ts';
import { gateMicroversion, novaPolicyRefusal, PREFIX, renderComputeError, setupMicroversions } from './api/http.ts';
import { imageAccess } from './api/images-access.ts';
import { abandonMoves, expireSnapshots } from './api/janitor.ts';
import { infraRoutes } from './api/infra.ts';
import { imageProxyRoutes } from './api/images.ts';
import { instanceActionRoutes } from './api/instance-actions.ts';
import { miscRoutes } from './api/misc.ts';
import { migrationRoutes } from './api/migrations.ts';
import { quotaRoutes } from './api/quotas.ts';
import { serverGroupRoutes } from './api/server-groups.ts';
import { usageRoutes } from './api/usage.ts';
import { keypairRoutes } from './api/keypairs.ts';
import { computeRules } from './api/policy.ts';
import { serverActionRoutes } from './api/server-actions.ts';
import { dropMoveImages, dropShelveImages } from './api/server-moves.ts';
import { serverExtraRoutes } from './api/server-extras.ts';
import { serverMetadataRoutes, serverTagRoutes } from './api/server-metadata.ts';
import { serverRoutes } from './api/servers.ts';
import { settleEvents } from './api/servers-store.ts';
import { versionRoutes } from './api/versions.ts';
import { kindOf } from './kinds.ts';
import { createEngine } from './engine/index.ts';
import { consoleProxyServices, consoleRoutes } from './api/consoles.ts';
import { novncService } from './api/novnc.ts';
import { serverEvents } from './api/events.ts';
import type { EventBus } from '../http/events.ts';
import type { BaremetalNodes } from '../baremetal/service.ts';

export interface ComputeDeps {
  db: Db; log: Logger; dataDir: string; identity: IdentityContext; images: ImageService;
  /** The agent API compute registers its `server` kind, host registry and image routes with. */
  fleet: Fleet;
  config?: Partial<ComputeConfig>;
  /** The network service's way to servers' ports (none: `networks` is recorded only). */
  network?: ServerNetworking;
  /** The volume service's way to Cinder's attachments (none: os-volume_attachments refuses). */
  volumes?: ServerVolumes;
  /** The resource event stream servers' changes are published to. */
  events?: EventBus;
  /** The bare-metal service's nodes, driven for servers of kind baremetal (none: they find no valid host). */
  baremetal?: BaremetalNodes;
}

export interface ComputeService {
  /** The compute API. */
  services: Service[];
  /** Starts the controllers (scheduler, heartbeat watch). */
  start(): Promise<void>;
  stop(): Promise<void>;
}

export function createCompute(deps: ComputeDeps): ComputeService {
  const network = deps.network ?? null;
  const volumes = deps.volumes;
  // a server placed on a host: its ports are bound there, and its volumes' attachments follow it (an unshelve)
  const placed = network || volumes ? {
    bindPorts: async (id: string, host: string, kind: string) => {
      // a bare-metal server's ports are bound to its node's NICs by its driver (engine/baremetal.ts)
      if (network && kindOf(kind).agent) await network.bind(id, host, kindOf(kind).vifType);
      if (volumes) await moveServerVolumes(deps.db, volumes, id, host);
    },
  } : {};
  const engine = createEngine({ ...deps, ...placed, network });
  // the channels agents open for consoles (and, later, exec): a route of the agent API
  const ctx: ComputeContext = {
    db: deps.db, log: deps.log, engine, images: imageAccess(deps.images), identity: deps.identity,
    config: { ...defaultComputeConfig, ...deps.config }, network, volumes: deps.volumes ?? null,
    serverEvents: serverEvents(deps.db, deps.events), publish: (c) => deps.events?.publish(c), baremetal: deps.baremetal ?? null,
  };
  // what agents reported and the scheduler did, on the event stream
  engine.onServersChanged((rows) => ctx.serverEvents(rows));
  // Instance action events finish as the agents report the work done.
  engine.onServersChanged((rows) => settleEvents(deps.db, rows));
  // a deleted server's ports go (the ones the user gave are kept, detached); a server sent back to
  // scheduling (or ERROR) leaves its host, and so do its ports (the next claim binds them again)
  if (network) engine.onServersChanged(async (rows) => {
    for (const r of rows) {
      if (r.deleted_at !== null) await network.release(r.id, givenPorts(r.requested_networks));
      else if (r.host === null) await network.bind(r.id, null);
    }
  });
  // a deleted server's volumes are detached (and deleted with delete_on_termination)
  if (volumes) engine.onServersChanged(async (rows) => {
    for (const r of rows) if (r.deleted_at !== null) await releaseServerVolumes(deps.db, volumes, deps.log, r.id);
  });
  // a shelve snapshot goes once its server runs again (unshelved) or is deleted, as Nova's
  engine.onServersChanged((rows) => dropShelveImages(ctx, rows));
  engine.onServersChanged((rows) => dropMoveImages(ctx, rows));
  let janitor: NodeJS.Timeout | undefined;
  const routes = [
    ...versionRoutes(),
    ...flavorRoutes(ctx),
    ...keypairRoutes(ctx),
    ...serverRoutes(ctx),
    ...serverActionRoutes(ctx),
    ...serverExtraRoutes(ctx),
    ...serverMetadataRoutes(ctx),
    ...serverTagRoutes(ctx),
    ...instanceActionRoutes(ctx),
    ...quotaRoutes(ctx),
    ...infraRoutes(ctx),
    ...serverGroupRoutes(ctx),
    ...usageRoutes(ctx),
    ...imageProxyRoutes(ctx),
    ...miscRoutes(ctx),
    ...adminExtraRoutes(ctx),
    ...migrationRoutes(ctx),
    ...aggregateRoutes(ctx),
    ...consoleRoutes(ctx),
  ];
  return {
    services: [
      { name: 'compute', prefix: PREFIX, routes, rules: computeRules, renderError: renderComputeError, policyRefusal: novaPolicyRefusal, setup: setupMicroversions, gate: gateMicroversion },
      ...consoleProxyServices(ctx, deps.fleet.streams),
      novncService(),
    ],
    async start() {
      await seedDefaultFlavors(deps.db);
      await engine.start();
      janitor = setInterval(() => {
        expireSnapshots(ctx).catch((err) => deps.log.warn({ err }, 'expiring snapshots failed'));
        abandonMoves(ctx).catch((err) => deps.log.warn({ err }, 'abandoning stalled moves failed'));
      }, 60_000);
      janitor.unref();
    },
    async stop() {
      if (janitor) clearInterval(janitor);
      await engine.stop();
    },
  };
}
