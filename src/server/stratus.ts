// Starts one Stratus control-plane process: opens and migrates the database,
// bootstraps, and serves every hosted API on one port.
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import type { AddressInfo } from 'node:net';
import { pino, type DestinationStream, type Logger } from 'pino';
import { migrate, openDatabase, type Database } from '../db/database.ts';
import { IdleMemory, type Collector } from '../http/idle-memory.ts';
import { buildServer } from '../http/server.ts';
import { EventBus, eventService, withWriteEvents } from '../http/events.ts';
import { dashboardServices } from '../dashboard/service.ts';
import { networkWriteWatch } from '../network/events.ts';
import { volumeWriteWatch } from '../volume/events.ts';
import { imageWriteWatch } from '../image/events.ts';
import { identityWriteWatch } from '../identity/events.ts';
import { bootstrap, type HostedService } from '../identity/bootstrap.ts';
import type { IdentityConfig } from '../identity/context.ts';
import { createIdentity, type Identity } from '../identity/service.ts';
import { createImageService, type ImageService } from '../image/service.ts';
import { FileStore } from '../image/store.ts';
import { ObjectImageStore } from '../image/object-store.ts';
import { createCompute } from '../compute/service.ts';
import { createPlacement } from '../placement/service.ts';
import { createNetworkService, type NetworkConfig } from '../network/service.ts';
import { createVolumeService, type VolumeConfig } from '../volume/service.ts';
import { createBaremetalService, type BaremetalConfig, type BaremetalNodes, type ProvisioningPorts } from '../baremetal/service.ts';
import { createObjectService, type ObjectConfig, type ObjectService } from '../object/service.ts';
import { createS3Service, type S3Config } from '../object/s3/service.ts';
import { collectRegistryGarbage, createRegistry, type GcOptions, type GcResult, type RegistryService } from '../registry/service.ts';
import { ObjectRegistryStorage } from '../registry/storage.ts';
import { createFleet } from '../fleet/api.ts';
import { createMetadataService, metadataRoutes } from '../metadata/service.ts';
import { defaultComputeConfig, type ComputeConfig } from '../compute/api/context.ts';
import { hostIsUp } from '../compute/engine/scheduler.ts';

export interface StratusOptions {
  dataDir: string;
  /** sqlite path or postgres:// URL; defaults to DATA_DIR/stratus.db. */
  database?: string;
  host?: string;
  port?: number;
  /** The URL clients reach this server at, used in the catalog. */
  publicUrl?: string;
  logLevel?: string;
  logger?: Logger;
  tls?: { certFile: string; keyFile: string };
  identity?: Partial<IdentityConfig>;
  /** Compute API settings (timeouts, default availability zone...). */
  compute?: Partial<ComputeConfig>;
  /** The volume service's settings (tests: a small backup chunk size). */
  volume?: Partial<VolumeConfig>;
  /** Network API settings (VNI range, MTUs, MAC prefix). */
  network?: Partial<NetworkConfig>;
  /** The admin's password, set at every start when given; otherwise generated at the first start. Either is kept in DATA_DIR/admin-password. */
  adminPassword?: string;
  /** Where image bytes live (default DATA_DIR/images): one directory on shared storage for several replicas. */
  imageDir?: string;
  /** Where the image service keeps image data: files in imageDir (default), or objects of the object store (Glance's swift store). */
  imageStore?: 'file' | 'object';
  /** The object store's settings (its directory, default DATA_DIR/objects). */
  object?: ObjectConfig;
  /** The S3 API's settings (virtual-hosted buckets' domain, the region it reports). */
  s3?: S3Config;
  /** The bare-metal service's settings (the provisioning network). */
  baremetal?: Partial<BaremetalConfig>;
  /**
   * The provisioning network's ports for bare-metal operations (a port per PXE NIC with the PXE
   * extra_dhcp_opts); by default the network service's (a test passes a recording double).
   */
  baremetalPorts?: ProvisioningPorts;
}

export interface Stratus {
  url: string;
  port: number;
  adminPassword: string;
  /** The id of the admin project (client configuration names it for clients that want an id). */
  adminProjectId: string;
  database: Database;
  identity: Identity;
  /** The image service's in-process interface (records and data). */
  images: ImageService;
  /** The object store (Swift's, S3's, the registry's). */
  objects: ObjectService;
  /** The OCI registry (garbage collection on demand). */
  registry: RegistryService;
  /** The bare-metal nodes as compute will drive them (Nova's ironic driver's calls). */
  baremetal: BaremetalNodes;
  logger: Logger;
  close(): Promise<void>;
}

