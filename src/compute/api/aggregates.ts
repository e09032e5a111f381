// /os-aggregates: host aggregates and their metadata. An aggregate with an
// `availability_zone` key puts its hosts in that zone: the zone is written to
// compute_hosts.availability_zone, which the scheduler and os-availability-zone
// read.
import type { Transaction } from 'kysely';
import { Type } from 'typebox';
import { badRequest, conflict, notFound } from '../../common/errors.ts';
import { nowIso, uuid } from '../../common/ids.ts';
import type { Db } from '../../db/database.ts';
import type { Tables } from '../../db/tables.ts';
import { route, type Route, type RouteContext } from '../../http/service.ts';
import type { ComputeContext } from './context.ts';
import { actionOf, keyedBy, checkName, mv, naiveTime, validate } from './http.ts';
import { conflictOnDuplicate } from '../../db/unique.ts';

type Executor = Db | Transaction<Tables>;
type AggregateRow = { id: number; uuid: string; name: string; created_at: string; updated_at: string | null };

const Create = Type.Object({
  aggregate: Type.Object({
    name: Type.String(),
    availability_zone: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 255 }), Type.Null()])),
  }, { additionalProperties: false }),
}, { additionalProperties: false });
const Update = Type.Object({
  aggregate: Type.Object({
    name: Type.Optional(Type.String()),
    availability_zone: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 255 }), Type.Null()])),
  }, { additionalProperties: false, minProperties: 1 }),
}, { additionalProperties: false });
const HostArg = Type.Object({ host: Type.String({ minLength: 1, maxLength: 255 }) }, { additionalProperties: false });
const MetaArg = Type.Object({
  metadata: keyedBy('^[a-zA-Z0-9-_:. ]{1,255}$', Type.Union([Type.String({ maxLength: 255 }), Type.Null()])),
}, { additionalProperties: false });

async function metadataOf(db: Executor, id: number): Promise<Record<string, string>> {
  const rows = await db.selectFrom('compute_aggregate_metadata').select(['key', 'value']).where('aggregate_id', '=', id).orderBy('key').execute();
  return Object.fromEntries(rows.map((r) => [r.key, r.value]));
}
async function hostsOf(db: Executor, id: number): Promise<string[]> {
  return (await db.selectFrom('compute_aggregate_hosts').select('hostname').where('aggregate_id', '=', id).orderBy('hostname').execute()).map((r) => r.hostname);
}

/** Recomputes the zone of hosts from the aggregates they are in (the default zone when none names one). */
async function refreshZones(ctx: ComputeContext, tx: Executor, hostnames: string[]): Promise<void> {
  for (const host of hostnames) {
    const z = await tx.selectFrom('compute_aggregate_hosts as h').innerJoin('compute_aggregate_metadata as m', 'm.aggregate_id', 'h.aggregate_id')
      .select('m.value').where('h.hostname', '=', host).where('m.key', '=', 'availability_zone').executeTakeFirst();
    await tx.updateTable('compute_hosts').set({ availability_zone: z?.value ?? ctx.config.defaultAvailabilityZone }).where('hostname', '=', host).execute();
  }
}

/** Nova's is_safe_to_update_az: the hosts may not sit in another aggregate with another zone. */
async function checkZone(tx: Executor, agg: AggregateRow, zone: string | null | undefined, hosts: string[], action: string): Promise<void> {
  if (zone === undefined || zone === null) return;
  const fail = (reason: string) => {
    const msg = action === 'add'
      ? `Cannot add host to aggregate ${agg.id}. Reason: ${reason}.`
      : `Cannot update aggregate ${agg.id}. Reason: ${reason}.`;
    return action === 'add' ? conflict(msg) : badRequest(msg);
  };
  if (zone === '') throw fail(`Aggregate ${agg.name} does not support empty named availability zone`);
  if (!hosts.length) return;
  const others = await tx.selectFrom('compute_aggregate_hosts as h').innerJoin('compute_aggregate_metadata as m', 'm.aggregate_id', 'h.aggregate_id')
    .select(['m.value', 'h.aggregate_id']).where('h.hostname', 'in', hosts).where('m.key', '=', 'availability_zone').execute();
  const conflicting = [...new Set(others.filter((o) => o.aggregate_id !== agg.id && o.value !== zone).map((o) => o.value))];
  if (conflicting.length) throw fail(`One or more hosts already in availability zone(s) ${JSON.stringify(conflicting)}`);
}

