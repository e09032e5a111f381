// The agent API's route table (/agent/v1). No Keystone token here: every call
// must carry the agent token (X-Stratus-Agent-Token), which the service's
// onRequest hook compares in constant time before any route runs; the routes
// are therefore PUBLIC as far as Keystone policy goes.
import type { Readable } from 'node:stream';
import { Type } from 'typebox';
import { ApiError } from '../../common/errors.ts';
import { PUBLIC } from '../../http/policy.ts';
import type { Route } from '../../http/service.ts';
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
    {
      method: 'PUT', path: '/v1/hosts/:hostname', rule: PUBLIC, schema: { body: HostInfoBody },
      handler: (rc) => api.register(hostnameOf(rc.params), rc.body as HostInfo),
    },
    {
      method: 'POST', path: '/v1/hosts/:hostname/watch', rule: PUBLIC, schema: { body: WatchBody },
      handler: (rc) => api.watch(hostnameOf(rc.params), rc.body as WatchRequest),
    },
    {
      method: 'POST', path: '/v1/hosts/:hostname/report', rule: PUBLIC, schema: { body: ReportBody },
      async handler(rc) {
        const b = rc.body as { servers?: ServerReport[]; requests?: RequestReport[] };
        await api.report(hostnameOf(rc.params), b.servers ?? [], b.requests ?? []);
        return {};
      },
    },
    {
      method: 'GET', path: '/v1/images/:image_id', rule: PUBLIC,
      handler: async (rc) => agentImage(await api.image(rc.params.image_id!)),
    },
    {
      method: 'GET', path: '/v1/images/:image_id/file', rule: PUBLIC,
      async handler(rc) {
        const img = await api.image(rc.params.image_id!);
        if (img.status !== 'active') throw new ApiError('Conflict', `Image ${img.id} is ${img.status}, not active.`);
        rc.reply.header('content-type', 'application/octet-stream');
        if (img.size !== null) rc.reply.header('content-length', String(img.size));
        return rc.reply.send(api.openImage(img.id));
      },
    },
    {
      method: 'PUT', path: '/v1/images/:image_id/file', rule: PUBLIC, status: 204,
      async handler(rc) {
        const body = rc.body as NodeJS.ReadableStream | undefined;
        if (!body || typeof (body as { pipe?: unknown }).pipe !== 'function') throw new ApiError('BadRequest', 'Send the image data as application/octet-stream.');
        const len = rc.req.headers['content-length'];
        await api.uploadSnapshot(rc.params.image_id!, body, len ? Number(len) : undefined);
      },
    },
  ];
}