/** The services this server hosts, as they appear in the catalog. */
export const HOSTED_SERVICES: HostedService[] = [
  { type: 'identity', name: 'keystone', path: '/identity' },
  { type: 'image', name: 'glance', path: '/image' },
  { type: 'compute', name: 'nova', path: '/compute/v2.1' },
  { type: 'placement', name: 'placement', path: '/placement' },
  { type: 'network', name: 'neutron', path: '/network' },
  // as DevStack registers Cinder: both types, project-less URLs
  { type: 'block-storage', name: 'cinder', path: '/volume/v3' },
  { type: 'volumev3', name: 'cinderv3', path: '/volume/v3' },
  // as DevStack registers Swift: the account of the token's project in the URL
  { type: 'object-store', name: 'swift', path: '/object/v1/AUTH_$(project_id)s' },
  { type: 'baremetal', name: 'ironic', path: '/baremetal' },
  // Stratus's resource event stream (docs/events.md)
  { type: 'events', name: 'stratus-events', path: '/events/v1' },
];

export const defaultDatabase = (dataDir: string) => join(dataDir, 'stratus.db');

/**
 * The admin password: given, else remembered in the data directory, else new.
 * A given or new one is remembered, so a later start without the flag writes
 * client configuration with the password that works.
 */
export function adminPasswordFor(dataDir: string, given?: string): string {
  const file = join(dataDir, 'admin-password');
  if (!given && existsSync(file)) return readFileSync(file, 'utf8').trim();
  const pw = given || randomBytes(18).toString('base64url');
  writeFileSync(file, pw + '\n', { mode: 0o600 });
  return pw;
}

/** Every service this process hosts, on one database; `services` is what the HTTP server serves. */
export function createServices(database: Database, logger: Logger, o: Pick<StratusOptions, 'dataDir' | 'identity' | 'compute' | 'volume' | 'imageDir' | 'imageStore' | 'network' | 'object' | 's3' | 'publicUrl' | 'baremetal' | 'baremetalPorts'>) {
  const identity = createIdentity(database.db, logger, o.identity, database.kind === 'sqlite' ? database.writes : null);
  // the resource event stream: services publish their resources' changes, /events streams them
  const events = new EventBus();
  const objects = createObjectService({ db: database.db, log: logger.child({ component: 'object' }), dataDir: o.dataDir, config: o.object });
  const images = createImageService({ db: database.db, log: logger, dataDir: o.dataDir, store: o.imageStore === 'object' ? new ObjectImageStore(objects.store) : imageStore(o) });
  // the agent API: services register the resource kinds agents converge
  const fleet = createFleet({ dataDir: o.dataDir, db: database.db, log: logger });
  const network = createNetworkService({
    db: database.db, log: logger, config: o.network,
    // the hosts' VXLAN endpoints: the host_ip each agent registers (compute keeps the host records)
    fleet: {
      registerKind: (k) => fleet.registerKind(k),
      async hostAddresses(names) {
        const rows = await database.db.selectFrom('compute_hosts').select(['hostname', 'host_ip']).where('hostname', 'in', names).execute();
        return new Map(rows.filter((r) => r.host_ip).map((r) => [r.hostname, r.host_ip]));
      },
      // up as Nova's os-services says (heard from within service_down_time, not forced down): the routers of other hosts move
      async upHosts() {
        const downTime = o.compute?.serviceDownTime ?? defaultComputeConfig.serviceDownTime;
        const rows = await database.db.selectFrom('compute_hosts').selectAll().execute();
        return rows.filter((h) => hostIsUp(h, downTime)).map((h) => h.hostname);
      },
    },
  });
  const volume = createVolumeService({ db: database.db, log: logger.child({ component: 'volume' }), config: o.volume, fleet, images, events, objects: objects.store });
  // bare metal (Ironic): nodes converged by the conductors (agents run with --baremetal); an operation that
  // boots the ramdisk over PXE gets ports on the provisioning network from the network service, as Ironic's from Neutron
  const baremetal = createBaremetalService({
    db: database.db, log: logger.child({ component: 'baremetal' }), config: o.baremetal, fleet, images, ports: o.baremetalPorts ?? network.baremetalPorts, events,
  });
  // compute drives nodes for bare-metal servers through the bare-metal service's interface, as Nova's ironic driver drives Ironic
  const compute = createCompute({
    db: database.db, log: logger, dataDir: o.dataDir, identity: identity.context, images, fleet, config: o.compute, network: network.servers, volumes: volume.servers, events,
    baremetal: baremetal.nodes,
  });
  // the metadata service (169.254.169.254): the agents' metadata proxies relay guests' requests to it
  fleet.addRoutes(metadataRoutes(createMetadataService({ db: database.db, log: logger.child({ component: 'metadata' }) })));
  const placement = createPlacement(database.db);
  // S3 on the same store: buckets are the projects' containers; keys are Keystone's EC2 credentials
  const s3 = createS3Service({ store: objects.store, keys: identity.ec2, log: logger.child({ component: 's3' }), ...o.s3 });
  // the OCI registry under /v2, its bytes in the object store
  const registry = createRegistry({
    db: database.db, log: logger, storage: new ObjectRegistryStorage(objects.store),
    authenticate: identity.authenticate, basicAuth: identity.basicAuth, refreshLogin: identity.refreshLogin, images, publicUrl: o.publicUrl,
  });
  return {
    identity, images, compute, fleet, volume, objects, registry, baremetal, events,
    // the API writes of networks, volumes and images on the event stream (compute publishes its own)
    services: [withWriteEvents(identity.service, events, identityWriteWatch(database.db)), withWriteEvents(images.service, events, imageWriteWatch(database.db)), ...compute.services, fleet.service, placement.service,
      withWriteEvents(network.service, events, networkWriteWatch(database.db)), withWriteEvents(volume.service, events, volumeWriteWatch(database.db)), objects.service, s3, registry.service,
      baremetal.service, eventService(events, identity.authenticate), ...dashboardServices()],
  };
}

