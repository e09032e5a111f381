// The resource event stream: one small in-process bus that services publish
// their resources' changes to (a server created, its status changed, a volume
// deleted), and the public API that streams them to clients as Server-Sent
// Events, scoped by the caller's token (docs/events.md):
//
//   GET /events/v1/stream   X-Auth-Token: ...   Accept: text/event-stream
//     id: 42
//     event: resource
//     data: {"seq":42,"time":"...","type":"server","id":"...","project_id":"...","action":"updated","status":"ACTIVE",...}
//
// A project-scoped token sees its project's events; the admin role (any
// scope) and a system reader see every project's. The token is checked again
// at every keepalive (15 s): a revoked or expired token ends the stream.
// `Last-Event-ID` (or `?since=`) replays what the bus still holds after that
// sequence number. Events live in this process only: with several replicas, a
// client sees the changes made on the replica it is connected to.
import type { FastifyRequest } from 'fastify';
import { ApiError } from '../common/errors.ts';
import type { Credentials, TokenValidator } from './auth.ts';
import { isAdmin, isDomainReader, isOwner, isSystemReader } from './policy.ts';
import type { Service } from './service.ts';

export type ResourceAction = 'created' | 'updated' | 'deleted';

/** What a service publishes about one resource. */
export interface ResourceChange {
  /** The resource type: server, volume, network, subnet, port, router, floatingip, security_group, image. */
  type: string;
  id: string;
  /** The owning project; null for resources of no project (events only admins see, unless user_id or domain_id says who else). */
  project_id: string | null;
  /** The user the resource belongs to or is (an application credential's, a key pair's; a user itself): that user sees its events too. */
  user_id?: string | null;
  /** The identity domain the resource is in (a project, user, group): that domain's readers see its events too. */
  domain_id?: string | null;
  action: ResourceAction;
  /** The resource's status as its API shows it (servers: ACTIVE, BUILD...), when it has one. */
  status?: string | null;
  name?: string | null;
  /** Further state a client may want (a server's task_state, power_state). */
  detail?: Record<string, unknown>;
}

export interface ResourceEvent extends ResourceChange {
  /** Increasing within this server process; what `Last-Event-ID` names. */
  seq: number;
  time: string;
}

export type EventListener = (e: ResourceEvent) => void;

/** How many events the bus keeps for replay. */
const KEPT = 2048;

export class EventBus {
  private seq = 0;
  private readonly ring: ResourceEvent[] = [];
  private readonly listeners = new Set<EventListener>();

  /** Publishes changes; never throws (a listener's failure is its own). */
  publish(...changes: ResourceChange[]): void {
    for (const c of changes) {
      const e: ResourceEvent = { seq: ++this.seq, time: new Date().toISOString(), ...c };
      this.ring.push(e);
      if (this.ring.length > KEPT) this.ring.splice(0, this.ring.length - KEPT);
      for (const l of this.listeners) {
        try {
          l(e);
        } catch { /* a listener's own problem */ }
      }
    }
  }

  /** Calls `fn` for every event from now on (after replaying those after `since`, when given); returns the unsubscribe. */
  subscribe(fn: EventListener, since?: number): () => void {
    if (since !== undefined) for (const e of this.ring) if (e.seq > since) fn(e);
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  get lastSeq(): number {
    return this.seq;
  }
}

/**
 * Whether a caller sees an event: the admin role or a system reader sees all;
 * a project token its project's; a domain-scoped reader its domain's; any
 * token of a user that user's own (its application credentials, key pairs).
 */
export function eventVisible(cred: Credentials, e: Pick<ResourceEvent, 'project_id' | 'user_id' | 'domain_id'>): boolean {
  if (isAdmin(cred) || isSystemReader(cred)) return true;
  if (e.user_id && isOwner(cred, e.user_id)) return true;
  if (e.domain_id && isDomainReader(cred, e.domain_id)) return true;
  return cred.projectId !== null && e.project_id === cred.projectId;
}

const KEEPALIVE_MS = 15_000;

function renderEventError(err: ApiError): unknown {
  return { error: { code: err.status, title: err.code, message: err.message } };
}

function sinceOf(req: FastifyRequest): number | undefined {
  const raw = req.headers['last-event-id'] ?? (req.query as Record<string, unknown>)?.since;
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0) throw new ApiError('BadRequest', 'Last-Event-ID (or since) must be a non-negative integer.');
  return n;
}

