// The fleet: the agent API (/agent/v1) every host agent connects to, over
// the resource kinds that services register. It authenticates agents (their
// own credential, not Keystone's), checks the protocol version at
// registration, serves the long-poll watch over every registered kind (one
// query per kind per round; a kind's notify wakes the host's watch),
// dispatches each report to the kind that owns it and carries requests. It
// knows no kind: compute registers `server`, the network service `network`,
// `port` and `security_group`; volumes will register theirs the same way.
import type { Logger } from 'pino';
import { Type } from 'typebox';
import { ApiError } from '../common/errors.ts';
import type { Db } from '../db/database.ts';
import type { Credentials } from '../http/auth.ts';
import { firstError } from '../http/json-schema.ts';
import type { Rule } from '../http/policy.ts';
import { route, type Route, type Service } from '../http/service.ts';
import type { HostRegistry, ResourceKind } from './kinds.ts';
import {
  AGENT_TOKEN_HEADER, HOSTNAME_PATTERN, MAX_ALLOCATION_RATIO, PROTOCOL_VERSION, type HostInfo, type HostRegistration, type Known, type PendingRequest,
  type ReportRequest, type Resource, type ResourceRef, type WatchRequest, type WatchResponse,
} from './protocol.ts';
import { Signals } from './signals.ts';
import { createStreamHub, type StreamHub } from './stream.ts';
import { agentTokenFor, tokenChecker } from './token.ts';
import { protocolRefusal } from './version.ts';

export interface FleetConfig {
  /** Seconds between agent heartbeats. */
  heartbeatInterval: number;
  /** Longest long poll, in seconds. */
  maxWatchWait: number;
  /** Longest sleep of a watch between database reads (a notify on another replica is seen this late at worst), in ms. */
  recheckMs: number;
}

export const defaultFleetConfig: FleetConfig = { heartbeatInterval: 10, maxWatchWait: 30, recheckMs: 3000 };

export interface Fleet {
  /** The agent API service (under /agent). */
  readonly service: Service;
  /** A service's resource kind; before the server starts. */
  registerKind(kind: ResourceKind): void;
  /** Where hosts are recorded (one registry). */
  setHosts(hosts: HostRegistry): void;
  /** Routes a service adds under /agent (compute: image download, snapshot upload); before the HTTP server is built. */
  addRoutes(routes: Route[]): void;
  /** Hears every host's registration and heartbeat (the volume scheduler: the hosts' pools). */
  onRegister(listener: (hostname: string, info: HostInfo) => void): void;
  /** Wakes the watch of `host`: something placed on it changed. */
  notify(host: string | null | undefined): void;
  /** The agent token (shared by the replicas through the database; also in DATA_DIR/agent-token), once started. */
  readonly agentToken: string | null;
  /** The agents' stream channels (consoles): services open named streams to a host's processes through it. */
  readonly streams: StreamHub;
  /** Whether the fleet is stopping (long polls answer at once). */
  readonly stopping: boolean;
  start(): Promise<void>;
  stop(): Promise<void>;
}

const AGENT_ROLE = 'stratus:agent';
/** The caller of every agent API call that presents the agent token. */
export const AGENT_CREDENTIALS: Credentials = Object.freeze({
  userId: 'stratus-agent', userName: 'stratus-agent', userDomainId: '', projectId: null, projectDomainId: null, domainId: null,
  system: false, roles: new Set([AGENT_ROLE]), roleIds: [], token: null,
});
/** The rule of every agent API route (services adding routes use it too). */
export const AGENT_RULE = 'agent';
const agentRules: Record<string, Rule> = { [AGENT_RULE]: (c) => c.roles.has(AGENT_ROLE) && c.userId === AGENT_CREDENTIALS.userId };

const hostnameOf = (p: Record<string, string>) => {
  const h = p.hostname ?? '';
  if (!HOSTNAME_PATTERN.test(h)) throw new ApiError('BadRequest', 'Invalid host name.');
  return h;
};

const KIND = '^[a-z][a-z0-9_]{0,31}$';
const Id = Type.String({ minLength: 1, maxLength: 64 });
const ResourceErrorBody = Type.Object({
  class: Type.Union([Type.Literal('transient'), Type.Literal('permanent'), Type.Literal('user')]),
  code: Type.String({ pattern: '^[a-z][a-z0-9_]{0,63}$' }),
  message: Type.String({ maxLength: 4000 }),
}, { additionalProperties: false });

