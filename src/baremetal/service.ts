// The bare-metal service (OpenStack Ironic v1) under /baremetal: its route
// table, policy, Ironic's error body and microversions; the fleet kind
// `baremetal_node` its conductors converge (kinds.ts); each node a placement
// resource provider. Also the in-process interface compute will drive nodes
// through, as Nova's ironic driver drives Ironic: find a node by instance,
// set instance_info / instance_uuid, deploy with a config drive, power,
// undeploy, and hear of state changes.
import type { EventBus } from '../http/events.ts';
import type { Logger } from 'pino';
import { nowIso } from '../common/ids.ts';
import { parseJsonObject } from '../common/json.ts';
import type { Db } from '../db/database.ts';
import type { ResourceKind } from '../fleet/kinds.ts';
import type { HostInfo } from '../fleet/protocol.ts';
import { Microversion } from '../http/microversion.ts';
import { PUBLIC } from '../http/policy.ts';
import { route, type Route, type Service } from '../http/service.ts';
import { heard } from './conductors.ts';
import {
  DEFAULT_BAREMETAL_CONFIG, type BaremetalConfig, type BaremetalImages, type BmContext, type NodeEvent, type NodeRow, type ProvisioningPorts,
} from './context.ts';
import { E, renderIronicError } from './errors.ts';
import { baseUrl, gate, MAX_VERSION, PREFIX, setup, versionEntry } from './http.ts';
import { baremetalKind } from './kinds.ts';
import { attachVif, detachVif, nodeRoutes } from './nodes.ts';
import { baremetalRules } from './policy.ts';
import { applyVerb } from './provision.ts';
import { allocationRoutes, chassisRoutes, conductorRoutes, driverRoutes, portgroupRoutes, portRoutes } from './resources.ts';
import type { ConfigDrive } from './protocol.ts';
import { afterChange, findNode, syncPlacement } from './util.ts';

export type { BaremetalConfig, BaremetalImages, NodeEvent, ProvisioningPorts } from './context.ts';
export { customClassOf } from '../placement/service.ts';

/** A node as compute sees it (Nova's ironic driver's view). */
export interface BaremetalNode {
  uuid: string; name: string | null; instance_uuid: string | null; provision_state: string; target_provision_state: string | null;
  power_state: string | null; target_power_state: string | null; maintenance: boolean; last_error: string | null; resource_class: string | null;
  properties: Record<string, unknown>; instance_info: Record<string, unknown>;
  /** The conductor (agent host) holding the node: the host of a server deployed on it, as Nova's compute host of its ironic nodes. */
  conductor: string | null;
}

/** The node's port a VIF was attached to: what the Neutron port is bound with (Ironic's flat network interface). */
export interface AttachedVifPort {
  uuid: string; address: string; physical_network: string | null; local_link_connection: Record<string, unknown>;
}

/** Compute's way to nodes (never HTTP to ourselves): the calls Nova's ironic driver makes to Ironic. */
export interface BaremetalNodes {
  get(uuid: string): Promise<BaremetalNode | null>;
  byInstance(instanceUuid: string): Promise<BaremetalNode | null>;
  /** Every node (Nova's ironic driver lists them for its hypervisors and the scheduler's candidates). */
  list(): Promise<BaremetalNode[]>;
  /** Whether `host` is the conductor of some node. */
  conducts(host: string): Promise<boolean>;
  /** Sets (or with null clears) the node's instance_uuid and merges instance_info (image_source, root_gb, ...). Ironic's 409s. */
  setInstance(uuid: string, instanceUuid: string | null, instanceInfo?: Record<string, unknown>): Promise<void>;
  /** `active` with a config drive (Ironic's JSON form or string). */
  deploy(uuid: string, configDrive?: ConfigDrive | string | null): Promise<void>;
  /**
   * `rebuild` of a deployed node (active, deploy failed, error): deploy again from instance_info, with a new config
   * drive; `instanceInfo` (the new image, ...) is merged into instance_info by the update that accepts the rebuild, so a
   * refused rebuild (Ironic's 400, 409 NodeLocked) leaves the node as it was.
   */
  rebuild(uuid: string, configDrive?: ConfigDrive | string | null, instanceInfo?: Record<string, unknown>): Promise<void>;
  /** `deleted`: tear down, then automated cleaning back to available. */
  undeploy(uuid: string): Promise<void>;
  power(uuid: string, target: 'power on' | 'power off' | 'rebooting' | 'soft power off' | 'soft rebooting'): Promise<void>;
  /** Attaches the VIF to a free port of the node (Ironic's 409s); the port taken. */
  /** `physnets`: the VIF's network's physical networks (a port on another is not taken). */
  attachVif(uuid: string, vif: string, physnets?: string[]): Promise<AttachedVifPort>;
  detachVif(uuid: string, vif: string): Promise<void>;
  /** Hears every change of a node's provision or power state (and last_error). */
  onEvent(fn: (e: NodeEvent) => void): void;
}

