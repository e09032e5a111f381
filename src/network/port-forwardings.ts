// Port forwardings of a floating IP (Neutron's floating-ip-port-forwarding):
// a protocol and external port of the floating address sent to a fixed
// address and port of a port behind the same router. A floating IP either
// maps a whole fixed address (port_id) or has port forwardings, never both;
// the database keeps an external port once per floating IP and protocol, and
// an internal address and port once per protocol.
import { Type } from 'typebox';
import type { Kysely } from 'kysely';
import { uuid } from '../common/ids.ts';
import { route, type Route, type RouteContext } from '../http/service.ts';
import { conflictOnDuplicate } from '../db/unique.ts';
import type { NetworkContext } from './context.ts';
import { badResource, conflict, NeutronError } from './errors.ts';
import type { FloatingIpRow } from './floating-ips.ts';
import { internalTarget } from './floating-ips.ts';
import { listAnswer, selectFields, type View } from './list.ts';
import type { PortRow } from './ports.ts';
import type { Resources } from './resource.ts';
import type { NetworkTables } from './schema.ts';

type Row = NetworkTables['network_port_forwardings'];

const PortNum = Type.Integer({ minimum: 1, maximum: 65535 });
const Protocol = Type.Union([Type.Literal('tcp'), Type.Literal('udp')]);
const Fields = {
  external_port: Type.Optional(PortNum), internal_port: Type.Optional(PortNum), internal_ip_address: Type.Optional(Type.String()),
  internal_port_id: Type.Optional(Type.String()), protocol: Type.Optional(Protocol), description: Type.Optional(Type.String({ maxLength: 255 })),
};
const CreateBody = Type.Object({ port_forwarding: Type.Object({
  ...Fields, external_port: PortNum, internal_port: PortNum, internal_ip_address: Type.String(), internal_port_id: Type.String(), protocol: Protocol,
}, { additionalProperties: false }) }, { additionalProperties: false });
const UpdateBody = Type.Object({ port_forwarding: Type.Object(Fields, { additionalProperties: false }) }, { additionalProperties: false });

const pfNotFound = (id: string) => new NeutronError('NotFound', 'PortForwardingNotFound', `Port Forwarding ${id} could not be found.`);
const view = (r: Row): View => ({
  id: r.id, external_port: r.external_port, internal_port: r.internal_port, internal_ip_address: r.internal_ip_address,
  internal_port_id: r.internal_port_id, protocol: r.protocol, description: r.description,
});
const duplicate = () => conflict('NeutronDbObjectDuplicateEntry', 'A duplicate port forwarding entry with same attributes already exists.');