/** The `/events` service: the version document and the stream. */
export function eventService(bus: EventBus, validate: TokenValidator, o: { keepaliveMs?: number } = {}): Service {
  const keepaliveMs = o.keepaliveMs ?? KEEPALIVE_MS;
  /** The streams open now: ended when the server closes, which would otherwise wait for their clients. */
  const open = new Set<() => void>();
  return {
    name: 'events',
    prefix: '/events',
    rules: { 'events:stream': () => true },
    renderError: renderEventError,
    setup(app) {
      app.addHook('preClose', (done) => {
        for (const end of [...open]) end();
        done();
      });
    },
    routes: [
      {
        method: 'GET', path: '/v1', rule: 'events:stream',
        handler: () => ({ version: { id: 'v1', status: 'CURRENT', last_seq: bus.lastSeq, links: [{ rel: 'stream', href: 'stream' }] } }),
      },
      {
        method: 'GET', path: '/v1/stream', rule: 'events:stream',
        handler(rc) {
          const cred = rc.cred!;
          if (rc.req.method === 'HEAD') {
            rc.reply.header('content-type', 'text/event-stream; charset=utf-8').header('cache-control', 'no-store');
            return undefined;
          }
          const since = sinceOf(rc.req);
          const q = rc.query.types;
          const types = typeof q === 'string' && q !== '' ? new Set(q.split(',').map((t) => t.trim())) : null;
          const token = String(rc.req.headers['x-auth-token']);
          const res = rc.reply.raw;
          rc.reply.hijack();
          res.writeHead(200, {
            'content-type': 'text/event-stream; charset=utf-8',
            'cache-control': 'no-store',
            'x-content-type-options': 'nosniff',
            'x-accel-buffering': 'no',
            'x-openstack-request-id': rc.req.id,
          });
          // the retry delay a browser's EventSource would use; the first line flushes the headers
          res.write(`retry: 2000\n: stream of ${cred.projectId ?? 'all projects'}\n\n`);
          const send = (e: ResourceEvent) => {
            if (types && !types.has(e.type)) return;
            if (!eventVisible(cred, e)) return;
            res.write(`id: ${e.seq}\nevent: resource\ndata: ${JSON.stringify(e)}\n\n`);
          };
          const unsubscribe = bus.subscribe(send, since);
          const close = () => {
            clearInterval(timer);
            unsubscribe();
            open.delete(end);
          };
          const end = () => {
            res.end('event: end\ndata: {"reason":"server stopping"}\n\n');
            close();
          };
          open.add(end);
          const timer = setInterval(() => {
            try {
              validate(token);
            } catch {
              // revoked or expired: the stream ends with a last event saying why
              res.end(`event: end\ndata: {"reason":"token no longer valid"}\n\n`);
              close();
              return;
            }
            res.write(': keepalive\n\n');
          }, keepaliveMs);
          timer.unref();
          res.on('close', close);
          return undefined;
        },
      },
    ],
  };
}

/** What an event says of a resource besides what happened to it: whose it is, its status and name. */
export type Described = Pick<ResourceChange, 'project_id' | 'status' | 'name' | 'user_id' | 'domain_id'>;

/** What a service's write looks like on the event stream, for `withWriteEvents`. */
export interface WriteWatch {
  /**
   * The collections (path segments) whose writes are events: their resource
   * type, the key of the resource in a create's answer (null: the body
   * itself, as Glance's) and the field of it that is its id (default `id`).
   */
  collections: Record<string, { type: string; key: string | null; id?: string }>;
  /** The resource as the event shows it, read from the service's tables; null when it is gone. */
  describe(type: string, id: string): Promise<Described | null>;
}