export interface BaremetalService {
  service: Service;
  nodes: BaremetalNodes;
  /** The fleet kind (registered by createBaremetalService when given a fleet). */
  kind: ResourceKind;
  start(): Promise<void>;
}

const latest = Microversion.of(MAX_VERSION);

export function createBaremetalService(o: {
  db: Db; log: Logger; config?: Partial<BaremetalConfig>;
  /** Where the kind goes and where conductors' registrations are heard. */
  fleet?: { registerKind(kind: ResourceKind): void; onRegister(listener: (hostname: string, info: HostInfo) => void): void; notify(host: string | null | undefined): void };
  images?: BaremetalImages;
  ports?: ProvisioningPorts;
  /** The resource event stream: every node's change (API or conductor) as a `baremetal_node` event. */
  events?: EventBus;
}): BaremetalService {
  const listeners: Array<(e: NodeEvent) => void> = [];
  const ctx: BmContext = {
    db: o.db, log: o.log, config: { ...DEFAULT_BAREMETAL_CONFIG, ...o.config }, images: o.images, ports: o.ports,
    notify: (h) => o.fleet?.notify(h),
    publish: o.events ? (c) => o.events!.publish(c) : undefined,
    emit: (e) => {
      for (const fn of listeners) {
        try { fn(e); } catch (err) { o.log.warn({ err: (err as Error).message }, 'a baremetal event listener failed'); }
      }
    },
  };
  const kind = baremetalKind(ctx);
  if (o.fleet) {
    o.fleet.registerKind(kind);
    o.fleet.onRegister((h, info) => { heard(ctx, h, info).catch((err: Error) => o.log.warn({ err: err.message, host: h }, 'recording a conductor failed')); });
  }
  const root = (base: string) => ({
    name: 'OpenStack Ironic API',
    description: 'Ironic is an OpenStack project which enables the provision and management of baremetal machines.',
    default_version: versionEntry(base),
    versions: [versionEntry(base)],
  });
  const links = (base: string, name: string) => [{ href: `${base}/v1/${name}/`, rel: 'self' }, { href: `${base}/${name}/`, rel: 'bookmark' }];
  const v1 = (base: string, v: Microversion) => {
    const out: Record<string, unknown> = {
      id: 'v1',
      links: [{ href: `${base}/v1/`, rel: 'self' }, { href: 'https://docs.openstack.org//ironic/latest/contributor//webapi.html', rel: 'describedby', type: 'text/html' }],
      media_types: { base: 'application/json', type: 'application/vnd.openstack.ironic.v1+json' },
      chassis: links(base, 'chassis'), nodes: links(base, 'nodes'), ports: links(base, 'ports'), drivers: links(base, 'drivers'),
      version: versionEntry(base),
    };
    if (v.ge('1.23')) out.portgroups = links(base, 'portgroups');
    if (v.ge('1.49')) out.conductors = links(base, 'conductors');
    if (v.ge('1.52')) out.allocations = links(base, 'allocations');
    if (v.ge('1.54')) out.events = links(base, 'events');
    return out;
  };
  const routes: Route[] = [
    route({ method: 'GET', path: '/', rule: PUBLIC, handler: (rc) => root(baseUrl(rc.req)) }),
    route({ method: 'GET', path: '/v1', rule: PUBLIC, handler: (rc) => v1(baseUrl(rc.req), versionOf(rc.req.headers)) }),
    ...nodeRoutes(ctx), ...portRoutes(ctx), ...portgroupRoutes(ctx), ...driverRoutes(ctx), ...conductorRoutes(ctx),
    ...allocationRoutes(ctx), ...chassisRoutes(ctx),
  ];

  const view = (n: NodeRow): BaremetalNode => ({
    uuid: n.uuid, name: n.name, instance_uuid: n.instance_uuid, provision_state: n.provision_state, target_provision_state: n.target_provision_state,
    power_state: n.power_state, target_power_state: n.target_power_state, maintenance: !!n.maintenance, last_error: n.last_error,
    resource_class: n.resource_class, properties: parseJsonObject(n.properties), instance_info: parseJsonObject(n.instance_info),
    conductor: n.conductor,
  });
  const load = (uuid: string) => findNode(ctx, uuid, null);
  const nodes: BaremetalNodes = {
    async get(uuid) {
      const n = await o.db.selectFrom('baremetal_nodes').selectAll().where('uuid', '=', uuid).executeTakeFirst();
      return n ? view(n) : null;
    },
    async byInstance(instanceUuid) {
      const n = await o.db.selectFrom('baremetal_nodes').selectAll().where('instance_uuid', '=', instanceUuid).executeTakeFirst();
      return n ? view(n) : null;
    },
    async list() {
      return (await o.db.selectFrom('baremetal_nodes').selectAll().orderBy('created_at').orderBy('uuid').execute()).map(view);
    },
    async conducts(host) {
      return !!(await o.db.selectFrom('baremetal_nodes').select('uuid').where('conductor', '=', host).limit(1).executeTakeFirst());
    },
    async setInstance(uuid, instanceUuid, info) {
      const n = await load(uuid);
      if (instanceUuid && n.instance_uuid && n.instance_uuid !== instanceUuid) throw E.nodeAssociated(n.uuid, n.instance_uuid);
      if (instanceUuid) {
        const other = await o.db.selectFrom('baremetal_nodes').select('uuid').where('instance_uuid', '=', instanceUuid).where('uuid', '!=', uuid).executeTakeFirst();
        if (other) throw E.instanceAssociated(instanceUuid, uuid);
      }
      const ii = instanceUuid === null ? {} : { ...parseJsonObject(n.instance_info), ...(info ?? {}) };
      await o.db.updateTable('baremetal_nodes').set({ instance_uuid: instanceUuid, instance_info: JSON.stringify(ii), updated_at: nowIso() }).where('uuid', '=', uuid).execute();
      await afterChange(ctx, uuid, { event: false });
    },
    deploy: async (uuid, cd) => applyVerb(ctx, await load(uuid), { target: 'active', ...(cd ? { configdrive: cd } : {}) }, latest, 'compute'),
    rebuild: async (uuid, cd, ii) => applyVerb(ctx, await load(uuid), { target: 'rebuild', ...(cd ? { configdrive: cd } : {}) }, latest, 'compute', { instanceInfo: ii }),
    undeploy: async (uuid) => applyVerb(ctx, await load(uuid), { target: 'deleted' }, latest, 'compute'),
    async power(uuid, target) {
      const n = await load(uuid);
      const map = { 'power on': 'power on', 'power off': 'power off', rebooting: 'reboot', 'soft power off': 'soft power off', 'soft rebooting': 'soft reboot' } as const;
      const seq = Number(parseJsonObject(n.power_request).seq ?? 0) + 1;
      const tps = target === 'rebooting' || target === 'soft rebooting' ? 'power on' : target === 'soft power off' ? 'power off' : target;
      await o.db.updateTable('baremetal_nodes').set((eb) => ({
        power_request: JSON.stringify({ target: map[target], seq }), target_power_state: tps, updated_at: nowIso(), version: eb('version', '+', 1),
      })).where('uuid', '=', uuid).execute();
      await afterChange(ctx, uuid);
    },
    attachVif: (uuid, vif, physnets) => attachVif(ctx, uuid, vif, undefined, physnets),
    detachVif: (uuid, vif) => detachVif(ctx, uuid, vif),
    onEvent(fn) {
      listeners.push(fn);
    },
  };
  return {
    service: {
      name: 'baremetal', prefix: PREFIX, routes, rules: baremetalRules, renderError: renderIronicError, gate, setup,
      policyRefusal: (rule) => `Access was denied to the following resource: ${rule}`,
    },
    nodes,
    kind,
    async start() {
      // placement follows every node (a restart after a crash mid-change converges here)
      for (const n of await o.db.selectFrom('baremetal_nodes').select('uuid').execute()) {
        await syncPlacement(ctx, n.uuid).catch((err: Error) => o.log.warn({ err: err.message, node: n.uuid }, 'placement sync of a node failed'));
      }
    },
  };
}

/** The version a discovery request asked (for the v1 document's links). */
function versionOf(headers: Record<string, string | string[] | undefined>): Microversion {
  const h = headers['x-openstack-ironic-api-version'];
  const s = Array.isArray(h) ? h[0] : h;
  if (!s) return Microversion.of('1.1');
  if (s === 'latest') return latest;
  return Microversion.parse(s) ?? Microversion.of('1.1');
}