// The protocol version is checked before the rest, so an agent of another
// major version (whose body may differ in any way) hears why it is refused.
const ProtocolBody = Type.Object({ protocol: Type.Optional(Type.String({ maxLength: 16 })) }, { additionalProperties: true });
const HostInfoBody = Type.Object({
  protocol: Type.String({ maxLength: 16 }),
  kinds: Type.Record(Type.String({ pattern: KIND }), Type.Array(Type.String({ pattern: '^[a-z][a-z0-9_-]{0,31}$' }), { maxItems: 16 }), { minProperties: 1, maxProperties: 16 }),
  vcpus: Type.Integer({ minimum: 0 }),
  memory_mb: Type.Integer({ minimum: 0 }),
  disk_gb: Type.Integer({ minimum: 0 }),
  host_ip: Type.Optional(Type.String({ maxLength: 64 })),
  version: Type.String({ maxLength: 64 }),
  availability_zone: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
  cpu_allocation_ratio: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: MAX_ALLOCATION_RATIO.cpu })),
  ram_allocation_ratio: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: MAX_ALLOCATION_RATIO.ram })),
  disk_allocation_ratio: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: MAX_ALLOCATION_RATIO.disk })),
  hypervisor: Type.Optional(Type.Object({
    type: Type.Union([Type.Literal('QEMU'), Type.Literal('KVM')]),
    accel: Type.Union([Type.Literal('kvm'), Type.Literal('tcg')]),
    version: Type.Optional(Type.String({ maxLength: 64 })),
  }, { additionalProperties: false })),
  volume_pools: Type.Optional(Type.Array(Type.Object({
    name: Type.String({ maxLength: 512, pattern: '^[^@#]+@[^@#]+#[^@#]+$' }),
    total_capacity_gb: Type.Number({ minimum: 0 }),
    free_capacity_gb: Type.Number({ minimum: 0 }),
    provisioned_capacity_gb: Type.Number({ minimum: 0 }),
    max_over_subscription_ratio: Type.Number({ minimum: 0 }),
    thin_provisioning_support: Type.Boolean(),
    reflink: Type.Boolean(),
    multiattach: Type.Boolean(),
    driver: Type.String({ maxLength: 32 }),
  }, { additionalProperties: false }), { maxItems: 64 })),
  baremetal: Type.Optional(Type.Object({
    address: Type.String({ minLength: 1, maxLength: 64 }),
    http_port: Type.Integer({ minimum: 1, maximum: 65535 }),
    tftp: Type.Boolean(),
    conductor_group: Type.Optional(Type.String({ maxLength: 255, pattern: '^[A-Za-z0-9_.-]*$' })),
  }, { additionalProperties: false })),
}, { additionalProperties: true });

const WatchBody = Type.Object({
  known: Type.Record(Type.String({ pattern: KIND }), Type.Record(Type.String(), Type.Integer())),
  requests: Type.Optional(Type.Array(Type.String({ maxLength: 64 }))),
  wait: Type.Optional(Type.Number({ minimum: 0 })),
}, { additionalProperties: false });

const ReportBody = Type.Object({
  resources: Type.Optional(Type.Array(Type.Object({
    kind: Type.String({ pattern: KIND }),
    id: Id,
    version: Type.Integer(),
    observed: Type.Unknown(),
    error: Type.Optional(ResourceErrorBody),
  }, { additionalProperties: false }))),
  requests: Type.Optional(Type.Array(Type.Object({
    id: Id,
    ok: Type.Boolean(),
    result: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    error: Type.Optional(ResourceErrorBody),
  }, { additionalProperties: false }))),
}, { additionalProperties: false });