export function aggregateRoutes(ctx: ComputeContext): Route[] {
  const db = ctx.db;
  const rule = 'os_compute_api:os-aggregates';
  const view = async (rc: RouteContext, a: AggregateRow, full = true) => {
    const md = await metadataOf(db, a.id);
    const out: Record<string, unknown> = {
      id: a.id, name: a.name, availability_zone: md.availability_zone ?? null, created_at: naiveTime(a.created_at),
      updated_at: naiveTime(a.updated_at), deleted_at: null, deleted: false,
    };
    if (full) {
      out.hosts = await hostsOf(db, a.id);
      out.metadata = md;
    }
    if (mv(rc).ge('2.41')) out.uuid = a.uuid;
    return out;
  };
  const load = async (rc: RouteContext): Promise<AggregateRow> => {
    const raw = rc.params.aggregate_id!;
    if (!/^-?\d+$/.test(raw)) throw badRequest(`id must be an integer, not ${raw}`);
    const a = await db.selectFrom('compute_aggregates').selectAll().where('id', '=', Number(raw)).executeTakeFirst();
    if (!a) throw notFound(`Aggregate ${raw} could not be found.`);
    return { ...a, id: Number(a.id) };
  };
  const nameTaken = (name: string) => conflict(`Aggregate ${name} already exists.`);
  return [
    route({
      method: 'GET', path: '/v2.1/os-aggregates', rule,
      async handler(rc) {
        const rows = await db.selectFrom('compute_aggregates').selectAll().orderBy('id').execute();
        const out = [];
        for (const a of rows) out.push(await view(rc, { ...a, id: Number(a.id) }));
        return { aggregates: out };
      },
    }),
    route({
      method: 'POST', path: '/v2.1/os-aggregates', rule,
      async handler(rc) {
        const body = validate(Create, rc.body).aggregate;
        const name = checkName('name', body.name).trim();
        const zone = body.availability_zone ? checkName('availability_zone', body.availability_zone).trim() : null;
        if (zone && zone.includes(':')) throw badRequest(`Invalid input for field/attribute availability_zone. Value: ${zone}. It may not contain ':'`);
        const row = await conflictOnDuplicate(db.transaction().execute(async (tx) => {
          const now = nowIso();
          const r = await tx.insertInto('compute_aggregates').values({ uuid: uuid(), name, created_at: now, updated_at: null }).returning(['id']).executeTakeFirstOrThrow();
          const id = Number(r.id);
          if (zone) await tx.insertInto('compute_aggregate_metadata').values({ aggregate_id: id, key: 'availability_zone', value: zone }).execute();
          return (await tx.selectFrom('compute_aggregates').selectAll().where('id', '=', id).executeTakeFirstOrThrow()) as AggregateRow;
        }), () => nameTaken(name));
        return { aggregate: await view(rc, { ...row, id: Number(row.id) }, false) };
      },
    }),
    route({
      method: 'GET', path: '/v2.1/os-aggregates/:aggregate_id', rule,
      handler: async (rc) => ({ aggregate: await view(rc, await load(rc)) }),
    }),
    route({
      method: 'PUT', path: '/v2.1/os-aggregates/:aggregate_id', rule,
      async handler(rc) {
        const body = validate(Update, rc.body).aggregate;
        const a = await load(rc);
        const name = body.name !== undefined ? checkName('name', body.name).trim() : undefined;
        await conflictOnDuplicate(db.transaction().execute(async (tx) => {
          const hosts = await hostsOf(tx, a.id);
          await checkZone(tx, a, body.availability_zone, hosts, 'update');
          const set: Record<string, unknown> = { updated_at: nowIso() };
          if (name !== undefined) set.name = name;
          await tx.updateTable('compute_aggregates').set(set).where('id', '=', a.id).execute();
          if (body.availability_zone !== undefined) {
            await tx.deleteFrom('compute_aggregate_metadata').where('aggregate_id', '=', a.id).where('key', '=', 'availability_zone').execute();
            if (body.availability_zone) await tx.insertInto('compute_aggregate_metadata').values({ aggregate_id: a.id, key: 'availability_zone', value: body.availability_zone }).execute();
            await refreshZones(ctx, tx, hosts);
          }
        }), () => nameTaken(name ?? a.name));
        ctx.engine.kick();
        return { aggregate: await view(rc, await load(rc)) };
      },
    }),
    route({
      method: 'DELETE', path: '/v2.1/os-aggregates/:aggregate_id', rule,
      async handler(rc) {
        const a = await load(rc);
        if ((await hostsOf(db, a.id)).length) throw badRequest(`Cannot remove aggregate ${a.id}. Reason: Host aggregate is not empty.`);
        await db.transaction().execute(async (tx) => {
          await tx.deleteFrom('compute_aggregate_metadata').where('aggregate_id', '=', a.id).execute();
          await tx.deleteFrom('compute_aggregates').where('id', '=', a.id).execute();
        });
      },
    }),
    route({
      method: 'POST', path: '/v2.1/os-aggregates/:aggregate_id/action', rule,
      async handler(rc) {
        const [action, arg] = actionOf(rc.body);
        const a = await load(rc);
        if (action === 'add_host' || action === 'remove_host') {
          const { host } = validate(HostArg, arg);
          const known = await db.selectFrom('compute_hosts').select('hostname').where('hostname', '=', host).executeTakeFirst();
          if (!known) throw notFound(`Compute host ${host} could not be found.`);
          await db.transaction().execute(async (tx) => {
            const member = await tx.selectFrom('compute_aggregate_hosts').select('hostname').where('aggregate_id', '=', a.id).where('hostname', '=', host).executeTakeFirst();
            if (action === 'add_host') {
              if (member) throw conflict(`Aggregate ${a.id} already has host ${host}.`);
              const zone = (await metadataOf(tx, a.id)).availability_zone;
              await checkZone(tx, a, zone ?? null, [host], 'add');
              await tx.insertInto('compute_aggregate_hosts').values({ aggregate_id: a.id, hostname: host }).execute();
            } else {
              if (!member) throw notFound(`Cannot remove host ${host} in aggregate ${a.id}`);
              await tx.deleteFrom('compute_aggregate_hosts').where('aggregate_id', '=', a.id).where('hostname', '=', host).execute();
            }
            await refreshZones(ctx, tx, [host]);
          });
          ctx.engine.kick();
          return { aggregate: await view(rc, a) };
        }
        if (action === 'set_metadata') {
          const { metadata } = validate(MetaArg, arg);
          await db.transaction().execute(async (tx) => {
            const hosts = await hostsOf(tx, a.id);
            if ('availability_zone' in metadata) await checkZone(tx, a, metadata.availability_zone ?? null, hosts, 'update');
            for (const [key, value] of Object.entries(metadata)) {
              await tx.deleteFrom('compute_aggregate_metadata').where('aggregate_id', '=', a.id).where('key', '=', key).execute();
              if (value !== null) await tx.insertInto('compute_aggregate_metadata').values({ aggregate_id: a.id, key, value }).execute();
            }
            await tx.updateTable('compute_aggregates').set({ updated_at: nowIso() }).where('id', '=', a.id).execute();
            if ('availability_zone' in metadata) await refreshZones(ctx, tx, hosts);
          });
          ctx.engine.kick();
          return { aggregate: await view(rc, await load(rc)) };
        }
        throw badRequest(`There is no such action: ${action}`);
      },
    }),
  ];
}
