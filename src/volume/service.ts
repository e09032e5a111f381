// The block-storage service (Cinder v3) under /volume: its route table (each
// route served under both `/v3/{project_id}/...` and the project-less
// `/v3/...`), policy, Cinder's fault envelope and microversions. API and
// database here; the volume hosts' agents make volumes and snapshots real
// through the fleet (kinds.ts: placement and reports; lifecycle.ts: the
// status machine).
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Db } from '../db/database.ts';
import type { ResourceKind } from '../fleet/kinds.ts';
import type { HostInfo } from '../fleet/protocol.ts';
import { PUBLIC } from '../http/policy.ts';
import { volumeKinds } from './kinds.ts';
import { route, type Route, type Service } from '../http/service.ts';
import { DEFAULT_VOLUME_CONFIG, type VolumeConfig, type VolumeContext } from './context.ts';
import { renderCinderError } from './errors.ts';
import { extensionRoutes } from './extensions.ts';
import { gate, setup, versionEntry } from './http.ts';
import { volumeRules } from './policy.ts';
import { messageRoutes } from './messages.ts';
import { poolRoutes } from './pools.ts';
import { serviceRoutes, type VolumeHostState } from './services.ts';
import type { VolumePoolStats } from './protocol.ts';
import { qosRoutes } from './qos.ts';
import { quotaRoutes } from './quotas.ts';
import type { VolumeTables } from './schema.ts';
import { ensureDefaultType, typeRoutes } from './types.ts';
import { baseUrl } from './view.ts';
import { snapshotRoutes } from './snapshots.ts';
import { transferRoutes } from './transfers.ts';
import { volumeRoutes } from './volumes.ts';

export type { VolumeConfig } from './context.ts';

/** Each API route under `/v3/{project_id}` and under the project-less `/v3` (Cinder accepts both; 3.67 announces the latter). */
const bothForms = (routes: Route[]): Route[] =>
  routes.flatMap((r) => [{ ...r, path: `/v3/:project_id${r.path}` }, { ...r, path: `/v3${r.path}` }]);

export interface VolumeService {
  service: Service;
  /** Makes what must exist before the first request (the default volume type). */
  start(): Promise<void>;
}

export function createVolumeService(o: {
  db: Db; log: Logger; config?: Partial<VolumeConfig>;
  /** Where the volume kinds go (the volume hosts' agents make them real) and where hosts' registrations are heard (their pools). */
  fleet?: { registerKind(kind: ResourceKind): void; onRegister(listener: (hostname: string, info: HostInfo) => void): void };
}): VolumeService {
  const ctx: VolumeContext = {
    db: o.db, vdb: o.db as unknown as Kysely<VolumeTables>, log: o.log, config: { ...DEFAULT_VOLUME_CONFIG, ...o.config },
  };
  let pools: () => VolumePoolStats[] = () => [];
  let hosts: () => VolumeHostState[] = () => [];
  if (o.fleet) {
    const vk = volumeKinds({ vdb: ctx.vdb, log: o.log });
    for (const k of vk.kinds) o.fleet.registerKind(k);
    o.fleet.onRegister((h, info) => vk.heard(h, info));
    pools = () => vk.pools();
    hosts = () => vk.hosts();
  }
  const routes: Route[] = [
    route({
      method: 'GET', path: '/', rule: PUBLIC,
      handler: (rc) => {
        rc.reply.code(300);
        return { versions: [versionEntry(baseUrl(rc.req))] };
      },
    }),
    // `/v3/` too (the server ignores a trailing slash)
    route({ method: 'GET', path: '/v3', rule: PUBLIC, handler: (rc) => ({ versions: [versionEntry(baseUrl(rc.req))] }) }),
    ...bothForms([...volumeRoutes(ctx), ...snapshotRoutes(ctx), ...transferRoutes(ctx), ...typeRoutes(ctx), ...qosRoutes(ctx), ...quotaRoutes(ctx), ...messageRoutes(ctx), ...poolRoutes(() => pools()), ...serviceRoutes(ctx, () => hosts()), ...extensionRoutes()]),
  ];
  return {
    service: { name: 'volume', prefix: '/volume', routes, rules: volumeRules, renderError: renderCinderError, gate, setup },
    start: () => ensureDefaultType(ctx),
  };
}
