// Cinder's services as this cloud has them (admins): `/os-services` lists
// the scheduler (this API process: it places volumes, kinds.ts) and one
// `cinder-volume` per volume host and backend (`host@backend`, from the pools
// the hosts' agents report; `down` when not heard of for two minutes), and
// `/os-hosts` the same hosts with, per host, the volumes and snapshots it
// holds per project. Enabling, disabling, freezing and thawing a service are
// not served: unknown hosts and binaries get Cinder's errors, known ones a
// 400 saying so.
import { hostname as osHostname } from 'node:os';
import type { Kysely } from 'kysely';
import { ApiError } from '../common/errors.ts';
import { objectOf } from '../http/body.ts';
import { route, type Route, type RouteContext } from '../http/service.ts';
import type { VolumeContext } from './context.ts';
import { badRequest } from './errors.ts';
import { mv } from './http.ts';
import { one } from './list.ts';
import { parseVolumeHost, splitVolumeHost, type VolumePoolStats } from './protocol.ts';
import type { VolumeTables } from './schema.ts';
import { cinderTime } from './view.ts';

export interface VolumeHostState { hostname: string; at: number; up: boolean; pools: VolumePoolStats[] }

interface Svc { binary: 'cinder-scheduler' | 'cinder-volume'; host: string; up: boolean; at: number }

const SCHEDULER_HOST = osHostname();

/** The services: the scheduler, then one cinder-volume per host@backend heard of. */
function servicesOf(hosts: VolumeHostState[]): Svc[] {
  const out: Svc[] = [{ binary: 'cinder-scheduler', host: SCHEDULER_HOST, up: true, at: Date.now() }];
  for (const h of [...hosts].sort((a, b) => a.hostname.localeCompare(b.hostname))) {
    const backends = new Set(h.pools.map((p) => parseVolumeHost(p.name)?.backend).filter((b): b is string => !!b));
    for (const b of [...backends].sort()) out.push({ binary: 'cinder-volume', host: `${h.hostname}@${b}`, up: h.up, at: h.at });
  }
  return out;
}

/** The host part of `host@backend#pool` (or of `host@backend`, `host`). */
const hostPart = (h: string): string => splitVolumeHost(h)?.host ?? h;

export function serviceRoutes(ctx: VolumeContext, hosts: () => VolumeHostState[]): Route[] {
  const db: Kysely<VolumeTables> = ctx.vdb;
  const zone = ctx.config.availabilityZone;

  function serviceView(rc: RouteContext, s: Svc): Record<string, unknown> {
    const v = mv(rc);
    const out: Record<string, unknown> = {
      binary: s.binary, host: s.host, zone, status: 'enabled', state: s.up ? 'up' : 'down',
      updated_at: cinderTime(new Date(s.at).toISOString()), disabled_reason: null,
    };
    if (s.binary === 'cinder-volume') Object.assign(out, { frozen: false, replication_status: 'disabled', active_backend_id: null });
    if (v.ge('3.7')) out.cluster = null;
    if (v.ge('3.49') && s.binary === 'cinder-volume') out.backend_state = s.up ? 'up' : 'down';
    return out;
  }

  /** The body's host (and binary) named by enable/disable, checked as Cinder does, then refused: not served. */
  function update(rc: RouteContext, action: string): never {
    const body = objectOf(rc.body) ?? {};
    if (action === 'disable-log-reason') {
      const reason = body.disabled_reason;
      if (typeof reason !== 'string' || reason.trim() === '' || reason.length > 255) throw badRequest('Disabled reason contains invalid characters or is too long');
    }
    const host = body.host;
    if (typeof host !== 'string' || host === '') throw badRequest('Missing required element \'host\' in request body.');
    const svcs = servicesOf(hosts());
    if (action === 'freeze' || action === 'thaw') {
      if (!svcs.some((s) => s.binary === 'cinder-volume' && (s.host === host || hostPart(s.host) === host))) throw badRequest(`Invalid input received: Host ${host} is not a volume service host.`);
      throw badRequest(`The os-services action ${action} is not supported by this cloud yet.`);
    }
    const binary = body.binary ?? body.service;
    if (!svcs.some((s) => s.host === host && (binary === undefined || s.binary === binary))) throw new ApiError('NotFound', 'Unknown service');
    throw badRequest(`The os-services action ${action} is not supported by this cloud yet.`);
  }

  return [
    route({
      method: 'GET', path: '/os-services', rule: 'volume_extension:services:index',
      handler(rc) {
        const host = one(rc.query.host), binary = one(rc.query.binary);
        const svcs = servicesOf(hosts()).filter((s) => (host === undefined || hostPart(s.host) === hostPart(host)) && (binary === undefined || s.binary === binary));
        return { services: svcs.map((s) => serviceView(rc, s)) };
      },
    }),
    ...['enable', 'disable', 'disable-log-reason', 'freeze', 'thaw'].map((action) => route({
      method: 'PUT', path: `/os-services/${action}`, rule: 'volume_extension:services:update',
      handler: (rc) => update(rc, action),
    })),
    route({
      method: 'GET', path: '/os-hosts', rule: 'volume_extension:hosts',
      handler: () => ({
        hosts: servicesOf(hosts()).map((s) => ({
          host_name: s.host, service: s.binary, zone, 'service-status': s.up ? 'available' : 'unavailable', 'service-state': 'enabled',
          'last-update': cinderTime(new Date(s.at).toISOString()),
        })),
      }),
    }),
    route({
      method: 'GET', path: '/os-hosts/:host', rule: 'volume_extension:hosts',
      async handler(rc) {
        const host = rc.params.host!;
        const svc = servicesOf(hosts()).find((s) => s.binary === 'cinder-volume' && s.host === host);
        if (!svc) throw new ApiError('NotFound', `Host ${host} could not be found.`);
        const like = `${host}#%`;
        const vols = await db.selectFrom('volume_volumes').select(['id', 'project_id', 'size']).where('host', 'like', like).execute();
        const snaps = await db.selectFrom('volume_snapshots').innerJoin('volume_volumes', 'volume_volumes.id', 'volume_snapshots.volume_id')
          .select(['volume_snapshots.project_id as project_id', 'volume_snapshots.size as size']).where('volume_volumes.host', 'like', like).execute();
        const per = new Map<string, { vc: number; vg: number; sc: number; sg: number }>();
        const at = (p: string) => per.get(p) ?? per.set(p, { vc: 0, vg: 0, sc: 0, sg: 0 }).get(p)!;
        for (const v of vols) { const x = at(v.project_id); x.vc++; x.vg += v.size; }
        for (const s of snaps) { const x = at(s.project_id); x.sc++; x.sg += s.size; }
        const resource = (project: string, x: { vc: number; vg: number; sc: number; sg: number }) => ({
          resource: { host, project, volume_count: String(x.vc), total_volume_gb: String(x.vg), snapshot_count: String(x.sc), total_snapshot_gb: String(x.sg) },
        });
        const total = [...per.values()].reduce((a, x) => ({ vc: a.vc + x.vc, vg: a.vg + x.vg, sc: a.sc + x.sc, sg: a.sg + x.sg }), { vc: 0, vg: 0, sc: 0, sg: 0 });
        return { host: [resource('(total)', total), ...[...per].sort(([a], [b]) => a.localeCompare(b)).map(([p, x]) => resource(p, x))] };
      },
    }),
  ];
}
