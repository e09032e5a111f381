// The agent API's route table (/agent/v1). No Keystone token here: the
// service's one authenticator takes the agent token (X-Stratus-Agent-Token),
// compared in constant time, and names the caller the agent; every route's
// rule asks for that caller.
import type { Readable } from 'node:stream';
import { Type } from 'typebox';
import { ApiError } from '../../common/errors.ts';
import type { Credentials } from '../../http/auth.ts';
import type { Rule } from '../../http/policy.ts';
import { route, type Route } from '../../http/service.ts';
import { agentImage } from './desired.ts';
import type { HostInfo, HostRegistration, RequestReport, ServerReport, WatchRequest, WatchResponse } from './protocol.ts';

export interface AgentApi {
  checkToken(given: string | undefined): void;
  register(hostname: string, info: HostInfo): Promise<HostRegistration>;
  watch(hostname: string, req: WatchRequest): Promise<WatchResponse>;
  report(hostname: string, servers: ServerReport[], requests: RequestReport[]): Promise<void>;
  image(id: string): Promise<{ id: string; name: string | null; status: string; container_format: string | null; disk_format: string | null; size: number | null; checksum: string | null }>;
  openImage(id: string): Readable;
  uploadSnapshot(imageId: string, body: NodeJS.ReadableStream, size?: number): Promise<void>;
}

const AGENT_ROLE = 'stratus:agent';
/** The caller of every agent API call that presents the agent token. */
export const AGENT_CREDENTIALS: Credentials = Object.freeze({
  userId: 'stratus-agent', userName: 'stratus-agent', userDomainId: '', projectId: null, projectDomainId: null, domainId: null,
  system: false, roles: new Set([AGENT_ROLE]), roleIds: [], token: null,
});
const AGENT = 'agent';
export const agentRules: Record<string, Rule> = { [AGENT]: (c) => c.roles.has(AGENT_ROLE) && c.userId === AGENT_CREDENTIALS.userId };

const HOSTNAME = '^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$';
const hostnameOf = (p: Record<string, string>) => {
  const h = p.hostname ?? '';
  if (!new RegExp(HOSTNAME).test(h)) throw new ApiError('BadRequest', 'Invalid host name.');
  return h;
};

/** The largest overcommit ratios a host may report (the CLI's flags take the same bounds). */
export const MAX_ALLOCATION_RATIO = { cpu: 10000, ram: 1000, disk: 1000 } as const;

const HostInfoBody = Type.Object({
  kinds: Type.Array(Type.String({ pattern: '^[a-z][a-z0-9_-]{0,31}$' }), { minItems: 1, maxItems: 8 }),
  vcpus: Type.Integer({ minimum: 0 }),
  memory_mb: Type.Integer({ minimum: 0 }),
  disk_gb: Type.Integer({ minimum: 0 }),
  host_ip: Type.Optional(Type.String({ maxLength: 64 })),
  version: Type.String({ maxLength: 64 }),
  availability_zone: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
  cpu_allocation_ratio: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: MAX_ALLOCATION_RATIO.cpu })),
  ram_allocation_ratio: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: MAX_ALLOCATION_RATIO.ram })),
  disk_allocation_ratio: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: MAX_ALLOCATION_RATIO.disk })),
}, { additionalProperties: true });

const WatchBody = Type.Object({
  known: Type.Record(Type.String(), Type.Integer()),
  requests: Type.Optional(Type.Array(Type.String())),
  wait: Type.Optional(Type.Number({ minimum: 0 })),
}, { additionalProperties: false });

const ReportBody = Type.Object({
  servers: Type.Optional(Type.Array(Type.Object({
    id: Type.String({ maxLength: 64 }),
    version: Type.Integer(),
    power_state: Type.Integer({ minimum: 0, maximum: 7 }),
    state: Type.Union(['active', 'stopped', 'paused', 'suspended', 'deleted', 'build_failed', 'error'].map((s) => Type.Literal(s))),
    message: Type.Optional(Type.String({ maxLength: 4000 })),
  }, { additionalProperties: false }))),
  requests: Type.Optional(Type.Array(Type.Object({
    id: Type.String({ maxLength: 64 }),
    ok: Type.Boolean(),
    result: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    message: Type.Optional(Type.String({ maxLength: 4000 })),
  }, { additionalProperties: false }))),
}, { additionalProperties: false });

export function agentRoutes(api: AgentApi): Route[] {
  return [
    route({
      method: 'PUT', path: '/v1/hosts/:hostname', rule: AGENT, schema: { body: HostInfoBody },
      handler: (rc) => api.register(hostnameOf(rc.params), rc.body),
    }),
    route({
      method: 'POST', path: '/v1/hosts/:hostname/watch', rule: AGENT, schema: { body: WatchBody },
      handler: (rc) => api.watch(hostnameOf(rc.params), rc.body),
    }),
    route({
      method: 'POST', path: '/v1/hosts/:hostname/report', rule: AGENT, schema: { body: ReportBody },
      async handler(rc) {
        await api.report(hostnameOf(rc.params), rc.body.servers ?? [], rc.body.requests ?? []);
        return {};
      },
    }),
    {
      method: 'GET', path: '/v1/images/:image_id', rule: AGENT,
      handler: async (rc) => agentImage(await api.image(rc.params.image_id!)),
    },
    {
      method: 'GET', path: '/v1/images/:image_id/file', rule: AGENT,
      async handler(rc) {
        const img = await api.image(rc.params.image_id!);
        if (img.status !== 'active') throw new ApiError('Conflict', `Image ${img.id} is ${img.status}, not active.`);
        rc.reply.header('content-type', 'application/octet-stream');
        if (img.size !== null) rc.reply.header('content-length', String(img.size));
        return rc.reply.send(api.openImage(img.id));
      },
    },
    {
      method: 'PUT', path: '/v1/images/:image_id/file', rule: AGENT, status: 204,
      async handler(rc) {
        const body = rc.body as NodeJS.ReadableStream | undefined;
        if (!body || typeof (body as { pipe?: unknown }).pipe !== 'function') throw new ApiError('BadRequest', 'Send the image data as application/octet-stream.');
        const len = rc.req.headers['content-length'];
        await api.uploadSnapshot(rc.params.image_id!, body, len ? Number(len) : undefined);
      },
    },
  ];
}