export function createFleet(o: { dataDir: string; db: Db; log: Logger; config?: Partial<FleetConfig> }): Fleet {
  const cfg: FleetConfig = { ...defaultFleetConfig, ...o.config };
  const streams = createStreamHub({ log: o.log.child({ component: 'streams' }), rule: AGENT_RULE });
  const kinds = new Map<string, ResourceKind>();
  const signals = new Signals();
  const routes: Route[] = [];
  let hosts: HostRegistry | null = null;
  let token: string | null = null;
  let check: ((given: string | undefined) => boolean) | null = null;
  let stopping = false;
  /** The last time each host's watch marked it seen (at most one write every few seconds). */
  const lastSeen = new Map<string, number>();
  const registerListeners: Array<(hostname: string, info: HostInfo) => void> = [];

  const registry = () => {
    if (!hosts) throw new ApiError('Unavailable', 'No service keeps hosts.');
    return hosts;
  };

  async function register(hostname: string, info: HostInfo): Promise<HostRegistration> {
    const r = await registry().register(hostname, info);
    for (const l of registerListeners) l(hostname, info);
    return { ...r, heartbeat_interval: cfg.heartbeatInterval, protocol: PROTOCOL_VERSION };
  }

  async function watch(hostname: string, req: WatchRequest): Promise<WatchResponse> {
    if (Date.now() - (lastSeen.get(hostname) ?? 0) > 5000) {
      if (!(await registry().seen(hostname))) throw new ApiError('NotFound', `Host ${hostname} is not registered.`);
      lastSeen.set(hostname, Date.now());
    }
    const known: Known = req.known ?? {};
    const busy = new Set(req.requests ?? []);
    const deadline = Date.now() + Math.min(Math.max(req.wait ?? 0, 0), cfg.maxWatchWait) * 1000;
    for (;;) {
      const gen = signals.gen(hostname);
      const changed = new Map<ResourceKind, string[]>();
      const gone: ResourceRef[] = [];
      const requests: PendingRequest[] = [];
      for (const k of kinds.values()) {
        // the kinds the agent serves are the keys of `known` (empty at its first watch)
        const mine = known[k.kind];
        if (!mine) continue;
        const placed = await k.placed(hostname);
        const ids: string[] = [];
        for (const [id, version] of placed) if (mine[id] !== version) ids.push(id);
        if (ids.length) changed.set(k, ids);
        for (const id of Object.keys(mine)) if (!placed.has(id)) gone.push({ kind: k.kind, id });
      }
      // requests go to an agent serving their kind, whichever kind's channel carries them (compute's
      // channel carries a bare-metal server's console request for its node, kind baremetal_node)
      for (const k of kinds.values()) {
        if (!k.pendingRequests) continue;
        for (const p of await k.pendingRequests(hostname)) if (known[p.kind] && !busy.has(p.id)) requests.push(p);
      }
      // a kind no service here registered is left alone: nothing of it is "gone" because this server does not know it
      if (changed.size || gone.length || requests.length || Date.now() >= deadline || stopping) {
        const resources: Resource[] = [];
        for (const [k, ids] of changed) resources.push(...await k.desired(ids, hostname));
        return { resources, gone, requests };
      }
      await signals.wait(hostname, gen, Math.min(deadline - Date.now(), cfg.recheckMs));
    }
  }

  async function report(hostname: string, body: ReportRequest): Promise<void> {
    const byKind = new Map<ResourceKind, NonNullable<ReportRequest['resources']>>();
    for (const r of body.resources ?? []) {
      const k = kinds.get(r.kind);
      if (!k) throw new ApiError('BadRequest', `Unknown resource kind ${r.kind}.`);
      const bad = firstError(k.observed, r.observed);
      if (bad) throw new ApiError('BadRequest', `Invalid observed state of ${r.kind} ${r.id}: ${bad.message}`);
      const list = byKind.get(k) ?? [];
      list.push(r);
      byKind.set(k, list);
    }
    for (const [k, list] of byKind) await k.report(hostname, list);
    for (const q of body.requests ?? []) {
      // an answer names only its request: each kind with requests ignores ids that are not its own
      for (const k of kinds.values()) if (k.answer) await k.answer(hostname, q);
    }
  }

  const service: Service = {
    name: 'agent',
    prefix: '/agent',
    routes,
    rules: agentRules,
    renderError: (err: ApiError) => ({ error: { code: err.status, title: err.title, message: err.message } }),
    authenticators: [{
      authenticate(req) {
        if (!check) throw new ApiError('Unavailable', 'The agent API is not started.');
        const given = req.headers[AGENT_TOKEN_HEADER];
        if (!check(typeof given === 'string' ? given : undefined)) throw new ApiError('Unauthorized', 'A valid agent token is required.');
        return AGENT_CREDENTIALS;
      },
    }],
    setup(app) {
      app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));
    },
  };
  routes.push(
    route({
      method: 'PUT', path: '/v1/hosts/:hostname', rule: AGENT_RULE, schema: { body: ProtocolBody },
      handler(rc) {
        const refusal = protocolRefusal(rc.body.protocol);
        if (refusal) throw new ApiError('BadRequest', refusal);
        const bad = firstError(HostInfoBody, rc.body);
        if (bad) throw new ApiError('BadRequest', `Invalid host info: ${bad.path.join('.') || 'body'} ${bad.message}.`);
        return register(hostnameOf(rc.params), rc.body as HostInfo);
      },
    }),
    route({
      method: 'POST', path: '/v1/hosts/:hostname/watch', rule: AGENT_RULE, schema: { body: WatchBody },
      handler: (rc) => watch(hostnameOf(rc.params), rc.body),
    }),
    route({
      method: 'POST', path: '/v1/hosts/:hostname/report', rule: AGENT_RULE, schema: { body: ReportBody },
      async handler(rc) {
        await report(hostnameOf(rc.params), rc.body as ReportRequest);
        return {};
      },
    }),
  );

  routes.push(...streams.routes);

  return {
    service,
    streams,
    get agentToken() {
      return token;
    },
    get stopping() {
      return stopping;
    },
    registerKind(k) {
      if (kinds.has(k.kind)) throw new Error(`resource kind ${k.kind} is registered twice`);
      kinds.set(k.kind, k);
    },
    setHosts(h) {
      hosts = h;
    },
    addRoutes(r) {
      routes.push(...r);
    },
    onRegister(l) {
      registerListeners.push(l);
    },
    notify(host) {
      if (host) signals.bump(host);
    },
    async start() {
      stopping = false;
      token = await agentTokenFor(o.db, o.dataDir);
      check = tokenChecker(token);
    },
    async stop() {
      stopping = true;
      signals.wakeAll();
      streams.close();
    },
  };
}