const WRITES = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const pendingWrites = new WeakMap<FastifyRequest, { type: string; id: string | null; collection: string; key: string | null; idField?: string; before?: Described | null; payload?: unknown }>();

/**
 * The resource a write route acts on: the last known collection in the
 * route's path and the parameter after it (an update, an action, a delete),
 * or the collection alone (a create, whose id comes from the answer).
 */
function writeTarget(req: FastifyRequest, w: WriteWatch) {
  const parts = (req.routeOptions.url ?? '').split('/');
  const params = (req.params ?? {}) as Record<string, string>;
  for (let i = parts.length - 1; i >= 0; i--) {
    const c = w.collections[parts[i]!];
    if (!c) continue;
    const next = parts[i + 1];
    const what = { type: c.type, key: c.key, idField: c.id, collection: parts[i]! };
    if (next === undefined) return req.method === 'POST' ? { ...what, id: null } : null;
    if (next.startsWith(':')) return { ...what, id: params[next.slice(1)] ?? null };
    return null;
  }
  return null;
}

/**
 * A service whose successful writes (POST, PUT, PATCH, DELETE answered 2xx)
 * on `watch`'s collections are published: the place every API client's change
 * passes. The resource is read after the answer is sent (before, for a
 * delete), so the event says what the tables hold. Changes made elsewhere
 * (an agent's report) are the service's own to publish.
 */
export function withWriteEvents(service: Service, bus: EventBus, watch: WriteWatch): Service {
  return {
    ...service,
    setup(app) {
      service.setup?.(app);
      app.addHook('preHandler', async (req) => {
        if (!WRITES.has(req.method)) return;
        const t = writeTarget(req, watch);
        if (!t) return;
        pendingWrites.set(req, { ...t, before: req.method === 'DELETE' && t.id ? await watch.describe(t.type, t.id).catch(() => null) : undefined });
      });
      app.addHook('onSend', async (req, reply, payload) => {
        const p = pendingWrites.get(req);
        if (p && p.id === null && reply.statusCode < 300 && typeof payload === 'string') p.payload = payload;
        return payload;
      });
      app.addHook('onResponse', async (req, reply) => {
        const p = pendingWrites.get(req);
        if (!p || reply.statusCode >= 300) return;
        pendingWrites.delete(req);
        void publishWrite(bus, watch, req.method, p).catch((err: Error) => req.log.warn({ err: err.message }, 'publishing a resource event failed'));
      });
    },
  };
}

async function publishWrite(bus: EventBus, watch: WriteWatch, method: string, p: NonNullable<ReturnType<typeof pendingWrites.get>>): Promise<void> {
  if (method === 'DELETE' && p.id) {
    const now = await watch.describe(p.type, p.id);
    // a delete that only marks the resource (a volume `deleting`) is an update until it is gone
    if (now) bus.publish({ type: p.type, id: p.id, action: 'updated', ...now });
    else if (p.before) bus.publish({ type: p.type, id: p.id, action: 'deleted', ...p.before, status: 'DELETED' });
    return;
  }
  const ids: string[] = [];
  if (p.id) ids.push(p.id);
  else if (typeof p.payload === 'string') {
    let body: Record<string, any>;
    try {
      body = JSON.parse(p.payload);
    } catch {
      return;
    }
    const one = p.key === null ? body : body?.[p.key];
    const idField = p.idField ?? 'id';
    if (one && typeof one[idField] === 'string') ids.push(one[idField]);
    // Neutron's bulk create: {"networks": [...]}
    const many = body?.[p.collection.replace(/-/g, '_')];
    if (Array.isArray(many)) for (const r of many) if (typeof r?.id === 'string') ids.push(r.id);
  }
  for (const id of ids) {
    const now = await watch.describe(p.type, id);
    if (now) bus.publish({ type: p.type, id, action: p.id ? 'updated' : 'created', ...now });
  }
}