export function portForwardingRoutes(ctx: NetworkContext, fips: Resources<FloatingIpRow>, ports: Resources<PortRow>): Route[] {
  const db = ctx.db as unknown as Kysely<any>;
  const base = '/v2.0/floatingips/:fid/port_forwardings';
  const spec = { collection: 'port_forwardings', attrs: { external_port: 'int', internal_port: 'int', internal_ip_address: 'string', internal_port_id: 'string', protocol: 'string', description: 'string', id: 'string' } as const, notFound: pfNotFound };
  const rowsOf = async (fipId: string) => await db.selectFrom('network_port_forwardings').selectAll().where('floatingip_id', '=', fipId).orderBy('id').execute() as Row[];
  const one = async (rc: RouteContext, tx: Kysely<any> = db): Promise<Row> => {
    const r = await tx.selectFrom('network_port_forwardings').selectAll().where('id', '=', rc.params.id!).where('floatingip_id', '=', rc.params.fid!).executeTakeFirst() as Row | undefined;
    if (!r) throw pfNotFound(rc.params.id!);
    return r;
  };

  /** The internal side, checked: the port visible, its address its own and behind a router to the floating IP's network. */
  async function target(tx: Kysely<any>, rc: RouteContext, fip: FloatingIpRow, portId: string, ip: string): Promise<string> {
    const port = await ports.find(rc.cred!, portId, tx);
    const t = await internalTarget(tx, fip.floating_network_id, port, ip);
    if (fip.router_id && fip.router_id !== t.routerId) throw badResource('port_forwarding', `The internal port ${portId} is not behind router ${fip.router_id}`);
    const bound = await tx.selectFrom('network_floatingips').select('floating_ip_address').where('port_id', '=', portId).where('fixed_ip_address', '=', ip).executeTakeFirst();
    if (bound) {
      throw conflict('PortHasBindingFloatingIP',
        `Cannot create port forwarding to floating IP ${fip.floating_ip_address} (${fip.id}) with port ${portId} using fixed IP ${ip}, as that port already has a binding floating IP.`);
    }
    return t.routerId;
  }

  /** The floating IP, locked by a revision bump; one with a port association refuses port forwardings. */
  async function lockFip(tx: Kysely<any>, rc: RouteContext): Promise<FloatingIpRow> {
    const fip = await fips.findOwn(rc.cred!, rc.params.fid!, 'update_floatingip', tx);
    await tx.updateTable('network_floatingips').set((eb: any) => ({ revision_number: eb('revision_number', '+', 1) })).where('id', '=', fip.id).execute();
    return fip;
  }

  return [
    route({
      method: 'GET', path: base, rule: 'get_floatingip_port_forwarding',
      async handler(rc) {
        await fips.find(rc.cred!, rc.params.fid!);
        return listAnswer(rc, spec, (await rowsOf(rc.params.fid!)).map(view));
      },
    }),
    route({
      method: 'GET', path: `${base}/:id`, rule: 'get_floatingip_port_forwarding',
      async handler(rc) {
        await fips.find(rc.cred!, rc.params.fid!);
        return { port_forwarding: selectFields(rc.query, view(await one(rc))) };
      },
    }),
    route({
      method: 'POST', path: base, rule: 'create_floatingip_port_forwarding', schema: { body: CreateBody }, status: 201,
      async handler(rc) {
        const b = rc.body.port_forwarding;
        const id = uuid();
        await conflictOnDuplicate(db.transaction().execute(async (tx) => {
          const fip = await lockFip(tx, rc);
          if (fip.port_id) throw conflict('FipInUseByPortAssociation', `Floating IP ${fip.id} is associated with port ${fip.port_id} and cannot have port forwardings.`);
          const routerId = await target(tx, rc, fip, b.internal_port_id, b.internal_ip_address);
          await tx.insertInto('network_port_forwardings').values({
            id, floatingip_id: fip.id, protocol: b.protocol, external_port: b.external_port, internal_port_id: b.internal_port_id,
            internal_ip_address: b.internal_ip_address, internal_port: b.internal_port, description: b.description ?? '',
          }).execute();
          if (fip.router_id !== routerId) await tx.updateTable('network_floatingips').set({ router_id: routerId, status: 'DOWN' }).where('id', '=', fip.id).execute();
        }), duplicate);
        return { port_forwarding: view(await one({ ...rc, params: { ...rc.params, id } } as RouteContext)) };
      },
    }),
    route({
      method: 'PUT', path: `${base}/:id`, rule: 'update_floatingip_port_forwarding', schema: { body: UpdateBody },
      async handler(rc) {
        const b = rc.body.port_forwarding;
        await conflictOnDuplicate(db.transaction().execute(async (tx) => {
          const fip = await lockFip(tx, rc);
          const r = await one(rc, tx);
          const next = { ...r, ...Object.fromEntries(Object.entries(b).filter(([, v]) => v !== undefined)) } as Row;
          if (next.internal_port_id !== r.internal_port_id || next.internal_ip_address !== r.internal_ip_address) {
            await target(tx, rc, fip, next.internal_port_id, next.internal_ip_address);
          }
          await tx.updateTable('network_port_forwardings').set(next).where('id', '=', r.id).execute();
        }), duplicate);
        return { port_forwarding: view(await one(rc)) };
      },
    }),
    route({
      method: 'DELETE', path: `${base}/:id`, rule: 'delete_floatingip_port_forwarding', status: 204,
      async handler(rc) {
        await db.transaction().execute(async (tx) => {
          const fip = await lockFip(tx, rc);
          const r = await one(rc, tx);
          await tx.deleteFrom('network_port_forwardings').where('id', '=', r.id).execute();
          if (!(await tx.selectFrom('network_port_forwardings').select('id').where('floatingip_id', '=', fip.id).executeTakeFirst()) && !fip.port_id) {
            await tx.updateTable('network_floatingips').set({ router_id: null, status: 'DOWN' }).where('id', '=', fip.id).execute();
          }
        });
      },
    }),
  ];
}


