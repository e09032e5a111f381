// Admin and housekeeping routes around servers: diagnostics, the metadata
// service's password slot (os-server-password) and os-server-external-events.
import { PowerState } from '../schema.ts';
import { kindOf } from '../kinds.ts';
import { Type } from 'typebox';
import { ApiError } from '../../common/errors.ts';
import { clearServerPassword, serverPassword } from '../../metadata/service.ts';
import { route, type Route, type RouteContext } from '../../http/service.ts';
import type { ComputeContext } from './context.ts';
import { mv, validate } from './http.ts';
import { loadServer, serverTarget } from './servers-store.ts';
import { parseFlavor } from './servers-view.ts';

const POWER_NAMES: Record<number, string> = { 0: 'pending', 1: 'running', 3: 'paused', 4: 'shutdown', 6: 'crashed', 7: 'suspended' };

const EVENT_NAMES = ['network-changed', 'network-vif-plugged', 'network-vif-unplugged', 'network-vif-deleted'];
const EventsBody = Type.Object({
  events: Type.Array(Type.Object({
    name: Type.String(),
    server_uuid: Type.String({ minLength: 1 }),
    status: Type.Optional(Type.Union([Type.Literal('failed'), Type.Literal('completed'), Type.Literal('in-progress')])),
    tag: Type.Optional(Type.String({ maxLength: 255 })),
  }, { additionalProperties: false }), { minItems: 1 }),
}, { additionalProperties: false });

export function serverExtraRoutes(ctx: ComputeContext): Route[] {
  const target = (rc: RouteContext) => serverTarget(ctx, rc);
  return [
    route({
      method: 'GET', path: '/v2.1/servers/:server_id/diagnostics', rule: 'os_compute_api:os-server-diagnostics', target,
      async handler(rc) {
        const s = await loadServer(ctx, rc);
        if (!s.host) throw new ApiError('Conflict', `Instance ${s.id} is not ready: it has no host yet.`);
        const f = parseFlavor(s);
        const uptime = s.launched_at && s.power_state === PowerState.RUNNING ? Math.floor((Date.now() - Date.parse(s.launched_at)) / 1000) : null;
        // a VM on a host whose probe found KVM working runs under kvm (libvirt's virt_type), else the kind's
        const host = await ctx.db.selectFrom('compute_hosts').select('hypervisor_accel').where('hostname', '=', s.host).executeTakeFirst();
        const hypervisor = kindOf(s.kind).hypervisor === 'qemu' && host?.hypervisor_accel === 'kvm' ? 'kvm' : kindOf(s.kind).hypervisor;
        if (mv(rc).lt('2.48')) {
          return { state: POWER_NAMES[s.power_state] ?? 'pending', num_cpus: f.vcpus, memory: f.ram * 1024, uptime, driver: hypervisor };
        }
        return {
          state: POWER_NAMES[s.power_state] ?? 'pending', driver: 'libvirt', hypervisor, hypervisor_os: 'linux',
          uptime, config_drive: s.config_drive === 'True', num_cpus: f.vcpus, num_nics: 0, num_disks: kindOf(s.kind).disks,
          memory_details: { maximum: f.ram, used: null },
          cpu_details: Array.from({ length: f.vcpus }, (_, id) => ({ id, time: null, utilisation: null })),
          nic_details: [], disk_details: [],
        };
      },
    }),
    route({
      method: 'GET', path: '/v2.1/servers/:server_id/os-server-password', rule: 'os_compute_api:servers:show', target,
      async handler(rc) {
        const s = await loadServer(ctx, rc);
        // what the guest posted to the metadata service (encrypted with its key by the guest, as Nova's)
        return { password: await serverPassword(ctx.db, s.id) };
      },
    }),
    route({
      method: 'DELETE', path: '/v2.1/servers/:server_id/os-server-password', rule: 'os_compute_api:servers:update', target, status: 204,
      async handler(rc) {
        const s = await loadServer(ctx, rc);
        await clearServerPassword(ctx.db, s.id);
      },
    }),
    route({
      method: 'POST', path: '/v2.1/os-server-external-events', rule: 'os_compute_api:os-server-external-events',
      async handler(rc) {
        const v = mv(rc);
        const body = validate(EventsBody, rc.body);
        const names = [...EVENT_NAMES, ...(v.ge('2.51') ? ['volume-extended'] : []), ...(v.ge('2.76') ? ['power-update'] : []),
          ...(v.ge('2.82') ? ['accelerator-request-bound'] : []), ...(v.ge('2.93') ? ['volume-reimaged'] : [])];
        for (const e of body.events) {
          if (!names.includes(e.name!)) throw new ApiError('BadRequest', `Invalid input for field/attribute name. Value: ${e.name}. '${e.name}' is not one of ${JSON.stringify(names)}`);
        }
        let code = 200;
        const out = [];
        for (const e of body.events) {
          const ev: Record<string, unknown> = { ...e, status: e.status ?? 'completed' };
          const s = await ctx.db.selectFrom('compute_servers').select(['id', 'host']).where('id', '=', e.server_uuid!).where('deleted_at', 'is', null).executeTakeFirst();
          if (!s) {
            Object.assign(ev, { status: 'failed', code: 404 });
            code = 207;
          } else if (e.name === 'power-update' && !e.tag) {
            Object.assign(ev, { status: 'failed', code: 400 });
            code = 207;
          } else if (!s.host) {
            Object.assign(ev, { status: 'failed', code: 422 });
            code = 207;
          } else {
            Object.assign(ev, { status: 'completed', code: 200 });
            ctx.engine.notify(s.host);
          }
          out.push(ev);
        }
        rc.reply.code(code);
        return { events: out };
      },
    }),
  ];
}