/**
 * The image store: files in the image directory. Its temporary files are kept
 * apart per replica (named by host and data directory), so that replicas
 * sharing the directory never remove each other's uploads in progress.
 */
function imageStore(o: Pick<StratusOptions, 'dataDir' | 'imageDir'>): FileStore {
  const owner = `${hostname().replace(/[^A-Za-z0-9._-]/g, '_')}-${createHash('sha256').update(resolve(o.dataDir)).digest('hex').slice(0, 12)}`;
  return new FileStore(resolve(o.imageDir ?? join(o.dataDir, 'images')), owner);
}

/**
 * `stratus registry gc`: one garbage collection of the registry on the
 * server's database and object store. The store is not started: its crash
 * recovery belongs to the server (a running one may have writes in flight).
 */
export async function registryGc(o: Pick<StratusOptions, 'dataDir' | 'database' | 'object'>, gc: GcOptions): Promise<GcResult> {
  const database = await openDatabase(o.database ?? defaultDatabase(o.dataDir));
  try {
    await migrate(database.db);
    const objects = createObjectService({ db: database.db, log: serverLogger('warn'), dataDir: o.dataDir, config: o.object });
    try {
      return await collectRegistryGarbage(database.db, new ObjectRegistryStorage(objects.store), gc);
    } finally {
      // the removals of the objects' bytes it queued
      await objects.stop();
    }
  } finally {
    await database.close();
  }
}

/** The server's JSON log, to stdout unless given another destination. */
export function serverLogger(level = 'info', destination?: DestinationStream): Logger {
  return pino({ level, base: { service: 'stratus' } }, destination);
}

export async function startStratus(o: StratusOptions): Promise<Stratus> {
  mkdirSync(o.dataDir, { recursive: true, mode: 0o700 });
  const logger = o.logger ?? serverLogger(o.logLevel);
  const database = await openDatabase(o.database ?? defaultDatabase(o.dataDir));
  const { identity, images, compute, fleet, volume, objects, registry, baremetal, services } = createServices(database, logger, o);
  // globalThis.gc exists when Node runs with --expose-gc, as bin/stratus runs the server.
  const idleMemory = new IdleMemory((globalThis as { gc?: Collector }).gc);
  let listening: { close(): Promise<unknown> } | undefined;
  try {
    await migrate(database.db);
    const tls = o.tls ? { cert: readFileSync(o.tls.certFile), key: readFileSync(o.tls.keyFile) } : undefined;
    let ready = false;
    const app = buildServer({ logger, authenticate: identity.authenticate, services, tls, isReady: () => ready, idleMemory });
    const host = o.host ?? '127.0.0.1';
    await app.listen({ host, port: o.port ?? 5000 });
    listening = app;
    const port = (app.server.address() as AddressInfo).port;
    const scheme = tls ? 'https' : 'http';
    const url = o.publicUrl ?? `${scheme}://${host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host}:${port}`;
    const adminPassword = adminPasswordFor(o.dataDir, o.adminPassword);
    const { adminProjectId } = await bootstrap(database.db, { adminPassword, resetAdminPassword: !!o.adminPassword, publicUrl: url, services: HOSTED_SERVICES });
    await identity.start();
    await images.start();
    await fleet.start();
    await compute.start();
    await volume.start();
    await objects.start();
    await registry.start();
    await baremetal.start();
    // Start-up (loading modules, migrations, bootstrap, registering every
    // route) leaves garbage like a burst of requests does: collected before
    // the first request rather than once traffic has begun.
    idleMemory.collectNow();
    ready = true;
    logger.info({ url }, 'stratus server listening');
    return {
      url, port, adminPassword, adminProjectId, database, identity, images, objects, registry, logger, baremetal: baremetal.nodes,
      async close() {
        idleMemory.stop();
        identity.stop();
        await registry.stop();
        await fleet.stop();
        await compute.stop();
        await app.close();
        // images first: its imports in flight may write to the object store (--image-store object)
        await images.stop();
        await objects.stop();
        await database.close();
      },
    };
  } catch (err) {
    // Whatever started is stopped again, so a failed start leaves no port or timer behind.
    idleMemory.stop();
    identity.stop();
    await registry.stop().catch(() => undefined);
    await fleet.stop();
    await compute.stop().catch(() => undefined);
    await listening?.close().catch(() => undefined);
    await images.stop().catch(() => undefined);
    await objects.stop().catch(() => undefined);
    await database.close();
    throw err;
  }
}
